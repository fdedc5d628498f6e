package h1

import (
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
)

// Bounds of the kept-alive connections to servers.
const (
	maxIdlePerServer = 128              // as the std engine's MaxIdleConnsPerHost
	idleBackendMax   = 30 * time.Second // then an idle connection is closed
	// peekAfter: a connection idle for longer is checked (one non-blocking
	// peek) before it is reused, as a server may have closed it meanwhile.
	// A server closes an idle connection only after its own keep-alive timeout
	// (seconds: Node's is 5 s, Go's 90 s), so younger ones need no check.
	peekAfter   = time.Second
	backendBuf  = 16 << 10 // response read buffer
	maxRespHead = 64 << 10 // a larger response head is the server's fault: 502
)

// bconn is a connection to a server. It is owned by one request at a time,
// or lies idle in its server's pool.
type bconn struct {
	nc   net.Conn
	raw  syscall.RawConn // for peek; nil when the conn has none
	pl   *pool           // the pool of the server it was dialled to; put gives it back there
	buf  []byte
	r, w int // unread response bytes: buf[r:w]
	dl   deadline
	idle time.Time // when it went back to the pool
	used bool      // has carried a request before
	// down: the server was marked down (by its checks) while this connection's
	// request waited for an answer, which is then given up on (pools.giveUpOnDown).
	down atomic.Bool
}

// pool holds the idle connections of one server, most recently used last, and
// those whose request waits for its answer's head. Only its own mutex guards
// it, so requests to different servers share no lock.
type pool struct {
	addr string
	mu   sync.Mutex
	idle []*bconn
	// waiting are the connections whose request waits for its answer's head,
	// with their server: when the server is marked down meanwhile (its node was
	// cut off, say), the wait ends at once instead of at timeout.server, and a
	// request that may be sent again goes to another server.
	waiting map[*bconn]*backend.Backend
	dead    bool // forgotten by pools: its connections move to the current pool of addr (pools.lock)
}

// pools are the per-server pools of a Server, keyed by address (a server that
// leaves and comes back at the same address finds its connections again). The
// map is copied on write (a new address, the expiry of unused pools) and read
// without a lock, so a request takes no lock shared with other servers.
type pools struct {
	dialer net.Dialer
	mu     sync.Mutex // serialises the writers of m
	m      atomic.Pointer[map[string]*pool]
	closed atomic.Bool // closeIdle ran: a connection given back is closed

	sweepOnce, stopOnce sync.Once
	quit                chan struct{} // closed by stop: sweep returns
	swept               sync.WaitGroup
}

func (p *pools) init(connect time.Duration) {
	p.dialer = net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	p.m.Store(&map[string]*pool{})
	p.quit = make(chan struct{})
}

// wait registers bc as waiting for an answer from b, until done.
func (p *pools) wait(bc *bconn, b *backend.Backend) {
	bc.down.Store(false)
	if pl := p.lock(bc); pl != nil {
		pl.waiting[bc] = b
		pl.mu.Unlock()
	}
}

func (p *pools) done(bc *bconn) {
	pl := bc.pl
	pl.mu.Lock()
	delete(pl.waiting, bc)
	pl.mu.Unlock()
}

// lock locks and returns bc's pool. When expire forgot that pool while bc was
// out, bc moves to the address's current one; nil (nothing locked): the
// Server is closing.
func (p *pools) lock(bc *bconn) *pool {
	pl := bc.pl
	pl.mu.Lock()
	for pl.dead {
		pl.mu.Unlock()
		if p.closed.Load() {
			return nil
		}
		pl = p.add(pl.addr)
		bc.pl = pl
		pl.mu.Lock()
	}
	return pl
}

// giveUpOnDown ends the waits on servers marked down since they began.
func (p *pools) giveUpOnDown() {
	for _, pl := range *p.m.Load() {
		pl.mu.Lock()
		for bc, b := range pl.waiting {
			if !b.Available() && !bc.down.Swap(true) {
				bc.nc.SetReadDeadline(time.Unix(1, 0))
			}
		}
		pl.mu.Unlock()
	}
}

// of is the pool of addr, made on first use.
func (p *pools) of(addr string) *pool {
	if pl := (*p.m.Load())[addr]; pl != nil {
		return pl
	}
	return p.add(addr)
}

// add is the pool of addr in the map as it is once the writers before are
// done (expire's forgotten pools gone), added when missing.
func (p *pools) add(addr string) *pool {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.m.Load()
	if pl := old[addr]; pl != nil {
		return pl
	}
	pl := &pool{addr: addr, waiting: map[*bconn]*backend.Backend{}}
	m := make(map[string]*pool, len(old)+1)
	maps.Copy(m, old)
	m[addr] = pl
	p.m.Store(&m)
	p.sweepOnce.Do(func() { p.swept.Go(p.sweep) })
	return pl
}

// get returns an idle connection to b or dials a new one. A dial failure is a
// *forward.DialError.
func (p *pools) get(b *backend.Backend, now time.Time) (*bconn, error) {
	pl := p.of(b.Addr())
	for {
		pl.mu.Lock()
		n := len(pl.idle)
		if n == 0 {
			pl.mu.Unlock()
			break
		}
		bc := pl.idle[n-1]
		pl.idle[n-1] = nil
		pl.idle = pl.idle[:n-1]
		pl.mu.Unlock()
		if now.Sub(bc.idle) < peekAfter || bc.alive() {
			return bc, nil
		}
		bc.nc.Close()
	}
	return p.dialTo(b, pl)
}

// dial opens a new connection to b.
func (p *pools) dial(b *backend.Backend) (*bconn, error) { return p.dialTo(b, p.of(b.Addr())) }

func (p *pools) dialTo(b *backend.Backend, pl *pool) (*bconn, error) {
	nc, err := p.dialer.Dial("tcp", b.Addr())
	if err != nil {
		return nil, &forward.DialError{Addr: b.Addr(), Err: err}
	}
	bc := &bconn{nc: nc, pl: pl, buf: make([]byte, backendBuf)}
	if sc, ok := nc.(syscall.Conn); ok {
		bc.raw, _ = sc.SyscallConn()
	}
	return bc, nil
}

// drop closes the idle connections of pl, a server's pool.
func (pl *pool) drop() {
	pl.mu.Lock()
	idle := pl.idle
	pl.idle = nil
	pl.mu.Unlock()
	for _, bc := range idle {
		bc.nc.Close()
	}
}

// put gives a connection whose last answer was read whole back to its
// server's pool.
func (p *pools) put(bc *bconn, now time.Time) {
	bc.idle, bc.used, bc.r, bc.w = now, true, 0, 0
	pl := p.lock(bc)
	if pl == nil {
		bc.nc.Close()
		return
	}
	if len(pl.idle) >= maxIdlePerServer {
		pl.mu.Unlock()
		bc.nc.Close()
		return
	}
	pl.idle = append(pl.idle, bc)
	pl.mu.Unlock()
}

// alive peeks at an idle connection without blocking: a server that closed it
// has left an EOF (or a reset) to read; an alive one has nothing to say.
func (bc *bconn) alive() bool {
	if bc.raw == nil {
		return true
	}
	var one [1]byte
	alive := false
	err := bc.raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true // never wait: this is a check, not a read
	})
	return err == nil && alive
}

// sweep gives up on waits for servers marked down, a few times a second, and
// closes connections idle for longer than idleBackendMax and forgets the pools
// left unused, every few seconds, until stop. of starts it with the first pool.
func (p *pools) sweep() {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-p.quit:
			return
		case now := <-tick.C:
			p.giveUpOnDown()
			if n%20 == 0 {
				p.expire(now)
			}
		}
	}
}

// stop ends sweep (or keeps it from starting) and waits for it to return.
func (p *pools) stop() {
	p.stopOnce.Do(func() { close(p.quit) })
	p.sweepOnce.Do(func() {})
	p.swept.Wait()
}

// expire closes the connections idle for longer than idleBackendMax and
// forgets the pools left with none idle and none waiting.
func (p *pools) expire(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.m.Load()
	m := make(map[string]*pool, len(old))
	for addr, pl := range old {
		pl.mu.Lock()
		keep := pl.idle[:0]
		for _, bc := range pl.idle {
			if now.Sub(bc.idle) > idleBackendMax {
				bc.nc.Close()
				continue
			}
			keep = append(keep, bc)
		}
		clear(pl.idle[len(keep):])
		pl.idle = keep
		if len(keep) == 0 && len(pl.waiting) == 0 {
			pl.dead = true
		} else {
			m[addr] = pl
		}
		pl.mu.Unlock()
	}
	if len(m) < len(old) {
		p.m.Store(&m)
	}
}

// closeIdle closes every idle connection and stops sweep (shutdown): a
// connection given back later is closed.
func (p *pools) closeIdle() {
	p.closed.Store(true)
	p.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pl := range *p.m.Load() {
		pl.mu.Lock()
		for _, bc := range pl.idle {
			bc.nc.Close()
		}
		pl.idle, pl.dead = nil, true
		pl.mu.Unlock()
	}
	p.m.Store(&map[string]*pool{})
}

// deadline sets a connection's read or write deadline lazily: only when the
// wanted one is earlier than the one set, or later by more than an eighth of
// the timeout. So a timeout fires between 7/8 of it and all of it after the
// last activity, and a busy connection pays for a deadline (a runtime timer
// update) a few times a minute instead of on every request.
type deadline struct{ r, w time.Time }

type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

func (d *deadline) read(c deadliner, now time.Time, timeout time.Duration) {
	want := now.Add(timeout)
	if d.r.IsZero() || d.r.After(want) || want.Sub(d.r) > timeout/8 {
		d.r = want
		c.SetReadDeadline(want)
	}
}

func (d *deadline) write(c deadliner, now time.Time, timeout time.Duration) {
	want := now.Add(timeout)
	if d.w.IsZero() || d.w.After(want) || want.Sub(d.w) > timeout/8 {
		d.w = want
		c.SetWriteDeadline(want)
	}
}
