package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
)

// recorder is a backend that keeps the raw head of every request it gets and
// answers each with what answer returns for it (the head as received).
type recorder struct {
	addr  string
	mu    sync.Mutex
	heads []string
}

func startRecorder(t *testing.T, answer func(head string) string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &recorder{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var head strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					r.mu.Lock()
					r.heads = append(r.heads, head.String())
					r.mu.Unlock()
					// Bodies are read by the answer's caller when it needs them: the
					// tests here send heads only, or want the server not to read.
					if _, err := io.WriteString(c, answer(head.String())); err != nil {
						return
					}
				}
			}()
		}
	}()
	return r
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.heads...)
}

func plainService(name string, addrs ...string) *forward.Service {
	pool := backend.NewPool(testIDs, backend.RoundRobin)
	pool.Update(addrs)
	return &forward.Service{Name: name, VirtualHost: "*/" + name + ", */" + name + "/*", Retries: 3, Pool: pool}
}

// ok answers 200 with the request line's path as the body.
func ok(head string) string {
	path := strings.Fields(head)[1]
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(path), path)
}

func TestMalformedHeadsAreRefusedAndNeverReachTheServer(t *testing.T) {
	t.Parallel()
	rec := startRecorder(t, ok)
	front := startEngine(t, Options{}, plainService("s", rec.addr))
	tests := []struct {
		name, raw string
		status    int
	}{
		{"CL and TE together", "POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"two different Content-Length", "POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
		{"an overflowing Content-Length", "POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551617\r\n\r\n", 400},
		{"TE other than a final chunked", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501},
		{"a duplicate TE", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE on HTTP/1.0", "POST /s HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"obs-fold", "GET /s HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", 400},
		{"a bare LF in a value", "GET /s HTTP/1.1\r\nHost: a\r\nX: 1\n2\r\n\r\n", 400},
		{"a bare CR in a value", "GET /s HTTP/1.1\r\nHost: a\r\nX: 1\r2\r\n\r\n", 400},
		{"a NUL in a name", "GET /s HTTP/1.1\r\nHost: a\r\nX\x00Y: 1\r\n\r\n", 400},
		{"a space before the colon", "GET /s HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n", 400},
		{"a bad chunk size", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n", 400},
		{"a bad chunk extension", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;=x\r\nhello\r\n0\r\n\r\n", 400},
		{"no Host on HTTP/1.1", "GET /s HTTP/1.1\r\n\r\n", 400},
		{"a duplicate Host", "GET /s HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"HTTP/2.0", "GET /s HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"HTTP/0.9", "GET /s\r\n\r\n", 400},
		{"a malformed escape in the path", "GET /s/%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	}
	for _, tt := range tests {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(c, tt.raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("%s: %v, want %d", tt.name, err, tt.status)
			c.Close()
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status || !resp.Close {
			t.Errorf("%s: got %d (close %v), want %d and the connection closed", tt.name, resp.StatusCode, resp.Close, tt.status)
		}
		c.Close()
	}
	if got := rec.got(); len(got) != 0 {
		t.Errorf("the server saw %d requests, want none: %q", len(got), got)
	}
}

func TestPipelinedRequestsAreAnsweredInOrder(t *testing.T) {
	t.Parallel()
	rec := startRecorder(t, ok)
	front := startEngine(t, Options{}, plainService("s", rec.addr))
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	var all strings.Builder
	for i := range 5 {
		fmt.Fprintf(&all, "GET /s/%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
	}
	io.WriteString(c, all.String()) // one write: five requests
	br := bufio.NewReader(c)
	for i := range 5 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprintf("/s/%d", i); string(b) != want {
			t.Errorf("answer %d: %q, want %q", i, b, want)
		}
	}
}

func TestAnEarlyAnswerNeverLetsTheBodyBeReadAsARequest(t *testing.T) {
	t.Parallel()
	// The server answers at once, without reading the body (which holds what
	// looks like requests), and then drains its connection. Nothing of the body
	// may come back as an answer, nor reach a server as a request of its own.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	conns := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns++
			mu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					if line, err := br.ReadString('\n'); err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				io.Copy(io.Discard, br)
			}()
		}
	}()
	front := startEngine(t, Options{}, plainService("s", ln.Addr().String()))
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	smuggled := strings.Repeat("GET /s/smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 2000) // 74 kB: streamed, not buffered
	fmt.Fprintf(c, "POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", len(smuggled))
	go io.WriteString(c, smuggled)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Whatever comes next is not an answer to a smuggled request: the proxy ends
	// the connection, whose rest it cannot trust.
	if resp2, err := http.ReadResponse(br, nil); err == nil {
		t.Errorf("a second answer %s on the connection, want it closed", resp2.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Errorf("the server got %d connections, want the POST's one only", conns)
	}
}

func TestHopByHopFieldsGoAndEveryOtherPassesInOrder(t *testing.T) {
	t.Parallel()
	rec := startRecorder(t, func(string) string {
		return "HTTP/1.1 200 OK\r\nX-B: 1\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Connection: x\r\nTE: gzip\r\nUpgrade: h2c\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-A: 2\r\nContent-Length: 0\r\n\r\n"
	})
	front := startEngine(t, Options{}, plainService("s", rec.addr))
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, "GET /s HTTP/1.1\r\nHost: a\r\nX-Z: 1\r\nConnection: X-Hop\r\nX-Hop: h\r\nKeep-Alive: 5\r\n"+
		"Proxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: websocket\r\nAccept: a\r\nAccept: b\r\n"+
		"X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Host: evil\r\nX-Y: 2\r\n\r\n")
	br := bufio.NewReader(c)
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	got := rec.got()
	if len(got) != 1 {
		t.Fatalf("the server got %d requests", len(got))
	}
	wantReq := "GET /s HTTP/1.1\r\nHost: a\r\nX-Z: 1\r\nTE: trailers\r\nAccept: a\r\nAccept: b\r\nX-Y: 2\r\n" +
		"X-Forwarded-For: 192.0.2.1, 127.0.0.1\r\nX-Forwarded-Host: a\r\nX-Forwarded-Proto: http\r\n\r\n"
	if got[0] != wantReq {
		t.Errorf("the server got\n%q\nwant\n%q", got[0], wantReq)
	}
	wantResp := "HTTP/1.1 200 OK\r\nX-B: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-A: 2\r\nContent-Length: 0\r\n\r\n"
	if head.String() != wantResp {
		t.Errorf("the client got\n%q\nwant\n%q", head.String(), wantResp)
	}
}

func TestAnUnknownLengthAnswerStreamsAndEndsTheConnection(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	release := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nfirst\n") // no length: it ends with the connection
		<-release
		io.WriteString(c, "second\n")
	}()
	front := startEngine(t, Options{}, plainService("s", ln.Addr().String()))
	resp, err := http.Get("http://" + front + "/s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "first\n" {
		t.Fatalf("first line %q, %v: want it before the server has finished", line, err)
	}
	close(release)
	if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
		t.Errorf("rest %q", rest)
	}
	if !resp.Close {
		t.Error("the answer's length was known only from the close: want Connection: close")
	}
}

// TestLargeBodiesStreamWithBoundedMemory sends 256 MB up and 256 MB down through the
// engine, the download read slowly, and checks the heap stays small: bodies pass
// through fixed buffers, never whole.
func TestLargeBodiesStreamWithBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves half a gigabyte")
	}
	const size = 256 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		n, _ := io.CopyN(io.Discard, br, size)
		got <- n
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		io.CopyN(c, zeros{}, size)
	}()
	front := startEngine(t, Options{}, plainService("s", ln.Addr().String()))
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var before, peak runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan struct{})
	go func() { // sample the heap while the bodies move
		defer close(done)
		var m runtime.MemStats
		for range time.Tick(50 * time.Millisecond) {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.HeapInuse {
				peak = m
			}
			select {
			case <-got:
				return
			default:
			}
		}
	}()
	fmt.Fprintf(c, "POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
	if _, err := io.CopyN(c, zeros{}, size); err != nil {
		t.Fatal(err)
	}
	<-done
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A slow reader: small reads with pauses, at the start of the download.
	buf := make([]byte, 4096)
	for range 20 {
		resp.Body.Read(buf)
		time.Sleep(5 * time.Millisecond) // the reader's pace
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	if n+20*4096 < size {
		t.Errorf("downloaded %d bytes, want %d", n, size)
	}
	if grew := int64(peak.HeapInuse) - int64(before.HeapInuse); grew > 16<<20 {
		t.Errorf("the heap grew by %d MB while 256 MB went up, want a few MB at most", grew>>20)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestSlowHeadsAndIdleClientsAreCut: the header timeout (408) and the idle
// keep-alive timeout.
func TestSlowHeadsAndIdleClientsAreCut(t *testing.T) {
	t.Parallel()
	rec := startRecorder(t, ok)
	front := startEngine(t, Options{HeaderTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}, plainService("s", rec.addr))
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, "GET /s HTTP/1.1\r\nHost: a\r\n") // and never the end
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusRequestTimeout || time.Since(start) > time.Second {
		t.Errorf("a head that never ends: %v %v after %v, want 408 after about 200ms", resp, err, time.Since(start))
	}
	c2, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	start = time.Now()
	c2.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := c2.Read(make([]byte, 1)); err != io.EOF || time.Since(start) > time.Second {
		t.Errorf("an idle client: read %d, %v after %v, want the connection closed after about 300ms", n, err, time.Since(start))
	}
	if bytes.Contains([]byte(strings.Join(rec.got(), "")), []byte("GET")) {
		t.Error("the unfinished head reached the server")
	}
}

// TestARequestHeldByAServerMarkedDownGoesToAnother: a server cut off with a request
// in flight (its node lost, say) is marked down by its checks; the request waiting
// for it is given up on then, and a GET goes to another server, rather than wait for
// timeout.server.
func TestARequestHeldByAServerMarkedDownGoesToAnother(t *testing.T) {
	t.Parallel()
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
			go io.Copy(io.Discard, c) // takes the request, never answers
		}
	}()
	good := startRecorder(t, ok)
	svc := plainService("s", hung.Addr().String(), good.addr)
	front := startEngine(t, Options{ServerTimeout: time.Minute}, svc)
	var onHung *backend.Backend
	for _, b := range svc.Pool.Backends() {
		if b.Addr() == hung.Addr().String() {
			onHung = b
		}
	}
	// Round robin: one of the first two requests goes to the hung server.
	answered := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := http.Get("http://" + front + "/s")
			if err != nil {
				answered <- 0
				return
			}
			resp.Body.Close()
			answered <- resp.StatusCode
		}()
	}
	first := <-answered
	start := time.Now()
	onHung.SetUp(false) // as its health checks would
	select {
	case second := <-answered:
		if first != 200 || second != 200 || time.Since(start) > 2*time.Second {
			t.Errorf("got %d and %d, the second %v after the server went down; want both 200 within a second", first, second, time.Since(start))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request held by the server marked down still waits")
	}
}
