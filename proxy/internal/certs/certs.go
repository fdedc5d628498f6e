// Package certs holds the proxy's TLS certificates: it reads them from PEM files (a
// certificate and its key in two files, or both in one combined file as HAProxy's crt
// and dockercloud's SSL_CERT take them), checks that each key belongs to its
// certificate, and picks one per handshake by the name the client asked for (SNI).
//
// A Set is built whole or not at all: Load returns every problem, each naming its file,
// and nothing changes. The proxy swaps Sets on reload (Store), so a new connection gets
// the new certificate while connections already open keep theirs.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Source is one certificate as the configuration names it.
type Source struct {
	// Cert is the PEM file of the certificate, leaf first then its intermediates. With
	// Key empty it must hold the private key too (a combined file).
	Cert string
	// Key is the PEM file of the private key; "" when Cert holds it.
	Key string
	// Where says where the configuration names it, for messages: "proxy.yaml:12" or
	// "TLS_CERT_FILES".
	Where string
}

func (s Source) files() string {
	if s.Key == "" {
		return s.Cert
	}
	return s.Cert + " and " + s.Key
}

// Entry is one loaded certificate, as -check and /stats show it.
type Entry struct {
	Files    string    `json:"files"`   // the file, or "cert.pem and key.pem"
	Names    []string  `json:"names"`   // the DNS names it is chosen for (SNI), as in the certificate
	Subject  string    `json:"subject"` // its common name
	NotAfter time.Time `json:"not_after"`
	Default  bool      `json:"default"` // sent to clients whose name matches no certificate, or that send none
}

// Set is a loaded list of certificates. It is never changed after Load.
type Set struct {
	certs    []*tls.Certificate
	entries  []Entry
	exact    map[string]*tls.Certificate // lower-case DNS name
	wildcard map[string]*tls.Certificate // "example.com" for "*.example.com"
}

// Load reads every source, in order. The first is the default certificate: the one a
// client gets when the name it sends matches no other certificate, or when it sends
// none (an IP address in the URL). A name in several certificates goes to the first
// that has it. now judges expiry: an expired certificate loads (HAProxy serves it too)
// but is reported in warnings, as is one not valid yet.
func Load(srcs []Source, now time.Time) (set *Set, warnings []string, err error) {
	if len(srcs) == 0 {
		return nil, nil, errors.New("no certificate given; name at least one PEM file")
	}
	set = &Set{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	var errs []error
	for i, src := range srcs {
		c, err := loadPair(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		leaf := c.Leaf
		e := Entry{Files: src.files(), Subject: leaf.Subject.CommonName, NotAfter: leaf.NotAfter, Default: i == 0}
		for _, n := range leaf.DNSNames {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			e.Names = append(e.Names, n)
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				if _, taken := set.wildcard[rest]; !taken {
					set.wildcard[rest] = c
				}
			} else if _, taken := set.exact[n]; !taken {
				set.exact[n] = c
			}
		}
		switch {
		case now.After(leaf.NotAfter):
			warnings = append(warnings, fmt.Sprintf("%s: %s: the certificate expired on %s; clients will refuse it",
				src.Where, src.files(), leaf.NotAfter.UTC().Format(time.DateOnly)))
		case now.Before(leaf.NotBefore):
			warnings = append(warnings, fmt.Sprintf("%s: %s: the certificate is not valid before %s; clients will refuse it until then",
				src.Where, src.files(), leaf.NotBefore.UTC().Format(time.RFC3339)))
		}
		if len(e.Names) == 0 && i > 0 {
			warnings = append(warnings, fmt.Sprintf("%s: %s: the certificate has no DNS name, so no client name (SNI) selects it; only the first certificate is the default",
				src.Where, src.files()))
		}
		set.certs = append(set.certs, c)
		set.entries = append(set.entries, e)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return set, warnings, nil
}

// loadPair reads one certificate and its key, and says what is wrong in words a user
// can act on.
func loadPair(src Source) (*tls.Certificate, error) {
	where := src.Where + ": " + src.files()
	certPEM, err := os.ReadFile(src.Cert)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Where, pathError(err))
	}
	keyPEM := certPEM
	if src.Key != "" {
		if keyPEM, err = os.ReadFile(src.Key); err != nil {
			return nil, fmt.Errorf("%s: %w", src.Where, pathError(err))
		}
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", where, explain(err, src.Key == ""))
	}
	// X509KeyPair fills Leaf (Go 1.23 on); a chain in the wrong order has failed above.
	// Leaf is nil only if GODEBUG=x509keypairleaf=0 turns that off: then parse it here.
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: the certificate does not parse: %v", where, err)
		}
	}
	if c.Leaf.IsCA && len(c.Leaf.DNSNames) == 0 && len(c.Leaf.IPAddresses) == 0 {
		return nil, fmt.Errorf("%s: this is a CA certificate, not a server's; give the certificate the CA issued for your site", where)
	}
	return &c, nil
}

// pathError is an os error without Go's "open" wording: "site.pem: no such file or
// directory".
func pathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}

// explain turns crypto/tls's key-pair errors into what to do.
func explain(err error, combined bool) string {
	msg := err.Error()
	has := func(s string) bool { return strings.Contains(msg, s) }
	switch {
	case has("private key does not match public key"), has("private key type does not match public key type"):
		return "the private key does not belong to the certificate; give the key made with this certificate " +
			"(in a chain, the server's own certificate must come first, then the intermediates)"
	case combined && (has("rather than a key") || has("any PEM data in key input") || has("type ending in \"PRIVATE KEY\"")):
		return "no private key found; a combined file holds the certificate and its key, e.g. cat cert.pem key.pem > site.pem"
	case has("rather than a key"):
		return "the key file holds a certificate, not a private key; are the certificate and key files switched?"
	case has("any PEM data in key input"), has("type ending in \"PRIVATE KEY\""):
		return "no PEM private key found in the key file (-----BEGIN PRIVATE KEY-----)"
	case has("PEM inputs may have been switched"):
		return "no certificate found, only a private key; are the certificate and key files switched?"
	case has("any PEM data in certificate input"), has("\"CERTIFICATE\" PEM block"):
		return "no PEM certificate found (-----BEGIN CERTIFICATE-----); is it DER? convert it with openssl x509 -inform der"
	}
	return "not a usable certificate and key: " + strings.TrimPrefix(msg, "tls: ")
}

// Get is the certificate for a handshake: the one whose DNS name is the client's
// server name, else one whose wildcard covers it (one label, as browsers match), else
// the default.
func (s *Set) Get(hello *tls.ClientHelloInfo) *tls.Certificate {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if c, ok := s.exact[name]; ok {
			return c
		}
		if _, rest, ok := strings.Cut(name, "."); ok {
			if c, ok := s.wildcard[rest]; ok {
				return c
			}
		}
	}
	return s.certs[0]
}

// Entries lists the certificates in the order they were given.
func (s *Set) Entries() []Entry { return slices.Clone(s.entries) }

// Summary is one line per certificate, for -check.
func (s *Set) Summary() string {
	var b strings.Builder
	for _, e := range s.entries {
		names := strings.Join(e.Names, ", ")
		if names == "" {
			names = "no DNS name"
		}
		fmt.Fprintf(&b, "certificate %s: %s; until %s", e.Files, names, e.NotAfter.UTC().Format(time.DateOnly))
		if e.Default {
			b.WriteString(" (default)")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Store holds the Set in use; the zero value holds none. Its GetCertificate is a
// tls.Config's: each handshake reads the Set once, so a Swap between two handshakes
// changes what the next one gets and nothing else.
type Store struct{ set atomic.Pointer[Set] }

// Swap makes set the one new handshakes use.
func (st *Store) Swap(set *Set) { st.set.Store(set) }

// Set is the Set in use, nil before the first Swap.
func (st *Store) Set() *Set { return st.set.Load() }

// GetCertificate picks the certificate for a handshake (tls.Config.GetCertificate).
func (st *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := st.set.Load()
	if set == nil {
		return nil, errors.New("no certificate loaded")
	}
	return set.Get(hello), nil
}
