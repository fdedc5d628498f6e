package pageview

import (
	"net/http"
	"slices"
	"unicode/utf8"
)

// appendHeadersJSON appends the JSON object of the request's headers as express's
// req.headers shows them: lower-case names, the host included (r.Host: net/http takes
// Host out of the header map), repeated headers joined with ", ". Names are sorted
// and strings escaped exactly as encoding/json writes a map[string]string
// (TestHeadersJSONIsEncodingJSON): this is the page's hot path, and building that map
// and marshalling it by reflection cost a sixth of a page view.
//
// Two names equal but for case (possible only in a hand-made Header) are one name:
// their values are joined, in byte order of the names. A Host in the header map gives
// way to r.Host. Names are lowered in ASCII only: net/http accepts no other.
func appendHeadersJSON(b []byte, r *http.Request) []byte {
	var stack [32]string
	names := append(stack[:0], "Host") // stands for r.Host
	for name := range r.Header {
		if !equalLower(name, "host") {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, compareLower)
	b = append(b, '{')
	for i, name := range names {
		if i > 0 && equalLower(name, names[i-1]) {
			continue // joined below with the first of its name
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, name, true)
		b = append(b, ':', '"')
		if equalLower(name, "host") {
			b = appendJSONStringBody(b, r.Host)
		} else {
			sep := false
			for j := i; j < len(names) && equalLower(names[j], name); j++ {
				for _, v := range r.Header[names[j]] {
					if sep {
						b = append(b, ',', ' ')
					}
					b = appendJSONStringBody(b, v)
					sep = true
				}
			}
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string, lowered to ASCII lower case when lower
// is true, escaped as encoding/json escapes it. It lowers what it escaped, in place:
// the same bytes as escaping the lowered string, since escaping keeps ASCII letters as
// they are and writes no upper-case letter of its own (\u003c, \n, \ufffd), and it
// allocates nothing for the header names of every page.
func appendJSONString(b []byte, s string, lower bool) []byte {
	b = append(b, '"')
	start := len(b)
	b = appendJSONStringBody(b, s)
	if lower {
		for i, c := range b[start:] {
			b[start+i] = lowerByte(c)
		}
	}
	return append(b, '"')
}

// asciiLower returns s with ASCII letters lowered; it allocates when it changes s.
func asciiLower(s string) string {
	var stack [64]byte
	l := append(stack[:0], s...)
	for i, c := range l {
		if 'A' <= c && c <= 'Z' {
			l[i] = c + 'a' - 'A'
		}
	}
	return string(l)
}

const hexDigits = "0123456789abcdef"

// appendJSONStringBody appends s escaped as encoding/json escapes a string (with its
// default HTML escaping), without the quotes: ", \ and control bytes escaped (\b \f
// \n \r \t by name), <, > and & as \u003c \u003e \u0026 so no header becomes markup in
// the page, invalid UTF-8 as \ufffd, U+2028 and U+2029 as \u2028 and \u2029.
func appendJSONStringBody(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// compareLower orders strings by their ASCII-lowered bytes, then by their own bytes.
func compareLower(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if ca, cb := lowerByte(a[i]), lowerByte(b[i]); ca != cb {
			return int(ca) - int(cb)
		}
	}
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// equalLower reports whether a and b are equal but for ASCII case.
func equalLower(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lowerByte(a[i]) != lowerByte(b[i]) {
			return false
		}
	}
	return true
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
