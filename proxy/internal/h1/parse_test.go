package h1

import (
	"errors"
	"strings"
	"testing"
)

// errIncomplete means the head has not fully arrived (parse's headEnd found no
// end).
var errIncomplete = errors.New("incomplete head")

// parse runs headEnd and parseRequest over raw as the connection does.
func parse(raw string) (*head, int, error) {
	b := []byte(raw)
	n, _ := headEnd(b, 0)
	if n == 0 {
		return nil, 0, errIncomplete
	}
	h := new(head)
	return h, n, parseRequest(b[:n], h)
}

func statusOf(err error) int {
	if err == nil {
		return 0
	}
	if se, ok := err.(*statusError); ok {
		return se.status
	}
	return -1
}

func TestRequestHeadsAreCheckedBeforeAnythingIsForwarded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		status    int // 0: accepted
	}{
		{"a plain GET is accepted", "GET /service1 HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"HTTP/1.0 without Host is accepted", "GET / HTTP/1.0\r\n\r\n", 0},
		{"an absolute-form target is accepted", "GET http://a/service1?x HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"OPTIONS * is accepted", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"identical Content-Length twice is accepted", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 0},
		{"chunked is accepted", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0},

		{"CL and TE together are refused", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"two different Content-Length are refused", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
		{"a Content-Length list is refused", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", 400},
		{"an overflowing Content-Length is refused", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
		{"a signed Content-Length is refused", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400},
		{"an empty Content-Length is refused", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400},
		{"gzip transfer coding is not implemented", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"chunked not last is not implemented", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501},
		{"a duplicate Transfer-Encoding is refused", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE on HTTP/1.0 is refused", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"an obs-fold line is refused", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400},
		{"a bare LF ends no line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
		{"a bare LF in a field is refused", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\n\r\n", 400},
		{"a bare CR in a value is refused", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r2\r\n\r\n", 400},
		{"a NUL in a value is refused", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\x002\r\n\r\n", 400},
		{"a NUL in a name is refused", "GET / HTTP/1.1\r\nHost: a\r\nX\x00: 1\r\n\r\n", 400},
		{"a space before the colon is refused", "GET / HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n", 400},
		{"a line without a colon is refused", "GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", 400},
		{"a missing Host on HTTP/1.1 is refused", "GET / HTTP/1.1\r\n\r\n", 400},
		{"an empty Host on HTTP/1.1 is refused", "GET / HTTP/1.1\r\nHost: \r\n\r\n", 400},
		{"a duplicate Host is refused", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"a Host with a space is refused", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"HTTP/2.0 is not supported", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"HTTP/1.2 is not supported", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
		{"the h2 preface is not supported", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"a lower-case version is malformed", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
		{"two spaces in the request line are malformed", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"a target with a fragment is refused", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"a target not starting with / is refused", "GET a HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"a malformed escape in the path is refused", "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"an escape cut by the query is refused", "GET /a%4?1 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"an escape cut at the end of an absolute-form path is refused", "GET http://a/b%4 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"a malformed escape in the query is the server's business", "GET /a?%zz HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"CONNECT is not allowed", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405},
		{"an unknown expectation fails", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417},
		{"a control in the method is refused", "G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"102 fields are too many", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: 1\r\n", 101) + "\r\n", 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := parse(tt.raw)
			if got := statusOf(err); got != tt.status {
				t.Errorf("got status %d (%v), want %d", got, err, tt.status)
			}
		})
	}
}

func TestRequestHeadFields(t *testing.T) {
	t.Parallel()
	raw := "POST /svc/a%20b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n" +
		"Content-Length: 12\r\nX-Forwarded-For: 1.2.3.4\r\nCookie:  a=1 \t\r\n\r\nbody"
	h, n, err := parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte(raw)
	checks := []struct{ what, got, want string }{
		{"method", string(h.method.of(b)), "POST"},
		{"target", string(h.target.of(b)), "/svc/a%20b?q=1"},
		{"path", string(h.path.of(b)), "/svc/a%20b"},
		{"host", string(h.fields[h.host].value.of(b)), "example.com:8080"},
		{"cookie value trimmed", string(h.fields[5].value.of(b)), "a=1"},
		{"connection option", string(h.conn[0].of(b)), "X-Hop"},
		{"head length", raw[:n], raw[:len(raw)-4]},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
		}
	}
	if h.contentLength != 12 || h.chunked || h.connClose || h.nconn != 1 || h.xffLast != 4 {
		t.Errorf("got length %d chunked %v close %v options %d xff %d", h.contentLength, h.chunked, h.connClose, h.nconn, h.xffLast)
	}
}

func TestKeepAliveFollowsTheVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw   string
		close bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true},
		{"GET / HTTP/1.0\r\n\r\n", true},
		{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", false},
	}
	for _, tt := range tests {
		h, _, err := parse(tt.raw)
		if err != nil || h.connClose != tt.close {
			t.Errorf("%q: close %v (%v), want %v", tt.raw, h.connClose, err, tt.close)
		}
	}
}

func TestHeadEndWaitsForCRLFCRLFAndFailsFastOnBareLF(t *testing.T) {
	t.Parallel()
	full := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	resume := 0
	for i := 1; i < len(full); i++ {
		var n int
		n, resume = headEnd([]byte(full[:i]), resume)
		if n != 0 {
			t.Fatalf("after %d bytes: head end %d, want none yet", i, n)
		}
	}
	if n, _ := headEnd([]byte(full), resume); n != len(full) {
		t.Errorf("whole head: got %d, want %d", n, len(full))
	}
	if n, _ := headEnd([]byte("GET / HTTP/1.1\nHost"), 0); n == 0 {
		t.Error("a bare LF: want the head handed to the parser at once (it refuses it), got a wait")
	}
}

func TestResponseHeads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		ok        bool
		length    int64
		chunked   bool
		close     bool
	}{
		{"a length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, 5, false, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, -1, true, false},
		{"no reason phrase", "HTTP/1.1 204\r\n\r\n", true, -1, false, false},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\n\r\n", true, -1, false, true},
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", true, -1, false, true},
		{"CL and TE together", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false, 0, false, false},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", false, 0, false, false},
		{"a gzip coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, 0, false, false},
		{"a two-digit status", "HTTP/1.1 20 OK\r\n\r\n", false, 0, false, false},
		{"not HTTP", "SSH-2.0-x\r\n\r\n", false, 0, false, false},
		{"a control in a value", "HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n", false, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var h head
			err := parseResponse([]byte(tt.raw), &h)
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok %v", err, tt.ok)
			}
			if tt.ok && (h.contentLength != tt.length || h.chunked != tt.chunked || h.connClose != tt.close) {
				t.Errorf("got length %d chunked %v close %v", h.contentLength, h.chunked, h.connClose)
			}
		})
	}
}

func TestChunkedBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", true},
		{"upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n", true},
		{"an extension", "5;name=value\r\nhello\r\n0\r\n\r\n", true},
		{"a quoted extension", "5;n=\"a;b\"\r\nhello\r\n0\r\n\r\n", true},
		{"two extensions", "5;a;b=c\r\nhello\r\n0\r\n\r\n", true},
		{"a trailer", "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", true},
		{"bad hex", "g\r\nhello\r\n0\r\n\r\n", false},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", false},
		{"an empty size", "\r\nhello\r\n0\r\n\r\n", false},
		{"an overflowing size", "10000000000000000\r\n", false},
		{"a bare LF size line", "5\nhello\r\n0\r\n\r\n", false},
		{"a blank before the extension", "5 ;a\r\nhello\r\n0\r\n\r\n", false},
		{"an empty extension", "5;\r\nhello\r\n0\r\n\r\n", false},
		{"too much data", "5\r\nhello!\r\n0\r\n\r\n", false},
		{"no CRLF after data", "5\r\nhelloX0\r\n\r\n", false},
		{"a bad trailer", "5\r\nhello\r\n0\r\nX y\r\n\r\n", false},
		{"an endless extension", "5;" + strings.Repeat("a", maxChunkLine) + "\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Whole, and one byte at a time: the same verdict.
			for _, step := range []int{len(tt.body), 1} {
				var c chunked
				done, bad := false, false
				for i := 0; i < len(tt.body) && !done && !bad; i += step {
					n, d, err := c.scan([]byte(tt.body[i:min(i+step, len(tt.body))]))
					bad, done = err != nil, d
					if d && i+n != len(tt.body) {
						t.Errorf("step %d: body ended at %d, want %d", step, i+n, len(tt.body))
					}
				}
				if ok := done && !bad; ok != tt.ok {
					t.Errorf("step %d: got ok %v (done %v, bad %v), want %v", step, ok, done, bad, tt.ok)
				}
			}
		})
	}
}
