package store

import "time"

// maxValuesLen bounds a memory store session's values, encoded as the cookie store
// encodes them (appendValues): {"page_views": N} takes at most 22 bytes.
const maxValuesLen = 40

// record is what the memory store keeps of a session.
type record struct {
	seen   time.Duration // last save, as time since Memory.epoch (monotonic when the clock is)
	len    uint8
	values [maxValuesLen]byte // appendValues of the session's values, values[:len]
}

// table holds the memory store's sessions, at most max of them, ordered by last save
// (the least recently saved goes first when a new one needs room). Records live in one
// slice and link to each other by index, and the map from id to index holds no
// pointer either, so the garbage collector never traces a session, however many there
// are. With golang-lru's list of pointers and the values as interfaces, a flood of
// new visitors spent a third of a page view in the collector (BenchmarkCount,
// memory/new-session with 100,000 live sessions: 6.3 µs, 4.2 with GOGC=off).
//
// The zero value is not usable; build it with newTable. It is not safe for
// concurrent use (Memory.mu guards it).
type table struct {
	max    int
	index  map[sessionID]int32
	slots  []slot // grows up to max; removed slots are reused through free
	newest int32  // -1: empty
	oldest int32  // -1: empty
	free   int32  // first unused slot, linked through next; -1: none
}

// slot is a session in the list, newest first: prev is the newer neighbour, next the
// older one, -1 at the ends.
type slot struct {
	id         sessionID
	prev, next int32
	rec        record
}

func newTable(max int) *table {
	return &table{max: max, index: make(map[sessionID]int32), newest: -1, oldest: -1, free: -1}
}

// Len returns the number of sessions.
func (t *table) Len() int { return len(t.index) }

// Get returns the record of id without changing the order.
func (t *table) Get(id sessionID) (record, bool) {
	i, ok := t.index[id]
	if !ok {
		return record{}, false
	}
	return t.slots[i].rec, true
}

// Put stores rec as id's and makes it the newest, first dropping the oldest session
// when the table is full and id is not in it.
func (t *table) Put(id sessionID, rec record) {
	if i, ok := t.index[id]; ok {
		t.slots[i].rec = rec
		t.unlink(i)
		t.pushNewest(i)
		return
	}
	if len(t.index) >= t.max {
		t.Remove(t.slots[t.oldest].id)
	}
	var i int32
	if t.free >= 0 {
		i = t.free
		t.free = t.slots[i].next
	} else {
		t.slots = append(t.slots, slot{})
		i = int32(len(t.slots) - 1)
	}
	t.slots[i] = slot{id: id, rec: rec}
	t.index[id] = i
	t.pushNewest(i)
}

// Remove drops id's session if there is one.
func (t *table) Remove(id sessionID) {
	i, ok := t.index[id]
	if !ok {
		return
	}
	delete(t.index, id)
	t.unlink(i)
	t.slots[i] = slot{next: t.free}
	t.free = i
}

// Oldest returns the least recently saved session.
func (t *table) Oldest() (sessionID, record, bool) {
	if t.oldest < 0 {
		return sessionID{}, record{}, false
	}
	s := &t.slots[t.oldest]
	return s.id, s.rec, true
}

func (t *table) unlink(i int32) {
	s := &t.slots[i]
	if s.prev >= 0 {
		t.slots[s.prev].next = s.next
	} else {
		t.newest = s.next
	}
	if s.next >= 0 {
		t.slots[s.next].prev = s.prev
	} else {
		t.oldest = s.prev
	}
}

func (t *table) pushNewest(i int32) {
	s := &t.slots[i]
	s.prev, s.next = -1, t.newest
	if t.newest >= 0 {
		t.slots[t.newest].prev = i
	}
	t.newest = i
	if t.oldest < 0 {
		t.oldest = i
	}
}
