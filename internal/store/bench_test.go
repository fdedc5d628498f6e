package store

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkStore measures what one counted page view costs a store: load the session
// from the request's cookie (New), change it, save it (Save writes Set-Cookie when the
// store sends one). The request is built once; the response writer's header is
// cleared between rounds, as net/http gives each request a fresh one.
func BenchmarkStore(b *testing.B) {
	clk := &clock{now: time.Now()}
	for _, kind := range []string{"memory", "cookie"} {
		st := newTestStore(b, kind, clk, 100000, time.Hour)
		returning := httptest.NewRequest(http.MethodGet, "/service1", nil)
		returning.AddCookie(saveBench(b, st, 41))
		for _, tt := range []struct {
			name string
			req  *http.Request
		}{
			{"returning", returning},
			{"new", httptest.NewRequest(http.MethodGet, "/service1", nil)},
		} {
			b.Run(kind+"/"+tt.name, func(b *testing.B) {
				w := httptest.NewRecorder()
				b.ReportAllocs()
				for b.Loop() {
					unlock := st.Lock(tt.req, "sid")
					s, _ := st.New(tt.req, "sid")
					n, _ := s.Values["n"].(int)
					s.Values["n"] = n + 1
					if err := st.Save(tt.req, w, s); err != nil {
						b.Fatal(err)
					}
					unlock()
					clear(w.Header())
				}
			})
		}
	}
}

func saveBench(b *testing.B, st Store, n int) *http.Cookie {
	b.Helper()
	req := httptest.NewRequest(http.MethodGet, "/service1", nil)
	s, _ := st.New(req, "sid")
	s.Values["n"] = n
	rec := httptest.NewRecorder()
	if err := st.Save(req, rec, s); err != nil {
		b.Fatal(err)
	}
	return rec.Result().Cookies()[0]
}
