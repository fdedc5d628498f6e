package pageview

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

// BenchmarkCount measures one counted page view through the whole gin handler
// (routing, session load, increment, save, HTML body, access log to a discarding
// handler), for both stores, with and without an existing session.
func BenchmarkCount(b *testing.B) {
	for _, kind := range storeKinds {
		st := newStore(b, kind, func(c *store.Config) { c.Max = 100000 })
		h := newHandler(b, st)
		b.Run(kind+"/new-session", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/service1", nil)
				req.Header.Set("User-Agent", "bench")
				serve(h, req)
			}
		})
		b.Run(kind+"/existing-session", func(b *testing.B) {
			var v visitor
			v.visit(b, h)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/service1", nil)
				req.Header.Set("User-Agent", "bench")
				req.AddCookie(v.cookie)
				serve(h, req)
			}
		})
	}
}
