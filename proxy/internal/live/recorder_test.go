package live

import (
	"testing"
)

// watchedRecorder is a Recorder whose hub counts one viewer, so it records.
func watchedRecorder(t *testing.T) (*Hub, *Recorder) {
	t.Helper()
	h := NewHub(Options{Sources: func() []Source { return nil }})
	h.viewers.Add(1)
	return h, h.Recorder("service1")
}

func visitors(h *Hub, r *Recorder) []VisitorState {
	vs, _, _ := r.snapshot(nil, 0, h.now(), int64(h.o.Window), MaxVisitors)
	return vs
}

func TestRecorderNamesVisitors(t *testing.T) {
	tests := []struct {
		name  string
		steps []Visitor
		// what the one visitor of each step shows: its server after each step
		servers []string
		want    int // visitors in the view at the end
	}{
		{"a first visit is named by the cookie it gets, and its next visits by that cookie",
			[]Visitor{{Set: 10, Client: 1}, {Cookie: 10, Client: 2}}, []string{"a", "a"}, 1},
		{"a visitor given a new cookie after a move stays one visitor",
			[]Visitor{{Set: 10}, {Cookie: 10}, {Cookie: 10, Set: 20}, {Cookie: 20}}, []string{"a", "a", "b", "b"}, 1},
		{"a visitor moved twice stays one visitor",
			[]Visitor{{Set: 10}, {Cookie: 10, Set: 20}, {Cookie: 20, Set: 30}, {Cookie: 30}}, []string{"a", "b", "a", "a"}, 1},
		{"without cookies a visitor is its connection",
			[]Visitor{{Client: 1}, {Client: 1}, {Client: 2}}, []string{"a", "b", "b"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, r := watchedRecorder(t)
			for i, v := range tt.steps {
				r.Request(v, tt.servers[i], Hit, 200)
			}
			vs := visitors(h, r)
			if len(vs) != tt.want {
				t.Fatalf("got %d visitors %+v, want %d", len(vs), vs, tt.want)
			}
			last := tt.servers[len(tt.servers)-1]
			if vs[0].Server != last {
				t.Errorf("got the last visitor on %q, want %q", vs[0].Server, last)
			}
		})
	}
}

func TestRecorderShowsAMove(t *testing.T) {
	h, r := watchedRecorder(t)
	r.Request(Visitor{Set: 10}, "a", New, 200)
	r.Request(Visitor{Cookie: 10}, "a", Hit, 200)
	r.Request(Visitor{Cookie: 10, Set: 20}, "b", Rebalanced, 200)
	vs := visitors(h, r)
	if len(vs) != 1 {
		t.Fatalf("got %d visitors, want 1", len(vs))
	}
	v := vs[0]
	if v.Server != "b" || v.From != "a" || v.Outcome != "rebalanced" || v.N != 3 || v.MovedMS < 1 {
		t.Errorf("got %+v, want on b from a, rebalanced, 3 requests, a move time", v)
	}
	_, c, _ := r.snapshot(nil, 0, h.now(), int64(h.o.Window), MaxVisitors)
	if c != (counts{requests: 3, hit: 1, new: 1, rebalanced: 1}) {
		t.Errorf("got counts %+v, want 3 requests: 1 hit, 1 new, 1 rebalanced", c)
	}
}

func TestRecorderCountsAFailureWithoutMovingTheVisitor(t *testing.T) {
	h, r := watchedRecorder(t)
	r.Request(Visitor{Cookie: 10}, "a", Hit, 200)
	r.Request(Visitor{Cookie: 10}, "", Rebalanced, 503)
	vs := visitors(h, r)
	if len(vs) != 1 || vs[0].Server != "a" || vs[0].N != 1 {
		t.Errorf("got %+v, want the visitor still on a with 1 request", vs)
	}
	if _, c, _ := r.snapshot(nil, 0, h.now(), int64(h.o.Window), MaxVisitors); c.failed != 1 || c.requests != 2 {
		t.Errorf("got counts %+v, want 2 requests, 1 failed", c)
	}
}

func TestRecorderKeepsTheLastVisitorsOnly(t *testing.T) {
	h, r := watchedRecorder(t)
	for i := range 3 * MaxVisitors {
		r.Request(Visitor{Cookie: uint64(i + 1)}, "a", Hit, 200)
	}
	vs, _, _ := r.snapshot(nil, 0, h.now(), int64(h.o.Window), 10*MaxVisitors)
	if len(vs) != MaxVisitors {
		t.Errorf("got %d visitors held, want %d", len(vs), MaxVisitors)
	}
}

func TestRequestAllocatesNothingOnceWatched(t *testing.T) {
	_, r := watchedRecorder(t)
	r.Request(Visitor{Cookie: 1}, "a", Hit, 200) // the tables are made here
	i := uint64(0)
	allocs := testing.AllocsPerRun(10000, func() {
		i++
		r.Request(Visitor{Cookie: i%500 + 1, Set: i%7 + 1000}, "a", Rebalanced, 200)
	})
	if allocs != 0 {
		t.Errorf("Request: %v allocations, want 0", allocs)
	}
}

func TestNilRecorderIsNeverWatched(t *testing.T) {
	var r *Recorder
	if r.Watched() {
		t.Error("a nil Recorder says it is watched")
	}
	var h *Hub
	if h.Recorder("x") != nil {
		t.Error("a nil Hub gave a Recorder")
	}
}
