package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

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
