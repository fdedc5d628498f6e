// Package certgen makes X.509 certificates with the standard library alone, so that
// nothing here needs openssl: a self-signed certificate for `make run TLS=1` and
// `make stack-deploy TLS=1`, and in tests a throw-away CA and the leaves it signs.
//
// Keys are ECDSA P-256: small, fast to make and to handshake with, and accepted by
// every current browser, curl, wrk and HAProxy. PEM output puts the certificate first
// and its key after it (the "combined" file that HAProxy's crt and dockercloud's
// SSL_CERT take); CertPEM and KeyPEM give the two halves for a cert+key pair.
package certgen

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Options shape a certificate. The zero value of each field has a useful meaning.
type Options struct {
	// NotBefore and NotAfter bound its validity; zero: from an hour ago (clocks differ)
	// for Validity.
	NotBefore, NotAfter time.Time
	// Validity is how long it lasts when NotAfter is zero; 0: 90 days, as public CAs give.
	Validity time.Duration
	// Renew has Ensure write a new certificate even when the file holds a valid one;
	// nothing else reads it.
	Renew bool
}

// Cert is a certificate with its private key.
type Cert struct {
	Leaf *x509.Certificate
	Key  *ecdsa.PrivateKey
	der  []byte
}

// CA is a certificate authority of the tests' own: it signs leaves that a client
// trusts through Pool.
type CA struct{ Cert }

// NewCA makes a self-signed CA called name.
func NewCA(name string, o Options) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := template(o)
	tmpl.Subject = pkix.Name{CommonName: name, Organization: []string{"swarm-affinity tests"}}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert{Leaf: leaf, Key: key, der: der}}, nil
}

// Pool is a certificate pool trusting only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Leaf)
	return p
}

// Issue signs a server certificate for names: DNS names ("localhost", "*.example.test")
// and IP addresses ("127.0.0.1"), the first also its common name.
func (ca *CA) Issue(o Options, names ...string) (*Cert, error) {
	return issue(&ca.Cert, o, names)
}

// SelfSigned makes a server certificate for names that signs itself, as `make run
// TLS=1` and `make stack-deploy TLS=1` use: a browser shows a warning once, curl
// wants -k or --cacert on the file.
func SelfSigned(o Options, names ...string) (*Cert, error) {
	return issue(nil, o, names)
}

func issue(parent *Cert, o Options, names []string) (*Cert, error) {
	if len(names) == 0 {
		return nil, errors.New("certgen: a certificate needs at least one name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := template(o)
	tmpl.Subject = pkix.Name{CommonName: names[0]}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tmpl.BasicConstraintsValid = true
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.Leaf, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{Leaf: leaf, Key: key, der: der}, nil
}

func template(o Options) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		v := o.Validity
		if v <= 0 {
			v = 90 * 24 * time.Hour
		}
		o.NotAfter = o.NotBefore.Add(v)
	}
	return &x509.Certificate{SerialNumber: serial, NotBefore: o.NotBefore, NotAfter: o.NotAfter}
}

// CertPEM is the certificate alone (a CA's leaves are signed by its root directly, so
// there is no chain to send).
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})
}

// KeyPEM is the private key, PKCS #8.
func (c *Cert) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		// An ECDSA P-256 key always marshals.
		panic(fmt.Sprintf("certgen: marshalling the key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// PEM is the combined file: CertPEM then KeyPEM.
func (c *Cert) PEM() []byte { return append(c.CertPEM(), c.KeyPEM()...) }

// WriteFile writes data to path readable by its owner only (it may hold a private
// key), through a temporary file, so a reader never sees half of it.
func WriteFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".certgen-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Ensure makes the PEM file at path hold a self-signed certificate for names: it keeps
// the file when it is Valid for them (unless o.Renew), else writes SelfSigned(o,
// names...) there with WriteFile, making path's folder (mode 0700) if it is missing.
// It returns the certificate it wrote and true, or false when it kept the file.
//
// A file that holds a certificate a CA issued (a real one, put there by its owner) is
// never replaced, Renew or not, valid for names or not: Ensure keeps it and returns
// an error of type *ForeignError, which says so. Only a missing file, or one holding a
// self-signed certificate (ours, expiring or for other names), is written.
func Ensure(path string, o Options, names ...string) (*Cert, bool, error) {
	if !o.Renew && Valid(path, names...) {
		return nil, false, nil
	}
	if err := foreign(path); err != nil {
		return nil, false, err
	}
	c, err := SelfSigned(o, names...)
	if err != nil {
		return nil, false, fmt.Errorf("making a self-signed certificate: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	if err := WriteFile(path, c.PEM()); err != nil {
		return nil, false, err
	}
	return c, true, nil
}

// ForeignError is Ensure's answer for a file it will not replace.
type ForeignError struct {
	Path   string
	Issued bool   // the file holds a CA-issued certificate (else no usable one)
	Why    string // "a certificate issued by ...", or what the file holds instead
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("%s holds %s: it is not replaced by a self-signed one (remove the file for that)", e.Path, e.Why)
}

// foreign returns a *ForeignError when path holds something Ensure must not overwrite:
// a certificate a CA issued, or no certificate at all; nil for a missing or empty file
// or a self-signed certificate.
func foreign(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(bytes.TrimSpace(data)) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return &ForeignError{Path: path, Why: "no PEM certificate"}
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return &ForeignError{Path: path, Why: "a certificate that does not parse (" + err.Error() + ")"}
		}
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil {
			return nil // self-signed: a throwaway, ours to renew
		}
		return &ForeignError{Path: path, Issued: true, Why: fmt.Sprintf("a certificate issued by %q for %q", c.Issuer.CommonName, c.Subject.CommonName)}
	}
}

// Valid reports whether the PEM file at path holds a certificate that is valid now
// and for at least another day, for every one of names: then `make run TLS=1` keeps
// it, and a browser that was told to trust it once need not be told again.
func Valid(path string, names ...string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return false
		}
		now := time.Now()
		if now.Before(c.NotBefore) || now.Add(24*time.Hour).After(c.NotAfter) {
			return false
		}
		for _, n := range names {
			if c.VerifyHostname(n) != nil {
				return false
			}
		}
		return true
	}
}
