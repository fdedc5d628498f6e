package store

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
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

// FuzzCookiePayload feeds arbitrary bytes, correctly signed and encrypted, to the
// cookie store's deserialisation: only the secret's holder can reach this path, but it
// must still neither panic nor fail the request.
func FuzzCookiePayload(f *testing.F) {
	clk := &clock{now: time.Now()}
	ck, err := NewCookie(testConfig(clk, 0, time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	keys, _ := DeriveKeys([]byte(testSecret))
	raw := securecookie.New(keys.Hash, keys.Block).SetSerializer(securecookie.NopEncoder{})
	good, err := securecookie.GobEncoder{}.Serialize(payload{SeenMs: clk.Now().UnixMilli(), Values: map[any]any{"n": 42}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\x02"))

	f.Fuzz(func(t *testing.T, data []byte) {
		value, err := raw.Encode("sid", data)
		if err != nil {
			t.Skip() // too long for a cookie
		}
		req := httptest.NewRequest(http.MethodGet, "/service1", nil)
		req.AddCookie(&http.Cookie{Name: "sid", Value: value})
		s, err := ck.New(req, "sid")
		if err != nil || s == nil || s.Values == nil {
			t.Fatalf("New: got %v, %v; want a session and no error", s, err)
		}
		// Whatever was loaded can be saved again.
		if err := ck.Save(req, httptest.NewRecorder(), s); err != nil && !s.IsNew {
			t.Logf("re-saving a decoded payload failed: %v", err)
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
