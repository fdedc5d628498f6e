package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/admin"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/certs"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/discover"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/doctor"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/h1"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/health"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/live"
)

// app is a running proxy: its listeners, the request handler, and per service a
// goroutine of discovery and one of health checks. Its life: newApp, listen, serve
// (which reloads on demand and drains at the end), stop.
type app struct {
	set       settings
	logger    *slog.Logger
	ids       backend.IDs
	resolver  discover.Resolver // nil: the system's
	handler   *forward.Handler
	transport *http.Transport
	hub       *live.Hub      // the live view; its goroutine runs until stop
	hubDone   sync.WaitGroup // Hub.Run

	mu      sync.Mutex // serialises apply
	cfg     *config.Config
	runners map[string]*runner
	runCtx  context.Context
	stopAll context.CancelFunc

	// rebase, with discovery: docker, applies a re-read file under the swarm's
	// services (dockerSource.rebase); nil when the file holds the services.
	rebase func(*config.Config)

	listeners []*listener // the client listeners first (listen, listen_tls), then the admin port if on
	limiter   *limiter    // the client listeners' connection slots, shared
	draining  atomic.Bool
	tls       *tlsSide // nil without listen_tls

	noTLSWarned map[string]bool // services whose force_ssl was warned about (forceSSL); a.mu
}

// listener is one port of the proxy and the server of its connections.
type listener struct {
	name  string // the configuration key, "listen", "listen_tls" or "admin", for logs and errors
	ln    net.Listener
	srv   engine
	drain time.Duration // how long the drain at shutdown may wait for requests in flight
}

// engine serves the connections of a listener until Shutdown (drain) or Close.
// *http.Server is one: the admin port's, and net/http's engine for the client listener.
type engine interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// runner owns the discovery and health goroutines of one service's pool.
type runner struct {
	pool     *backend.Pool
	counters *forward.Counters
	doctor   *doctor.Doctor
	key      string            // the checks and intervals the goroutines were started with
	servers  []discover.Target // what the pool was last given
	cancel   context.CancelFunc
	done     sync.WaitGroup
}

func newApp(set settings, cfg *config.Config, logger *slog.Logger, resolver discover.Resolver) *app {
	a := &app{set: set, logger: logger, ids: backend.NewIDs(set.idKey), resolver: resolver, runners: map[string]*runner{}}
	a.runCtx, a.stopAll = context.WithCancel(context.Background())
	a.transport = forward.NewTransport(forward.TransportOptions{
		ConnectTimeout:        cfg.Timeout.Connect,
		ResponseHeaderTimeout: cfg.Timeout.Server,
	})
	a.handler = forward.NewHandler(forward.Options{Transport: a.transport, Logger: logger, AccessLog: cfg.AccessLog,
		Limits: limits(cfg)})
	a.limiter = newLimiter(cfg.MaxConn, cfg.MaxConnPerIP, cfg.Timeout.Tunnel)
	a.hub = live.NewHub(live.Options{Sources: a.liveSources})
	a.hubDone.Go(func() { a.hub.Run(a.runCtx) })
	a.apply(cfg)
	return a
}

// liveSources are the services the live view shows: the routing table's.
func (a *app) liveSources() []live.Source {
	var out []live.Source
	for _, s := range a.handler.Table().Services() {
		out = append(out, live.Source{Name: s.Name, Cookie: s.Sticky.String(), Balance: s.Pool.Balance().String(), Pool: s.Pool, Live: s.Live})
	}
	return out
}

// apply makes cfg the running configuration: services, routes, servers and checks.
// Pools (and their counters) live on across reloads by service name.
func (a *app) apply(cfg *config.Config) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old := a.cfg; old != nil {
		if keys := cfg.NeedsRestart(old); len(keys) > 0 {
			a.logger.Warn("reload: these settings take effect at the next restart", "changed", strings.Join(keys, ","))
		}
	}
	var services []*forward.Service
	keep := map[string]bool{}
	for _, sc := range cfg.Services {
		keep[sc.Name] = true
		r := a.runners[sc.Name]
		if r == nil {
			r = &runner{pool: backend.NewPool(a.ids, sc.Balance), counters: new(forward.Counters), doctor: doctor.New(sc.Name, a.logger)}
			name := sc.Name
			r.pool.Observe(func(b *backend.Backend, c backend.Change) { a.hub.ServerChanged(name, b, c) })
			a.runners[sc.Name] = r
		}
		r.pool.SetBalance(sc.Balance)
		hc := sc.HealthConfig(cfg.Check)
		sticky := sc.Sticky.On() || sc.Balance == backend.Source
		key := fmt.Sprintf("%+v|%v|%v", hc, cfg.ResolveInterval, sticky)
		switch {
		case key != r.key || !sameOrStatic(r.servers, sc.Servers):
			a.start(sc.Name, r, sc.Servers, hc, cfg.ResolveInterval, sticky)
			r.key, r.servers = key, sc.Servers
		case !slices.Equal(r.servers, sc.Servers):
			// Other addresses only (discovery docker at every task change, or a
			// file listing IPs): the pool takes them, and the checker keeps its
			// pace and its rise and fall counts. Restarting it at each change of a
			// rolling update would put off its rounds for as long as changes come
			// faster than check.interval: no server marked down, none pruned.
			a.updatePool(sc.Name, r.pool, (&discover.Watcher{Targets: sc.Servers}).Resolve(a.runCtx))
			r.servers = sc.Servers
		}
		services = append(services, &forward.Service{
			Name: sc.Name, VirtualHost: sc.VirtualHost, Weight: sc.VirtualHostWeight, Sticky: sc.Sticky, TrustedProxies: cfg.TrustedProxies,
			Retries: cfg.Retries, Pool: r.pool, Counters: r.counters, Doctor: r.doctor, Live: a.hub.Recorder(sc.Name),
			ForceSSL: a.forceSSL(cfg, sc), HTTPSPort: cfg.TLS.RedirectPort(), HSTS: forward.HSTSHeader(sc.HSTSMaxAge),
		})
	}
	for name, r := range a.runners {
		if !keep[name] {
			r.cancel()
			delete(a.runners, name)
			a.logger.Info("service removed", "service", name)
		}
	}
	t, err := forward.NewTable(services)
	if err != nil {
		// The config was checked when it was read; this is a bug.
		a.logger.Error("building the routing table", "err", err)
		return
	}
	a.handler.SetTable(t)
	a.handler.SetAccessLog(cfg.AccessLog)
	a.cfg = cfg
}

// start (re)starts the discovery and health goroutines of a service. The first
// resolution happens before it returns, so the first request has servers. For a
// sticky service (a cookie, or balance source) the doctor's VIP check runs
// every interval too.
func (a *app) start(name string, r *runner, targets []discover.Target, hc health.Config, every time.Duration, sticky bool) {
	if r.cancel != nil {
		r.cancel()
		r.done.Wait()
	}
	ctx, cancel := context.WithCancel(a.runCtx)
	r.cancel = cancel
	w := &discover.Watcher{Targets: targets, Resolver: a.resolver, Interval: every, Logger: a.logger, Service: name}
	update := func(addrs []string) { a.updatePool(name, r.pool, addrs) }
	update(w.Resolve(ctx))
	checker := &health.Checker{Config: hc, Pool: r.pool, Service: name, Logger: a.logger}
	r.done.Go(func() { w.Run(ctx, update) })
	r.done.Go(func() { checker.Run(ctx) })
	if !sticky {
		r.doctor.Clear(doctor.VIP)
		return
	}
	r.done.Go(func() { a.watchVIP(ctx, r.doctor, targets, every) })
}

// updatePool makes addrs the servers of service name's pool, and logs who came and
// who is leaving.
func (a *app) updatePool(name string, pool *backend.Pool, addrs []string) {
	joined, leaving := pool.Update(addrs)
	for _, b := range joined {
		a.logger.Info("server joined", "service", name, "server", b.ID(), "addr", b.Addr())
	}
	for _, b := range leaving {
		a.logger.Info("server leaving", "service", name, "server", b.ID(), "addr", b.Addr(), "active", b.Active())
	}
	if len(addrs) == 0 && len(joined)+len(leaving) > 0 {
		a.logger.Warn("service has no server", "service", name)
	}
}

// sameOrStatic reports whether a runner started on targets old can take targets
// new without a restart: the same list, or two lists of addresses only (nothing
// to resolve, no VIP to check: Watcher.Run stops after its first update then).
func sameOrStatic(old, new []discover.Target) bool {
	static := func(ts []discover.Target) bool {
		return !slices.ContainsFunc(ts, func(t discover.Target) bool { return !t.Static() })
	}
	return slices.Equal(old, new) || (static(old) && static(new))
}

// watchVIP runs the doctor's VIP check on the named targets at once, then every
// interval until ctx ends, so that it fires when a swarm service appears after
// the proxy started and clears when the name is fixed.
func (a *app) watchVIP(ctx context.Context, d *doctor.Doctor, targets []discover.Target, every time.Duration) {
	if every <= 0 {
		every = 5 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		var msgs []string
		for _, t := range targets {
			if msg, vip := discover.CheckVIP(ctx, a.resolver, t); vip {
				msgs = append(msgs, msg)
			}
		}
		if len(msgs) > 0 {
			d.Set(doctor.VIP, strings.Join(msgs, "; "))
		} else {
			d.Clear(doctor.VIP)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reload re-reads the configuration file and the certificates; a bad file or
// certificate changes nothing. New TLS connections get the new certificates, open
// ones keep theirs.
func (a *app) reload() error {
	cfg, err := a.set.loadConfig()
	var set *certs.Set
	var warnings []string
	if err == nil {
		set, warnings, err = loadCertificates(cfg)
	}
	if err != nil {
		a.logger.Error("reload failed; keeping the running configuration and certificates", "err", err)
		return err
	}
	for _, w := range warnings {
		a.logger.Warn(w)
	}
	if set != nil && a.tls != nil {
		a.tls.store.Swap(set)
		a.logger.Info("certificates reloaded", "certificates", len(set.Entries()))
	}
	if a.rebase != nil {
		a.rebase(cfg)
	} else {
		a.apply(cfg)
	}
	a.logger.Info("configuration reloaded", "file", cfg.File, "services", len(cfg.Services))
	return nil
}

// listen opens the client listeners (listen, and listen_tls with its certificates)
// and the admin port, so that an address in use or a bad certificate is reported at
// once and tests can listen on port 0.
func (a *app) listen() error {
	cfg := a.cfg
	errorLog := slog.NewLogLogger(a.logger.Handler(), slog.LevelDebug)
	if err := a.listenClient("listen", cfg.Listen, a.newEngine(cfg, errorLog)); err != nil {
		return err
	}
	if cfg.TLS.Listen != "" {
		set, warnings, err := loadCertificates(cfg)
		if err != nil {
			a.closeListeners()
			return cli.Usage(err)
		}
		for _, w := range warnings {
			a.logger.Warn(w)
		}
		a.tls = &tlsSide{}
		a.tls.store.Swap(set)
		if err := a.listenClient("listen_tls", cfg.TLS.Listen, a.newTLSEngine(cfg, errorLog)); err != nil {
			a.closeListeners()
			return err
		}
		a.tls.listen = a.addr("listen_tls")
	}
	if cfg.Admin == "" {
		return nil
	}
	aln, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		a.closeListeners()
		return fmt.Errorf("listen %s (admin): %w", cfg.Admin, err)
	}
	var tlsStats func() *admin.TLSStats
	if a.tls != nil {
		tlsStats = a.tls.stats
	}
	adminSrv := &http.Server{
		Handler: admin.NewHandler(admin.Options{
			Table: a.handler.Table, Auth: a.set.statsAuth, Version: version, Engine: cfg.Engine, Logger: a.logger,
			Live:        a.hub,
			Connections: a.limiter.open.Load, Rejected: a.limiter.Rejected, TLS: tlsStats,
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
	// The live view's streams never end by themselves: a drain ends them.
	adminSrv.RegisterOnShutdown(a.hub.Close)
	a.listeners = append(a.listeners, &listener{name: "admin", ln: aln, drain: time.Second, srv: adminSrv})
	return nil
}

// listenClient opens a client port with srv to serve it. Every client port goes
// through here, so all share the limiter's slots (maxconn, maxconn_per_ip) and count
// in one open-connections figure.
func (a *app) listenClient(name, addr string, srv engine) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if name != "listen" {
			return fmt.Errorf("listen %s (%s): %w", addr, name, err)
		}
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	var limited net.Listener
	if name == "listen_tls" {
		limited = a.limiter.tlsListener(ln)
	} else {
		limited = a.limiter.listener(ln)
	}
	a.listeners = append(a.listeners, &listener{name: name, ln: limited, srv: srv, drain: a.set.shutdownTimeout})
	return nil
}

// closeListeners closes what listen opened before it failed.
func (a *app) closeListeners() {
	for _, l := range a.listeners {
		l.ln.Close()
	}
	a.listeners = nil
}

// newEngine is the server of the client listener, as engine: says: the h1 engine
// (fast, the default) or net/http's (std), with the file's timeouts and header limit.
func (a *app) newEngine(cfg *config.Config, errorLog *log.Logger) engine {
	if cfg.Engine == "fast" {
		return h1.NewServer(h1.Options{
			Table: a.handler.Table, Logger: a.logger, AccessLog: a.handler.AccessLog,
			MaxHeaderBytes: cfg.MaxHeaderBytes,
			ConnectTimeout: cfg.Timeout.Connect, ServerTimeout: cfg.Timeout.Server,
			IdleTimeout: cfg.Timeout.Client, HeaderTimeout: cfg.Timeout.HTTPRequest,
			Limits: limits(cfg), ConnState: a.limiter.connState,
		})
	}
	return a.stdServer(cfg, errorLog)
}

// stdServer is net/http's server of the proxy's handler with the file's timeouts and
// header limit: the std engine, and the HTTPS listener's (newTLSEngine).
func (a *app) stdServer(cfg *config.Config, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: cfg.Timeout.HTTPRequest,
		IdleTimeout:       cfg.Timeout.Client,
		// No WriteTimeout: it would bound the whole response. The handler bounds
		// each write (Limits.WriteTimeout) and the body's reads.
		// Go answers 431 to headers larger than this (plus 4 KiB slack).
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		ConnState:      a.limiter.connState,
		ErrorLog:       errorLog,
	}
}

// limits are the file's bounds of a client, the same for both engines.
func limits(cfg *config.Config) forward.Limits {
	rate := cfg.BodyMinRate
	if rate == 0 {
		rate = -1 // body_min_rate: 0 turns the minimum off
	}
	return forward.Limits{BodyTimeout: cfg.Timeout.Body, BodyMinRate: rate, WriteTimeout: cfg.Timeout.Write,
		TunnelTimeout: cfg.Timeout.Tunnel, ServerName: cfg.ServerName}
}

// addr is the address the listener called name listens on ("" if none).
func (a *app) addr(name string) string {
	for _, l := range a.listeners {
		if l.name == name {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// serve runs until ctx is done, re-reading the configuration at every value of
// reload, then drains: the listeners close, requests in flight get up to the shutdown
// timeout, and serve returns nil. A listener that fails ends it with the error.
func (a *app) serve(ctx context.Context, reload <-chan os.Signal) error {
	defer a.stop()
	errc := make(chan error, len(a.listeners))
	for _, l := range a.listeners {
		go func() { errc <- l.srv.Serve(l.ln) }()
	}
	a.mu.Lock()
	attrs := []any{"listen", a.addr("listen"), "engine", a.cfg.Engine, "services", len(a.cfg.Services), "version", version}
	a.mu.Unlock()
	for _, l := range a.listeners[1:] {
		attrs = append(attrs, l.name, l.ln.Addr().String())
	}
	a.logger.Info("proxy started", attrs...)
	for {
		select {
		case <-ctx.Done():
			return a.shutdown()
		case <-reload:
			_ = a.reload()
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving: %w", err)
			}
		}
	}
}

// shutdown drains every listener, the client ones first, together: /readyz fails from
// the start, and the admin port goes last.
func (a *app) shutdown() error {
	a.draining.Store(true)
	a.logger.Info("shutting down: draining requests in flight", "timeout", a.set.shutdownTimeout)
	var clients sync.WaitGroup
	for _, l := range a.listeners {
		if l.name != "admin" {
			clients.Go(func() { a.drain(l) })
		}
	}
	clients.Wait()
	for _, l := range a.listeners {
		if l.name == "admin" {
			a.drain(l)
		}
	}
	a.logger.Info("proxy stopped")
	return nil
}

// drain shuts one listener down within its drain time, then closes what is left.
func (a *app) drain(l *listener) {
	ctx, cancel := context.WithTimeout(context.Background(), l.drain)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		if l.name != "admin" {
			a.logger.Warn("shutdown timeout: closing the connections still open", "listener", l.name, "err", err)
		}
		l.srv.Close()
	}
}

// stop ends the per-service goroutines and closes idle server connections.
func (a *app) stop() {
	a.stopAll()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.runners {
		r.done.Wait()
	}
	a.hubDone.Wait()
	a.transport.CloseIdleConnections()
}
