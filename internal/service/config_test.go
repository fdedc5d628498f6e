package service

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
)

const goodSecret = "0123456789abcdef0123456789abcdef" // 32 bytes

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig("service2", nil, envOf(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Service: "service2", Addr: ":8080", CookieName: "connect.sid", CookiePath: "/service2",
		Store: "memory", SessionMax: 100000, SessionTTL: 30 * time.Minute, Log: cli.Log{Format: "text", Level: slog.LevelInfo}, ShutdownTimeout: 10 * time.Second,
	}
	if c.Service != want.Service || c.Addr != want.Addr || c.CookieName != want.CookieName ||
		c.CookiePath != want.CookiePath || c.CookieSecure || c.Store != want.Store ||
		c.SessionMax != want.SessionMax || c.SessionTTL != want.SessionTTL || c.Log != want.Log || c.ShutdownTimeout != want.ShutdownTimeout || c.Instance != "" ||
		len(c.Secret) != 0 || c.Healthcheck {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

func TestParseConfigEnvAndFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"ADDR": ":9000", "INSTANCE_NAME": "replica-a", "SESSION_COOKIE": "sid", "COOKIE_PATH": "/",
		"COOKIE_SECURE": "true", "SESSION_STORE": "cookie", "SESSION_MAX": "5", "SESSION_TTL": "1h",
		"SESSION_SECRET": goodSecret, "LOG_FORMAT": "json", "LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "3s",
	}
	t.Run("the environment sets every setting", func(t *testing.T) {
		c, err := ParseConfig("service1", nil, envOf(env), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Addr != ":9000" || c.Instance != "replica-a" || c.CookieName != "sid" || c.CookiePath != "/" ||
			!c.CookieSecure || c.Store != "cookie" || c.SessionMax != 5 || c.SessionTTL != time.Hour ||
			string(c.Secret) != goodSecret || c.Log.Format != "json" || c.Log.Level != slog.LevelDebug ||
			c.ShutdownTimeout != 3*time.Second {
			t.Errorf("got %+v", c)
		}
	})
	t.Run("a flag wins over the environment", func(t *testing.T) {
		args := []string{"-addr", "127.0.0.1:1", "-instance", "x", "-cookie-name", "n", "-cookie-path", "/p",
			"-cookie-secure=false", "-store", "memory", "-session-max", "7", "-session-ttl", "2m",
			"-log-format", "text", "-log-level", "warn", "-shutdown-timeout", "1s", "-healthcheck"}
		c, err := ParseConfig("service1", args, envOf(env), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Addr != "127.0.0.1:1" || c.Instance != "x" || c.CookieName != "n" || c.CookiePath != "/p" ||
			c.CookieSecure || c.Store != "memory" || c.SessionMax != 7 || c.SessionTTL != 2*time.Minute ||
			c.Log.Format != "text" || c.Log.Level != slog.LevelWarn || c.ShutdownTimeout != time.Second || !c.Healthcheck {
			t.Errorf("got %+v", c)
		}
	})
	t.Run("a good flag overrides a bad environment value", func(t *testing.T) {
		if _, err := ParseConfig("service1", []string{"-session-max", "3"}, envOf(map[string]string{"SESSION_MAX": "lots"}), &bytes.Buffer{}); err != nil {
			t.Errorf("got %v, want no error", err)
		}
	})
}

func TestParseConfigBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // every part must appear in the message
	}{
		{"bad flag value", []string{"-session-max", "x"}, nil, []string{"-session-max"}},
		{"unknown flag", []string{"-nope"}, nil, []string{"-nope", "-h"}},
		{"stray argument", []string{"extra"}, nil, []string{`"extra"`}},
		{"bad ADDR", nil, map[string]string{"ADDR": "8080"}, []string{"ADDR", "host:port"}},
		{"bad SESSION_STORE", nil, map[string]string{"SESSION_STORE": "redis"}, []string{"SESSION_STORE", "memory or cookie"}},
		{"zero SESSION_MAX", nil, map[string]string{"SESSION_MAX": "0"}, []string{"SESSION_MAX"}},
		{"negative SESSION_TTL", nil, map[string]string{"SESSION_TTL": "-1m"}, []string{"SESSION_TTL"}},
		{"SESSION_TTL without unit", nil, map[string]string{"SESSION_TTL": "30"}, []string{"SESSION_TTL"}},
		{"bad COOKIE_SECURE", nil, map[string]string{"COOKIE_SECURE": "yes please"}, []string{"COOKIE_SECURE"}},
		{"bad COOKIE_PATH", nil, map[string]string{"COOKIE_PATH": "service1"}, []string{"COOKIE_PATH"}},
		{"bad SESSION_COOKIE", nil, map[string]string{"SESSION_COOKIE": "a b"}, []string{"SESSION_COOKIE"}},
		{"bad LOG_FORMAT", nil, map[string]string{"LOG_FORMAT": "xml"}, []string{"LOG_FORMAT"}},
		{"bad LOG_LEVEL", nil, map[string]string{"LOG_LEVEL": "loud"}, []string{"LOG_LEVEL"}},
		{"bad SHUTDOWN_TIMEOUT", nil, map[string]string{"SHUTDOWN_TIMEOUT": "soon"}, []string{"SHUTDOWN_TIMEOUT"}},
		{"every bad setting is reported", nil, map[string]string{"SESSION_MAX": "x", "LOG_FORMAT": "xml"}, []string{"SESSION_MAX", "LOG_FORMAT"}},
		{"cookie store without a secret", nil, map[string]string{"SESSION_STORE": "cookie"},
			[]string{"SESSION_STORE=cookie needs SESSION_SECRET", "SESSION_SECRET_FILE", "openssl rand -hex 32"}},
		{"short secret", nil, map[string]string{"SESSION_SECRET": "short"},
			[]string{"SESSION_SECRET is 5 bytes", "at least 32", "openssl rand -hex 32"}},
		{"short secret with the cookie store", nil, map[string]string{"SESSION_STORE": "cookie", "SESSION_SECRET": "short"},
			[]string{"SESSION_SECRET is 5 bytes"}},
		{"a bad setting and a short secret are reported together", nil, map[string]string{"SESSION_MAX": "x", "SESSION_SECRET": "short"},
			[]string{"SESSION_MAX", "SESSION_SECRET is 5 bytes"}},
		{"an empty secret file with the cookie store", []string{"-secret-file", os.DevNull}, map[string]string{"SESSION_STORE": "cookie"},
			[]string{"SESSION_SECRET_FILE", "empty", "at least 32"}},
		{"secret and secret file", nil, map[string]string{"SESSION_SECRET": goodSecret, "SESSION_SECRET_FILE": "/x"},
			[]string{"set only one"}},
		{"missing secret file", nil, map[string]string{"SESSION_SECRET_FILE": "/does/not/exist"},
			[]string{"SESSION_SECRET_FILE", "/does/not/exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseConfig("service1", tt.args, envOf(tt.env), &bytes.Buffer{})
			var uerr *cli.UsageError
			if !errors.As(err, &uerr) {
				t.Fatalf("got error %v, want a *cli.UsageError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestParseConfigSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "session_secret")
	if err := os.WriteFile(path, []byte(goodSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig("service1", []string{"-secret-file", path, "-store", "cookie"}, envOf(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Secret) != goodSecret {
		t.Errorf("got secret of %d bytes, want the file's %d without its newline", len(c.Secret), len(goodSecret))
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, err := ParseConfig("service1", []string{"-h"}, envOf(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v, want flag.ErrHelp", err)
	}
	// Each setting has a row of its own: one line showing its flag, its variable and
	// its default together.
	lines := strings.Split(out.String(), "\n")
	c := Config{Service: "service1"}
	for _, s := range c.command().Settings {
		var want []string
		if s.Flag != "" {
			want = append(want, "-"+s.Flag)
		}
		for _, w := range []string{s.Env, s.Default, s.DefaultText} {
			if w != "" {
				want = append(want, w)
			}
		}
		found := slices.ContainsFunc(lines, func(l string) bool {
			return !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(l, w) })
		})
		if !found {
			t.Errorf("-h has no line showing all of %q:\n%s", want, &out)
		}
	}
	for _, w := range []string{"SESSION_SECRET", "/service1"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("-h does not show %q", w)
		}
	}
}
