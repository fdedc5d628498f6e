package certs

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/certgen"
)

// files writes PEM files into a temporary folder and returns their paths by name.
type files struct {
	t   *testing.T
	dir string
}

func newFiles(t *testing.T) files { return files{t: t, dir: t.TempDir()} }

func (f files) write(name string, data []byte) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func issue(t *testing.T, ca *certgen.CA, o certgen.Options, names ...string) *certgen.Cert {
	t.Helper()
	c, err := ca.Issue(o, names...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadRefusesABadCertificateNamingItsFile(t *testing.T) {
	t.Parallel()
	ca, err := certgen.NewCA("test CA", certgen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := issue(t, ca, certgen.Options{}, "a.test"), issue(t, ca, certgen.Options{}, "b.test")
	f := newFiles(t)
	for _, c := range []struct {
		name string
		src  Source
		want []string // in the message, besides Where
	}{
		{"a missing file", Source{Cert: filepath.Join(f.dir, "none.pem")}, []string{"none.pem", "no such file"}},
		{"a key that is another certificate's", Source{Cert: f.write("a.crt", a.CertPEM()), Key: f.write("b.key", b.KeyPEM())},
			[]string{"a.crt and", "b.key", "does not belong to the certificate"}},
		{"a combined file without its key", Source{Cert: f.write("nokey.pem", a.CertPEM())},
			[]string{"nokey.pem", "no private key found", "cat cert.pem key.pem"}},
		{"a key file holding only a certificate", Source{Cert: f.write("a2.crt", a.CertPEM()), Key: f.write("cert-as-key.pem", a.CertPEM())},
			[]string{"cert-as-key.pem", "switched"}},
		{"a certificate file holding only a key", Source{Cert: f.write("key-as-cert.pem", a.KeyPEM()), Key: f.write("a.key", a.KeyPEM())},
			[]string{"key-as-cert.pem", "only a private key"}},
		{"a file that is not PEM", Source{Cert: f.write("garbage.pem", []byte("hello\n"))}, []string{"garbage.pem", "no PEM certificate found"}},
		{"a combined file whose key is another's", Source{Cert: f.write("mixed.pem", append(a.CertPEM(), b.KeyPEM()...))},
			[]string{"mixed.pem", "does not belong"}},
		{"the CA's own certificate", Source{Cert: f.write("ca.pem", ca.PEM())}, []string{"ca.pem", "CA certificate"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.src.Where = "proxy.yaml:7"
			good := Source{Cert: f.write("good-"+strings.ReplaceAll(c.name, " ", "-")+".pem", a.PEM()), Where: "proxy.yaml:5"}
			set, _, err := Load([]Source{good, c.src}, time.Now())
			if err == nil {
				t.Fatalf("Load: got a set of %d, want an error", len(set.Entries()))
			}
			if set != nil {
				t.Errorf("Load: got a set with the error, want nil: nothing half loaded")
			}
			msg := err.Error()
			for _, w := range append([]string{"proxy.yaml:7: "}, c.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q: want it to contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "proxy.yaml:5") {
				t.Errorf("error %q names the good certificate too", msg)
			}
		})
	}
}

func TestGetPicksByServerName(t *testing.T) {
	t.Parallel()
	ca, err := certgen.NewCA("test CA", certgen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFiles(t)
	def := issue(t, ca, certgen.Options{}, "default.test")
	wild := issue(t, ca, certgen.Options{}, "*.site.test", "site.test")
	exact := issue(t, ca, certgen.Options{}, "api.site.test")
	other := issue(t, ca, certgen.Options{}, "Other.Test")
	set, warnings, err := Load([]Source{
		{Cert: f.write("default.pem", def.PEM()), Where: "1"},
		{Cert: f.write("wild.crt", wild.CertPEM()), Key: f.write("wild.key", wild.KeyPEM()), Where: "2"},
		{Cert: f.write("exact.pem", exact.PEM()), Where: "3"},
		{Cert: f.write("other.pem", other.PEM()), Where: "4"},
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings %q, want none", warnings)
	}
	by := map[string]*certgen.Cert{"default": def, "wild": wild, "exact": exact, "other": other}
	for _, c := range []struct{ sni, want string }{
		{"api.site.test", "exact"}, // an exact name wins over a wildcard
		{"www.site.test", "wild"},
		{"site.test", "wild"},
		{"WWW.Site.Test.", "wild"}, // case and a final dot do not matter
		{"a.b.site.test", "default"},
		{"other.test", "other"},
		{"unknown.test", "default"},
		{"", "default"}, // no SNI: an IP address in the URL
	} {
		t.Run("SNI "+c.sni+" gets "+c.want, func(t *testing.T) {
			got := set.Get(&tls.ClientHelloInfo{ServerName: c.sni})
			if got.Leaf.SerialNumber.Cmp(by[c.want].Leaf.SerialNumber) != 0 {
				t.Errorf("got the certificate for %v, want %s's", got.Leaf.DNSNames, c.want)
			}
		})
	}
	if e := set.Entries(); !e[0].Default || e[1].Default || e[1].Files != f.dir+"/wild.crt and "+f.dir+"/wild.key" {
		t.Errorf("entries %+v: want the first the default, files as given", e)
	}
}

func TestLoadWarnsOfExpiredCertificates(t *testing.T) {
	t.Parallel()
	ca, err := certgen.NewCA("test CA", certgen.Options{NotBefore: time.Now().Add(-48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	f := newFiles(t)
	old := issue(t, ca, certgen.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}, "old.test")
	set, warnings, err := Load([]Source{{Cert: f.write("old.pem", old.PEM()), Where: "proxy.yaml:3"}}, time.Now())
	if err != nil {
		t.Fatalf("an expired certificate: got %v, want it loaded (HAProxy serves it too) with a warning", err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "proxy.yaml:3: ") || !strings.Contains(warnings[0], "expired") {
		t.Errorf("warnings %q, want one saying proxy.yaml:3 ... expired", warnings)
	}
	if len(set.Entries()) != 1 {
		t.Errorf("entries %+v", set.Entries())
	}
}

func TestStoreServesTheLastSwappedSet(t *testing.T) {
	t.Parallel()
	ca, err := certgen.NewCA("test CA", certgen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFiles(t)
	var st Store
	if _, err := st.GetCertificate(&tls.ClientHelloInfo{}); err == nil {
		t.Error("an empty store: got a certificate, want an error")
	}
	for i, name := range []string{"one.test", "two.test"} {
		c := issue(t, ca, certgen.Options{}, name)
		set, _, err := Load([]Source{{Cert: f.write(name+".pem", c.PEM())}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		st.Swap(set)
		got, err := st.GetCertificate(&tls.ClientHelloInfo{ServerName: "x.test"})
		if err != nil || got.Leaf.DNSNames[0] != name {
			t.Errorf("after swap %d: got %v, %v, want %s's certificate", i, got.Leaf.DNSNames, err, name)
		}
	}
}
