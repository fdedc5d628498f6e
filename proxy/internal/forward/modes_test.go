package forward_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// echoServer answers its name and the Cookie headers it received, and sets
// what the request asks for: one Set-Cookie per X-Set-Cookie header, the
// Cache-Control of X-Cache-Control. A websocket-style upgrade gets a 101.
func echoServer(t testing.TB, name string) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{name: name, addr: ln.Addr().String()}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.last = r.Clone(r.Context())
		s.mu.Unlock()
		if r.Header.Get("Upgrade") == "websocket" {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
			for _, sc := range r.Header.Values("X-Set-Cookie") {
				fmt.Fprintf(brw, "Set-Cookie: %s\r\n", sc)
			}
			fmt.Fprintf(brw, "\r\n%s", name)
			brw.Flush()
			return
		}
		for _, sc := range r.Header.Values("X-Set-Cookie") {
			w.Header().Add("Set-Cookie", sc)
		}
		if cc := r.Header.Get("X-Cache-Control"); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer{Name: name, Cookie: strings.Join(r.Header.Values("Cookie"), "\n")})
	})}
	go s.srv.Serve(ln)
	t.Cleanup(s.kill)
	return s
}

func ruleService(t testing.TB, name, rule string, servers ...*testServer) *forward.Service {
	t.Helper()
	r, err := sticky.ParseRule(rule)
	if err != nil {
		t.Fatal(err)
	}
	svc := service(name, "", servers...)
	svc.Sticky = r
	return svc
}

// send makes one request with the given headers (each "Name: value") and no
// cookie jar: the test says what the client sends.
func send(t testing.TB, base, method, path string, headers ...string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	c := &client{t: t, http: &http.Client{Transport: &http.Transport{}}}
	defer c.http.CloseIdleConnections()
	return c.do(req)
}

func TestInsertIndirectNoCache(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a, b := echoServer(t, "a"), echoServer(t, "b")
		svc := ruleService(t, "web", "SRV insert indirect nocache", a, b)
		front := startProxy(t, e, opts{}, svc)

		first := send(t, front.URL, "GET", "/web", "X-Set-Cookie: sid=app1; Path=/", "X-Cache-Control: public, max-age=60")
		served := map[string]*testServer{"a": a, "b": b}[first.answer.Name]
		id := testIDs.ID(served.addr)
		if got, want := first.header.Values("Set-Cookie"), []string{"sid=app1; Path=/", "SRV=" + id + "; path=/"}; !slices.Equal(got, want) {
			t.Errorf("first visit: got Set-Cookie %q, want %q (the app's untouched, then the proxy's)", got, want)
		}
		if got := first.header.Get("Cache-Control"); got != "max-age=60, private" {
			t.Errorf("first visit: got Cache-Control %q, want %q", got, "max-age=60, private")
		}

		for i := range 3 {
			r := send(t, front.URL, "GET", "/web", "Cookie: sid=app1; SRV="+id+"; lang=fr", "X-Cache-Control: max-age=60")
			if r.answer.Name != served.name {
				t.Fatalf("visit %d: got server %s, want %s", i+2, r.answer.Name, served.name)
			}
			if r.answer.Cookie != "sid=app1; lang=fr" {
				t.Errorf("visit %d: backend got Cookie %q, want %q (SRV taken off, indirect)", i+2, r.answer.Cookie, "sid=app1; lang=fr")
			}
			if sc := r.header.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("visit %d: got Set-Cookie %q, want none (the cookie is valid)", i+2, sc)
			}
			if got := r.header.Get("Cache-Control"); got != "max-age=60" {
				t.Errorf("visit %d: got Cache-Control %q, want the backend's", i+2, got)
			}
		}
		// A header that held only SRV does not reach the backend at all.
		if r := send(t, front.URL, "GET", "/web", "Cookie: SRV="+id); r.answer.Cookie != "" {
			t.Errorf("backend got Cookie %q, want no Cookie header", r.answer.Cookie)
		}
		if got := svc.Counters.Hits.Load(); got != 4 {
			t.Errorf("got %d sticky hits, want 4", got)
		}
	})
}

func TestInsertModeDetails(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a := echoServer(t, "a")
		id := testIDs.ID(a.addr)
		tests := []struct {
			name, rule, method string
			headers            []string
			setCookie          []string
			backendCookie      string
		}{
			{"without indirect the backend sees the cookie", "SRV insert", "GET",
				[]string{"Cookie: SRV=" + id + "; x=1"}, nil, "SRV=" + id + "; x=1"},
			{"the backend's own SRV is replaced by the proxy's", "SRV insert", "GET",
				[]string{"X-Set-Cookie: SRV=mine; Path=/app", "X-Set-Cookie: other=1"}, []string{"other=1", "SRV=" + id + "; path=/"}, ""},
			{"preserve: the backend's own SRV passes and nothing is inserted", "SRV insert preserve", "GET",
				[]string{"X-Set-Cookie: SRV=; Max-Age=0"}, []string{"SRV=; Max-Age=0"}, ""},
			{"postonly: no cookie on a GET", "SRV insert postonly", "GET", nil, nil, ""},
			{"postonly: a cookie on a POST", "SRV insert postonly", "POST", nil, []string{"SRV=" + id + "; path=/"}, ""},
			{"attributes in HAProxy's order", "SRV insert secure httponly domain .a.test attr SameSite=Lax", "GET", nil,
				[]string{"SRV=" + id + "; path=/; domain=.a.test; HttpOnly; Secure; SameSite=Lax"}, ""},
			{"an unknown id gets a new cookie", "SRV insert indirect", "GET",
				[]string{"Cookie: SRV=zzzzzzzzzz"}, []string{"SRV=" + id + "; path=/"}, ""},
			{"rewrite: the backend's value becomes the id", "SRV rewrite", "GET",
				[]string{"X-Set-Cookie: SRV=whatever; Path=/"}, []string{"SRV=" + id + "; Path=/"}, ""},
			{"rewrite: the backend sees the id", "SRV rewrite", "GET",
				[]string{"Cookie: SRV=" + id}, nil, "SRV=" + id},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				name := fmt.Sprintf("s%d", i)
				front := startProxy(t, e, opts{}, ruleService(t, name, tt.rule, a))
				r := send(t, front.URL, tt.method, "/"+name, tt.headers...)
				if got := r.header.Values("Set-Cookie"); !slices.Equal(got, tt.setCookie) {
					t.Errorf("got Set-Cookie %q, want %q", got, tt.setCookie)
				}
				if r.answer.Cookie != tt.backendCookie {
					t.Errorf("backend got Cookie %q, want %q", r.answer.Cookie, tt.backendCookie)
				}
			})
		}
	})
}

func TestInsertMaxIdleDatesAndExpiry(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a, b := echoServer(t, "a"), echoServer(t, "b")
		svc := ruleService(t, "web", "SRV insert indirect maxidle 1h maxlife 8h", a, b)
		front := startProxy(t, e, opts{}, svc)
		first := send(t, front.URL, "GET", "/web")
		sc := first.header.Get("Set-Cookie")
		v, _, _ := strings.Cut(strings.TrimPrefix(sc, "SRV="), ";")
		id, d := sticky.ReadValue([]byte(v))
		now := time.Now().Unix()
		if string(id) != testIDs.ID(map[string]*testServer{"a": a, "b": b}[first.answer.Name].addr) || d.Last < now-8 || d.Last > now+8 || d.First != d.Last {
			t.Fatalf("got Set-Cookie %q (id %q, dates %+v), want the server's id and both dates now", sc, id, d)
		}
		// The same cookie within 4 s: a hit; with a last date 2 h old: expired,
		// counted as a new visitor, and a fresh cookie.
		if r := send(t, front.URL, "GET", "/web", "Cookie: SRV="+v); r.answer.Name != first.answer.Name {
			t.Errorf("got server %s, want %s", r.answer.Name, first.answer.Name)
		}
		stale := sticky.Rule{Name: "SRV", Mode: sticky.ModeInsert, MaxIdle: time.Hour}
		old := string(stale.AppendInsert(nil, string(id), now-7200, 0))
		old, _, _ = strings.Cut(old, ";")
		newBefore := svc.Counters.New.Load()
		r := send(t, front.URL, "GET", "/web", "Cookie: "+old)
		if svc.Counters.New.Load() != newBefore+1 {
			t.Errorf("an expired cookie was not counted as a new visitor")
		}
		if !strings.HasPrefix(r.header.Get("Set-Cookie"), "SRV="+testIDs.ID(map[string]*testServer{"a": a, "b": b}[r.answer.Name].addr)+"|") {
			t.Errorf("expired cookie: got Set-Cookie %q, want a fresh one", r.header.Get("Set-Cookie"))
		}
	})
}

func TestInsertOnAWebsocketUpgrade(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		a := echoServer(t, "a")
		front := startProxy(t, e, opts{}, ruleService(t, "ws", "SRV insert indirect", a))
		conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 {
			t.Fatalf("got %d, want 101", resp.StatusCode)
		}
		if got, want := resp.Header.Get("Set-Cookie"), "SRV="+testIDs.ID(a.addr)+"; path=/"; got != want {
			t.Errorf("101: got Set-Cookie %q, want %q", got, want)
		}
	})
}

func TestBalanceSource(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		servers := []*testServer{echoServer(t, "a"), echoServer(t, "b"), echoServer(t, "c")}
		svc := service("api", "", servers...)
		svc.Pool.SetBalance(backend.Source)
		svc.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		front := startProxy(t, e, opts{}, svc)

		seen := map[string]bool{}
		for i := range 30 {
			xff := fmt.Sprintf("X-Forwarded-For: 198.51.100.%d", i)
			first := send(t, front.URL, "GET", "/api", xff).answer.Name
			seen[first] = true
			for range 2 {
				if got := send(t, front.URL, "GET", "/api", xff).answer.Name; got != first {
					t.Fatalf("client %d: got %s then %s, want one server", i, first, got)
				}
			}
		}
		if len(seen) != 3 {
			t.Errorf("30 clients behind a trusted proxy reached %d servers, want all 3", len(seen))
		}
	})
}

func TestBalanceSourceIgnoresXFFFromUntrustedPeers(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		servers := []*testServer{echoServer(t, "a"), echoServer(t, "b"), echoServer(t, "c")}
		svc := service("api", "", servers...)
		svc.Pool.SetBalance(backend.Source)
		front := startProxy(t, e, opts{}, svc)
		seen := map[string]bool{}
		for i := range 20 {
			seen[send(t, front.URL, "GET", "/api", fmt.Sprintf("X-Forwarded-For: 198.51.100.%d", i)).answer.Name] = true
		}
		if len(seen) != 1 {
			t.Errorf("one peer claiming 20 addresses reached %d servers, want 1 (its own address counts)", len(seen))
		}
	})
}
