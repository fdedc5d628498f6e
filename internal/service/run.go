// Package service is what the service1 and service2 binaries run: parse the settings,
// build the session store and the counter, serve until SIGTERM. The two mains differ
// only by the name they pass.
package service

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gin-contrib/sessions"

	"github.com/swarm-affinity/swarm-affinity/internal/pageview"
	"github.com/swarm-affinity/swarm-affinity/internal/serve"
	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

// Exit codes of Main.
const (
	ExitOK     = 0
	ExitFail   = 1 // runtime failure (port in use, shutdown timed out) or unhealthy
	ExitConfig = 2 // bad setting
)

// Main runs the service and returns the process's exit code, printing any error to
// stderr. ctx ends the service (main cancels it on SIGTERM/SIGINT).
func Main(ctx context.Context, service, version string, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	err := Run(ctx, service, version, args, getenv, stdout, stderr)
	var cerr *ConfigError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &cerr) && !healthcheckRequested(args):
		fmt.Fprintf(stderr, "%s: %v\n", service, err)
		return ExitConfig
	default:
		// Also a -healthcheck whose settings are bad: Docker reads a HEALTHCHECK's
		// exit 1 as unhealthy and reserves 2.
		fmt.Fprintf(stderr, "%s: %v\n", service, err)
		return ExitFail
	}
}

// Run parses the settings from args and getenv, then either probes a running
// service (-healthcheck) or serves until ctx is done. Logs go to stderr, -h to stdout.
func Run(ctx context.Context, service, version string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := ParseConfig(service, args, getenv, stdout)
	if err != nil {
		return err
	}
	if cfg.Healthcheck {
		// Docker reads exit 1 as unhealthy; 2 is reserved, so every failure is 1.
		if err := serve.Probe(ctx, cfg.Addr, 3*time.Second); err != nil {
			return err
		}
		return nil
	}

	logger := newLogger(cfg, stderr).With("service", service)
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
	h, err := pageview.NewServer(pageview.Config{Service: service, Host: cfg.Instance, CookieName: cfg.CookieName}, st, logger)
	if err != nil {
		return err
	}

	ln, err := serve.Listen(ctx, cfg.Addr)
	if err != nil {
		return err
	}
	logger.Info("starting", "version", version, "instance", cfg.Instance, "store", st.Kind(),
		"cookie", cfg.CookieName, "cookie_path", cfg.CookiePath, "session_max", cfg.SessionMax,
		"session_ttl", cfg.SessionTTL.String())
	return serve.Run(ctx, serve.NewServer(h), ln, cfg.ShutdownTimeout, logger)
}

// healthcheckRequested reports whether args ask for -healthcheck (even if they are
// otherwise bad).
func healthcheckRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "healthcheck" {
			if b, err := strconv.ParseBool(value); !hasValue || (err == nil && b) {
				return true
			}
		}
	}
	return false
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

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
