package h1

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/live"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// rawBackend answers every request on its connections with one canned answer,
// reading and writing through fixed buffers: it allocates nothing per request,
// so that AllocsPerRun counts the proxy's allocations only.
func rawBackend(t testing.TB, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ans := []byte(answer)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(ans); err != nil {
							return
						}
						n = copy(buf, buf[i+4:n])
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// startEngine serves svcs with a Server on 127.0.0.1 until the test ends.
func startEngine(t testing.TB, o Options, svcs ...*forward.Service) string {
	t.Helper()
	tb, err := forward.NewTable(svcs)
	if err != nil {
		t.Fatal(err)
	}
	o.Table = func() *forward.Table { return tb }
	s := NewServer(o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

var testIDs = backend.NewIDs([]byte("h1 test key 0123456789"))

func stickyService(name string, addrs ...string) *forward.Service {
	pool := backend.NewPool(testIDs, backend.RoundRobin)
	pool.Update(addrs)
	return &forward.Service{Name: name, VirtualHost: "*/" + name + ", */" + name + "/*",
		Sticky: sticky.Rule{Name: "connect.sid", NoCache: true}, Retries: 3, Pool: pool}
}

func TestStickyHitAllocatesNothing(t *testing.T) {
	for _, watched := range []bool{false, true} {
		name := "with nobody watching the live view"
		if watched {
			name = "with a viewer on the live view"
		}
		t.Run("prefix/"+name, func(t *testing.T) {
			answer := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n"
			srv := rawBackend(t, answer)
			svc := stickyService("service1", srv)
			assertHitsAllocateNothing(t, svc, "x=1; connect.sid="+testIDs.ID(srv)+"~s%3Aabc; y=2", watched)
		})
		t.Run("insert/"+name, func(t *testing.T) {
			// The backend sets a cookie of its own, which passes; the proxy's is
			// valid, so nothing is inserted; indirect takes it off the request.
			answer := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: lang=fr\r\nContent-Length: 6\r\n\r\nhello\n"
			srv := rawBackend(t, answer)
			svc := stickyService("service1", srv)
			rule, err := sticky.ParseRule("SRV insert indirect nocache httponly")
			if err != nil {
				t.Fatal(err)
			}
			svc.Sticky = rule
			assertHitsAllocateNothing(t, svc, "x=1; SRV="+testIDs.ID(srv)+"; y=2", watched)
		})
	}
}

// watch attaches a real viewer to svc's live view: a hub serving its event
// stream on 127.0.0.1, read by a client until the test ends.
func watch(t *testing.T, svc *forward.Service) *proc.Buffer {
	t.Helper()
	hub := live.NewHub(live.Options{Sources: func() []live.Source {
		return []live.Source{{Name: svc.Name, Cookie: svc.Sticky.String(), Pool: svc.Pool, Live: svc.Live}}
	}})
	svc.Live = hub.Recorder(svc.Name)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { hub.Run(ctx); close(done) }()
	srv := httptest.NewServer(hub)
	resp, err := http.Get(srv.URL + "/live/events")
	if err != nil {
		t.Fatal(err)
	}
	c := &proc.Buffer{Max: 1 << 20}
	go io.Copy(c, resp.Body)
	t.Cleanup(func() { resp.Body.Close(); hub.Close(); srv.Close(); cancel(); <-done })
	if !svc.Live.Watched() {
		t.Fatal("a viewer is connected but the service is not watched")
	}
	return c
}

// assertHitsAllocateNothing sends requests carrying cookie to svc through the
// engine and fails unless, once warm, a sticky hit allocates nothing; with
// watched, a viewer is on the live view and must see every request.
func assertHitsAllocateNothing(t *testing.T, svc *forward.Service, cookie string, watched bool) {
	t.Helper()
	var stream *proc.Buffer
	if watched {
		stream = watch(t, svc)
	}
	roundTrip, answer := stickyClient(t, startEngine(t, Options{}, svc), cookie)
	roundTrip() // the first one dials the server and grows what it grows
	if a := answer(); !bytes.HasPrefix(a, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(a, []byte("hello\n")) {
		t.Fatalf("answer %q", a)
	}
	if allocs := testing.AllocsPerRun(1000, roundTrip); allocs != 0 {
		t.Errorf("a proxied sticky hit: %v allocations, want 0", allocs)
	}
	if watched {
		// The view got the visitor, with every request.
		_, err := probe.Within(5*time.Second, "the visitor's 1002 requests on the live view", func() bool {
			return strings.Contains(stream.String(), `"n":1002,`) // the first, AllocsPerRun's warm-up and its 1000
		})
		if err != nil {
			t.Fatalf("the live view never showed the visitor's 1002 requests")
		}
	}
	if hits := svc.Counters.Hits.Load(); hits < 1000 {
		t.Errorf("%d sticky hits counted, want every request (%s)", hits, strconv.Itoa(int(hits)))
	}
}

// stickyClient is one kept-alive client connection to front sending GET
// /service1 with cookie: roundTrip sends it and reads the whole answer (a 6-byte
// body) without allocating, answer is the last one read. The connection closes
// when the test ends.
func stickyClient(t testing.TB, front, cookie string) (roundTrip func(), answer func() []byte) {
	t.Helper()
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := []byte("GET /service1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\nCookie: " + cookie + "\r\n\r\n")
	buf := make([]byte, 4096)
	// The answer's length, head and body, as the proxy writes it.
	want := -1
	roundTrip = func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		n := 0
		for want < 0 || n < want {
			m, err := c.Read(buf[n:])
			if err != nil {
				t.Fatal(err)
			}
			n += m
			if want < 0 {
				if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 {
					want = i + 4 + 6
				}
			}
		}
	}
	return roundTrip, func() []byte { return buf[:want] }
}

// BenchmarkStickyHit is one proxied sticky hit through the fast engine over
// loopback, client, proxy and a canned server in one process: the engine's cost
// per request, with the client's and the server's syscalls in it.
func BenchmarkStickyHit(b *testing.B) {
	srv := rawBackend(b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n")
	svc := stickyService("service1", srv)
	roundTrip, _ := stickyClient(b, startEngine(b, Options{}, svc), "x=1; connect.sid="+testIDs.ID(srv)+"~s%3Aabc; y=2")
	roundTrip()
	b.ReportAllocs()
	for b.Loop() {
		roundTrip()
	}
}
