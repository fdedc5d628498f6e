package forward

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/live"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// HealthPath is answered "ok" by the proxy itself on its main listener, so a
// container health check works even with the admin port off.
const HealthPath = "/.proxy/healthz"

// Options configure a Handler. The zero value works: a default Transport, no
// log.
type Options struct {
	// Transport sends one attempt to one server. nil: NewTransport with
	// default timeouts. Its dial errors must be *DialError for retries to
	// happen (NewTransport's are).
	Transport http.RoundTripper
	// Log gets server state changes and, with AccessLog, one line per
	// request. nil: discard.
	Logger    *slog.Logger
	AccessLog bool
	// Limits bound a client's request body and writes; zero fields take their
	// defaults.
	Limits Limits
}

// Handler is the proxy's http.Handler. Its table can be swapped at any time
// (a reload); requests in flight finish with the table they started with.
type Handler struct {
	table     atomic.Pointer[Table]
	proxy     *httputil.ReverseProxy
	transport http.RoundTripper
	logger    *slog.Logger
	accessLog atomic.Bool
	limits    Limits
}

// NewHandler makes a Handler with an empty table: every request gets 404 until
// SetTable.
func NewHandler(o Options) *Handler {
	h := &Handler{transport: o.Transport, logger: o.Logger, limits: o.Limits.WithDefaults()}
	h.accessLog.Store(o.AccessLog)
	if h.transport == nil {
		h.transport = NewTransport(TransportOptions{})
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	h.table.Store(&Table{})
	h.proxy = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      retrier{h},
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.errorHandler,
		// Zero, not -1: ReverseProxy already flushes every chunk at once for
		// a response of unknown length (chunked: server-sent events, long
		// polls, slow pages) and for text/event-stream. -1 would do so for
		// every answer too, through a timer goroutine and a second write:
		// that cost the proxy half its throughput on small pages.
		FlushInterval: 0,
		BufferPool:    bufferPool{},
		ErrorLog:      slog.NewLogLogger(h.logger.Handler(), slog.LevelDebug),
	}
	return h
}

// SetTable routes new requests with t.
func (h *Handler) SetTable(t *Table) { h.table.Store(t) }

// SetAccessLog turns the per-request log line on or off.
func (h *Handler) SetAccessLog(on bool) { h.accessLog.Store(on) }

// AccessLog reports whether the per-request log line is on.
func (h *Handler) AccessLog() bool { return h.accessLog.Load() }

// Table is the table new requests are routed with.
func (h *Handler) Table() *Table { return h.table.Load() }

// call is the state of one request, shared by the hooks of ReverseProxy
// through the request context.
type call struct {
	svc    *Service
	pin    Pin              // what the sticky cookies said
	pinned *backend.Backend // the first id naming an available server (pin.Server)
	client netip.Addr       // the client's address, for balance source
	now    int64            // Unix seconds at the start (ServeHTTP's), for the cookie dates
	post   bool
	srv    *backend.Backend // the server that answered; Released by ServeHTTP
	sticky Sticky
	status int
	// complete is set when ReverseProxy returned normally (the answer went
	// out whole).
	complete bool
	// hostless: an HTTP/1.0 request without Host (it goes out with the
	// server name, and without X-Forwarded-Host).
	hostless bool
	body     *clientBody // nil: the request has no body
	hsts     bool        // the answer carries the service's Strict-Transport-Security
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == HealthPath {
		plain(w, http.StatusOK, "ok")
		return
	}
	start := time.Now()
	if r.Host == "" && r.ProtoAtLeast(1, 1) {
		// net/http refuses a missing Host on HTTP/1.1 but lets an empty one
		// through; a server would get its own address as Host instead.
		w.Header().Set("Connection", "close")
		plain(w, http.StatusBadRequest, BadHostText)
		return
	}
	svc, ok := h.table.Load().Match(r.Host, r.URL.Path)
	if !ok {
		p := r.URL.EscapedPath()
		plain(w, http.StatusNotFound, NoRouteText(p))
		if h.accessLog.Load() {
			LogNoRoute(h.logger, r.Method, p, time.Since(start))
		}
		return
	}
	if r.TLS == nil && svc.ForceSSL {
		h.redirectHTTPS(w, r, svc, start)
		return
	}
	c := &call{svc: svc, now: start.Unix()}
	if r.Host == "" {
		c.hostless = true
		r.Host = h.limits.ServerName
	}
	rc := http.NewResponseController(w)
	if len(r.TransferEncoding) > 0 {
		// net/http drops a Content-Length sent with Transfer-Encoding and
		// goes on; RFC 9112 §6.3 says to close the connection after such a
		// request, and this engine cannot tell them apart from a plain
		// chunked one: it closes after every chunked request.
		w.Header().Set("Connection", "close")
	}
	if r.Body != nil && r.Body != http.NoBody {
		c.body = &clientBody{rc: r.Body, ctl: rc, limits: &h.limits, start: start}
		r.Body = c.body
	}
	w = &clientWriter{ResponseWriter: w, ctl: rc, timeout: h.limits.WriteTimeout}
	if r.TLS != nil && svc.HSTS != "" {
		// Set before the proxying, so the proxy's own error answers carry it too;
		// modifyResponse drops the server's, so there is one.
		w.Header()["Strict-Transport-Security"] = []string{svc.HSTS}
		c.hsts = true
	}
	// Deferred: ReverseProxy aborts a response whose body copy fails (the
	// server died mid-body, the client left) with panic(http.ErrAbortHandler),
	// and the server's slot and the counters must be given back anyway.
	defer h.finish(w, r, c, start)
	r = r.WithContext(context.WithValue(r.Context(), callKey{}, c))
	if c.body != nil && r.ContentLength > 0 && r.ContentLength <= BufferedBody {
		// Read whole before a server is chosen (see BufferedBody).
		b, err := io.ReadAll(io.LimitReader(c.body, r.ContentLength))
		if err != nil || int64(len(b)) < r.ContentLength {
			if c.body.failed() == 0 {
				c.body.fault.Store(http.StatusBadRequest)
			}
			h.errorHandler(w, r, err)
			c.complete = true
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		// net/http told the client to go on (100 Continue) when the body was
		// read; the server gets the whole request, nothing to expect.
		r.Header.Del("Expect")
	}
	h.proxy.ServeHTTP(w, r)
	c.complete = true
}

// finish releases the server and records the request once it is over; w's
// header is the answer's, as sent.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, c *call, start time.Time) {
	if c.srv != nil {
		c.srv.Release()
	}
	d := time.Since(start)
	status := c.status
	if !c.complete || status == StatusClientGone {
		status = 0 // counted with the requests that got no whole answer
	}
	c.svc.Counters.Record(c.sticky, status, d)
	c.svc.Observe(func() live.Visitor { return c.svc.visitor(r, w.Header()) }, c.srv, c.sticky, status)
	if h.accessLog.Load() {
		id := ""
		if c.srv != nil {
			id = c.srv.ID()
		}
		logged := c.status
		if !c.complete {
			// Cut short after the head went out: the log says who cut it.
			logged = http.StatusBadGateway
			if r.Context().Err() != nil {
				logged = StatusClientGone
			}
		}
		LogRequest(h.logger, r.Method, r.URL.EscapedPath(), logged, c.svc.Name, id, c.sticky, d, !c.complete)
	}
}

// rewrite prepares the outgoing request: forwarded headers, the sticky id
// off the cookies, and the server the cookie asks for. The server itself is
// chosen per attempt by retrier.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	c := callFrom(pr.In.Context())
	// Keep what earlier proxies said, as HAProxy's `option forwardfor`
	// (ReverseProxy drops it before Rewrite); SetXForwarded appends the
	// client's address and sets X-Forwarded-Host and -Proto.
	if prior, ok := pr.In.Header["X-Forwarded-For"]; ok {
		pr.Out.Header["X-Forwarded-For"] = prior
	}
	pr.SetXForwarded()
	if c.hostless {
		pr.Out.Header.Del("X-Forwarded-Host") // the client named no host
	}
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "" // set per attempt
	// pr.Out.Host is the client's Host, passed on unchanged.

	if c.svc.Pool.Balance() == backend.Source {
		peer, _ := netip.ParseAddrPort(pr.In.RemoteAddr)
		var last []byte
		if v := pr.In.Header["X-Forwarded-For"]; len(v) > 0 {
			last = []byte(v[len(v)-1])
		}
		c.client = ClientAddr(peer.Addr(), c.svc.TrustedProxies, last)
	}
	rule := &c.svc.Sticky
	if !rule.On() {
		return
	}
	c.post = pr.In.Method == http.MethodPost
	// As HAProxy's http_manage_client_side_cookies: the first id naming an
	// available server pins the request; in prefix mode the ids come off
	// every NAME cookie, known or not, so the server sees exactly the value
	// it set, and in insert+indirect mode the NAME cookies come off whole.
	// Out.Header is a copy: writing to it is ours to do.
	cookies := pr.Out.Header["Cookie"]
	kept := cookies[:0]
	for _, v := range cookies {
		c.pin.Read(c.svc, []byte(v), c.now)
		if nv, keep := rule.RewriteCookie(v); keep {
			kept = append(kept, nv)
		}
	}
	switch {
	case len(kept) > 0:
		pr.Out.Header["Cookie"] = kept
	case len(cookies) > 0:
		delete(pr.Out.Header, "Cookie")
	}
	c.pinned = c.pin.Server
}

// modifyResponse puts the id of the server that answered in the answer's
// cookies as the service's rule says (sticky.Rule.SetCookie and Insert), and
// records the status. A 101 (websocket) gets the inserted cookie too.
func (h *Handler) modifyResponse(resp *http.Response) error {
	c := callFrom(resp.Request.Context())
	c.status = resp.StatusCode
	if c.hsts {
		delete(resp.Header, "Strict-Transport-Security")
	}
	rule := &c.svc.Sticky
	if !rule.On() {
		if tr := c.svc.Trap; tr != nil {
			for _, v := range resp.Header["Set-Cookie"] {
				tr.Check([]byte(v), []byte(resp.Request.URL.Path))
			}
		}
		return nil
	}
	if c.srv == nil || (resp.StatusCode < 200 && resp.StatusCode != 101) {
		return nil
	}
	id := c.srv.ID()
	hit := c.sticky == StickyHit
	withID, named := false, false
	sc := resp.Header["Set-Cookie"]
	out := sc[:0]
	for _, v := range sc {
		a, n := rule.SetCookie([]byte(v), hit)
		named = named || n
		switch a {
		case sticky.Drop:
			continue
		case sticky.PutID:
			v = string(rule.AppendSetCookie(nil, []byte(v), id))
			withID = true
		}
		out = append(out, v)
	}
	if rule.Insert(hit, c.pin.Dates, c.now, c.post, named) {
		out = append(out, string(rule.AppendInsert(nil, id, c.now, c.pin.Dates.First)))
		withID = true
	}
	switch {
	case len(out) > 0:
		resp.Header["Set-Cookie"] = out
	case len(sc) > 0:
		delete(resp.Header, "Set-Cookie")
	}
	if c.sticky == StickyNew && rule.Mode != sticky.ModeInsert && resp.StatusCode/100 == 2 && c.svc.Doctor.SamplingNew() {
		c.svc.Doctor.NewVisitorAnswer(rule.Name, named, func(yield func([]byte) bool) {
			for _, v := range out {
				if !yield([]byte(v)) {
					return
				}
			}
		})
	}
	if withID && rule.NoCache {
		resp.Header["Cache-Control"] = []string{privateCache(resp.Header["Cache-Control"])}
	}
	return nil
}

// privateCache merges "private" into Cache-Control values: "public" goes,
// everything else stays, and "private" is added unless there already.
func privateCache(values []string) string {
	var out []byte
	has := false
	for _, v := range values {
		out, has = AppendCacheDirectives(out, []byte(v), has)
	}
	return string(AppendPrivate(out, has))
}

// errNoServer means the service has no available server left to try.
var errNoServer = errors.New("no server available")

// errorHandler maps a failed request to a short plain-text answer: no Go
// error text and no address ever reaches the client.
func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	c := callFrom(r.Context())
	var ne net.Error
	var de *DialError
	switch {
	case c.body != nil && c.body.failed() != 0:
		// Reading the client's body failed (it stalled, was malformed or cut
		// short): the client's fault, a 4xx, and nothing against the server.
		c.status = c.body.failed()
		w.Header().Set("Connection", "close")
		plain(w, c.status, BodyFaultText(c.status))
		h.logger.Debug("request failed: the client's body", "service", c.svc.Name, "status", c.status, "err", err)
		return
	case r.Context().Err() != nil:
		// The client went away; nobody reads an answer, and none is sent
		// (an empty 200 would be, if the handler just returned).
		c.status = StatusClientGone
		panic(http.ErrAbortHandler)
	case errors.Is(err, errNoServer):
		c.status = http.StatusServiceUnavailable
		plain(w, c.status, NoServerText(c.svc.Name))
	case errors.As(err, &de):
		c.status = http.StatusServiceUnavailable
		plain(w, c.status, RefusedText(c.svc.Name))
	case errors.As(err, &ne) && ne.Timeout():
		c.status = http.StatusGatewayTimeout
		plain(w, c.status, TimeoutText(c.svc.Name))
	default:
		c.status = http.StatusBadGateway
		plain(w, c.status, BadGatewayText(c.svc.Name))
	}
	h.logger.Warn("request failed", "service", c.svc.Name, "status", c.status, "err", err)
}

// plain writes a one-line text answer that no browser will sniff as HTML.
func plain(w http.ResponseWriter, status int, msg string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// bufferPool lends ReverseProxy its 32 KiB copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
