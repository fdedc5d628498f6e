package pageview

import (
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"
)

// accessLog writes one line per request after it is answered, with the keys method,
// path, status, dur_ms and new_session. It logs the path only: no query, no cookie.
// Health checks are logged at debug: Docker probes every 5 s and the proxy every 2 s,
// and at info they would bury the page views a reader looks for.
func accessLog(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		dur := time.Since(start)
		level := slog.LevelInfo
		if c.Request.URL.Path == "/healthz" {
			level = slog.LevelDebug
		}
		logger.LogAttrs(c.Request.Context(), level, "request",
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", c.Writer.Status()),
			slog.Float64("dur_ms", float64(dur.Microseconds())/1000),
			slog.Bool("new_session", c.GetBool(ctxNewSession)),
		)
	}
}
