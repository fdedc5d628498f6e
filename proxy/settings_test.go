package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
)

func TestRunCheckAndFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("services:\n  service1:\n    servers: \"127.0.0.1:9001\"\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("services:\n  service1:\n    servers: \"127.0.0.1:9001\"\n    balance: fastest\n"), 0o600)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	ctx := context.Background()

	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"-check"}, env(map[string]string{"PROXY_CONFIG": good}), &out, &errOut); err != nil {
		t.Fatalf("-check on a good file: %v", err)
	}
	if !strings.Contains(out.String(), "good.yaml: ok") || !strings.Contains(out.String(), "service service1: */service1, */service1/* -> 127.0.0.1:9001") {
		t.Errorf("-check printed %q", out.String())
	}

	err := run(ctx, []string{"-config", bad, "-check"}, env(nil), &out, &errOut)
	var ue *cli.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "bad.yaml:4: services.service1.balance") {
		t.Errorf("-check on a bad file: %v, want a usage error at bad.yaml:4", err)
	}

	out.Reset()
	if err := run(ctx, []string{"-h"}, env(nil), &out, &errOut); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	for _, want := range []string{"-config", "PROXY_CONFIG", "LISTEN", "ADMIN", "STATS_AUTH", "SERVER_ID_KEY", "LOG_FORMAT", "LOG_LEVEL", "SHUTDOWN_TIMEOUT", "-healthcheck", "-check", "maxconn", "retries", "resolve_interval", "timeout:", "check:", "virtual_host", "servers", "cookie", "balance", "health_check", "SIGHUP"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not mention %s", want)
		}
	}

	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SERVER_ID_KEY": "short"}, "SERVER_ID_KEY is 5 bytes"},
		{map[string]string{"STATS_AUTH": "nopassword"}, "STATS_AUTH: write user:password"},
		{map[string]string{"STATS_AUTH": "a:b", "STATS_AUTH_FILE": "/x"}, "set only one"},
		{map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{map[string]string{"SHUTDOWN_TIMEOUT": "soon"}, "SHUTDOWN_TIMEOUT"},
		{map[string]string{"LISTEN": "nowhere"}, "LISTEN"},
	} {
		tt.env["PROXY_CONFIG"] = good
		err := run(ctx, []string{"-check"}, env(tt.env), &out, &errOut)
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: %v, want a usage error naming %s", tt.env, err, tt.want)
		}
	}

	set, err := parseSettings([]string{"-admin", "off"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	set.configFile = good
	if cfg, err := set.loadConfig(); err != nil || cfg.Admin != "" {
		t.Errorf("-admin off: admin %q, %v", cfg.Admin, err)
	}

	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("0123456789abcdef0123\n"), 0o600)
	set, err = parseSettings(nil, env(map[string]string{"SERVER_ID_KEY_FILE": keyFile}), io.Discard)
	if err != nil || string(set.idKey) != "0123456789abcdef0123" || set.idKeyDefault {
		t.Errorf("SERVER_ID_KEY_FILE: %q %v", set.idKey, err)
	}
}
