package pageview

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

// BenchmarkCount measures one counted page view through the whole gin handler
// (path folding, routing, session load, increment, save, HTML body), for both
// stores, with and without an existing session, as make bench sends them (wrk:
// Host, a User-Agent, the cookie; LOG_LEVEL=warn, so no access log line). The
// request is built once and the writer discards: what is measured is the handler,
// not the harness.
func BenchmarkCount(b *testing.B) {
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, kind := range storeKinds {
		st := newStore(b, kind, func(c *store.Config) { c.Max = 100000 })
		h, err := NewServer(Config{Service: "service1", Host: "bench-host", CookieName: testCookie}, st, logger)
		if err != nil {
			b.Fatal(err)
		}
		var v visitor
		v.visit(b, h)
		fresh := httptest.NewRequest(http.MethodGet, "/service1", nil)
		fresh.Header.Set("User-Agent", "bench")
		returning := fresh.Clone(fresh.Context())
		returning.AddCookie(v.cookie)
		for _, tt := range []struct {
			name string
			req  *http.Request
		}{{"new-session", fresh}, {"existing-session", returning}} {
			b.Run(kind+"/"+tt.name, func(b *testing.B) {
				w := &discardWriter{header: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					clear(w.header)
					h.ServeHTTP(w, tt.req)
				}
				if w.status != http.StatusOK {
					b.Fatalf("got status %d, want 200", w.status)
				}
			})
		}
	}
}

// discardWriter is the least an http.ResponseWriter can be.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
