package store

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzSessionCookie sends arbitrary Cookie headers to both stores. Properties: no
// panic, no error (a bad cookie is never the visitor's problem), and a cookie that
// loads a session loads exactly the session that was saved.
// Seed corpus: testdata/fuzz/FuzzSessionCookie, plus fresh cookies added below.
func FuzzSessionCookie(f *testing.F) {
	clk := &clock{now: time.Now()}
	mem, err := NewMemory(testConfig(clk, 100, time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	ck, err := NewCookie(testConfig(clk, 0, time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	stores := []Store{mem, ck}
	for _, st := range stores {
		c := saveFuzz(f, st, 42)
		f.Add("sid=" + c)
		f.Add("other=1; sid=" + c)
		f.Add("sid=garbage; sid=" + c)
		f.Add("sid=" + c[:len(c)/2])
		f.Add("sid=s1~" + c)
	}
	f.Add("")
	f.Add("sid=")
	f.Add("sid=s:abc.def")

	f.Fuzz(func(t *testing.T, header string) {
		for _, st := range stores {
			req := httptest.NewRequest(http.MethodGet, "/service1", nil)
			req.Header.Set("Cookie", header)
			s, err := st.New(req, "sid")
			if err != nil {
				t.Fatalf("%s store: New returned error %v", st.Kind(), err)
			}
			if s == nil || s.Values == nil {
				t.Fatalf("%s store: New returned no session or nil values", st.Kind())
			}
			if !s.IsNew {
				if n, _ := s.Values["n"].(int); n != 42 || len(s.Values) != 1 {
					t.Fatalf("%s store: loaded %v, want the saved session {n: 42}", st.Kind(), s.Values)
				}
			}
			st.Lock(req, "sid")() // must not panic either
		}
	})
}

// FuzzCookiePayload feeds arbitrary bytes, correctly sealed (encrypted and signed
// with the store's keys), to the cookie store's payload decoding: only a holder of the
// secret can reach this path, but it must still neither panic nor fail the request.
// A payload that loads a session saves again to one that loads the same values.
// Seed corpus: testdata/fuzz/FuzzCookiePayload (an old gob header, huge lengths),
// plus the payloads added below.
func FuzzCookiePayload(f *testing.F) {
	clk := &clock{now: time.Now()}
	ck, err := NewCookie(testConfig(clk, 0, time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	good, err := appendPayload(nil, clk.Now().UnixMilli(), map[any]any{"page_views": 42})
	if err != nil {
		f.Fatal(err)
	}
	two, _ := appendPayload(nil, clk.Now().UnixMilli(), map[any]any{"a": -1, "b": 1 << 40})
	f.Add(good)
	f.Add(two)
	f.Add(good[:len(good)/2])
	f.Add(append(good, 0))
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\x02"))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 2000 {
			t.Skip() // past what a cookie holds
		}
		req := httptest.NewRequest(http.MethodGet, "/service1", nil)
		req.AddCookie(&http.Cookie{Name: "sid", Value: ck.seal.seal("sid", data)})
		s, err := ck.New(req, "sid")
		if err != nil || s == nil || s.Values == nil {
			t.Fatalf("New: got %v, %v; want a session and no error", s, err)
		}
		if s.IsNew {
			if len(s.Values) != 0 {
				t.Fatalf("a rejected payload left values %v in the new session", s.Values)
			}
			return
		}
		rec := httptest.NewRecorder()
		if err := ck.Save(req, rec, s); err != nil {
			t.Fatalf("re-saving the decoded values %v: %v", s.Values, err)
		}
		again := httptest.NewRequest(http.MethodGet, "/service1", nil)
		again.AddCookie(rec.Result().Cookies()[0])
		s2, _ := ck.New(again, "sid")
		if s2.IsNew || !maps.Equal(s2.Values, s.Values) {
			t.Fatalf("saved %v, loaded %v (IsNew %v)", s.Values, s2.Values, s2.IsNew)
		}
	})
}

func saveFuzz(f *testing.F, st Store, n int) string {
	req := httptest.NewRequest(http.MethodGet, "/service1", nil)
	s, _ := st.New(req, "sid")
	s.Values["n"] = n
	rec := httptest.NewRecorder()
	if err := st.Save(req, rec, s); err != nil {
		f.Fatal(err)
	}
	return rec.Result().Cookies()[0].Value
}
