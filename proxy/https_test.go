package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
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
	// leaks says whether the Cookie header the server got still shows the id.
	leaks func(cookie, id string) bool
}{
	{"prefix", "connect.sid prefix nocache", "connect.sid",
		func(v string) (string, bool) {
			id, _, ok := strings.Cut(v, "~")
			return id, ok
		},
		func(cookie, id string) bool { return strings.Contains(cookie, id+"~") }},
	{"insert", "SRV insert indirect nocache", "SRV",
		func(v string) (string, bool) {
			id, _, _ := strings.Cut(v, "|") // id, or id|dates with maxidle/maxlife
			return id, id != ""
		},
		func(cookie, id string) bool { return strings.Contains(cookie, "SRV=") }},
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
						if id, _ := mode.id(held); mode.leaks(h.Get("Cookie"), id) {
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
				metrics := getBody(t, adm+"/metrics")
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
