package sticky

import (
	"bytes"
	"time"
)

// What a Rule does to the cookies of one request and one answer, for every
// mode, on bytes (the fast engine composes headers in place; the std engine
// uses the string wrappers). As HAProxy's http_manage_client_side_cookies and
// http_manage_server_side_cookies (src/http_ana.c, 2.6):
//
//   - request: in prefix mode the id is what comes before the first '~' of the
//     value and is always taken off; in insert and rewrite modes the whole value
//     is the id (with maxidle/maxlife: "id|last|first", the dates in HAProxy's
//     own 5-character base64 of seconds/4), passed on to the backend, except
//     in insert+indirect mode, where every NAME cookie is taken off the request.
//   - answer: a backend's own Set-Cookie NAME is left alone with preserve,
//     dropped in insert mode (the proxy inserts its own) and in indirect mode
//     for a visitor whose cookie named the server, its value replaced by the id
//     in rewrite mode, prefixed in prefix mode. Insert mode then adds
//     "NAME=id; path=/..." unless the visitor's cookie already named this
//     server (and its dates need no refresh), or preserve and the backend set
//     NAME itself, or postonly and the request is not a POST.

// DateDelim separates the id from the dates in an inserted value, as HAProxy's
// COOKIE_DELIM_DATE.
const DateDelim = '|'

// Dates are the dates of an inserted cookie, in Unix seconds (0: none).
type Dates struct{ Last, First int64 }

// Found is one sticky cookie of a request.
type Found struct {
	ID      []byte // a part of the header, not a copy; may be empty (names no server)
	Dates   Dates
	Expired bool // too old for maxidle/maxlife: it counts as absent
}

// Next returns the first sticky cookie of the Cookie header value h at or
// after byte from, and where to look for the next one: in prefix mode a NAME
// cookie whose value holds a '~' (as NextID), in the other modes any NAME
// cookie. now (Unix seconds) decides expiry.
func (r *Rule) Next(h []byte, from int, now int64) (f Found, next int, ok bool) {
	if r.Mode == ModePrefix {
		id, next, ok := NextID(h, r.Name, from)
		return Found{ID: id}, next, ok
	}
	for i := from; i < len(h); {
		v, end, nx := nextValue(h, i, r.Name)
		i = nx
		if v < 0 {
			continue
		}
		f.ID, f.Dates = ReadValue(h[v:end])
		f.Expired = r.expired(f.Dates, now)
		return f, nx, true
	}
	return Found{}, len(h), false
}

// ReadValue splits the value of an inserted cookie into the id and its dates,
// as HAProxy reads "id|last|first". A date that is missing or not in HAProxy's
// encoding is 0.
func ReadValue(v []byte) (id []byte, d Dates) {
	bar := bytes.IndexByte(v, DateDelim)
	if bar < 0 {
		return v, d
	}
	id, rest := v[:bar], v[bar+1:]
	if len(rest) >= 5 {
		if s := b64tos30(rest[:5]); s > 0 {
			d.Last = int64(s) << 2
		}
	}
	if k := bytes.IndexByte(rest, DateDelim); k >= 0 && len(rest)-k > 5 {
		if s := b64tos30(rest[k+1 : k+6]); s > 0 {
			d.First = int64(s) << 2
		}
	}
	return id, d
}

// expired is HAProxy's check: a first date older than maxlife, or a last
// date older than maxidle, or either more than a day in the future.
func (r *Rule) expired(d Dates, now int64) bool {
	const day = 86400
	if life := int64(r.MaxLife / time.Second); d.First != 0 && life > 0 && (now-d.First > life || d.First-now > day) {
		return true
	}
	if idle := int64(r.MaxIdle / time.Second); d.Last != 0 && idle > 0 && (now-d.Last > idle || d.Last-now > day) {
		return true
	}
	return false
}

// RewritesRequest reports whether the request's NAME cookies are changed before the
// backend sees them whole: prefix mode (the ids) or insert+indirect (the cookies).
func (r *Rule) RewritesRequest() bool {
	return r.Mode == ModePrefix || (r.Mode == ModeInsert && r.Indirect)
}

// AppendCookie appends the Cookie header value h as the backend must see it
// (see RewritesRequest), and reports whether anything is left of it: a header
// that held only the proxy's cookie is dropped.
func (r *Rule) AppendCookie(dst, h []byte) ([]byte, bool) {
	switch {
	case r.Mode == ModePrefix:
		return AppendStrip(dst, h, r.Name), true
	case r.Mode == ModeInsert && r.Indirect:
		return appendDelete(dst, h, r.Name)
	}
	return append(dst, h...), true
}

// RewriteCookie is AppendCookie on strings. A header it does not change comes
// back as it is, without allocating.
func (r *Rule) RewriteCookie(h string) (string, bool) {
	switch {
	case r.Mode == ModePrefix:
		out, _ := Strip(h, r.Name, nil)
		return out, true
	case r.Mode == ModeInsert && r.Indirect:
		if !hasNamed(bytesOf(h), r.Name) {
			return h, true
		}
		out, keep := appendWithout(make([]byte, 0, len(h)), bytesOf(h), r.Name)
		return string(out), keep
	}
	return h, true
}

// appendDelete appends h without its NAME cookies (any value), joining what
// is left with "; " as HAProxy's http_del_hdr_value does, and reports whether
// anything is left.
func appendDelete(dst, h []byte, name string) ([]byte, bool) {
	if !hasNamed(h, name) {
		return append(dst, h...), true // byte for byte
	}
	return appendWithout(dst, h, name)
}

// appendWithout is appendDelete for an h that holds a NAME cookie.
func appendWithout(dst, h []byte, name string) ([]byte, bool) {
	start := len(dst)
	kept := 0
	for i := 0; i < len(h); {
		begin := skipBlanks(h, i)
		v, _, next := nextValue(h, i, name)
		end := min(next-1, len(h)) // the ';' that ends this cookie, or the end
		i = next
		if v >= 0 {
			continue
		}
		piece := trimRight(h, begin, end)
		if len(piece) == 0 {
			continue
		}
		if kept > 0 {
			dst = append(dst, "; "...)
		}
		dst = append(dst, piece...)
		kept++
	}
	return dst, len(dst) > start
}

// hasNamed reports whether the Cookie header value h holds a cookie called name.
func hasNamed(h []byte, name string) bool {
	for i := 0; i < len(h); {
		v, _, next := nextValue(h, i, name)
		if v >= 0 {
			return true
		}
		i = next
	}
	return false
}

// Action is what an answer's Set-Cookie header becomes.
type Action uint8

// The actions on a Set-Cookie.
const (
	Pass  Action = iota // unchanged
	Drop                // not sent to the client
	PutID               // the id put in (prefix: in front of the value; rewrite: as the value)
)

// SetCookie says what becomes of one Set-Cookie header value of an answer
// from a known server; hit says the request's cookie named that server. named
// reports whether the header sets NAME at all (for preserve).
func (r *Rule) SetCookie(v []byte, hit bool) (a Action, named bool) {
	if _, ok := setCookieValue(v, r.Name); !ok {
		return Pass, false
	}
	switch {
	case r.Preserve:
		return Pass, true
	case r.Mode == ModeInsert || (hit && r.Indirect):
		return Drop, true
	case r.Mode == ModeRewrite:
		return PutID, true
	}
	// Prefix: an empty value (a deletion) is left alone.
	if _, ok := prefixAt(v, r.Name); ok {
		return PutID, true
	}
	return Pass, true
}

// AppendSetCookie appends the Set-Cookie value v with id put in, for a header
// SetCookie says PutID to.
func (r *Rule) AppendSetCookie(dst, v []byte, id string) []byte {
	if r.Mode == ModePrefix {
		dst, _ = AppendPrefix(dst, v, r.Name, id)
		return dst
	}
	vs, ok := setCookieValue(v, r.Name)
	if !ok {
		return append(dst, v...)
	}
	end := vs + len(trimRight(v, vs, valueEnd(v, vs)))
	dst = append(dst, v[:vs]...)
	dst = append(dst, id...)
	return append(dst, v[end:]...)
}

// setCookieValue returns where the value of a Set-Cookie for name starts.
func setCookieValue(h []byte, name string) (int, bool) {
	i := skipBlanks(h, 0)
	nameStart := i
	for i < len(h) && h[i] != '=' && h[i] != ';' {
		i++
	}
	if i == len(h) || h[i] != '=' || string(trimRight(h, nameStart, i)) != name {
		return 0, false
	}
	return skipBlanks(h, i+1), true
}

// Insert reports whether an answer gets the proxy's own cookie, as HAProxy
// decides: hit says the request's cookie named the server that answered,
// d are that cookie's dates, serverSet that the backend set NAME itself.
func (r *Rule) Insert(hit bool, d Dates, now int64, post, serverSet bool) bool {
	if r.Mode != ModeInsert || (serverSet && r.Preserve) || (r.PostOnly && !post) {
		return false
	}
	return !hit ||
		((r.MaxIdle > 0 || d.Last != 0) && (d.Last == 0 || d.Last < now)) ||
		(r.MaxLife > 0 && d.First == 0) ||
		(r.MaxLife == 0 && d.First != 0)
}

// AppendInsert appends the value of the Set-Cookie the proxy inserts for the
// server id at now (Unix seconds): "NAME=id[|last[|first]]; path=/", then the
// domains, HttpOnly, Secure and the attrs, in HAProxy's order and spelling.
// first is the visitor's first date when its cookie had one (0: now).
func (r *Rule) AppendInsert(dst []byte, id string, now, first int64) []byte {
	dst = append(dst, r.Name...)
	dst = append(dst, '=')
	dst = append(dst, id...)
	if r.MaxIdle > 0 || r.MaxLife > 0 {
		q := (now + 3) >> 2
		dst = append(dst, DateDelim)
		dst = s30tob64(dst, q)
		if r.MaxLife > 0 {
			if first != 0 {
				q = first >> 2
			}
			dst = append(dst, DateDelim)
			dst = s30tob64(dst, q)
		}
	}
	dst = append(dst, "; path=/"...)
	for _, d := range r.Domains {
		dst = append(dst, "; domain="...)
		dst = append(dst, d...)
	}
	if r.HTTPOnly {
		dst = append(dst, "; HttpOnly"...)
	}
	if r.Secure {
		dst = append(dst, "; Secure"...)
	}
	for _, a := range r.Attrs {
		dst = append(dst, "; "...)
		dst = append(dst, a...)
	}
	return dst
}

// base64tab is HAProxy's alphabet for s30tob64 (standard base64).
const base64tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// s30tob64 appends the low 30 bits of v as 5 characters, most significant
// first, as HAProxy's s30tob64.
func s30tob64(dst []byte, v int64) []byte {
	for range 5 {
		dst = append(dst, base64tab[(v>>24)&0x3f])
		v <<= 6
	}
	return dst
}

// b64tos30 reads 5 characters written by s30tob64; -1 for anything else.
func b64tos30(in []byte) int32 {
	var out int32
	for _, c := range in[:5] {
		var b int32
		switch {
		case c >= 'A' && c <= 'Z':
			b = int32(c - 'A')
		case c >= 'a' && c <= 'z':
			b = int32(c-'a') + 26
		case c >= '0' && c <= '9':
			b = int32(c-'0') + 52
		case c == '+':
			b = 62
		case c == '/':
			b = 63
		default:
			return -1
		}
		out = out<<6 + b
	}
	return out
}
