package pageview

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

// addRoutes is the whole API of a service, in one place. Paths match as express
// matched them (expressPaths: any case, one trailing slash optional), and every route
// answers HEAD as GET without the body, as express's app.get does: a HEAD of the page
// counts a page view and starts a session, as in the original. OPTIONS answers the
// methods, as express does, but starts no session (express's did: its session
// middleware ran before the router).
//
//	GET /<service>         count a page view, answer headers + count (HTML or JSON)
//	GET /healthz           200 "ok"; no session, not counted
//	GET /debug/sessions    {"store":"memory","live":N,"max":M}; no session, not counted
//	OPTIONS of each        200 "GET,HEAD", Allow: GET,HEAD
//	anything else          404, one line of text
func addRoutes(r *gin.Engine, cfg Config, st store.Store, logger *slog.Logger) {
	page := "/" + asciiLower(cfg.Service)
	get(r, page, handleCount(cfg, st, logger))
	get(r, "/healthz", handleHealthz)
	get(r, "/debug/sessions", handleSessions(st))
	r.NoRoute(handleNotFound)
}

// get routes GET and HEAD of path to handlers, and OPTIONS to the list of both.
// net/http sends no body to a HEAD and sets Content-Length from what the handler
// wrote, as for the GET.
func get(r *gin.Engine, path string, handlers ...gin.HandlerFunc) {
	r.GET(path, handlers...)
	r.HEAD(path, handlers...)
	r.OPTIONS(path, handleOptions)
}

// handleOptions answers as express's router does for a path with only app.get routes.
func handleOptions(c *gin.Context) {
	c.Header("Allow", "GET,HEAD")
	c.Data(http.StatusOK, "text/html; charset=utf-8", []byte("GET,HEAD"))
}

func handleHealthz(c *gin.Context) {
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte("ok"))
}

func handleNotFound(c *gin.Context) {
	c.Data(http.StatusNotFound, "text/plain; charset=utf-8", []byte("404 page not found\n"))
}

// SessionsInfo is the answer of GET /debug/sessions: how many sessions the process
// holds. It is there to watch memory under load; Live is -1 for the cookie store,
// which keeps none, and Max is 0 then.
type SessionsInfo struct {
	Store string `json:"store"`
	Live  int    `json:"live"`
	Max   int    `json:"max"`
}

func handleSessions(st store.Store) gin.HandlerFunc {
	return func(c *gin.Context) {
		info := SessionsInfo{Store: st.Kind(), Live: st.Len()}
		if m, ok := st.(interface{ Max() int }); ok {
			info.Max = m.Max()
		}
		c.JSON(http.StatusOK, info)
	}
}
