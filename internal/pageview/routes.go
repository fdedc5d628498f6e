package pageview

import (
	"log/slog"
	"net/http"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

// addRoutes is the whole API of a service, in one place:
//
//	GET /<service>, /<service>/  count a page view, answer headers + count (HTML or JSON)
//	GET /healthz                 200 "ok"; no session, not counted
//	GET /debug/sessions          {"store":"memory","live":N,"max":M}; no session, not counted
//	anything else                404, one line of text
func addRoutes(r *gin.Engine, cfg Config, st store.Store, logger *slog.Logger) {
	withSession := sessions.Sessions(cfg.CookieName, st)
	count := handleCount(cfg, st, logger)
	r.GET("/"+cfg.Service, withSession, count)
	r.GET("/"+cfg.Service+"/", withSession, count)
	r.GET("/healthz", handleHealthz)
	r.GET("/debug/sessions", handleSessions(st))
	r.NoRoute(handleNotFound)
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
