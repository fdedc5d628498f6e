package forward_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// ownClient is a client with its own connections: httptest.Server.Close, run by
// parallel tests, closes http.DefaultTransport's idle connections under a request.
func ownClient(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestClientSticksAndCounts(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a, b := startServer(t, "a"), startServer(t, "b")
		svc := service("service1", "connect.sid", a, b)
		front := startProxy(t, e, opts{}, svc)

		c := newClient(t, front.URL)
		first := c.get("/service1")
		if first.status != 200 || first.answer.Count != 1 {
			t.Fatalf("first visit: %v", first)
		}
		served := a
		if first.answer.Name == "b" {
			served = b
		}
		wantID := testIDs.ID(served.addr)
		if c.cookieID() != wantID {
			t.Fatalf("cookie %q, want it prefixed with %s~", c.cookie, wantID)
		}
		if !strings.HasSuffix(first.setCookie, "; Path=/; HttpOnly") {
			t.Errorf("Set-Cookie %q: attributes changed", first.setCookie)
		}
		if got := first.header.Get("Cache-Control"); got != "private" {
			t.Errorf("Cache-Control %q, want private (nocache)", got)
		}
		sessionValue := strings.TrimPrefix(c.cookie, "connect.sid="+wantID+"~")
		for i := 2; i <= 6; i++ {
			r := c.get("/service1/page?x=1")
			if r.answer.Name != served.name || r.answer.Count != i {
				t.Fatalf("visit %d: %s #%d, want %s #%d", i, r.answer.Name, r.answer.Count, served.name, i)
			}
			if r.setCookie != "" {
				t.Errorf("visit %d: Set-Cookie %q on a known session", i, r.setCookie)
			}
			if r.answer.Cookie != "connect.sid="+sessionValue {
				t.Fatalf("server got Cookie %q, want exactly the value it set %q", r.answer.Cookie, "connect.sid="+sessionValue)
			}
		}
		if got := svc.Counters.Hits.Load(); got != 5 {
			t.Errorf("sticky hits %d, want 5", got)
		}
		if got := svc.Counters.New.Load(); got != 1 {
			t.Errorf("sticky new %d, want 1", got)
		}
	})
}

// TestABodyCutShortCountsAsNoStickyOutcome: a small body is read whole before
// the cookie is looked at and a server picked; one that fails is answered 400
// and counted with no sticky outcome (not as a new visitor) on either engine.
func TestABodyCutShortCountsAsNoStickyOutcome(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a := startServer(t, "a")
		svc := service("service1", "connect.sid", a)
		front := startProxy(t, e, opts{}, svc)
		if status, _ := rawRequest(t, front.URL, "POST /service1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello", true); status != 400 {
			t.Fatalf("got %d, want 400", status)
		}
		if _, err := probe.Within(5*time.Second, "one 4xx counted", func() bool { return svc.Counters.Responses[4].Load() == 1 }); err != nil {
			t.Fatalf("4xx counted %d, want 1", svc.Counters.Responses[4].Load())
		}
		c := svc.Counters
		if hit, nw, reb := c.Hits.Load(), c.New.Load(), c.Rebalanced.Load(); hit+nw+reb != 0 {
			t.Errorf("sticky hit %d, new %d, rebalanced %d; want none counted", hit, nw, reb)
		}
	})
}

func TestNewClientsSpreadOverServers(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a, b := startServer(t, "a"), startServer(t, "b")
		front := startProxy(t, e, opts{}, service("service1", "connect.sid", a, b))
		count := map[string]int{}
		for range 10 {
			r := newClient(t, front.URL).get("/service1")
			count[r.answer.Name]++
		}
		if count["a"] != 5 || count["b"] != 5 {
			t.Errorf("10 new clients went %v, want 5 and 5", count)
		}
	})
}

func TestKilledServerClientsMoveWithoutErrors(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a, b := startServer(t, "a"), startServer(t, "b")
		svc := service("service1", "connect.sid", a, b)
		front := startProxy(t, e, opts{}, svc)

		var clients []*client
		for range 6 {
			c := newClient(t, front.URL)
			for range 3 {
				if r := c.get("/service1"); r.status != 200 {
					t.Fatalf("warm up: %v", r)
				}
			}
			clients = append(clients, c)
		}
		a.kill()
		aID, bID := testIDs.ID(a.addr), testIDs.ID(b.addr)
		moved := 0
		for _, c := range clients {
			wasOnA := c.cookieID() == aID
			start := time.Now()
			r := c.get("/service1")
			took := time.Since(start)
			if r.status != 200 {
				t.Fatalf("after the kill: %v, want 200", r)
			}
			if !wasOnA {
				if r.answer.Name != "b" || r.answer.Count != 4 {
					t.Errorf("a client of b got %s #%d, want b #4", r.answer.Name, r.answer.Count)
				}
				continue
			}
			moved++
			if r.answer.Name != "b" || r.answer.Count != 1 {
				t.Errorf("a client of a got %s #%d, want b #1 (a new session)", r.answer.Name, r.answer.Count)
			}
			if c.cookieID() != bID {
				t.Errorf("moved client's cookie %q, want the new server's id %s", c.cookie, bID)
			}
			t.Logf("request pinned to the killed server answered by the other in %v", took)
			if took > time.Second {
				t.Errorf("a request pinned to a dead server took %v; a refused connection must be retried at once", took)
			}
			if r := c.get("/service1"); r.answer.Name != "b" || r.answer.Count != 2 {
				t.Errorf("moved client then got %s #%d, want b #2", r.answer.Name, r.answer.Count)
			}
		}
		if moved != 3 {
			t.Fatalf("%d clients were on a, want 3", moved)
		}
		if got := svc.Counters.Rebalanced.Load(); got != 3 {
			t.Errorf("rebalanced %d, want 3", got)
		}
		if got := svc.Counters.Responses[5].Load(); got != 0 {
			t.Errorf("%d 5xx answers, want none", got)
		}
		var deadA *backend.Backend
		for _, bk := range svc.Pool.Backends() {
			if bk.ID() == aID {
				deadA = bk
			}
		}
		if deadA.State() != backend.Down || deadA.Failures() == 0 {
			t.Errorf("killed server is %v with %d failures, want down with at least one", deadA.State(), deadA.Failures())
		}
	})
}

func TestEveryServerDownGives503WithoutAddresses(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a, b := startServer(t, "a"), startServer(t, "b")
		front := startProxy(t, e, opts{}, service("service1", "connect.sid", a, b))
		a.kill()
		b.kill()
		c := newClient(t, front.URL)
		for range 2 { // first: connections refused; then: no server available
			r := c.get("/service1")
			if r.status != http.StatusServiceUnavailable {
				t.Fatalf("got %v, want 503", r)
			}
			if strings.Contains(r.body, "127.0.0.1") || strings.Count(r.body, "\n") != 1 || len(r.body) > 100 {
				t.Errorf("body %q: want one short line with no address", r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
		}
	})
}

func TestEmptyServiceGives503(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		front := startProxy(t, e, opts{}, service("service2", ""))
		r := newClient(t, front.URL).get("/service2")
		if r.status != 503 || r.body != "no server available for service2\n" {
			t.Errorf("got %v, want 503 no server available for service2", r)
		}
	})
}

func TestNoRoute(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		front := startProxy(t, e, opts{}, service("service1", "", startServer(t, "a")))
		r := newClient(t, front.URL).get("/nope/%3Cscript%3E")
		if r.status != 404 || r.body != "no route for /nope/%3Cscript%3E\n" {
			t.Errorf("got %v, want 404 with the escaped path", r)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("headers %v", r.header)
		}
		if r := newClient(t, front.URL).get(forward.HealthPath); r.status != 200 || r.body != "ok\n" {
			t.Errorf("%s: %v", forward.HealthPath, r)
		}
		// Targets a browser would not send: each engine echoes the path as
		// net/http's URL.EscapedPath, what the origin form would give.
		for _, tt := range []struct{ target, want string }{
			{"http://example.com/nope?q=1", "/nope"}, // absolute form
			{"/<x>", "/%3Cx%3E"},
			{"/\xc3\xa9", "/%C3%A9"},
			{`/a"b`, "/a%22b"},
		} {
			status, body := rawRequest(t, front.URL, "GET "+tt.target+" HTTP/1.1\r\nHost: example.com\r\n\r\n", false)
			if want := "no route for " + tt.want + "\n"; status != 404 || body != want {
				t.Errorf("GET %s: got %d %q, want 404 %q", tt.target, status, body, want)
			}
		}
	})
}

func TestForwardedHeadersAndHost(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a := startServer(t, "a")
		front := startProxy(t, e, opts{}, service("service1", "", a))
		req, _ := http.NewRequest("GET", front.URL+"/service1/x?q=1", nil)
		req.Host = "example.com:8080"
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		req.Header.Set("Cookie", "connect.sid=zz~keep; other=1")
		newClient(t, front.URL).do(req)
		got, _ := a.lastRequest()
		checks := []struct{ what, got, want string }{
			{"Host", got.Host, "example.com:8080"},
			{"path", got.URL.RequestURI(), "/service1/x?q=1"},
			{"X-Forwarded-For", got.Header.Get("X-Forwarded-For"), "203.0.113.7, 127.0.0.1"},
			{"X-Forwarded-Proto", got.Header.Get("X-Forwarded-Proto"), "http"},
			{"X-Forwarded-Host", got.Header.Get("X-Forwarded-Host"), "example.com:8080"},
			{"Cookie of a service without cookie", got.Header.Get("Cookie"), "connect.sid=zz~keep; other=1"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: server got %q, want %q", c.what, c.got, c.want)
			}
		}
	})
}

func TestCookiesStrippedInEveryHeader(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a := startServer(t, "a")
		front := startProxy(t, e, opts{}, service("service1", "connect.sid", a))
		req, _ := http.NewRequest("GET", front.URL+"/service1", nil)
		req.Header.Add("Cookie", `theme="dark"; connect.sid=unknown~v1`)
		req.Header.Add("Cookie", "connect.sid=~v2; connect.sid=v3; x=a~b")
		r := newClient(t, front.URL).do(req)
		got, _ := a.lastRequest()
		want := []string{`theme="dark"; connect.sid=v1`, "connect.sid=v2; connect.sid=v3; x=a~b"}
		if g := got.Header.Values("Cookie"); strings.Join(g, "|") != strings.Join(want, "|") {
			t.Errorf("server got Cookie %q, want %q", g, want)
		}
		if r.status != 200 {
			t.Errorf("got %v", r)
		}
	})
}

func TestMalformedCookiesNeverBreak(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a := startServer(t, "a")
		front := startProxy(t, e, opts{}, service("service1", "connect.sid", a))
		// Sent raw: Go's client refuses some of these.
		for _, h := range []string{"=", ";;;", "connect.sid", "connect.sid=\"", "connect.sid=~", "connect.sid=~~~", "\x01\x7f\xff", "connect.sid=\xff~\x00", strings.Repeat("connect.sid=a~b;", 500)} {
			conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, "GET /service1 HTTP/1.1\r\nHost: x\r\nCookie: "+h+"\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			conn.Close()
			if err != nil {
				t.Fatalf("Cookie %q: %v", h, err)
			}
			if resp.StatusCode != 200 && resp.StatusCode != 400 {
				t.Errorf("Cookie %q: status %d, want 200 (or 400 from the HTTP server for bytes it rejects)", h, resp.StatusCode)
			}
		}
	})
}

func TestRetryKeepsTheRequestBody(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a, dead := startServer(t, "a"), startServer(t, "dead")
		svc := service("service1", "connect.sid", a, dead)
		front := startProxy(t, e, opts{}, svc)
		dead.kill() // never contacted: the proxy has no kept-alive connection to it
		c := newClient(t, front.URL)
		req, _ := http.NewRequest("POST", front.URL+"/service1", strings.NewReader("hello body"))
		req.Header.Set("Cookie", "connect.sid="+testIDs.ID(dead.addr)+"~s:old")
		r := c.do(req)
		if r.status != 200 || r.answer.Name != "a" {
			t.Fatalf("POST pinned to a dead server: %v", r)
		}
		if _, body := a.lastRequest(); body != "hello body" {
			t.Errorf("the retried server got body %q", body)
		}
		if c.cookieID() != testIDs.ID(a.addr) {
			t.Errorf("cookie %q, want the id of a", c.cookie)
		}
	})
}

func TestRequestsRightAfterAKill(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		// The proxy holds kept-alive connections to both servers when one
		// stops; the next requests, sent at once, must not fail.
		for range 5 {
			a, b := startServer(t, "a"), startServer(t, "b")
			front := startProxy(t, e, opts{}, service("service1", "connect.sid", a, b))
			c := newClient(t, front.URL)
			c.get("/service1")
			newClient(t, front.URL).get("/service1") // the other server
			if c.get("/service1").answer.Name == "a" {
				a.kill()
			} else {
				b.kill()
			}
			for range 3 {
				if r := c.get("/service1"); r.status != 200 {
					t.Fatalf("GET right after a kill: %v", r)
				}
				if r := newClient(t, front.URL).get("/service1"); r.status != 200 {
					t.Fatalf("new client right after a kill: %v", r)
				}
			}
		}
	})
}

func TestSlowServerGives504(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		t.Cleanup(slow.Close)
		t.Cleanup(func() { close(release) })
		pool := backend.NewPool(testIDs, backend.RoundRobin)
		pool.Update([]string{strings.TrimPrefix(slow.URL, "http://")})
		svc := &forward.Service{Name: "slow", VirtualHost: "*/slow", Pool: pool}
		front := startProxy(t, e, opts{serverTimeout: 50 * time.Millisecond}, svc)
		r := newClient(t, front.URL).get("/slow")
		if r.status != http.StatusGatewayTimeout || strings.Contains(r.body, "127.0.0.1") {
			t.Errorf("got %v, want 504 without address", r)
		}
	})
}

func TestResponsesStream(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			<-release
			io.WriteString(w, "second\n")
		}))
		t.Cleanup(srv.Close)
		pool := backend.NewPool(testIDs, backend.RoundRobin)
		pool.Update([]string{strings.TrimPrefix(srv.URL, "http://")})
		front := startProxy(t, e, opts{}, &forward.Service{Name: "s", VirtualHost: "*/s", Pool: pool})
		resp, err := ownClient(t).Get(front.URL + "/s")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || line != "first\n" {
			t.Fatalf("first chunk %q, %v", line, err)
		}
		close(release) // the server finishes only after we got the first chunk
		rest, _ := io.ReadAll(br)
		if string(rest) != "second\n" {
			t.Errorf("rest %q", rest)
		}
	})
}

func TestUpgradePassesThrough(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		// A server that switches to an echo protocol, like a websocket.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "echo" {
				http.Error(w, "upgrade expected", 400)
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			brw.WriteString("echo: " + line)
			brw.Flush()
		}))
		t.Cleanup(srv.Close)
		pool := backend.NewPool(testIDs, backend.RoundRobin)
		pool.Update([]string{strings.TrimPrefix(srv.URL, "http://")})
		front := startProxy(t, e, opts{}, &forward.Service{Name: "ws", VirtualHost: "*/ws", Pool: pool})

		conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade answer %v, %v", resp, err)
		}
		io.WriteString(conn, "hello\n")
		line, _ := br.ReadString('\n')
		if line != "echo: hello\n" {
			t.Errorf("through the tunnel got %q", line)
		}
	})
}

func TestAccessLog(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		buf := &lockedWriter{w: new(bytes.Buffer)}
		log := slog.New(slog.NewTextHandler(buf, nil))
		a := startServer(t, "a")
		front := startProxy(t, e, opts{logger: log, accessLog: true}, service("service1", "connect.sid", a))
		newClient(t, front.URL).get("/service1")
		// The line is written once the answer is out: wait for it.
		logged := func() bool { return strings.Contains(buf.String(), "status=") }
		probe.Within(5*time.Second, "the access line", logged) // the checks below say what is missing
		out := buf.String()
		for _, want := range []string{"service=service1", "server=" + testIDs.ID(a.addr), "status=200", "sticky=new", "dur_ms="} {
			if !strings.Contains(out, want) {
				t.Errorf("access log %q lacks %q", out, want)
			}
		}
		if strings.Contains(out, "s:") {
			t.Errorf("access log %q shows a cookie value", out)
		}

		// A request that matches no route: the same line from either engine.
		buf.Reset()
		newClient(t, front.URL).get("/nope/%3Cx%3E?q=1")
		probe.Within(5*time.Second, "the access line", logged)
		out = buf.String()
		want := `level=INFO msg=request method=GET path=/nope/%3Cx%3E status=404 service="" dur_ms=`
		if _, line, _ := strings.Cut(out, " level="); !strings.HasPrefix("level="+line, want) {
			t.Errorf("no route: access log %q, want a line starting %q after the time", out, want)
		}
	})
}

// benchProxy starts a backend and the proxy in front of it (engine e), sticky on
// connect.sid, and returns the proxy's URL, the backend's server id and a client
// with room for idle connections.
func benchProxy(b *testing.B, e engine, idle int) (url, id string, cl *http.Client) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<h1>I'm service1 on bench non unique visits 1</h1>")
	}))
	b.Cleanup(srv.Close)
	pool := backend.NewPool(testIDs, backend.RoundRobin)
	pool.Update([]string{strings.TrimPrefix(srv.URL, "http://")})
	front := startProxy(b, e, opts{}, &forward.Service{Name: "service1", VirtualHost: "*/service1, */service1/*", Sticky: sticky.Rule{Name: "connect.sid", NoCache: true}, Retries: 3, Pool: pool})
	tr := &http.Transport{MaxIdleConnsPerHost: idle}
	b.Cleanup(tr.CloseIdleConnections)
	return front.URL, pool.Backends()[0].ID(), &http.Client{Transport: tr}
}

func BenchmarkProxyStickyHit(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			url, id, cl := benchProxy(b, e, 10)
			req, _ := http.NewRequestWithContext(context.Background(), "GET", url+"/service1", nil)
			req.Header.Set("Cookie", "_ga=GA1.1.1; connect.sid="+id+"~s%3Aabc.def; theme=dark")
			b.ReportAllocs()
			for b.Loop() {
				resp, err := cl.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

func TestReplicaStoppingUnderLoadGivesNoErrors(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a, b := startServer(t, "a"), startServer(t, "b")
		svc := service("service1", "connect.sid", a, b)
		front := startProxy(t, e, opts{}, svc)

		stop := make(chan struct{})
		errs := make(chan string, 100)
		var answered atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				c := newClient(t, front.URL)
				for {
					select {
					case <-stop:
						return
					default:
					}
					req, _ := http.NewRequest("GET", front.URL+"/service1", nil)
					if c.cookie != "" {
						req.Header.Set("Cookie", c.cookie)
					}
					resp, err := c.http.Do(req)
					if err != nil {
						errs <- err.Error()
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errs <- resp.Status
						return
					}
					if sc := resp.Header.Get("Set-Cookie"); sc != "" {
						c.cookie, _, _ = strings.Cut(sc, ";")
					}
					answered.Add(1)
				}
			})
		}
		// waitAnswers waits until the clients have had n more answers (or one failed).
		waitAnswers := func(n int64) {
			t.Helper()
			want := answered.Load() + n
			if _, err := probe.Within(10*time.Second, "the answers", func() bool { return answered.Load() >= want || len(errs) > 0 }); err != nil {
				t.Fatalf("the clients got %d answers in 10s, want %d", answered.Load(), want)
			}
		}
		waitAnswers(200)
		// A graceful stop, as `docker stop` gives a service that drains.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.srv.Shutdown(ctx)
		waitAnswers(400)
		close(stop)
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("a client got %s while a replica stopped", e)
		}
		if svc.Counters.Rebalanced.Load() == 0 {
			t.Error("no client was rebalanced: did the load reach the stopped replica?")
		}
		t.Logf("requests: hits %d new %d rebalanced %d; a answered %d, b %d", svc.Counters.Hits.Load(), svc.Counters.New.Load(), svc.Counters.Rebalanced.Load(), svc.Pool.Backends()[0].Requests(), svc.Pool.Backends()[1].Requests())
	})
}

func TestServerDyingMidBodyGivesItsSlotBack(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		// A server that sends half a body and dies: ReverseProxy aborts the
		// answer with a panic; the server's active count must still drop.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, "half")
			w.(http.Flusher).Flush()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		t.Cleanup(srv.Close)
		pool := backend.NewPool(testIDs, backend.LeastConn)
		pool.Update([]string{strings.TrimPrefix(srv.URL, "http://")})
		svc := &forward.Service{Name: "s", VirtualHost: "*/s", Pool: pool}
		front := startProxy(t, e, opts{}, svc)
		for range 3 {
			resp, err := ownClient(t).Get(front.URL + "/s")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		b := pool.Backends()[0]
		probe.Within(5*time.Second, "the requests done and counted", func() bool { // the checks below say what is missing
			return b.Active() == 0 && svc.Counters.Responses[0].Load() == 3
		})
		if b.Active() != 0 {
			t.Errorf("%d requests still counted in flight after the server died mid-body", b.Active())
		}
		if got := svc.Counters.Responses[0].Load(); got != 3 {
			t.Errorf("%d cut-off answers counted, want 3", got)
		}
	})
}

func BenchmarkProxyParallel(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			url, id, cl := benchProxy(b, e, 64)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest("GET", url+"/service1", nil)
				req.Header.Set("Cookie", "connect.sid="+id+"~s%3Aabc.def")
				for pb.Next() {
					resp, err := cl.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// A replica killed while it holds a request drops the connection without an answer.
// A GET or HEAD is sent again to another server (HAProxy `retry-on empty-response`);
// a POST may have done its work there, so it gets a 502 instead.
func TestRequestInAServerThatDiesIsRetriedIfReplayable(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		crash := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close() // the request was read; no byte of an answer goes back
			}
		}))
		t.Cleanup(crash.Close)
		crashAddr := strings.TrimPrefix(crash.URL, "http://")
		a := startServer(t, "a")
		for _, tc := range []struct {
			method     string
			wantStatus int
		}{
			{http.MethodGet, http.StatusOK},
			{http.MethodHead, http.StatusOK},
			{http.MethodPost, http.StatusBadGateway},
		} {
			t.Run(tc.method, func(t *testing.T) {
				pool := backend.NewPool(testIDs, backend.RoundRobin)
				pool.Update([]string{crashAddr, a.addr})
				svc := &forward.Service{Name: "service1", VirtualHost: "*/service1", Sticky: sticky.Rule{Name: "connect.sid"}, Retries: 3, Pool: pool}
				front := startProxy(t, e, opts{}, svc)
				var body io.Reader
				if tc.method == http.MethodPost {
					body = strings.NewReader("x")
				}
				req, _ := http.NewRequest(tc.method, front.URL+"/service1", body)
				req.Header.Set("Cookie", "connect.sid="+testIDs.ID(crashAddr)+"~s:old")
				resp, err := ownClient(t).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.wantStatus {
					t.Fatalf("%s pinned to a server that drops it: got %d, want %d", tc.method, resp.StatusCode, tc.wantStatus)
				}
				if tc.wantStatus == http.StatusOK && !strings.HasPrefix(resp.Header.Get("Set-Cookie"), "connect.sid="+testIDs.ID(a.addr)+"~") {
					t.Errorf("Set-Cookie after the retry: got %q, want a's id", resp.Header.Get("Set-Cookie"))
				}
			})
		}
	})
}

// TestExpectContinueGetsItsBodyThrough: a client that waits for "100 Continue" before
// it sends its body is told to go on, whether the proxy buffers the body (small) or
// streams it (large), and the server gets the whole body.
func TestExpectContinueGetsItsBodyThrough(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a := startServer(t, "a")
		front := startProxy(t, e, opts{}, service("service1", "", a))
		for _, size := range []int{10, 100 << 10} {
			c, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "POST /service1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", size)
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
				t.Fatalf("a %d-byte body: got %q %v, want 100 Continue first", size, line, err)
			}
			br.ReadString('\n') // the interim answer's end
			io.WriteString(c, strings.Repeat("x", size))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if _, body := a.lastRequest(); resp.StatusCode != 200 || len(body) != size {
				t.Errorf("a %d-byte body: %d, the server got %d bytes", size, resp.StatusCode, len(body))
			}
			c.Close()
		}
	})
}
