package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// The hostile clients of issue 12, each sent as raw bytes to both engines, and what
// a normal client (and the server behind) sees meanwhile.

// hostileLimits are short bounds, so that the tests run in seconds.
const hostileLimits = `timeout: {http_request: 300ms, body: 300ms, server: 300ms, client: 2s}
body_min_rate: 1000
check: {interval: 50ms, timeout: 200ms, rise: 2, fall: 2}
`

// bodyServer reads every request's body whole before it answers, and remembers
// what it got: how the tests see what reached a server.
type bodyServer struct {
	addr    string
	mu      sync.Mutex
	bodies  []string
	errs    []error
	headers []http.Header
	hosts   []string
}

func startBodyServer(t *testing.T) *bodyServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &bodyServer{addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok")
			return
		}
		b, err := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies, s.errs = append(s.bodies, string(b)), append(s.errs, err)
		s.headers, s.hosts = append(s.headers, r.Header.Clone()), append(s.hosts, r.Host)
		s.mu.Unlock()
		fmt.Fprintf(w, "got %d bytes", len(b))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// cut counts the requests whose body the server could not read whole.
func (s *bodyServer) cut() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, err := range s.errs {
		if err != nil {
			n++
		}
	}
	return n
}

func (s *bodyServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

// last is the last request the server got: its body, headers, Host and the error
// reading its body.
func (s *bodyServer) last() (body string, h http.Header, host string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bodies) == 0 {
		return "", nil, "", nil
	}
	i := len(s.bodies) - 1
	return s.bodies[i], s.headers[i], s.hosts[i], s.errs[i]
}

// rawConn connects to a proxy's URL from the local address ip.
func rawConn(t *testing.T, ip, front string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", strings.TrimPrefix(front, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAnswer reads one answer from c within limit; status 0 when there is none.
func readAnswer(t *testing.T, c net.Conn, limit time.Duration) (status int, body string, closed bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, "", true
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), resp.Close
}

// normalClientAnswered checks that a normal client, from 127.0.0.1, gets its page
// within a second.
func normalClientAnswered(t *testing.T, front string) {
	t.Helper()
	start := time.Now()
	cl := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Get(front + "/service1")
	if err != nil {
		t.Fatalf("a normal client meanwhile: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a normal client meanwhile: %d %q, want 200", resp.StatusCode, b)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a normal client meanwhile waited %v", took)
	}
}

// responses is one service's answers by class, from /stats.
func responses(t *testing.T, adm string) map[string]uint64 {
	t.Helper()
	return stats(t, adm).Services[0].Responses
}

func TestABodyThatNeverComesGets408AndIsNotBlamedOnTheServer(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		srv := startBodyServer(t)
		_, front, adm := startApp(t, engine, hostileLimits+fmt.Sprintf("services:\n  service1:\n    servers: %q\n", srv.addr), nil)
		tests := []struct{ name, head, body string }{
			{"a length and no body", "POST /service1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", ""},
			{"a chunked body that stops", "POST /service1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhello\r\n"},
		}
		for _, tt := range tests {
			c := rawConn(t, "127.0.0.2", front)
			start := time.Now()
			io.WriteString(c, tt.head+tt.body)
			normalClientAnswered(t, front)
			status, _, closed := readAnswer(t, c, 3*time.Second)
			if took := time.Since(start); status != http.StatusRequestTimeout || !closed || took > 2*time.Second {
				t.Errorf("%s: got %d (close %v) after %v, want 408 and the connection closed within about timeout.body", tt.name, status, closed, took)
			}
		}
		// A small body of known length is read whole before any server is chosen:
		// the server never saw that one. The chunked one streamed, and the proxy
		// closed the server's connection under it.
		eventually(t, "the server saw the chunked body cut short", func() bool { return srv.cut() == 1 })
		if n := srv.requests(); n != 1+len(tests) {
			t.Errorf("the server got %d requests, want the chunked one and the normal clients' %d", n, len(tests))
		}
		if got := responses(t, adm); got["4xx"] != 2 || got["5xx"] != 0 {
			t.Errorf("answers %v, want two 4xx and no 5xx", got)
		}
	})
}

func TestAnUploadBelowTheMinimumRateIsCutOneThatKeepsMovingIsNot(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		srv := startBodyServer(t)
		_, front, _ := startApp(t, engine, hostileLimits+fmt.Sprintf("services:\n  service1:\n    servers: %q\n", srv.addr), nil)
		send := func(chunk int, every time.Duration, total int) (status int, took time.Duration) {
			c := rawConn(t, "127.0.0.2", front)
			start := time.Now()
			fmt.Fprintf(c, "POST /service1 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", total)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for sent := 0; sent < total; sent += chunk {
					if _, err := c.Write([]byte(strings.Repeat("x", chunk))); err != nil {
						return
					}
					time.Sleep(every) // the client's pace: what the test is about
				}
			}()
			status, _, _ = readAnswer(t, c, 10*time.Second)
			took = time.Since(start)
			c.Close()
			<-done
			return status, took
		}
		// 100 B/s, a tenth of body_min_rate: cut soon after timeout.body.
		if status, took := send(10, 100*time.Millisecond, 10000); status != http.StatusRequestTimeout || took > 2*time.Second {
			t.Errorf("an upload at 100 B/s: %d after %v, want 408 within 2s", status, took)
		}
		// 10 kB/s in pauses shorter than timeout.body: it takes 2s, and gets through.
		if status, took := send(1000, 100*time.Millisecond, 20000); status != 200 || took < 1500*time.Millisecond {
			t.Errorf("an upload at 10 kB/s: %d after %v, want 200 after about 2s", status, took)
		}
		if body, _, _, err := srv.last(); len(body) != 20000 || err != nil {
			t.Errorf("the server got %d bytes (%v), want the whole 20000", len(body), err)
		}
	})
}

func TestMalformedChunkedBodiesAreTheClientsFault(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		srv := startBodyServer(t)
		logs := &proc.Buffer{}
		_, front, adm := startAppLogging(t, engine, "access_log: false\n"+hostileLimits+fmt.Sprintf("services:\n  service1:\n    servers: %q\n", srv.addr), nil, logs)
		bodies := []struct{ name, body string }{
			{"bad hex", "zz\r\nhello\r\n0\r\n\r\n"},
			{"an overflowing size", "fffffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
			{"0x5", "0x5\r\nhello\r\n0\r\n\r\n"},
			{"a bare LF chunk line", "5\nhello\r\n0\r\n\r\n"},
			{"too much data", "5\r\nhello, world\r\n0\r\n\r\n"},
			{"a bad trailer", "5\r\nhello\r\n0\r\nX y\r\n\r\n"},
		}
		for _, tt := range bodies {
			c := rawConn(t, "127.0.0.2", front)
			io.WriteString(c, "POST /service1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+tt.body)
			if status, _, _ := readAnswer(t, c, 3*time.Second); status != http.StatusBadRequest {
				t.Errorf("%s: got %d, want 400", tt.name, status)
			}
		}
		got := responses(t, adm)
		if got["4xx"] != uint64(len(bodies)) || got["5xx"] != 0 {
			t.Errorf("answers %v, want %d 4xx and no 5xx", got, len(bodies))
		}
		if strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("a client's bad body was logged as a warning:\n%s", logs)
		}
	})
}

func TestIdleKeepAliveConnectionsDoNotKeepNewClientsOut(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		srv := startBodyServer(t)
		_, front, _ := startApp(t, engine, hostileLimits+"maxconn: 5\n"+fmt.Sprintf("services:\n  service1:\n    servers: %q\n", srv.addr), nil)
		for range 5 {
			c := rawConn(t, "127.0.0.2", front)
			io.WriteString(c, "GET /service1 HTTP/1.1\r\nHost: x\r\n\r\n")
			if status, _, closed := readAnswer(t, c, 2*time.Second); status != 200 || closed {
				t.Fatalf("a keep-alive client: %d (close %v)", status, closed)
			}
		}
		// Five connections idle in keep-alive hold every slot: a new client still
		// gets its page, an idle one makes room.
		normalClientAnswered(t, front)
	})
}

func TestWithEverySlotBusyANewClientGets503AtOnce(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		srv := startBodyServer(t)
		_, front, adm := startApp(t, engine, "timeout: {body: 5s}\nmaxconn: 3\n"+fmt.Sprintf("services:\n  service1:\n    servers: %q\n", srv.addr), nil)
		for range 3 {
			c := rawConn(t, "127.0.0.2", front)
			io.WriteString(c, "POST /service1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nx")
		}
		eventually(t, "the three slow uploads reached the server", func() bool { return stats(t, adm).Connections != nil && *stats(t, adm).Connections == 3 })
		start := time.Now()
		c := rawConn(t, "127.0.0.3", front)
		io.WriteString(c, "GET /service1 HTTP/1.1\r\nHost: x\r\n\r\n")
		status, _, closed := readAnswer(t, c, 3*time.Second)
		if took := time.Since(start); status != http.StatusServiceUnavailable || !closed || took > time.Second {
			t.Errorf("a client over maxconn: %d (close %v) after %v, want 503 with Connection: close at once", status, closed, took)
		}
		if n := stats(t, adm).Rejected["maxconn"]; n != 1 {
			t.Errorf("/stats rejected maxconn %d, want 1", n)
		}
	})
}

func TestOneAddressOverItsCapGets429AndOthersAreServed(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		srv := startBodyServer(t)
		_, front, _ := startApp(t, engine, "timeout: {body: 5s}\nmaxconn_per_ip: 3\n"+fmt.Sprintf("services:\n  service1:\n    servers: %q\n", srv.addr), nil)
		for range 3 {
			c := rawConn(t, "127.0.0.2", front)
			io.WriteString(c, "POST /service1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nx")
		}
		var status int
		// The three may still be on their way: the fourth is refused once they
		// are in.
		eventually(t, "a fourth connection from 127.0.0.2 is refused with 429", func() bool {
			c := rawConn(t, "127.0.0.2", front)
			io.WriteString(c, "GET /service1 HTTP/1.1\r\nHost: x\r\n\r\n")
			status, _, _ = readAnswer(t, c, 2*time.Second)
			c.Close()
			return status == http.StatusTooManyRequests
		})
		normalClientAnswered(t, front)
	})
}

func TestTheServerNeverSeesAnAddressOfOursAsHost(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		srv := startBodyServer(t)
		_, front, _ := startApp(t, engine, "server_name: proxy.example\n"+fmt.Sprintf("services:\n  service1:\n    servers: %q\n", srv.addr), nil)
		c := rawConn(t, "127.0.0.1", front)
		io.WriteString(c, "GET /service1 HTTP/1.1\r\nHost: \r\n\r\n")
		if status, _, _ := readAnswer(t, c, 2*time.Second); status != http.StatusBadRequest {
			t.Errorf("HTTP/1.1 with an empty Host: %d, want 400", status)
		}
		c = rawConn(t, "127.0.0.1", front)
		io.WriteString(c, "GET /service1 HTTP/1.0\r\n\r\n")
		status, body, _ := readAnswer(t, c, 2*time.Second)
		_, h, host, _ := srv.last()
		if status != 200 || host != "proxy.example" {
			t.Fatalf("HTTP/1.0 without Host: %d %q, server got Host %q, want 200 and server_name", status, body, host)
		}
		if v, ok := h["X-Forwarded-Host"]; ok {
			t.Errorf("X-Forwarded-Host %q sent for a client that named no host", v)
		}
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto"} {
			if h.Get(k) == "" {
				t.Errorf("%s empty or missing", k)
			}
		}
		if strings.Contains(body, srv.addr) {
			t.Errorf("the answer shows the server's address: %q", body)
		}
	})
}

func TestAClientThatHalfClosesDuringItsBodyGets400(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		srv := startBodyServer(t)
		_, front, adm := startApp(t, engine, hostileLimits+fmt.Sprintf("services:\n  service1:\n    servers: %q\n", srv.addr), nil)
		c := rawConn(t, "127.0.0.2", front)
		io.WriteString(c, "POST /service1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
		c.(*net.TCPConn).CloseWrite()
		if status, _, _ := readAnswer(t, c, 3*time.Second); status != http.StatusBadRequest {
			t.Errorf("got %d, want 400 (the body was cut short by the client)", status)
		}
		if got := responses(t, adm); got["5xx"] != 0 {
			t.Errorf("answers %v, want no 5xx", got)
		}
	})
}

func TestAHungServerIsTakenOutUntilItAnswersAgain(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		// It accepts connections and reads, and never answers: a TCP check
		// alone would keep it in rotation.
		hung, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { hung.Close() })
		go func() {
			for {
				c, err := hung.Accept()
				if err != nil {
					return
				}
				go io.Copy(io.Discard, c)
			}
		}()
		good := startBodyServer(t)
		_, front, adm := startApp(t, engine, hostileLimits+fmt.Sprintf("services:\n  service1:\n    servers: \"%s, %s\"\n", hung.Addr(), good.addr), nil)
		timeouts := 0
		for range 6 {
			resp, err := http.Get(front + "/service1")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
			case http.StatusGatewayTimeout:
				timeouts++
			default:
				t.Errorf("got %d", resp.StatusCode)
			}
		}
		if timeouts != 1 {
			t.Errorf("%d of 6 requests timed out, want the first one to the hung server only", timeouts)
		}
		// Checks keep running; the hung server passes a TCP connect, not an HTTP
		// request: it must stay out.
		deadline := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(deadline) {
			for _, sv := range stats(t, adm).Services[0].Servers {
				if sv.Address == hung.Addr().String() && (sv.State != "down" || sv.Failures == 0) {
					t.Fatalf("the hung server is %s with %d failures, want down with its failure counted", sv.State, sv.Failures)
				}
			}
			time.Sleep(50 * time.Millisecond) // checks run every 50ms: watch several
		}
	})
}

func TestContentLengthWithTransferEncodingEndsTheConnection(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		srv := startBodyServer(t)
		_, front, _ := startApp(t, engine, fmt.Sprintf("services:\n  service1:\n    servers: %q\n", srv.addr), nil)
		c := rawConn(t, "127.0.0.1", front)
		io.WriteString(c, "POST /service1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("after the answer: %v, want the connection closed (RFC 9112 §6.3)", err)
		}
		switch engine {
		case "fast": // refused outright
			if resp.StatusCode != http.StatusBadRequest || srv.requests() != 0 {
				t.Errorf("got %d, server saw %d requests, want 400 and nothing forwarded", resp.StatusCode, srv.requests())
			}
		case "std": // net/http reads it as chunked and drops the length
			if _, h, _, _ := srv.last(); resp.StatusCode != 200 || h.Get("Content-Length") != "" {
				t.Errorf("got %d, server saw Content-Length %q, want 200 without it", resp.StatusCode, h.Get("Content-Length"))
			}
		}
	})
}

func TestAServerDyingMidBodyIsLoggedAsItsFault(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		var served atomic.Int32
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					buf := make([]byte, 4096)
					c.Read(buf)
					served.Add(1)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nhalf")
				}()
			}
		}()
		logs := &proc.Buffer{}
		_, front, _ := startAppLogging(t, engine, "access_log: true\n"+fmt.Sprintf("services:\n  service1:\n    servers: %q\n", ln.Addr()), nil, logs)
		if resp, err := http.Get(front + "/service1"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		eventually(t, "the access log line", func() bool { return strings.Contains(logs.String(), "msg=request ") })
		line := ""
		for l := range strings.Lines(logs.String()) {
			if strings.Contains(l, "msg=request ") {
				line = l
			}
		}
		if !strings.Contains(line, "status=502") || !strings.Contains(line, "aborted=true") {
			t.Errorf("access log %q, want status=502 aborted=true", line)
		}
	})
}
