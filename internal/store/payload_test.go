package store

import (
	"encoding/binary"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
)

func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		seen   int64
		values map[any]any
	}{
		{"an empty session", 0, map[any]any{}},
		{"a page-view session", 1_795_634_230_123, map[any]any{"page_views": 3}},
		{"several keys", 1, map[any]any{"b": -1, "a": math.MaxInt, "": math.MinInt}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" reads back as written", func(t *testing.T) {
			b, err := appendPayload(nil, tt.seen, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			got := map[any]any{}
			seen, ok := readPayload(b, got)
			if !ok || seen != tt.seen || !maps.Equal(got, tt.values) {
				t.Errorf("got %d, %v, %v; want %d, %v, true", seen, got, ok, tt.seen, tt.values)
			}
		})
	}
	t.Run("a page-view session takes 19 bytes", func(t *testing.T) {
		b, _ := appendPayload(nil, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), map[any]any{"page_views": 3})
		if len(b) != 19 {
			t.Errorf("got %d bytes, want 19", len(b))
		}
	})
	t.Run("equal sessions give equal payloads", func(t *testing.T) {
		a, _ := appendPayload(nil, 5, map[any]any{"x": 1, "y": 2, "z": 3})
		for range 20 { // map order changes from one range to the next
			if b, _ := appendPayload(nil, 5, map[any]any{"z": 3, "y": 2, "x": 1}); string(a) != string(b) {
				t.Fatalf("got %x and %x", a, b)
			}
		}
	})
}

func TestPayloadRefusesWhatItCannotKeep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values map[any]any
	}{
		{"a string value", map[any]any{"page_views": "3"}},
		{"an int64 value", map[any]any{"page_views": int64(3)}},
		{"a key that is not a string", map[any]any{1: 3}},
		{"a bad key among others", map[any]any{"a": 1, 2: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is an error", func(t *testing.T) {
			if _, err := appendPayload(nil, 1, tt.values); err == nil {
				t.Errorf("got no error")
			}
		})
	}
}

func TestReadPayloadRejects(t *testing.T) {
	t.Parallel()
	good, _ := appendPayload(nil, 1_795_634_230_123, map[any]any{"page_views": 3})
	pair := func(k string, v int64) []byte {
		b := binary.AppendUvarint(nil, uint64(len(k)))
		return binary.AppendVarint(append(b, k...), v)
	}
	dup := append(binary.AppendUvarint([]byte{1}, 2), append(pair("a", 1), pair("a", 2)...)...)
	tests := []struct {
		name string
		b    []byte
	}{
		{"nothing", nil},
		{"a truncated payload", good[:len(good)-1]},
		{"bytes after the payload", append(good[:len(good):len(good)], 0)},
		{"a repeated key", dup},
		{"a count past the end", []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"a key length past the end", append([]byte{1, 1}, 0xff, 0xff, 0x03, 'a')},
		{"an overlong varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}},
		{"a time past int64", append(binary.AppendUvarint(nil, math.MaxUint64), 0)},
		{"an old gob payload's header", []byte("\x0e\xff\x81\x03\x01\x01\apayload\x01\xff\x82\x00")},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is rejected", func(t *testing.T) {
			if _, ok := readPayload(tt.b, map[any]any{}); ok {
				t.Errorf("readPayload(%x) accepted it", tt.b)
			}
		})
	}
}

// oldPayload is what the cookie store sealed with gorilla/securecookie and gob before
// the compact payload: cookies of that format may still come back after an upgrade.
type oldPayload struct {
	SeenMs int64
	Values map[any]any
}

func TestCookieStoreTakesAnOldGobCookieForANewSession(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Now()}
	c, err := NewCookie(testConfig(clk, 0, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := DeriveKeys([]byte(testSecret))
	old, err := securecookie.New(keys.Hash, keys.Block).Encode("sid",
		oldPayload{SeenMs: clk.Now().UnixMilli(), Values: map[any]any{"n": 7}})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := load(t, c, &http.Cookie{Name: "sid", Value: old}); ok {
		t.Errorf("an old gob cookie loaded a session (n = %d); want a new session", n)
	}
	// And the new session saves as usual.
	req := httptest.NewRequest(http.MethodGet, "/service1", nil)
	req.AddCookie(&http.Cookie{Name: "sid", Value: old})
	s, _ := c.New(req, "sid")
	s.Values["n"] = 1
	if err := c.Save(req, httptest.NewRecorder(), s); err != nil {
		t.Errorf("saving the new session: %v", err)
	}
}

func TestCookieStoreSaveRefusesValuesItCannotKeep(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Now()}
	c, _ := NewCookie(testConfig(clk, 0, time.Hour))
	req := httptest.NewRequest(http.MethodGet, "/service1", nil)
	s, _ := c.New(req, "sid")
	s.Values["n"] = "three"
	rec := httptest.NewRecorder()
	if err := c.Save(req, rec, s); err == nil {
		t.Errorf("got no error saving a string value")
	}
	if got := rec.Header().Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("got Set-Cookie %v after a failed save, want none", got)
	}
}

func TestKeyCacheBoxesLearnedKeysWithoutAllocating(t *testing.T) {
	var c keyCache
	for i := range maxSavedKeys + 2 {
		c.learn(any("k" + strconv.Itoa(i)))
	}
	c.learn(any("k0")) // known: not learned twice
	if got := len(*c.keys.Load()); got != maxSavedKeys {
		t.Fatalf("learned %d keys, want %d: the list must stay bounded", got, maxSavedKeys)
	}
	key := []byte("k1")
	if allocs := testing.AllocsPerRun(100, func() { _ = c.box(key) }); allocs != 0 {
		t.Errorf("boxing a learned key allocated %v times", allocs)
	}
	if got := c.box([]byte("k" + strconv.Itoa(maxSavedKeys+1))); got != "k"+strconv.Itoa(maxSavedKeys+1) {
		t.Errorf("a key past the bound boxed as %v", got)
	}
}
