// Package backend holds the servers of one service (a Pool of Backends), picks
// one per request (round robin or least connections, among available servers
// only) and gives every server its short opaque id.
//
// A Backend is shared by the request path, the health checker and the admin
// port, so everything on it is atomic. A Pool's membership changes through
// Update (discovery) and is read through an immutable snapshot, so Pick and
// Lookup never take a lock.
package backend

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// State is what a server is doing now.
type State int32

// The states, as they show in /stats.
const (
	Up       State = iota // takes new requests
	Down                  // failed its checks or refused a connection
	Draining              // left discovery; finishes its in-flight requests, then goes
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	case Draining:
		return "draining"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Backend is one server of a service. Its zero value is not usable; Pools
// make them.
type Backend struct {
	id   string
	addr string
	pool *Pool // whose observer hears b's changes; nil for a Backend made by New

	down     atomic.Bool
	stalled  atomic.Bool // marked down by a request it did not answer in time
	draining atomic.Bool
	active   atomic.Int64
	requests atomic.Uint64
	failures atomic.Uint64
}

// New makes a Backend that starts up (as HAProxy assumes a server up until its
// checks say otherwise). Pools call it; tests may too.
func New(id, addr string) *Backend { return &Backend{id: id, addr: addr} }

// ID is the server's cookie id: short, opaque, the same on every proxy.
func (b *Backend) ID() string { return b.id }

// Addr is the host:port requests are sent to. It must not reach clients.
func (b *Backend) Addr() string { return b.addr }

// State reports up, down or draining (draining wins over down).
func (b *Backend) State() State {
	switch {
	case b.draining.Load():
		return Draining
	case b.down.Load():
		return Down
	}
	return Up
}

// Available reports whether new requests may go to b.
func (b *Backend) Available() bool { return !b.down.Load() && !b.draining.Load() }

// SetUp marks b up or down and reports whether that changed its health.
func (b *Backend) SetUp(up bool) (changed bool) {
	if up {
		b.stalled.Store(false)
	}
	changed = b.down.Swap(!up) == up
	if changed {
		c := WentDown
		if up {
			c = CameUp
		}
		b.pool.notify(b, c)
	}
	return changed
}

// Change is a change of a server that a Pool's observer hears of.
type Change uint8

// The changes, named as the live view shows them.
const (
	Joined          Change = iota + 1 // discovery found it (or it came back while draining)
	WentDown                          // failed its checks, refused a connection, or stalled
	CameUp                            // passed its checks again
	StartedDraining                   // left discovery; finishing its requests in flight
	Left                              // gone from the pool
)

func (c Change) String() string {
	switch c {
	case Joined:
		return "joined"
	case WentDown:
		return "down"
	case CameUp:
		return "up"
	case StartedDraining:
		return "draining"
	case Left:
		return "left"
	}
	return fmt.Sprintf("Change(%d)", uint8(c))
}

// Stalled marks b down because a request sent to it got no answer within the
// server timeout: it accepts connections but does not answer (hung), which a
// TCP check alone would never notice. It counts a failure. Until b is marked up
// again, health checks must see it answer HTTP (see health.Checker). It
// reports whether b was up.
func (b *Backend) Stalled() (changed bool) {
	b.failures.Add(1)
	b.stalled.Store(true)
	return b.SetUp(false)
}

// IsStalled reports whether b is down for not answering in time (Stalled).
func (b *Backend) IsStalled() bool { return b.stalled.Load() }

// Acquire counts a request starting on b; Release, ReleaseFailed or ReleaseUnsent
// must follow when it ends.
func (b *Backend) Acquire() {
	b.active.Add(1)
	b.requests.Add(1)
}

// Release ends a request counted by Acquire.
func (b *Backend) Release() { b.active.Add(-1) }

// ReleaseFailed ends, instead of Release, an attempt that never reached the server
// (the connection failed): it undoes Acquire and counts a failure, not a request.
func (b *Backend) ReleaseFailed() {
	b.active.Add(-1)
	b.requests.Add(^uint64(0))
	b.failures.Add(1)
}

// ReleaseUnsent ends, instead of Release, an attempt that was never sent: it undoes
// Acquire without counting a failure.
func (b *Backend) ReleaseUnsent() {
	b.active.Add(-1)
	b.requests.Add(^uint64(0))
}

// Active is the number of requests in flight on b.
func (b *Backend) Active() int64 { return b.active.Load() }

// Requests is the number of requests b has answered or is answering.
func (b *Backend) Requests() uint64 { return b.requests.Load() }

// Failures is the number of attempts that could not reach b.
func (b *Backend) Failures() uint64 { return b.failures.Load() }

// Balance is how a Pool picks among its available servers.
type Balance int32

// The balancing algorithms, named as in HAProxy (and dockercloud's BALANCE).
const (
	RoundRobin Balance = iota // in turn, over the available servers
	LeastConn                 // fewest requests in flight; ties in turn
	// Source hashes the client's address onto a consistent-hash ring
	// (HAProxy `balance source` with `hash-type consistent`): a client keeps
	// its server while that server is available, and removing one of N
	// servers moves only the clients it had, about 1/N of them.
	Source
	// StaticRR takes the servers in their fixed order, skipping the
	// unavailable ones, whose turn goes to the next (HAProxy static-rr).
	StaticRR
)

func (b Balance) String() string {
	switch b {
	case LeastConn:
		return "leastconn"
	case Source:
		return "source"
	case StaticRR:
		return "static-rr"
	}
	return "roundrobin"
}

// ParseBalance reads dockercloud's BALANCE values that the proxy implements:
// roundrobin ("" too), static-rr, leastconn and source.
func ParseBalance(s string) (Balance, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "roundrobin":
		return RoundRobin, nil
	case "leastconn":
		return LeastConn, nil
	case "source":
		return Source, nil
	case "static-rr":
		return StaticRR, nil
	}
	return 0, fmt.Errorf("%q is not supported; write roundrobin, static-rr, leastconn or source", s)
}

// Pool is the set of servers of one service. The zero value is not usable;
// use NewPool. All methods are safe for concurrent use.
type Pool struct {
	ids     IDs
	balance atomic.Int32
	rr      atomic.Uint64

	mu   sync.Mutex // serialises writers of snap
	snap atomic.Pointer[snapshot]
	obs  atomic.Pointer[func(*Backend, Change)]
}

// Observe makes f hear of every change of the pool's servers, from whichever
// goroutine makes it (discovery, a health check, a request that could not
// reach a server), once per change, after it is made. f must be quick and must
// not call the pool. nil stops it.
func (p *Pool) Observe(f func(*Backend, Change)) {
	if f == nil {
		p.obs.Store(nil)
		return
	}
	p.obs.Store(&f)
}

func (p *Pool) notify(b *Backend, c Change) {
	if p == nil {
		return
	}
	if f := p.obs.Load(); f != nil {
		(*f)(b, c)
	}
}

type snapshot struct {
	all  []*Backend // sorted by address; includes down and draining ones
	byID map[string]*Backend
	ring []point // the consistent-hash ring, sorted by hash; nil unless the balance is Source
}

// NewPool makes an empty pool naming its servers with ids.
func NewPool(ids IDs, balance Balance) *Pool {
	p := &Pool{ids: ids}
	p.balance.Store(int32(balance))
	p.snap.Store(&snapshot{byID: map[string]*Backend{}})
	return p
}

// SetBalance changes the algorithm (on a reload). A pool that turns to Source
// gets its ring here, before Source is in use; Update and Prune keep it up while
// it stays, and no other balance has one.
func (p *Pool) SetBalance(b Balance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b == Source && p.Balance() != Source {
		old := p.snap.Load()
		p.snap.Store(&snapshot{all: old.all, byID: old.byID, ring: buildRing(old.all)})
	}
	p.balance.Store(int32(b))
}

// Balance reports the algorithm in use.
func (p *Pool) Balance() Balance { return Balance(p.balance.Load()) }

// Backends lists every server, down and draining ones included, by address.
// The slice must not be modified.
func (p *Pool) Backends() []*Backend { return p.snap.Load().all }

// Lookup finds a server by id, whatever its state. As a map lookup it takes
// the same time for any unknown id, so ids reveal nothing by timing.
func (p *Pool) Lookup(id string) (*Backend, bool) {
	b, ok := p.snap.Load().byID[id]
	return b, ok
}

// Available counts the servers that take new requests.
func (p *Pool) Available() int {
	n := 0
	for _, b := range p.snap.Load().all {
		if b.Available() {
			n++
		}
	}
	return n
}

// Update sets the servers the service should have. New addresses join (up);
// servers whose address is gone start draining and leave once their in-flight
// requests are done (see Prune); a draining server whose address comes back
// stays. It returns the servers that joined and those that started draining.
func (p *Pool) Update(addrs []string) (joined, leaving []*Backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.snap.Load()
	want := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		want[a] = true
	}
	next := &snapshot{byID: make(map[string]*Backend, len(addrs))}
	have := make(map[string]bool, len(old.all))
	var back, gone []*Backend // draining ones whose address came back; left now
	for _, b := range old.all {
		have[b.addr] = true
		if want[b.addr] {
			if b.draining.Swap(false) {
				back = append(back, b)
			}
		} else if !b.draining.Swap(true) {
			leaving = append(leaving, b)
		}
		if b.draining.Load() && b.active.Load() == 0 {
			gone = append(gone, b)
			continue // nothing in flight: leave now
		}
		next.all = append(next.all, b)
	}
	for a := range want {
		if !have[a] {
			b := New(p.ids.ID(a), a)
			b.pool = p
			joined = append(joined, b)
			next.all = append(next.all, b)
		}
	}
	slices.SortFunc(next.all, func(a, b *Backend) int { return strings.Compare(a.addr, b.addr) })
	for _, b := range next.all {
		next.byID[b.id] = b
	}
	if p.Balance() == Source {
		next.ring = buildRing(next.all)
	}
	p.snap.Store(next)
	for _, b := range append(joined, back...) {
		p.notify(b, Joined)
	}
	for _, b := range leaving {
		p.notify(b, StartedDraining)
	}
	for _, b := range gone {
		p.notify(b, Left)
	}
	return joined, leaving
}

// Prune removes draining servers that have no request in flight and returns
// them. Discovery and the health checker call it every round.
func (p *Pool) Prune() (gone []*Backend) {
	old := p.snap.Load()
	found := false
	for _, b := range old.all {
		if b.draining.Load() && b.active.Load() == 0 {
			found = true
			break
		}
	}
	if !found {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old = p.snap.Load()
	next := &snapshot{byID: make(map[string]*Backend, len(old.all))}
	for _, b := range old.all {
		if b.draining.Load() && b.active.Load() == 0 {
			gone = append(gone, b)
			continue
		}
		next.all = append(next.all, b)
		next.byID[b.id] = b
	}
	if p.Balance() == Source {
		next.ring = buildRing(next.all)
	}
	p.snap.Store(next)
	for _, b := range gone {
		p.notify(b, Left)
	}
	return gone
}

// Pick chooses an available server that is not in tried, by the pool's
// balance algorithm. It returns false when there is none. Source, which needs
// the client's address, treats every caller of Pick as one client: use PickFor.
func (p *Pool) Pick(tried ...*Backend) (*Backend, bool) { return p.PickFor(netip.Addr{}, tried...) }

// PickFor is Pick for a request of the client at address client (the
// balance source key; the other algorithms ignore it). It allocates nothing.
func (p *Pool) PickFor(client netip.Addr, tried ...*Backend) (*Backend, bool) {
	snap := p.snap.Load()
	all := snap.all
	ok := func(b *Backend) bool { return b.Available() && !slices.Contains(tried, b) }
	switch Balance(p.balance.Load()) {
	case Source:
		return snap.onRing(clientHash(client), ok)
	case StaticRR:
		if len(all) == 0 {
			return nil, false
		}
		k := int((p.rr.Add(1) - 1) % uint64(len(all)))
		for i := range all {
			if b := all[(k+i)%len(all)]; ok(b) {
				return b, true
			}
		}
		return nil, false
	case LeastConn:
		// Fewest requests in flight; ties go round robin, as HAProxy does.
		start := int(p.rr.Add(1) % uint64(max(len(all), 1)))
		var best *Backend
		for i := range all {
			b := all[(start+i)%len(all)]
			if ok(b) && (best == nil || b.active.Load() < best.active.Load()) {
				best = b
			}
		}
		return best, best != nil
	}
	// Round robin over the available servers only, so that a down server's
	// share is spread evenly rather than going to its neighbour.
	n := 0
	for _, b := range all {
		if ok(b) {
			n++
		}
	}
	if n == 0 {
		return nil, false
	}
	k := int((p.rr.Add(1) - 1) % uint64(n))
	for _, b := range all {
		if ok(b) {
			if k == 0 {
				return b, true
			}
			k--
		}
	}
	return nil, false // not reached
}
