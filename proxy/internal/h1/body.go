package h1

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// bodyStream relays the rest of a request body (what did not arrive with the
// head) from the client to the server in a goroutine of its own, so that the
// connection's goroutine reads the answer meanwhile: a server may answer (or
// ask to continue, 100) before it has read the body, and neither side may wait
// for the other. While it runs, it owns the client connection's read side and
// read deadline; wait or stop joins it.
type bodyStream struct {
	done chan struct{}
	// Set before done is closed:
	err  error  // nil: the whole body was sent
	left []byte // bytes read past the body's end: the start of a next request
	// fault is the status the client's side earned (408 stalled, 400
	// malformed or cut short), set before the server's read is interrupted,
	// so that the answer blames the client.
	fault atomic.Int32
}

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// startBody starts streaming the body. While it streams, its goroutine bounds the
// wait for the answer: no deadline until then (the body's own bounds bound the
// client), timeout.server from the moment the body is sent whole, at once when it
// fails.
func startBody(c *conn, bc *bconn, rb requestBody) *bodyStream {
	bc.nc.SetReadDeadline(time.Time{}) // before the answer's read starts: a pooled one may be past
	bc.dl.r = time.Time{}
	bs := &bodyStream{done: make(chan struct{})}
	go bs.run(c, bc, rb)
	return bs
}

func (bs *bodyStream) run(c *conn, bc *bconn, rb requestBody) {
	defer close(bs.done)
	bp := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(bp)
	buf := *bp
	left := rb.length - int64(rb.inBuf) // known length: what is still to come
	ch := rb.ch                         // chunked: the state after the buffered part
	start, got := rb.start, int64(rb.inBuf)
	for {
		want := buf
		if rb.length > 0 && int64(len(want)) > left {
			want = want[:left]
		}
		// Not lazily: the minimum rate moves the deadline with every read.
		c.nc.SetReadDeadline(c.s.o.Limits.BodyDeadline(start, time.Now(), got))
		m, err := c.nc.Read(want)
		got += int64(m)
		if m > 0 {
			k, done := m, false
			if rb.length > 0 {
				left -= int64(m)
				done = left == 0
			} else {
				var serr error
				k, done, serr = ch.scan(buf[:m])
				if serr != nil {
					bs.fail(bc, 400, serr)
					return
				}
			}
			bc.dl.write(bc.nc, time.Now(), c.s.o.ServerTimeout)
			if _, werr := bc.nc.Write(buf[:k]); werr != nil {
				// The server's side (it stopped reading, or closed): its answer,
				// or its silence, tells.
				bs.err = werr
				bc.nc.SetReadDeadline(time.Now().Add(c.s.o.ServerTimeout))
				return
			}
			if done {
				if k < m {
					bs.left = append([]byte(nil), buf[k:m]...)
				}
				bc.nc.SetReadDeadline(time.Now().Add(c.s.o.ServerTimeout))
				return
			}
		}
		if err != nil {
			status := int32(400) // it closed mid-body, or the read failed
			if isTimeout(err) {
				status = 408 // stalled, or below body_min_rate
			}
			bs.fail(bc, status, err)
			return
		}
	}
}

// fail records the client's fault and interrupts the wait for the answer.
func (bs *bodyStream) fail(bc *bconn, status int32, err error) {
	bs.err = err
	bs.fault.Store(status)
	bc.nc.SetReadDeadline(time.Unix(1, 0))
}

// clientFault reports, while the stream may still run, whether the client's
// side failed (then the failed read of the answer is not the server's fault).
func (bs *bodyStream) clientFault() attemptError {
	if bs.fault.Load() != 0 {
		<-bs.done
		return attemptClient
	}
	return 0
}

// statusOf is the status the client's fault earned, 0 if none.
func (bs *bodyStream) statusOf() int { return int(bs.fault.Load()) }

// wait joins the stream after the answer was relayed and reports whether the
// whole body was sent. A server that answered without reading the whole body
// leaves the rest unread: the stream is stopped, and the connection must not
// carry another request (what is left would be read as one).
func (bs *bodyStream) wait(c *conn, bc *bconn) bool {
	select {
	case <-bs.done:
	default:
		bs.stop(c, bc)
		return false
	}
	return bs.err == nil
}

// ok reports, once joined, whether the whole body reached the server.
func (bs *bodyStream) ok() bool { return bs.err == nil && bs.fault.Load() == 0 }

// stop interrupts the stream and joins it.
func (bs *bodyStream) stop(c *conn, bc *bconn) {
	c.nc.SetReadDeadline(time.Unix(1, 0))
	if bc != nil {
		bc.nc.SetWriteDeadline(time.Unix(1, 0))
	}
	<-bs.done
	if bs.err == nil {
		bs.err = errStopped
	}
	c.dl.r = time.Unix(1, 0) // what is set now; the next read sets its own
}

var errStopped = errors.New("request body stream stopped")

// refill puts what the stream read past the body's end back in the read
// buffer, where the next request starts.
func (c *conn) refill(bs *bodyStream) {
	if len(bs.left) == 0 {
		return
	}
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	for len(c.buf)-c.w < len(bs.left) {
		c.makeRoom()
	}
	c.w += copy(c.buf[c.w:], bs.left)
}
