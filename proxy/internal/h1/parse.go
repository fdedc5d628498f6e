// Package h1 is the proxy's fast engine for cleartext HTTP/1.x: one goroutine per
// client connection that parses request and response heads in place (no header
// maps, no copies), rewrites them into one composed write per direction and
// relays bodies through per-connection buffers, over per-server pools of
// kept-alive backend connections. In the steady state it allocates nothing per
// request.
//
// It is strict where a proxy must be: every head is validated before a byte of it
// is forwarded (RFC 9112 framing, the request-smuggling vectors: CL with TE,
// differing or overflowing Content-Length, a Transfer-Encoding other than one
// final chunked, TE on HTTP/1.0, obs-fold, bare CR or LF, NUL and other controls,
// a space before the colon, absent or repeated Host), and a chunked body is parsed
// while it is relayed, so a malformed one is cut and answered as the client's
// fault, never passed on.
package h1

import (
	"bytes"
	"errors"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
)

// maxFields bounds the header fields of one head, as HAProxy's tune.http.maxhdr
// (101 by default).
const maxFields = 101

// span is a part of a head: buf[s:e].
type span struct{ s, e int32 }

func (p span) of(b []byte) []byte { return b[p.s:p.e] }
func (p span) len() int           { return int(p.e - p.s) }

// field is one header line: its name and its value without surrounding blanks.
type field struct{ name, value span }

// statusError is a head that cannot be served: status is what the client gets.
type statusError struct {
	status int
	msg    string // one short line for the client, no input echoed
}

func (e *statusError) Error() string { return e.msg }

func badRequest(msg string) *statusError { return &statusError{400, msg} }

// Errors of the request head, each with the status the client gets. The
// messages name the rule, never the bytes that broke it.
var (
	errLineEnding   = badRequest("bad request: lines must end in CRLF")
	errRequestLine  = badRequest("bad request: malformed request line")
	errMethod       = badRequest("bad request: malformed method")
	errTarget       = badRequest("bad request: malformed request target")
	errVersion      = badRequest("bad request: malformed HTTP version")
	errUnsupported  = &statusError{505, "HTTP version not supported: use HTTP/1.0 or HTTP/1.1"}
	errObsFold      = badRequest("bad request: folded header line")
	errFieldName    = badRequest("bad request: malformed header name")
	errFieldValue   = badRequest("bad request: control character in a header value")
	errTooMany      = &statusError{431, "request header fields too large: too many fields"}
	errTooLarge     = &statusError{431, "request header fields too large"}
	errHost         = badRequest(forward.BadHostText)
	errLength       = badRequest("bad request: malformed or conflicting Content-Length")
	errTEAndLength  = badRequest("bad request: both Transfer-Encoding and Content-Length")
	errTE           = &statusError{501, "not implemented: only Transfer-Encoding: chunked is supported"}
	errTEDuplicate  = badRequest("bad request: repeated Transfer-Encoding")
	errTE10         = badRequest("bad request: Transfer-Encoding in an HTTP/1.0 request")
	errExpect       = &statusError{417, "expectation failed: only 100-continue is supported"}
	errMethodNotAll = &statusError{405, "method not allowed: this is not a forward proxy"}
)

// head is a parsed request or response head. Its spans index the buffer it was
// parsed from, which must not change while the head is in use.
type head struct {
	size   int // bytes of the head, final CRLF included
	minor  int // HTTP/1.<minor>: 0 or 1
	fields [maxFields]field
	n      int // fields used

	// Request line.
	method, target, path span // path: target up to '?' (origin form)
	// Status line.
	status int
	reason span

	// From the fields.
	host          int   // index of Host, -1 when absent
	contentLength int64 // -1 when absent
	chunked       bool
	connClose     bool // Connection: close (or HTTP/1.0 without keep-alive)
	upgrade       bool // Connection: upgrade and an Upgrade field
	expect100     bool
	expected      bool // the proxy answered Expect: 100-continue itself: not passed on
	xffLast       int  // index of the last X-Forwarded-For, -1 when absent
	// conn lists the Connection field's tokens (besides close, keep-alive and
	// upgrade): the names of other hop-by-hop fields to drop.
	conn  [8]span
	nconn int
}

func (h *head) reset() {
	h.n, h.nconn = 0, 0
	h.host, h.xffLast = -1, -1
	h.contentLength = -1
	h.chunked, h.connClose, h.upgrade, h.expect100, h.expected = false, false, false, false, false
	h.status = 0
}

// headEnd finds the end of a head in b, searching from `from` (where an earlier,
// unsuccessful search stopped, so a head trickled in byte by byte costs linear
// time). It returns the head's length, or 0 and where to resume. A bare LF in b
// makes it return len(b) at once, so that parsing fails fast with a 400 instead
// of waiting for a head that a CRLF-only parser would never see end.
func headEnd(b []byte, from int) (n, resume int) {
	from = max(from-3, 0)
	if i := bytes.Index(b[from:], crlfcrlf); i >= 0 {
		return from + i + 4, 0
	}
	for i := from; i < len(b); i++ {
		if b[i] == '\n' && (i == 0 || b[i-1] != '\r') {
			return len(b), 0
		}
	}
	return 0, len(b)
}

var crlfcrlf = []byte("\r\n\r\n")

// tokenChar is the tchar set of RFC 9110 §5.6.2.
var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// valueChar is field-vchar, SP and HTAB (RFC 9110 §5.5): no controls, no DEL.
var valueChar = func() (t [256]bool) {
	for c := 0x20; c < 0x100; c++ {
		t[c] = c != 0x7f
	}
	t['\t'] = true
	return t
}()

// hostChar is what a Host value may hold: reg-name, IP literal and port
// characters (as x/net/http/httpguts.ValidHostHeader).
var hostChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!$&'()*+,-.:;=[]_~%" {
		t[c] = true
	}
	return t
}()

// parseRequest parses the request head in b[:n], n from headEnd. It checks every
// rule of the package doc and fills h; on error it returns a *statusError.
func parseRequest(b []byte, h *head) error {
	h.reset()
	h.size = len(b)
	i := 0
	// method SP
	for i < len(b) && tokenChar[b[i]] {
		i++
	}
	if i == 0 || i >= len(b) || b[i] != ' ' {
		return errMethod
	}
	h.method = span{0, int32(i)}
	i++
	// request-target SP
	ts := i
	for i < len(b) && b[i] > ' ' && b[i] != 0x7f {
		i++
	}
	if i == ts || i >= len(b) || b[i] != ' ' {
		return errTarget
	}
	h.target = span{int32(ts), int32(i)}
	i++
	// HTTP-version CRLF
	if len(b)-i < 10 || string(b[i:i+5]) != "HTTP/" {
		return errVersion
	}
	v := b[i+5 : i+8]
	if v[0] < '0' || v[0] > '9' || v[1] != '.' || v[2] < '0' || v[2] > '9' {
		return errVersion
	}
	if b[i+8] != '\r' || b[i+9] != '\n' {
		return errRequestLine
	}
	if v[0] != '1' || v[2] > '1' {
		return errUnsupported
	}
	h.minor = int(v[2] - '0')
	i += 10

	if err := h.parseFields(b, i); err != nil {
		return err
	}
	return h.requestSemantics(b)
}

// parseFields parses header lines from b[i:] up to the empty line.
func (h *head) parseFields(b []byte, i int) error {
	for {
		if i+1 >= len(b) {
			return errLineEnding
		}
		if b[i] == '\r' {
			if b[i+1] != '\n' {
				return errLineEnding
			}
			return nil
		}
		if b[i] == ' ' || b[i] == '\t' {
			return errObsFold
		}
		ns := i
		for i < len(b) && tokenChar[b[i]] {
			i++
		}
		if i == ns || i >= len(b) || b[i] != ':' {
			// Covers a space before the colon, a control in the name and a
			// line without a colon.
			if i < len(b) && (b[i] == '\n' || b[i] == '\r') {
				return errLineEnding
			}
			return errFieldName
		}
		ne := i
		i++
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		vs := i
		for i < len(b) && valueChar[b[i]] {
			i++
		}
		if i+1 >= len(b) || b[i] != '\r' || b[i+1] != '\n' {
			if i < len(b) && (b[i] == '\r' || b[i] == '\n') {
				return errLineEnding
			}
			return errFieldValue
		}
		ve := i
		for ve > vs && (b[ve-1] == ' ' || b[ve-1] == '\t') {
			ve--
		}
		if h.n == maxFields {
			return errTooMany
		}
		h.fields[h.n] = field{name: span{int32(ns), int32(ne)}, value: span{int32(vs), int32(ve)}}
		h.n++
		i += 2
	}
}

// fieldIs reports whether name equals lower (lower-case ASCII), ignoring case.
func fieldIs(name []byte, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// requestSemantics reads what the fields mean for framing and routing.
func (h *head) requestSemantics(b []byte) error {
	hosts, tes := 0, 0
	keepAlive, upgradeToken, hasUpgrade := false, false, false
	for k := 0; k < h.n; k++ {
		f := &h.fields[k]
		name, val := f.name.of(b), f.value.of(b)
		switch len(name) {
		case 4:
			if fieldIs(name, "host") {
				hosts++
				h.host = k
				if len(val) == 0 || !validHost(val) {
					return errHost
				}
			}
		case 6:
			if fieldIs(name, "expect") {
				if !asciiEqualFold(val, "100-continue") {
					return errExpect
				}
				h.expect100 = true
			}
		case 7:
			if fieldIs(name, "upgrade") {
				hasUpgrade = true
			}
		case 10:
			if fieldIs(name, "connection") {
				ka, cl, up, err := h.connectionTokens(b, f.value)
				if err != nil {
					return err
				}
				keepAlive, h.connClose, upgradeToken = keepAlive || ka, h.connClose || cl, upgradeToken || up
			}
		case 14:
			if fieldIs(name, "content-length") {
				n, ok := parseLength(val)
				if !ok || (h.contentLength >= 0 && n != h.contentLength) {
					return errLength
				}
				h.contentLength = n
			}
		case 15:
			if fieldIs(name, "x-forwarded-for") {
				h.xffLast = k
			}
		case 17:
			if fieldIs(name, "transfer-encoding") {
				tes++
				if tes > 1 {
					return errTEDuplicate
				}
				if !asciiEqualFold(val, "chunked") {
					return errTE
				}
				h.chunked = true
			}
		}
	}
	switch {
	case hosts > 1:
		return errHost
	case hosts == 0 && h.minor == 1:
		return errHost
	case h.chunked && h.contentLength >= 0:
		return errTEAndLength
	case h.chunked && h.minor == 0:
		return errTE10
	}
	if h.minor == 0 && !keepAlive {
		h.connClose = true
	}
	h.upgrade = upgradeToken && hasUpgrade && !h.connClose
	if string(h.method.of(b)) == "CONNECT" {
		return errMethodNotAll
	}
	return h.parseTarget(b)
}

// parseTarget checks the request target and sets path: origin form
// ("/p?q"), asterisk form ("*", OPTIONS only) or absolute form
// ("http://host/p?q", whose path is routed; the Host field still decides the
// host, as the field must equal the authority for a proxy to be sound).
func (h *head) parseTarget(b []byte) error {
	t := h.target.of(b)
	if bytes.IndexByte(t, '#') >= 0 {
		return errTarget // a fragment is never sent
	}
	s := h.target.s
	switch {
	case t[0] == '/':
	case len(t) == 1 && t[0] == '*':
		if string(h.method.of(b)) != "OPTIONS" {
			return errTarget
		}
		h.path = h.target
		return nil
	case len(t) > 7 && asciiEqualFold(t[:7], "http://"):
		auth := t[7:]
		j := bytes.IndexByte(auth, '/')
		if j >= 0 {
			auth = auth[:j]
		}
		if q := bytes.IndexByte(auth, '?'); q >= 0 {
			auth, j = auth[:q], q
		}
		if len(auth) == 0 || !validHost(auth) || bytes.ContainsAny(auth, "@%") {
			return errTarget
		}
		if j < 0 {
			// "http://host" means "/" (RFC 9112 §3.2.2).
			h.path = span{h.target.e, h.target.e}
			return nil
		}
		s += int32(7 + j)
		t = t[7+j:]
		if t[0] == '?' {
			h.path = span{s, s}
			return nil
		}
	default:
		return errTarget
	}
	e := s + int32(len(t))
	if q := bytes.IndexByte(t, '?'); q >= 0 {
		e = s + int32(q)
	}
	h.path = span{s, e}
	if !validEscapes(h.path.of(b)) {
		return badRequest("bad request: malformed percent-encoding in the path")
	}
	return nil
}

// validEscapes reports whether every '%' of p starts a %XX escape.
func validEscapes(p []byte) bool {
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			if i+2 >= len(p) || hexValue(p[i+1]) < 0 || hexValue(p[i+2]) < 0 {
				return false
			}
			i += 2
		}
	}
	return true
}

// connectionTokens reads a Connection value: keep-alive, close, upgrade, and
// the other tokens (field names to drop), which it records in h.conn.
func (h *head) connectionTokens(b []byte, v span) (keepAlive, close, upgrade bool, err error) {
	val := v.of(b)
	for i := 0; i < len(val); {
		for i < len(val) && (val[i] == ' ' || val[i] == '\t' || val[i] == ',') {
			i++
		}
		s := i
		for i < len(val) && tokenChar[val[i]] {
			i++
		}
		if i == s {
			if i < len(val) {
				return false, false, false, badRequest("bad request: malformed Connection")
			}
			break
		}
		tok := val[s:i]
		switch {
		case asciiEqualFold(tok, "close"):
			close = true
		case asciiEqualFold(tok, "keep-alive"):
			keepAlive = true
		case asciiEqualFold(tok, "upgrade"):
			upgrade = true
		default:
			if h.nconn == len(h.conn) {
				return false, false, false, badRequest("bad request: too many Connection options")
			}
			h.conn[h.nconn] = span{v.s + int32(s), v.s + int32(i)}
			h.nconn++
		}
		for i < len(val) && (val[i] == ' ' || val[i] == '\t') {
			i++
		}
		if i < len(val) && val[i] != ',' {
			return false, false, false, badRequest("bad request: malformed Connection")
		}
	}
	return keepAlive, close, upgrade, nil
}

// parseLength reads a Content-Length value: digits only, no sign, no list, no
// overflow of int64.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func validHost(v []byte) bool {
	for _, c := range v {
		if !hostChar[c] {
			return false
		}
	}
	return true
}

// asciiEqualFold compares b with s (lower-case ASCII) ignoring ASCII case.
func asciiEqualFold(b []byte, s string) bool { return fieldIs(b, s) }

// Errors of a response head: the server's fault, answered 502.
var errBadResponse = errors.New("malformed response head")

// parseResponse parses a response head in b (its length from headEnd). It reads
// the head's own framing only: what the request changes (no body after HEAD, a
// 101's tunnel) is the relay's to apply.
func parseResponse(b []byte, h *head) error {
	h.reset()
	h.size = len(b)
	if len(b) < 14 || string(b[:7]) != "HTTP/1." || (b[7] != '0' && b[7] != '1') || b[8] != ' ' {
		return errBadResponse
	}
	h.minor = int(b[7] - '0')
	st := 0
	for _, c := range b[9:12] {
		if c < '0' || c > '9' {
			return errBadResponse
		}
		st = st*10 + int(c-'0')
	}
	if st < 100 {
		return errBadResponse
	}
	h.status = st
	i := 12
	switch b[i] {
	case ' ':
		i++
	case '\r':
	default:
		return errBadResponse
	}
	rs := i
	for i < len(b) && valueChar[b[i]] {
		i++
	}
	if i+1 >= len(b) || b[i] != '\r' || b[i+1] != '\n' {
		return errBadResponse
	}
	h.reason = span{int32(rs), int32(i)}
	if err := h.parseFields(b, i+2); err != nil {
		return errBadResponse
	}
	tes := 0
	keepAlive := false
	for k := 0; k < h.n; k++ {
		f := &h.fields[k]
		name, val := f.name.of(b), f.value.of(b)
		switch {
		case len(name) == 14 && fieldIs(name, "content-length"):
			n, ok := parseLength(val)
			if !ok || (h.contentLength >= 0 && n != h.contentLength) {
				return errBadResponse
			}
			h.contentLength = n
		case len(name) == 17 && fieldIs(name, "transfer-encoding"):
			tes++
			if tes > 1 || !asciiEqualFold(val, "chunked") {
				return errBadResponse
			}
			h.chunked = true
		case len(name) == 10 && fieldIs(name, "connection"):
			ka, cl, _, err := h.connectionTokens(b, f.value)
			if err != nil {
				return errBadResponse
			}
			keepAlive, h.connClose = keepAlive || ka, h.connClose || cl
		}
	}
	if h.chunked && h.contentLength >= 0 {
		return errBadResponse // RFC 9112 §6.3: a smuggling attempt; refuse it
	}
	if h.minor == 0 && !keepAlive {
		h.connClose = true
	}
	return nil
}
