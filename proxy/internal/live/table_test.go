package live

import (
	"math/rand/v2"
	"testing"
)

// TestTableMatchesAnLRUModel drives a small table and a plain map-and-list model
// with the same random keys: the same keys are held, the least recently used
// one goes first, and the table never holds more than its capacity.
func TestTableMatchesAnLRUModel(t *testing.T) {
	for _, capacity := range []int{1, 2, 7, 64} {
		t.Run("capacity "+itoa(capacity), func(t *testing.T) {
			tb := newTable[int](capacity)
			var order []uint64 // most recent first
			vals := map[uint64]int{}
			touch := func(k uint64) {
				for i, o := range order {
					if o == k {
						order = append(order[:i], order[i+1:]...)
						break
					}
				}
				order = append([]uint64{k}, order...)
			}
			r := rand.New(rand.NewPCG(1, uint64(capacity)))
			for step := range 20000 {
				k := r.Uint64N(uint64(3 * capacity)) // keys collide in the index often
				if r.IntN(3) == 0 {
					v, ok := tb.get(k)
					_, want := vals[k]
					if ok != want {
						t.Fatalf("step %d: get(%d) found %v, want %v", step, k, ok, want)
					}
					if ok {
						if *v != vals[k] {
							t.Fatalf("step %d: get(%d) = %d, want %d", step, k, *v, vals[k])
						}
						touch(k)
					}
					continue
				}
				v, created := tb.put(k)
				_, had := vals[k]
				if created == had {
					t.Fatalf("step %d: put(%d) created %v, but the model had it: %v", step, k, created, had)
				}
				*v = step
				vals[k] = step
				touch(k)
				if len(order) > capacity {
					delete(vals, order[capacity])
					order = order[:capacity]
				}
				if tb.len() != len(order) {
					t.Fatalf("step %d: %d keys held, want %d", step, tb.len(), len(order))
				}
			}
			var got []uint64
			tb.each(func(k uint64, v *int) bool { got = append(got, k); return true })
			if len(got) != len(order) {
				t.Fatalf("each gave %d keys, want %d", len(got), len(order))
			}
			for i := range got {
				if got[i] != order[i] {
					t.Fatalf("each: key %d is %d, want %d (most recent first)", i, got[i], order[i])
				}
			}
		})
	}
}

func TestTableAllocatesNothingOnceMade(t *testing.T) {
	tb := newTable[visitorEntry](MaxVisitors)
	k := uint64(0)
	allocs := testing.AllocsPerRun(10000, func() {
		k++
		e, _ := tb.put(k * 0x9e3779b97f4a7c15)
		e.n++
		tb.get(k)
	})
	if allocs != 0 {
		t.Errorf("put and get: %v allocations, want 0", allocs)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
