package forward

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

var testIDs = backend.NewIDs([]byte("forward test key"))

func TestNoCacheMergesCacheControl(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "private"},
		{"public, max-age=60", "max-age=60, private"},
		{"no-cache", "no-cache, private"},
		{"private, max-age=0", "private, max-age=0"},
		{`private="set-cookie", s-maxage=10`, "private, s-maxage=10"},
	}
	for _, tt := range tests {
		var in []string
		if tt.in != "" {
			in = []string{tt.in}
		}
		if got := privateCache(in); got != tt.want {
			t.Errorf("privateCache(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// cannedTransport answers every attempt at once, without a network: it
// isolates the proxy's own cost per request.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Request: req, ContentLength: 2,
		Header: http.Header{"Content-Type": {"text/plain"}, "Set-Cookie": {"connect.sid=s%3Anew.sig; Path=/service1; HttpOnly"}},
		Body:   io.NopCloser(strings.NewReader("ok")),
	}, nil
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header { return d.h }

func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func (d *discardWriter) WriteHeader(int) {}

func (d *discardWriter) Flush() {}

// BenchmarkHandlerStickyHit is the proxy's own work for a sticky request:
// route, strip, pick, ReverseProxy, prefix the Set-Cookie, count.
func BenchmarkHandlerStickyHit(b *testing.B) {
	pool := backend.NewPool(testIDs, backend.RoundRobin)
	pool.Update([]string{"10.0.0.1:8080", "10.0.0.2:8080"})
	id := pool.Backends()[0].ID()
	h := NewHandler(Options{Transport: cannedTransport{}})
	tb, _ := NewTable([]*Service{{Name: "service1", VirtualHost: "*/service1, */service1/*", Sticky: sticky.Rule{Name: "connect.sid", NoCache: true}, Retries: 3, Pool: pool}})
	h.SetTable(tb)
	req := httptest.NewRequest("GET", "http://localhost/service1", nil)
	req.Header.Set("Cookie", "_ga=GA1.1.1; connect.sid="+id+"~s%3Aabc.def; theme=dark")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}
