package pageview

import (
	"html"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

// pageViewsKey is the session key, named as in the original.
const pageViewsKey = "page_views"

// ctxNewSession is the gin context key telling the access log that the request
// started a session. It is set only when the access log will write the line: the
// first value set in a gin context allocates its Keys map.
const ctxNewSession = "pageview.new_session"

// Answer is the JSON answer of GET /<service> with Accept: application/json, and the
// one Go type it is decoded with (internal/browser, for the tests, the lab and the
// benchmarks): its field names are the services' API. The handler writes it without
// encoding/json (pageWriter.write), byte for byte what json.Marshal of an Answer gives
// (TestJSONAnswerIsEncodingJSON).
type Answer struct {
	Service string            `json:"service"`
	Host    string            `json:"host"`
	Visits  int               `json:"visits"`
	Headers map[string]string `json:"headers"`
}

// handleCount counts a page view in the session and answers it.
func handleCount(cfg Config, st store.Store, logger *slog.Logger) gin.HandlerFunc {
	page := newPageWriter(cfg)
	return func(c *gin.Context) {
		visits, isNew, err := increment(c, st, cfg.CookieName)
		if err != nil {
			logger.Error("saving session", "err", err)
			c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error\n"))
			return
		}
		if logger.Enabled(c.Request.Context(), slog.LevelInfo) {
			c.Set(ctxNewSession, isNew)
		}
		page.write(c, visits)
	}
}

// increment adds one to the session's page_views and saves the session, holding the
// store's per-session lock from before the load until after the save. Without it two
// parallel requests of one visitor both read N and both save N+1, which is how the
// Node original loses most of its counts under parallel load. A session without
// page_views is a new one.
//
// The session is loaded and saved through the store itself, not gin-contrib/sessions'
// middleware: that middleware makes the same two calls, through a wrapper made per
// request and kept in gin's Keys map, 3 of a page view's 14 allocations
// (BenchmarkCount). The stores stay gin-contrib/sessions stores, for any gin app
// (store.TestStoresServeTheSessionsMiddleware).
func increment(c *gin.Context, st store.Store, cookieName string) (visits int, isNew bool, err error) {
	unlock := st.Lock(c.Request, cookieName)
	defer unlock()
	s, err := st.Get(c.Request, cookieName)
	if err != nil {
		return 0, false, err
	}
	n, _ := s.Values[pageViewsKey].(int)
	n++
	s.Values[pageViewsKey] = n
	return n, n == 1, st.Save(c.Request, c.Writer, s)
}

// pageWriter writes the answer of a counted page view. Its parts that never change
// (the service, the host) are escaped once, when the server is built.
type pageWriter struct {
	json []byte // {"service":...,"host":...,"visits":
	h1   string // <h1>I'm SERVICE on HOST non unique visits
}

func newPageWriter(cfg Config) pageWriter {
	j := appendJSONString([]byte(`{"service":`), cfg.Service, false)
	j = appendJSONString(append(j, `,"host":`...), cfg.Host, false)
	return pageWriter{
		json: append(j, `,"visits":`...),
		h1:   "<h1>I'm " + html.EscapeString(cfg.Service) + " on " + html.EscapeString(cfg.Host) + " non unique visits ",
	}
}

// Header values shared by every answer: the header map holds them as they are and
// net/http only reads them (a Header.Add would copy: len == cap).
var (
	htmlType   = []string{"text/html; charset=utf-8"}
	jsonType   = []string{"application/json; charset=utf-8"}
	varyAccept = []string{"Accept"}
)

// write answers the page: the original's HTML (the JSON of the request's headers, then
// the <h1> line), or, to a client that asks for JSON first, an Answer. Everything
// echoed is escaped: the headers as encoding/json escapes them (<, > and & included,
// so no header becomes markup: the original echoed them raw, an XSS), the service
// and host through html.EscapeString in the page.
func (p pageWriter) write(c *gin.Context, visits int) {
	h := c.Writer.Header()
	h["Vary"] = varyAccept
	buf := bodies.Get().(*[]byte)
	defer bodies.Put(buf)
	b := (*buf)[:0]
	if wantsJSON(c) {
		h["Content-Type"] = jsonType
		b = append(b, p.json...)
		b = strconv.AppendInt(b, int64(visits), 10)
		b = append(b, `,"headers":`...)
		b = appendHeadersJSON(b, c.Request)
		b = append(b, '}', '\n')
	} else {
		h["Content-Type"] = htmlType
		b = appendHeadersJSON(b, c.Request)
		b = append(b, p.h1...)
		b = strconv.AppendInt(b, int64(visits), 10)
		b = append(b, "</h1>"...)
	}
	c.Status(http.StatusOK)
	c.Writer.Write(b) // an error is the client gone: nothing to answer
	if cap(b) <= maxPooledBody {
		*buf = b
	}
}

// bodies holds the buffers pages are built in: net/http copies what Write is given,
// so a buffer is free again when Write returns. One that grew past maxPooledBody for
// a request with huge headers is dropped rather than kept.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBody = 16 << 10

// wantsJSON reports whether the request's Accept prefers JSON to HTML, as gin's
// NegotiateFormat decides it (the first listed type that matches either wins; none
// or */* is HTML), without parsing the two most common values: none and curl's */*.
func wantsJSON(c *gin.Context) bool {
	switch c.GetHeader("Accept") {
	case "", "*/*":
		return false
	}
	return c.NegotiateFormat(gin.MIMEHTML, gin.MIMEJSON) == gin.MIMEJSON
}
