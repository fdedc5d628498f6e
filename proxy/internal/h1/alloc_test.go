package h1

import (
	"bytes"
	"net"
	"strconv"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
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
	answer := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n"
	srv := rawBackend(t, answer)
	svc := stickyService("service1", srv)
	assertHitsAllocateNothing(t, svc, "x=1; connect.sid="+testIDs.ID(srv)+"~s%3Aabc; y=2")
}

func TestInsertStickyHitAllocatesNothing(t *testing.T) {
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
	assertHitsAllocateNothing(t, svc, "x=1; SRV="+testIDs.ID(srv)+"; y=2")
}

// assertHitsAllocateNothing sends requests carrying cookie to svc through the
// engine and fails unless, once warm, a sticky hit allocates nothing.
func assertHitsAllocateNothing(t *testing.T, svc *forward.Service, cookie string) {
	t.Helper()
	front := startEngine(t, Options{}, svc)

	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /service1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\nCookie: " + cookie + "\r\n\r\n")
	buf := make([]byte, 4096)
	// The answer's length, head and body, as the proxy writes it.
	want := -1
	roundTrip := func() {
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
	roundTrip() // the first one dials the server and grows what it grows
	if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.Contains(buf[:want], []byte("hello\n")) {
		t.Fatalf("answer %q", buf[:want])
	}
	if allocs := testing.AllocsPerRun(1000, roundTrip); allocs != 0 {
		t.Errorf("a proxied sticky hit: %v allocations, want 0", allocs)
	}
	if hits := svc.Counters.Hits.Load(); hits < 1000 {
		t.Errorf("%d sticky hits counted, want every request (%s)", hits, strconv.Itoa(int(hits)))
	}
}
