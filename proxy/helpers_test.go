package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/browser"
	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/admin"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
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

// visitor is one browser (internal/browser: its own cookie jar) that fails the test
// when a request gets no answer.
type visitor struct {
	t *testing.T
	b *browser.Browser
}

func newVisitor(t *testing.T) *visitor {
	b := browser.New(browser.Options{})
	t.Cleanup(b.CloseIdleConnections)
	return &visitor{t: t, b: b}
}

// get returns the answer's status, body and Set-Cookie header.
func (v *visitor) get(url string) (status int, body string, setCookie string) {
	v.t.Helper()
	resp, data, err := v.b.Get(context.Background(), url, nil)
	if err != nil {
		v.t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(data), resp.Header.Get("Set-Cookie")
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

// engines are the values of the engine: key; the app's tests run on each.
var engines = []string{"std", "fast"}

// eachEngine runs test once per engine, in parallel.
func eachEngine(t *testing.T, test func(t *testing.T, engine string)) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e, func(t *testing.T) {
			t.Parallel()
			test(t, e)
		})
	}
}

// startApp runs the proxy of the given config (listen and admin on port 0) on
// engine until the test ends. It returns the proxy's and the admin's base URLs.
func startApp(t *testing.T, engine, yaml string, dns *fakeDNS) (a *app, front, adm string) {
	t.Helper()
	return startAppLogging(t, engine, "access_log: false\n"+yaml, dns, io.Discard)
}

// startAppLogging is startApp with every log line, debug included, written to logs
// (and no access_log: key added: the config says).
func startAppLogging(t *testing.T, engine, yaml string, dns *fakeDNS, logs io.Writer) (a *app, front, adm string) {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte("engine: "+engine+"\nlisten: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\n"+yaml))
	if err != nil {
		t.Fatal(err)
	}
	level := slog.LevelDebug
	if logs == io.Discard {
		level = 8
	}
	logger := cli.Log{Format: "text", Level: level}.New(logs)
	var res interface {
		LookupHost(context.Context, string) ([]string, error)
	}
	if dns != nil {
		res = dns
	}
	a = newApp(testSettings, cfg, logger, res)
	serveApp(t, a, nil)
	return a, "http://" + a.addr("listen"), "http://" + a.addr("admin")
}

// serveApp opens a's listeners and serves until the test ends, reloading at every
// value of reload.
func serveApp(t *testing.T, a *app, reload <-chan os.Signal) {
	t.Helper()
	if err := a.listen(); err != nil {
		a.stop()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, reload) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
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

// getBody is the body of the answer to GET url, whatever its status.
func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if _, err := probe.Within(5*time.Second, what, cond); err != nil {
		t.Fatalf("timed out waiting until %s", what)
	}
}

// freeAddr returns an address of 127.0.0.1 nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := proc.FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
