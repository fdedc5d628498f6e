package swarm

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestEnvAppliesDockercloudSettings(t *testing.T) {
	t.Parallel()
	e, err := ParseEnv(env(map[string]string{
		"STATS_PORT":                  "1936",
		"TIMEOUT":                     "connect 4000, client 40000, server 30000",
		"MAXCONN":                     "2048",
		"HEALTH_CHECK":                "check inter 3000 rise 4 fall 5",
		"BALANCE":                     "leastconn",
		"SWARM_MODE_POLLING_INTERVAL": "2",
		"DOCKER_HOST":                 "tcp://socket-proxy:2375",
		"OPTION":                      "redispatch, forwardfor",
		"MODE":                        "http",
	}))
	if err != nil || len(e.Warnings) > 0 {
		t.Fatalf("got %v and warnings %q, want neither", err, e.Warnings)
	}
	cfg := config.Default()
	e.Apply(&cfg)
	want := config.Default()
	want.Admin, want.MaxConn, want.ResolveInterval = ":1936", 2048, 2*time.Second
	want.Timeout.Connect, want.Timeout.Client, want.Timeout.Server = 4*time.Second, 40*time.Second, 30*time.Second
	want.Check.Interval, want.Check.Rise, want.Check.Fall = 3*time.Second, 4, 5
	if cfg.Admin != want.Admin || cfg.MaxConn != want.MaxConn || cfg.ResolveInterval != want.ResolveInterval || cfg.Timeout != want.Timeout || cfg.Check != want.Check {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
	if e.Balance != "leastconn" || e.DockerHost != "tcp://socket-proxy:2375" {
		t.Errorf("got balance %q docker host %q", e.Balance, e.DockerHost)
	}

	unset := config.Default()
	Env{}.Apply(&unset)
	if d := config.Default(); unset.Admin != d.Admin || unset.Timeout != d.Timeout || unset.Check != d.Check || unset.MaxConn != d.MaxConn {
		t.Errorf("an empty environment changed the configuration: %+v", unset)
	}
}

func TestEnvWarnsOncePerUnsupportedKey(t *testing.T) {
	t.Parallel()
	for _, key := range slices.Sorted(maps.Keys(unsupportedProxyKeys)) {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			e, err := ParseEnv(env(map[string]string{key: "x"}))
			if err != nil || len(e.Warnings) != 1 || !strings.HasPrefix(e.Warnings[0], key+": not supported") {
				t.Errorf("got %v and warnings %q, want one warning naming %s", err, e.Warnings, key)
			}
		})
	}
	for _, tt := range []struct{ key, value, want string }{
		{"MODE", "tcp", `MODE: "tcp" is not supported`},
		{"OPTION", "redispatch, http-server-close", `OPTION: "http-server-close" is not supported`},
		{"BALANCE", "uri", `BALANCE: "uri" is not supported`},
		{"TIMEOUT", "connect 5000, queue 1s", `TIMEOUT: "queue" is not supported`},
		{"HEALTH_CHECK", "check port 81", `HEALTH_CHECK: "check port 81": "port" is not supported`},
	} {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			e, err := ParseEnv(env(map[string]string{tt.key: tt.value}))
			if err != nil || len(e.Warnings) < 1 || !strings.HasPrefix(e.Warnings[0], tt.want) {
				t.Errorf("got %v and warnings %q, want one starting %q", err, e.Warnings, tt.want)
			}
		})
	}
}

func TestEnvRefusesWhatItCannotDoSafely(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ key, value, want string }{
		{"HTTP_BASIC_AUTH", "user:pass", "HTTP_BASIC_AUTH is not supported: the proxy has no basic auth"},
		{"HTTP_BASIC_AUTH_SECURE", "user:hash", "HTTP_BASIC_AUTH_SECURE is not supported"},
		{"DOCKER_TLS_VERIFY", "1", "DOCKER_TLS_VERIFY is not supported: the proxy speaks plain HTTP"},
		{"STATS_PORT", "stats", `STATS_PORT="stats": write a port`},
		{"MAXCONN", "lots", `MAXCONN="lots": write a whole number`},
		{"SWARM_MODE_POLLING_INTERVAL", "5s", `SWARM_MODE_POLLING_INTERVAL="5s": write a number of seconds`},
	} {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			_, err := ParseEnv(env(map[string]string{tt.key: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
