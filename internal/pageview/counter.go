package pageview

import (
	"encoding/json"
	"html"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

// pageViewsKey is the session key, named as in the original.
const pageViewsKey = "page_views"

// ctxNewSession is the gin context key telling the access log that the request
// started a session.
const ctxNewSession = "pageview.new_session"

// Answer is the JSON answer of GET /<service> with Accept: application/json, and the
// one Go type it is decoded with (internal/browser, for the tests, the lab and the
// benchmarks): its field names are the services' API.
type Answer struct {
	Service string            `json:"service"`
	Host    string            `json:"host"`
	Visits  int               `json:"visits"`
	Headers map[string]string `json:"headers"`
}

// handleCount counts a page view in the session and answers it.
func handleCount(cfg Config, st store.Store, logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		visits, isNew, err := increment(c, st, cfg.CookieName)
		if err != nil {
			logger.Error("saving session", "err", err)
			c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error\n"))
			return
		}
		c.Set(ctxNewSession, isNew)
		c.Header("Vary", "Accept")
		a := Answer{Service: cfg.Service, Host: cfg.Host, Visits: visits, Headers: requestHeaders(c.Request)}
		if c.NegotiateFormat(gin.MIMEHTML, gin.MIMEJSON) == gin.MIMEJSON {
			body, _ := json.Marshal(a) // cannot fail: strings and an int
			c.Data(http.StatusOK, "application/json; charset=utf-8", append(body, '\n'))
			return
		}
		c.Data(http.StatusOK, "text/html; charset=utf-8", htmlBody(a))
	}
}

// increment adds one to the session's page_views and saves the session, holding the
// store's per-session lock from before the load until after the save. Without it two
// parallel requests of one visitor both read N and both save N+1 (gin-contrib/sessions
// loads at the first Get and saves at Save), which is how the Node original loses most
// of its counts under parallel load. A session without page_views is a new one.
func increment(c *gin.Context, st store.Store, cookieName string) (visits int, isNew bool, err error) {
	unlock := st.Lock(c.Request, cookieName)
	defer unlock()
	s := sessions.Default(c)
	n, _ := s.Get(pageViewsKey).(int)
	n++
	s.Set(pageViewsKey, n)
	return n, n == 1, s.Save()
}

// requestHeaders returns the request's headers as express's req.headers shows them:
// lower-case names, the host included, repeated headers joined with ", ".
func requestHeaders(r *http.Request) map[string]string {
	h := make(map[string]string, len(r.Header)+1)
	h["host"] = r.Host
	for name, values := range r.Header {
		h[strings.ToLower(name)] = strings.Join(values, ", ")
	}
	return h
}

// htmlBody is the original's page: the JSON of the headers, then the <h1> line.
// Everything echoed is escaped: encoding/json writes <, > and & as \u003c, \u003e and
// \u0026, and the host goes through html.EscapeString, so no header value can become
// markup (the original echoed them raw: an XSS).
func htmlBody(a Answer) []byte {
	headers, _ := json.Marshal(a.Headers) // cannot fail: map of strings
	b := make([]byte, 0, len(headers)+64+len(a.Service)+len(a.Host))
	b = append(b, headers...)
	b = append(b, "<h1>I'm "...)
	b = append(b, html.EscapeString(a.Service)...)
	b = append(b, " on "...)
	b = append(b, html.EscapeString(a.Host)...)
	b = append(b, " non unique visits "...)
	b = strconv.AppendInt(b, int64(a.Visits), 10)
	return append(b, "</h1>"...)
}
