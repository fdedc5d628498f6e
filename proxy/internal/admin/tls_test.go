package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/certs"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
)

func TestTLSStatsInEveryShape(t *testing.T) {
	t.Parallel()
	tb, err := forward.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	tlsStats := &TLSStats{Listen: "127.0.0.1:8443", Engine: "std", Handshakes: TLSHandshakes{H2: 5, HTTP1: 2, Resumed: 3},
		Certificates: []certs.Entry{{Files: "/run/secrets/<site>.pem", Names: []string{"site.test"}, Subject: "site.test",
			NotAfter: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), Default: true}}}
	srv := httptest.NewServer(NewHandler(Options{Table: func() *forward.Table { return tb }, TLS: func() *TLSStats { return tlsStats }}))
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		name, path string
		want       []string
	}{
		{"the text has a tls line after the proxy's", "/stats?format=text", []string{"\ntls listen 127.0.0.1:8443 engine std h2 5 http1 2 resumed 3 certificates 1\n"}},
		{"the JSON has a tls part", "/stats?format=json", []string{`"tls": {`, `"h2": 5`, `"resumed": 3`, `"files": "/run/secrets/\u003csite\u003e.pem"`, `"not_after": "2027-03-01T00:00:00Z"`}},
		{"the page lists the certificates, escaped", "/stats", []string{"<h2>https</h2>", "/run/secrets/&lt;site&gt;.pem", "2027-03-01", "5 h2 and 2 http/1.1 handshakes, 3 resumed"}},
		{"the metrics count handshakes and show expiry", "/metrics", []string{`proxy_tls_handshakes_total{protocol="h2"} 5`, `proxy_tls_handshakes_total{protocol="http/1.1"} 2`,
			"proxy_tls_resumed_total 3", `proxy_tls_certificate_not_after_seconds{certificate="/run/secrets/<site>.pem",subject="site.test"} 1.8038592e+09`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			resp, err := http.Get(srv.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, w := range c.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s lacks %q:\n%s", c.path, w, b)
				}
			}
		})
	}
}
