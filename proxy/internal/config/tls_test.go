package config

import (
	"slices"
	"strings"
	"testing"
)

func TestTLSKeys(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("/etc/proxy/proxy.yaml", []byte(`listen_tls: ":8443"
certificates:
  - site.pem
  - {cert: /etc/ssl/api.crt, key: keys/api.key}
https_port: 443
force_ssl: true
hsts_max_age: 31536000
services:
  service1: {servers: "a:1"}
  service2: {servers: "b:1", force_ssl: false, hsts_max_age: 60}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Certificate{{Cert: "/etc/proxy/site.pem", Line: 3}, {Cert: "/etc/ssl/api.crt", Key: "/etc/proxy/keys/api.key", Line: 4}}
	if !slices.Equal(cfg.TLS.Certificates, want) {
		t.Errorf("certificates: got %+v, want %+v (relative paths from the file's folder)", cfg.TLS.Certificates, want)
	}
	if cfg.TLS.Listen != ":8443" || cfg.TLS.RedirectPort() != 443 {
		t.Errorf("listen_tls %q, redirect port %d: want :8443 and 443", cfg.TLS.Listen, cfg.TLS.RedirectPort())
	}
	s1, s2 := cfg.Services[0], cfg.Services[1]
	if !s1.ForceSSL || s1.HSTSMaxAge != 31536000 {
		t.Errorf("service1 force_ssl %v hsts %d: want the top-level true and 31536000", s1.ForceSSL, s1.HSTSMaxAge)
	}
	if s2.ForceSSL || s2.HSTSMaxAge != 60 {
		t.Errorf("service2 force_ssl %v hsts %d: want its own false and 60", s2.ForceSSL, s2.HSTSMaxAge)
	}
	if err := cfg.CheckTLS(); err != nil {
		t.Errorf("CheckTLS: %v", err)
	}
	sum := cfg.Summary()
	for _, w := range []string{"listen_tls :8443", "2 certificate(s)", "force_ssl to port 443", "hsts max-age=60"} {
		if !strings.Contains(sum, w) {
			t.Errorf("summary %q lacks %q", sum, w)
		}
	}
}

func TestRedirectPortDefaultsToTheTLSListener(t *testing.T) {
	t.Parallel()
	if got := (TLS{Listen: "127.0.0.1:8443"}).RedirectPort(); got != 8443 {
		t.Errorf("got %d, want 8443", got)
	}
}

func TestTLSKeysThatDoNotGoTogether(t *testing.T) {
	t.Parallel()
	const svc = "services:\n  service1:\n    servers: \"a:1\"\n"
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"a TLS listener without a certificate", "listen_tls: \":443\"\n" + svc,
			`p.yaml:1: listen_tls :443 needs a certificate; add certificates:`},
		{"certificates without a TLS listener", "certificates: [a.pem]\n" + svc,
			`p.yaml:1: certificates are given but listen_tls is not set`},
		{"force_ssl without a TLS listener", "force_ssl: true\n" + svc,
			`p.yaml:1: force_ssl redirects to this proxy's HTTPS port, but listen_tls is not set`},
		{"a service's force_ssl without a TLS listener", svc + "    force_ssl: true\n",
			`p.yaml: services.service1.force_ssl redirects`},
		{"HSTS without a TLS listener", "hsts_max_age: 60\n" + svc,
			`p.yaml:1: hsts_max_age is sent on HTTPS answers only`},
		{"both listeners on one address", "listen: \":8080\"\nlisten_tls: \":8080\"\ncertificates: a.pem\n" + svc,
			`p.yaml:2: listen_tls and listen are both :8080`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Parse("p.yaml", []byte(c.yaml))
			if err == nil {
				err = cfg.CheckTLS()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got error %v\nwant one containing %q", err, c.want)
			}
		})
	}
}

func TestBadTLSValuesSayFileLineAndFix(t *testing.T) {
	t.Parallel()
	const svc = "services:\n  service1:\n    servers: \"a:1\"\n"
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"an empty list", "listen_tls: \":443\"\ncertificates: []\n" + svc, "p.yaml:2: certificates: the list is empty"},
		{"an unknown certificate key", "certificates:\n  - {crt: a.pem}\n" + svc, `p.yaml:2: unknown key certificates[].crt; did you mean "cert"?`},
		{"a key without its certificate", "certificates:\n  - {key: a.key}\n" + svc, "p.yaml:2: certificates: an entry without a certificate"},
		{"HSTS as a duration", "hsts_max_age: 1y\n" + svc, `p.yaml:1: hsts_max_age: "1y" is not a whole number`},
		{"a port out of range", "https_port: 70000\n" + svc, `p.yaml:1: https_port: "70000" is not a whole number from 1 to 65535`},
		{"force_ssl not a bool", svc + "    force_ssl: yes please\n", `p.yaml:4: services.service1.force_ssl: "yes please" is not true or false`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("p.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got error %v\nwant one containing %q", err, c.want)
			}
		})
	}
}

func TestChangingTheTLSListenerNeedsARestart(t *testing.T) {
	t.Parallel()
	old := &Config{TLS: TLS{Listen: ":443"}}
	if got := (&Config{TLS: TLS{Listen: ":8443"}}).NeedsRestart(old); !slices.Equal(got, []string{"listen_tls"}) {
		t.Errorf("got %v, want [listen_tls]", got)
	}
	if got := (&Config{TLS: TLS{Listen: ":443", Certificates: []Certificate{{Cert: "new.pem"}}}}).NeedsRestart(old); len(got) != 0 {
		t.Errorf("new certificates: got %v, want nothing (a reload loads them)", got)
	}
}
