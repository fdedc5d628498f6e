// Package service is what the service1 and service2 binaries run: parse the settings,
// build the session store and the counter, serve until SIGTERM. The two mains differ
// only by the name in their Program.
package service

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/gin-contrib/sessions"

	"github.com/swarm-affinity/swarm-affinity/internal/pageview"
	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/internal/serve"
	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

// Program is a service binary: service1 and service2 differ only by Name.
type Program struct {
	Name    string // the service's name: its route, default cookie path and answers
	Version string // shown in the start log line
}

// Main is the binary's whole program (a cli.RunFunc): it parses the settings from args
// and getenv, then either probes a running service (-healthcheck) or serves until ctx
// is done. Logs go to stderr, -h to stdout.
func (p Program) Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := ParseConfig(p.Name, args, getenv, stdout)
	if err != nil {
		return err
	}
	if cfg.Healthcheck {
		url, err := probe.URL(cfg.Addr, "/healthz")
		if err != nil {
			return err
		}
		return probe.Get(ctx, url, 3*time.Second)
	}

	logger := cfg.Log.New(stderr).With("service", p.Name)
	if cfg.Instance == "" {
		if cfg.Instance, err = os.Hostname(); err != nil {
			return fmt.Errorf("host name (set INSTANCE_NAME instead): %w", err)
		}
	}
	if len(cfg.Secret) == 0 { // memory store only: ParseConfig refused it for the cookie store
		cfg.Secret = []byte(rand.Text() + rand.Text())
		logger.Info("SESSION_SECRET not set: using a random secret for this process (memory store sessions end with the process anyway)")
	}
	st, err := newStore(cfg, logger)
	if err != nil {
		return err
	}
	h, err := pageview.NewServer(pageview.Config{Service: p.Name, Host: cfg.Instance, CookieName: cfg.CookieName}, st, logger)
	if err != nil {
		return err
	}

	ln, err := serve.Listen(ctx, cfg.Addr)
	if err != nil {
		return err
	}
	logger.Info("starting", "version", p.Version, "instance", cfg.Instance, "store", st.Kind(),
		"cookie", cfg.CookieName, "cookie_path", cfg.CookiePath, "session_max", cfg.SessionMax,
		"session_ttl", cfg.SessionTTL.String())
	return serve.Run(ctx, serve.NewServer(h), ln, cfg.ShutdownTimeout, logger)
}

func newStore(cfg Config, logger *slog.Logger) (store.Store, error) {
	sc := store.Config{
		Secret: cfg.Secret,
		Cookie: sessions.Options{
			Path:     cfg.CookiePath,
			MaxAge:   0, // a browser-session cookie, as the original's
			Secure:   cfg.CookieSecure,
			HttpOnly: true,
			SameSite: http.SameSiteLaxMode,
		},
		Max:    cfg.SessionMax,
		TTL:    cfg.SessionTTL,
		Logger: logger,
	}
	if cfg.Store == "cookie" {
		return store.NewCookie(sc)
	}
	return store.NewMemory(sc)
}
