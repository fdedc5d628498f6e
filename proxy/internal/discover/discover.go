// Package discover turns a service's "servers" setting into backend addresses:
// IP literals (and localhost) are taken as they are, host names are resolved
// and re-resolved every few seconds, as dockercloud/haproxy polled Docker
// every 5 s. In a swarm, name "tasks.<service>": it answers one address per
// running task, which is what stickiness needs (the service's VIP would hide
// the replicas behind one address).
package discover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Resolver looks up the addresses of a host name; *net.Resolver is one.
// Tests inject their own.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Target is one entry of a servers list.
type Target struct {
	Host string // an IP literal or a name
	Port string
}

// Static reports whether t needs no resolving: an IP literal or localhost
// (whose two answers, 127.0.0.1 and ::1, would make two servers of one).
func (t Target) Static() bool {
	return net.ParseIP(t.Host) != nil || strings.EqualFold(t.Host, "localhost")
}

func (t Target) String() string { return net.JoinHostPort(t.Host, t.Port) }

// Parse reads servers entries: each "host:port", where a single entry may
// itself be a comma-separated list ("127.0.0.1:9001, 127.0.0.1:9002").
func Parse(entries []string) ([]Target, error) {
	var out []Target
	var errs []error
	for _, e := range entries {
		for s := range strings.SplitSeq(e, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			t, err := parseTarget(s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, errors.New("no host:port given")
	}
	return out, nil
}

func parseTarget(s string) (Target, error) {
	if strings.Contains(s, "://") {
		return Target{}, fmt.Errorf("%q: write host:port without a scheme", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Target{}, fmt.Errorf("%q has no port; write host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Target{}, fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	if host == "" || strings.ContainsAny(host, " /\t*") {
		return Target{}, fmt.Errorf("%q: host %q is not a host name or an IP address", s, host)
	}
	return Target{Host: host, Port: port}, nil
}

// Watcher resolves a list of targets into addresses, again and again.
// Set the exported fields before the first call; a Watcher is used by one
// goroutine at a time.
type Watcher struct {
	Targets  []Target
	Resolver Resolver      // nil: net.DefaultResolver
	Interval time.Duration // between rounds in Run; 0: 5s
	Timeout  time.Duration // per lookup; 0: 2s
	Logger   *slog.Logger  // nil: discard
	Service  string        // for the log

	last map[string][]string // last good answer per name
}

// Resolve returns the sorted, de-duplicated addresses (host:port) of all
// targets. A name that does not exist (NXDOMAIN: e.g. the service has no
// task) gives no address. Any other failure keeps the name's last good
// answer, so a DNS hiccup does not empty a service; it is logged.
func (w *Watcher) Resolve(ctx context.Context) []string {
	if w.last == nil {
		w.last = map[string][]string{}
	}
	res := w.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	var addrs []string
	for _, t := range w.Targets {
		if t.Static() {
			addrs = append(addrs, t.String())
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, timeout)
		ips, err := res.LookupHost(lctx, t.Host)
		cancel()
		var dnsErr *net.DNSError
		switch {
		case err == nil:
			w.last[t.Host] = ips
		case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			if len(w.last[t.Host]) > 0 {
				w.log().Info("name has no address now", "service", w.Service, "name", t.Host)
			}
			w.last[t.Host] = nil
		case ctx.Err() != nil:
			// Shutting down: keep the last answer quietly.
		default:
			w.log().Warn("resolving failed; keeping the last answer", "service", w.Service, "name", t.Host, "servers", len(w.last[t.Host]), "err", err)
		}
		for _, ip := range w.last[t.Host] {
			addrs = append(addrs, net.JoinHostPort(ip, t.Port))
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs)
}

// Run calls update with the resolved addresses at once, then every Interval
// until ctx is done. Only names are polled; a list of IPs is resolved once.
func (w *Watcher) Run(ctx context.Context, update func(addrs []string)) {
	update(w.Resolve(ctx))
	if !slices.ContainsFunc(w.Targets, func(t Target) bool { return !t.Static() }) {
		return
	}
	interval := w.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			update(w.Resolve(ctx))
		}
	}
}

func (w *Watcher) log() *slog.Logger {
	if w.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Logger
}

// CheckVIP reports whether the servers entry t names a swarm service's
// virtual IP rather than its tasks: t's name resolves to exactly one address
// while "tasks.<name>" resolves to other addresses. Behind a VIP every request
// reaches a replica chosen by the swarm's own balancer, so no proxy can keep a
// visitor on one replica. The message says what to write instead. IP literals,
// localhost and names already starting with "tasks." are never a VIP.
func CheckVIP(ctx context.Context, res Resolver, t Target) (string, bool) {
	if t.Static() || strings.HasPrefix(strings.ToLower(t.Host), "tasks.") {
		return "", false
	}
	if res == nil {
		res = net.DefaultResolver
	}
	lookup := func(name string) []string {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ips, err := res.LookupHost(lctx, name)
		if err != nil {
			return nil
		}
		return ips
	}
	vip := lookup(t.Host)
	if len(vip) != 1 {
		return "", false
	}
	tasks := lookup("tasks." + t.Host)
	if len(tasks) == 0 || slices.Contains(tasks, vip[0]) {
		return "", false
	}
	return fmt.Sprintf("servers %q is the swarm service's virtual IP (%s), which hides its %d tasks (tasks.%s): stickiness is impossible; use servers: \"tasks.%s:%s\"",
		t.String(), vip[0], len(tasks), t.Host, t.Host, t.Port), true
}
