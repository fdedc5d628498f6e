package store

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
)

// TestStoresServeTheSessionsMiddleware checks that both stores work as any gin app
// uses a gin-contrib/sessions store, through sessions.Sessions and sessions.Default
// (the page-view counter calls the store directly, so nothing else would notice if
// they stopped): a visitor's count goes on from one request to the next, and a
// request without the cookie starts again.
func TestStoresServeTheSessionsMiddleware(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	clk := &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, kind := range []string{"memory", "cookie"} {
		t.Run(kind+" store counts across requests", func(t *testing.T) {
			st := newTestStore(t, kind, clk, 10, time.Hour)
			r := gin.New()
			r.GET("/service1", sessions.Sessions("sid", st), func(c *gin.Context) {
				s := sessions.Default(c)
				n, _ := s.Get("n").(int)
				s.Set("n", n+1)
				if err := s.Save(); err != nil {
					c.String(http.StatusInternalServerError, "%v", err)
					return
				}
				c.String(http.StatusOK, "%d", n+1)
			})
			visit := func(cookie *http.Cookie) (string, *http.Cookie) {
				req := httptest.NewRequest(http.MethodGet, "/service1", nil)
				if cookie != nil {
					req.AddCookie(cookie)
				}
				w := httptest.NewRecorder()
				r.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				for _, c := range w.Result().Cookies() {
					if c.Name == "sid" {
						cookie = c
					}
				}
				return w.Body.String(), cookie
			}
			var cookie *http.Cookie
			for want := 1; want <= 3; want++ {
				var got string
				got, cookie = visit(cookie)
				if got != strconv.Itoa(want) {
					t.Fatalf("visit %d counted %s", want, got)
				}
			}
			if got, _ := visit(nil); got != "1" {
				t.Errorf("a visit without the cookie counted %s, want 1", got)
			}
		})
	}
}
