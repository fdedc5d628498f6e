package h1

import (
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
	buf  []byte
	r, w int // unread response bytes: buf[r:w]
	dl   deadline
	idle time.Time // when it went back to the pool
	used bool      // has carried a request before
	// down: the server was marked down (by its checks) while this connection's
	// request waited for an answer, which is then given up on (pools.watch).
	down atomic.Bool
}

// pool holds the idle connections of one server, most recently used last.
type pool struct {
	mu   sync.Mutex
	idle []*bconn
	dead bool // dropped from pools: connections given back are closed
}

// pools are the per-server pools of a Server, keyed by address (a server that
// leaves and comes back at the same address finds its connections again).
type pools struct {
	dialer net.Dialer
	mu     sync.Mutex
	m      map[string]*pool
	once   sync.Once

	// waiting are the connections whose request waits for its answer's head,
	// with their server: when the server is marked down meanwhile (its node was
	// cut off, say), the wait ends at once instead of at timeout.server, and a
	// request that may be sent again goes to another server.
	wmu     sync.Mutex
	waiting map[*bconn]*backend.Backend
}

func (p *pools) init(connect time.Duration) {
	p.dialer = net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	p.m = map[string]*pool{}
	p.waiting = map[*bconn]*backend.Backend{}
}

// wait registers bc as waiting for an answer from b, until done.
func (p *pools) wait(bc *bconn, b *backend.Backend) {
	p.once.Do(func() { go p.sweep() })
	bc.down.Store(false)
	p.wmu.Lock()
	p.waiting[bc] = b
	p.wmu.Unlock()
}

func (p *pools) done(bc *bconn) {
	p.wmu.Lock()
	delete(p.waiting, bc)
	p.wmu.Unlock()
}

// giveUpOnDown ends the waits on servers marked down since they began.
func (p *pools) giveUpOnDown() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	for bc, b := range p.waiting {
		if !b.Available() && !bc.down.Swap(true) {
			bc.nc.SetReadDeadline(time.Unix(1, 0))
		}
	}
}

func (p *pools) of(addr string) *pool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := p.m[addr]
	if pl == nil {
		pl = &pool{}
		p.m[addr] = pl
		p.once.Do(func() { go p.sweep() })
	}
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
	return p.dial(b)
}

// dial opens a new connection to b.
func (p *pools) dial(b *backend.Backend) (*bconn, error) {
	nc, err := p.dialer.Dial("tcp", b.Addr())
	if err != nil {
		return nil, &forward.DialError{Addr: b.Addr(), Err: err}
	}
	bc := &bconn{nc: nc, buf: make([]byte, backendBuf)}
	if sc, ok := nc.(syscall.Conn); ok {
		bc.raw, _ = sc.SyscallConn()
	}
	return bc, nil
}

// drop closes b's idle connections.
func (p *pools) drop(b *backend.Backend) {
	pl := p.of(b.Addr())
	pl.mu.Lock()
	idle := pl.idle
	pl.idle = nil
	pl.mu.Unlock()
	for _, bc := range idle {
		bc.nc.Close()
	}
}

// put gives a connection whose last answer was read whole back to b's pool.
func (p *pools) put(b *backend.Backend, bc *bconn, now time.Time) {
	pl := p.of(b.Addr())
	bc.idle, bc.used, bc.r, bc.w = now, true, 0, 0
	pl.mu.Lock()
	if pl.dead || len(pl.idle) >= maxIdlePerServer {
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
// closes connections idle for longer than idleBackendMax and forgets the pools left
// empty, every few seconds, for the life of the process.
func (p *pools) sweep() {
	n := 0
	for now := range time.Tick(250 * time.Millisecond) {
		p.giveUpOnDown()
		if n++; n%20 == 0 {
			p.expire(now)
		}
	}
}

func (p *pools) expire(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, pl := range p.m {
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
		if len(keep) == 0 {
			pl.dead = true
			delete(p.m, addr)
		}
		pl.mu.Unlock()
	}
}

// closeIdle closes every idle connection (shutdown).
func (p *pools) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, pl := range p.m {
		pl.mu.Lock()
		for _, bc := range pl.idle {
			bc.nc.Close()
		}
		pl.idle, pl.dead = nil, true
		pl.mu.Unlock()
		delete(p.m, addr)
	}
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
