package swarm

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/browser"
)

// newTLSVisitor is a browser on the stack's HTTPS port, trusting the certificate `make
// stack-deploy TLS=1` wrote (self-signed, for localhost), asking for
// https://localhost:<tls port>; HTTP/2 when offered.
func (s *stack) newTLSVisitor(t *testing.T) *visitor {
	t.Helper()
	cert := filepath.Join(s.root, "stack", "secrets", "tls.pem")
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatalf("make stack-deploy TLS=1 should have written %s: %v", cert, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", cert)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := browser.TLSTransport(roots, fmt.Sprintf("127.0.0.1:%d", s.tlsPort))
	t.Cleanup(tr.CloseIdleConnections)
	return &visitor{s: s, jar: jar, client: &http.Client{Jar: jar, Timeout: 5 * time.Second, Transport: tr},
		base: fmt.Sprintf("https://localhost:%d", s.tlsPort)}
}

// testStickyHTTPS runs the sticky checks over the HTTPS port: HTTP/2 negotiated, the
// replica told the request came over https.
func testStickyHTTPS(t *testing.T, s *stack) {
	v := s.newTLSVisitor(t)
	resp, err := v.client.Get(v.base + "/service2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("https://localhost:%d: got %s, want HTTP/2.0", s.tlsPort, resp.Proto)
	}
	checkSticky(t, v)
	if p := v.mustGet(t, "/service1"); p.Headers["x-forwarded-proto"] != "https" {
		t.Errorf("service1 received X-Forwarded-Proto %q, want https", p.Headers["x-forwarded-proto"])
	}
}
