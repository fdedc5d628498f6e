package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ addr, want string }{
		{":8080", "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:8080", "http://127.0.0.1:8080/healthz"},
		{"[::]:8080", "http://127.0.0.1:8080/healthz"},
		{"127.0.0.1:9001", "http://127.0.0.1:9001/healthz"},
		{"10.0.0.5:80", "http://10.0.0.5:80/healthz"},
		{"[::1]:80", "http://[::1]:80/healthz"},
	} {
		if got, err := URL(tt.addr, "/healthz"); err != nil || got != tt.want {
			t.Errorf("URL(%q): got %q, %v; want %q", tt.addr, got, err, tt.want)
		}
	}
	if _, err := URL("8080", "/healthz"); err == nil {
		t.Errorf(`URL("8080"): got no error`)
	}
}

// The rule URL applies is only right if it reaches what a Go server on that address
// listens on: check it against real listeners.
func TestURLReachesWhatListensThere(t *testing.T) {
	t.Parallel()
	for _, listen := range []string{":0", "0.0.0.0:0", "[::]:0", "127.0.0.1:0"} {
		t.Run("a server on "+listen+" is reached", func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				t.Skipf("cannot listen on %s here: %v", listen, err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			host, _, _ := net.SplitHostPort(listen)
			url, err := URL(net.JoinHostPort(host, port), "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			if err := Get(context.Background(), url, 2*time.Second); err != nil {
				t.Errorf("got %v, want the server on %s to answer at %s", err, listen, url)
			}
		})
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		status  int
		healthy bool
	}{
		{"200 is healthy", http.StatusOK, true},
		{"503 is not", http.StatusServiceUnavailable, false},
		{"404 is not", http.StatusNotFound, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := serveStatus(t, tt.status)
			if err := Get(context.Background(), url, time.Second); (err == nil) != tt.healthy {
				t.Errorf("got %v, want healthy=%v", err, tt.healthy)
			}
		})
	}
	t.Run("nothing listening is not healthy", func(t *testing.T) {
		t.Parallel()
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		if err := Get(context.Background(), "http://"+addr+"/healthz", time.Second); err == nil || !strings.Contains(err.Error(), addr) {
			t.Errorf("got %v, want an error naming %s", err, addr)
		}
	})
}

func serveStatus(t *testing.T, status int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/healthz"
}

func TestUntil(t *testing.T) {
	t.Parallel()
	t.Run("it returns once the condition holds", func(t *testing.T) {
		t.Parallel()
		n := 0
		err := Until(context.Background(), "three calls", func() (bool, error) { n++; return n == 3, nil })
		if err != nil || n != 3 {
			t.Errorf("got %v after %d calls, want nil after 3", err, n)
		}
	})
	t.Run("a fatal error ends it at once", func(t *testing.T) {
		t.Parallel()
		n := 0
		err := Until(context.Background(), "never", func() (bool, error) { n++; return false, Fatal(errors.New("it died")) })
		if err == nil || !strings.Contains(err.Error(), "it died") || n != 1 {
			t.Errorf("got %v after %d calls, want the fatal error after 1", err, n)
		}
	})
	t.Run("the deadline's error says what it waited for and the last error", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := Until(ctx, "the moon", func() (bool, error) { return false, errors.New("not yet") })
		if err == nil || !strings.Contains(err.Error(), "waiting for the moon") || !strings.Contains(err.Error(), "not yet") {
			t.Errorf("got %v, want one naming the wait and the last error", err)
		}
	})
}

func TestWithin(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		trueAt  int // the call that first returns true; 0: none does
		wantErr string
	}{
		{"a condition that holds at once returns nil", 1, ""},
		{"a condition that holds after a few calls returns nil", 3, ""},
		{"a condition that never holds returns an error naming what and d", 0, "waiting for the moon: not within 100ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const d = 100 * time.Millisecond
			n := 0
			took, err := Within(d, "the moon", func() bool { n++; return n == tt.trueAt })
			if tt.wantErr == "" {
				if err != nil || n != tt.trueAt {
					t.Errorf("got %v after %d calls, want nil after %d", err, n, tt.trueAt)
				}
				if took >= d {
					t.Errorf("took %v, want less than %v", took, d)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("got %v, want %q", err, tt.wantErr)
			}
			if took < d {
				t.Errorf("gave up after %v, want at least %v", took, d)
			}
		})
	}
}
