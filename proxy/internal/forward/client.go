package forward

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// clientBody is the request body as the std engine reads it from the client: every
// read has the deadline Limits.BodyDeadline gives, and a failed read is remembered as
// the client's fault (408 when it stalled, 400 when it was malformed or cut short), so
// that the answer blames the client and not the server the body was going to.
type clientBody struct {
	rc     io.ReadCloser
	ctl    *http.ResponseController
	limits *Limits
	start  time.Time
	got    int64
	fault  atomic.Int32 // the status earned; 0 while nothing failed
}

func (b *clientBody) Read(p []byte) (int, error) {
	now := time.Now()
	_ = b.ctl.SetReadDeadline(b.limits.BodyDeadline(b.start, now, b.got))
	n, err := b.rc.Read(p)
	b.got += int64(n)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		// Done: the connection's next read (a next request) is net/http's
		// to bound again.
		_ = b.ctl.SetReadDeadline(time.Time{})
	case isTimeout(err):
		b.fault.CompareAndSwap(0, http.StatusRequestTimeout)
	default:
		b.fault.CompareAndSwap(0, http.StatusBadRequest)
	}
	return n, err
}

func (b *clientBody) Close() error { return b.rc.Close() }

// failed is the status the client's body earned, 0 if it did not fail.
func (b *clientBody) failed() int { return int(b.fault.Load()) }

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// clientWriter bounds every write to the client by Limits.WriteTimeout: a client
// that stops reading is cut, one that reads slowly but keeps reading is not. It sets
// the connection's deadline lazily, at most every eighth of the timeout.
type clientWriter struct {
	http.ResponseWriter
	ctl      *http.ResponseController
	timeout  time.Duration
	deadline time.Time
}

func (w *clientWriter) Write(p []byte) (int, error) {
	w.bound()
	return w.ResponseWriter.Write(p)
}

func (w *clientWriter) WriteHeader(code int) {
	if code >= 200 {
		w.bound()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *clientWriter) bound() {
	want := time.Now().Add(w.timeout)
	if w.deadline.IsZero() || want.Sub(w.deadline) > w.timeout/8 {
		w.deadline = want
		_ = w.ctl.SetWriteDeadline(want)
	}
}

// Unwrap lets http.ResponseController (and ReverseProxy through it) reach the
// server's own writer to flush and hijack.
func (w *clientWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
