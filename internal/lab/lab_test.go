package lab

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// runLab runs the lab on local stacks with small sizes and fails t on any error; the
// stacks' output is shown if the test fails.
func runLab(t *testing.T, s Settings) *Results {
	t.Helper()
	if testing.Short() {
		t.Skip("starts local stacks; not in -short mode")
	}
	logs := &proc.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of the stacks' processes:\n%s", logs.String())
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	r, err := Run(ctx, Config{Settings: s, BinDir: binDir, StackLog: logs})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	PrintTable(&table, r)
	t.Logf("the run took %.1f s:\n%s", r.DurationS, table.String())
	return r
}

func armOf(t *testing.T, r *Results, name string) ArmResult {
	t.Helper()
	i := slices.IndexFunc(r.Arms, func(a ArmResult) bool { return a.Name == name })
	if i < 0 {
		t.Fatalf("no %s arm in the results", name)
	}
	return r.Arms[i]
}

func continuity(t *testing.T, a ArmResult) float64 {
	t.Helper()
	sh, ok := a.Summary.Continuity.Share()
	if !ok {
		t.Fatalf("%s: no visitor made two requests", a.Name)
	}
	return sh
}

// noFailure checks that no request of arm a failed and that the arm made every request
// of the plan s: Clients x Requests, or more when s has events (visitors keep coming
// while they run and for a while after, see load.nextVisitor).
func noFailure(t *testing.T, s Settings, a ArmResult) {
	t.Helper()
	if a.Summary.Failed > 0 {
		t.Errorf("%s: %d of %d requests failed: %s", a.Name, a.Summary.Failed, a.Summary.Requests, failureSummary(a.Summary.FailedWith))
	}
	plan := s.Clients * s.Requests
	switch got := a.Summary.Requests; {
	case len(s.Events) == 0 && got != plan:
		t.Errorf("%s: got %d requests, want the %d of the plan (%d visitors x %d)", a.Name, got, plan, s.Clients, s.Requests)
	case got < plan:
		t.Errorf("%s: got %d requests, want at least the %d of the plan (%d visitors x %d)", a.Name, got, plan, s.Clients, s.Requests)
	}
}

// TestLessonWithoutEvents is the lesson in a steady state: sticky and stateless sessions
// both keep every count, only stateless spreads each visitor over every replica, and
// memory sessions without stickiness lose counts.
func TestLessonWithoutEvents(t *testing.T) {
	t.Parallel()
	r := runLab(t, Settings{Clients: 12, Requests: 10, Parallel: 4, ThinkMS: 5, Replicas: 2})

	sticky := armOf(t, r, "sticky")
	noFailure(t, r.Settings, sticky)
	if got := continuity(t, sticky); got != 1 {
		t.Errorf("sticky continuity: got %s, want 100%%", percent(got))
	}
	for _, a := range r.Arms {
		if a.Summary.Requests != 12*10 {
			t.Errorf("%s: got %d requests, want 12 visitors x 10", a.Name, a.Summary.Requests)
		}
	}

	stateless := armOf(t, r, "stateless")
	noFailure(t, r.Settings, stateless)
	if got := continuity(t, stateless); got != 1 {
		t.Errorf("stateless continuity: got %s, want 100%%", percent(got))
	}
	counts := stateless.Summary.Phases[0].Counts
	for _, rep := range []string{"service1-1", "service1-2"} {
		if counts[rep] == 0 {
			t.Errorf("stateless: %s answered nothing (shares %v); round robin should use every replica", rep, counts)
		}
	}

	neither := armOf(t, r, "neither")
	noFailure(t, r.Settings, neither)
	if got := continuity(t, neither); got >= 1 {
		t.Errorf("no-stickiness continuity: got %s, want below 100%%", percent(got))
	}

	dir := t.TempDir()
	if err := WriteReport(dir, r); err != nil {
		t.Fatal(err)
	}
	checkReport(t, dir, r)
}

// TestLessonFailoverAndScaleOut kills a replica, then adds one, under load: the sticky
// arm loses exactly the sessions that lived on the killed replica and no request, and
// its returning visitors never reach the new replica; the stateless arm loses nothing.
func TestLessonFailoverAndScaleOut(t *testing.T) {
	t.Parallel()
	r := runLab(t, Settings{Clients: 30, Requests: 25, Parallel: 6, ThinkMS: 20, Replicas: 2,
		Events: []string{Kill, Scale}, Arms: []string{"sticky", "stateless"}})

	for _, a := range r.Arms {
		if len(a.Events) != 2 || a.Events[0].Error != "" || a.Events[1].Error != "" {
			t.Fatalf("%s: events: got %+v, want a kill and a scale-out, without error", a.Name, a.Events)
		}
	}

	sticky := armOf(t, r, "sticky")
	noFailure(t, r.Settings, sticky)
	loss := sticky.Summary.Losses[0]
	if loss.Replica != "service1-1" {
		t.Errorf("killed replica: got %s, want service1-1", loss.Replica)
	}
	if len(loss.Had) == 0 {
		t.Errorf("sticky: no visitor had a session on %s when it was killed; the test proves nothing", loss.Replica)
	}
	if !slices.Equal(loss.Had, loss.Lost) {
		t.Errorf("sticky: visitors with a session on %s: %v; visitors that lost theirs: %v; want the same",
			loss.Replica, loss.Had, loss.Lost)
	}
	kill := sticky.Events[0]
	for v, as := range byVisitor(sticky.Answers) {
		for i := 1; i < len(as); i++ {
			if as[i].Visits == as[i-1].Visits+1 {
				continue
			}
			if as[i-1].Replica != kill.Replica || as[i].EndMS() < kill.StartMS {
				t.Errorf("sticky: visitor %d: visits %d on %s, then %d on %s at %.0f ms; only the kill of %s at %.0f ms may break a count",
					v, as[i-1].Visits, as[i-1].Replica, as[i].Visits, as[i].Replica, as[i].StartMS, kill.Replica, kill.StartMS)
			}
		}
	}
	so := sticky.Summary.ScaleOut
	if so == nil {
		t.Fatal("sticky: no scale-out measured")
	}
	if so.Returning == 0 {
		t.Errorf("sticky: no returning visitor after the scale-out; the test proves nothing")
	}
	if so.ReturningOnNew != 0 {
		t.Errorf("sticky: %d of %d returning visitors reached the new replica %s, want none", so.ReturningOnNew, so.Returning, so.Replica)
	}
	if so.New > 0 && so.NewOnNew == 0 {
		t.Errorf("sticky: none of the %d new visitors reached the new replica %s", so.New, so.Replica)
	}

	stateless := armOf(t, r, "stateless")
	noFailure(t, r.Settings, stateless)
	if got := continuity(t, stateless); got != 1 {
		t.Errorf("stateless continuity through a kill and a scale-out: got %s, want 100%%", percent(got))
	}
	if l := stateless.Summary.Losses[0]; len(l.Lost) != 0 {
		t.Errorf("stateless: %d visitors lost their session at the kill, want none", len(l.Lost))
	}
	if so := stateless.Summary.ScaleOut; so == nil || so.ReturningOnNew == 0 {
		t.Errorf("stateless: got %+v, want returning visitors on the new replica too (round robin)", so)
	}
}
