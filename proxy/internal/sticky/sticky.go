// Package sticky is the codec of HAProxy's `cookie` rule (Rule, ParseRule), in
// its three modes: prefix (the tutorial's: the proxy puts "<server id>~" in
// front of the value of every Set-Cookie for NAME, and takes it off again in
// every Cookie header before the backend sees it), insert (the proxy adds a
// cookie of its own, insert.go) and rewrite (the backend's cookie value is
// replaced by the id). Both engines use it on bytes, so they behave alike.
//
// The codec knows nothing about servers or balancing: Strip reports the ids it
// removed, in order, and the caller decides which one (if any) names a live
// server. A missing or unknown id is not an error, it only means "not sticky".
//
// Parsing follows HAProxy (http_manage_client_side_cookies and
// http_manage_server_side_cookies): cookies are separated by ';', blanks
// around names and values are ignored, names compare exactly (case
// sensitive), and the id is everything before the first '~' of the value,
// quotes included. Only the bytes "<id>~" are ever removed or added; every
// other byte of the header is passed on as it came.
package sticky

import (
	"bytes"
	"strings"
	"unsafe"
)

// Delim separates the server id from the backend's own value, as in HAProxy.
const Delim = '~'

// Prefix returns the Set-Cookie header value setCookie with "id~" put in
// front of the cookie's value when the cookie is named name, and true. The
// attributes (Path, HttpOnly, ...) are left untouched and nothing is added.
// A cookie of another name or a header without '=' is returned unchanged with
// false, as HAProxy does; so is an empty value (a deletion such as "NAME=;
// Max-Age=0"), which HAProxy prefixes too: we leave it as the backend wrote it,
// since it carries no session to stick to (the differential test against
// HAProxy checks both).
func Prefix(setCookie, name, id string) (string, bool) {
	v, ok := prefixAt(bytesOf(setCookie), name)
	if !ok {
		return setCookie, false
	}
	var b strings.Builder
	b.Grow(len(setCookie) + len(id) + 1)
	b.WriteString(setCookie[:v])
	b.WriteString(id)
	b.WriteByte(Delim)
	b.WriteString(setCookie[v:])
	return b.String(), true
}

// AppendPrefix is Prefix for the engines that compose headers in place: it
// appends setCookie to dst, with "id~" in front of the value when Prefix would
// put it there, and reports whether it did.
func AppendPrefix(dst, setCookie []byte, name, id string) ([]byte, bool) {
	v, ok := prefixAt(setCookie, name)
	if !ok {
		return append(dst, setCookie...), false
	}
	dst = append(dst, setCookie[:v]...)
	dst = append(dst, id...)
	dst = append(dst, Delim)
	return append(dst, setCookie[v:]...), true
}

// prefixAt returns where the id goes in a Set-Cookie value for name: the
// start of a non-empty value of a cookie called name.
func prefixAt(h []byte, name string) (int, bool) {
	v, ok := setCookieValue(h, name)
	if !ok || len(trimRight(h, v, valueEnd(h, v))) == 0 {
		return 0, false
	}
	return v, true
}

// Strip removes the server id from every cookie named name in the Cookie
// header value h whose value holds a '~': the bytes up to and including the
// first '~' of the value go, always, whether or not the id is known, so the
// backend sees exactly the value it set. The removed ids are appended to ids
// in the order they appear; they are substrings of h (no copies). When
// nothing is removed, h itself is returned and nothing is allocated; else the
// new header costs one allocation.
//
// An id may be empty ("NAME=~v"). Cookies without '=' and other names are
// passed on byte for byte.
func Strip(h, name string, ids []string) (string, []string) {
	hb := bytesOf(h)
	first, firstEnd, n := -1, -1, 0
	for i := 0; ; {
		id, cut, next, ok := nextID(hb, name, i)
		if !ok {
			break
		}
		i = next
		ids = append(ids, h[cut:cut+len(id)])
		if n == 0 {
			first, firstEnd = cut, cut+len(id)+1
		}
		n++
	}
	switch n {
	case 0:
		return h, ids
	case 1:
		// Most headers have one sticky cookie: one concatenation.
		return h[:first] + h[firstEnd:], ids
	}
	return string(AppendStrip(make([]byte, 0, len(h)), hb, name)), ids
}

// AppendStrip is Strip for the engines that compose headers in place: it
// appends h to dst without the ids Strip would remove.
func AppendStrip(dst, h []byte, name string) []byte {
	last := 0
	for i := 0; ; {
		id, cut, next, ok := nextID(h, name, i)
		if !ok {
			break
		}
		i = next
		dst = append(dst, h[last:cut]...)
		last = cut + len(id) + 1
	}
	return append(dst, h[last:]...)
}

// NextID returns the id of the first cookie named name at or after byte from
// of the Cookie header value h whose value holds a '~' (the same ids Strip
// removes, in the same order), and where to look for the next one. The id is
// a part of h, not a copy.
func NextID(h []byte, name string, from int) (id []byte, next int, ok bool) {
	id, _, next, ok = nextID(h, name, from)
	return id, next, ok
}

// nextID finds the next id: it returns the id, where it starts (cut), and
// where the following cookie starts.
func nextID(h []byte, name string, i int) (id []byte, cut, next int, ok bool) {
	for i < len(h) {
		v, end, nx := nextValue(h, i, name)
		i = nx
		if v < 0 {
			continue
		}
		if d := bytes.IndexByte(h[v:end], Delim); d >= 0 {
			return h[v : v+d], v, nx, true
		}
	}
	return nil, 0, i, false
}

// nextValue parses the cookie of the Cookie header h that starts at i. When
// it is named name, it returns the bounds [v, end) of its value (blanks
// around it excluded), else v = -1; next is where the following cookie
// starts.
func nextValue(h []byte, i int, name string) (v, end, next int) {
	nameStart := skipBlanks(h, i)
	j := nameStart
	for j < len(h) && h[j] != '=' && h[j] != ';' {
		j++
	}
	if j == len(h) || h[j] == ';' {
		return -1, -1, j + 1 // a cookie without '=': nothing to strip
	}
	v = skipBlanks(h, j+1)
	end = valueEnd(h, v)
	next = end + 1
	if end < len(h) && h[end] != ';' {
		// A quoted value ended before the ';': skip to it.
		if k := bytes.IndexByte(h[end:], ';'); k < 0 {
			next = len(h) + 1
		} else {
			next = end + k + 1
		}
	}
	if string(trimRight(h, nameStart, j)) != name {
		return -1, -1, next
	}
	return v, v + len(trimRight(h, v, end)), next
}

// valueEnd returns where the cookie value starting at v ends: at the next
// ';', or after the closing quote when the value starts with '"' (as
// HAProxy's http_find_cookie_value_end).
func valueEnd(h []byte, v int) int {
	if v < len(h) && h[v] == '"' {
		if k := bytes.IndexByte(h[v+1:], '"'); k >= 0 {
			return v + 1 + k + 1
		}
	}
	if k := bytes.IndexByte(h[v:], ';'); k >= 0 {
		return v + k
	}
	return len(h)
}

func skipBlanks(h []byte, i int) int {
	for i < len(h) && (h[i] == ' ' || h[i] == '\t') {
		i++
	}
	return i
}

// trimRight returns h[start:end] without trailing blanks.
func trimRight(h []byte, start, end int) []byte {
	for end > start && (h[end-1] == ' ' || h[end-1] == '\t') {
		end--
	}
	return h[start:end]
}

// bytesOf views s as bytes without copying, for the parsers above, which only
// read. Nothing may ever write to the result.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
