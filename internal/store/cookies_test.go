package store

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestCookieValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers []string
		want    []string
	}{
		{"no Cookie header", nil, nil},
		{"one cookie", []string{"sid=abc"}, []string{"abc"}},
		{"among others, in order", []string{"a=1; sid=x; b=2; sid=y"}, []string{"x", "y"}},
		{"over several Cookie headers", []string{"sid=x", "a=1; sid=y"}, []string{"x", "y"}},
		{"blanks around names and separators", []string{" a=1 ;  sid =x ;sid=y  "}, []string{"x", "y"}},
		{"quoted", []string{`sid="abc"`}, []string{"abc"}},
		{"a name that only starts like it", []string{"sidx=1; xsid=2; SID=3"}, nil},
		{"empty values", []string{"sid=; sid"}, []string{"", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Header: http.Header{"Cookie": tt.headers}}
			got := slices.Collect(cookieValues(r, "sid"))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzCookieValues checks cookieValues against net/http: the values it yields that
// hold only bytes a cookie value may hold are exactly those of r.CookiesNamed.
func FuzzCookieValues(f *testing.F) {
	for _, h := range []string{"sid=abc", "a=1; sid=x; sid=\"y\"", " sid = x ", "sid= x", "sid=a b", "sid=\"", "sid;sid=;=sid"} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, header string) {
		lines := strings.Split(header, "\n")
		r := &http.Request{Header: http.Header{"Cookie": lines}}
		var got []string
		for v := range cookieValues(r, "sid") {
			if validCookieValue(v) {
				got = append(got, v)
			}
		}
		var want []string
		for _, c := range r.CookiesNamed("sid") {
			want = append(want, c.Value)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Cookie %q: got %q, want %q (net/http)", lines, got, want)
		}
	})
}

// validCookieValue is net/http's rule for the bytes of a cookie value.
func validCookieValue(v string) bool {
	for i := range len(v) {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}
