package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// stickyModes are the sticky cookie settings the HTTPS tests run with: each must keep a
// visitor on one replica over HTTP/2 exactly as over HTTP/1.1. A mode added to the
// proxy gets a row here.
var stickyModes = []struct {
	name   string
	cookie string // the service's cookie: setting
	// held is the cookie the client holds, and id gives the server id in its value.
	held string
	id   func(value string) (string, bool)
}{
	{"prefix", "connect.sid prefix nocache", "connect.sid", func(v string) (string, bool) {
		id, _, ok := strings.Cut(v, "~")
		return id, ok
	}},
}

func TestHTTPSStickyOverHTTP2AndHTTP1(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		for _, mode := range stickyModes {
			t.Run(mode.name, func(t *testing.T) {
				p := newPKI(t)
				cert, _ := p.issue("site.pem", "site.test", "127.0.0.1")
				a, b := startCountServer(t, "a", "127.0.0.1:0"), startCountServer(t, "b", "127.0.0.1:0")
				app, front, adm := startApp(t, engine, fmt.Sprintf(`listen_tls: "127.0.0.1:0"
certificates: [%q]
services:
  service1:
    servers: "%s, %s"
    cookie: %q
`, cert, a.addr, b.addr, mode.cookie), nil)
				secure := "https://" + app.addr("listen_tls")
				for _, proto := range []struct {
					name string
					h2   bool
				}{{"HTTP/2.0", true}, {"HTTP/1.1", false}} {
					t.Run("over "+proto.name, func(t *testing.T) {
						c := p.client(t)
						if !proto.h2 {
							c.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
							c.Transport.(*http.Transport).ForceAttemptHTTP2 = false
						}
						resp, body := clientGet(t, c, secure+"/service1", nil)
						if resp.Proto != proto.name {
							t.Fatalf("protocol: got %s, want %s", resp.Proto, proto.name)
						}
						name, _, _ := strings.Cut(body, " ")
						if body != name+" 1" {
							t.Fatalf("first visit: got %q, want <replica> 1", body)
						}
						var held string
						for _, ck := range c.Jar.Cookies(resp.Request.URL) {
							if ck.Name == mode.held {
								held = ck.Value
							}
						}
						if _, ok := mode.id(held); !ok {
							t.Fatalf("cookie %s: got %q, want one holding a server id", mode.held, held)
						}
						for i := 2; i <= 4; i++ {
							if _, body := clientGet(t, c, secure+"/service1", nil); body != fmt.Sprintf("%s %d", name, i) {
								t.Fatalf("visit %d over %s: got %q, want %s %d", i, proto.name, body, name, i)
							}
						}
						// The same cookie over the cleartext listener reaches the same
						// replica: one table, one set of server ids for both listeners.
						if _, body := clientGet(t, c, front+"/service1", nil); body != name+" 5" {
							t.Errorf("the same visitor over http: got %q, want %s 5", body, name)
						}
						srv := a
						if name == "b" {
							srv = b
						}
						h := srv.header()
						if got := h.Get("X-Forwarded-Proto"); got != "http" {
							t.Errorf("X-Forwarded-Proto of the http visit: got %q, want http", got)
						}
						if id, _ := mode.id(held); strings.Contains(h.Get("Cookie"), id+"~") {
							t.Errorf("the replica got Cookie %q, want the server id taken off", h.Get("Cookie"))
						}
						clientGet(t, c, secure+"/service1", nil)
						if got := srv.header().Get("X-Forwarded-Proto"); got != "https" {
							t.Errorf("X-Forwarded-Proto over %s: got %q, want https", proto.name, got)
						}
					})
				}
				st := stats(t, adm)
				if st.TLS == nil || st.TLS.Handshakes.H2 < 1 || st.TLS.Handshakes.HTTP1 < 1 || st.TLS.Engine != "std" {
					t.Errorf("stats tls %+v, want h2 and http/1.1 handshakes counted on the std engine", st.TLS)
				}
				// 2 visitors x 6 visits, 4 of the HTTP/2 one's on h2: all in the counters.
				if s := st.Services[0].Sticky; s.Hits != 10 || s.New != 2 {
					t.Errorf("service1 sticky %+v, want 10 hits and 2 new (h2 requests counted with the rest)", s)
				}
				metrics := scrape(t, adm)
				for _, want := range []string{`proxy_sticky_total{outcome="hit",service="service1"} 10`,
					`proxy_tls_handshakes_total{protocol="h2"} `, `proxy_tls_certificate_not_after_seconds{certificate="` + cert + `"`} {
					if !strings.Contains(metrics, want) {
						t.Errorf("/metrics lacks %q", want)
					}
				}
			})
		}
	})
}

func scrape(t *testing.T, adm string) string {
	t.Helper()
	resp, err := http.Get(adm + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestSNIPicksTheCertificate(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	def, defSerial := p.issue("default.pem", "default.test")
	wild, wildSerial := p.issue("wild.pem", "*.site.test")
	api, apiSerial := p.issue("api.pem", "api.site.test")
	s := startCountServer(t, "s", "127.0.0.1:0")
	app, _, _ := startApp(t, "std", fmt.Sprintf("listen_tls: \"127.0.0.1:0\"\ncertificates: [%q, %q, %q]\nservices:\n  service1:\n    servers: %q\n",
		def, wild, api, s.addr), nil)
	addr := app.addr("listen_tls")
	for _, c := range []struct {
		name, sni string
		want      *big.Int
	}{
		{"an exact name gets its certificate", "api.site.test", apiSerial},
		{"a name under a wildcard gets the wildcard's", "www.site.test", wildSerial},
		{"an unknown name gets the default", "unknown.test", defSerial},
		{"no name (an IP address) gets the default", "", defSerial},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// Verification is the client's business; here: which one was sent.
			conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: c.sni, InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			got := conn.ConnectionState().PeerCertificates[0]
			if got.SerialNumber.Cmp(c.want) != 0 {
				t.Errorf("SNI %q: got the certificate for %v", c.sni, got.DNSNames)
			}
		})
	}
	// A client that verifies accepts the one it got for its name.
	if got := p.peerSerial(t, addr, "www.site.test"); got.Cmp(wildSerial) != 0 {
		t.Errorf("a verifying client for www.site.test got serial %v, want the wildcard's", got)
	}
}

// stsServer answers "NAME" with a Strict-Transport-Security of its own.
func stsServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=1")
		io.WriteString(w, name)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestForceSSLAndHSTS(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		p := newPKI(t)
		cert, _ := p.issue("site.pem", "site.test", "127.0.0.1")
		one := startCountServer(t, "one", "127.0.0.1:0")
		app, front, adm := startApp(t, engine, fmt.Sprintf(`listen_tls: "127.0.0.1:0"
certificates: [%q]
https_port: 8443
force_ssl: true
hsts_max_age: 600
services:
  service1:
    servers: %q
  two:
    servers: %q
    force_ssl: false
  three:
    servers: %q
    force_ssl: false
    hsts_max_age: 0
`, cert, one.addr, stsServer(t, "two"), stsServer(t, "three")), nil)
		secure := "https://" + app.addr("listen_tls")

		t.Run("cleartext requests to a force_ssl service get 301 on one kept-alive connection", func(t *testing.T) {
			conn, err := net.Dial("tcp", app.addr("listen"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, "GET /service1/a?b=1&c=%3C HTTP/1.1\r\nHost: site.test:8080\r\n\r\n"+
				"HEAD /service1 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n")
			br := bufio.NewReader(conn)
			for _, want := range []string{"https://site.test:8443/service1/a?b=1&c=%3C", "https://[::1]:8443/service1"} {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("reading the answer for %s: %v", want, err)
				}
				resp.Body.Close()
				if resp.StatusCode != 301 || resp.Header.Get("Location") != want || resp.Close {
					t.Errorf("got %d Location %q (close %v), want 301 to %s, kept alive", resp.StatusCode, resp.Header.Get("Location"), resp.Close, want)
				}
				if v := resp.Header.Get("Strict-Transport-Security"); v != "" {
					t.Errorf("a cleartext answer carries Strict-Transport-Security %q; RFC 6797 says never over http", v)
				}
			}
		})
		t.Run("a Host that cannot be redirected to gets 400", func(t *testing.T) {
			req, _ := http.NewRequest("GET", front+"/service1", nil)
			req.Host = "evil.test/x"
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("got %d, want 400", resp.StatusCode)
			}
		})
		noRedirect := p.client(t)
		noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		t.Run("the health path and services without force_ssl are not redirected", func(t *testing.T) {
			if resp, body := clientGet(t, noRedirect, front+"/.proxy/healthz", nil); resp.StatusCode != 200 || body != "ok\n" {
				t.Errorf("health path over http: got %d %q, want 200 ok", resp.StatusCode, body)
			}
			resp, body := clientGet(t, noRedirect, front+"/two", nil)
			if resp.StatusCode != 200 || body != "two" || resp.Header.Get("Strict-Transport-Security") != "max-age=1" {
				t.Errorf("service two over http: got %d %q STS %q, want 200 two with its own max-age=1 untouched",
					resp.StatusCode, body, resp.Header.Get("Strict-Transport-Security"))
			}
		})
		t.Run("HTTPS answers carry the service's HSTS, once", func(t *testing.T) {
			for _, c := range []struct{ path, want string }{
				{"/service1", "max-age=600"},
				{"/two", "max-age=600"}, // the server's max-age=1 replaced
				{"/three", "max-age=1"}, // hsts_max_age 0: the server's passes
				{"/nowhere", ""},        // no route, no service: none
			} {
				resp, _ := clientGet(t, noRedirect, secure+c.path, nil)
				if got := resp.Header.Values("Strict-Transport-Security"); strings.Join(got, "|") != c.want {
					t.Errorf("%s: got Strict-Transport-Security %q, want %q", c.path, got, c.want)
				}
			}
		})
		t.Run("a browser following the redirect lands on https", func(t *testing.T) {
			c := p.client(t)
			c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
				// https_port is 8443 for the test; the listener is on another port.
				req.URL.Host = app.addr("listen_tls")
				return nil
			}
			resp, body := clientGet(t, c, front+"/service1", nil)
			if resp.TLS == nil || !strings.HasPrefix(body, "one ") {
				t.Errorf("after the redirect: got %q (TLS %v), want service1's answer over https", body, resp.TLS != nil)
			}
		})
		st := stats(t, adm).Services[0]
		if st.Responses["3xx"] != 3 || st.Servers[0].Requests != 2 {
			t.Errorf("service1: %d 3xx, server requests %d; want the 3 redirects counted as 3xx and only the 2 https requests sent to the server",
				st.Responses["3xx"], st.Servers[0].Requests)
		}
	})
}

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

// echoUpgradeServer answers an Upgrade: websocket request with 101 and then echoes
// every byte back, as a websocket echo server does with frames.
func echoUpgradeServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"X-Forwarded-Proto-Seen: "+r.Header.Get("X-Forwarded-Proto")+"\r\n\r\n")
		rw.Flush()
		io.Copy(conn, rw)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestWebsocketUpgradesOverTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cert, _ := p.issue("site.pem", "site.test")
	app, _, _ := startApp(t, "std", fmt.Sprintf("listen_tls: \"127.0.0.1:0\"\ncertificates: [%q]\nservices:\n  service1:\n    servers: %q\n",
		cert, echoUpgradeServer(t)), nil)
	// As a browser opens a websocket: a connection of its own, ALPN http/1.1 (our
	// HTTP/2 does not offer extended CONNECT, so browsers do not try it over h2).
	conn, err := tls.Dial("tcp", app.addr("listen_tls"), &tls.Config{RootCAs: p.ca.Pool(), ServerName: "site.test", NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().NegotiatedProtocol; got != "h2" {
		t.Errorf("a client offering h2 and http/1.1: got %q, want h2 chosen", got)
	}
	conn.Close()
	conn, err = tls.Dial("tcp", app.addr("listen_tls"), &tls.Config{RootCAs: p.ca.Pool(), ServerName: "site.test", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /service1/ws HTTP/1.1\r\nHost: site.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("X-Forwarded-Proto-Seen") != "https" {
		t.Fatalf("upgrade: got %d, the server saw X-Forwarded-Proto %q; want 101 and https", resp.StatusCode, resp.Header.Get("X-Forwarded-Proto-Seen"))
	}
	for _, msg := range []string{"hello", "again"} {
		io.WriteString(conn, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo through the tunnel: got %q, %v, want %q", got, err, msg)
		}
	}
}

func TestTLSListenerBoundsHandshakesAndCountsConnections(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cert, _ := p.issue("site.pem", "site.test")
	s := startCountServer(t, "s", "127.0.0.1:0")
	app, _, adm := startApp(t, "fast", fmt.Sprintf("timeout: {http_request: 300ms}\nlisten_tls: \"127.0.0.1:0\"\ncertificates: [%q]\nservices:\n  service1:\n    servers: %q\n",
		cert, s.addr), nil)
	addr := app.addr("listen_tls")

	t.Run("a client that never starts its handshake is cut at timeout.http_request", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = conn.Read(make([]byte, 1))
		if err == nil || isTimeoutErr(err) {
			t.Fatalf("read: got %v, want the proxy to close the connection", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("closed after %v, want about 300ms", d)
		}
	})

	t.Run("an open TLS connection counts in the client connections", func(t *testing.T) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.ca.Pool(), ServerName: "site.test"})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the connection is counted", func() bool { c := stats(t, adm).Connections; return c != nil && *c == 1 })
		conn.Close()
		eventually(t, "the closed connection is no longer counted", func() bool { c := stats(t, adm).Connections; return c != nil && *c == 0 })
	})

	t.Run("a returning client resumes its session", func(t *testing.T) {
		cfg := &tls.Config{RootCAs: p.ca.Pool(), ServerName: "site.test", ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		for i, want := range []bool{false, true} {
			conn, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			// TLS 1.3 sends the ticket after the handshake: a request and its answer
			// make sure the client has it before closing.
			io.WriteString(conn, "GET /service1 HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n")
			io.ReadAll(conn)
			if got := conn.ConnectionState().DidResume; got != want {
				t.Errorf("connection %d: resumed %v, want %v", i+1, got, want)
			}
			conn.Close()
		}
		if st := stats(t, adm).TLS; st.Handshakes.Resumed < 1 {
			t.Errorf("stats tls handshakes %+v, want a resumed one counted", st.Handshakes)
		}
	})
}

func TestTLSFromTheEnvironment(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cert, _ := p.issue("site.pem", "site.test")
	path := p.write("plain.yaml", []byte("services:\n  service1:\n    servers: \"127.0.0.1:1\"\n    force_ssl: true\n"))
	for _, c := range []struct {
		name string
		env  map[string]string
		want string // in the error; "" for none
	}{
		{"LISTEN_TLS and TLS_CERT_FILES turn HTTPS on", map[string]string{"LISTEN_TLS": ":8443", "TLS_CERT_FILES": cert, "HTTPS_PORT": "443"}, ""},
		{"LISTEN_TLS alone asks for a certificate", map[string]string{"LISTEN_TLS": ":8443"}, "needs a certificate"},
		{"force_ssl without LISTEN_TLS is refused", map[string]string{}, "listen_tls is not set"},
		{"a bad TLS_CERT_FILES is named", map[string]string{"LISTEN_TLS": ":8443", "TLS_CERT_FILES": p.dir + "/none.pem"}, "TLS_CERT_FILES: " + p.dir + "/none.pem: no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			set, err := parseSettings([]string{"-config", path}, func(k string) string { return c.env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := set.loadConfig()
			if err == nil {
				_, _, err = loadCertificates(cfg)
			}
			if c.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if cfg.TLS.Listen != ":8443" || len(cfg.TLS.Certificates) != 1 || cfg.TLS.RedirectPort() != 443 {
					t.Errorf("TLS %+v, want :8443 with one certificate redirecting to 443", cfg.TLS)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got error %v, want one containing %q", err, c.want)
			}
		})
	}
}
