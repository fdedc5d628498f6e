// Package serve runs an HTTP server the way both services need it: listen first (so a
// busy port is an error at once and tests can bind :0), serve until the context ends,
// then stop accepting and let in-flight requests finish.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// NewServer returns an http.Server for h with timeouts fit for a service behind a
// proxy: a slow client cannot hold a connection by trickling its headers or body.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// Listen listens on addr (TCP) and names the address in its error.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on ADDR %s: %w", addr, err)
	}
	return ln, nil
}

// Run serves srv on ln until ctx is done, then shuts down: it stops accepting, waits
// for in-flight requests for at most timeout and returns nil once they are done. If
// they are not done in time it closes the remaining connections and returns an error.
// Run takes ownership of ln. A serve error (other than the shutdown) is returned as is.
func Run(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", "timeout", timeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serving on %s: %w", ln.Addr(), serr)
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within SHUTDOWN_TIMEOUT %v: %w", timeout, err)
	}
	logger.Info("stopped")
	return nil
}
