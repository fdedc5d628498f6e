package service

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

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
	Secret          []byte        // SESSION_SECRET or the file's content; never logged
	SecretFile      string        // SESSION_SECRET_FILE, -secret-file
	LogFormat       string        // LOG_FORMAT, -log-format: "text" or "json"
	LogLevel        slog.Level    // LOG_LEVEL, -log-level
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT, -shutdown-timeout
	Healthcheck     bool          // -healthcheck: probe /healthz and exit
}

// ConfigError is a bad setting: the binaries exit 2 on it. Its text names every bad
// setting and how to fix it.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// setting is one row of the settings table: a flag, its environment variable (the
// flag's default) and how to parse a value into the Config.
type setting struct {
	flag, env, def, usage string
	isBool                bool
	set                   func(c *Config, v string) error
}

// settings lists every setting in the order -h shows them.
func settings(service string) []setting {
	return []setting{
		{flag: "addr", env: "ADDR", def: ":8080", usage: "listen address, host:port",
			set: func(c *Config, v string) error {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return errors.New("want host:port, e.g. :8080")
				}
				c.Addr = v
				return nil
			}},
		{flag: "instance", env: "INSTANCE_NAME", def: "os.Hostname()", usage: "name shown in answers (tells local replicas apart)",
			set: func(c *Config, v string) error { c.Instance = v; return nil }},
		{flag: "cookie-name", env: "SESSION_COOKIE", def: "connect.sid", usage: "session cookie name (the proxy's sticky rule keys on it)",
			set: func(c *Config, v string) error {
				if !validCookieName(v) {
					return errors.New("not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)")
				}
				c.CookieName = v
				return nil
			}},
		{flag: "cookie-path", env: "COOKIE_PATH", def: "/" + service, usage: "session cookie Path; / reproduces the original's shared-cookie trap",
			set: func(c *Config, v string) error {
				if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, ";\r\n") {
					return errors.New("want a path starting with /, without ;")
				}
				c.CookiePath = v
				return nil
			}},
		{flag: "cookie-secure", env: "COOKIE_SECURE", def: "false", usage: "mark the session cookie Secure (HTTPS only)", isBool: true,
			set: func(c *Config, v string) (err error) { c.CookieSecure, err = parseBool(v); return err }},
		{flag: "store", env: "SESSION_STORE", def: "memory", usage: "session store: memory (bounded, per replica) or cookie (stateless, signed+encrypted)",
			set: func(c *Config, v string) error {
				if v != "memory" && v != "cookie" {
					return errors.New("want memory or cookie")
				}
				c.Store = v
				return nil
			}},
		{flag: "session-max", env: "SESSION_MAX", def: "100000", usage: "memory store: most live sessions (least recently used go first)",
			set: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 {
					return errors.New("want a whole number >= 1")
				}
				c.SessionMax = n
				return nil
			}},
		{flag: "session-ttl", env: "SESSION_TTL", def: "30m", usage: "idle expiry of a session (memory: since its last request; cookie: cookie age)",
			set: func(c *Config, v string) (err error) { c.SessionTTL, err = parsePositiveDuration(v); return err }},
		{flag: "secret-file", env: "SESSION_SECRET_FILE", def: "", usage: "file holding the session secret, e.g. /run/secrets/session_secret",
			set: func(c *Config, v string) error { c.SecretFile = v; return nil }},
		{flag: "log-format", env: "LOG_FORMAT", def: "text", usage: "log format: text or json",
			set: func(c *Config, v string) error {
				if v != "text" && v != "json" {
					return errors.New("want text or json")
				}
				c.LogFormat = v
				return nil
			}},
		{flag: "log-level", env: "LOG_LEVEL", def: "info", usage: "log level: debug, info, warn or error",
			set: func(c *Config, v string) error {
				if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
					return errors.New("want debug, info, warn or error")
				}
				return nil
			}},
		{flag: "shutdown-timeout", env: "SHUTDOWN_TIMEOUT", def: "10s", usage: "on SIGTERM/SIGINT, how long in-flight requests may take",
			set: func(c *Config, v string) (err error) { c.ShutdownTimeout, err = parsePositiveDuration(v); return err }},
		{flag: "healthcheck", env: "", def: "false", usage: "probe this service's /healthz on 127.0.0.1 and exit 0 (healthy) or 1", isBool: true,
			set: func(c *Config, v string) (err error) { c.Healthcheck, err = parseBool(v); return err }},
	}
}

// ParseConfig parses the settings of service from args (flags) and getenv
// (environment): the environment gives the defaults, a flag overrides it. It reads
// SESSION_SECRET_FILE if set. Every bad setting is reported together in a *ConfigError;
// -h or -help give flag.ErrHelp after printing the settings to help.
func ParseConfig(service string, args []string, getenv func(string) string, help io.Writer) (Config, error) {
	table := settings(service)
	var c Config
	c.Service = service
	for _, s := range table {
		if s.def != "" && s.flag != "instance" {
			if err := s.set(&c, s.def); err != nil {
				panic("service: bad default for -" + s.flag + ": " + err.Error())
			}
		}
	}

	envErrs := map[string]error{}
	for _, s := range table {
		if s.env == "" {
			continue
		}
		if v := getenv(s.env); v != "" {
			if err := s.set(&c, v); err != nil {
				envErrs[s.flag] = fmt.Errorf("%s=%q: %w", s.env, v, err)
			}
		}
	}

	fs := flag.NewFlagSet(service, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors come back in the ConfigError, -h is printed below
	fs.Usage = func() {}
	for _, s := range table {
		fs.Var(&flagValue{s: s, c: &c}, s.flag, s.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(help, service, table)
			return Config{}, flag.ErrHelp
		}
		return Config{}, &ConfigError{fmt.Errorf("%w (run %s -h to list the settings)", err, service)}
	}
	if fs.NArg() > 0 {
		return Config{}, &ConfigError{fmt.Errorf("unexpected argument %q (run %s -h to list the settings)", fs.Arg(0), service)}
	}
	fs.Visit(func(f *flag.Flag) { delete(envErrs, f.Name) }) // the flag wins

	var errs []error
	for _, s := range table { // in table order, for a stable message
		if err, ok := envErrs[s.flag]; ok {
			errs = append(errs, err)
		}
	}
	if err := c.loadSecret(getenv); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Config{}, &ConfigError{errors.Join(errs...)}
	}
	return c, nil
}

// secretHint says how to make a good secret.
const secretHint = "e.g. SESSION_SECRET=$(openssl rand -hex 32), or a swarm secret in SESSION_SECRET_FILE"

// loadSecret reads SESSION_SECRET or SESSION_SECRET_FILE and checks it against the
// store: the cookie store needs one; any secret given must be >= store.MinSecretLen.
func (c *Config) loadSecret(getenv func(string) string) error {
	env := getenv("SESSION_SECRET")
	switch {
	case env != "" && c.SecretFile != "":
		return errors.New("both SESSION_SECRET and SESSION_SECRET_FILE (-secret-file) are set; set only one")
	case env != "":
		c.Secret = []byte(env)
	case c.SecretFile != "":
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return fmt.Errorf("SESSION_SECRET_FILE (-secret-file): %w", err)
		}
		// A file written by echo or an editor ends in a newline that is not part of it.
		c.Secret = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	from := "SESSION_SECRET"
	if c.SecretFile != "" {
		from = "SESSION_SECRET_FILE " + c.SecretFile
	}
	switch {
	case len(c.Secret) == 0 && c.Store == "cookie":
		if c.SecretFile != "" {
			return fmt.Errorf("%s is empty; SESSION_STORE=cookie needs a secret of at least %d bytes, %s",
				from, store.MinSecretLen, secretHint)
		}
		return fmt.Errorf("SESSION_STORE=cookie needs SESSION_SECRET (or SESSION_SECRET_FILE): set at least %d random bytes, %s",
			store.MinSecretLen, secretHint)
	case len(c.Secret) > 0 && len(c.Secret) < store.MinSecretLen:
		return fmt.Errorf("%s is %d bytes; set at least %d random bytes, %s",
			from, len(c.Secret), store.MinSecretLen, secretHint)
	}
	return nil
}

// flagValue makes a setting a flag.Value. String shows nothing: -h prints its own table.
type flagValue struct {
	s setting
	c *Config
}

func (f *flagValue) String() string     { return "" }
func (f *flagValue) Set(v string) error { return f.s.set(f.c, v) }
func (f *flagValue) IsBoolFlag() bool   { return f.s.isBool }

func printUsage(w io.Writer, service string, table []setting) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\n", service)
	fmt.Fprintf(w, "%s counts page views per session: GET /%s (Accept: application/json for JSON),\n", service, service)
	fmt.Fprintf(w, "GET /healthz, GET /debug/sessions. Every setting is a flag and an environment\n")
	fmt.Fprintf(w, "variable; the flag wins.\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  FLAG\tENV\tDEFAULT\tMEANING")
	for _, s := range table {
		env, def := s.env, s.def
		if env == "" {
			env = "-"
		}
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(tw, "  -%s\t%s\t%s\t%s\n", s.flag, env, def, s.usage)
	}
	fmt.Fprintf(tw, "  (env only)\tSESSION_SECRET\t(none)\tsession secret, >= %d bytes; required by the cookie store,\n", store.MinSecretLen)
	fmt.Fprintf(tw, "  \t\t\trandom per process for the memory store if unset\n")
	tw.Flush()
	fmt.Fprintf(w, "\nBad values exit 2. Make a secret with: openssl rand -hex 32\n")
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errors.New("want true or false")
	}
	return b, nil
}

func parsePositiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errors.New("want a positive duration such as 30s, 10m or 1h")
	}
	return d, nil
}

// validCookieName reports whether name is a valid cookie name (an RFC 7230 token).
func validCookieName(name string) bool {
	if name == "" {
		return false
	}
	// net/http drops cookies with invalid names; let it be the judge.
	return (&http.Cookie{Name: name, Value: "x"}).Valid() == nil
}
