package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/admin"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
)

// countServer is a real server on 127.0.0.x that behaves like the
// tutorial's services: it answers its name and a per-session counter and
// sets connect.sid when it starts a session.
type countServer struct {
	name, addr string
	srv        *http.Server
	mu         sync.Mutex
	sessions   map[string]int
	lastHeader http.Header
}

func startCountServer(t *testing.T, name, addr string) *countServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &countServer{name: name, addr: ln.Addr().String(), sessions: map[string]int{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok")
			return
		}
		s.mu.Lock()
		s.lastHeader = r.Header.Clone()
		sid := ""
		if c, err := r.Cookie("connect.sid"); err == nil && s.sessions[c.Value] > 0 {
			sid = c.Value
		}
		if sid == "" {
			sid = "s:" + rand.Text()
			http.SetCookie(w, &http.Cookie{Name: "connect.sid", Value: sid, Path: "/", HttpOnly: true})
		}
		s.sessions[sid]++
		n := s.sessions[sid]
		s.mu.Unlock()
		fmt.Fprintf(w, "%s %d", s.name, n)
	})}
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *countServer) header() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastHeader
}

// browser keeps one connect.sid cookie, as a browser would.
type browser struct {
	t      *testing.T
	cookie string
}

func (b *browser) get(url string) (status int, body string, setCookie string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if b.cookie != "" {
		req.Header.Set("Cookie", b.cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if sc := resp.Header.Get("Set-Cookie"); sc != "" {
		b.cookie, _, _ = strings.Cut(sc, ";")
		setCookie = sc
	}
	return resp.StatusCode, string(data), setCookie
}

// fakeDNS answers LookupHost from a map the test changes.
type fakeDNS struct {
	mu sync.Mutex
	m  map[string][]string
}

func (f *fakeDNS) set(name string, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[name] = ips
}

func (f *fakeDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ips, ok := f.m[host]
	if !ok || len(ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(ips), nil
}

var testSettings = settings{idKey: []byte("run test key 0123456789"), shutdownTimeout: 5 * time.Second}

// startApp runs the proxy of the given config (listen and admin on port 0)
// until the test ends. It returns the proxy's and the admin's base URLs.
func startApp(t *testing.T, yaml string, dns *fakeDNS) (a *app, front, adm string) {
	t.Helper()
	cfg, err := ParseConfig("test.yaml", []byte("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\naccess_log: false\n"+yaml))
	if err != nil {
		t.Fatal(err)
	}
	log := newLogger(settings{logFormat: "text", logLevel: 8}, io.Discard)
	var res interface {
		LookupHost(context.Context, string) ([]string, error)
	}
	if dns != nil {
		res = dns
	}
	a = newApp(testSettings, cfg, log, res)
	if err := a.listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return a, "http://" + a.ln.Addr().String(), "http://" + a.adminLn.Addr().String()
}

func stats(t *testing.T, adm string) admin.Stats {
	t.Helper()
	req, _ := http.NewRequest("GET", adm+"/stats", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st admin.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTutorialThroughTheProxy(t *testing.T) {
	t.Parallel()
	s1a, s1b := startCountServer(t, "s1a", "127.0.0.1:0"), startCountServer(t, "s1b", "127.0.0.1:0")
	s2a, s2b := startCountServer(t, "s2a", "127.0.0.1:0"), startCountServer(t, "s2b", "127.0.0.1:0")
	_, front, adm := startApp(t, fmt.Sprintf(`services:
  service1:
    servers: "%s, %s"
    cookie: "connect.sid prefix nocache"
    health_check: /healthz
  service2:
    servers: [%q, %q]
`, s1a.addr, s1b.addr, s2a.addr, s2b.addr), nil)

	// service1: sticky, the counter goes up on one replica.
	b := &browser{t: t}
	_, body, sc := b.get(front + "/service1")
	name, _, _ := strings.Cut(body, " ")
	if !strings.HasSuffix(body, " 1") || !strings.Contains(sc, "~s:") {
		t.Fatalf("first visit %q, Set-Cookie %q", body, sc)
	}
	for i := 2; i <= 5; i++ {
		if _, body, _ := b.get(front + "/service1"); body != fmt.Sprintf("%s %d", name, i) {
			t.Fatalf("visit %d: %q, want %s %d", i, body, name, i)
		}
	}
	// service2: not sticky, alternates, the cookie is passed as it is.
	c := &browser{t: t}
	seen := map[string]bool{}
	for range 4 {
		_, body, sc := c.get(front + "/service2")
		n, _, _ := strings.Cut(body, " ")
		seen[n] = true
		if strings.Contains(sc, "~") {
			t.Errorf("service2 (no cookie setting) got a prefixed cookie %q", sc)
		}
	}
	if len(seen) != 2 {
		t.Errorf("service2 answered from %v, want both replicas", seen)
	}

	st := stats(t, adm)
	if len(st.Services) != 2 || st.Services[0].Name != "service1" {
		t.Fatalf("stats %+v", st)
	}
	s := st.Services[0]
	if s.Sticky.Hits != 4 || s.Sticky.New != 1 || s.Cookie != "connect.sid" {
		t.Errorf("service1 sticky %+v, want 4 hits 1 new", s.Sticky)
	}
	var total uint64
	for _, sv := range s.Servers {
		total += sv.Requests
		if sv.State != "up" || len(sv.ID) != backend.IDLen {
			t.Errorf("server %+v", sv)
		}
	}
	if total != 5 {
		t.Errorf("service1 servers answered %d requests, want 5", total)
	}

	resp, err := http.Get(adm + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`proxy_sticky_total{outcome="hit",service="service1"} 4`, `proxy_responses_total{code="2xx",service="service2"} 4`} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if resp, _ := http.Get(adm + "/readyz"); resp.StatusCode != 200 {
		t.Errorf("/readyz %d", resp.StatusCode)
	}
}

func TestErrorsAndHeaders(t *testing.T) {
	t.Parallel()
	s := startCountServer(t, "s", "127.0.0.1:0")
	_, front, _ := startApp(t, fmt.Sprintf("services:\n  service1:\n    servers: %q\n", s.addr), nil)

	resp, err := http.Get(front + "/other?x=<b>")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || string(body) != "no route for /other\n" {
		t.Errorf("no route: %d %q", resp.StatusCode, body)
	}

	// Oversized headers: 431, and the proxy keeps working.
	req, _ := http.NewRequest("GET", front+"/service1", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 2<<20))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("2 MiB of headers: %d, want 431", resp.StatusCode)
	}

	req, _ = http.NewRequest("GET", front+"/service1", nil)
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := s.header().Get("X-Forwarded-For"); got != "198.51.100.1, 127.0.0.1" {
		t.Errorf("X-Forwarded-For %q, want the client appended", got)
	}
}

func TestKilledReplicaClientsMove(t *testing.T) {
	t.Parallel()
	a, b := startCountServer(t, "a", "127.0.0.1:0"), startCountServer(t, "b", "127.0.0.1:0")
	_, front, adm := startApp(t, fmt.Sprintf("services:\n  service1:\n    servers: \"%s, %s\"\n    cookie: connect.sid prefix nocache\n", a.addr, b.addr), nil)
	var browsers []*browser
	for range 4 {
		br := &browser{t: t}
		br.get(front + "/service1")
		br.get(front + "/service1")
		browsers = append(browsers, br)
	}
	a.srv.Close()
	for _, br := range browsers {
		status, body, sc := br.get(front + "/service1")
		if status != 200 {
			t.Fatalf("after the kill: %d %q", status, body)
		}
		if body != "b 3" && body != "b 1" {
			t.Errorf("after the kill: %q, want b 3 (was on b) or b 1 (moved)", body)
		}
		if body == "b 1" && !strings.Contains(sc, "~") {
			t.Errorf("moved client got Set-Cookie %q, want a prefixed one", sc)
		}
	}
	st := stats(t, adm).Services[0]
	if st.Sticky.Rebalanced != 2 || st.Responses["5xx"] != 0 {
		t.Errorf("stats %+v, want 2 rebalanced and no 5xx", st)
	}
	for _, sv := range st.Servers {
		if sv.Address == a.addr && (sv.State != "down" || sv.Failures == 0) {
			t.Errorf("killed server %+v, want down with failures", sv)
		}
	}
}

func TestDNSAnswersAddAndRemoveServers(t *testing.T) {
	t.Parallel()
	// Three "tasks" on one port, on 127.0.0.1, .2 and .3 as DNS answers them.
	first := startCountServer(t, "t1", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(first.addr)
	startCountServer(t, "t2", "127.0.0.2:"+port)
	startCountServer(t, "t3", "127.0.0.3:"+port)
	dns := &fakeDNS{m: map[string][]string{"tasks.service1": {"127.0.0.1", "127.0.0.2"}}}
	_, front, adm := startApp(t, "resolve_interval: 10ms\nservices:\n  service1:\n    servers: tasks.service1:"+port+"\n", dns)

	servers := func() []string {
		var out []string
		for _, s := range stats(t, adm).Services[0].Servers {
			out = append(out, s.Address+" "+s.State)
		}
		return out
	}
	if got := servers(); !slices.Equal(got, []string{"127.0.0.1:" + port + " up", "127.0.0.2:" + port + " up"}) {
		t.Fatalf("servers %v", got)
	}
	dns.set("tasks.service1", "127.0.0.2", "127.0.0.3")
	eventually(t, "127.0.0.3 joins and 127.0.0.1 leaves", func() bool {
		return slices.Equal(servers(), []string{"127.0.0.2:" + port + " up", "127.0.0.3:" + port + " up"})
	})
	seen := map[string]bool{}
	for range 4 {
		_, body, _ := (&browser{t: t}).get(front + "/service1")
		n, _, _ := strings.Cut(body, " ")
		seen[n] = true
	}
	if !seen["t2"] || !seen["t3"] || seen["t1"] {
		t.Errorf("answered by %v, want t2 and t3 only", seen)
	}
	dns.set("tasks.service1")
	eventually(t, "every server leaves", func() bool { return len(servers()) == 0 })
	status, body, _ := (&browser{t: t}).get(front + "/service1")
	if status != 503 || body != "no server available for service1\n" {
		t.Errorf("with no server: %d %q", status, body)
	}
}

func TestRunCheckAndFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("services:\n  service1:\n    servers: \"127.0.0.1:9001\"\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("services:\n  service1:\n    servers: \"127.0.0.1:9001\"\n    balance: fastest\n"), 0o600)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	ctx := context.Background()

	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"-check"}, env(map[string]string{"PROXY_CONFIG": good}), &out, &errOut); err != nil {
		t.Fatalf("-check on a good file: %v", err)
	}
	if !strings.Contains(out.String(), "good.yaml: ok") || !strings.Contains(out.String(), "service service1: */service1, */service1/* -> 127.0.0.1:9001") {
		t.Errorf("-check printed %q", out.String())
	}

	err := run(ctx, []string{"-config", bad, "-check"}, env(nil), &out, &errOut)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "bad.yaml:4: services.service1.balance") {
		t.Errorf("-check on a bad file: %v, want a usage error at bad.yaml:4", err)
	}

	errOut.Reset()
	if err := run(ctx, []string{"-h"}, env(nil), &out, &errOut); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	for _, want := range []string{"-config", "PROXY_CONFIG", "LISTEN", "ADMIN", "STATS_AUTH", "SERVER_ID_KEY", "LOG_FORMAT", "LOG_LEVEL", "SHUTDOWN_TIMEOUT", "-healthcheck", "-check", "maxconn", "retries", "resolve_interval", "timeout:", "check:", "virtual_host", "servers", "cookie", "balance", "health_check", "SIGHUP"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("-h does not mention %s", want)
		}
	}

	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SERVER_ID_KEY": "short"}, "SERVER_ID_KEY is 5 bytes"},
		{map[string]string{"STATS_AUTH": "nopassword"}, "STATS_AUTH: write user:password"},
		{map[string]string{"STATS_AUTH": "a:b", "STATS_AUTH_FILE": "/x"}, "keep one"},
		{map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{map[string]string{"SHUTDOWN_TIMEOUT": "soon"}, "SHUTDOWN_TIMEOUT"},
		{map[string]string{"LISTEN": "nowhere"}, "LISTEN"},
	} {
		tt.env["PROXY_CONFIG"] = good
		err := run(ctx, []string{"-check"}, env(tt.env), &out, &errOut)
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: %v, want a usage error naming %s", tt.env, err, tt.want)
		}
	}

	set, err := parseSettings([]string{"-admin", "off"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	set.configFile = good
	if cfg, err := loadConfig(set); err != nil || cfg.Admin != "" {
		t.Errorf("-admin off: admin %q, %v", cfg.Admin, err)
	}

	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("0123456789abcdef0123\n"), 0o600)
	set, err = parseSettings(nil, env(map[string]string{"SERVER_ID_KEY_FILE": keyFile}), io.Discard)
	if err != nil || string(set.idKey) != "0123456789abcdef0123" || set.idKeyDefault {
		t.Errorf("SERVER_ID_KEY_FILE: %q %v", set.idKey, err)
	}
}

// freePort returns a port nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRunReloadsOnSIGHUPAndDrains runs the whole program: it starts, a
// SIGHUP adds a replica, -healthcheck probes it, a slow request in flight
// finishes after the stop, and run returns nil. Not parallel: it signals
// the test process.
func TestRunReloadsOnSIGHUPAndDrains(t *testing.T) {
	a := startCountServer(t, "a", "127.0.0.1:0")
	b := startCountServer(t, "b", "127.0.0.1:0")
	release := make(chan struct{})
	slowLn, _ := net.Listen("tcp", "127.0.0.1:0")
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "slow done")
	})}
	go slow.Serve(slowLn)
	t.Cleanup(func() { slow.Close() })

	dir := t.TempDir()
	file := filepath.Join(dir, "proxy.yaml")
	listen, adminAddr := freePort(t), freePort(t)
	write := func(servers string) {
		os.WriteFile(file, []byte(fmt.Sprintf("listen: %q\nadmin: %q\nservices:\n  service1:\n    servers: %q\n  slow:\n    servers: %q\n", listen, adminAddr, servers, slowLn.Addr().String())), 0o600)
	}
	write(a.addr)
	env := map[string]string{"PROXY_CONFIG": file, "LOG_LEVEL": "error"}
	getenv := func(k string) string { return env[k] }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	logs := &lockedBuffer{}
	go func() { done <- run(ctx, nil, getenv, io.Discard, logs) }()
	adm := "http://" + adminAddr
	eventually(t, "the proxy answers /readyz", func() bool {
		resp, err := http.Get(adm + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if err := run(context.Background(), []string{"-healthcheck"}, getenv, io.Discard, io.Discard); err != nil {
		t.Errorf("-healthcheck on a running proxy: %v", err)
	}

	write(a.addr + ", " + b.addr)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	eventually(t, "the reload adds b", func() bool { return len(stats(t, adm).Services[0].Servers) == 2 })

	// A bad file on reload changes nothing.
	os.WriteFile(file, []byte("services: {service1: {servers: nope}}\n"), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	eventually(t, "the proxy to refuse the bad file", func() bool { return strings.Contains(logs.String(), "reload failed") })
	if n := len(stats(t, adm).Services); n != 2 {
		t.Errorf("after a bad reload %d services, want the 2 still running", n)
	}

	slowDone := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + listen + "/slow")
		if err != nil {
			slowDone <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slowDone <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	eventually(t, "the slow request is in flight", func() bool {
		for _, s := range stats(t, adm).Services {
			if s.Name == "slow" && len(s.Servers) == 1 && s.Servers[0].Active == 1 {
				return true
			}
		}
		return false
	})
	cancel() // SIGTERM
	eventually(t, "the listener closes", func() bool {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if got := <-slowDone; got != "200 slow done" {
		t.Errorf("request in flight during the drain: %q, want 200 slow done", got)
	}
	if err := <-done; err != nil {
		t.Errorf("run after SIGTERM: %v, want nil", err)
	}
	write(a.addr)
	if err := run(context.Background(), []string{"-healthcheck"}, getenv, io.Discard, io.Discard); err == nil {
		t.Error("-healthcheck on a stopped proxy succeeded")
	}
}

func TestMaxConnHoldsExtraConnections(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var open atomic.Int64
	l := newLimitListener(ln, 1, &open)
	defer l.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	c1, _ := net.Dial("tcp", ln.Addr().String())
	defer c1.Close()
	c2, _ := net.Dial("tcp", ln.Addr().String())
	defer c2.Close()
	first := <-accepted
	select {
	case <-accepted:
		t.Fatal("a second connection was accepted with maxconn 1")
	case <-time.After(50 * time.Millisecond):
	}
	if open.Load() != 1 {
		t.Errorf("%d connections counted, want 1", open.Load())
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was never accepted after the first closed")
	}
}

func TestRestartedReplicaComesBackAfterRiseChecks(t *testing.T) {
	t.Parallel()
	a, b := startCountServer(t, "a", "127.0.0.1:0"), startCountServer(t, "b", "127.0.0.1:0")
	_, front, adm := startApp(t, fmt.Sprintf("check: {interval: 20ms, rise: 2, fall: 2}\nservices:\n  service1:\n    servers: \"%s, %s\"\n    health_check: /healthz\n", a.addr, b.addr), nil)
	state := func(addr string) string {
		for _, s := range stats(t, adm).Services[0].Servers {
			if s.Address == addr {
				return s.State
			}
		}
		return "missing"
	}
	a.srv.Close()
	eventually(t, "the checks mark a down", func() bool { return state(a.addr) == "down" })
	for range 4 {
		if _, body, _ := (&browser{t: t}).get(front + "/service1"); !strings.HasPrefix(body, "b ") {
			t.Fatalf("with a down: %q", body)
		}
	}
	startCountServer(t, "a again", a.addr)
	eventually(t, "the checks bring a back", func() bool { return state(a.addr) == "up" })
	seen := map[string]bool{}
	for range 4 {
		_, body, _ := (&browser{t: t}).get(front + "/service1")
		seen[strings.TrimRight(body, " 0123456789")] = true
	}
	if !seen["a again"] {
		t.Errorf("the restarted replica got no traffic: %v", seen)
	}
}

func TestReloadAddsChangesAndRemovesServices(t *testing.T) {
	t.Parallel()
	s1, s2 := startCountServer(t, "one", "127.0.0.1:0"), startCountServer(t, "two", "127.0.0.1:0")
	a, front, adm := startApp(t, fmt.Sprintf("services:\n  service1:\n    servers: %q\n    cookie: connect.sid prefix\n", s1.addr), nil)
	br := &browser{t: t}
	br.get(front + "/service1")
	br.get(front + "/service1")

	cfg, err := ParseConfig("reload.yaml", []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
access_log: false
services:
  service1:
    servers: %q
    cookie: connect.sid prefix
    balance: leastconn
  service2:
    virtual_host: "*/two/*"
    servers: %q
`, s1.addr, s2.addr)))
	if err != nil {
		t.Fatal(err)
	}
	a.apply(cfg)
	if _, body, _ := br.get(front + "/service1"); body != "one 3" {
		t.Errorf("service1 after the reload: %q, want one 3 (session and server kept)", body)
	}
	if _, body, _ := (&browser{t: t}).get(front + "/two/x"); body != "two 1" {
		t.Errorf("the added service: %q", body)
	}
	st := stats(t, adm)
	if len(st.Services) != 2 || st.Services[0].Balance != "leastconn" || st.Services[0].Sticky.Hits != 2 {
		t.Errorf("stats after the reload: %+v", st.Services)
	}

	cfg2, _ := ParseConfig("reload.yaml", []byte(fmt.Sprintf("services:\n  service2:\n    virtual_host: \"*/two/*\"\n    servers: %q\n", s2.addr)))
	a.apply(cfg2)
	if status, _, _ := br.get(front + "/service1"); status != 404 {
		t.Errorf("a removed service answers %d, want 404", status)
	}
	if n := len(stats(t, adm).Services); n != 1 {
		t.Errorf("%d services after removing one, want 1", n)
	}
}

// lockedBuffer collects the proxy's log while it runs, for a test to poll.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
