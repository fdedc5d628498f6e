package certgen

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestIssuedCertificateVerifiesAgainstItsCA(t *testing.T) {
	t.Parallel()
	ca, err := NewCA("test CA", Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue(Options{}, "site.test", "*.site.test", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(c.PEM(), c.PEM())
	if err != nil {
		t.Fatalf("the combined PEM does not load as a key pair: %v", err)
	}
	for _, name := range []string{"site.test", "a.site.test", "127.0.0.1"} {
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool()}); err != nil {
			t.Errorf("verifying for %s: got %v, want a valid chain", name, err)
		}
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: ca.Pool()}); err == nil {
		t.Error("verifying for other.test: got a valid chain, want a name mismatch")
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: "site.test"}); err == nil {
		t.Error("verifying without the CA: got a valid chain, want unknown authority")
	}
}

func TestValidKeepsOnlyAFileThatCoversTheNamesForADay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, o Options, names ...string) string {
		c, err := SelfSigned(o, names...)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := WriteFile(p, c.PEM()); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.pem", Options{}, "localhost", "127.0.0.1")
	soon := write("soon.pem", Options{Validity: 2 * time.Hour}, "localhost")
	for _, c := range []struct {
		name  string
		path  string
		names []string
		want  bool
	}{
		{"a fresh file for the names is kept", good, []string{"localhost", "127.0.0.1"}, true},
		{"a file lacking a name is replaced", good, []string{"example.test"}, false},
		{"a file expiring within a day is replaced", soon, []string{"localhost"}, false},
		{"a missing file is written", filepath.Join(dir, "none.pem"), []string{"localhost"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Valid(c.path, c.names...); got != c.want {
				t.Errorf("Valid: got %v, want %v", got, c.want)
			}
		})
	}
	st, err := os.Stat(good)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode of the written file: got %v, want 0600 (it holds a private key)", st.Mode().Perm())
	}
}

func TestEnsureKeepsAValidFileAndWritesOtherwise(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "new", "tls.pem")
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, step := range []struct {
		name      string
		o         Options
		names     []string
		wantWrote bool
	}{
		{"a missing file is written, with its folder", Options{}, []string{"localhost"}, true},
		{"a valid file is kept", Options{}, []string{"localhost"}, false},
		{"a file lacking a name is replaced", Options{}, []string{"localhost", "127.0.0.1"}, true},
		{"Renew replaces a valid file", Options{Renew: true}, []string{"localhost", "127.0.0.1"}, true},
	} {
		before, _ := os.ReadFile(path)
		c, wrote, err := Ensure(path, step.o, step.names...)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		after := read()
		switch {
		case wrote != step.wantWrote:
			t.Errorf("%s: got wrote %v, want %v", step.name, wrote, step.wantWrote)
		case wrote && (after == string(before) || after != string(c.PEM())):
			t.Errorf("%s: the file does not hold the new certificate", step.name)
		case !wrote && after != string(before):
			t.Errorf("%s: the file changed though Ensure kept it", step.name)
		}
		if !Valid(path, step.names...) {
			t.Errorf("%s: afterwards the file is not valid for %q", step.name, step.names)
		}
	}
}

func TestEnsureNeverReplacesACertificateACAIssued(t *testing.T) {
	t.Parallel()
	ca, err := NewCA("Some CA", Options{})
	if err != nil {
		t.Fatal(err)
	}
	real, err := ca.Issue(Options{}, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		data       []byte
		o          Options
		wantIssued bool
	}{
		{"a real certificate for other names", real.PEM(), Options{}, true},
		{"a real certificate, with Renew", real.PEM(), Options{Renew: true}, true},
		{"a file holding no certificate", []byte("not a certificate\n"), Options{}, false},
	} {
		path := filepath.Join(t.TempDir(), "tls.pem")
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, wrote, err := Ensure(path, tc.o, "localhost", "127.0.0.1")
		fe, ok := errors.AsType[*ForeignError](err)
		if wrote || !ok || fe.Issued != tc.wantIssued {
			t.Errorf("%s: got wrote %v, err %v, want the file kept and a ForeignError (issued %v)", tc.name, wrote, err, tc.wantIssued)
		}
		if after, _ := os.ReadFile(path); string(after) != string(tc.data) {
			t.Errorf("%s: the file was changed", tc.name)
		}
	}
}
