package h1

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/live"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// hopByHop reports whether a field is hop-by-hop (RFC 9110 §7.6.1) and so never
// passed on: Connection and the fields it names, Keep-Alive, Proxy-Connection,
// TE (but "TE: trailers" on a request), Upgrade (but on an upgrade).
func (h *head) hopByHop(b []byte, f *field, request bool) bool {
	name := f.name.of(b)
	switch len(name) {
	case 2:
		if fieldIs(name, "te") {
			return !request || !asciiEqualFold(f.value.of(b), "trailers")
		}
	case 7:
		if fieldIs(name, "upgrade") {
			return !h.upgrade
		}
	case 10:
		if fieldIs(name, "connection") || fieldIs(name, "keep-alive") {
			return true
		}
	case 16:
		if fieldIs(name, "proxy-connection") {
			return true
		}
	}
	for i := 0; i < h.nconn; i++ {
		if tok := h.conn[i].of(b); len(tok) == len(name) && asciiEqualFoldBytes(tok, name) {
			return true
		}
	}
	return false
}

func asciiEqualFoldBytes(a, b []byte) bool {
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// composeRequest appends the request for the server to dst: the request line in
// origin form, every field but the hop-by-hop ones and those the proxy sets, in
// order, the sticky ids taken off the cookies, X-Forwarded-For with the client
// appended (earlier values kept, as HAProxy's option forwardfor),
// X-Forwarded-Host and -Proto, then what the buffer holds of the body.
func (c *conn) composeRequest(dst, b []byte, svc *forward.Service, rb requestBody) []byte {
	h := &c.req
	dst = append(dst, h.method.of(b)...)
	dst = append(dst, ' ')
	if t := b[h.path.s:h.target.e]; len(t) == 0 {
		dst = append(dst, '/')
	} else {
		dst = append(dst, t...)
	}
	dst = append(dst, " HTTP/1."...)
	dst = append(dst, byte('0'+h.minor))
	dst = append(dst, "\r\n"...)
	xff := false
	for k := 0; k < h.n; k++ {
		f := &h.fields[k]
		if h.hopByHop(b, f, true) {
			continue
		}
		name, val := f.name.of(b), f.value.of(b)
		switch {
		case len(name) == 6 && svc.Sticky.RewritesRequest() && svc.Sticky.On() && fieldIs(name, "cookie"):
			// Prefix: the ids come off; insert+indirect: the proxy's
			// cookies do, and a header left empty goes.
			mark := len(dst)
			dst = append(dst, name...)
			dst = append(dst, ": "...)
			var keep bool
			if dst, keep = svc.Sticky.AppendCookie(dst, val); keep {
				dst = append(dst, "\r\n"...)
			} else {
				dst = dst[:mark]
			}
			continue
		case len(name) == 15 && fieldIs(name, "x-forwarded-for"):
			continue // merged below
		case (len(name) == 16 && fieldIs(name, "x-forwarded-host")) || (len(name) == 17 && fieldIs(name, "x-forwarded-proto")):
			continue // ours replace the client's
		case h.expected && len(name) == 6 && fieldIs(name, "expect"):
			continue // answered by the proxy, the body is here
		}
		dst = append(dst, name...)
		dst = append(dst, ": "...)
		dst = append(dst, val...)
		dst = append(dst, "\r\n"...)
	}
	if h.host < 0 {
		// HTTP/1.0 without Host: the proxy's own name, never a server's
		// address (which a server would echo to the client).
		dst = append(dst, "Host: "...)
		dst = append(dst, c.s.o.Limits.ServerName...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "X-Forwarded-For: "...)
	for k := 0; k < h.n; k++ {
		if f := &h.fields[k]; f.name.len() == 15 && fieldIs(f.name.of(b), "x-forwarded-for") && f.value.len() > 0 {
			if xff {
				dst = append(dst, ", "...)
			}
			dst = append(dst, f.value.of(b)...)
			xff = true
		}
	}
	if xff {
		dst = append(dst, ", "...)
	}
	dst = append(dst, c.ip...)
	if h.host >= 0 {
		dst = append(dst, "\r\nX-Forwarded-Host: "...)
		dst = append(dst, h.fields[h.host].value.of(b)...)
	}
	dst = append(dst, "\r\nX-Forwarded-Proto: http\r\n"...)
	switch {
	case h.upgrade:
		dst = append(dst, "Connection: upgrade\r\n"...)
	case h.minor == 0:
		dst = append(dst, "Connection: keep-alive\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	n := h.size
	return append(dst, c.buf[c.r+n:c.r+n+rb.inBuf]...)
}

// errClientWrite marks a relay that failed writing to the client (it left).
var errClientWrite = errors.New("writing to the client")

// body framings of a response.
type framing uint8

const (
	framedNone framing = iota
	framedLength
	framedChunked
	framedClose // until the server closes
)

// relay writes the answer whose head is c.resp, at bc.buf[bc.r:], to the
// client with the sticky cookie prefixed, then its body, and settles the
// request: server released, connection pooled or closed, stats and log.
func (c *conn) relay(n int, svc *forward.Service, srv *backend.Backend, bc *bconn, bs *bodyStream, rb requestBody, st forward.Sticky, start time.Time) bool {
	h, resp := &c.req, &c.resp
	rbuf := bc.buf[bc.r : bc.r+resp.size]
	isHEAD := h.method.len() == 4 && string(c.buf[c.r+int(h.method.s):c.r+int(h.method.e)]) == "HEAD"
	upgrade := resp.status == 101
	if upgrade && !h.upgrade {
		srv.Release()
		bc.nc.Close()
		return c.failed(n, svc, attemptBad, st, start, bs)
	}
	fr := framedClose
	switch {
	case upgrade:
		fr = framedNone
	case isHEAD || resp.status == 204 || resp.status == 304:
		fr = framedNone
	case resp.chunked:
		fr = framedChunked
	case resp.contentLength >= 0:
		fr = framedLength
	}
	keep := !h.connClose && fr != framedClose && !c.s.closing.Load() && !upgrade

	o := c.out[:0]
	o = append(o, "HTTP/1.1 "...)
	o = strconv.AppendInt(o, int64(resp.status), 10)
	o = append(o, ' ')
	o = append(o, resp.reason.of(rbuf)...)
	o = append(o, "\r\n"...)
	// What the cookie rule does to this answer (sticky.Rule.SetCookie and
	// Insert): decided before the head is composed, since Cache-Control may
	// come before the Set-Cookie that makes it private.
	rule := &svc.Sticky
	touched, insert, withID := false, false, false
	hit := st == forward.StickyHit
	if rule.On() {
		named := false
		for k := 0; k < resp.n; k++ {
			f := &resp.fields[k]
			if f.name.len() == 10 && fieldIs(f.name.of(rbuf), "set-cookie") {
				a, n := rule.SetCookie(f.value.of(rbuf), hit)
				named = named || n
				touched = touched || a != sticky.Pass
				withID = withID || a == sticky.PutID
			}
		}
		isPOST := h.method.len() == 4 && string(c.buf[c.r+int(h.method.s):c.r+int(h.method.e)]) == "POST"
		insert = rule.Insert(hit, c.pin.Dates, c.now, isPOST, named)
		withID = withID || insert
		if st == forward.StickyNew && rule.Mode != sticky.ModeInsert && resp.status/100 == 2 && svc.Doctor.SamplingNew() {
			svc.Doctor.NewVisitorAnswer(rule.Name, named, c.setCookies(rbuf))
		}
	} else if svc.Trap != nil {
		path := h.path.of(c.buf[c.r : c.r+n])
		for k := 0; k < resp.n; k++ {
			if f := &resp.fields[k]; f.name.len() == 10 && fieldIs(f.name.of(rbuf), "set-cookie") {
				svc.Trap.Check(f.value.of(rbuf), path)
			}
		}
	}
	mergeCache := withID && rule.NoCache
	cacheDone := false
	resp.upgrade = upgrade
	for k := 0; k < resp.n; k++ {
		f := &resp.fields[k]
		if resp.hopByHop(rbuf, f, false) {
			continue
		}
		name, val := f.name.of(rbuf), f.value.of(rbuf)
		switch {
		case touched && len(name) == 10 && fieldIs(name, "set-cookie"):
			switch a, _ := rule.SetCookie(val, hit); a {
			case sticky.Drop:
				continue
			case sticky.PutID:
				o = append(o, name...)
				o = append(o, ": "...)
				o = rule.AppendSetCookie(o, val, srv.ID())
				o = append(o, "\r\n"...)
				continue
			}
		case mergeCache && len(name) == 13 && fieldIs(name, "cache-control"):
			if !cacheDone {
				o = c.appendCacheControl(o, rbuf)
				cacheDone = true
			}
			continue
		}
		o = append(o, name...)
		o = append(o, ": "...)
		o = append(o, val...)
		o = append(o, "\r\n"...)
	}
	if mergeCache && !cacheDone {
		o = append(o, "Cache-Control: private\r\n"...)
	}
	if insert {
		o = append(o, "Set-Cookie: "...)
		o = rule.AppendInsert(o, srv.ID(), c.now, c.pin.Dates.First)
		o = append(o, "\r\n"...)
	}
	switch {
	case upgrade:
		o = append(o, "Connection: upgrade\r\n"...)
	case !keep && !c.s.closing.Load() && h.connClose && h.minor == 0:
		// An HTTP/1.0 client that did not ask to keep the connection
		// expects it closed: nothing to say.
	case !keep:
		o = append(o, "Connection: close\r\n"...)
	case h.minor == 0:
		o = append(o, "Connection: keep-alive\r\n"...)
	}
	o = append(o, "\r\n"...)
	bc.r += resp.size

	// The first body bytes go out with the head, in one write, when they fit.
	var left int64 // body bytes still to come after what bc.buf holds
	var ch chunked
	var ended bool
	avail := bc.buf[bc.r:bc.w]
	switch fr {
	case framedLength:
		k := int(min(int64(len(avail)), resp.contentLength))
		avail = avail[:k]
		left = resp.contentLength - int64(k)
		ended = left == 0
	case framedChunked:
		k, done, err := ch.scan(avail)
		if err != nil {
			srv.Release()
			bc.nc.Close()
			return c.failed(n, svc, attemptBad, st, start, bs)
		}
		avail, ended = avail[:k], done
	case framedNone:
		if !upgrade {
			avail = avail[:0]
		}
		ended = true
	}
	bc.r += len(avail)
	if len(avail) <= cap(o)-len(o) {
		o = append(o, avail...)
		avail = nil
	}
	c.out = o
	now := time.Now()
	// An answer that goes out whole now is counted first, so that a client
	// holding it finds it in /stats; a failed write un-counts it.
	counted := ended && !upgrade
	if counted {
		c.finish(n, svc, srv, st, resp.status, resp.status, start)
	}
	c.dl.write(c.nc, now, c.s.o.Limits.WriteTimeout)
	_, werr := c.nc.Write(o)
	if werr == nil && len(avail) > 0 {
		_, werr = c.nc.Write(avail)
	}
	if counted && werr != nil {
		svc.Counters.Abort(resp.status)
	}
	if upgrade {
		if werr != nil {
			bc.nc.Close()
			srv.Release()
			c.finish(n, svc, srv, st, 0, forward.StatusClientGone, start)
			return false
		}
		return c.tunnel(n, svc, srv, bc, st, start)
	}

	complete := werr == nil
	var err error
	if complete && !ended {
		switch fr {
		case framedLength:
			err = c.copyLength(bc, left)
		case framedChunked:
			err = c.copyChunked(bc, &ch)
		case framedClose:
			err = c.copyUntilClose(bc)
		}
		complete = err == nil
	}

	// The request body: done, or cut short by an early answer.
	if bs != nil {
		if !bs.wait(c, bc) {
			keep = false
		}
		bc.dl = deadline{} // the body's goroutine set them: the next use sets its own
	} else if !rb.complete {
		keep = false
	}
	reusable := complete && !resp.connClose && fr != framedClose && bc.r == bc.w && (bs == nil || bs.ok())
	if reusable {
		c.s.backends.put(bc, time.Now())
	} else {
		bc.nc.Close()
	}
	srv.Release()
	status, logged := resp.status, resp.status
	if !complete {
		// Cut short after the head went out: counted with the answers that
		// did not arrive whole, logged as who cut it (nginx's 499: the
		// client left; 502: the server did).
		status, keep, logged = 0, false, http.StatusBadGateway
		if werr != nil || errors.Is(err, errClientWrite) {
			logged = forward.StatusClientGone
		}
	}
	if !counted {
		c.finish(n, svc, srv, st, status, logged, start)
	}
	if keep {
		c.consume(n + rb.inBuf)
		if bs != nil {
			c.refill(bs)
		}
	}
	return keep
}

// setCookies yields the Set-Cookie values of the response head c.resp in rbuf.
func (c *conn) setCookies(rbuf []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for k := 0; k < c.resp.n; k++ {
			if f := &c.resp.fields[k]; f.name.len() == 10 && fieldIs(f.name.of(rbuf), "set-cookie") && !yield(f.value.of(rbuf)) {
				return
			}
		}
	}
}

// finish records a request that a server answered: counted with status (0: not
// whole), logged with logged. The request head must still be at buf[r:r+n].
func (c *conn) finish(n int, svc *forward.Service, srv *backend.Backend, st forward.Sticky, status, logged int, start time.Time) {
	d := time.Since(start)
	svc.Counters.Record(st, status, d)
	svc.Observe(func() live.Visitor { return c.visitor(n, svc, true) }, srv, st, status)
	if c.s.o.AccessLog() {
		c.logRequest(c.buf[c.r:c.r+n], svc, srv, st, logged, status == 0, d)
	}
}

// appendCacheControl writes the merged Cache-Control of a response that sets a
// sticky cookie (nocache): "private", without "public".
func (c *conn) appendCacheControl(o, rbuf []byte) []byte {
	v := c.scr[:0]
	has := false
	resp := &c.resp
	for k := 0; k < resp.n; k++ {
		if f := &resp.fields[k]; f.name.len() == 13 && fieldIs(f.name.of(rbuf), "cache-control") {
			v, has = forward.AppendCacheDirectives(v, f.value.of(rbuf), has)
		}
	}
	c.scr = forward.AppendPrivate(v, has)
	o = append(o, "Cache-Control: "...)
	o = append(o, c.scr...)
	return append(o, "\r\n"...)
}

// copyLength relays the rest of a body of known length.
func (c *conn) copyLength(bc *bconn, left int64) error {
	for left > 0 {
		bc.r, bc.w = 0, 0
		bc.dl.read(bc.nc, time.Now(), c.s.o.ServerTimeout)
		m, err := bc.nc.Read(bc.buf[:min(int64(len(bc.buf)), left)])
		if m > 0 {
			left -= int64(m)
			c.dl.write(c.nc, time.Now(), c.s.o.Limits.WriteTimeout)
			if _, werr := c.nc.Write(bc.buf[:m]); werr != nil {
				return errors.Join(errClientWrite, werr)
			}
		}
		if err != nil && left > 0 {
			return errors.Join(err, io.ErrUnexpectedEOF)
		}
	}
	return nil
}

// copyChunked relays the rest of a chunked body as it comes, checking its
// framing to find its end.
func (c *conn) copyChunked(bc *bconn, ch *chunked) error {
	for {
		bc.r, bc.w = 0, 0
		bc.dl.read(bc.nc, time.Now(), c.s.o.ServerTimeout)
		m, err := bc.nc.Read(bc.buf)
		if m > 0 {
			k, done, serr := ch.scan(bc.buf[:m])
			if serr != nil {
				return serr
			}
			bc.r, bc.w = k, m // bytes past the end mean the connection is not reusable
			c.dl.write(c.nc, time.Now(), c.s.o.Limits.WriteTimeout)
			if _, werr := c.nc.Write(bc.buf[:k]); werr != nil {
				return errors.Join(errClientWrite, werr)
			}
			if done {
				return nil
			}
		}
		if err != nil {
			return errors.Join(err, io.ErrUnexpectedEOF)
		}
	}
}

// copyUntilClose relays a body that ends when the server closes.
func (c *conn) copyUntilClose(bc *bconn) error {
	for {
		bc.r, bc.w = 0, 0
		bc.dl.read(bc.nc, time.Now(), c.s.o.ServerTimeout)
		m, err := bc.nc.Read(bc.buf)
		if m > 0 {
			c.dl.write(c.nc, time.Now(), c.s.o.Limits.WriteTimeout)
			if _, werr := c.nc.Write(bc.buf[:m]); werr != nil {
				return errors.Join(errClientWrite, werr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// tunnel relays bytes both ways after a 101 (websockets) until either side
// closes or both stay silent for timeout.tunnel.
func (c *conn) tunnel(n int, svc *forward.Service, srv *backend.Backend, bc *bconn, st forward.Sticky, start time.Time) bool {
	var method, path string
	if c.s.o.AccessLog() {
		b := c.buf[c.r : c.r+n]
		method, path = string(c.req.method.of(b)), string(c.req.path.of(b))
	}
	var visitor live.Visitor // the head is gone by the end: named now
	if svc.Live.Watched() {
		visitor = c.visitor(n, svc, true)
	}
	c.setState(http.StateHijacked)
	// What the client sent after its head already belongs to the new protocol.
	c.consume(n)
	if c.r < c.w {
		bc.nc.Write(c.buf[c.r:c.w])
		c.r, c.w = 0, 0
	}
	timeout := c.s.o.Limits.TunnelTimeout
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := c.buf
		for {
			c.nc.SetReadDeadline(time.Now().Add(timeout))
			m, err := c.nc.Read(buf)
			if m > 0 {
				bc.nc.SetWriteDeadline(time.Now().Add(timeout))
				if _, werr := bc.nc.Write(buf[:m]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		bc.nc.Close()
		c.nc.Close()
	})
	for {
		bc.nc.SetReadDeadline(time.Now().Add(timeout))
		m, err := bc.nc.Read(bc.buf)
		if m > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(timeout))
			if _, werr := c.nc.Write(bc.buf[:m]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	bc.nc.Close()
	c.nc.Close()
	wg.Wait()
	srv.Release()
	d := time.Since(start)
	svc.Counters.Record(st, 101, d)
	svc.Observe(func() live.Visitor { return visitor }, srv, st, 101)
	if c.s.o.AccessLog() {
		forward.LogRequest(c.s.o.Logger, method, path, 101, svc.Name, srv.ID(), st, d, false)
	}
	return false
}

// logRequest writes the access log line of the request whose head is b.
func (c *conn) logRequest(b []byte, svc *forward.Service, srv *backend.Backend, st forward.Sticky, status int, aborted bool, d time.Duration) {
	id := ""
	if srv != nil {
		id = srv.ID()
	}
	forward.LogRequest(c.s.o.Logger, string(c.req.method.of(b)), string(c.req.path.of(b)), status, svc.Name, id, st, d, aborted)
}
