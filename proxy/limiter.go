package main

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// limiter keeps the client connections within maxconn (HAProxy's), and those of one
// client address within maxconn_per_ip, without ever making a client wait in the
// kernel's backlog:
//
//   - every connection is accepted at once;
//   - at the limit, the connection idle the longest (a kept-alive one waiting for its
//     next request, or one that has sent nothing yet) is closed to make room, as HAProxy
//     closes idle keep-alive connections under pressure;
//   - when none is idle, the new client gets a quick "503 Service Unavailable" with
//     Connection: close (429 Too Many Requests when its own address is over its cap),
//     or a reset when too many such answers are already being written.
//
// The engines report each connection's state through connState (net/http's ConnState
// hook has the same shape): idle between requests, active while one is read or served.
type limiter struct {
	max, perIP int
	tunnel     time.Duration // the idle bound of a connection net/http hijacked
	open       atomic.Int64  // connections held now, for /stats and /metrics
	rejected   [2]atomic.Uint64
	refusing   chan struct{} // a slot per over-limit answer being written

	mu    sync.Mutex
	conns map[*limitConn]struct{}
	byIP  map[netip.Addr]int
}

// Why a connection was refused, for /metrics.
const (
	rejectedMaxConn = iota
	rejectedPerIP
)

// Bounds of an over-limit answer: they never hold a slot of their own.
const (
	refuseAtOnce = 64                     // answers written at the same time; beyond, a reset
	refuseTime   = 200 * time.Millisecond // to read the request and write the answer
)

func newLimiter(max, perIP int, tunnel time.Duration) *limiter {
	return &limiter{max: max, perIP: perIP, tunnel: tunnel, refusing: make(chan struct{}, refuseAtOnce),
		conns: map[*limitConn]struct{}{}, byIP: map[netip.Addr]int{}}
}

// Rejected reports the connections refused so far, by reason, for /metrics.
func (l *limiter) Rejected() map[string]uint64 {
	return map[string]uint64{"maxconn": l.rejected[rejectedMaxConn].Load(), "maxconn_per_ip": l.rejected[rejectedPerIP].Load()}
}

// listener wraps ln: Accept returns only connections that got a slot.
func (l *limiter) listener(ln net.Listener) net.Listener { return &limitListener{Listener: ln, l: l} }

// tlsListener is listener for a port that speaks TLS: a client refused there is reset,
// not answered in cleartext it could not read (and a handshake only to say 503 would
// cost what the limit saves).
func (l *limiter) tlsListener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, l: l, reset: true}
}

type limitListener struct {
	net.Listener
	l     *limiter
	reset bool // refuse with a reset, never an answer
}

func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc, ok := ll.l.admit(c, ll.reset); ok {
			return lc, nil
		}
	}
}

// admit gives c a slot, closing the longest-idle connection when there is none free,
// or refuses it (with a reset, if reset).
func (l *limiter) admit(c net.Conn, reset bool) (*limitConn, bool) {
	ip := remoteIP(c)
	lc := &limitConn{Conn: c, l: l, ip: ip}
	lc.idleSince.Store(time.Now().UnixNano()) // new: idle until its first byte
	var evict *limitConn
	l.mu.Lock()
	switch {
	case l.perIP > 0 && ip.IsValid() && l.byIP[ip] >= l.perIP:
		l.mu.Unlock()
		l.refuse(c, rejectedPerIP, reset)
		return nil, false
	case len(l.conns) >= l.max:
		evict = l.longestIdle()
		if evict == nil {
			l.mu.Unlock()
			l.refuse(c, rejectedMaxConn, reset)
			return nil, false
		}
		l.forget(evict)
	}
	l.conns[lc] = struct{}{}
	if ip.IsValid() {
		l.byIP[ip]++
	}
	l.open.Store(int64(len(l.conns)))
	l.mu.Unlock()
	if evict != nil {
		evict.Conn.Close() // its goroutine's read fails; its own Close is then a no-op
	}
	return lc, true
}

// longestIdle is the connection idle for the longest time, nil if none is. It scans
// every connection: this happens only at the limit. l.mu is held.
func (l *limiter) longestIdle() *limitConn {
	var best *limitConn
	var since int64
	for c := range l.conns {
		if s := c.idleSince.Load(); s != 0 && (best == nil || s < since) {
			best, since = c, s
		}
	}
	return best
}

// forget gives c's slot back. l.mu is held.
func (l *limiter) forget(c *limitConn) {
	if _, ok := l.conns[c]; !ok {
		return
	}
	delete(l.conns, c)
	if c.ip.IsValid() {
		if l.byIP[c.ip]--; l.byIP[c.ip] <= 0 {
			delete(l.byIP, c.ip)
		}
	}
	l.open.Store(int64(len(l.conns)))
}

// refuse answers a connection that got no slot, in a goroutine of its own and within
// refuseTime, or resets it when reset is set or refuseAtOnce answers are already being
// written.
func (l *limiter) refuse(c net.Conn, why int, reset bool) {
	l.rejected[why].Add(1)
	if reset {
		resetConn(c)
		return
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		resetConn(c)
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(refuseTime))
		// Read what the client sent first, so that closing does not reset the
		// connection under the answer.
		var buf [4096]byte
		c.Read(buf[:])
		status, msg := "503 Service Unavailable", "service unavailable: the proxy is at its connection limit; try again"
		if why == rejectedPerIP {
			status, msg = "429 Too Many Requests", "too many connections from your address; close some and try again"
		}
		ans := "HTTP/1.1 " + status + "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n" +
			"Cache-Control: no-store\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(msg)+1) + "\r\n\r\n" + msg + "\n"
		c.Write([]byte(ans))
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
			c.Read(buf[:])
		}
	}()
}

// resetConn closes c with a reset: no TIME_WAIT, nothing more to read.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// connState is the engines' report of a connection's state (net/http's
// Server.ConnState): a new or idle connection is the first to go at the limit. On the
// TLS port net/http reports the *tls.Conn around the limited one.
func (l *limiter) connState(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitConn)
	if !ok {
		return
	}
	switch st {
	case http.StateIdle, http.StateNew:
		lc.idleSince.Store(time.Now().UnixNano())
	case http.StateActive:
		lc.idleSince.Store(0)
	case http.StateHijacked:
		lc.idleSince.Store(0)
		lc.tunnel.Store(true)
	}
}

// remoteIP is c's client address, without a port (invalid for a non-TCP conn).
func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// limitConn gives its slot back when closed, once however often Close is called.
type limitConn struct {
	net.Conn
	l         *limiter
	ip        netip.Addr
	idleSince atomic.Int64 // unix ns since it has been idle; 0 while active
	// tunnel: net/http hijacked the connection for an upgrade (the std engine's
	// websockets), after which nothing bounds it but the deadline set here before
	// each read and write (the fast engine sets its own).
	tunnel   atomic.Bool
	dmu      sync.Mutex // guards deadline
	deadline time.Time  // the last tunnel deadline set
	once     sync.Once
}

func (c *limitConn) Read(p []byte) (int, error) {
	if c.tunnel.Load() {
		c.idleBound()
	}
	return c.Conn.Read(p)
}

func (c *limitConn) Write(p []byte) (int, error) {
	if c.tunnel.Load() {
		c.idleBound()
	}
	return c.Conn.Write(p)
}

// idleBound moves the deadline of a tunnel to timeout.tunnel from now, lazily.
// ReverseProxy reads and writes a tunnel from two goroutines: the deadline is only
// ever pushed later, which either may do.
func (c *limitConn) idleBound() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	want := time.Now().Add(c.l.tunnel)
	if c.deadline.IsZero() || want.Sub(c.deadline) > c.l.tunnel/8 {
		c.deadline = want
		c.Conn.SetDeadline(want)
	}
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.forget(c)
		c.l.mu.Unlock()
	})
	return err
}

// CloseWrite shuts the write side (a lingering close), when the connection has one.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
