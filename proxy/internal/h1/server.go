package h1

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
)

// Options configure a Server. Zero durations take the defaults shown, which
// are the proxy's (see proxy/README.md, timeout.*).
type Options struct {
	// Table returns the routing table for a new request (required). A request
	// keeps the table it started with, so a reload never changes one in flight.
	Table func() *forward.Table
	// Log gets server state changes and, when AccessLog returns true, one line
	// per request. nil: discard.
	Logger    *slog.Logger
	AccessLog func() bool
	// MaxHeaderBytes bounds a request head; larger ones get 431. 0: 32 KiB.
	MaxHeaderBytes int

	ConnectTimeout time.Duration // 5s: dialling a server; past it the next server is tried
	ServerTimeout  time.Duration // 50s: from the request sent to the response head, and between reads of the response body (504 before the head)
	IdleTimeout    time.Duration // 50s: a kept-alive client connection waiting for its next request
	HeaderTimeout  time.Duration // 10s: from a request's first byte to the end of its head (408)
	// Limits bound the request body (408), the writes to the client, tunnels, and
	// name the Host of an HTTP/1.0 request without one: the same as the std
	// engine's.
	Limits forward.Limits

	// ConnState, when set, is told when a connection starts (http.StateNew), gets
	// the first byte of a request (StateActive), waits for the next one
	// (StateIdle), is upgraded (StateHijacked) and ends (StateClosed), as
	// net/http's Server.ConnState is, so one limiter serves both engines.
	ConnState func(net.Conn, http.ConnState)
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ConnectTimeout, 5*time.Second)
	def(&o.ServerTimeout, 50*time.Second)
	def(&o.IdleTimeout, 50*time.Second)
	def(&o.HeaderTimeout, 10*time.Second)
	o.Limits = o.Limits.WithDefaults()
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 32 << 10
	}
	if o.ConnState == nil {
		o.ConnState = func(net.Conn, http.ConnState) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AccessLog == nil {
		o.AccessLog = func() bool { return false }
	}
	return o
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// Server serves client connections. Build it with NewServer; Serve may be
// called for several listeners.
type Server struct {
	o        Options
	backends pools

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	active    sync.WaitGroup // one per connection being served
}

// NewServer makes a Server. It starts no goroutine until Serve.
func NewServer(o Options) *Server {
	s := &Server{o: o.withDefaults(), listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}}
	s.backends.init(s.o.ConnectTimeout)
	return s
}

// Serve accepts connections on ln until Shutdown or Close, each served by its
// own goroutine, which owns the connection. It returns ErrServerClosed then,
// or the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if isTimeout(err) || isTemporary(err) {
				// Out of file descriptors, say: wait and try again, as
				// net/http does, rather than spin or give up.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.active.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.active.Done()
}

// Shutdown stops accepting, closes idle connections, lets requests in flight
// finish (their connections close after the answer) and returns when every
// connection is gone, or when ctx ends: then it closes what is left and
// returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose()
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		s.wakeIdle()
		select {
		case <-done:
			s.backends.closeIdle()
			return nil
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.beginClose()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.active.Wait()
	s.backends.closeIdle()
	return nil
}

func (s *Server) beginClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
}

// wakeIdle makes connections waiting for a next request give up now.
func (s *Server) wakeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			c.nc.SetReadDeadline(time.Now())
		}
	}
}
