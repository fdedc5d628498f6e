package forward

import (
	"bytes"
	"net/url"
	"testing"
)

func TestHTTPSLocation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, host, target string
		port               int
		want               string // "" for a refusal
	}{
		{"path and query are kept", "example.test", "/service1/a?b=1&c", 443, "https://example.test/service1/a?b=1&c"},
		{"the cleartext port goes", "example.test:8080", "/service1", 443, "https://example.test/service1"},
		{"another HTTPS port is written", "localhost:8080", "/service1?x", 8443, "https://localhost:8443/service1?x"},
		{"an IPv4 address", "127.0.0.1:80", "/", 443, "https://127.0.0.1/"},
		{"an IPv6 address keeps its brackets", "[::1]:8080", "/p", 8443, "https://[::1]:8443/p"},
		{"an absolute-form target gives its path", "example.test", "http://example.test/p?q", 443, "https://example.test/p?q"},
		{"an absolute-form target without a path", "example.test", "http://example.test?q", 443, "https://example.test/?q"},
		{"percent-encoding passes as sent", "example.test", "/a%20b?c=%3C", 443, "https://example.test/a%20b?c=%3C"},
		{"no Host", "", "/", 443, ""},
		{"a Host with a path", "evil.test/x", "/", 443, ""},
		{"a Host with user info", "user@evil.test", "/", 443, ""},
		{"a Host with a bad port", "example.test:80x", "/", 443, ""},
		{"a Host with CRLF", "example.test\r\nSet-Cookie: a=b", "/", 443, ""},
		{"a target with CRLF", "example.test", "/a\r\nSet-Cookie: a=b", 443, ""},
		{"an unclosed IPv6 bracket", "[::1", "/", 443, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, ok := AppendHTTPSLocation([]byte("Location: "), []byte(c.host), []byte(c.target), c.port)
			if c.want == "" {
				if ok || string(got) != "Location: " {
					t.Errorf("got %q, %v, want a refusal with dst unchanged", got, ok)
				}
				return
			}
			if !ok || string(got) != "Location: "+c.want {
				t.Errorf("got %q, %v, want %q", got, ok, "Location: "+c.want)
			}
		})
	}
}

func TestHSTSHeader(t *testing.T) {
	t.Parallel()
	if got := HSTSHeader(31536000); got != "max-age=31536000" {
		t.Errorf("got %q, want max-age=31536000", got)
	}
	if got := HSTSHeader(0); got != "" {
		t.Errorf("0: got %q, want none", got)
	}
}

func FuzzHTTPSLocation(f *testing.F) {
	f.Add([]byte("example.test:8080"), []byte("/service1?a=1"))
	f.Add([]byte("[::1]:80"), []byte("http://h/p"))
	f.Add([]byte("a\r\nb"), []byte("*"))
	f.Fuzz(func(t *testing.T, host, target []byte) {
		got, ok := AppendHTTPSLocation(nil, host, target, 8443)
		if !ok {
			if len(got) != 0 {
				t.Fatalf("refused but wrote %q", got)
			}
			return
		}
		if bytes.ContainsAny(got, "\r\n \x00") {
			t.Fatalf("Location %q holds a control character or space", got)
		}
		u, err := url.Parse(string(got))
		if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "8443" {
			t.Fatalf("Location %q: parsed %+v, %v; want https, no user info, port 8443", got, u, err)
		}
	})
}
