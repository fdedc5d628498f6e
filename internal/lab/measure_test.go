package lab

import (
	"math"
	"slices"
	"testing"
)

// visit is a hand-made log line: visitor v's request seq, sent at start ms, taking 1 ms,
// answered by replica with visits.
func visit(v, seq int, start float64, replica string, visits int) Answer {
	return Answer{Visitor: v, Seq: seq, StartMS: start, LatencyMS: 1, Status: 200, Replica: replica, Visits: visits}
}

func failed(v, seq int, start float64) Answer {
	return Answer{Visitor: v, Seq: seq, StartMS: start, LatencyMS: 1, Status: 502, Error: "502 Bad Gateway"}
}

func TestMeasureContinuity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		answers []Answer
		want    Continuity
	}{
		{"no answer gives no pair", nil, Continuity{}},
		{"a first answer alone is not judged", []Answer{visit(0, 1, 0, "a", 1)}, Continuity{}},
		{"a sticky visitor counts on", []Answer{
			visit(0, 1, 0, "a", 1), visit(0, 2, 10, "a", 2), visit(0, 3, 20, "a", 3),
		}, Continuity{Continued: 2, Pairs: 2}},
		{"a count back at 1 breaks continuity", []Answer{
			visit(0, 1, 0, "a", 1), visit(0, 2, 10, "a", 2), visit(0, 3, 20, "b", 1), visit(0, 4, 30, "b", 2),
		}, Continuity{Continued: 2, Pairs: 3}},
		{"a stateless visitor counts on across replicas", []Answer{
			visit(0, 1, 0, "a", 1), visit(0, 2, 10, "b", 2), visit(0, 3, 20, "a", 3),
		}, Continuity{Continued: 2, Pairs: 2}},
		{"a skipped count is not continuity", []Answer{
			visit(0, 1, 0, "a", 1), visit(0, 2, 10, "a", 3),
		}, Continuity{Continued: 0, Pairs: 1}},
		{"visitors are judged apart, in request order", []Answer{
			visit(1, 2, 10, "b", 2), visit(0, 1, 0, "a", 1), visit(1, 1, 0, "b", 1), visit(0, 2, 10, "b", 1),
		}, Continuity{Continued: 1, Pairs: 2}},
		{"a failed request is skipped, not a break", []Answer{
			visit(0, 1, 0, "a", 1), failed(0, 2, 10), visit(0, 3, 20, "a", 2),
		}, Continuity{Continued: 1, Pairs: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := MeasureContinuity(tc.answers); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestContinuityShare(t *testing.T) {
	t.Parallel()
	if _, ok := (Continuity{}).Share(); ok {
		t.Error("no pairs: got ok, want not ok")
	}
	if got, _ := (Continuity{Continued: 3, Pairs: 4}).Share(); got != 0.75 {
		t.Errorf("3 of 4: got %v, want 0.75", got)
	}
}

func TestShares(t *testing.T) {
	t.Parallel()
	answers := []Answer{
		visit(0, 1, 0, "a", 1), visit(0, 2, 10, "a", 2), visit(1, 1, 10, "b", 1),
		failed(1, 2, 20), visit(1, 3, 30, "c", 1),
	}
	got := Shares(answers, 0, 20)
	if len(got) != 2 || got["a"] != 2 || got["b"] != 1 {
		t.Errorf("answers completed in [0,20): got %v, want a:2 b:1", got)
	}
	if got := Shares(answers, 20, 100); len(got) != 1 || got["c"] != 1 {
		t.Errorf("answers completed in [20,100): got %v, want c:1 (failed ones left out)", got)
	}
}

func TestSessionsLost(t *testing.T) {
	t.Parallel()
	kill := Event{Kind: Kill, Replica: "a", StartMS: 100, EndMS: 105}
	for _, tc := range []struct {
		name           string
		answers        []Answer
		wantHad, wantL []int
	}{
		{"a sticky visitor of the killed replica starts again at 1", []Answer{
			visit(0, 1, 0, "a", 1), visit(0, 2, 50, "a", 2), visit(0, 3, 110, "b", 1), visit(0, 4, 120, "b", 2),
		}, []int{0}, []int{0}},
		{"a visitor of the other replica keeps its session", []Answer{
			visit(1, 1, 0, "b", 1), visit(1, 2, 50, "b", 2), visit(1, 3, 110, "b", 3),
		}, []int{}, []int{}},
		{"a stateless visitor of the killed replica keeps its count", []Answer{
			visit(2, 1, 0, "b", 1), visit(2, 2, 50, "a", 2), visit(2, 3, 110, "b", 3),
		}, []int{2}, []int{}},
		{"an answer in flight during the kill still counts from the killed replica", []Answer{
			visit(3, 1, 0, "a", 1), visit(3, 2, 99.5, "a", 2), visit(3, 3, 101, "a", 3), visit(3, 4, 106, "b", 1),
		}, []int{3}, []int{3}},
		{"a request redispatched during the kill is where the count restarts", []Answer{
			visit(4, 1, 0, "a", 1), visit(4, 2, 90, "a", 2), visit(4, 3, 101, "b", 1), visit(4, 4, 106, "b", 2),
		}, []int{4}, []int{4}},
		{"a visitor not seen after the stack settled is not judged", []Answer{
			visit(5, 1, 0, "a", 1), visit(5, 2, 50, "a", 2), visit(5, 3, 101, "b", 1),
		}, []int{}, []int{}},
		{"a visitor that arrived after the kill had nothing there", []Answer{
			visit(6, 1, 110, "b", 1), visit(6, 2, 120, "b", 2),
		}, []int{}, []int{}},
		{"failed requests during failover are skipped", []Answer{
			visit(7, 1, 0, "a", 1), failed(7, 2, 100), visit(7, 3, 110, "b", 1),
		}, []int{7}, []int{7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := SessionsLost(tc.answers, kill)
			if !slices.Equal(got.Had, tc.wantHad) || !slices.Equal(got.Lost, tc.wantL) {
				t.Errorf("got had %v lost %v, want had %v lost %v", got.Had, got.Lost, tc.wantHad, tc.wantL)
			}
		})
	}
}

func TestMeasureScaleOut(t *testing.T) {
	t.Parallel()
	scale := Event{Kind: Scale, Replica: "c", StartMS: 100, EndMS: 200}
	answers := []Answer{
		// visitor 0: sticky, stays on a after the scale-out
		visit(0, 1, 0, "a", 1), visit(0, 2, 150, "a", 2), visit(0, 3, 210, "a", 3),
		// visitor 1: returning, round robin takes it to c
		visit(1, 1, 0, "b", 1), visit(1, 2, 210, "c", 1),
		// visitor 2: new after the scale-out, lands on c
		visit(2, 1, 220, "c", 1), visit(2, 2, 230, "c", 2),
		// visitor 3: new, lands on b
		visit(3, 1, 220, "b", 1),
		// visitor 4: arrived while c was joining: neither returning nor new
		visit(4, 1, 150, "b", 1), visit(4, 2, 240, "c", 1),
		// visitor 5: left before the scale-out ended: not returning
		visit(5, 1, 0, "a", 1), visit(5, 2, 120, "a", 2),
	}
	got := MeasureScaleOut(answers, scale)
	want := ScaleOut{Replica: "c", Returning: 2, ReturningOnNew: 1, New: 2, NewOnNew: 1, Share: 4.0 / 6}
	if math.Abs(got.Share-want.Share) > 1e-9 {
		t.Errorf("share: got %v, want %v", got.Share, want.Share)
	}
	got.Share = want.Share
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, tc := range []struct{ p, want float64 }{{50, 5}, {99, 10}, {100, 10}, {10, 1}, {1, 1}} {
		if got := Percentile(xs, tc.p); got != tc.want {
			t.Errorf("p%v of 1..10: got %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := Percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("p50 of nothing: got %v, want NaN", got)
	}
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	answers := []Answer{visit(0, 1, 0, "a", 1), visit(0, 2, 999, "a", 2), visit(1, 1, 1500, "b", 1), failed(1, 2, 1600), visit(1, 3, 5000, "b", 1)}
	n, counts := Timeline(answers, 1000, 3000)
	if n != 3 {
		t.Fatalf("buckets: got %d, want 3", n)
	}
	if !slices.Equal(counts["a"], []int{1, 1, 0}) || !slices.Equal(counts["b"], []int{0, 1, 1}) {
		t.Errorf("got a %v b %v, want a [1 1 0] b [0 1 1] (late answers in the last bucket)", counts["a"], counts["b"])
	}
}
