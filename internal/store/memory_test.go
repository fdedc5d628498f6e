package store

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
)

const testSecret = "test-secret-0123456789abcdef-0123456789"

type clock struct {
	mu  sync.Mutex
	now time.Time
}

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

func testConfig(clk *clock, max int, ttl time.Duration) Config {
	return Config{
		Secret: []byte(testSecret),
		Cookie: sessions.Options{Path: "/service1", HttpOnly: true, SameSite: http.SameSiteLaxMode},
		Max:    max,
		TTL:    ttl,
		Now:    clk.Now,
	}
}

func newTestMemory(t *testing.T, clk *clock, max int, ttl time.Duration) *Memory {
	t.Helper()
	m, err := NewMemory(testConfig(clk, max, ttl))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newTestStore returns a store of kind "memory" or "cookie" on testConfig.
func newTestStore(t testing.TB, kind string, clk *clock, max int, ttl time.Duration) Store {
	t.Helper()
	var st Store
	var err error
	if kind == "memory" {
		st, err = NewMemory(testConfig(clk, max, ttl))
	} else {
		st, err = NewCookie(testConfig(clk, max, ttl))
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// start saves a new session holding n and returns its cookie.
func start(t *testing.T, st Store, n int) *http.Cookie {
	t.Helper()
	return save(t, st, nil, n)
}

// save loads the session of cookie (nil: none), sets n and saves it; it returns the
// cookie the store sent, or the one given if none was sent.
func save(t *testing.T, st Store, cookie *http.Cookie, n int) *http.Cookie {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/service1", nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	s, err := st.New(req, "sid")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.Values["n"] = n
	rec := httptest.NewRecorder()
	if err := st.Save(req, rec, s); err != nil {
		t.Fatalf("Save: %v", err)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == "sid" {
			return c
		}
	}
	return cookie
}

// load returns the value n of the session cookie names, and whether it was found.
func load(t *testing.T, st Store, cookie *http.Cookie) (int, bool) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/service1", nil)
	req.AddCookie(cookie)
	s, err := st.New(req, "sid")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	n, _ := s.Values["n"].(int)
	return n, !s.IsNew
}

func TestMemoryExpiresIdleSessions(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	m := newTestMemory(t, clk, 100, 10*time.Minute)
	a := start(t, m, 1)
	b := start(t, m, 1)

	clk.Add(9 * time.Minute)
	save(t, m, a, 2) // a is used, b is not
	if n, ok := load(t, m, a); !ok || n != 2 {
		t.Fatalf("a after 9m: got %d, %v; want 2, true", n, ok)
	}
	clk.Add(2 * time.Minute) // b idle 11m, a idle 2m
	if _, ok := load(t, m, b); ok {
		t.Errorf("b idle 11m with TTL 10m: still there")
	}
	if got := m.Len(); got != 1 {
		t.Errorf("got Len %d, want 1", got)
	}
	clk.Add(10 * time.Minute)
	if got := m.Len(); got != 0 {
		t.Errorf("everything idle past TTL: got Len %d, want 0", got)
	}
	if _, ok := load(t, m, a); ok {
		t.Errorf("a idle 12m with TTL 10m: still there")
	}
}

func TestMemoryKeepsAtMostMaxSessions(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	const max = 10
	m := newTestMemory(t, clk, max, time.Hour)
	first := start(t, m, 1)
	var last *http.Cookie
	for i := range 3 * max { // a flood of new visitors
		clk.Add(time.Second)
		last = start(t, m, i)
		if got := m.Len(); got > max {
			t.Fatalf("after %d sessions: got Len %d, want <= %d", i+2, got, max)
		}
	}
	if got := m.Len(); got != max {
		t.Errorf("got Len %d, want %d", got, max)
	}
	if _, ok := load(t, m, first); ok {
		t.Errorf("the least recently used session survived the flood")
	}
	if _, ok := load(t, m, last); !ok {
		t.Errorf("the newest session was evicted")
	}
}

func TestMemoryEvictsLeastRecentlyUsedFirst(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	m := newTestMemory(t, clk, 2, time.Hour)
	a := start(t, m, 1)
	b := start(t, m, 1)
	save(t, m, a, 2) // a is now the most recently used
	start(t, m, 1)   // pushes out b
	if _, ok := load(t, m, b); ok {
		t.Errorf("b (least recently used) survived")
	}
	if n, ok := load(t, m, a); !ok || n != 2 {
		t.Errorf("a: got %d, %v; want 2, true", n, ok)
	}
}

func TestMemorySessionIDs(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	m := newTestMemory(t, clk, 100, time.Hour)
	t.Run("are different for every session", func(t *testing.T) {
		seen := map[string]bool{}
		for range 50 {
			c := start(t, m, 1)
			if seen[c.Value] {
				t.Fatalf("cookie value %q handed out twice", c.Value)
			}
			seen[c.Value] = true
		}
	})
	t.Run("signed with another secret are not ours", func(t *testing.T) {
		cfg := testConfig(clk, 100, time.Hour)
		cfg.Secret = []byte("another-secret-0123456789abcdef-0123456789")
		other, err := NewMemory(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c := start(t, other, 7)
		if _, ok := load(t, m, c); ok {
			t.Errorf("a cookie signed with another secret loaded a session")
		}
	})
	t.Run("the cookie is not re-sent for an existing session", func(t *testing.T) {
		c := start(t, m, 1)
		if got := save(t, m, c, 2); got != c {
			t.Errorf("got a new cookie %v for an existing session", got)
		}
	})
}

func TestNewStoreRejectsBadConfig(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"short secret", func(c *Config) { c.Secret = []byte("short") }},
		{"no secret", func(c *Config) { c.Secret = nil }},
		{"zero TTL", func(c *Config) { c.TTL = 0 }},
		{"zero max", func(c *Config) { c.Max = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(clk, 10, time.Hour)
			tt.mod(&cfg)
			if _, err := NewMemory(cfg); err == nil {
				t.Errorf("NewMemory: got no error")
			}
		})
	}
}

func TestDeriveKeys(t *testing.T) {
	t.Parallel()
	k1, err := DeriveKeys([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := DeriveKeys([]byte(testSecret))
	k3, _ := DeriveKeys([]byte(testSecret + "x"))
	if len(k1.Hash) != 64 || len(k1.Block) != 32 {
		t.Errorf("got key lengths %d, %d; want 64, 32", len(k1.Hash), len(k1.Block))
	}
	if string(k1.Hash[:32]) == string(k1.Block) || string(k1.Hash) == testSecret {
		t.Errorf("hash and block keys are not independent of each other and of the secret")
	}
	if string(k1.Hash) != string(k2.Hash) || string(k1.Block) != string(k2.Block) {
		t.Errorf("same secret gave different keys")
	}
	if string(k1.Hash) == string(k3.Hash) {
		t.Errorf("different secrets gave the same key")
	}
}

func TestMemorySaveRefusesValuesItCannotKeep(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	m := newTestMemory(t, clk, 10, time.Hour)
	tests := []struct {
		name   string
		values map[any]any
	}{
		{"a string value", map[any]any{"n": "three"}},
		{"values past 40 bytes", map[any]any{strings.Repeat("k", 40): 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is an error and no session", func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/service1", nil)
			s, _ := m.New(req, "sid")
			maps.Copy(s.Values, tt.values)
			rec := httptest.NewRecorder()
			if err := m.Save(req, rec, s); err == nil {
				t.Errorf("got no error")
			}
			if got := rec.Header().Values("Set-Cookie"); len(got) != 0 {
				t.Errorf("got Set-Cookie %v, want none", got)
			}
		})
	}
	if n := m.Len(); n != 0 {
		t.Errorf("got %d sessions, want 0", n)
	}
}
