package store

import (
	"iter"
	"net/http"
	"net/textproto"
	"strings"
)

// cookieValues yields the value of every cookie called name in the request's Cookie
// headers, in order, split, trimmed and unquoted as r.CookiesNamed(name) does, but
// without allocating (CookiesNamed makes a Cookie per value; the memory store looks at
// the cookies twice per request, in Lock and New, the cookie store once, in New).
// Unlike CookiesNamed it also yields values holding bytes a cookie value may not hold
// (a space, a backslash...): no such value opens (seal.go accepts base64url only), so
// the outcome is the same.
func cookieValues(r *http.Request, name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, line := range r.Header["Cookie"] {
			for len(line) > 0 {
				var part string
				part, line, _ = strings.Cut(line, ";")
				k, v, _ := strings.Cut(textproto.TrimString(part), "=")
				if textproto.TrimString(k) != name {
					continue
				}
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				if !yield(v) {
					return
				}
			}
		}
	}
}
