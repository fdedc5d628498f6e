package live

// table is a map from uint64 keys to values of V with a fixed capacity, that
// forgets its least recently used key to make room: its memory is allocated once,
// by newTable, and nothing it does afterwards allocates. It is not safe for
// concurrent use (the Recorder's mutex guards it).
//
// The index is open addressing with linear probing over twice as many slots as
// entries; an evicted key's slot is freed by backward-shift deletion, so no
// tombstones pile up. The entries form a doubly linked list, most recent first.
type table[V any] struct {
	slots []int32 // entry index + 1; 0 is an empty slot
	mask  uint64
	ents  []tableEntry[V] // len: the keys held
	head  int32           // most recently used entry, -1: none
	tail  int32           // least recently used entry, -1: none
}

type tableEntry[V any] struct {
	key        uint64
	val        V
	prev, next int32 // towards head, towards tail; -1: none
}

// newTable makes a table of capacity entries (at least 1).
func newTable[V any](capacity int) *table[V] {
	capacity = max(capacity, 1)
	size := 1
	for size < 2*capacity {
		size *= 2
	}
	return &table[V]{slots: make([]int32, size), mask: uint64(size - 1),
		ents: make([]tableEntry[V], 0, capacity), head: -1, tail: -1}
}

// find returns the slot holding key, or the empty slot where it would go.
func (t *table[V]) find(key uint64) (slot uint64, ok bool) {
	for i := mix(key) & t.mask; ; i = (i + 1) & t.mask {
		e := t.slots[i]
		if e == 0 {
			return i, false
		}
		if t.ents[e-1].key == key {
			return i, true
		}
	}
}

// get returns key's value, made the most recent.
func (t *table[V]) get(key uint64) (*V, bool) {
	s, ok := t.find(key)
	if !ok {
		return nil, false
	}
	return t.touch(s), true
}

// touch makes the entry of slot s the most recent and returns its value.
func (t *table[V]) touch(s uint64) *V {
	i := t.slots[s] - 1
	t.unlink(i)
	t.pushFront(i)
	return &t.ents[i].val
}

// put returns key's value, made the most recent; created reports that key was
// not there, and then the value is V's zero value (the least recently used key
// made room if the table was full).
func (t *table[V]) put(key uint64) (v *V, created bool) {
	s, ok := t.find(key)
	if ok {
		return t.touch(s), false
	}
	var i int32
	if n := len(t.ents); n < cap(t.ents) {
		t.ents = t.ents[:n+1]
		i = int32(n)
	} else {
		i = t.tail
		t.unlink(i)
		t.free(t.ents[i].key)
		s, _ = t.find(key) // the shift may have moved key's empty slot
	}
	t.ents[i] = tableEntry[V]{key: key}
	t.slots[s] = i + 1
	t.pushFront(i)
	return &t.ents[i].val, true
}

// free empties the slot of key, shifting back the keys probed past it.
func (t *table[V]) free(key uint64) {
	s, ok := t.find(key)
	if !ok {
		return
	}
	for j := (s + 1) & t.mask; ; j = (j + 1) & t.mask {
		e := t.slots[j]
		if e == 0 {
			break
		}
		home := mix(t.ents[e-1].key) & t.mask
		// The key at j may move into s unless its home lies cyclically in (s, j].
		if (j > s && (home <= s || home > j)) || (j < s && home <= s && home > j) {
			t.slots[s] = e
			s = j
		}
	}
	t.slots[s] = 0
}

func (t *table[V]) unlink(i int32) {
	e := &t.ents[i]
	if e.prev >= 0 {
		t.ents[e.prev].next = e.next
	} else {
		t.head = e.next
	}
	if e.next >= 0 {
		t.ents[e.next].prev = e.prev
	} else {
		t.tail = e.prev
	}
}

func (t *table[V]) pushFront(i int32) {
	e := &t.ents[i]
	e.prev, e.next = -1, t.head
	if t.head >= 0 {
		t.ents[t.head].prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}

// each calls f with the entries, most recent first, until f returns false.
func (t *table[V]) each(f func(key uint64, v *V) bool) {
	for i := t.head; i >= 0; i = t.ents[i].next {
		if !f(t.ents[i].key, &t.ents[i].val) {
			return
		}
	}
}

// len is the number of keys held.
func (t *table[V]) len() int { return len(t.ents) }

// mix spreads a key's bits over the index (keys are hashes already, but a
// caller's key might not be).
func mix(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	return k
}
