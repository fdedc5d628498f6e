// Package sticky is the codec of HAProxy's `cookie NAME prefix` mode: the proxy
// puts "<server id>~" in front of the value of every Set-Cookie for NAME, and
// takes it off again in every Cookie header before the backend sees it.
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

import "strings"

// Delim separates the server id from the backend's own value, as in HAProxy.
const Delim = '~'

// Prefix returns the Set-Cookie header value setCookie with "id~" put in
// front of the cookie's value when the cookie is named name, and true. The
// attributes (Path, HttpOnly, ...) are left untouched and nothing is added.
// A cookie of another name, a header without '=' or an empty value (a
// deletion such as "NAME=; Max-Age=0") is returned unchanged with false, as
// HAProxy does.
func Prefix(setCookie, name, id string) (string, bool) {
	h := setCookie
	i := skipBlanks(h, 0)
	nameStart := i
	for i < len(h) && h[i] != '=' && h[i] != ';' {
		i++
	}
	if i == len(h) || h[i] != '=' {
		return setCookie, false
	}
	if trimRight(h, nameStart, i) != name {
		return setCookie, false
	}
	v := skipBlanks(h, i+1)
	end := valueEnd(h, v)
	if len(trimRight(h, v, end)) == 0 {
		return setCookie, false
	}
	var b strings.Builder
	b.Grow(len(h) + len(id) + 1)
	b.WriteString(h[:v])
	b.WriteString(id)
	b.WriteByte(Delim)
	b.WriteString(h[v:])
	return b.String(), true
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
	// First pass: find the cuts without allocating. Most headers have at
	// most one sticky cookie: one cut costs one string concatenation.
	first, firstEnd := -1, -1
	n := 0
	for i := 0; i < len(h); {
		v, end, next := nextValue(h, i, name)
		i = next
		if v < 0 {
			continue
		}
		d := strings.IndexByte(h[v:end], Delim)
		if d < 0 {
			continue
		}
		ids = append(ids, h[v:v+d])
		if n == 0 {
			first, firstEnd = v, v+d+1
		}
		n++
	}
	switch n {
	case 0:
		return h, ids
	case 1:
		return h[:first] + h[firstEnd:], ids
	}
	var b strings.Builder
	b.Grow(len(h))
	last := 0
	for i := 0; i < len(h); {
		v, end, next := nextValue(h, i, name)
		i = next
		if v < 0 {
			continue
		}
		if d := strings.IndexByte(h[v:end], Delim); d >= 0 {
			b.WriteString(h[last:v])
			last = v + d + 1
		}
	}
	b.WriteString(h[last:])
	return b.String(), ids
}

// Has reports whether the Cookie header value h holds a cookie named name
// whose value carries an id, without allocating.
func Has(h, name string) bool {
	for i := 0; i < len(h); {
		v, end, next := nextValue(h, i, name)
		i = next
		if v >= 0 && strings.IndexByte(h[v:end], Delim) >= 0 {
			return true
		}
	}
	return false
}

// nextValue parses the cookie of the Cookie header h that starts at i. When
// it is named name, it returns the bounds [v, end) of its value (blanks
// around it excluded), else v = -1; next is where the following cookie
// starts.
func nextValue(h string, i int, name string) (v, end, next int) {
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
		if k := strings.IndexByte(h[end:], ';'); k < 0 {
			next = len(h) + 1
		} else {
			next = end + k + 1
		}
	}
	if trimRight(h, nameStart, j) != name {
		return -1, -1, next
	}
	return v, v + len(trimRight(h, v, end)), next
}

// valueEnd returns where the cookie value starting at v ends: at the next
// ';', or after the closing quote when the value starts with '"' (as
// HAProxy's http_find_cookie_value_end).
func valueEnd(h string, v int) int {
	if v < len(h) && h[v] == '"' {
		if k := strings.IndexByte(h[v+1:], '"'); k >= 0 {
			return v + 1 + k + 1
		}
	}
	if k := strings.IndexByte(h[v:], ';'); k >= 0 {
		return v + k
	}
	return len(h)
}

func skipBlanks(h string, i int) int {
	for i < len(h) && (h[i] == ' ' || h[i] == '\t') {
		i++
	}
	return i
}

// trimRight returns h[start:end] without trailing blanks.
func trimRight(h string, start, end int) string {
	for end > start && (h[end-1] == ' ' || h[end-1] == '\t') {
		end--
	}
	return h[start:end]
}
