package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

var headSeeds = []string{
	"GET /service1 HTTP/1.1\r\nHost: a\r\nCookie: connect.sid=abc~s%3Ax\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET http://a/b?c HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a%2Fb%41?c%zz HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, x\r\nX: 1\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
}

// FuzzRequestHead checks the parser never panics, that an accepted head's
// parts all lie inside it, and that its path decodes for routing (which
// trusts the parser to have refused a malformed escape).
func FuzzRequestHead(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parse(string(b))
		if err != nil {
			return // incomplete or refused: only what is accepted is checked
		}
		in := func(p span) bool { return 0 <= p.s && p.s <= p.e && int(p.e) <= n }
		if !in(h.method) || !in(h.target) || !in(h.path) {
			t.Fatalf("request line spans out of the head: %+v", h)
		}
		for _, f := range h.fields[:h.n] {
			if !in(f.name) || !in(f.value) || f.name.len() == 0 {
				t.Fatalf("field spans out of the head: %+v", f)
			}
		}
		new(conn).routingPath(h.path.of(b))
	})
}

// FuzzRequestHeadAgainstNetHTTP is a differential test: whatever the engine
// accepts, net/http's reader must accept too, and read the same method, target,
// version, Host, framing and keep-alive. The engine may refuse more (bare LF,
// obs-fold, TE on HTTP/1.0... which net/http tolerates): that is the point.
func FuzzRequestHeadAgainstNetHTTP(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parse(string(b))
		if err != nil {
			return // incomplete or refused: only what is accepted is checked
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:n])))
		if err != nil {
			t.Fatalf("the engine accepts what net/http refuses (%v):\n%q", err, b[:n])
		}
		head := b[:n]
		if got, want := string(h.method.of(head)), r.Method; got != want {
			t.Errorf("method %q, net/http %q", got, want)
		}
		if got, want := string(h.target.of(head)), r.RequestURI; got != want {
			t.Errorf("target %q, net/http %q", got, want)
		}
		if h.minor != r.ProtoMinor || r.ProtoMajor != 1 {
			t.Errorf("HTTP/1.%d, net/http %s", h.minor, r.Proto)
		}
		if h.host >= 0 && r.URL.Host == "" {
			if got := string(h.fields[h.host].value.of(head)); got != r.Host {
				t.Errorf("host %q, net/http %q", got, r.Host)
			}
		}
		chunked := len(r.TransferEncoding) == 1 && r.TransferEncoding[0] == "chunked"
		if h.chunked != chunked {
			t.Errorf("chunked %v, net/http %v", h.chunked, r.TransferEncoding)
		}
		if !h.chunked && max(h.contentLength, 0) != r.ContentLength {
			t.Errorf("length %d, net/http %d", h.contentLength, r.ContentLength)
		}
		if h.connClose != r.Close {
			t.Errorf("close %v, net/http %v", h.connClose, r.Close)
		}
	})
}

// FuzzChunkedAgainstNetHTTP: a chunked body the engine lets through whole,
// net/http's chunked reader reads whole too.
func FuzzChunkedAgainstNetHTTP(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c chunked
		n, done, err := c.scan(b)
		if err != nil || !done {
			return
		}
		raw := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + string(b[:n])
		r, rerr := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if rerr != nil {
			t.Fatalf("net/http refuses the head: %v", rerr)
		}
		if _, rerr := io.ReadAll(r.Body); rerr != nil {
			t.Fatalf("the engine passes a chunked body net/http refuses (%v): %q", rerr, b[:n])
		}
	})
}
