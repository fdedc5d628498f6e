package swarm

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/health"
)

// Env is the proxy's own environment in dockercloud/haproxy's vocabulary, which the
// proxy reads with discovery: docker. Make it with ParseEnv; Apply puts it on a
// configuration. The zero Env changes nothing.
type Env struct {
	DockerHost string // DOCKER_HOST: "" for DefaultHost
	// Balance is BALANCE, for the services that set none ("" is roundrobin).
	Balance string
	// Warnings name each variable, or part of one, that the proxy does not do, and
	// what it does instead. They are sentences ready to log.
	Warnings []string

	statsPort string        // STATS_PORT
	maxConn   int           // MAXCONN
	timeout   string        // TIMEOUT
	check     health.Config // HEALTH_CHECK
	interval  time.Duration // SWARM_MODE_POLLING_INTERVAL
}

// certsFromFiles is why the certificate variables, the proxy's and a service's,
// are not read.
const certsFromFiles = "certificates come from files, not the environment: TLS_CERT_FILES (e.g. a swarm secret) or certificates: in the file"

// unsupportedProxyKeys are dockercloud/haproxy's own variables that this proxy does
// not do, and why. (ADDITIONAL_BACKEND_<NAME> and EXTRA_FRONTEND_SETTINGS_<PORT> have
// a name of the user's: of those only the usual ports are looked for.)
var unsupportedProxyKeys = map[string]string{
	"ADDITIONAL_SERVICES":         "it is for compose mode; in a swarm every service on the proxy's networks is read",
	"CA_CERT":                     "client certificates are not asked for",
	"CA_CERT_FILE":                "client certificates are not asked for",
	"CERT_FOLDER":                 certsFromFiles,
	"DEFAULT_SSL_CERT":            certsFromFiles,
	"SSL_CERT":                    certsFromFiles,
	"EXTRA_SSL_CERTS":             certsFromFiles,
	"SSL_BIND_CIPHERS":            "TLS is 1.2 and 1.3 with Go's default cipher suites",
	"SSL_BIND_OPTIONS":            "TLS is 1.2 and 1.3 with Go's default cipher suites",
	"EXTRA_BIND_SETTINGS":         "HAProxy settings are not read",
	"EXTRA_DEFAULT_SETTINGS":      "HAProxy settings are not read",
	"EXTRA_DEFAULT_SETTINGS_FILE": "HAProxy settings are not read",
	"EXTRA_GLOBAL_SETTINGS":       "HAProxy settings are not read",
	"EXTRA_GLOBAL_SETTINGS_FILE":  "HAProxy settings are not read",
	"EXTRA_ROUTE_SETTINGS":        "HAProxy settings are not read",
	"EXTRA_FRONTEND_SETTINGS_80":  "HAProxy settings are not read",
	"EXTRA_FRONTEND_SETTINGS_443": "HAProxy settings are not read",
	"FORCE_DEFAULT_BACKEND":       "a service without VIRTUAL_HOST always takes the requests no other service takes",
	"MONITOR_PORT":                "the proxy answers /healthz on its admin port (STATS_PORT) and /.proxy/healthz on its listener",
	"MONITOR_URI":                 "the proxy answers /healthz on its admin port (STATS_PORT) and /.proxy/healthz on its listener",
	"RELOAD_TIMEOUT":              "a change is applied in place: no process is replaced and no connection dropped",
	"RSYSLOG_DESTINATION":         "the proxy logs to its standard error (LOG_FORMAT=json for one JSON object a line)",
	"SKIP_FORWARDED_PROTO":        "X-Forwarded-For, -Host and -Proto are always set",
	"NBPROC":                      "the proxy is one process using every core",
	"HAPROXY_USER":                "there is no HAProxy process",
	"HAPROXY_GROUP":               "there is no HAProxy process",
	"DEBUG":                       "set LOG_LEVEL=debug",
	"DOCKER_CERT_PATH":            "the proxy speaks plain HTTP to DOCKER_HOST (a unix socket, or a socket proxy on the stack's network)",
}

// refusedProxyKeys are variables the proxy will not start with: ignoring them would
// leave open what the user meant to protect.
var refusedProxyKeys = map[string]string{
	"HTTP_BASIC_AUTH":        "the proxy has no basic auth, and would serve every service without it; put the auth in the services, or remove HTTP_BASIC_AUTH",
	"HTTP_BASIC_AUTH_SECURE": "the proxy has no basic auth, and would serve every service without it; put the auth in the services, or remove HTTP_BASIC_AUTH_SECURE",
	"DOCKER_TLS_VERIFY":      "the proxy speaks plain HTTP to the Engine API; reach it through the unix socket or a socket proxy on the stack's network (tcp://socket-proxy:2375), or remove DOCKER_TLS_VERIFY",
}

// ParseEnv reads the proxy's dockercloud/haproxy variables from getenv. A value that
// cannot be read at all (MAXCONN=lots) is an error naming the variable; a variable or
// a part of one that the proxy does not do is a warning in Env.Warnings.
func ParseEnv(getenv func(string) string) (Env, error) {
	var e Env
	var errs []error
	warn := func(key, format string, args ...any) {
		e.Warnings = append(e.Warnings, key+": "+fmt.Sprintf(format, args...))
	}
	for _, k := range slices.Sorted(maps.Keys(refusedProxyKeys)) {
		if getenv(k) != "" {
			errs = append(errs, fmt.Errorf("%s is not supported: %s", k, refusedProxyKeys[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(unsupportedProxyKeys)) {
		if getenv(k) != "" {
			warn(k, "not supported (%s); ignored", unsupportedProxyKeys[k])
		}
	}
	e.DockerHost = getenv("DOCKER_HOST")
	if v := getenv("STATS_PORT"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("STATS_PORT=%q: write a port from 1 to 65535, e.g. 1936", v))
		} else {
			e.statsPort = strconv.Itoa(n)
		}
	}
	if v := getenv("MAXCONN"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 1<<20 {
			errs = append(errs, fmt.Errorf("MAXCONN=%q: write a whole number from 1 to %d, e.g. 4096", v, 1<<20))
		} else {
			e.maxConn = n
		}
	}
	if v := getenv("SWARM_MODE_POLLING_INTERVAL"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 3600 {
			errs = append(errs, fmt.Errorf("SWARM_MODE_POLLING_INTERVAL=%q: write a number of seconds from 1 to 3600, e.g. 5", v))
		} else {
			e.interval = time.Duration(n) * time.Second
		}
	}
	if v := getenv("TIMEOUT"); v != "" {
		var t config.Timeouts
		for _, p := range parseTimeout(v, &t) {
			warn("TIMEOUT", "%s; ignored", p)
		}
		e.timeout = v
	}
	if v := getenv("HEALTH_CHECK"); v != "" {
		c, problems := parseHealthCheck(v)
		for _, p := range problems {
			warn("HEALTH_CHECK", "%q: %s", v, p)
		}
		e.check = c
	}
	if v := getenv("BALANCE"); v != "" {
		if _, err := backend.ParseBalance(v); err != nil {
			warn("BALANCE", "%v; services without their own BALANCE are balanced roundrobin", err)
		} else {
			e.Balance = v
		}
	}
	if v := getenv("OPTION"); v != "" {
		for _, p := range parseOption(v) {
			warn("OPTION", "%s; ignored (the proxy always redispatches, logs each request and sets X-Forwarded-For)", p)
		}
	}
	if v := getenv("MODE"); v != "" && !strings.EqualFold(v, "http") {
		warn("MODE", "%q is not supported: the proxy balances HTTP only", v)
	}
	return e, errors.Join(errs...)
}

// Apply puts the variables that are set on cfg: STATS_PORT turns the admin port on
// (/stats, /metrics, /healthz; STATS_AUTH protects it), TIMEOUT, MAXCONN and
// HEALTH_CHECK replace the file's timeout:, maxconn: and check:, and
// SWARM_MODE_POLLING_INTERVAL its resolve_interval:.
func (e Env) Apply(cfg *config.Config) {
	if e.statsPort != "" {
		cfg.Admin = ":" + e.statsPort
	}
	if e.maxConn > 0 {
		cfg.MaxConn = e.maxConn
	}
	if e.timeout != "" {
		parseTimeout(e.timeout, &cfg.Timeout)
	}
	cfg.Check = e.check.Over(cfg.Check)
	if e.interval > 0 {
		cfg.ResolveInterval = e.interval
	}
}
