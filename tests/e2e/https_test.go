package e2e

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/browser"
)

// stackState reads the "KEY VALUE" lines of stack.txt that make run wrote.
func stackState(t *testing.T, runDir string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(runDir, "stack.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	state := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok {
			state[k] = v
		}
	}
	return state
}

// TestMakeRunTLS runs `make run TLS=1` as the README says and visits it over HTTPS
// as a browser would, trusting the self-signed certificate it wrote: HTTP/2, and the
// same sticky count as over http.
func TestMakeRunTLS(t *testing.T) {
	r := makeRunUp(t, []string{"PORT", "ADMIN_PORT", "TLS_PORT"}, "TLS=1")
	tlsPort, runDir := r.port["TLS_PORT"], r.dir
	state := stackState(t, runDir)
	base, cert := state["tls"], state["cert"]
	if base != fmt.Sprintf("https://127.0.0.1:%d", tlsPort) || cert != filepath.Join(runDir, "tls.pem") {
		t.Fatalf("stack.txt: tls %q cert %q, want https://127.0.0.1:%d and %s", base, cert, tlsPort, filepath.Join(runDir, "tls.pem"))
	}
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", cert)
	}
	u, _ := url.Parse(base)
	b := browser.New(browser.Options{Transport: browser.TLSTransport(roots, u.Host)})
	t.Cleanup(b.CloseIdleConnections)
	site := "https://localhost:" + u.Port()
	for n := 1; n <= 3; n++ {
		a, resp, err := b.Page(context.Background(), site+"/service1")
		if err != nil {
			t.Fatalf("visit %d over https: %v", n, err)
		}
		if a.Visits != n || resp.Proto != "HTTP/2.0" {
			t.Fatalf("visit %d over https: got visits %d over %s, want %d over HTTP/2.0", n, a.Visits, resp.Proto, n)
		}
	}
	// curl, as the banner says: OpenSSL accepts the self-signed certificate as its CA.
	if _, err := exec.LookPath("curl"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := exec.CommandContext(ctx, "curl", "-sS", "--cacert", cert, "--connect-to", "localhost:"+u.Port()+":"+u.Host,
			"-o", "/dev/null", "-w", "%{http_code} %{http_version}", site+"/service2").CombinedOutput()
		if err != nil || string(got) != "200 2" {
			t.Errorf("curl --cacert %s %s/service2: got %q, %v, want 200 over HTTP/2", cert, site, got, err)
		}
	} else {
		t.Log("no curl on PATH: the curl check is skipped (CI installs curl)")
	}
	ctrlC(t, r)
	waitGone(t, r.pids, r.out)
}
