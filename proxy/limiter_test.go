package main

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// limitedListener serves nothing: it accepts through a limiter and hands the
// connections to the test.
func limitedListener(t *testing.T, max, perIP int) (*limiter, string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimiter(max, perIP, time.Hour)
	ll := l.listener(ln)
	t.Cleanup(func() { ll.Close() })
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return l, ln.Addr().String(), accepted
}

// dialFrom connects to addr from the local address ip (any 127.0.0.0/8 address
// is this machine), as a distinct client.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func accept(t *testing.T, accepted <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted within 5s")
		return nil
	}
}

// refusal reads what a refused client gets: the status line, or "" for a close.
func refusal(t *testing.T, c net.Conn) (status string, close bool) {
	t.Helper()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", false
	}
	resp.Body.Close()
	return resp.Status, resp.Close
}

func TestAtTheLimitTheLongestIdleConnectionMakesRoom(t *testing.T) {
	t.Parallel()
	l, addr, accepted := limitedListener(t, 2, 0)
	dialFrom(t, "127.0.0.1", addr)
	older := accept(t, accepted)
	dialFrom(t, "127.0.0.1", addr)
	newer := accept(t, accepted)
	// Both serve a request; newer's ends first. Idle time counts from the end
	// of a connection's last request, not from its start: newer is the one
	// idle the longest.
	l.connState(older, http.StateActive)
	l.connState(newer, http.StateActive)
	l.connState(newer, http.StateIdle)
	l.connState(older, http.StateIdle)
	dialFrom(t, "127.0.0.1", addr)
	accept(t, accepted)
	newer.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := newer.Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
		t.Errorf("the longest idle connection: read %v, want it closed to make room", err)
	}
	older.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := older.Read(make([]byte, 1)); !isTimeoutErr(err) {
		t.Errorf("the connection idle since later: read %v, want it still open", err)
	}
	if n := l.open.Load(); n != 2 {
		t.Errorf("%d slots held, want 2", n)
	}
}

func isTimeoutErr(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestAtTheLimitWithEveryConnectionBusyANewClientGets503AtOnce(t *testing.T) {
	t.Parallel()
	l, addr, accepted := limitedListener(t, 1, 0)
	dialFrom(t, "127.0.0.1", addr)
	busy := accept(t, accepted)
	l.connState(busy, http.StateActive)
	start := time.Now()
	status, closing := refusal(t, dialFrom(t, "127.0.0.1", addr))
	if status != "503 Service Unavailable" || !closing {
		t.Errorf("got %q (close %v), want 503 with Connection: close", status, closing)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the refusal took %v, want it at once", took)
	}
	if got := l.Rejected()["maxconn"]; got != 1 {
		t.Errorf("%d refusals counted, want 1", got)
	}
	busy.Close()
	dialFrom(t, "127.0.0.1", addr)
	accept(t, accepted) // the slot came back
}

func TestOneAddressOverItsCapGets429WhileOthersGetIn(t *testing.T) {
	t.Parallel()
	l, addr, accepted := limitedListener(t, 10, 2)
	for range 2 {
		dialFrom(t, "127.0.0.2", addr)
		l.connState(accept(t, accepted), http.StateActive)
	}
	status, _ := refusal(t, dialFrom(t, "127.0.0.2", addr))
	if !strings.HasPrefix(status, "429") {
		t.Errorf("a third connection from 127.0.0.2: %q, want 429", status)
	}
	dialFrom(t, "127.0.0.3", addr)
	accept(t, accepted)
	if got := l.Rejected()["maxconn_per_ip"]; got != 1 {
		t.Errorf("%d refusals counted, want 1", got)
	}
}
