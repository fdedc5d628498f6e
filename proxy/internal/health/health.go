// Package health runs the active checks of a service's servers: every
// Interval each server gets a check (an HTTP GET of Path, or a TCP connect when
// Path is empty, as dockercloud/haproxy's default "check inter 2000 rise 2
// fall 3"); Fall failures in a row mark it down, Rise successes in a row mark
// it up again.
//
// Passive checks live on the request path (package forward): a connection
// that fails marks the server down at once. The checker notices and counts
// Rise successes from zero before the server takes traffic again.
package health

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
)

// Config says how to check. Zero fields take the defaults shown.
type Config struct {
	Path     string        // "": TCP connect check; else GET Path, 2xx or 3xx is healthy
	Interval time.Duration // 2s
	Timeout  time.Duration // 2s, for connect and answer
	Rise     int           // 2
	Fall     int           // 3
}

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 2 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Rise <= 0 {
		c.Rise = 2
	}
	if c.Fall <= 0 {
		c.Fall = 3
	}
	return c
}

// Over returns c with base's value in each field c leaves zero: a service's
// own check: over the file's, HEALTH_CHECK over the file's.
func (c Config) Over(base Config) Config {
	if c.Path == "" {
		c.Path = base.Path
	}
	if c.Interval <= 0 {
		c.Interval = base.Interval
	}
	if c.Timeout <= 0 {
		c.Timeout = base.Timeout
	}
	if c.Rise <= 0 {
		c.Rise = base.Rise
	}
	if c.Fall <= 0 {
		c.Fall = base.Fall
	}
	return c
}

// Checker checks the servers of one pool. Run owns it: one goroutine.
type Checker struct {
	Config
	Pool    *backend.Pool
	Service string       // for the log
	Logger  *slog.Logger // nil: discard

	client  *http.Client // built by the first Round, before its checks start
	records map[*backend.Backend]*record
}

type record struct {
	up      bool
	ok, bad int
}

// Run checks every Interval until ctx is done.
func (c *Checker) Run(ctx context.Context) {
	c.Config = c.WithDefaults()
	tick := time.NewTicker(c.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.Round(ctx)
		}
	}
}

// Round checks every server once, in parallel, and applies rise and fall.
// It also lets the pool drop drained servers.
func (c *Checker) Round(ctx context.Context) {
	c.Config = c.WithDefaults()
	if c.records == nil {
		c.records = map[*backend.Backend]*record{}
		c.client = newClient()
	}
	all := c.Pool.Backends()
	results := make([]error, len(all))
	var wg sync.WaitGroup
	for i, b := range all {
		if b.State() == backend.Draining {
			continue
		}
		wg.Go(func() { results[i] = c.check(ctx, b.Addr(), b.IsStalled()) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	seen := make(map[*backend.Backend]bool, len(all))
	for i, b := range all {
		seen[b] = true
		if b.State() == backend.Draining {
			continue
		}
		c.apply(b, results[i])
	}
	for b := range c.records {
		if !seen[b] {
			delete(c.records, b)
		}
	}
	for _, b := range c.Pool.Prune() {
		c.log().Info("server left", "service", c.Service, "server", b.ID())
	}
}

func (c *Checker) apply(b *backend.Backend, err error) {
	r := c.records[b]
	if r == nil {
		r = &record{up: b.Available()}
		c.records[b] = r
	}
	if r.up && !b.Available() {
		// Marked down on the request path since the last round: start
		// counting successes from zero.
		r.up, r.ok = false, 0
	}
	if err == nil {
		r.bad = 0
		r.ok++
		if !r.up && r.ok >= c.Rise {
			r.up = true
			if b.SetUp(true) {
				c.log().Info("server up", "service", c.Service, "server", b.ID(), "checks_ok", r.ok)
			}
		}
		return
	}
	r.ok = 0
	r.bad++
	if r.up && r.bad >= c.Fall {
		r.up = false
		if b.SetUp(false) {
			c.log().Warn("server down", "service", c.Service, "server", b.ID(), "checks_failed", r.bad, "err", err)
		}
	}
}

// check runs one check against addr: a TCP connect when Path is empty, else a
// GET of Path, healthy on 2xx or 3xx. A server that stalled (it took a request
// and did not answer it in time) must answer HTTP to pass even a TCP check: any
// status to a GET of /, within the check's timeout, as a hung server would
// never answer.
func (c *Checker) check(ctx context.Context, addr string, stalled bool) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	path, anyStatus := c.Path, false
	if path == "" {
		if !stalled {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return err
			}
			return conn.Close()
		}
		path, anyStatus = "/", true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "swarm-affinity-proxy/health")
	resp, err := c.client.Do(req)
	if err != nil {
		if anyStatus {
			return fmt.Errorf("no HTTP answer from a server that stalled: %w", err)
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if !anyStatus && (resp.StatusCode < 200 || resp.StatusCode >= 400) {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func newClient() *http.Client {
	return &http.Client{
		// One fresh connection per check, as HAProxy: a check must prove
		// that the server still accepts connections.
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is healthy, not followed
		},
	}
}

func (c *Checker) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}
