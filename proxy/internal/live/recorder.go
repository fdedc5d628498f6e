package live

import (
	"sync"
)

// Outcome is what the sticky cookie did for a request: NotSticky (the service
// has no cookie), Hit (the cookie's server answered), New (no id: balanced),
// Rebalanced (the id's server was gone or refused: balanced elsewhere). It is
// the one definition: forward.Sticky is this type, its constants these.
type Outcome uint8

// The outcomes.
const (
	NotSticky Outcome = iota
	Hit
	New
	Rebalanced
)

func (o Outcome) String() string {
	switch o {
	case Hit:
		return "hit"
	case New:
		return "new"
	case Rebalanced:
		return "rebalanced"
	}
	return ""
}

// Bounds of what a Recorder keeps: the visitors seen last and the cookies that
// name them after a move. Both tables are allocated once, by the first request
// recorded, and never grow.
const (
	MaxVisitors = 1024
	maxAliases  = 2 * MaxVisitors
)

// Recorder is the live view's state of one service: its recent visitors, each
// with the server that answered it last, and what its requests did. The engines
// call Request at the end of every request while Watched; nothing else of the
// request path touches it. Its methods are safe for concurrent use; a nil
// Recorder is never watched.
type Recorder struct {
	hub *Hub

	mu       sync.Mutex
	visitors *table[visitorEntry]
	aliases  *table[uint64] // a cookie given after a move -> the visitor it names
	seq      uint64         // bumped by every change of a visitor
	counts   counts         // of the requests recorded (while watched)
}

// counts are a service's requests by outcome, counted while someone watches.
type counts struct {
	requests, hit, new, rebalanced, failed uint64
}

type visitorEntry struct {
	server, from string // the id of the server that answered last, and of the one before
	seen, moved  int64  // Hub.now of the last request, and of the last change of server
	n            uint32 // requests recorded
	outcome      Outcome
	seq          uint64 // Recorder.seq at the last request
}

// Watched reports whether anyone watches the live view. It is one atomic load:
// the engines check it before they compute a Visitor.
func (r *Recorder) Watched() bool { return r != nil && r.hub.viewers.Load() > 0 }

// Request records one finished request of visitor v answered by the server
// whose id is server ("": no server answered; the request counts as failed and
// moves no visitor) with status (0: no whole answer). It allocates nothing but
// the first time.
func (r *Recorder) Request(v Visitor, server string, o Outcome, status int) {
	now := r.hub.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.visitors == nil {
		r.visitors = newTable[visitorEntry](MaxVisitors)
		r.aliases = newTable[uint64](maxAliases)
	}
	c := &r.counts
	c.requests++
	switch o {
	case Hit:
		c.hit++
	case New:
		c.new++
	case Rebalanced:
		c.rebalanced++
	}
	if status == 0 || status >= 500 || server == "" {
		c.failed++
	}

	key := v.Client
	switch {
	case v.Cookie != 0:
		key = v.Cookie
		if a, ok := r.aliases.get(v.Cookie); ok {
			key = *a
		}
	case v.Set != 0:
		key = v.Set // a first visit: named by the cookie it gets
	}
	if key == 0 {
		return
	}
	if v.Set != 0 && v.Set != key {
		a, _ := r.aliases.put(v.Set)
		*a = key
	}
	if server == "" {
		return
	}
	e, created := r.visitors.put(key)
	if !created && e.server != server {
		e.from, e.moved = e.server, now
	}
	e.server, e.seen, e.outcome = server, now, o
	e.n++
	r.seq++
	e.seq = r.seq
}

// VisitorState is one visitor in a message of the live view.
type VisitorState struct {
	V       string `json:"v"`              // a short keyed hash: never the cookie, never an address
	Server  string `json:"s"`              // the server that answered it last
	From    string `json:"from,omitempty"` // the server before, if it moved
	Outcome string `json:"o,omitempty"`    // of its last request: hit, new, rebalanced ("": not sticky)
	N       uint32 `json:"n"`              // its requests seen
	SeenMS  int64  `json:"seen_ms"`        // how long ago its last request ended
	MovedMS int64  `json:"moved_ms,omitempty"`
}

// snapshot appends to dst the visitors seen within window of now, most recent
// first, at most limit; with since > 0 only those changed after seq since. It
// returns the counts and the seq of the last change.
func (r *Recorder) snapshot(dst []VisitorState, since uint64, now, window int64, limit int) ([]VisitorState, counts, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.visitors == nil {
		return dst, r.counts, r.seq
	}
	n := 0
	r.visitors.each(func(key uint64, e *visitorEntry) bool {
		if e.seq <= since || now-e.seen > window || n >= limit {
			return false // most recent first: the rest are older still
		}
		n++
		vs := VisitorState{V: visitorName(key), Server: e.server, From: e.from, Outcome: e.outcome.String(),
			N: e.n, SeenMS: ms(now - e.seen)}
		if e.from != "" {
			vs.MovedMS = max(ms(now-e.moved), 1)
		}
		dst = append(dst, vs)
		return true
	})
	return dst, r.counts, r.seq
}

// visitorName is what the view shows of a visitor: 8 hex digits of its key,
// itself a keyed hash.
func visitorName(key uint64) string {
	const hex = "0123456789abcdef"
	var b [8]byte
	for i := range b {
		b[i] = hex[(key>>(60-4*uint(i)))&0xf]
	}
	return string(b[:])
}

func ms(ns int64) int64 { return ns / 1e6 }
