package main

import (
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/admin"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/certs"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
)

// The HTTPS listener (listen_tls) runs net/http's engine whatever engine: says for the
// cleartext one: net/http brings HTTP/2 over TLS (ALPN h2, then http/1.1), which the
// h1 engine does not speak. Both listeners share the one forward.Handler's table, so a
// service's servers, sticky ids and counters are the same over http and https.

// tlsSide is the HTTPS listener's state: the certificates new handshakes get, which a
// reload swaps, and what the handshakes negotiated, for /stats and /metrics.
type tlsSide struct {
	store                 certs.Store
	listen                string
	h2, http1, resumedTLS atomic.Uint64
}

// newTLSEngine is the HTTPS listener's server: the std engine's, with the same
// timeouts and header limit. net/http bounds the TLS handshake by the smallest of its
// timeouts that is not 0, the header timeout by default: a client that opens a
// connection and sends nothing is cut as a slow request head is.
func (a *app) newTLSEngine(cfg *config.Config, errorLog *log.Logger) engine {
	srv := a.stdServer(cfg, errorLog)
	srv.TLSConfig = &tls.Config{
		// TLS 1.2 and 1.3 with Go's default suites (AEAD, forward secrecy). A Go
		// server never renegotiates, whatever the client asks. Session tickets are
		// on: a returning client resumes without a full handshake.
		MinVersion:       tls.VersionTLS12,
		GetCertificate:   a.tls.store.GetCertificate,
		VerifyConnection: a.tls.count,
	}
	// HAProxy's default (tune.h2.max-concurrent-streams); net/http's is 250.
	srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 100}
	return tlsEngine{srv}
}

// tlsEngine serves a listener with TLS: ServeTLS adds h2 and http/1.1 to ALPN.
type tlsEngine struct{ *http.Server }

func (e tlsEngine) Serve(ln net.Listener) error { return e.ServeTLS(ln, "", "") }

// count is the tls.Config's VerifyConnection, which crypto/tls calls once per
// handshake, full or resumed, once the protocol is chosen. It never refuses one.
func (t *tlsSide) count(cs tls.ConnectionState) error {
	if cs.NegotiatedProtocol == "h2" {
		t.h2.Add(1)
	} else {
		t.http1.Add(1) // http/1.1, or a client without ALPN, which speaks HTTP/1.1
	}
	if cs.DidResume {
		t.resumedTLS.Add(1)
	}
	return nil
}

// stats is the HTTPS part of /stats.
func (t *tlsSide) stats() *admin.TLSStats {
	st := &admin.TLSStats{Listen: t.listen, Engine: "std", Certificates: []certs.Entry{},
		Handshakes: admin.TLSHandshakes{H2: t.h2.Load(), HTTP1: t.http1.Load(), Resumed: t.resumedTLS.Load()}}
	if set := t.store.Set(); set != nil {
		st.Certificates = set.Entries()
	}
	return st
}

// loadCertificates reads and checks the certificates cfg names, for -check, the start
// and every reload; nil when there is no TLS listener. warnings (an expired
// certificate) do not stop it.
func loadCertificates(cfg *config.Config) (set *certs.Set, warnings []string, err error) {
	if cfg.TLS.Listen == "" {
		return nil, nil, nil
	}
	var srcs []certs.Source
	for _, c := range cfg.TLS.Certificates {
		where := "TLS_CERT_FILES"
		if c.Line > 0 {
			where = fmt.Sprintf("%s:%d", cfg.File, c.Line)
		}
		srcs = append(srcs, certs.Source{Cert: c.Cert, Key: c.Key, Where: where})
	}
	return certs.Load(srcs, time.Now())
}

// forceSSL says whether sc's cleartext requests are sent to https. A file that asks
// for it without a TLS listener is refused (config.CheckTLS); a swarm service's
// FORCE_SSL (discovery: docker) is let go with a warning instead, logged once per
// service, so no client is sent to a port where nothing listens. a.mu is held (apply).
func (a *app) forceSSL(cfg *config.Config, sc config.Service) bool {
	if sc.ForceSSL && cfg.TLS.Listen == "" {
		if !a.noTLSWarned[sc.Name] {
			a.logger.Warn("force_ssl needs the TLS listener (listen_tls, LISTEN_TLS): not redirecting", "service", sc.Name)
			if a.noTLSWarned == nil {
				a.noTLSWarned = map[string]bool{}
			}
			a.noTLSWarned[sc.Name] = true
		}
		return false
	}
	return sc.ForceSSL
}

// certFiles reads TLS_CERT_FILES: combined PEM files, comma-separated.
func certFiles(v string) []config.Certificate {
	var out []config.Certificate
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, config.Certificate{Cert: f})
		}
	}
	return out
}

// tlsSettings are the HTTPS listener's flags and environment, so a stack can turn it on
// with a certificate from a swarm secret and no change to the file.
func (s *settings) tlsSettings() []cli.Setting {
	return []cli.Setting{
		{Flag: "listen-tls", Env: "LISTEN_TLS", DefaultText: "listen_tls: in the file, else off",
			Usage: "HTTPS listen address (HTTP/2 and HTTP/1.1); \"off\" turns it off",
			Set: func(v string) error {
				if v == "off" {
					s.listenTLS = v
					return nil
				}
				return cli.Addr(&s.listenTLS)(v)
			}},
		{Flag: "tls-cert-files", Env: "TLS_CERT_FILES", DefaultText: "certificates: in the file",
			Usage: "PEM files, each a certificate and its key, comma-separated; the first is the default\n(e.g. /run/secrets/site.pem); replaces certificates: in the file",
			Set:   func(v string) error { s.certFiles = certFiles(v); return nil }},
		{Flag: "https-port", Env: "HTTPS_PORT", DefaultText: "https_port: in the file, else listen_tls's",
			Usage: "the port force_ssl redirects to, when it is published as another one (a container)",
			Set: func(v string) error {
				if v == "" {
					return nil
				}
				return cli.Int(&s.httpsPort, 1, 65535)(v)
			}},
	}
}

// applyTLS puts the TLS flags and environment over the file's keys.
func (s settings) applyTLS(cfg *config.Config) {
	switch s.listenTLS {
	case "":
	case "off":
		cfg.TLS.Listen = ""
	default:
		cfg.TLS.Listen = s.listenTLS
	}
	if len(s.certFiles) > 0 {
		cfg.TLS.Certificates = s.certFiles
	}
	if s.httpsPort != 0 {
		cfg.TLS.HTTPSPort = s.httpsPort
	}
}
