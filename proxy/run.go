package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
)

// run is the whole program (a cli.RunFunc): main only adds the context that SIGTERM and
// SIGINT end, and the exit code. SIGHUP is wired here and handed to the app as a
// channel, so tests reload the proxy through runReloading without signalling their own
// process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return runReloading(ctx, args, getenv, stdout, stderr, hup)
}

// runReloading is run with the reload requests coming from reload: each one re-reads
// the configuration file.
func runReloading(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, reload <-chan os.Signal) error {
	set, err := parseSettings(args, getenv, stdout)
	if err != nil {
		return err
	}
	if set.showVersion {
		fmt.Fprintln(stdout, "proxy", version)
		return nil
	}
	cfg, err := set.loadConfig()
	if err != nil {
		return cli.Usage(err)
	}
	if set.check {
		certs, warnings, err := loadCertificates(cfg)
		if err != nil {
			return cli.Usage(err)
		}
		fmt.Fprint(stdout, cfg.Summary())
		if certs != nil {
			fmt.Fprint(stdout, certs.Summary())
		}
		for _, w := range warnings {
			fmt.Fprintln(stdout, "warning: "+w)
		}
		for _, w := range checkWarnings(ctx, cfg, nil) {
			fmt.Fprintln(stdout, w)
		}
		return nil
	}
	if set.healthcheck {
		// The admin /healthz, or with the admin port off, the listener's own health path.
		url, err := probe.URL(cfg.Listen, forward.HealthPath)
		if cfg.Admin != "" {
			url, err = probe.URL(cfg.Admin, "/healthz")
		}
		if err != nil {
			return err
		}
		return probe.Get(ctx, url, 3*time.Second)
	}

	logger := set.log.New(stderr)
	if set.idKeyDefault {
		logger.Warn("SERVER_ID_KEY is not set: server ids use the built-in key, so anyone who can list the backend addresses can tell which id is which; set SERVER_ID_KEY (or SERVER_ID_KEY_FILE) to 16+ random bytes, the same on every replica, e.g. $(openssl rand -hex 32)")
	}
	src, cfg, err := startDiscovery(ctx, set, cfg, logger)
	if err != nil {
		return err
	}
	a := newApp(set, cfg, logger, nil)
	if err := a.listen(); err != nil {
		a.stop()
		return err
	}
	// follow starts now; the deferred stop waits for it after the drain.
	defer src.follow(ctx, a)()
	return a.serve(ctx, reload)
}
