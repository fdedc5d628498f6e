package pageview

import (
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"
)

// accessLog writes one line per request after it is answered, with the keys method,
// path (as sent: sentPath), status, dur_ms and new_session. It logs the path only: no
// query, no cookie. Health checks are logged at debug: Docker probes every 5 s and
// the proxy every 2 s, and at info they would bury the page views a reader looks for.
// Nothing is built for a line the logger's level drops (LOG_LEVEL=warn in make bench).
func accessLog(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		level := slog.LevelInfo
		if c.FullPath() == "/healthz" {
			level = slog.LevelDebug
		}
		ctx := c.Request.Context()
		if !logger.Enabled(ctx, level) {
			return
		}
		dur := time.Since(start)
		logger.LogAttrs(ctx, level, "request",
			slog.String("method", c.Request.Method),
			slog.String("path", sentPath(c.Request)),
			slog.Int("status", c.Writer.Status()),
			slog.Float64("dur_ms", float64(dur.Microseconds())/1000),
			slog.Bool("new_session", c.GetBool(ctxNewSession)),
		)
	}
}
