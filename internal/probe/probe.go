// Package probe asks running servers whether they are up: the -healthcheck of the
// services and the proxy (Docker's HEALTHCHECK), and every launcher, test and benchmark
// that waits for a process it started. One rule for where to probe a listen address,
// one HTTP client without proxies or keep-alives, one way to poll against a deadline.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// URL returns the URL of path on the server listening on addr (":8080",
// "0.0.0.0:8080", "[::]:8080", "10.0.0.5:8080"). An empty or unspecified host is
// probed on 127.0.0.1: a Go server on ":port" or "[::]:port" listens on both IPv4 and
// IPv6 (dual stack), one on "0.0.0.0:port" on IPv4 only, so 127.0.0.1 reaches all three,
// and ::1 would miss the last.
func URL(addr, path string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// client sends probes: never through an HTTP proxy from the environment, a fresh
// connection each time (a probe must show that the server still accepts connections).
var client = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// Get asks for url and returns nil if it answers 200 within timeout, else an error
// naming url and what it got.
func Get(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// Every is how often Until asks again.
const Every = 20 * time.Millisecond

// Until calls cond every Every until it returns true, returns an error wrapped by
// Fatal (a process that died: waiting will not help), or ctx ends. what describes the
// wait for the timeout's message, which carries cond's last error.
func Until(ctx context.Context, what string, cond func() (bool, error)) error {
	t := time.NewTicker(Every)
	defer t.Stop()
	var last error
	for {
		done, err := cond()
		if done || errors.Is(err, errFatal) {
			return err
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

// Within calls cond as Until does until it returns true, for at most d, and returns how
// long that took; when d passes first, the error names what and d.
func Within(d time.Duration, what string, cond func() bool) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	err := Until(ctx, what, func() (bool, error) { return cond(), nil })
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("waiting for %s: not within %v", what, d)
	}
	return took, nil
}

var errFatal = errors.New("fatal")

// Fatal marks err as one that ends Until at once.
func Fatal(err error) error { return fmt.Errorf("%w: %w", errFatal, err) }
