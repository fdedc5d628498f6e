package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// TLS is the HTTPS listener and what goes with it, dockercloud/haproxy's SSL_CERT,
// FORCE_SSL and HSTS_MAX_AGE. The zero value is off.
type TLS struct {
	Listen string // listen_tls: "" (off) or ":443"
	// Certificates are the PEM files, in order; the first is the default, sent when the
	// client's name (SNI) matches no certificate. The proxy loads and checks them.
	Certificates []Certificate
	// HTTPSPort is the port force_ssl redirects to (https_port); 0: listen_tls's. Set it
	// when the published port differs from the one the proxy listens on (a container).
	HTTPSPort  int
	ForceSSL   bool // force_ssl: false; the default of every service's force_ssl
	HSTSMaxAge int  // hsts_max_age: 0 (none), seconds; the default of every service's

	lines map[string]int // where each key is, for CheckTLS
}

// Certificate is one entry of certificates: a combined PEM file (Key "") or a pair.
// Relative paths are resolved against the configuration file's folder.
type Certificate struct {
	Cert, Key string
	Line      int // 0 when it came from the environment
}

// RedirectPort is the port force_ssl sends clients to: https_port, else listen_tls's.
func (t TLS) RedirectPort() int {
	if t.HTTPSPort != 0 {
		return t.HTTPSPort
	}
	if _, p, err := net.SplitHostPort(t.Listen); err == nil {
		n, _ := strconv.Atoi(p)
		return n
	}
	return 443
}

var certificateKeys = []string{"cert", "key"}

// tls reads the top-level TLS keys.
func (p *parser) tls(cfg *Config, key string, k, v *yaml.Node) {
	t := &cfg.TLS
	if t.lines == nil {
		t.lines = map[string]int{}
	}
	t.lines[key] = k.Line
	switch key {
	case "listen_tls":
		t.Listen = p.addr(v, key, true)
	case "certificates":
		t.Certificates = p.certificates(v, cfg.File)
	case "https_port":
		t.HTTPSPort = p.int(v, key, 1, 65535)
	case "force_ssl":
		t.ForceSSL = p.bool(v, key)
	case "hsts_max_age":
		t.HSTSMaxAge = p.int(v, key, 0, maxHSTS)
	}
}

// maxHSTS is ten years in seconds: more is a typo.
const maxHSTS = 10 * 366 * 24 * 3600

// certificates reads certificates: a list of combined files or {cert, key} pairs, or
// one file as a plain string.
func (p *parser) certificates(v *yaml.Node, file string) []Certificate {
	entries := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		entries = v.Content
		if len(entries) == 0 {
			p.errorf(v, "certificates: the list is empty; write e.g. certificates: [/run/secrets/site.pem]")
		}
	}
	var out []Certificate
	for _, e := range entries {
		c := Certificate{Line: e.Line}
		switch e.Kind {
		case yaml.ScalarNode:
			c.Cert = p.str(e, "certificates")
		case yaml.MappingNode:
			p.mapping(e, "certificates[].", certificateKeys, func(key string, _, v *yaml.Node) {
				if key == "cert" {
					c.Cert = p.str(v, "certificates[].cert")
				} else {
					c.Key = p.str(v, "certificates[].key")
				}
			})
		default:
			p.errorf(e, "certificates: expected a file or {cert: FILE, key: FILE}, got a %s", kindName(e))
			continue
		}
		if c.Cert == "" {
			p.errorf(e, `certificates: an entry without a certificate; write a PEM file holding the certificate and its key, or {cert: site.crt, key: site.key}`)
			continue
		}
		c.Cert, c.Key = relativeTo(file, c.Cert), relativeTo(file, c.Key)
		out = append(out, c)
	}
	return out
}

// relativeTo resolves a relative path against the folder of the file that names it.
func relativeTo(file, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(file), path)
}

// serviceTLS reads a service's own force_ssl or hsts_max_age, which override the
// top-level ones.
func (p *parser) serviceTLS(sc *Service, where, key string, v *yaml.Node) {
	switch key {
	case "force_ssl":
		b := p.bool(v, where+key)
		sc.forceSSL = &b
	case "hsts_max_age":
		n := p.int(v, where+key, 0, maxHSTS)
		sc.hstsMaxAge = &n
	}
}

// resolveTLS gives each service the top-level force_ssl and hsts_max_age unless it
// has its own.
func resolveTLS(cfg *Config) {
	for i := range cfg.Services {
		s := &cfg.Services[i]
		s.ForceSSL, s.HSTSMaxAge = cfg.TLS.ForceSSL, cfg.TLS.HSTSMaxAge
		if s.forceSSL != nil {
			s.ForceSSL = *s.forceSSL
		}
		if s.hstsMaxAge != nil {
			s.HSTSMaxAge = *s.hstsMaxAge
		}
	}
}

// CheckTLS checks what the TLS keys say together, once the environment has had its
// say (LISTEN_TLS, TLS_CERT_FILES): a TLS listener needs a certificate, and
// certificates, force_ssl and hsts_max_age need a TLS listener.
func (c *Config) CheckTLS() error {
	t := c.TLS
	at := func(key string) string {
		if l := t.lines[key]; l > 0 {
			return fmt.Sprintf("%s:%d: ", c.File, l)
		}
		return c.File + ": "
	}
	var errs []error
	forced, hsts := "", ""
	if t.ForceSSL {
		forced = "force_ssl"
	}
	if t.HSTSMaxAge > 0 {
		hsts = "hsts_max_age"
	}
	for _, s := range c.Services {
		if s.ForceSSL && forced == "" {
			forced = "services." + s.Name + ".force_ssl"
		}
		if s.HSTSMaxAge > 0 && hsts == "" {
			hsts = "services." + s.Name + ".hsts_max_age"
		}
	}
	switch {
	case t.Listen != "" && len(t.Certificates) == 0:
		errs = append(errs, fmt.Errorf("%slisten_tls %s needs a certificate; add certificates: [/run/secrets/site.pem] (a PEM file with the certificate and its key) or set TLS_CERT_FILES",
			at("listen_tls"), t.Listen))
	case t.Listen == "" && len(t.Certificates) > 0:
		errs = append(errs, fmt.Errorf(`%scertificates are given but listen_tls is not set; add listen_tls: ":443" (or set LISTEN_TLS)`, at("certificates")))
	}
	if t.Listen == "" && forced != "" {
		errs = append(errs, fmt.Errorf(`%s%s redirects to this proxy's HTTPS port, but listen_tls is not set; add listen_tls: ":443"`, at("force_ssl"), forced))
	}
	if t.Listen == "" && hsts != "" {
		errs = append(errs, fmt.Errorf(`%s%s is sent on HTTPS answers only, but listen_tls is not set; add listen_tls: ":443"`, at("hsts_max_age"), hsts))
	}
	if _, port, _ := net.SplitHostPort(t.Listen); t.Listen != "" && t.Listen == c.Listen && port != "0" {
		errs = append(errs, fmt.Errorf("%slisten_tls and listen are both %s; give HTTPS its own port, e.g. listen_tls: \":443\"", at("listen_tls"), t.Listen))
	}
	return errors.Join(errs...)
}
