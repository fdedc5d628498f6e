package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/swarm"
)

// discovery: docker (or PROXY_DISCOVERY=docker): the services come from the swarm, as
// dockercloud/haproxy took them, and the file (if any) holds only the global settings.
// This file is the wiring: the settings it adds, the configuration without a file, and
// the dockerSource that hands the swarm's services to the app.

// discoverySettings are the rows of the settings table for discovery: docker.
func (s *settings) discoverySettings() []cli.Setting {
	return []cli.Setting{
		{Flag: "discovery", Env: "PROXY_DISCOVERY", DefaultText: "discovery: in the file, else file",
			Usage: "where the services come from: file (services: of the file) or docker (the swarm's\n" +
				"services and their VIRTUAL_HOST, SERVICE_PORTS, COOKIE... as dockercloud/haproxy;\n" +
				"then no file is needed)",
			Set: cli.OneOf(&s.discovery, config.DiscoveryFile, config.DiscoveryDocker)},
		{Env: "DOCKER_HOST", Default: swarm.DefaultHost, Usage: "with discovery docker: the Engine API, unix:///path or tcp://host:port (GET only)"},
	}
}

// readDockerEnv reads the proxy's own dockercloud/haproxy variables (TIMEOUT,
// STATS_PORT...). They count only with discovery docker, so their errors wait for
// loadConfig to know whether it is.
func (s *settings) readDockerEnv(getenv func(string) string) {
	s.dockerEnv, s.dockerEnvErr = swarm.ParseEnv(getenv)
	s.hostname = getenv("HOSTNAME")
}

// readConfig reads the configuration file, or with discovery docker and no file
// named, starts from the defaults; with discovery docker the dockercloud variables go
// on top (they override the file, as LISTEN does).
func (s settings) readConfig() (*config.Config, error) {
	base := config.Default()
	if s.discovery != "" {
		base.Discovery = s.discovery
	}
	var cfg *config.Config
	switch {
	case s.configFile != "":
		c, err := config.LoadOnto(s.configFile, base)
		if err != nil {
			return nil, err
		}
		cfg = c
	case base.Discovery == config.DiscoveryDocker:
		cfg = &base
		cfg.File = "PROXY_DISCOVERY=docker without a file"
	default:
		c, err := config.LoadOnto(defaultConfigFile, base)
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	if cfg.Discovery == config.DiscoveryDocker {
		if s.dockerEnvErr != nil {
			return nil, s.dockerEnvErr
		}
		s.dockerEnv.Apply(cfg)
	}
	return cfg, nil
}

// dockerSource gives the app the swarm's services on top of base, the configuration
// read from the file and the environment: at start, whenever the swarm changes, and
// on a reload (a new base).
type dockerSource struct {
	watcher *swarm.Watcher
	logger  *slog.Logger

	mu       sync.Mutex // serialises changes of base and services, and their apply
	base     *config.Config
	services []config.Service
	apply    func(*config.Config) // set by follow
}

// startDiscovery, with discovery docker, reads the swarm once and returns the
// configuration with its services; a nil source and cfg as it is otherwise. A node that
// is not a manager, or no Engine API, ends the proxy with one line saying what to do.
func startDiscovery(ctx context.Context, set settings, cfg *config.Config, logger *slog.Logger) (*dockerSource, *config.Config, error) {
	if cfg.Discovery != config.DiscoveryDocker {
		return nil, cfg, nil
	}
	for _, w := range set.dockerEnv.Warnings {
		logger.Warn(w)
	}
	client, err := swarm.NewClient(set.dockerEnv.DockerHost)
	if err != nil {
		return nil, nil, cli.Usage(err)
	}
	self := swarm.LocalSelf()
	if set.hostname != "" {
		self.Hostname = set.hostname
	}
	w := &swarm.Watcher{Client: client, Self: self, Balance: set.dockerEnv.Balance, Interval: cfg.ResolveInterval, Logger: logger}
	d, err := w.First(ctx)
	switch {
	case errors.Is(err, swarm.ErrNotManager):
		return nil, nil, fmt.Errorf("discovery docker: %s is not a swarm manager's API: place the proxy on a manager (deploy: placement: constraints: [node.role == manager]) or set DOCKER_HOST to a manager's API", client.Host())
	case errors.Is(err, swarm.ErrNoSelf):
		return nil, nil, fmt.Errorf("discovery docker: %w", err)
	case err != nil:
		return nil, nil, fmt.Errorf("discovery docker: %w; mount the socket (volumes: [/var/run/docker.sock:/var/run/docker.sock]) or set DOCKER_HOST", err)
	}
	src := &dockerSource{watcher: w, logger: logger, base: cfg, services: d.Services}
	return src, src.config(), nil
}

// config is base with the swarm's services. Call it with mu held (or before follow).
func (d *dockerSource) config() *config.Config {
	c := *d.base
	c.Services = d.services
	return &c
}

// follow hands every change of the swarm's services to a until ctx is done or the
// returned stop is called (which waits for it). A nil source does nothing.
func (d *dockerSource) follow(ctx context.Context, a *app) (stop func()) {
	if d == nil {
		return func() {}
	}
	d.mu.Lock()
	d.apply = a.apply
	d.mu.Unlock()
	a.rebase = d.rebase
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		d.watcher.Run(ctx, func(services []config.Service) {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.services = services
			d.apply(d.config())
			d.logger.Info("swarm changed: services applied", "services", len(services))
		})
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// rebase applies a re-read file (SIGHUP) under the swarm's services. A file that no
// longer says discovery docker changes nothing: where services come from is set at
// start.
func (d *dockerSource) rebase(cfg *config.Config) {
	if cfg.Discovery != config.DiscoveryDocker {
		d.logger.Error("reload: discovery changed from docker; keeping the running configuration (restart the proxy to change it)")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.base = cfg
	d.apply(d.config())
}
