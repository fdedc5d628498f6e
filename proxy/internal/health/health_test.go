package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
)

// flipServer answers its health path with 200 or 503 as the test says.
func flipServer(t *testing.T) (*httptest.Server, *atomic.Bool) {
	t.Helper()
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, &healthy
}

func TestRiseAndFall(t *testing.T) {
	t.Parallel()
	srv, healthy := flipServer(t)
	pool := backend.NewPool(backend.NewIDs(nil), backend.RoundRobin)
	pool.Update([]string{strings.TrimPrefix(srv.URL, "http://")})
	b := pool.Backends()[0]
	c := &Checker{Config: Config{Path: "/healthz", Rise: 2, Fall: 3}, Pool: pool}
	ctx := context.Background()

	steps := []struct {
		healthy bool
		want    backend.State
	}{
		{true, backend.Up},
		{false, backend.Up},
		{false, backend.Up},
		{false, backend.Down}, // third failure in a row
		{true, backend.Down},
		{false, backend.Down}, // a failure resets the rise count
		{true, backend.Down},
		{true, backend.Up}, // second success in a row
	}
	for i, s := range steps {
		healthy.Store(s.healthy)
		c.Round(ctx)
		if got := b.State(); got != s.want {
			t.Fatalf("round %d (healthy %v): state %v, want %v", i+1, s.healthy, got, s.want)
		}
	}
}

func TestPassiveDownNeedsRiseChecks(t *testing.T) {
	t.Parallel()
	srv, _ := flipServer(t)
	pool := backend.NewPool(backend.NewIDs(nil), backend.RoundRobin)
	pool.Update([]string{strings.TrimPrefix(srv.URL, "http://")})
	b := pool.Backends()[0]
	c := &Checker{Config: Config{Rise: 2, Fall: 3}, Pool: pool} // TCP checks
	ctx := context.Background()
	for range 3 {
		c.Round(ctx)
	}
	b.SetUp(false) // a connection was refused on the request path
	c.Round(ctx)
	if b.State() != backend.Down {
		t.Fatal("one good check brought a passively downed server back; want rise (2)")
	}
	c.Round(ctx)
	if b.State() != backend.Up {
		t.Fatalf("state %v after 2 good checks, want up", b.State())
	}
}

func TestTCPCheckOnClosedPort(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	pool := backend.NewPool(backend.NewIDs(nil), backend.RoundRobin)
	pool.Update([]string{addr})
	c := &Checker{Config: Config{Fall: 1}, Pool: pool}
	c.Round(context.Background())
	if got := pool.Backends()[0].State(); got != backend.Down {
		t.Errorf("closed port is %v, want down", got)
	}
}

func TestRoundPrunesDrainedServers(t *testing.T) {
	t.Parallel()
	pool := backend.NewPool(backend.NewIDs(nil), backend.RoundRobin)
	pool.Update([]string{"127.0.0.1:1", "127.0.0.1:2"})
	b := pool.Backends()[1]
	b.Acquire()
	pool.Update([]string{"127.0.0.1:1"})
	b.Release()
	c := &Checker{Config: Config{Fall: 1}, Pool: pool}
	c.Round(context.Background())
	if n := len(pool.Backends()); n != 1 {
		t.Errorf("%d servers after the round, want 1", n)
	}
}

func TestParallelHTTPChecks(t *testing.T) {
	t.Parallel()
	// Several servers checked at once, from the first round (run with -race).
	pool := backend.NewPool(backend.NewIDs(nil), backend.RoundRobin)
	var addrs []string
	for range 4 {
		srv, _ := flipServer(t)
		addrs = append(addrs, strings.TrimPrefix(srv.URL, "http://"))
	}
	pool.Update(addrs)
	c := &Checker{Config: Config{Path: "/healthz", Fall: 1}, Pool: pool}
	c.Round(context.Background())
	for _, b := range pool.Backends() {
		if b.State() != backend.Up {
			t.Errorf("%s is %v", b.Addr(), b.State())
		}
	}
}

func TestOverTakesBaseForZeroFields(t *testing.T) {
	t.Parallel()
	base := Config{Path: "/base", Interval: time.Second, Timeout: 2 * time.Second, Rise: 3, Fall: 4}
	tests := []struct {
		name    string
		c, want Config
	}{
		{"a zero config is base", Config{}, base},
		{"set fields stay", Config{Path: "/own", Rise: 9}, Config{Path: "/own", Interval: time.Second, Timeout: 2 * time.Second, Rise: 9, Fall: 4}},
		{"a negative field is unset", Config{Interval: -time.Second, Fall: -1}, base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.c.Over(base); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
