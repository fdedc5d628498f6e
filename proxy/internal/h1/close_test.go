package h1

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
)

// TestClosingAServerEndsItsPoolSweep: the goroutine that sweeps a Server's
// server connections starts with the first of them and ends with the Server,
// whichever way it is stopped, so that a process making and closing Servers
// (a restart, the tests) leaks none.
func TestClosingAServerEndsItsPoolSweep(t *testing.T) {
	t.Parallel()
	stops := []struct {
		name string
		stop func(*Server) error
	}{
		{"Close", (*Server).Close},
		{"Shutdown", func(s *Server) error { return s.Shutdown(context.Background()) }},
	}
	for _, tt := range stops {
		t.Run("after "+tt.name, func(t *testing.T) {
			t.Parallel()
			tb, err := forward.NewTable([]*forward.Service{plainService("s", startRecorder(t, ok).addr)})
			if err != nil {
				t.Fatal(err)
			}
			s := NewServer(Options{Table: func() *forward.Table { return tb }})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- s.Serve(ln) }()
			t.Cleanup(func() { s.Close() })
			resp, err := http.Get("http://" + ln.Addr().String() + "/s")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if !sweeping(s) {
				t.Fatal("no sweep running after a proxied request: the test would prove nothing")
			}
			if err := tt.stop(s); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			<-served
			if _, err := probe.Within(5*time.Second, "the pool sweep to end", func() bool { return !sweeping(s) }); err != nil {
				t.Fatalf("the pool sweep still runs 5s after %s", tt.name)
			}
		})
	}
}

// sweeping reports whether s's pool sweep runs: a goroutine's stack names it
// with s's pools as its receiver.
func sweeping(s *Server) bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Contains(string(buf), fmt.Sprintf("h1.(*pools).sweep(%p", &s.backends))
}
