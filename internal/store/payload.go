package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// The cookie store's payload (the data a kindPayload value seals): what a session
// holds, in the fewest bytes and steps. A page-view session ({"page_views": 3}, saved
// now) takes 19 bytes, where gob took 133 (and the whole page view 309 allocations):
//
//	uvarint seen | uvarint count | count × (uvarint key length | key | varint value)
//
// seen is the time of the save in unix milliseconds. Keys are strings, values ints:
// all a page-view session holds; Save refuses anything else rather than drop it.
// Keys are written in sorted order, so equal sessions give equal payloads.

// The memory store keeps the same encoding of the values (from count on) per session.

// appendPayload appends the payload of values saved at seenMs to b.
func appendPayload(b []byte, seenMs int64, values map[any]any) ([]byte, error) {
	if seenMs < 0 {
		return b, fmt.Errorf("session time %d is before 1970", seenMs)
	}
	return appendValues(binary.AppendUvarint(b, uint64(seenMs)), values)
}

// appendValues appends count and pairs of values to b.
func appendValues(b []byte, values map[any]any) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(values)))
	if len(values) == 1 { // the usual session: nothing to sort
		for k, v := range values {
			return appendPair(b, k, v)
		}
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		ks, ok := k.(string)
		if !ok {
			return b, fmt.Errorf("session key %v is a %T; the cookie store keeps string keys only", k, k)
		}
		keys = append(keys, ks)
	}
	slices.Sort(keys)
	var err error
	for _, k := range keys {
		if b, err = appendPair(b, k, values[k]); err != nil {
			return b, err
		}
	}
	return b, nil
}

func appendPair(b []byte, k, v any) ([]byte, error) {
	ks, ok := k.(string)
	if !ok {
		return b, fmt.Errorf("session key %v is a %T; the cookie store keeps string keys only", k, k)
	}
	n, ok := v.(int)
	if !ok {
		return b, fmt.Errorf("session value %q is a %T; the cookie store keeps int values only", ks, v)
	}
	savedKeys.learn(k)
	b = binary.AppendUvarint(b, uint64(len(ks)))
	b = append(b, ks...)
	return binary.AppendVarint(b, int64(n)), nil
}

// readPayload decodes a payload into values (which it only adds to) and returns the
// time of its save, or false when b is not exactly one well-formed payload: a
// truncated field, a length past the end, a repeated key, a value out of int's range
// or bytes left over. values may have been partly filled when it returns false.
func readPayload(b []byte, values map[any]any) (seenMs int64, ok bool) {
	seen, n := binary.Uvarint(b)
	if n <= 0 || seen > math.MaxInt64 {
		return 0, false
	}
	return int64(seen), readValues(b[n:], values)
}

// readValues decodes what appendValues wrote into values (which it only adds to), as
// readPayload does.
func readValues(b []byte, values map[any]any) bool {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) { // every pair takes at least 2 bytes
		return false
	}
	b = b[n:]
	for range count {
		klen, n := binary.Uvarint(b)
		if n <= 0 || klen > uint64(len(b)-n) {
			return false
		}
		key := savedKeys.box(b[n : n+int(klen)])
		b = b[n+int(klen):]
		v, n := binary.Varint(b)
		if n <= 0 || int64(int(v)) != v { // out of int's range (32-bit int)
			return false
		}
		b = b[n:]
		if _, dup := values[key]; dup {
			return false
		}
		values[key] = int(v)
	}
	return len(b) == 0
}

// savedKeys holds the keys sessions were saved with, boxed as Save was given them, so
// that loading a session puts that same interface value in its map instead of boxing
// a new copy of the key (an allocation on every page view). Keys only come from Save,
// that is from the program, never from a client (a client cannot seal a payload), so
// the few it learns are the program's own: at most maxSavedKeys, further keys are
// boxed on every load.
var savedKeys keyCache

const maxSavedKeys = 8

// keyCache is a small copy-on-write list of boxed string keys; its zero value is
// empty and ready. It is safe for concurrent use: loads read it without a lock.
type keyCache struct {
	mu   sync.Mutex // serialises learn's copy and store
	keys atomic.Pointer[[]any]
}

// learn adds k, a string in an interface, unless it is known or the list is full.
func (c *keyCache) learn(k any) {
	if c.known(k.(string)) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []any
	if p := c.keys.Load(); p != nil {
		keys = *p
	}
	if len(keys) >= maxSavedKeys || c.known(k.(string)) != nil {
		return
	}
	keys = append(keys[:len(keys):len(keys)], k)
	c.keys.Store(&keys)
}

// known returns the boxed key equal to s, or nil.
func (c *keyCache) known(s string) any {
	if p := c.keys.Load(); p != nil {
		for _, k := range *p {
			if k.(string) == s {
				return k
			}
		}
	}
	return nil
}

// box returns key as an interface value: a learned one when there is one, without
// allocating (string(key) for known is not kept, so it needs no copy).
func (c *keyCache) box(key []byte) any {
	if k := c.known(string(key)); k != nil {
		return k
	}
	return string(key)
}
