package live

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
)

// smallBuffers makes the server's side of every connection keep at most a few
// KiB unsent, so that a viewer that reads nothing fills it within a few messages
// (the kernel's default would hold megabytes).
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// sseEvent is one event of a stream: its name and data.
type sseEvent struct{ name, data string }

// readEvents sends the events of an SSE stream to the returned channel until
// the stream ends.
func readEvents(r *bufio.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 1024)
	go func() {
		defer close(ch)
		var ev sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if ev.name != "" || ev.data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data += line[len("data: "):]
			}
		}
	}()
	return ch
}

// busyHub is a hub over one service whose recorder sees 300 visitors without
// pause (so that every message is large) until the test ends; requests counts
// the requests recorded.
func busyHub(t *testing.T, interval time.Duration) (h *Hub, requests *atomic.Int64) {
	t.Helper()
	pool := backend.NewPool(backend.NewIDs([]byte("k")), backend.RoundRobin)
	pool.Update([]string{"10.0.0.1:80", "10.0.0.2:80"})
	var rec *Recorder
	h = NewHub(Options{Interval: interval, Sources: func() []Source {
		return []Source{{Name: "service1", Cookie: "connect.sid", Pool: pool, Live: rec}}
	}})
	rec = h.Recorder("service1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	requests = new(atomic.Int64)
	go func() { h.Run(ctx); close(done) }()
	go func() {
		ids := []string{pool.Backends()[0].ID(), pool.Backends()[1].ID()}
		for i := uint64(0); ctx.Err() == nil; i++ {
			rec.Request(Visitor{Cookie: i%300 + 1}, ids[i%2], Hit, 200)
			requests.Add(1)
			if i%300 == 0 {
				time.Sleep(time.Millisecond) // leave the emitter a core
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return h, requests
}

func serve(t *testing.T, h *Hub) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(func() { h.Close(); srv.Close() })
	return srv.Listener.Addr().String()
}

func TestSlowViewerMissesMessagesAndCatchesUpWithoutSlowingAnyone(t *testing.T) {
	h, requests := busyHub(t, 10*time.Millisecond)
	addr := serve(t, h)

	// The slow viewer asks for the stream and then reads nothing.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	_ = slow.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := slow.Write([]byte("GET /live/events HTTP/1.1\r\nHost: t\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// The fast viewer reads everything.
	resp, err := http.Get("http://" + addr + "/live/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("got Content-Type %q, want text/event-stream", ct)
	}
	fast := readEvents(bufio.NewReader(resp.Body))
	var fastStates atomic.Int64
	go func() {
		for ev := range fast {
			if ev.name == "state" {
				fastStates.Add(1)
			}
		}
	}()

	// One deadline for the waits below and the catch-up: each gets the time left.
	deadline := time.Now().Add(20 * time.Second)
	if _, err := probe.Within(time.Until(deadline), "a message dropped for the slow viewer", func() bool {
		return h.stats().Dropped != 0
	}); err != nil {
		t.Fatalf("the slow viewer never missed a message: %+v", h.stats())
	}
	// While the slow viewer stalls, the others go on: requests are recorded and
	// the fast viewer gets its messages.
	reqs, states := requests.Load(), fastStates.Load()
	if _, err := probe.Within(time.Until(deadline), "10000 requests and 20 messages to the fast viewer", func() bool {
		return requests.Load() >= reqs+10000 && fastStates.Load() >= states+20
	}); err != nil {
		t.Fatalf("with a viewer stalled: %d requests recorded and %d messages to the fast viewer since, want 10000 and 20",
			requests.Load()-reqs, fastStates.Load()-states)
	}
	if got := h.stats().Viewers; got != 2 {
		t.Errorf("got %d viewers, want 2 (a slow one is not dropped before its write timeout)", got)
	}

	// Reading again, the slow viewer is told what it missed, then gets the
	// whole state.
	br := bufio.NewReader(slow)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("got %q %v, want a 200", line, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	// The stream is chunked: read it through net/http's decoder.
	events := readEvents(bufio.NewReader(httputil.NewChunkedReader(br)))
	sawDropped := false
	for ev := range events {
		if time.Now().After(deadline) {
			t.Fatal("the slow viewer never caught up")
		}
		if ev.name == "dropped" {
			var d struct{ Dropped int }
			if err := json.Unmarshal([]byte(ev.data), &d); err != nil || d.Dropped < 1 {
				t.Fatalf("got dropped %q, want a count", ev.data)
			}
			sawDropped = true
			continue
		}
		if sawDropped && ev.name == "state" {
			var m Message
			if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
				t.Fatal(err)
			}
			if m.Full {
				if n := len(m.Services[0].Visitors); n != 300 {
					t.Errorf("the catch-up message holds %d visitors, want all 300", n)
				}
				return
			}
		}
	}
	t.Fatal("the slow viewer's stream ended before it caught up")
}

func TestTooManyViewersAreRefused(t *testing.T) {
	h := NewHub(Options{MaxViewers: 1, Sources: func() []Source { return nil }})
	addr := serve(t, h)
	first, err := http.Get("http://" + addr + "/live/events")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	second, err := http.Get("http://" + addr + "/live/events")
	if err != nil {
		t.Fatal(err)
	}
	second.Body.Close()
	if second.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("got %d for a viewer over the limit, want 503", second.StatusCode)
	}
}

func TestPageIsServedWithItsOwnFilesOnly(t *testing.T) {
	h := NewHub(Options{Sources: func() []Source { return nil }})
	addr := serve(t, h)
	for _, tt := range []struct{ path, ctype, holds string }{
		{"/live", "text/html; charset=utf-8", `<script src="/live/live.js"`},
		{"/live/live.js", "text/javascript; charset=utf-8", "new EventSource('/live/events')"},
		{"/live/live.css", "text/css; charset=utf-8", ".visitor"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get("http://" + addr + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tt.ctype || !strings.Contains(b.String(), tt.holds) {
				t.Errorf("got %d %q, want 200 %q holding %q", resp.StatusCode, resp.Header.Get("Content-Type"), tt.ctype, tt.holds)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("got Content-Security-Policy %q, want default-src 'self'", csp)
			}
			if strings.Contains(b.String(), "http://") || strings.Contains(b.String(), "https://") {
				t.Errorf("%s names another site: the page must work offline", tt.path)
			}
		})
	}
}
