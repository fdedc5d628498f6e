package store

import (
	"testing"
	"time"
)

func TestCookieStore(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	c, err := NewCookie(testConfig(clk, 0, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != -1 {
		t.Errorf("got Len %d, want -1", c.Len())
	}
	ck := start(t, c, 1)
	if n, ok := load(t, c, ck); !ok || n != 1 {
		t.Fatalf("got %d, %v; want 1, true", n, ok)
	}
	clk.Add(50 * time.Minute)
	ck = save(t, c, ck, 2) // re-stamped
	clk.Add(50 * time.Minute)
	if n, ok := load(t, c, ck); !ok || n != 2 {
		t.Errorf("50m after the last save: got %d, %v; want 2, true", n, ok)
	}
	clk.Add(10 * time.Minute)
	if _, ok := load(t, c, ck); ok {
		t.Errorf("an hour after the last save with TTL 1h: still valid")
	}
}

func TestCookieStoreRejectsOtherSecret(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Now()}
	a, _ := NewCookie(testConfig(clk, 0, time.Hour))
	cfg := testConfig(clk, 0, time.Hour)
	cfg.Secret = []byte("another-secret-0123456789abcdef-0123456789")
	b, _ := NewCookie(cfg)
	if _, ok := load(t, b, start(t, a, 5)); ok {
		t.Errorf("a cookie of another secret decoded")
	}
	if _, ok := load(t, a, start(t, a, 5)); !ok {
		t.Errorf("a cookie of the same secret did not decode")
	}
}

// A short TTL is measured to the millisecond: a session saved late in a second must not
// be judged older than it is (with whole seconds, 1.5s after a save at x.9 looked 2s old).
func TestCookieStoreShortTTLKeepsMilliseconds(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second).Add(900 * time.Millisecond)
	clk := &clock{now: now}
	c, err := NewCookie(testConfig(clk, 0, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ck := start(t, c, 1)
	clk.Add(1500 * time.Millisecond)
	if n, ok := load(t, c, ck); !ok || n != 1 {
		t.Errorf("1.5s after the save with TTL 2s: got %d, %v; want 1, true", n, ok)
	}
	clk.Add(600 * time.Millisecond)
	if _, ok := load(t, c, ck); ok {
		t.Errorf("2.1s after the save with TTL 2s: still valid")
	}
}
