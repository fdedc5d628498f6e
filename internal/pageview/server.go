// Package pageview is the page-view counter that service1 and service2 both run: one
// code path, the service's name is a parameter. It rebuilds the tutorial's express app
// on gin, with gin-contrib/sessions stores: GET /<service> counts page_views in the visitor's
// session and answers the request's headers and the count.
package pageview

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

// Config is what the counter needs to know besides its session store.
type Config struct {
	// Service is the service's name: it is the route (/service, in any case, with or
	// without a trailing slash) and appears in every answer. Required.
	Service string

	// Host is the name shown in answers: INSTANCE_NAME or the host name. Required.
	Host string

	// CookieName is the session cookie's name (SESSION_COOKIE), e.g. connect.sid.
	// Required.
	CookieName string
}

var releaseMode sync.Once

// NewServer returns the counter's HTTP handler (see routes.go for what it serves).
// logger receives one access line per request; st holds the sessions.
func NewServer(cfg Config, st store.Store, logger *slog.Logger) (http.Handler, error) {
	if cfg.Service == "" || cfg.Host == "" || cfg.CookieName == "" {
		return nil, fmt.Errorf("pageview: Service, Host and CookieName are required (got %q, %q, %q)",
			cfg.Service, cfg.Host, cfg.CookieName)
	}
	// gin's mode is global; release mode means no debug banner and no route dump.
	releaseMode.Do(func() { gin.SetMode(gin.ReleaseMode) })

	r := gin.New()
	// expressPaths folds case and the trailing slash; gin must neither redirect nor
	// decode escapes before it routes (express matches the path as sent).
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.UseRawPath = true
	r.HandleMethodNotAllowed = false // a POST is a 404, as in express
	r.Use(accessLog(logger), recovery(logger))
	addRoutes(r, cfg, st, logger)
	return expressPaths(r), nil
}

// recovery answers 500 with a short text to a panicking handler and logs one line,
// without the stack trace gin.Recovery would print to stderr.
func recovery(logger *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		logger.Error("panic in handler", "path", c.Request.URL.Path, "err", fmt.Sprint(rec))
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error\n"))
		c.Abort()
	})
}
