// Package live is the proxy's live classroom view: a page on the admin port
// (/live) fed by server-sent events (/live/events) that shows, per service,
// each server with its state and requests per second, the recent visitors as
// they are routed (and moved, when their server goes), the sticky outcomes per
// second, and the servers' changes (joined, down, up, draining, left) as they
// happen.
//
// What it costs the proxy: with nobody watching, one atomic load per request
// (Recorder.Watched). With viewers, each request also hashes its visitor and
// updates a fixed-size table under the service's mutex, without allocating. A
// single goroutine (Hub.Run) turns what changed into one message every
// Interval, the same bytes for every viewer, and hands it to each viewer's
// queue of a few messages; a viewer whose queue is full misses the message, is
// told so, and gets the whole state in its next one. A slow viewer never slows
// a request, and never makes the proxy hold more than its queue.
//
// What it shows of a visitor: a short keyed hash of its sticky cookie (prefix
// mode's, one per visitor) or else of its connection (insert and rewrite
// cookies hold the server's id, the same for all its visitors), never the
// cookie, never an address. Servers are shown by their
// cookie id, as in /stats.
package live

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
)

// Options configure a Hub. Zero fields take the defaults shown.
type Options struct {
	// Sources lists the services to show, in order, each time a message is
	// made (required). It is called from Run's goroutine only.
	Sources func() []Source
	// Interval between two messages: 250ms.
	Interval time.Duration
	// Window: visitors not seen for this long leave the view: 60s.
	Window time.Duration
	// MaxViewers at once; more are refused with 503: 16.
	MaxViewers int
}

// Source is one service as the view shows it.
type Source struct {
	Name    string
	Cookie  string // the sticky cookie's rule as configured ("SRV insert indirect"); "": none
	Balance string // how a server is chosen without a cookie: "roundrobin", "source", ...
	Pool    *backend.Pool
	Live    *Recorder // Hub.Recorder(Name)
}

// Most of what one message carries: events kept for a viewer that comes (or
// comes back) and visitors per service. A visitor table holds more, for moves.
const (
	maxEvents        = 64
	maxShownVisitors = 300
	viewerQueue      = 4 // messages: one second at the default interval
)

// Hub is the live view of one proxy: the Recorders of its services, the log of
// its servers' changes, its viewers and the goroutine that feeds them. Make it
// with NewHub; run Run in a goroutine of its own.
type Hub struct {
	o       Options
	start   time.Time
	viewers atomic.Int32 // open event streams; > 0: the engines record
	dropped atomic.Uint64

	mu        sync.Mutex // guards what follows
	recorders map[string]*Recorder
	views     map[*viewer]struct{}
	events    []Event // the last maxEvents, oldest first
	eventSeq  uint64
	closed    chan struct{} // closed by Close: every stream ends

	// Run's own, touched by no other goroutine.
	hist      map[string]*history
	ticks     uint64 // messages built: histories not used in the last one go
	sentSeq   map[*Recorder]uint64
	sentEvent uint64
	buf       []VisitorState
}

// NewHub makes a hub; its streams carry nothing until Run runs.
func NewHub(o Options) *Hub {
	if o.Interval <= 0 {
		o.Interval = 250 * time.Millisecond
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.MaxViewers <= 0 {
		o.MaxViewers = 16
	}
	return &Hub{o: o, start: time.Now(), recorders: map[string]*Recorder{}, views: map[*viewer]struct{}{},
		closed: make(chan struct{}), hist: map[string]*history{}, sentSeq: map[*Recorder]uint64{}}
}

// now is the hub's clock: monotonic nanoseconds since NewHub.
func (h *Hub) now() int64 { return int64(time.Since(h.start)) }

// Recorder is the Recorder of the service called name: the same one for the
// same name, across reloads. A nil Hub gives a nil Recorder (never watched).
func (h *Hub) Recorder(name string) *Recorder {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.recorders[name]
	if r == nil {
		r = &Recorder{hub: h}
		h.recorders[name] = r
	}
	return r
}

// Event is a change of a server, as the view lists it.
type Event struct {
	Seq     uint64 `json:"seq"`
	AgoMS   int64  `json:"ago_ms"` // how long before the message it happened
	Service string `json:"service"`
	Server  string `json:"server"`
	Kind    string `json:"kind"`          // joined, down, up, draining, left
	Why     string `json:"why,omitempty"` // for down: what the proxy saw, when it knows
	at      int64
}

// ServerChanged records a change of server b of service: the backend pool's
// observer (backend.Pool.Observe) calls it for every change, whoever made it
// (discovery, a health check, a request that could not reach the server). It is
// kept whether or not anyone watches, so that a viewer who comes later sees the
// last ones.
func (h *Hub) ServerChanged(service string, b *backend.Backend, c backend.Change) {
	if h == nil {
		return
	}
	ev := Event{Service: service, Server: b.ID(), Kind: c.String(), at: h.now()}
	if c == backend.WentDown && b.IsStalled() {
		ev.Why = "no answer within timeout.server"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.eventSeq++
	ev.Seq = h.eventSeq
	if len(h.events) == maxEvents {
		h.events = append(h.events[:0], h.events[1:]...)
	}
	h.events = append(h.events, ev)
}

// Close ends every event stream and refuses new ones (at shutdown: a stream
// never ends by itself).
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.closed:
	default:
		close(h.closed)
	}
}

// Run makes and sends a message every Interval while anyone watches, until ctx
// is done. It is the only goroutine that builds messages.
func (h *Hub) Run(ctx context.Context) {
	tick := time.NewTicker(h.o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if h.viewers.Load() > 0 {
				h.send()
			}
		}
	}
}

// viewer is one open event stream.
type viewer struct {
	q        chan []byte
	needFull atomic.Bool   // its next message must carry the whole state
	dropped  atomic.Uint64 // messages it missed since it was last told
}

// hubStats say how the viewers fare, for the tests.
type hubStats struct {
	Viewers int    // event streams open now
	Dropped uint64 // messages slow viewers missed (their queue was full)
}

func (h *Hub) stats() hubStats {
	return hubStats{Viewers: int(h.viewers.Load()), Dropped: h.dropped.Load()}
}

func (h *Hub) add() (*viewer, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.closed:
		return nil, false
	default:
	}
	if len(h.views) >= h.o.MaxViewers {
		return nil, false
	}
	v := &viewer{q: make(chan []byte, viewerQueue)}
	v.needFull.Store(true)
	h.views[v] = struct{}{}
	h.viewers.Add(1)
	return v, true
}

func (h *Hub) remove(v *viewer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.views, v)
	h.viewers.Add(-1)
}

// send builds this interval's messages, the changes and (for viewers that need
// it) the whole state, and queues them without ever waiting for a viewer.
func (h *Hub) send() {
	h.mu.Lock()
	views := make([]*viewer, 0, len(h.views))
	for v := range h.views {
		views = append(views, v)
	}
	events := slices.Clone(h.events)
	h.mu.Unlock()

	wantFull, wantDelta := false, false
	for _, v := range views {
		if v.needFull.Load() {
			wantFull = true
		} else {
			wantDelta = true
		}
	}
	now := h.now()
	srcs := h.o.Sources()
	var full, delta []byte
	if wantFull {
		full = h.message(srcs, events, now, true)
	}
	// The changes are made last: they move the marks of what was sent.
	delta = h.message(srcs, events, now, false)
	for k, hs := range h.hist {
		if hs.used != h.ticks {
			delete(h.hist, k) // a server or service gone
		}
	}
	h.ticks++
	for _, v := range views {
		msg := delta
		isFull := v.needFull.Load()
		if isFull {
			msg = full
		}
		if !wantDelta && !isFull {
			continue
		}
		select {
		case v.q <- msg:
			if isFull {
				v.needFull.Store(false)
			}
		default:
			// Its queue is full: it misses this one, is told so, and catches
			// up with the whole state.
			v.dropped.Add(1)
			h.dropped.Add(1)
			v.needFull.Store(true)
		}
	}
}

// message is one SSE message (event "state") of the view: every server and
// rate, and the visitors and events since the last message, or with full all of
// them.
func (h *Hub) message(srcs []Source, events []Event, now int64, full bool) []byte {
	m := Message{Full: full, IntervalMS: h.o.Interval.Milliseconds(), WindowMS: h.o.Window.Milliseconds(),
		Services: make([]ServiceState, 0, len(srcs))}
	for _, src := range srcs {
		ss := ServiceState{Name: src.Name, Cookie: src.Cookie, Balance: src.Balance, Servers: []ServerState{}}
		since := uint64(0)
		if !full {
			since = h.sentSeq[src.Live]
		}
		var c counts
		var last uint64
		if src.Live != nil {
			h.buf, c, last = src.Live.snapshot(h.buf[:0], since, now, int64(h.o.Window), maxShownVisitors)
		}
		ss.Visitors = append([]VisitorState{}, h.buf...)
		if !full {
			h.sentSeq[src.Live] = last
		}
		hs := h.history("service " + src.Name)
		ss.Rates = hs.rates(now, c, full)
		if src.Pool != nil {
			for _, b := range src.Pool.Backends() {
				st := ServerState{ID: b.ID(), State: b.State().String(), Active: b.Active()}
				st.RPS = h.history("server "+src.Name+" "+b.ID()).rates(now, counts{requests: b.Requests()}, full).Requests
				ss.Servers = append(ss.Servers, st)
			}
		}
		m.Services = append(m.Services, ss)
	}
	m.Events = []Event{}
	for _, ev := range events {
		if full || ev.Seq > h.sentEvent {
			ev.AgoMS = ms(now - ev.at)
			m.Events = append(m.Events, ev)
		}
	}
	if !full && len(events) > 0 {
		h.sentEvent = events[len(events)-1].Seq
	}
	b, _ := json.Marshal(m) // plain structs of strings and numbers: never fails
	return b
}

// Message is the data of one "state" event of /live/events.
type Message struct {
	Full       bool           `json:"full"` // the whole state: forget what came before
	IntervalMS int64          `json:"interval_ms"`
	WindowMS   int64          `json:"window_ms"` // a visitor not seen for this long leaves the view
	Services   []ServiceState `json:"services"`
	Events     []Event        `json:"events"` // oldest first; a full message repeats the last ones
}

// ServiceState is one service in a Message.
type ServiceState struct {
	Name     string         `json:"name"`
	Cookie   string         `json:"cookie"`  // the sticky cookie's rule; "": none
	Balance  string         `json:"balance"` // "roundrobin", "source" (sticky by address), ...
	Rates    Rates          `json:"rates"`
	Servers  []ServerState  `json:"servers"`
	Visitors []VisitorState `json:"visitors"` // changed since the last message (all, when full), most recent first
}

// Rates are per second, over about the last second.
type Rates struct {
	Requests   float64 `json:"requests"`
	Hit        float64 `json:"hit"`
	New        float64 `json:"new"`
	Rebalanced float64 `json:"rebalanced"`
	Failed     float64 `json:"failed"` // no server answered, a 5xx, or no whole answer
}

// ServerState is one server in a Message.
type ServerState struct {
	ID     string  `json:"id"`
	State  string  `json:"state"` // up, down, draining
	RPS    float64 `json:"rps"`
	Active int64   `json:"active"`
}

// history is the last few samples of a set of counters, to turn them into
// rates over about a second.
type history struct {
	used uint64 // Hub.ticks when last used
	at   [5]int64
	c    [5]counts
	n, i int
	rate Rates // the last computed
}

func (h *Hub) history(key string) *history {
	hs := h.hist[key]
	if hs == nil {
		hs = &history{}
		h.hist[key] = hs
	}
	hs.used = h.ticks
	return hs
}

// rates adds a sample (unless peek: a full message repeats the last rates) and
// returns the rates over the samples held.
func (hs *history) rates(now int64, c counts, peek bool) Rates {
	if peek && hs.n > 0 {
		return hs.rate
	}
	hs.at[hs.i], hs.c[hs.i] = now, c
	hs.i = (hs.i + 1) % len(hs.at)
	if hs.n < len(hs.at) {
		hs.n++
	}
	oldest := (hs.i - hs.n + len(hs.at)) % len(hs.at)
	newest := (hs.i - 1 + len(hs.at)) % len(hs.at)
	d := float64(hs.at[newest]-hs.at[oldest]) / 1e9
	if d <= 0 {
		return Rates{}
	}
	a, b := hs.c[oldest], hs.c[newest]
	per := func(x, y uint64) float64 { return float64(y-x) / d }
	hs.rate = Rates{Requests: per(a.requests, b.requests), Hit: per(a.hit, b.hit), New: per(a.new, b.new),
		Rebalanced: per(a.rebalanced, b.rebalanced), Failed: per(a.failed, b.failed)}
	return hs.rate
}
