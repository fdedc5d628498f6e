package pageview

import (
	"net/http"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

// The classroom lab's "stateless scaling" arm: with SESSION_STORE=cookie any replica
// holding the same secret continues a visitor's count; another secret starts over.
func TestCookieStoreSharedAcrossInstances(t *testing.T) {
	t.Parallel()
	withSecret := func(s string) func(*store.Config) { return func(c *store.Config) { c.Secret = []byte(s) } }
	a := newHandler(t, newStore(t, "cookie", withSecret(testSecret)))
	b := newHandler(t, newStore(t, "cookie", withSecret(testSecret)))
	other := newHandler(t, newStore(t, "cookie", withSecret(otherSecret)))

	var v visitor
	steps := []struct {
		name string
		h    http.Handler
		want int
	}{
		{"instance A", a, 1},
		{"instance B with the same secret continues", b, 2},
		{"instance A again", a, 3},
		{"instance B again", b, 4},
		{"an instance with another secret starts over", other, 1},
		{"instance A does not take the other secret's cookie", a, 1},
		{"instance B continues A's new session", b, 2},
	}
	for _, s := range steps {
		if got, _ := v.visit(t, s.h); got.Visits != s.want {
			t.Fatalf("%s: got visits %d, want %d", s.name, got.Visits, s.want)
		}
	}
}

// In memory mode a replica knows only its own sessions: the sticky proxy is what keeps
// a visitor on one replica.
func TestMemoryStoreIsPerInstance(t *testing.T) {
	t.Parallel()
	a := newHandler(t, newStore(t, "memory"))
	b := newHandler(t, newStore(t, "memory")) // same secret, different memory
	var v visitor
	v.visit(t, a)
	v.visit(t, a)
	if got, _ := v.visit(t, b); got.Visits != 1 {
		t.Errorf("other instance: got visits %d, want 1", got.Visits)
	}
}
