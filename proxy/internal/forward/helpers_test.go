package forward_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is a real HTTP server on 127.0.0.1 that behaves like the
// tutorial's services: it answers its name and a per-session counter, and
// sets connect.sid when it starts a session (as express-session does).
type testServer struct {
	name string
	addr string
	srv  *http.Server

	mu       sync.Mutex
	sessions map[string]int
	last     *http.Request // the last request received, for assertions
	lastBody string
}

// answer is what a testServer says.
type answer struct {
	Name   string `json:"name"`
	Count  int    `json:"count"`
	Cookie string `json:"cookie"` // the Cookie header it received
}

func startServer(t testing.TB, name string) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{name: name, addr: ln.Addr().String(), sessions: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/", s.count)
	s.srv = &http.Server{Handler: mux}
	go s.srv.Serve(ln)
	t.Cleanup(s.kill)
	return s
}

func (s *testServer) count(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.last = r.Clone(r.Context())
	s.lastBody = string(body)
	sid := ""
	if c, err := r.Cookie("connect.sid"); err == nil {
		if _, ok := s.sessions[c.Value]; ok {
			sid = c.Value
		}
	}
	if sid == "" {
		sid = "s:" + rand.Text()
		http.SetCookie(w, &http.Cookie{Name: "connect.sid", Value: sid, Path: "/", HttpOnly: true})
	}
	s.sessions[sid]++
	n := s.sessions[sid]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(answer{Name: s.name, Count: n, Cookie: r.Header.Get("Cookie")})
}

// kill stops the server at once: listener and every connection closed, so
// the next connection is refused, as when a container stops.
func (s *testServer) kill() { s.srv.Close() }

func (s *testServer) lastRequest() (*http.Request, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.lastBody
}

// client is one browser: it keeps the connect.sid cookie it was given.
type client struct {
	t      testing.TB
	base   string
	cookie string // "connect.sid=<value as set>"
	http   *http.Client
}

func newClient(t testing.TB, base string) *client {
	return &client{t: t, base: base, http: &http.Client{Transport: &http.Transport{}}}
}

type reply struct {
	status    int
	answer    answer
	setCookie string
	header    http.Header
	body      string
}

func (c *client) get(path string) reply {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	if c.cookie != "" {
		req.Header.Set("Cookie", c.cookie)
	}
	return c.do(req)
}

func (c *client) do(req *http.Request) reply {
	c.t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if sc := resp.Header.Get("Set-Cookie"); sc != "" {
		r.setCookie = sc
		c.cookie, _, _ = strings.Cut(sc, ";")
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.answer); err != nil {
			c.t.Fatalf("bad answer %q: %v", b, err)
		}
	}
	return r
}

// cookieID is the server id in the client's cookie ("" when none).
func (c *client) cookieID() string {
	_, v, _ := strings.Cut(c.cookie, "=")
	id, _, ok := strings.Cut(v, "~")
	if !ok {
		return ""
	}
	return id
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// rawRequest writes req as it is on a new connection to the proxy at url, shuts
// the connection's write side after it when halfClose, and returns the
// answer's status and body.
func rawRequest(t testing.TB, url, req string, halfClose bool) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, req)
	if halfClose {
		conn.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.(*bytes.Buffer).String()
}

func (l *lockedWriter) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.(*bytes.Buffer).Reset()
}
