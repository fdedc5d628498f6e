package service

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

// Config is every setting of a service, parsed once by ParseConfig.
type Config struct {
	Service         string        // service name: route, default cookie path, answers
	Addr            string        // ADDR, -addr
	Instance        string        // INSTANCE_NAME, -instance; "" means os.Hostname()
	CookieName      string        // SESSION_COOKIE, -cookie-name
	CookiePath      string        // COOKIE_PATH, -cookie-path
	CookieSecure    bool          // COOKIE_SECURE, -cookie-secure
	Store           string        // SESSION_STORE, -store: "memory" or "cookie"
	SessionMax      int           // SESSION_MAX, -session-max
	SessionTTL      time.Duration // SESSION_TTL, -session-ttl
	Secret          []byte        // SESSION_SECRET, or the file in SESSION_SECRET_FILE, -secret-file; never logged
	Log             cli.Log       // LOG_FORMAT, -log-format; LOG_LEVEL, -log-level
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT, -shutdown-timeout
	Healthcheck     bool          // -healthcheck: probe /healthz and exit
}

// command is the settings table of a service, storing into c.
func (c *Config) command() *cli.Command {
	settings := []cli.Setting{
		{Flag: "addr", Env: "ADDR", Default: ":8080", Usage: "listen address, host:port", Set: cli.Addr(&c.Addr)},
		{Flag: "instance", Env: "INSTANCE_NAME", DefaultText: "os.Hostname()", Usage: "name shown in answers (tells local replicas apart)",
			Set: cli.String(&c.Instance)},
		{Flag: "cookie-name", Env: "SESSION_COOKIE", Default: "connect.sid", Usage: "session cookie name (the proxy's sticky rule keys on it)",
			Set: cli.CookieName(&c.CookieName)},
		{Flag: "cookie-path", Env: "COOKIE_PATH", Default: "/" + c.Service, Usage: "session cookie Path; / reproduces the original's shared-cookie trap",
			Set: func(v string) error {
				if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, ";\r\n") {
					return errors.New("want a path starting with /, without ;")
				}
				c.CookiePath = v
				return nil
			}},
		{Flag: "cookie-secure", Env: "COOKIE_SECURE", Default: "false", Usage: "mark the session cookie Secure (HTTPS only)", Bool: true,
			Set: cli.Bool(&c.CookieSecure)},
		{Flag: "store", Env: "SESSION_STORE", Default: "memory", Usage: "session store: memory (bounded, per replica) or cookie (stateless, signed+encrypted)",
			Set: cli.OneOf(&c.Store, "memory", "cookie")},
		{Flag: "session-max", Env: "SESSION_MAX", Default: "100000", Usage: "memory store: most live sessions (least recently used go first)",
			Set: cli.Int(&c.SessionMax, 1, math.MaxInt)},
		{Flag: "session-ttl", Env: "SESSION_TTL", Default: "30m", Usage: "idle expiry of a session (memory: since its last request; cookie: cookie age)",
			Set: cli.Duration(&c.SessionTTL, false)},
		{Flag: "secret-file", Env: "SESSION_SECRET", Secret: true,
			Usage: fmt.Sprintf("session secret, >= %d bytes; -secret-file and SESSION_SECRET_FILE name a file\n"+
				"holding it (/run/secrets/session_secret); required by the cookie store, random per\n"+
				"process for the memory store if unset", store.MinSecretLen),
			Set: c.setSecret},
	}
	settings = append(settings, c.Log.Settings()...)
	settings = append(settings,
		cli.Setting{Flag: "shutdown-timeout", Env: "SHUTDOWN_TIMEOUT", Default: "10s", Usage: "on SIGTERM/SIGINT, how long in-flight requests may take",
			Set: cli.Duration(&c.ShutdownTimeout, false)},
		cli.Setting{Flag: "healthcheck", Default: "false", Usage: "probe this service's /healthz on 127.0.0.1 and exit 0 (healthy) or 1", Bool: true,
			Set: cli.Bool(&c.Healthcheck)},
	)
	return &cli.Command{
		Name: c.Service,
		Intro: fmt.Sprintf("%s counts page views per session: GET /%s (Accept: application/json for JSON),\n"+
			"GET /healthz, GET /debug/sessions. Every setting is a flag and an environment\n"+
			"variable; the flag wins.", c.Service, c.Service),
		Settings: settings,
		Footer:   "Bad values exit 2. Make a secret with: openssl rand -hex 32",
	}
}

// ParseConfig parses the settings of service from args (flags) and getenv
// (environment): the environment gives the defaults, a flag overrides it. It reads
// SESSION_SECRET or SESSION_SECRET_FILE. Every bad setting is reported together in a
// *cli.UsageError; -h or -help give flag.ErrHelp after printing the settings to help.
func ParseConfig(service string, args []string, getenv func(string) string, help io.Writer) (Config, error) {
	c := Config{Service: service}
	if err := c.command().Parse(args, getenv, help); err != nil {
		return Config{}, err
	}
	return c, nil
}

// secretHint says how to make a good secret.
const secretHint = "e.g. SESSION_SECRET=$(openssl rand -hex 32), or a swarm secret in SESSION_SECRET_FILE"

// setSecret stores the secret read from SESSION_SECRET or SESSION_SECRET_FILE ("" when
// neither is set) and checks it against the store, which cli.Command.Parse has set by
// then: the cookie store needs one; any secret given must be >= store.MinSecretLen.
func (c *Config) setSecret(v string) error {
	c.Secret = []byte(v)
	switch {
	case v == "" && c.Store == "cookie":
		return fmt.Errorf("SESSION_STORE=cookie needs SESSION_SECRET (or SESSION_SECRET_FILE), unset or empty now: set at least %d random bytes, %s",
			store.MinSecretLen, secretHint)
	case v != "" && len(v) < store.MinSecretLen:
		return fmt.Errorf("SESSION_SECRET is %d bytes; set at least %d random bytes, %s",
			len(v), store.MinSecretLen, secretHint)
	}
	return nil
}
