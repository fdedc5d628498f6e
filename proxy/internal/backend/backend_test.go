package backend

import (
	"strings"
	"sync"
	"testing"
)

func newPool(t *testing.T, bal Balance, addrs ...string) *Pool {
	t.Helper()
	p := NewPool(NewIDs([]byte("test key")), bal)
	p.Update(addrs)
	return p
}

func TestRoundRobinSpreadsOverAvailableServers(t *testing.T) {
	t.Parallel()
	p := newPool(t, RoundRobin, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	count := map[string]int{}
	for range 300 {
		b, ok := p.Pick()
		if !ok {
			t.Fatal("no server picked")
		}
		count[b.Addr()]++
	}
	for _, b := range p.Backends() {
		if count[b.Addr()] != 100 {
			t.Errorf("%s got %d requests, want 100", b.Addr(), count[b.Addr()])
		}
	}

	p.Backends()[0].SetUp(false)
	clear(count)
	for range 200 {
		b, _ := p.Pick()
		count[b.Addr()]++
	}
	if count["10.0.0.1:80"] != 0 || count["10.0.0.2:80"] != 100 || count["10.0.0.3:80"] != 100 {
		t.Errorf("with one server down got %v, want the others 100 each", count)
	}
}

func TestPickSkipsTriedServers(t *testing.T) {
	t.Parallel()
	for _, bal := range []Balance{RoundRobin, LeastConn} {
		p := newPool(t, bal, "a:1", "b:1")
		all := p.Backends()
		for range 10 {
			b, ok := p.Pick(all[0])
			if !ok || b != all[1] {
				t.Fatalf("%v: Pick(excluding a) = %v, want b", bal, b)
			}
		}
		if b, ok := p.Pick(all...); ok {
			t.Errorf("%v: Pick(excluding all) = %v, want none", bal, b.Addr())
		}
	}
}

func TestLeastConnPicksTheIdlestServer(t *testing.T) {
	t.Parallel()
	p := newPool(t, LeastConn, "a:1", "b:1", "c:1")
	all := p.Backends()
	all[0].Acquire()
	all[0].Acquire()
	all[2].Acquire()
	for range 5 {
		if b, _ := p.Pick(); b != all[1] {
			t.Fatalf("picked %s, want b:1 (no request in flight)", b.Addr())
		}
	}
	all[1].Acquire()
	all[1].Acquire()
	if b, _ := p.Pick(); b != all[2] {
		t.Fatalf("picked %s, want c:1", b.Addr())
	}
	// Ties rotate.
	q := newPool(t, LeastConn, "a:1", "b:1")
	seen := map[string]bool{}
	for range 4 {
		b, _ := q.Pick()
		seen[b.Addr()] = true
	}
	if len(seen) != 2 {
		t.Errorf("ties always went to %v, want both servers", seen)
	}
}

func TestNoServer(t *testing.T) {
	t.Parallel()
	for _, bal := range []Balance{RoundRobin, LeastConn} {
		p := newPool(t, bal)
		if _, ok := p.Pick(); ok {
			t.Errorf("%v: empty pool picked a server", bal)
		}
		p.Update([]string{"a:1"})
		p.Backends()[0].SetUp(false)
		if _, ok := p.Pick(); ok {
			t.Errorf("%v: pool with a down server picked it", bal)
		}
	}
}

func TestUpdateJoinsDrainsAndPrunes(t *testing.T) {
	t.Parallel()
	p := newPool(t, RoundRobin, "a:1", "b:1")
	a, _ := p.Lookup(p.ids.ID("a:1"))
	b, _ := p.Lookup(p.ids.ID("b:1"))
	b.Acquire() // a request in flight on b

	joined, leaving := p.Update([]string{"a:1", "c:1"})
	if len(joined) != 1 || joined[0].Addr() != "c:1" || len(leaving) != 1 || leaving[0] != b {
		t.Fatalf("Update: joined %v leaving %v, want c:1 and b:1", joined, leaving)
	}
	if b.State() != Draining || b.Available() {
		t.Errorf("b state %v available %v, want draining and not available", b.State(), b.Available())
	}
	if _, ok := p.Lookup(b.ID()); !ok {
		t.Error("b left while a request was in flight")
	}
	for range 10 {
		if got, _ := p.Pick(); got == b {
			t.Fatal("a draining server was picked")
		}
	}
	if gone := p.Prune(); len(gone) != 0 {
		t.Errorf("Prune removed %v while b was busy", gone)
	}
	b.Release()
	if gone := p.Prune(); len(gone) != 1 || gone[0] != b {
		t.Errorf("Prune = %v, want b", gone)
	}
	if _, ok := p.Lookup(b.ID()); ok {
		t.Error("b still in the pool after its last request")
	}
	if got := len(p.Backends()); got != 2 {
		t.Errorf("%d servers, want 2", got)
	}
	if a.State() != Up {
		t.Errorf("a is %v, want up", a.State())
	}

	// A draining server whose address comes back stays, with its counters.
	c, _ := p.Lookup(p.ids.ID("c:1"))
	c.Acquire()
	p.Update([]string{"a:1"})
	p.Update([]string{"a:1", "c:1"})
	if c.State() != Up || c.Requests() != 1 {
		t.Errorf("c came back as %v with %d requests, want up with 1", c.State(), c.Requests())
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	k1, k2 := NewIDs([]byte("k1")), NewIDs([]byte("k2"))
	id := k1.ID("10.0.1.5:8080")
	if id != k1.ID("10.0.1.5:8080") || id != NewIDs([]byte("k1")).ID("10.0.1.5:8080") {
		t.Error("the same address got two ids")
	}
	if id == k1.ID("10.0.1.6:8080") {
		t.Error("two addresses got the same id")
	}
	if id == k2.ID("10.0.1.5:8080") {
		t.Error("the key does not change the id")
	}
	if len(id) != IDLen || strings.Trim(id, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		t.Errorf("id %q is not %d lower-case base32 characters", id, IDLen)
	}
	if strings.Contains(id, "10") && strings.Contains(id, "8080") {
		t.Errorf("id %q looks like the address", id)
	}
	// Pinned: ids must not change between releases, or every client loses
	// its server on upgrade.
	if got, want := NewIDs([]byte(DefaultIDKey)).ID("10.0.1.5:8080"), "xcspayso7h"; got != want {
		t.Errorf("default-key id = %q, want %q (ids changed between releases?)", got, want)
	}
}

func TestConcurrentPickAndUpdate(t *testing.T) {
	t.Parallel()
	p := newPool(t, RoundRobin, "a:1", "b:1")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if b, ok := p.Pick(); ok {
					b.Acquire()
					b.Release()
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			if i%2 == 0 {
				p.Update([]string{"a:1"})
			} else {
				p.Update([]string{"a:1", "b:1"})
			}
			p.Prune()
		}
	})
	wg.Wait()
}

func BenchmarkPick(b *testing.B) {
	p := NewPool(NewIDs(nil), RoundRobin)
	p.Update([]string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"})
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := p.Pick(); !ok {
			b.Fatal("none")
		}
	}
}
