package pageview

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"

	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

const (
	testSecret  = "test-secret-0123456789abcdef-0123456789" // >= 32 bytes
	otherSecret = "other-secret-0123456789abcdef-012345678"
	testCookie  = "connect.sid"
)

// clock is a settable clock for the stores.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// storeConfig is the stores' test configuration; mods change it.
func storeConfig(mods ...func(*store.Config)) store.Config {
	cfg := store.Config{
		Secret: []byte(testSecret),
		Cookie: sessions.Options{Path: "/service1", HttpOnly: true, SameSite: http.SameSiteLaxMode},
		Max:    1000,
		TTL:    30 * time.Minute,
	}
	for _, m := range mods {
		m(&cfg)
	}
	return cfg
}

func newStore(t testing.TB, kind string, mods ...func(*store.Config)) store.Store {
	t.Helper()
	cfg := storeConfig(mods...)
	var (
		st  store.Store
		err error
	)
	switch kind {
	case "memory":
		st, err = store.NewMemory(cfg)
	case "cookie":
		st, err = store.NewCookie(cfg)
	default:
		t.Fatalf("unknown store kind %q", kind)
	}
	if err != nil {
		t.Fatalf("new %s store: %v", kind, err)
	}
	return st
}

// newHandler returns service1's counter on st, logging to io.Discard.
func newHandler(t testing.TB, st store.Store) http.Handler {
	t.Helper()
	h, err := NewServer(Config{Service: "service1", Host: "test-host", CookieName: testCookie}, st,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	return h
}

// serve sends one request to h and returns the response.
func serve(h http.Handler, req *http.Request) *http.Response {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// visitor is one browser: it keeps the session cookie it was given.
type visitor struct {
	cookie *http.Cookie
}

// visit asks h for /service1 as JSON, keeps any new cookie, and returns the answer.
func (v *visitor) visit(t testing.TB, h http.Handler) (Answer, *http.Response) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/service1", nil)
	req.Header.Set("Accept", "application/json")
	if v.cookie != nil {
		req.AddCookie(v.cookie)
	}
	resp := serve(h, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /service1: status %d, want 200", resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == testCookie {
			v.cookie = c
		}
	}
	return decodeAnswer(t, resp), resp
}

func decodeAnswer(t testing.TB, resp *http.Response) Answer {
	t.Helper()
	var a Answer
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("decoding answer %q: %v", body, err)
	}
	return a
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

func setCookies(resp *http.Response) []string {
	var out []string
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, testCookie+"=") {
			out = append(out, c)
		}
	}
	return out
}

var storeKinds = []string{"memory", "cookie"}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
