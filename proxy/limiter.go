package main

import (
	"net"
	"sync"
	"sync/atomic"
)

// limitListener accepts at most max connections at once (HAProxy's maxconn): beyond
// that, new connections wait in the kernel's backlog. conns counts the open ones, for
// /stats and /metrics.
type limitListener struct {
	net.Listener
	sem   chan struct{}
	done  chan struct{}
	once  sync.Once
	conns *atomic.Int64
}

func newLimitListener(ln net.Listener, max int, conns *atomic.Int64) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, max), done: make(chan struct{}), conns: conns}
}

// Accept waits for a free slot, then for a connection; Close ends both waits.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	l.conns.Add(1)
	return &limitConn{Conn: c, release: sync.OnceFunc(func() {
		l.conns.Add(-1)
		<-l.sem
	})}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back when closed, once however often Close is called.
type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
