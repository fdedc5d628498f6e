package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/localstack"
	"github.com/swarm-affinity/swarm-affinity/internal/probe"
)

// load is steady traffic from some visitors while a test changes the stack. Every
// answer must be a 200; sticky visitors must count on (or restart at 1 on a new replica
// when allowRestart is set).
type load struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	problems []string
	requests int
}

// startLoad sends requests from each visitor to path in a loop until finish is called,
// at most 20000 requests each and at most 90 s, with a pause of 2 ms between requests
// so that the load leaves the stack's processes some of the machine's two cores.
func startLoad(visitors []*visitor, path string, counting, allowRestart bool) *load {
	l := &load{stop: make(chan struct{})}
	deadline := time.Now().Add(90 * time.Second)
	for i, v := range visitors {
		l.wg.Go(func() {
			var last answer
			pace := time.NewTicker(2 * time.Millisecond)
			defer pace.Stop()
			for n := 0; n < 20000 && time.Now().Before(deadline); n++ {
				select {
				case <-l.stop:
					return
				case <-pace.C:
				}
				a, resp, err := v.try(path)
				l.mu.Lock()
				l.requests++
				switch {
				case err != nil && resp != nil:
					l.problems = append(l.problems, fmt.Sprintf("visitor %d: %s", i, err))
				case err != nil:
					l.problems = append(l.problems, fmt.Sprintf("visitor %d: %v", i, err))
				case counting && last.Host != "":
					sameReplica := a.Host == last.Host && a.Visits == last.Visits+1
					restarted := allowRestart && a.Visits == 1
					if !sameReplica && !restarted {
						l.problems = append(l.problems, fmt.Sprintf("visitor %d: after %s visits %d got %s visits %d",
							i, last.Host, last.Visits, a.Host, a.Visits))
					}
				}
				l.mu.Unlock()
				if err == nil {
					last = a
				}
			}
		})
	}
	return l
}

// finish stops the load and fails t with what went wrong.
func (l *load) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.problems) > 0 {
		max := min(len(l.problems), 10)
		t.Errorf("%d of %d requests under load went wrong, e.g.:\n%v", len(l.problems), l.requests, l.problems[:max])
	}
	if l.requests == 0 {
		t.Error("the load sent no request")
	}
}

// waitRequests waits until the load has sent at least n more requests than now.
func (l *load) waitRequests(t *testing.T, n int) {
	t.Helper()
	l.mu.Lock()
	want := l.requests + n
	l.mu.Unlock()
	if _, err := probe.Within(30*time.Second, fmt.Sprintf("%d requests of the load", want), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.requests >= want
	}); err != nil {
		t.Fatalf("the load did not reach %d requests in 30s", want)
	}
}

// stuckVisitors returns one sticky visitor of service1 per replica, by replica name.
func stuckVisitors(t *testing.T, s *localstack.Stack) map[string]*visitor {
	t.Helper()
	want := s.RunningReplicas("service1")
	byHost := map[string]*visitor{}
	for i := 0; i < 20 && len(byHost) < len(want); i++ {
		v := newVisitor(t, s.URL(), true)
		a, _ := v.get(t, "/service1")
		if _, ok := byHost[a.Host]; !ok {
			byHost[a.Host] = v
		}
	}
	if len(byHost) != len(want) {
		t.Fatalf("20 new visitors reached %d of the replicas %v", len(byHost), want)
	}
	return byHost
}

func TestFailover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		stop func(s *localstack.Stack, name string) error
	}{
		{"a stopped replica's clients move to the other replica", (*localstack.Stack).StopReplica},
		{"a crashed replica's clients move to the other replica", (*localstack.Stack).KillReplica},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startStack(t, localstack.Config{})
			stuck := stuckVisitors(t, s)
			victimHost, survivorHost := "service1-1", "service1-2"
			victim := stuck[victimHost]
			oldCookie := victim.sessionCookie(t, "/service1")
			for range 3 { // some history for the victim, so a reset shows
				victim.get(t, "/service1")
			}

			survivors := []*visitor{stuck[survivorHost], newVisitor(t, s.URL(), false)}
			l := startLoad(survivors[:1], "/service1", true, false)
			l2 := startLoad(survivors[1:], "/service2", false, false)
			l.waitRequests(t, 20)
			if err := tc.stop(s, victimHost); err != nil {
				t.Fatal(err)
			}
			a, resp := victim.get(t, "/service1")
			l.waitRequests(t, 50)
			l.finish(t)
			l2.finish(t)

			if a.Host != survivorHost || a.Visits != 1 {
				t.Errorf("first answer after %s stopped: got %s visits %d, want %s visits 1",
					victimHost, a.Host, a.Visits, survivorHost)
			}
			newCookie := victim.sessionCookie(t, "/service1")
			if len(resp.Header.Values("Set-Cookie")) == 0 || stickyID(newCookie) == "" || stickyID(newCookie) == stickyID(oldCookie) {
				t.Errorf("cookie after failover: got %q (was %q), want a new prefixed cookie", newCookie, oldCookie)
			}
			if a, _ := victim.get(t, "/service1"); a.Host != survivorHost || a.Visits != 2 {
				t.Errorf("second answer after failover: got %s visits %d, want %s visits 2", a.Host, a.Visits, survivorHost)
			}
		})
	}
}

func TestScaleOut(t *testing.T) {
	t.Parallel()
	s := startStack(t, localstack.Config{})
	stuck := stuckVisitors(t, s)
	r, err := s.AddReplica(t.Context(), "service1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "service1-3" {
		t.Fatalf("new replica: got %s, want service1-3", r.Name)
	}
	reached := false
	for range 10 {
		if a, _ := newVisitor(t, s.URL(), true).get(t, "/service1"); a.Host == r.Name {
			reached = true
			break
		}
	}
	if !reached {
		t.Errorf("10 new clients after scale-out: none reached %s", r.Name)
	}
	for host, v := range stuck {
		if a, _ := v.get(t, "/service1"); a.Host != host || a.Visits != 2 {
			t.Errorf("a client stuck to %s after scale-out: got %s visits %d, want %s visits 2", host, a.Host, a.Visits, host)
		}
	}
}

func TestRollingRestartUnderLoad(t *testing.T) {
	t.Parallel()
	s := startStack(t, localstack.Config{})
	var plain, sticky []*visitor
	for range 3 {
		plain = append(plain, newVisitor(t, s.URL(), false))
		sticky = append(sticky, newVisitor(t, s.URL(), true))
	}
	l2 := startLoad(plain, "/service2", false, false)
	l1 := startLoad(sticky, "/service1", true, true)
	l2.waitRequests(t, 30)
	for _, svc := range []string{"service2", "service1"} {
		if err := s.RollingRestart(t.Context(), svc); err != nil {
			t.Fatal(err)
		}
	}
	l1.waitRequests(t, 30)
	l2.finish(t)
	l1.finish(t)
}
