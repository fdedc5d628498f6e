package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/swarm"
)

// settings are the process's flags and environment; the proxy's behaviour is in the
// configuration file (config.Config).
type settings struct {
	configFile      string
	check           bool
	healthcheck     bool
	showVersion     bool
	listen          string // overrides listen: when set
	admin           string // overrides admin: when set; "off" turns it off
	log             cli.Log
	shutdownTimeout time.Duration
	statsAuth       string // user:pass, or "" for open stats
	idKey           []byte
	idKeyDefault    bool // idKey is backend.DefaultIDKey: no SERVER_ID_KEY given
	// discovery: docker (discovery.go): PROXY_DISCOVERY, the dockercloud variables and
	// HOSTNAME, read once at start.
	discovery    string // "" leaves it to the file
	dockerEnv    swarm.Env
	dockerEnvErr error
	hostname     string

	listenTLS string               // overrides listen_tls: when set; "off" turns it off
	certFiles []config.Certificate // TLS_CERT_FILES: replace certificates: when set
	httpsPort int                  // overrides https_port: when set
}

// defaultConfigFile is read when no -config or PROXY_CONFIG names a file (and
// discovery docker does not make the file optional).
const defaultConfigFile = "proxy.yaml"

// minIDKey is the shortest SERVER_ID_KEY accepted, in bytes.
const minIDKey = 16

func (s *settings) command() *cli.Command {
	table := []cli.Setting{
		{Flag: "config", Env: "PROXY_CONFIG", DefaultText: defaultConfigFile + " (none with discovery docker)", Usage: "configuration file", Set: cli.String(&s.configFile)},
		{Flag: "check", Default: "false", Bool: true, Usage: "validate the configuration, print a summary, exit 0 (bad: exit 2)", Set: cli.Bool(&s.check)},
		{Flag: "listen", Env: "LISTEN", DefaultText: "listen: in the file, else :80", Usage: "listen address", Set: cli.Addr(&s.listen)},
		{Flag: "admin", Env: "ADMIN", DefaultText: "admin: in the file, else off",
			Usage: "admin port for /stats /metrics /healthz /readyz; \"off\" turns it off",
			Set: func(v string) error {
				if v == "off" {
					s.admin = v
					return nil
				}
				return cli.Addr(&s.admin)(v)
			}},
	}
	table = append(table, s.discoverySettings()...)
	table = append(table, s.tlsSettings()...)
	table = append(table, s.log.Settings()...)
	table = append(table,
		cli.Setting{Flag: "shutdown-timeout", Env: "SHUTDOWN_TIMEOUT", Default: "10s", Usage: "on SIGTERM, wait this long for requests in flight",
			Set: cli.Duration(&s.shutdownTimeout, true)},
		cli.Setting{Flag: "healthcheck", Default: "false", Bool: true, Set: cli.Bool(&s.healthcheck),
			Usage: "probe the admin /healthz (or, admin off, the listener's " + forward.HealthPath + ")\nand exit 0 or 1: a HEALTHCHECK for FROM scratch images"},
		cli.Setting{Flag: "version", Default: "false", Bool: true, Usage: "print the version and exit", Set: cli.Bool(&s.showVersion)},
		cli.Setting{Env: "STATS_AUTH", Secret: true, Usage: "user:pass for /stats and /metrics (basic auth)",
			Set: func(v string) error {
				if v != "" && !strings.Contains(v, ":") {
					return errors.New("STATS_AUTH: write user:password, e.g. stats:$(openssl rand -hex 12)")
				}
				s.statsAuth = v
				return nil
			}},
		cli.Setting{Env: "SERVER_ID_KEY", Secret: true, DefaultText: "built-in key",
			Usage: fmt.Sprintf("key of the server ids in cookies (HMAC-SHA256), at least %d bytes,\nthe same on every proxy replica; e.g. $(openssl rand -hex 32)", minIDKey),
			Set: func(v string) error {
				switch {
				case v == "":
					s.idKey, s.idKeyDefault = []byte(backend.DefaultIDKey), true
				case len(v) < minIDKey:
					return fmt.Errorf("SERVER_ID_KEY is %d bytes; set at least %d random bytes, the same on every proxy replica, e.g. $(openssl rand -hex 32)", len(v), minIDKey)
				default:
					s.idKey = []byte(v)
				}
				return nil
			}},
	)
	return &cli.Command{
		Name: "proxy",
		Intro: "A reverse proxy with path routing and HAProxy's sticky cookies (prefix, insert or rewrite).\n" +
			"Every flag takes its default from the environment variable shown; the flag wins.",
		Settings: table,
		Footer:   configHelp,
	}
}

// configHelp is printed after the settings: the file's keys and the signals.
const configHelp = `Configuration file (YAML; unknown keys are errors; durations "5s" or milliseconds):
  listen: ":80"              admin: ":1936"          engine: fast (or std)   server_name: localhost
  maxconn: 4096              maxconn_per_ip: 512     max_header_bytes: 32768 body_min_rate: 500
  listen_tls: ":443"         certificates: [site.pem, {cert: a.crt, key: a.key}]   (HTTP/2 and HTTP/1.1)
  force_ssl: false           hsts_max_age: 0         https_port: 443      (also per service)
  retries: 3                 resolve_interval: 5s    access_log: true
  trusted_proxies: "10.0.0.0/8, 127.0.0.1"   peers whose last X-Forwarded-For hop is the client (balance source)
  timeout: {connect: 5s, server: 50s, client: 50s, http_request: 10s, body: 10s, write: 30s, tunnel: 1h}
  check:   {interval: 2s, timeout: 2s, rise: 2, fall: 3}
  services:
    NAME:
      virtual_host: "*/NAME, */NAME/*"        (the default)
      servers: "tasks.NAME:8080"              a name re-resolved every resolve_interval, IPs, or a list
      cookie: "connect.sid prefix nocache"    sticky sessions, HAProxy's cookie rule; leave out for none:
                 NAME prefix|insert|rewrite [indirect] [nocache] [postonly] [preserve] [httponly]
                 [secure] [domain D]... [attr A]... [maxidle T] [maxlife T] [dynamic]
      balance: roundrobin                     or static-rr, leastconn, source (a hash of the client's address)
      health_check: /healthz                  GET check; leave out for a TCP connect check
      check: {interval: 5s, rise: 3}          this service's own check: settings
      virtual_host_weight: 0                  higher weights' routes are tried first
  discovery: docker   instead of services: the swarm's services (on the proxy's networks) and
    their environment, as dockercloud/haproxy: VIRTUAL_HOST, VIRTUAL_HOST_WEIGHT,
    SERVICE_PORTS (required), EXCLUDE_PORTS, COOKIE, BALANCE, HEALTH_CHECK, HTTP_CHECK and
    the label com.docker.dockercloud.haproxy.deactivate=true; the proxy's own STATS_PORT,
    TIMEOUT, MAXCONN, BALANCE, HEALTH_CHECK, SWARM_MODE_POLLING_INTERVAL override the file.

Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP re-reads the file (services, servers,
checks, retries, access_log, certificates; listen, listen_tls, admin, engine, maxconn,
limits and timeouts need a restart).
Bad values exit 2 with a message naming the setting; a listen error exits 1.`

// parseSettings reads the flags and the environment; -h goes to help.
func parseSettings(args []string, getenv func(string) string, help io.Writer) (settings, error) {
	var s settings
	err := s.command().Parse(args, getenv, help)
	s.readDockerEnv(getenv)
	return s, err
}

// loadConfig reads the configuration file (readConfig: with discovery docker, maybe
// none) and applies the -listen and -admin overrides.
func (s settings) loadConfig() (*config.Config, error) {
	cfg, err := s.readConfig()
	if err != nil {
		return nil, err
	}
	if s.listen != "" {
		cfg.Listen = s.listen
	}
	switch s.admin {
	case "":
	case "off":
		cfg.Admin = ""
	default:
		cfg.Admin = s.admin
	}
	s.applyTLS(cfg)
	if err := cfg.CheckTLS(); err != nil {
		return nil, err
	}
	return cfg, nil
}
