package pageview

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// headersMap is what appendHeadersJSON must encode: express's req.headers as a Go map
// (lower-case names, host from r.Host, the values of a name joined with ", ", names
// equal but for case taken in byte order).
func headersMap(r *http.Request) map[string]string {
	values := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(r.Header)) {
		if lower := strings.ToLower(name); lower != "host" {
			values[lower] = append(values[lower], r.Header[name]...)
		}
	}
	m := map[string]string{"host": r.Host}
	for name, vs := range values {
		m[name] = strings.Join(vs, ", ")
	}
	return m
}

func TestHeadersJSONIsEncodingJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		host   string
		header http.Header
	}{
		{"no header at all", "example.com", http.Header{}},
		{"a curl request", "localhost:8080", http.Header{"User-Agent": {"curl/8.5.0"}, "Accept": {"*/*"}}},
		{"a repeated header", "h", http.Header{"X-Forwarded-For": {"10.0.0.1", "10.0.0.2"}}},
		{"an empty value and a header without values", "h", http.Header{"X-Empty": {""}, "X-None": {}}},
		{"markup and quotes", "<i>host</i>", http.Header{"X-Evil": {`<script>alert("x")</script>&\`}}},
		{"control bytes", "h", http.Header{"X-Ctl": {"\x00\x01\b\f\n\r\t\x1f\x7f"}}},
		{"invalid UTF-8 and line separators", "h", http.Header{"X-Utf": {"\xff\xfe ok é \u2028\u2029 \xe2\x80"}}},
		{"names that sort differently once lowered", "h", http.Header{"X-B": {"1"}, "X-a": {"2"}, "X_c": {"3"}, "X-": {"4"}}},
		{"names holding what JSON escapes, in either case", "h", http.Header{"X-A&B": {"1"}, "X<Y>\"Q\\": {"2"}, "X-\x01": {"3"}}},
		{"a Host in the header map gives way to r.Host", "real", http.Header{"Host": {"fake"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" encodes as json.Marshal of the map", func(t *testing.T) {
			r := &http.Request{Host: tt.host, Header: tt.header}
			want, err := json.Marshal(headersMap(r))
			if err != nil {
				t.Fatal(err)
			}
			if got := appendHeadersJSON(nil, r); string(got) != string(want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
	t.Run("two names equal but for case are one, values joined in byte order of the names", func(t *testing.T) {
		r := &http.Request{Host: "h", Header: http.Header{"X-A": {"1"}, "x-a": {"2"}}}
		if got, want := string(appendHeadersJSON(nil, r)), `{"host":"h","x-a":"1, 2"}`; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
}

// FuzzHeadersJSON checks appendHeadersJSON against encoding/json on arbitrary header
// values and ASCII names (the only names net/http accepts).
func FuzzHeadersJSON(f *testing.F) {
	f.Add("User-Agent", "curl/8.5.0", "host")
	f.Add("X-Evil", "<script>\u2028\xff", "<b>")
	f.Add("accept", "a\x00b", "")
	f.Fuzz(func(t *testing.T, name, value, host string) {
		for i := range len(name) {
			if name[i] >= 0x80 {
				return
			}
		}
		r := &http.Request{Host: host, Header: http.Header{name: {value, value}, "X-Other": {value}}}
		want, err := json.Marshal(headersMap(r))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendHeadersJSON(nil, r); string(got) != string(want) {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
}

func TestJSONAnswerIsEncodingJSON(t *testing.T) {
	t.Parallel()
	cfg := Config{Service: "service<1>", Host: "host \"&\" co", CookieName: testCookie}
	h, err := NewServer(cfg, newStore(t, "memory"), discard())
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/service<1>", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Evil", "<script>")
	want, _ := json.Marshal(Answer{Service: cfg.Service, Host: cfg.Host, Visits: 1, Headers: headersMap(req)})
	if got := readBody(t, serve(h, req)); got != string(want)+"\n" {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
