package localstack

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
)

func TestParseCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(command) bool
		wantErr string
	}{
		{"defaults are the tutorial's", nil, nil, func(c command) bool {
			return c.replicas == 2 && c.store == "memory" && c.port == 8080 && c.adminPort == 1936 && c.bin == "bin"
		}, ""},
		{"variables set what make passes", nil, map[string]string{"REPLICAS": "3", "STORE": "cookie", "PORT": "8081"}, func(c command) bool {
			return c.replicas == 3 && c.store == "cookie" && c.port == 8081
		}, ""},
		{"a flag wins over the variable", []string{"-replicas", "4"}, map[string]string{"REPLICAS": "3"}, func(c command) bool {
			return c.replicas == 4
		}, ""},
		{"a store that does not exist is named", nil, map[string]string{"STORE": "redis"}, nil, `STORE="redis": choose memory or cookie`},
		{"a port that is not a number is named", nil, map[string]string{"PORT": "eighty"}, nil, `PORT="eighty": not a whole number`},

		{"the two ports must differ", nil, map[string]string{"PORT": "9000", "ADMIN_PORT": "9000"}, nil, "both 9000"},
		{"TLS=1 turns HTTPS on at 8443", nil, map[string]string{"TLS": "1"}, func(c command) bool {
			return c.tls && c.tlsPort == 8443
		}, ""},
		{"TLS=false leaves HTTPS off", nil, map[string]string{"TLS": "false", "QUIET": "0"}, func(c command) bool {
			return !c.tls && !c.quiet
		}, ""},
		{"TLS=no is refused rather than read as on", nil, map[string]string{"TLS": "no"}, nil, `TLS="no": want true or false`},
		{"QUIET=off is refused rather than read as on", nil, map[string]string{"QUIET": "off"}, nil, `QUIET="off": want true or false`},
		{"TLS_PORT must be a port of its own", nil, map[string]string{"TLS": "1", "TLS_PORT": "8080"}, nil, "TLS_PORT 8080 is also PORT or ADMIN_PORT"},
		{"a bare argument is not a setting", []string{"REPLICAS=3"}, nil, nil, `unexpected argument "REPLICAS=3"`},
		{"an unknown flag is a usage error", []string{"-replica", "3"}, nil, nil, "flag provided but not defined: -replica"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string { return tc.env[k] }
			c, err := parseCommand(tc.args, getenv, io.Discard)
			if tc.wantErr != "" {
				var ue *cli.UsageError
				if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want a usage error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Errorf("got %+v", c)
			}
		})
	}
}

func TestParseCommandReportsEveryBadSettingAtOnce(t *testing.T) {
	t.Parallel()
	_, err := parseCommand(nil, func(k string) string { return map[string]string{"REPLICAS": "0", "ADMIN_PORT": "70000"}[k] }, io.Discard)
	var ue *cli.UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("got error %v, want a usage error", err)
	}
	for _, want := range []string{`REPLICAS="0": choose 1 to 20`, `ADMIN_PORT="70000": choose 1 to 65535`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to mention %s", err, want)
		}
	}
}
