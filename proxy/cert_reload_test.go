package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// streamServer answers /service1/stream with a first line at once and the last only
// when release is closed; other paths get "ok".
func streamServer(t *testing.T, release <-chan struct{}) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/service1/stream" {
			io.WriteString(w, "ok")
			return
		}
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "last\n")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// tlsConfigFile is a proxy configuration on 127.0.0.1 port 0 with the TLS listener
// and the given certificate entries and services.
func tlsConfigFile(p *pki, certs, services string) string {
	return p.write("proxy.yaml", []byte("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\naccess_log: false\nlisten_tls: \"127.0.0.1:0\"\n"+
		"certificates: "+certs+"\nservices:\n"+services))
}

func TestCertificateReloadKeepsOpenStreams(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	first, firstSerial := p.issue("site.pem", "site.test", "127.0.0.1")
	release := make(chan struct{})
	services := fmt.Sprintf("  service1:\n    servers: %q\n", streamServer(t, release))
	path := tlsConfigFile(p, fmt.Sprintf("[%q]", first), services)
	logs := &proc.Buffer{}
	app, reload := startAppFile(t, path, logs)
	addr := app.addr("listen_tls")

	// A stream open over HTTP/2 with the first certificate.
	c := p.client(t)
	resp, err := c.Get("https://" + addr + "/service1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "first\n" || resp.Proto != "HTTP/2.0" {
		t.Fatalf("the stream's first line: got %q, %v over %s, want first over HTTP/2.0", line, err, resp.Proto)
	}

	// The certificate file is replaced and the proxy reloaded (SIGHUP).
	_, secondSerial := p.issue("site.pem", "site.test", "127.0.0.1")
	reload <- os.Interrupt
	eventually(t, "a new connection gets the new certificate", func() bool {
		return p.peerSerial(t, addr, "site.test").Cmp(secondSerial) == 0
	})

	// The open stream finishes whole, on its connection with the first certificate,
	// and that connection still takes new requests.
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "last\n" {
		t.Errorf("the rest of the open stream: got %q, %v, want last", rest, err)
	}
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(firstSerial) != 0 {
		t.Errorf("the open stream's connection: serial %v, want the first certificate's", got)
	}
	again, body := clientGet(t, c, "https://"+addr+"/service1/other", nil)
	if body != "ok" || again.TLS.PeerCertificates[0].SerialNumber.Cmp(firstSerial) != 0 {
		t.Errorf("a new stream on the old connection: got %q with serial %v, want ok on the first certificate's connection",
			body, again.TLS.PeerCertificates[0].SerialNumber)
	}
	if !strings.Contains(logs.String(), "certificates reloaded") {
		t.Errorf("the log does not say the certificates were reloaded:\n%s", logs)
	}
}

func TestBadCertificateIsRefusedNamingTheFile(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	good, _ := p.issue("good.pem", "site.test")
	other, _ := p.issue("other.pem", "other.test")
	goodKey := p.write("good.key", mustRead(t, good)) // holds the cert and key; only the key is read from it
	bad := []struct {
		name  string
		certs string // the certificates: value
		want  []string
	}{
		{"a missing file", fmt.Sprintf("[%q]", p.dir+"/missing.pem"), []string{"proxy.yaml:5: ", "missing.pem", "no such file"}},
		{"a key that is not the certificate's", fmt.Sprintf("[{cert: %q, key: %q}]", other, goodKey),
			[]string{"proxy.yaml:5: ", "other.pem and", "good.key", "does not belong to the certificate"}},
		{"a file that is not PEM", fmt.Sprintf("[%q]", p.write("junk.pem", []byte("not a certificate\n"))),
			[]string{"proxy.yaml:5: ", "junk.pem", "no PEM certificate found"}},
	}
	services := "  service1:\n    servers: \"127.0.0.1:1\"\n"
	for _, c := range bad {
		t.Run(c.name+" fails -check with exit 2", func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "proxy.yaml")
			os.WriteFile(path, []byte("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\naccess_log: false\nlisten_tls: \"127.0.0.1:0\"\ncertificates: "+c.certs+"\nservices:\n"+services), 0o600)
			var out strings.Builder
			err := runReloading(context.Background(), []string{"-config", path, "-check"}, func(string) string { return "" }, &out, io.Discard, nil)
			if code := cli.ExitCode(err, nil); code != cli.ExitUsage {
				t.Fatalf("-check: got exit %d (%v), want %d", code, err, cli.ExitUsage)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), strings.Replace(w, "proxy.yaml", path, 1)) {
					t.Errorf("-check says %q, want it to contain %q", err, w)
				}
			}
			// The proxy itself refuses to start on it, with the same message.
			err = runReloading(context.Background(), []string{"-config", path}, func(string) string { return "" }, io.Discard, io.Discard, nil)
			if code := cli.ExitCode(err, nil); code != cli.ExitUsage || !strings.Contains(err.Error(), c.want[1]) {
				t.Errorf("start: got exit %d (%v), want %d naming %s", code, err, cli.ExitUsage, c.want[1])
			}
		})
	}

	t.Run("a reload onto a bad certificate changes nothing", func(t *testing.T) {
		t.Parallel()
		q := newPKI(t)
		site, serial := q.issue("site.pem", "site.test")
		services := fmt.Sprintf("  service1:\n    servers: %q\n", startCountServer(t, "s", "127.0.0.1:0").addr)
		path := tlsConfigFile(q, fmt.Sprintf("[%q]", site), services)
		logs := &proc.Buffer{}
		app, reload := startAppFile(t, path, logs)
		for _, c := range bad {
			// The file also adds a service: a reload that fails must not add it.
			tlsConfigFile(q, c.certs, services+"  service2:\n    servers: \"127.0.0.1:2\"\n")
			reload <- os.Interrupt
			eventually(t, "the reload fails", func() bool { return strings.Contains(logs.String(), c.want[1]) })
			if got := q.peerSerial(t, app.addr("listen_tls"), "site.test"); got.Cmp(serial) != 0 {
				t.Errorf("%s: a new connection got serial %v, want the running certificate's", c.name, got)
			}
			if n := len(app.handler.Table().Services()); n != 1 {
				t.Errorf("%s: %d services after the failed reload, want 1 (nothing changed)", c.name, n)
			}
		}
		if !strings.Contains(logs.String(), "keeping the running configuration and certificates") {
			t.Errorf("the log does not say the reload kept what runs:\n%s", logs)
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
