package forward

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
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
}

// Handler is the proxy's http.Handler. Its table can be swapped at any time
// (a reload); requests in flight finish with the table they started with.
type Handler struct {
	table     atomic.Pointer[Table]
	proxy     *httputil.ReverseProxy
	transport http.RoundTripper
	logger    *slog.Logger
	accessLog atomic.Bool
}

// NewHandler makes a Handler with an empty table: every request gets 404 until
// SetTable.
func NewHandler(o Options) *Handler {
	h := &Handler{transport: o.Transport, logger: o.Logger}
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

// Table is the table new requests are routed with.
func (h *Handler) Table() *Table { return h.table.Load() }

// call is the state of one request, shared by the hooks of ReverseProxy
// through the request context.
type call struct {
	svc    *Service
	idBuf  [4]string
	ids    []string         // ids taken off the sticky cookies, in order
	pinned *backend.Backend // the first id naming an available server
	srv    *backend.Backend // the server that answered; Released by ServeHTTP
	sticky Sticky
	status int
	// complete is set when ReverseProxy returned normally (the answer went
	// out whole).
	complete bool
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
	svc, ok := h.table.Load().Match(r.Host, r.URL.Path)
	if !ok {
		p := r.URL.EscapedPath()
		if len(p) > 200 {
			p = p[:200] + "..."
		}
		plain(w, http.StatusNotFound, "no route for "+p)
		if h.accessLog.Load() {
			h.logger.Info("request", "method", r.Method, "path", p, "status", http.StatusNotFound, "service", "", "dur_ms", ms(time.Since(start)))
		}
		return
	}
	c := &call{svc: svc}
	// Deferred: ReverseProxy aborts a response whose body copy fails (the
	// server died mid-body, the client left) with panic(http.ErrAbortHandler),
	// and the server's slot and the counters must be given back anyway.
	defer h.finish(r, c, start)
	h.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
	c.complete = true
}

// finish releases the server and records the request once it is over.
func (h *Handler) finish(r *http.Request, c *call, start time.Time) {
	if c.srv != nil {
		c.srv.Release()
	}
	d := time.Since(start)
	status := c.status
	if !c.complete || status == statusClientGone {
		status = 0 // counted with the requests that got no whole answer
	}
	c.svc.Counters.record(c.sticky, status, d)
	if h.accessLog.Load() {
		id := ""
		if c.srv != nil {
			id = c.srv.ID()
		}
		attrs := []any{"method", r.Method, "path", r.URL.EscapedPath(), "status", c.status,
			"service", c.svc.Name, "server", id, "sticky", c.sticky.String(), "dur_ms", ms(d)}
		if !c.complete {
			attrs = append(attrs, "aborted", true)
		}
		h.logger.Info("request", attrs...)
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
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "" // set per attempt
	// pr.Out.Host is the client's Host, passed on unchanged.

	if c.svc.Cookie == "" {
		return
	}
	// As HAProxy `cookie NAME prefix`: the id comes off every NAME cookie
	// of every Cookie header, known or not, so the server sees exactly the
	// value it set. Out.Header is a copy: writing to it is ours to do.
	c.ids = c.idBuf[:0]
	cookies := pr.Out.Header["Cookie"]
	for i, v := range cookies {
		cookies[i], c.ids = sticky.Strip(v, c.svc.Cookie, c.ids)
	}
	for _, id := range c.ids {
		if b, ok := c.svc.Pool.Lookup(id); ok && b.Available() {
			c.pinned = b
			break
		}
	}
}

// modifyResponse prefixes the service's Set-Cookie with the id of the
// server that answered, and records the status.
func (h *Handler) modifyResponse(resp *http.Response) error {
	c := callFrom(resp.Request.Context())
	c.status = resp.StatusCode
	if c.svc.Cookie == "" || c.srv == nil {
		return nil
	}
	prefixed := false
	sc := resp.Header["Set-Cookie"]
	for i, v := range sc {
		if nv, ok := sticky.Prefix(v, c.svc.Cookie, c.srv.ID()); ok {
			sc[i] = nv
			prefixed = true
		}
	}
	if prefixed && c.svc.NoCache {
		resp.Header["Cache-Control"] = []string{privateCache(resp.Header["Cache-Control"])}
	}
	return nil
}

// privateCache merges "private" into Cache-Control values: "public" goes,
// everything else stays, and "private" is added unless there already.
func privateCache(values []string) string {
	var out []string
	has := false
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.TrimSpace(d)
			name, _, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "":
				continue
			case "public":
				continue
			case "private":
				if has {
					continue
				}
				has = true
				d = "private" // a field-qualified private="set-cookie" would let caches keep the rest
			}
			out = append(out, d)
		}
	}
	if !has {
		out = append(out, "private")
	}
	return strings.Join(out, ", ")
}

// statusClientGone is logged for a request whose client left before the
// answer (nginx's 499); nobody receives it.
const statusClientGone = 499

// errNoServer means the service has no available server left to try.
var errNoServer = errors.New("no server available")

// errorHandler maps a failed request to a short plain-text answer: no Go
// error text and no address ever reaches the client.
func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	c := callFrom(r.Context())
	var ne net.Error
	var de *DialError
	switch {
	case r.Context().Err() != nil:
		// The client went away; nobody reads an answer.
		c.status = statusClientGone
		w.WriteHeader(statusClientGone)
		return
	case errors.Is(err, errNoServer):
		c.status = http.StatusServiceUnavailable
		plain(w, c.status, "no server available for "+c.svc.Name)
	case errors.As(err, &de):
		c.status = http.StatusServiceUnavailable
		plain(w, c.status, "service unavailable: no server of "+c.svc.Name+" accepted the connection")
	case errors.As(err, &ne) && ne.Timeout():
		c.status = http.StatusGatewayTimeout
		plain(w, c.status, "gateway timeout: "+c.svc.Name+" did not answer in time")
	default:
		c.status = http.StatusBadGateway
		plain(w, c.status, "bad gateway: "+c.svc.Name+" gave no valid answer")
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
