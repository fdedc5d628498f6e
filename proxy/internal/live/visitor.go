package live

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
)

// Visitor says who made a request, as keyed hashes (Hash, HashString, HashAddr);
// 0 means absent. The engines fill it from the request and the answer, and only
// while someone watches (Recorder.Watched).
//
// A visitor is named by its sticky cookie: the value it sent (Cookie) or, on its
// first visit, the value the answer gave it (Set). When the answer gives a visitor
// that had a cookie a new one (its server was gone: a new session on another
// replica), the new cookie keeps naming the same visitor, so the view shows one
// visitor moving rather than a new one appearing. Without a sticky cookie on
// either side (a round-robin service) a visitor is its connection (Client).
type Visitor struct {
	Cookie uint64 // the sticky cookie's value, as the request carried it
	Set    uint64 // the sticky cookie's value the answer set, as the client will send it back
	Client uint64 // the client's address and port
}

// seed keys every hash of this process: a visitor's name says nothing of its
// cookie or its address, and another proxy names it otherwise.
var seed = maphash.MakeSeed()

// Hash is the keyed hash of a cookie value (never 0).
func Hash(b []byte) uint64 { return nonZero(maphash.Bytes(seed, b)) }

// HashString is Hash of a string, without copying it.
func HashString(s string) uint64 { return nonZero(maphash.String(seed, s)) }

// HashAddr is the keyed hash of a client's address and port.
func HashAddr(ap netip.AddrPort) uint64 {
	var b [18]byte
	a := ap.Addr().Unmap().As16()
	copy(b[:], a[:])
	binary.BigEndian.PutUint16(b[16:], ap.Port())
	return Hash(b[:])
}

func nonZero(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// CookieValue is the value of the first cookie called name in the value of a
// Cookie header ("a=1; connect.sid=x~y; b=2"), without the blanks around it.
// Cookies are split at ';' and names compare exactly, as HAProxy reads them.
func CookieValue[T ~string | ~[]byte](h T, name string) (T, bool) {
	for i := 0; i < len(h); {
		end := i
		for end < len(h) && h[end] != ';' {
			end++
		}
		if n, v, ok := pair(h[i:end]); ok && string(n) == name {
			return v, true
		}
		i = end + 1
	}
	return h[:0], false
}

// SetCookieValue is the cookie's value in the value of a Set-Cookie header
// ("connect.sid=x~y; Path=/; HttpOnly") when the cookie is called name and the
// value is not empty (an empty one deletes the cookie).
func SetCookieValue[T ~string | ~[]byte](h T, name string) (T, bool) {
	end := 0
	for end < len(h) && h[end] != ';' {
		end++
	}
	n, v, ok := pair(h[:end])
	if !ok || string(n) != name || len(v) == 0 {
		return h[:0], false
	}
	return v, true
}

// pair splits "name=value" and trims the blanks around both.
func pair[T ~string | ~[]byte](c T) (name, value T, ok bool) {
	eq := -1
	for i := 0; i < len(c); i++ {
		if c[i] == '=' {
			eq = i
			break
		}
	}
	if eq < 0 {
		return c[:0], c[:0], false
	}
	return trim(c[:eq]), trim(c[eq+1:]), true
}

func trim[T ~string | ~[]byte](s T) T {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return s[i:j]
}
