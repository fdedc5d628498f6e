package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
)

// TransportOptions are the upstream timeouts (dockercloud's TIMEOUT
// "connect" and "server"). Zero fields take the defaults shown.
type TransportOptions struct {
	ConnectTimeout        time.Duration // 5s: a dial that takes longer fails and is retried elsewhere
	ResponseHeaderTimeout time.Duration // 50s: from the request sent to the response headers
	IdleConnTimeout       time.Duration // 90s: idle keep-alive connections to servers
	MaxIdleConnsPerHost   int           // 128
}

// DialError is a failure to connect to a server: nothing of the request was
// sent, so it is safe to retry on another server whatever the method.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return "connecting to " + e.Addr + ": " + e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// NewTransport returns the http.Transport the proxy uses for one attempt:
// its dial errors are *DialError, it never uses an HTTP proxy from the
// environment, and it never asks for compression (the client's
// Accept-Encoding goes through as it is, and so does the answer).
func NewTransport(o TransportOptions) *http.Transport {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.ResponseHeaderTimeout <= 0 {
		o.ResponseHeaderTimeout = 50 * time.Second
	}
	if o.IdleConnTimeout <= 0 {
		o.IdleConnTimeout = 90 * time.Second
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = 128
	}
	d := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &DialError{Addr: addr, Err: err}
			}
			return conn, nil
		},
		MaxIdleConns:          0, // no global limit; per host below
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       o.IdleConnTimeout,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// retrier is the ReverseProxy's Transport: it sends the request to the
// pinned server or a balanced one, and when the connection fails it marks
// that server down and tries another (HAProxy `retries` with `option
// redispatch`, but at once: a refused connection costs milliseconds, not
// HAProxy's retry delay).
type retrier struct{ h *Handler }

func (t retrier) RoundTrip(req *http.Request) (*http.Response, error) {
	c := callFrom(req.Context())
	if c == nil {
		return nil, errors.New("forward: request without a call")
	}
	svc := c.svc
	body := keepBody(req)
	var triedBuf [4]*backend.Backend
	tried := triedBuf[:0]
	var lastErr error
	next := c.pinned // nil: balance
	for attempt := 0; attempt <= svc.Retries; attempt++ {
		b := next
		next = nil
		if b == nil || !b.Available() {
			var ok bool
			if b, ok = svc.Pool.PickFor(c.client, tried...); !ok {
				break
			}
		}
		b.Acquire()
		req.URL.Host = b.Addr()
		resp, err := t.h.transport.RoundTrip(req)
		if err == nil {
			c.srv = b
			c.sticky = outcome(c, b)
			if c.sticky == StickyRebalanced {
				// A stale or tampered id is not the client's problem: it is
				// balanced and gets the new server's id with its new session.
				t.h.logger.Debug("sticky id names no available server; rebalanced", "service", svc.Name, "server", b.ID())
			}
			return resp, nil
		}
		switch t.afterFailure(req, body, b, err) {
		case retrySame:
			next = b
		case retryOther:
			tried = append(tried, b)
		case giveUp:
			return nil, err
		}
		lastErr = err
	}
	if c.svc.Sticky.On() {
		c.sticky = outcome(c, nil)
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, errNoServer
}

// keepBody wraps the request's body, if any, so that it survives a failed attempt and
// tells whether any of it was sent.
func keepBody(req *http.Request) *retryBody {
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	// The transport closes the body when an attempt fails; keep it open for the next
	// one. The server closes the real one when the handler returns.
	body := &retryBody{rc: req.Body}
	req.Body = body
	// Lets the transport resend on a fresh connection when a reused one fails before
	// anything was written.
	req.GetBody = func() (io.ReadCloser, error) {
		if body.read.Load() {
			return nil, errBodyRead
		}
		return body, nil
	}
	return body
}

// retry is what to do after a failed attempt.
type retry int

const (
	giveUp     retry = iota // the request may have reached the server: not ours to repeat
	retrySame               // the server never saw it and is not down: again, on a new connection
	retryOther              // the server is down or dropped it unanswered: another server
)

// afterFailure ends the attempt on b that failed with err (b's slot is given back,
// counted as a failure when the server is at fault) and says whether and where the
// request may go again.
func (t retrier) afterFailure(req *http.Request, body *retryBody, b *backend.Backend, err error) retry {
	unread := body == nil || !body.read.Load()
	clientGone := req.Context().Err() != nil
	if unread && !clientGone && err.Error() == errServerClosedIdle {
		// The server closed a kept-alive connection just as we sent on it: it never
		// saw the request (the transport resends such requests by itself only when
		// they are idempotent). The server is not down: try it again.
		b.ReleaseUnsent()
		return retrySame
	}
	if body == nil && replayable(req.Method) && !clientGone && emptyResponse(err) {
		// The server took the request and dropped the connection without a word: it
		// crashed or was killed under it. A GET or HEAD without a body is safe to send
		// again, to another server (HAProxy `retry-on empty-response` with `option
		// redispatch`); whatever the dead server did with it died with it. The dial of
		// the next request to it marks it down if it stays gone.
		b.ReleaseFailed()
		return retryOther
	}
	var de *DialError
	if !errors.As(err, &de) || !unread || clientGone {
		if !clientGone && isTimeout(err) && !errors.As(err, &de) {
			// No answer within timeout.server: a hung server, which a TCP
			// check alone would keep in rotation.
			if b.Stalled() {
				t.h.logger.Warn("server down: no answer within timeout.server", "service", callFrom(req.Context()).svc.Name, "server", b.ID(), "addr", b.Addr())
			}
		}
		b.Release()
		return giveUp
	}
	b.ReleaseFailed()
	if b.SetUp(false) {
		t.h.logger.Warn("server down: connection failed", "service", callFrom(req.Context()).svc.Name, "server", b.ID(), "addr", b.Addr(), "err", de.Err)
	}
	return retryOther
}

// errServerClosedIdle is the text of net/http's unexported error for a
// kept-alive connection the server closed before the request was sent.
const errServerClosedIdle = "http: server closed idle connection"

var errBodyRead = errors.New("request body already sent")

// replayable reports whether a request of this method may be sent twice.
func replayable(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// emptyResponse reports whether err says the server closed or reset the
// connection before sending any response: not a timeout, not a bad answer.
func emptyResponse(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// outcome says what stickiness did for a request answered by b.
func outcome(c *call, b *backend.Backend) Sticky { return Outcome(c.svc, c.pinned, b, c.pin.HadID) }

// retryBody keeps a request body open across attempts and tells whether any
// of it was read (then the request is no longer safe to retry).
type retryBody struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (b *retryBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.read.Store(true)
	}
	return n, err
}

// Close does nothing: the body belongs to the incoming request, which the
// HTTP server closes when the handler returns.
func (b *retryBody) Close() error { return nil }
