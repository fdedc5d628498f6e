package cli

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// demo is a command with one setting of each kind.
type demo struct {
	addr    string
	n       int
	ttl     time.Duration
	verbose bool
	secret  string
	store   string
}

func (d *demo) command() *Command {
	return &Command{Name: "demo", Intro: "demo does nothing.", Footer: "Signals: none.", Settings: []Setting{
		{Flag: "addr", Env: "ADDR", Default: ":8080", Usage: "listen address", Set: Addr(&d.addr)},
		{Flag: "n", Env: "N", Default: "3", Usage: "how many", Set: Int(&d.n, 1, 10)},
		{Flag: "ttl", Env: "TTL", Default: "30m", Usage: "idle expiry\nof a session", Set: Duration(&d.ttl, false)},
		{Flag: "store", Env: "STORE", Default: "memory", Usage: "memory or cookie", Set: OneOf(&d.store, "memory", "cookie")},
		{Flag: "verbose", Bool: true, Usage: "say more", Set: Bool(&d.verbose)},
		{Flag: "secret-file", Env: "SECRET", Secret: true, Usage: "the secret", Set: String(&d.secret)},
	}}
}

func envOf(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestParseTakesDefaultsThenEnvironmentThenFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want demo
	}{
		{"the defaults apply when nothing is set", nil, nil, demo{addr: ":8080", n: 3, ttl: 30 * time.Minute, store: "memory"}},
		{"the environment overrides a default", nil, map[string]string{"N": "5", "STORE": "cookie", "SECRET": "s3"},
			demo{addr: ":8080", n: 5, ttl: 30 * time.Minute, store: "cookie", secret: "s3"}},
		{"a flag wins over the environment", []string{"-n", "7", "-verbose"}, map[string]string{"N": "5"},
			demo{addr: ":8080", n: 7, ttl: 30 * time.Minute, store: "memory", verbose: true}},
		{"a good flag hides a bad variable", []string{"-n", "2"}, map[string]string{"N": "lots"},
			demo{addr: ":8080", n: 2, ttl: 30 * time.Minute, store: "memory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var d demo
			if err := d.command().Parse(tc.args, envOf(tc.env), &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			if d != tc.want {
				t.Errorf("got %+v, want %+v", d, tc.want)
			}
		})
	}
}

func TestParseReportsEveryBadSettingAsAUsageError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"a bad variable is named with its value", nil, map[string]string{"N": "lots"}, []string{`N="lots": not a whole number`}},
		{"a number out of range says the range", nil, map[string]string{"N": "11"}, []string{`N="11": choose 1 to 10`}},
		{"a bad flag is named", []string{"-ttl", "soon"}, nil, []string{"-ttl", "positive duration", "demo -h"}},
		{"an unknown flag is named", []string{"-nope"}, nil, []string{"-nope"}},
		{"a stray argument is named", []string{"extra"}, nil, []string{`unexpected argument "extra"`}},
		{"every bad variable is reported", nil, map[string]string{"N": "x", "STORE": "redis", "ADDR": "80"},
			[]string{`N="x"`, `STORE="redis": choose memory or cookie`, `ADDR="80"`, "host:port"}},
		{"a secret and its file both set", nil, map[string]string{"SECRET": "a", "SECRET_FILE": "/x"}, []string{"set only one"}},
		{"a missing secret file", []string{"-secret-file", "/does/not/exist"}, nil, []string{"SECRET_FILE", "/does/not/exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var d demo
			err := d.command().Parse(tc.args, envOf(tc.env), &bytes.Buffer{})
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want a *UsageError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestSecretComesFromItsFileWithoutTheFinalNewline(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("from the file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"named by NAME_FILE", nil, map[string]string{"SECRET_FILE": path}},
		{"named by the flag", []string{"-secret-file", path}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d demo
			if err := d.command().Parse(tc.args, envOf(tc.env), &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			if d.secret != "from the file" {
				t.Errorf("got %q, want %q", d.secret, "from the file")
			}
		})
	}
}

func TestHelpListsFlagEnvDefaultAndMeaning(t *testing.T) {
	t.Parallel()
	var d demo
	var out bytes.Buffer
	if err := d.command().Parse([]string{"-h"}, envOf(nil), &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"Usage: demo [flags]", "demo does nothing.", "FLAG", "ENV", "DEFAULT", "MEANING",
		"-addr", "ADDR", ":8080", "listen address", "-verbose", "-secret-file", "SECRET, SECRET_FILE", "(none)",
		"of a session", "Signals: none."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h lacks %q:\n%s", want, out.String())
		}
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	usage := Usage(errors.New("bad"))
	for _, tc := range []struct {
		name string
		err  error
		args []string
		want int
	}{
		{"success exits 0", nil, nil, ExitOK},
		{"-h exits 0", flag.ErrHelp, []string{"-h"}, ExitOK},
		{"a usage error exits 2", usage, nil, ExitUsage},
		{"a runtime failure exits 1", errors.New("port in use"), nil, ExitFailure},
		{"a usage error of a -healthcheck exits 1, as Docker reserves 2", usage, []string{"-healthcheck", "-addr", "x"}, ExitFailure},
		{"-healthcheck=false is not a health check", usage, []string{"-healthcheck=false"}, ExitUsage},
		{"a -healthcheck after -- is an argument", usage, []string{"--", "-healthcheck"}, ExitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ExitCode(tc.err, tc.args); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestUsageOfNoErrorIsNil(t *testing.T) {
	t.Parallel()
	if err := Usage(nil, nil); err != nil {
		t.Errorf("got %v, want nil", err)
	}
}

func TestCheckCookieName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"connect.sid", true}, {"SRV_ID-1~", true}, {"", false}, {"a b", false}, {"a;b", false}, {"a=b", false}, {"é", false}} {
		if err := CheckCookieName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckCookieName(%q): got %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr string
		ok   bool
	}{{":80", true}, {"127.0.0.1:8080", true}, {"[::]:0", true}, {"80", false}, {":http", false}, {":70000", false}, {"", false}} {
		if err := CheckAddr(tc.addr); (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q): got %v, want ok %v", tc.addr, err, tc.ok)
		}
	}
}
