package main

import (
	"crypto/tls"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/certgen"
	"github.com/swarm-affinity/swarm-affinity/internal/cli"
)

// pki is a test's own CA and the certificate files it issued, in a temporary folder.
type pki struct {
	t   *testing.T
	ca  *certgen.CA
	dir string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := certgen.NewCA("proxy test CA", certgen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &pki{t: t, ca: ca, dir: t.TempDir()}
}

// issue writes a combined PEM file (certificate and key) for names and returns its
// path and its certificate's serial number.
func (p *pki) issue(file string, names ...string) (string, *big.Int) {
	p.t.Helper()
	c, err := p.ca.Issue(certgen.Options{}, names...)
	if err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(p.dir, file)
	if err := certgen.WriteFile(path, c.PEM()); err != nil {
		p.t.Fatal(err)
	}
	return path, c.Leaf.SerialNumber
}

// write puts data in the folder as file and returns its path.
func (p *pki) write(file string, data []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, file)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// client is an HTTP client trusting the test CA, HTTP/2 over TLS when offered, with its
// own cookie jar and connections: one browser that visits both the http and the https
// URLs of a proxy on 127.0.0.1 (the certificate names 127.0.0.1).
func (p *pki) client(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{Proxy: nil, ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool()}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Jar: jar, Timeout: 10 * time.Second}
}

// peerSerial is the serial number of the certificate the TLS listener at addr sends
// for serverName, on a new connection.
func (p *pki) peerSerial(t *testing.T, addr, serverName string) *big.Int {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.ca.Pool(), ServerName: serverName})
	if err != nil {
		t.Fatalf("TLS to %s as %q: %v", addr, serverName, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// clientGet does a GET with c and returns the answer with its body read.
func clientGet(t *testing.T, c *http.Client, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp, string(body)
}

// startAppFile runs the proxy of the configuration file path, as the binary does
// (settings.loadConfig, so CheckTLS and the environment's overrides apply), until the
// test ends. A value sent on the returned channel reloads it, as SIGHUP does.
func startAppFile(t *testing.T, path string, logs io.Writer) (*app, chan<- os.Signal) {
	t.Helper()
	set := testSettings
	set.configFile = path
	cfg, err := set.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(set, cfg, cli.Log{Format: "text", Level: -4}.New(logs), nil)
	reload := make(chan os.Signal)
	serveApp(t, a, reload)
	return a, reload
}
