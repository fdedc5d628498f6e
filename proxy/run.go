package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/admin"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/discover"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/health"
)

// usageError is a bad flag, environment variable or configuration: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// settings are the process's flags and environment; the proxy's behaviour
// is in the configuration file (Config).
type settings struct {
	configFile      string
	check           bool
	healthcheck     bool
	showVersion     bool
	listen          string // overrides listen: when set
	admin           string // overrides admin: when set
	logFormat       string
	logLevel        slog.Level
	shutdownTimeout time.Duration
	statsAuth       string
	idKey           []byte
	idKeyDefault    bool
}

const usageText = `Usage: proxy [flags]

A reverse proxy with path routing and HAProxy's sticky prefix cookie.
Every flag takes its default from the environment variable shown; the flag wins.

Flags:
  -config FILE            PROXY_CONFIG      configuration file (default proxy.yaml)
  -check                                    validate the configuration, print a summary, exit 0 (bad: exit 2)
  -listen ADDR            LISTEN            listen address (default: listen: in the file, else :80)
  -admin ADDR             ADMIN             admin port for /stats /metrics /healthz /readyz
                                            (default: admin: in the file, else off; "off" turns it off)
  -log-format text|json   LOG_FORMAT        (default text)
  -log-level LEVEL        LOG_LEVEL         debug, info, warn or error (default info)
  -shutdown-timeout DUR   SHUTDOWN_TIMEOUT  on SIGTERM, wait this long for requests in flight (default 10s)
  -healthcheck                              probe the admin /healthz (or, admin off, the listener's
                                            ` + forward.HealthPath + `) and exit 0 or 1: a HEALTHCHECK for FROM scratch images
  -version                                  print the version and exit

Environment only:
  STATS_AUTH, STATS_AUTH_FILE         user:pass for /stats and /metrics (basic auth), or a file holding it
  SERVER_ID_KEY, SERVER_ID_KEY_FILE   key of the server ids in cookies (HMAC-SHA256), at least 16 bytes,
                                      the same on every proxy replica; e.g. $(openssl rand -hex 32)

Configuration file (YAML; unknown keys are errors; durations "5s" or milliseconds):
  listen: ":80"              admin: ":1936"          maxconn: 4096        max_header_bytes: 32768
  retries: 3                 resolve_interval: 5s    access_log: true
  timeout: {connect: 5s, server: 50s, client: 50s, http_request: 10s, write: 0}
  check:   {interval: 2s, timeout: 2s, rise: 2, fall: 3}
  services:
    NAME:
      virtual_host: "*/NAME, */NAME/*"        (the default)
      servers: "tasks.NAME:8080"              a name re-resolved every resolve_interval, IPs, or a list
      cookie: "connect.sid prefix nocache"    sticky sessions (HAProxy prefix mode); leave out for none
      balance: roundrobin                     or leastconn
      health_check: /healthz                  GET check; leave out for a TCP connect check

Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP re-reads the file (services, servers,
checks, retries, access_log; listen, admin, maxconn and timeouts need a restart).
`

func parseSettings(args []string, getenv func(string) string, stderr io.Writer) (settings, error) {
	var s settings
	var errs []error
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usageText) }
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&s.configFile, "config", env("PROXY_CONFIG", "proxy.yaml"), "")
	fs.BoolVar(&s.check, "check", false, "")
	fs.BoolVar(&s.healthcheck, "healthcheck", false, "")
	fs.BoolVar(&s.showVersion, "version", false, "")
	fs.StringVar(&s.listen, "listen", getenv("LISTEN"), "")
	fs.StringVar(&s.admin, "admin", getenv("ADMIN"), "")
	fs.StringVar(&s.logFormat, "log-format", env("LOG_FORMAT", "text"), "")
	level := fs.String("log-level", env("LOG_LEVEL", "info"), "")
	shutdown := fs.String("shutdown-timeout", env("SHUTDOWN_TIMEOUT", "10s"), "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return s, err
		}
		return s, usageError{err}
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q; see -h", fs.Arg(0)))
	}
	if s.logFormat != "text" && s.logFormat != "json" {
		errs = append(errs, fmt.Errorf("-log-format (LOG_FORMAT) %q: write text or json", s.logFormat))
	}
	if err := s.logLevel.UnmarshalText([]byte(*level)); err != nil {
		errs = append(errs, fmt.Errorf("-log-level (LOG_LEVEL) %q: write debug, info, warn or error", *level))
	}
	d, err := time.ParseDuration(*shutdown)
	if err != nil || d < 0 {
		errs = append(errs, fmt.Errorf("-shutdown-timeout (SHUTDOWN_TIMEOUT) %q: write a duration such as 10s", *shutdown))
	}
	s.shutdownTimeout = d
	for _, a := range []struct{ flag, env, v string }{{"-listen", "LISTEN", s.listen}, {"-admin", "ADMIN", s.admin}} {
		if a.v != "" && !(a.flag == "-admin" && a.v == "off") {
			if err := checkAddr(a.v); err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): %w", a.flag, a.env, err))
			}
		}
	}

	auth, err := secret(getenv, "STATS_AUTH")
	if err != nil {
		errs = append(errs, err)
	} else if auth != "" && !strings.Contains(auth, ":") {
		errs = append(errs, errors.New("STATS_AUTH: write user:password, e.g. stats:$(openssl rand -hex 12)"))
	}
	s.statsAuth = auth

	key, err := secret(getenv, "SERVER_ID_KEY")
	switch {
	case err != nil:
		errs = append(errs, err)
	case key == "":
		s.idKey, s.idKeyDefault = []byte(backend.DefaultIDKey), true
	case len(key) < 16:
		errs = append(errs, fmt.Errorf("SERVER_ID_KEY is %d bytes; set at least 16 random bytes, the same on every proxy replica, e.g. $(openssl rand -hex 32)", len(key)))
	default:
		s.idKey = []byte(key)
	}
	if len(errs) > 0 {
		return s, usageError{errors.Join(errs...)}
	}
	return s, nil
}

// secret reads NAME or the file named by NAME_FILE (a Docker secret); a
// final newline in the file is dropped.
func secret(getenv func(string) string, name string) (string, error) {
	v, file := getenv(name), getenv(name+"_FILE")
	if v != "" && file != "" {
		return "", fmt.Errorf("%s and %s_FILE are both set; keep one", name, name)
	}
	if file == "" {
		return v, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// run is the whole program: main only adds the signals and the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	set, err := parseSettings(args, getenv, stderr)
	if err != nil {
		return err
	}
	if set.showVersion {
		fmt.Fprintln(stdout, "proxy", version)
		return nil
	}
	cfg, err := loadConfig(set)
	if err != nil {
		return usageError{err}
	}
	if set.check {
		fmt.Fprint(stdout, cfg.Summary())
		return nil
	}
	if set.healthcheck {
		return probe(ctx, cfg)
	}

	log := newLogger(set, stderr)
	if set.idKeyDefault {
		log.Warn("SERVER_ID_KEY is not set: server ids use the built-in key, so anyone who can list the backend addresses can tell which id is which; set SERVER_ID_KEY (or SERVER_ID_KEY_FILE) to 16+ random bytes, the same on every replica, e.g. $(openssl rand -hex 32)")
	}
	a := newApp(set, cfg, log, nil)
	if err := a.listen(); err != nil {
		a.stop()
		return err
	}
	return a.serve(ctx)
}

func loadConfig(set settings) (*Config, error) {
	cfg, err := LoadConfig(set.configFile)
	if err != nil {
		return nil, err
	}
	if set.listen != "" {
		cfg.Listen = set.listen
	}
	switch set.admin {
	case "":
	case "off":
		cfg.Admin = ""
	default:
		cfg.Admin = set.admin
	}
	return cfg, nil
}

func newLogger(set settings, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: set.logLevel}
	if set.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// probe asks the running proxy whether it is alive: the admin /healthz, or
// with the admin port off, the listener's reserved health path.
func probe(ctx context.Context, cfg *Config) error {
	url := "http://" + localAddr(cfg.Listen) + forward.HealthPath
	if cfg.Admin != "" {
		url = "http://" + localAddr(cfg.Admin) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", url, resp.StatusCode)
	}
	return nil
}

// localAddr turns a listen address into one to connect to on this host.
func localAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// app is a running proxy: the listeners, the request handler, and per
// service a goroutine of discovery and one of health checks.
type app struct {
	set       settings
	log       *slog.Logger
	ids       backend.IDs
	resolver  discover.Resolver // nil: the system's
	handler   *forward.Handler
	transport *http.Transport

	mu      sync.Mutex // serialises apply
	cfg     *Config
	runners map[string]*runner
	runCtx  context.Context
	stopAll context.CancelFunc

	ln, adminLn   net.Listener
	srv, adminSrv *http.Server
	conns         atomic.Int64
	draining      atomic.Bool
	hup           chan os.Signal
}

// runner owns the discovery and health goroutines of one service's pool.
type runner struct {
	pool   *backend.Pool
	stats  *forward.Stats
	key    string // what the goroutines were started with
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func newApp(set settings, cfg *Config, log *slog.Logger, resolver discover.Resolver) *app {
	a := &app{set: set, log: log, ids: backend.NewIDs(set.idKey), resolver: resolver, runners: map[string]*runner{}}
	a.runCtx, a.stopAll = context.WithCancel(context.Background())
	a.transport = forward.NewTransport(forward.TransportOptions{
		ConnectTimeout:        cfg.Timeout.Connect,
		ResponseHeaderTimeout: cfg.Timeout.Server,
	})
	a.handler = forward.NewHandler(forward.Options{Transport: a.transport, Log: log, AccessLog: cfg.AccessLog})
	a.apply(cfg)
	return a
}

// apply makes cfg the running configuration: services, routes, servers and
// checks. Pools (and their counters) live on across reloads by service name.
func (a *app) apply(cfg *Config) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old := a.cfg; old != nil {
		if old.Listen != cfg.Listen || old.Admin != cfg.Admin || old.MaxConn != cfg.MaxConn ||
			old.MaxHeaderBytes != cfg.MaxHeaderBytes || old.Timeout != cfg.Timeout {
			a.log.Warn("reload: listen, admin, maxconn, max_header_bytes and timeout changes take effect at the next restart")
		}
	}
	var services []*forward.Service
	keep := map[string]bool{}
	for _, sc := range cfg.Services {
		keep[sc.Name] = true
		r := a.runners[sc.Name]
		if r == nil {
			r = &runner{pool: backend.NewPool(a.ids, sc.Balance), stats: new(forward.Stats)}
			a.runners[sc.Name] = r
		}
		r.pool.SetBalance(sc.Balance)
		hc := cfg.Check
		hc.Path = sc.HealthCheck
		key := fmt.Sprintf("%v|%+v|%v", sc.Servers, hc, cfg.ResolveInterval)
		if key != r.key {
			a.start(sc.Name, r, sc.Servers, hc, cfg.ResolveInterval)
			r.key = key
		}
		services = append(services, &forward.Service{
			Name: sc.Name, VirtualHost: sc.VirtualHost, Cookie: sc.Cookie, NoCache: sc.NoCache,
			Retries: cfg.Retries, Pool: r.pool, Stats: r.stats,
		})
	}
	for name, r := range a.runners {
		if !keep[name] {
			r.cancel()
			delete(a.runners, name)
			a.log.Info("service removed", "service", name)
		}
	}
	t, err := forward.NewTable(services)
	if err != nil {
		// The config was checked when it was read; this is a bug.
		a.log.Error("building the routing table", "err", err)
		return
	}
	a.handler.SetTable(t)
	a.handler.SetAccessLog(cfg.AccessLog)
	a.cfg = cfg
}

// start (re)starts the discovery and health goroutines of a service. The
// first resolution happens before it returns, so the first request has
// servers.
func (a *app) start(name string, r *runner, targets []discover.Target, hc health.Config, every time.Duration) {
	if r.cancel != nil {
		r.cancel()
		r.done.Wait()
	}
	ctx, cancel := context.WithCancel(a.runCtx)
	r.cancel = cancel
	w := &discover.Watcher{Targets: targets, Resolver: a.resolver, Interval: every, Log: a.log, Service: name}
	update := func(addrs []string) {
		joined, leaving := r.pool.Update(addrs)
		for _, b := range joined {
			a.log.Info("server joined", "service", name, "server", b.ID(), "addr", b.Addr())
		}
		for _, b := range leaving {
			a.log.Info("server leaving", "service", name, "server", b.ID(), "addr", b.Addr(), "active", b.Active())
		}
		if len(addrs) == 0 && len(joined)+len(leaving) > 0 {
			a.log.Warn("service has no server", "service", name)
		}
	}
	update(w.Resolve(ctx))
	checker := &health.Checker{Config: hc, Pool: r.pool, Service: name, Log: a.log}
	r.done.Go(func() { w.Run(ctx, update) })
	r.done.Go(func() { checker.Run(ctx) })
}

// reload re-reads the configuration file; a bad file changes nothing.
func (a *app) reload() error {
	cfg, err := loadConfig(a.set)
	if err != nil {
		a.log.Error("reload failed; keeping the running configuration", "err", err)
		return err
	}
	a.apply(cfg)
	a.log.Info("configuration reloaded", "file", cfg.File, "services", len(cfg.Services))
	return nil
}

// listen opens the listener and the admin port, so that an address in use
// is reported at once and tests can listen on port 0.
func (a *app) listen() error {
	cfg := a.cfg
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	a.ln = newLimitListener(ln, cfg.MaxConn, &a.conns)
	errorLog := slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)
	a.srv = &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: cfg.Timeout.HTTPRequest,
		IdleTimeout:       cfg.Timeout.Client,
		WriteTimeout:      cfg.Timeout.Write,
		// Go answers 431 to headers larger than this (plus 4 KiB slack).
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		ErrorLog:       errorLog,
	}
	if cfg.Admin != "" {
		aln, err := net.Listen("tcp", cfg.Admin)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen %s (admin): %w", cfg.Admin, err)
		}
		a.adminLn = aln
		a.adminSrv = &http.Server{
			Handler: admin.NewHandler(admin.Options{
				Table: a.handler.Table, Auth: a.set.statsAuth, Version: version, Log: a.log,
				Connections: a.conns.Load,
				Ready: func() error {
					if a.draining.Load() {
						return errors.New("shutting down")
					}
					return nil
				},
			}),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       time.Minute,
			ErrorLog:          errorLog,
		}
	}
	// From here a SIGHUP reloads instead of killing the process.
	a.hup = make(chan os.Signal, 1)
	signal.Notify(a.hup, syscall.SIGHUP)
	return nil
}

// serve runs until ctx is done, then drains: the listener closes, requests
// in flight get up to the shutdown timeout, and serve returns nil.
func (a *app) serve(ctx context.Context) error {
	defer a.stop()
	errc := make(chan error, 2)
	go func() { errc <- a.srv.Serve(a.ln) }()
	if a.adminSrv != nil {
		go func() { errc <- a.adminSrv.Serve(a.adminLn) }()
	}
	a.mu.Lock()
	n := len(a.cfg.Services)
	a.mu.Unlock()
	attrs := []any{"listen", a.ln.Addr().String(), "services", n, "version", version}
	if a.adminLn != nil {
		attrs = append(attrs, "admin", a.adminLn.Addr().String())
	}
	a.log.Info("proxy started", attrs...)
	for {
		select {
		case <-ctx.Done():
			return a.shutdown()
		case <-a.hup:
			_ = a.reload()
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving: %w", err)
			}
		}
	}
}

func (a *app) shutdown() error {
	a.draining.Store(true)
	a.log.Info("shutting down: draining requests in flight", "timeout", a.set.shutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), a.set.shutdownTimeout)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		a.log.Warn("shutdown timeout: closing the connections still open", "err", err)
		a.srv.Close()
	}
	if a.adminSrv != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		defer acancel()
		if err := a.adminSrv.Shutdown(actx); err != nil {
			a.adminSrv.Close()
		}
	}
	a.log.Info("proxy stopped")
	return nil
}

// stop ends the per-service goroutines and the signal handler.
func (a *app) stop() {
	if a.hup != nil {
		signal.Stop(a.hup)
	}
	a.stopAll()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.runners {
		r.done.Wait()
	}
	a.transport.CloseIdleConnections()
}

// limitListener accepts at most max connections at once (HAProxy's
// maxconn): beyond that, new connections wait in the kernel's backlog.
type limitListener struct {
	net.Listener
	sem   chan struct{}
	done  chan struct{}
	once  sync.Once
	conns *atomic.Int64
}

func newLimitListener(ln net.Listener, max int, conns *atomic.Int64) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, max), done: make(chan struct{}), conns: conns}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	l.conns.Add(1)
	return &limitConn{Conn: c, release: sync.OnceFunc(func() {
		l.conns.Add(-1)
		<-l.sem
	})}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
