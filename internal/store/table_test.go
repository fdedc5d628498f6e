package store

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestTableIsAnLRU runs random puts and removes on a table and on a plain slice kept
// newest first, and compares them after every step: the same sessions, the same
// records, the same oldest.
func TestTableIsAnLRU(t *testing.T) {
	t.Parallel()
	for _, max := range []int{1, 2, 7} {
		rng := rand.New(rand.NewPCG(1, uint64(max)))
		tab := newTable(max)
		var model []sessionID // newest first
		recs := map[sessionID]record{}
		id := func() sessionID { return sessionID{byte(rng.IntN(3 * max))} }
		for step := range 2000 {
			k := id()
			if rng.IntN(4) == 0 {
				tab.Remove(k)
				if i := slices.Index(model, k); i >= 0 {
					model = slices.Delete(model, i, i+1)
				}
			} else {
				rec := record{seen: time.Duration(step), len: 1}
				rec.values[0] = byte(step)
				tab.Put(k, rec)
				if i := slices.Index(model, k); i >= 0 {
					model = slices.Delete(model, i, i+1)
				} else if len(model) == max {
					model = model[:max-1]
				}
				model = slices.Insert(model, 0, k)
				recs[k] = rec
			}
			if tab.Len() != len(model) {
				t.Fatalf("max %d, step %d: got Len %d, want %d", max, step, tab.Len(), len(model))
			}
			for _, k := range model {
				if got, ok := tab.Get(k); !ok || got != recs[k] {
					t.Fatalf("max %d, step %d: Get(%v) = %v, %v; want %v", max, step, k, got, ok, recs[k])
				}
			}
			oldest, _, ok := tab.Oldest()
			if ok != (len(model) > 0) || (ok && oldest != model[len(model)-1]) {
				t.Fatalf("max %d, step %d: got oldest %v, %v; want %v", max, step, oldest, ok, model)
			}
			if len(tab.slots) > max {
				t.Fatalf("max %d: %d slots allocated", max, len(tab.slots))
			}
		}
	}
}
