package swarm_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/discover"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/swarm"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/swarm/swarmtest"
)

type discoverTarget = discover.Target

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// following runs a Watcher on the fake engine until the test ends and collects what
// it applies.
type following struct {
	mu      sync.Mutex
	applied [][]config.Service
	logs    *proc.Buffer
}

func follow(t *testing.T, e *swarmtest.Engine, interval time.Duration) *following {
	t.Helper()
	client, err := swarm.NewClient(e.Host())
	if err != nil {
		t.Fatal(err)
	}
	var self string
	e.Edit(func(s *swarmtest.State) { self = s.ProxyContainer()[:12] })
	f := &following{logs: &proc.Buffer{}}
	w := &swarm.Watcher{Client: client, Self: swarm.Self{Hostname: self}, Interval: interval, Logger: testLogger(f.logs)}
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := w.First(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, func(s []config.Service) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.applied = append(f.applied, s)
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	// Run's events stream is open: every change from now on is an event the watcher sees.
	waitFor(t, 5*time.Second, "the events stream", func() bool { return e.Streams() == 1 })
	return f
}

// last is the last set of services applied, if any.
func (f *following) last() ([]config.Service, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.applied) == 0 {
		return nil, false
	}
	return f.applied[len(f.applied)-1], true
}

func (f *following) service(name string) (config.Service, bool) {
	s, _ := f.last()
	i := slices.IndexFunc(s, func(x config.Service) bool { return x.Name == name })
	if i < 0 {
		return config.Service{}, false
	}
	return s[i], true
}

// waitFor polls cond (probe.Within) until it holds or within passes, and returns how
// long that took.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	took, err := probe.Within(within, what, cond)
	if err != nil {
		t.Fatalf("%s: not within %v", what, within)
	}
	return took
}

func TestAnUpdateEventRederivesWithinASecond(t *testing.T) {
	t.Parallel()
	e := swarmtest.Start(t, swarmtest.Dir("2018"))
	// No poll during the test: only the event can make the change seen.
	f := follow(t, e, time.Hour)
	var id string
	e.Edit(func(s *swarmtest.State) {
		s.SetEnv("service2", "VIRTUAL_HOST", "*/two")
		id = s.ServiceID("service2")
	})
	if n := e.Event(swarmtest.ServiceEvent("update", id, "dropin_service2")); n != 1 {
		t.Fatalf("the event went to %d streams, want 1", n)
	}
	took := waitFor(t, time.Second, "service2 routed by its new VIRTUAL_HOST", func() bool {
		s, ok := f.service("service2")
		return ok && s.VirtualHost == "*/two"
	})
	t.Logf("re-derived %v after the event", took)
}

func TestTheRecordedEventsAreRead(t *testing.T) {
	t.Parallel()
	e := swarmtest.Start(t, swarmtest.Dir("2018"))
	f := follow(t, e, time.Hour)
	e.Edit(func(s *swarmtest.State) { s.SetLabel("service2", swarm.DeactivateLabel, "true") })
	lines, err := os.ReadFile(filepath.Join("testdata", "2018", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(lines)) {
		e.Event([]byte(strings.TrimSpace(line)))
	}
	waitFor(t, time.Second, "service2 left out after its label changed", func() bool {
		_, ok := f.last()
		_, routed := f.service("service2")
		return ok && !routed
	})
	if !strings.Contains(f.logs.String(), "service service2: label com.docker.dockercloud.haproxy.deactivate=true: not routed") {
		t.Errorf("the log does not say why service2 left:\n%s", f.logs)
	}
}

func TestANewTaskIsUsedWithinOnePoll(t *testing.T) {
	t.Parallel()
	e := swarmtest.Start(t, swarmtest.Dir("2018"))
	const poll = 200 * time.Millisecond
	f := follow(t, e, poll)
	// Swarm sends no event for a task: only the poll can see it.
	e.Edit(func(s *swarmtest.State) { s.AddTask("service1", "newtask", "10.0.5.99") })
	took := waitFor(t, poll+500*time.Millisecond, "the new task among service1's servers", func() bool {
		s, _ := f.service("service1")
		return slices.ContainsFunc(s.Servers, func(t discoverTarget) bool { return t.String() == "10.0.5.99:8080" })
	})
	t.Logf("used %v after the task started (poll every %v)", took, poll)

	// A task that is starting (its HEALTHCHECK has not passed yet) is not used.
	e.Edit(func(s *swarmtest.State) {
		s.AddTask("service1", "starting", "10.0.5.98")
		swarmtest.SetTaskState(s.Tasks[len(s.Tasks)-1], "starting")
		s.RemoveTask("newtask")
	})
	waitFor(t, poll+500*time.Millisecond, "the stopped task gone", func() bool {
		s, _ := f.service("service1")
		return !slices.ContainsFunc(s.Servers, func(t discoverTarget) bool { return t.String() == "10.0.5.99:8080" })
	})
	s, _ := f.service("service1")
	if slices.ContainsFunc(s.Servers, func(t discoverTarget) bool { return t.String() == "10.0.5.98:8080" }) {
		t.Errorf("a starting task is used: %v", s.Servers)
	}
}

func TestARollingUpdateIsPolledEverySecond(t *testing.T) {
	t.Parallel()
	e := swarmtest.Start(t, swarmtest.Dir("2018"))
	f := follow(t, e, time.Hour)
	// The update starts: swarm sends an event, then none for the tasks it replaces.
	var id string
	e.Edit(func(s *swarmtest.State) {
		s.SetUpdateState("service2", "updating")
		id = s.ServiceID("service2")
	})
	e.Event(swarmtest.ServiceEvent("update", id, "dropin_service2"))
	n := e.Requests("/tasks")
	waitFor(t, time.Second, "the event's derivation", func() bool { return e.Requests("/tasks") > n })
	e.Edit(func(s *swarmtest.State) { s.AddTask("service2", "replacement", "10.0.5.97") })
	took := waitFor(t, 2*time.Second, "the replacement task among service2's servers", func() bool {
		s, _ := f.service("service2")
		return slices.ContainsFunc(s.Servers, func(t discoverTarget) bool { return t.String() == "10.0.5.97:8080" })
	})
	t.Logf("a task started during the update was used after %v (poll every hour otherwise)", took)
}

func TestTheEventsStreamReconnectsAfterEOF(t *testing.T) {
	t.Parallel()
	e := swarmtest.Start(t, swarmtest.Dir("2018"))
	f := follow(t, e, time.Hour)
	e.EndEvents()
	waitFor(t, 5*time.Second, "the stream reconnected", func() bool { return e.Streams() == 1 })
	if n := e.Requests("/events"); n != 2 {
		t.Errorf("%d GET /events, want 2 (one reconnection)", n)
	}
	var id string
	e.Edit(func(s *swarmtest.State) {
		s.SetEnv("service1", "COOKIE", "")
		id = s.ServiceID("service1")
	})
	e.Event(swarmtest.ServiceEvent("update", id, "dropin_service1"))
	waitFor(t, time.Second, "service1 without its cookie", func() bool {
		s, ok := f.service("service1")
		return ok && !s.Sticky.On()
	})
}

func TestAWorkerSaysSo(t *testing.T) {
	t.Parallel()
	e := swarmtest.Start(t, swarmtest.Dir("2018"))
	e.SetWorker(true)
	client, err := swarm.NewClient(e.Host())
	if err != nil {
		t.Fatal(err)
	}
	w := &swarm.Watcher{Client: client}
	if _, err := w.First(context.Background()); !errors.Is(err, swarm.ErrNotManager) {
		t.Errorf("got %v, want ErrNotManager", err)
	}
}
