package h1

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/live"
)

// Buffer sizes of a client connection. The read buffer holds the request head
// (and pipelined requests); it grows up to MaxHeaderBytes for a large head.
const (
	clientBuf = 8 << 10
	outBuf    = 8 << 10
)

// conn is one client connection, served by one goroutine (serve) from accept
// to close. Only that goroutine touches its fields, except idle and nc's
// deadlines (Server.wakeIdle), and during a streamed request body the body
// goroutine, which owns the client's read side until it is joined.
type conn struct {
	s    *Server
	nc   net.Conn
	ip   []byte     // the client's address, for X-Forwarded-For
	peer netip.Addr // the same, for balance source
	buf  []byte     // client bytes read: buf[r:w] not yet consumed
	r, w int
	out  []byte // heads composed for one write
	dl   deadline
	idle atomic.Bool // waiting for the next request
	req  head
	resp head
	scr  []byte // scratch: the decoded path for routing, a merged Cache-Control
	// headAt is when the current request's head was whole: its body's time
	// starts there.
	headAt time.Time
	state  http.ConnState // as last told to Options.ConnState
	pin    forward.Pin    // what the request's sticky cookies said
	now    int64          // the request's start, Unix seconds, for the cookie dates
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, buf: make([]byte, clientBuf), out: make([]byte, 0, outBuf)}
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.peer = a.AddrPort().Addr().Unmap()
		c.ip = c.peer.AppendTo(nil)
	}
	return c
}

func (c *conn) serve() {
	defer c.s.forget(c)
	defer func() {
		c.nc.Close()
		c.s.o.ConnState(c.nc, http.StateClosed)
	}()
	c.s.o.ConnState(c.nc, http.StateNew)
	c.state = http.StateNew
	for {
		n, ok := c.readHead()
		if !ok {
			return
		}
		if !c.handle(n) || c.s.closing.Load() {
			return
		}
	}
}

// readHead reads until buf[r:] starts with a whole request head and returns
// its length. It answers and returns false when the connection must end: the
// client left or idled out (no answer), the head is too large (431), too slow
// (408) or not HTTP (400).
func (c *conn) readHead() (int, bool) {
	resume := 0
	var started time.Time // the head's first byte
	for {
		if c.r < c.w {
			if c.state != http.StateActive {
				c.setState(http.StateActive)
			}
			if n, res := headEnd(c.buf[c.r:c.w], resume); n > 0 {
				c.headAt = time.Now()
				return n, true
			} else {
				resume = res
			}
			if c.w-c.r >= c.s.o.MaxHeaderBytes {
				c.reject(errTooLarge)
				return 0, false
			}
		}
		if c.w == len(c.buf) {
			c.makeRoom()
		}
		now := time.Now()
		if c.r == c.w {
			c.idle.Store(true)
			if c.state == http.StateActive {
				c.setState(http.StateIdle)
			}
			if c.s.closing.Load() {
				return 0, false
			}
			c.dl.read(c.nc, now, c.s.o.IdleTimeout)
		} else if started.IsZero() {
			started = now
			c.dl.read(c.nc, now, c.s.o.HeaderTimeout)
		}
		m, err := c.nc.Read(c.buf[c.w:])
		c.idle.Store(false)
		c.w += m
		if err != nil && m == 0 {
			if c.r < c.w && isTimeout(err) && !c.s.closing.Load() {
				c.reject(&statusError{408, "request timeout: the request head took too long"})
			}
			return 0, false
		}
	}
}

// setState tells Options.ConnState (the limiter) what the connection does now.
func (c *conn) setState(st http.ConnState) {
	c.state = st
	c.s.o.ConnState(c.nc, st)
}

// makeRoom makes space after buf[w]: it moves the unread bytes to the front
// or, when they fill the buffer, doubles it (up to MaxHeaderBytes).
func (c *conn) makeRoom() {
	if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
		return
	}
	nb := make([]byte, min(2*len(c.buf), c.s.o.MaxHeaderBytes+clientBuf))
	c.w = copy(nb, c.buf[:c.w])
	c.buf = nb
}

// consume drops n bytes from the front of the read buffer.
func (c *conn) consume(n int) {
	c.r += n
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// view is b as a string without a copy, for lookups that do not keep it (route
// matching, map lookups): the string must not outlive this request's use of b.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// handle serves the request whose head is buf[r:r+n] and reports whether the
// connection may carry another one.
func (c *conn) handle(n int) bool {
	start := c.headAt
	b := c.buf[c.r : c.r+n]
	h := &c.req
	if err := parseRequest(b, h); err != nil {
		var se *statusError
		if !errors.As(err, &se) {
			se = badRequest("bad request")
		}
		c.reject(se)
		return false
	}
	path := c.routingPath(h.path.of(b))
	if view(path) == forward.HealthPath {
		return c.answerHealth(n)
	}
	host := []byte(nil)
	if h.host >= 0 {
		host = h.fields[h.host].value.of(b)
	}
	t := c.s.o.Table()
	svc, found := t.Match(view(host), view(path))
	if !found {
		return c.answerNoRoute(n, path, start)
	}
	if svc.ForceSSL {
		return c.redirectHTTPS(n, svc, start)
	}
	return c.proxy(n, svc, start)
}

// routingPath is the path routes are matched against: percent-decoded, as the
// std engine's URL.Path, so both engines route a request alike. The backend
// still gets the path as sent. p's escapes are well formed (parseTarget
// refused the request otherwise).
func (c *conn) routingPath(p []byte) []byte {
	if len(p) == 0 {
		return slash
	}
	i := bytes.IndexByte(p, '%')
	if i < 0 {
		return p
	}
	out := append(c.scr[:0], p[:i]...)
	for ; i < len(p); i++ {
		if p[i] != '%' {
			out = append(out, p[i])
			continue
		}
		out = append(out, byte(hexValue(p[i+1])<<4|hexValue(p[i+2])))
		i += 2
	}
	c.scr = out
	return out
}

var slash = []byte("/")

// requestBody says how the request's body is framed and how much of it is
// already in the read buffer after the head.
type requestBody struct {
	start    time.Time // when the head was read: the body's time starts there
	length   int64     // -1: chunked; 0: none
	inBuf    int       // body bytes in buf after the head (up to the body's end)
	complete bool      // the whole body is in buf
	ch       chunked
}

func (c *conn) bodyOf(n int) (requestBody, error) {
	h := &c.req
	rb := requestBody{start: c.headAt}
	avail := c.w - c.r - n
	switch {
	case h.chunked:
		rb.length = -1
		k, done, err := rb.ch.scan(c.buf[c.r+n : c.w])
		if err != nil {
			return rb, err
		}
		rb.inBuf, rb.complete = k, done
	case h.contentLength > 0:
		rb.length = h.contentLength
		rb.inBuf = int(min(int64(avail), h.contentLength))
		rb.complete = int64(rb.inBuf) == h.contentLength
	default:
		rb.complete = true
	}
	return rb, nil
}

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// errBodyTimeout is a request body that stalled, or fell below body_min_rate.
var errBodyTimeout = errors.New("request body timeout")

// readSmallBody reads the rest of a body of known length, no larger than
// forward.BufferedBody, into the read buffer before any server is chosen, as
// nginx buffers request bodies: a client that sends a head and then its body
// slowly, or never, holds no connection to a server. The head stays where it is.
func (c *conn) readSmallBody(n int, rb requestBody) (requestBody, error) {
	need := c.r + n + int(rb.length)
	if need > len(c.buf) {
		if c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		}
		if n+int(rb.length) > len(c.buf) {
			nb := make([]byte, n+int(rb.length)+clientBuf)
			c.w = copy(nb, c.buf[:c.w])
			c.buf = nb
		}
	}
	got := int64(rb.inBuf)
	if c.req.expect100 && got == 0 {
		// The client waits to be told to send its body: the proxy tells it,
		// as nginx does when it buffers the body, and the server gets the
		// whole request without the expectation.
		c.dl.write(c.nc, time.Now(), c.s.o.Limits.WriteTimeout)
		if _, err := c.nc.Write(continue100); err != nil {
			return rb, err
		}
		c.req.expect100, c.req.expected = false, true
	}
	for got < rb.length {
		c.nc.SetReadDeadline(c.s.o.Limits.BodyDeadline(rb.start, time.Now(), got))
		m, err := c.nc.Read(c.buf[c.w:min(len(c.buf), c.r+n+int(rb.length))])
		c.w += m
		got += int64(m)
		if err != nil && got < rb.length {
			c.dl.r = time.Time{} // set above, not lazily: the next read sets its own
			if isTimeout(err) {
				return rb, errBodyTimeout
			}
			return rb, err
		}
	}
	c.dl.r = time.Time{}
	return c.bodyOf(n)
}

// answerHealth answers the health path, which the proxy serves itself: 200 "ok".
func (c *conn) answerHealth(n int) bool {
	rb, err := c.bodyOf(n)
	keep := err == nil && rb.complete && !c.req.connClose
	c.writeText(200, "ok", !keep)
	if keep {
		c.consume(n + rb.inBuf)
	}
	return keep
}

// answerNoRoute answers a request whose path (decoded, for routing) matches no
// route, as the std engine does: the path echoed and logged is the URL's
// EscapedPath, so what net/http would escape is escaped.
func (c *conn) answerNoRoute(n int, path []byte, start time.Time) bool {
	b := c.buf[c.r : c.r+n]
	p := ""
	if raw := c.req.path.of(b); len(raw) > 0 {
		p = (&url.URL{Path: string(path), RawPath: string(raw)}).EscapedPath()
	}
	rb, err := c.bodyOf(n)
	keep := err == nil && rb.complete && !c.req.connClose
	c.writeText(404, forward.NoRouteText(p), !keep)
	if c.s.o.AccessLog() {
		forward.LogNoRoute(c.s.o.Logger, string(c.req.method.of(b)), p, time.Since(start))
	}
	if keep {
		c.consume(n + rb.inBuf)
	}
	return keep
}

// reject answers a head that cannot be served and ends the connection: what
// follows it in the buffer cannot be trusted to start a request.
func (c *conn) reject(se *statusError) {
	c.writeText(se.status, se.msg, true)
	c.linger()
}

// Bounds of a lingering close: a pause in the client's sending, the whole
// drain, what is read.
const (
	lingerIdle  = 500 * time.Millisecond
	lingerTotal = 2 * time.Second
	lingerBytes = 4 << 20
)

// linger ends a connection whose client may still be sending (a head too large,
// a body nobody read) without losing the answer just written: closing with
// unread input makes the kernel send a reset, which can destroy the answer
// before the client reads it. So the write side is shut first and the input
// drained until the client stops sending, within bounds, as nginx's
// lingering_close does.
func (c *conn) linger() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.dl.r = time.Time{}
	end := time.Now().Add(lingerTotal)
	for n := 0; n < lingerBytes; {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		dl := now.Add(lingerIdle)
		if dl.After(end) {
			dl = end
		}
		c.nc.SetReadDeadline(dl)
		m, err := c.nc.Read(c.buf)
		n += m
		if err != nil {
			return
		}
	}
}

// writeText writes one of the proxy's own answers: a line of text that no
// browser sniffs, never cached.
func (c *conn) writeText(status int, msg string, close bool) {
	o := c.out[:0]
	o = append(o, "HTTP/1.1 "...)
	o = strconv.AppendInt(o, int64(status), 10)
	o = append(o, ' ')
	o = append(o, http.StatusText(status)...)
	o = append(o, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nContent-Length: "...)
	o = strconv.AppendInt(o, int64(len(msg)+1), 10)
	if close {
		o = append(o, "\r\nConnection: close"...)
	}
	o = append(o, "\r\n\r\n"...)
	if c.req.method.len() != 4 || string(c.buf[c.r+int(c.req.method.s):c.r+int(c.req.method.e)]) != "HEAD" {
		o = append(o, msg...)
		o = append(o, '\n')
	}
	c.out = o
	c.dl.write(c.nc, time.Now(), c.s.o.Limits.WriteTimeout)
	c.nc.Write(o)
}

// replayable reports whether a request may be sent again to another server
// after one dropped it unanswered: GET or HEAD without a body, as the std
// engine (HAProxy's retry-on empty-response).
func (c *conn) replayable(n int) bool {
	m := c.req.method.of(c.buf[c.r : c.r+n])
	return c.req.contentLength <= 0 && !c.req.chunked && (string(m) == "GET" || string(m) == "HEAD")
}

// attemptError classifies a failed attempt on one server.
type attemptError uint8

const (
	attemptDial    attemptError = iota + 1 // could not connect: the server is down, try another
	attemptEmpty                           // the server closed or reset without answering
	attemptTimeout                         // no answer within timeout.server
	attemptBad                             // a malformed answer
	attemptClient                          // the client's fault (its body): answered already
	attemptGone                            // the client left
	attemptDown                            // its checks marked the server down while it held the request
)

// proxy forwards the request whose head is buf[r:r+n] to a server of svc and
// relays the answer. It reports whether the connection may carry another.
func (c *conn) proxy(n int, svc *forward.Service, start time.Time) bool {
	rb, err := c.bodyOf(n)
	if err == nil && !rb.complete && rb.length > 0 && rb.length <= forward.BufferedBody {
		rb, err = c.readSmallBody(n, rb)
	}
	if err != nil {
		// The client's fault, counted first: a client holding the answer
		// finds it in /stats. No server was contacted and no cookie read: no
		// sticky outcome, as in the std engine.
		status := http.StatusBadRequest
		if errors.Is(err, errBodyTimeout) {
			status = http.StatusRequestTimeout
		}
		se := &statusError{status, forward.BodyFaultText(status)}
		st := forward.StickyNone
		svc.Counters.Record(st, se.status, time.Since(start))
		svc.Observe(func() live.Visitor { return c.visitor(n, svc, false) }, nil, st, se.status)
		c.reject(se)
		return false
	}
	b := c.buf[c.r : c.r+n]

	// The server the cookie asks for: the first id naming an available one.
	c.pin = forward.Pin{}
	if svc.Sticky.On() {
		c.now = start.Unix()
		c.readPin(b, svc)
	}
	pinned, hadID := c.pin.Server, c.pin.HadID
	client := c.peer
	if svc.Pool.Balance() == backend.Source {
		client = forward.ClientAddr(c.peer, svc.TrustedProxies, c.lastXFF(b))
	}

	c.out = c.composeRequest(c.out[:0], b, svc, rb)
	replay := c.replayable(n)

	var tried [4]*backend.Backend
	ntried := 0
	next := pinned
	var srv *backend.Backend
	var failure attemptError
	var bc *bconn
	var bs *bodyStream
	forceDial := false // the next attempt must not use a kept-alive connection
	sticky := forward.Outcome(svc, pinned, nil, hadID)
	for attempt := 0; attempt <= svc.Retries; attempt++ {
		bk := next
		next = nil
		if bk == nil || !bk.Available() {
			var ok bool
			if bk, ok = svc.Pool.PickFor(client, tried[:ntried]...); !ok {
				break
			}
		}
		bk.Acquire()
		now := time.Now()
		var fresh bool
		bc, fresh, failure, bs = c.send(bk, n, rb, now, forceDial)
		forceDial = false
		if failure == 0 {
			c.s.backends.wait(bc, bk)
			failure = c.readResponse(bc, bs, now)
			c.s.backends.done(bc)
			if failure != 0 && failure != attemptClient && bc.down.Load() {
				failure = attemptDown
			}
		}
		if failure == 0 {
			srv = bk
			sticky = forward.Outcome(svc, pinned, bk, hadID)
			break
		}
		var pl *pool // bc's server's pool
		if bc != nil {
			pl = bc.pl
			bc.nc.Close()
			bc = nil
		}
		switch {
		case failure == attemptDial:
			bk.ReleaseFailed()
			if bk.SetUp(false) {
				c.s.o.Logger.Warn("server down: connection failed", "service", svc.Name, "server", bk.ID(), "addr", bk.Addr())
			}
		case failure == attemptEmpty && !fresh && bs == nil && replay:
			// A kept-alive connection the server had closed (it restarted,
			// or stops gracefully): it never saw the request. Same server,
			// on a new connection, and its other idle ones are suspect too.
			bk.ReleaseUnsent()
			pl.drop()
			next, forceDial = bk, true
			continue
		case (failure == attemptEmpty || failure == attemptDown) && replay:
			// It took the request and dropped the connection without a
			// word (it crashed or was killed): a GET or HEAD without a
			// body goes to another server, as the std engine does.
			bk.ReleaseFailed()
		default:
			if failure == attemptTimeout && bk.Stalled() {
				// A hung server, which a TCP check alone would keep in rotation.
				c.s.o.Logger.Warn("server down: no answer within timeout.server", "service", svc.Name, "server", bk.ID(), "addr", bk.Addr())
			}
			bk.Release()
			return c.failed(n, svc, failure, sticky, start, bs)
		}
		if ntried < len(tried) {
			tried[ntried] = bk
			ntried++
		}
	}
	if srv == nil {
		return c.failed(n, svc, failure, sticky, start, bs)
	}
	if sticky == forward.StickyRebalanced {
		c.s.o.Logger.Debug("sticky id names no available server; rebalanced", "service", svc.Name, "server", srv.ID())
	}
	return c.relay(n, svc, srv, bc, bs, rb, sticky, start)
}

// readPin reads the request's sticky cookies into c.pin.
func (c *conn) readPin(b []byte, svc *forward.Service) {
	h := &c.req
	for k := 0; k < h.n; k++ {
		if f := &h.fields[k]; f.name.len() == 6 && fieldIs(f.name.of(b), "cookie") {
			c.pin.Read(svc, f.value.of(b), c.now)
		}
	}
}

// lastXFF is the value of the request's last X-Forwarded-For field (nil: none),
// which the parser found.
func (c *conn) lastXFF(b []byte) []byte {
	if k := c.req.xffLast; k >= 0 {
		return c.req.fields[k].value.of(b)
	}
	return nil
}

// failed answers a request that got no answer from any server, and ends the
// connection.
func (c *conn) failed(n int, svc *forward.Service, why attemptError, sticky forward.Sticky, start time.Time, bs *bodyStream) bool {
	status := 0
	var msg string
	switch why {
	case 0:
		status, msg = 503, forward.NoServerText(svc.Name)
	case attemptDial:
		status, msg = 503, forward.RefusedText(svc.Name)
	case attemptTimeout:
		status, msg = 504, forward.TimeoutText(svc.Name)
	case attemptClient:
		// The client's body stalled or was malformed: its fault, a 4xx,
		// and nothing against the server.
		status = http.StatusBadRequest
		if bs != nil && bs.statusOf() == http.StatusRequestTimeout {
			status = http.StatusRequestTimeout
		}
		msg = forward.BodyFaultText(status)
	case attemptGone:
	default:
		status, msg = 502, forward.BadGatewayText(svc.Name)
	}
	if bs != nil {
		bs.stop(c, nil)
	}
	if status >= 500 {
		c.s.o.Logger.Warn("request failed", "service", svc.Name, "status", status, "err", why.String())
	} else {
		c.s.o.Logger.Debug("request failed", "service", svc.Name, "status", status, "err", why.String())
	}
	// Counted and logged first: a client holding the answer finds it in /stats.
	d := time.Since(start)
	svc.Counters.Record(sticky, status, d)
	svc.Observe(func() live.Visitor { return c.visitor(n, svc, false) }, nil, sticky, status)
	if c.s.o.AccessLog() {
		b := c.buf[c.r : c.r+n]
		forward.LogRequest(c.s.o.Logger, string(c.req.method.of(b)), string(c.req.path.of(b)), status, svc.Name, "", sticky, d, status == 0)
	}
	if msg != "" {
		c.writeText(status, msg, true)
		c.linger()
	}
	return false
}

func (e attemptError) String() string {
	switch e {
	case attemptDial:
		return "connection refused or timed out"
	case attemptEmpty:
		return "the server closed the connection without answering"
	case attemptTimeout:
		return "the server did not answer in time"
	case attemptBad:
		return "malformed answer"
	case attemptClient:
		return "the client's request body"
	case attemptGone:
		return "the client left"
	case attemptDown:
		return "the server was marked down while it held the request"
	}
	return "no server available"
}

// send writes the request head (and what the buffer holds of its body) to a
// connection to bk, and starts streaming the rest of the body if there is more.
func (c *conn) send(bk *backend.Backend, n int, rb requestBody, now time.Time, dial bool) (bc *bconn, fresh bool, fail attemptError, bs *bodyStream) {
	var err error
	if dial {
		bc, err = c.s.backends.dial(bk)
	} else {
		bc, err = c.s.backends.get(bk, now)
	}
	if err != nil {
		return nil, true, attemptDial, nil
	}
	fresh = !bc.used
	bc.dl.write(bc.nc, now, c.s.o.ServerTimeout)
	if _, err := bc.nc.Write(c.out); err != nil {
		return bc, fresh, attemptEmpty, nil
	}
	if !rb.complete {
		bs = startBody(c, bc, rb)
	}
	return bc, fresh, 0, bs
}

// readResponse reads the response head into bc.buf, relaying interim (1xx)
// answers to the client as they come. On success c.resp is the final head,
// at bc.buf[bc.r:].
func (c *conn) readResponse(bc *bconn, bs *bodyStream, now time.Time) attemptError {
	got := false // any byte of an answer
	resume := 0
	for {
		if bc.r < bc.w {
			got = true
			if k, res := headEnd(bc.buf[bc.r:bc.w], resume); k > 0 {
				if err := parseResponse(bc.buf[bc.r:bc.r+k], &c.resp); err != nil {
					return attemptBad
				}
				if c.resp.status >= 200 || c.resp.status == 101 {
					return 0
				}
				// 100 Continue, 103 Early Hints: pass on, then wait for the
				// final answer.
				c.dl.write(c.nc, time.Now(), c.s.o.Limits.WriteTimeout)
				if _, err := c.nc.Write(bc.buf[bc.r : bc.r+k]); err != nil {
					return attemptGone
				}
				bc.r += k
				resume = 0
				continue
			} else {
				resume = res
			}
			if bc.w-bc.r >= maxRespHead {
				return attemptBad
			}
		}
		if bc.w == len(bc.buf) {
			if bc.r > 0 {
				bc.w = copy(bc.buf, bc.buf[bc.r:bc.w])
				bc.r = 0
			} else {
				nb := make([]byte, min(2*len(bc.buf), maxRespHead+backendBuf))
				bc.w = copy(nb, bc.buf[:bc.w])
				bc.buf = nb
			}
		}
		if bs == nil {
			// With a body streaming, the body's goroutine bounds this read:
			// timeout.server starts once the request is sent whole.
			bc.dl.read(bc.nc, now, c.s.o.ServerTimeout)
		}
		m, err := bc.nc.Read(bc.buf[bc.w:])
		bc.w += m
		if err != nil && m == 0 {
			if bs != nil {
				if f := bs.clientFault(); f != 0 {
					return f
				}
			}
			switch {
			case isTimeout(err):
				return attemptTimeout
			case got:
				return attemptBad
			}
			return attemptEmpty
		}
	}
}
