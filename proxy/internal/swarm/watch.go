package swarm

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
)

// Watcher follows the swarm: it derives the proxy's services at once on every service
// event (create, update, remove: the events stream, reconnected after it ends) and
// every Interval (swarm sends no event when a task starts or stops, so tasks are
// polled, as dockercloud/haproxy polled them), every UpdatingInterval while a routed
// service is in a rolling update: the next old task may stop as soon as its new one
// runs, and the proxy must know the new one by then. Set the exported fields before
// First; then Run owns the Watcher.
type Watcher struct {
	Client   *Client
	Self     Self
	Balance  string        // the proxy's BALANCE, for services without one
	Interval time.Duration // between polls; 0: 5s
	// UpdatingInterval is the poll during a rolling update; 0: 1s (never above Interval).
	UpdatingInterval time.Duration
	Logger           *slog.Logger // nil: discard
	// SelfWait is how long First waits for the manager to list the proxy's own task;
	// 0: 15s.
	SelfWait time.Duration

	last     []config.Service
	updating bool            // the last derivation saw a rolling update
	warned   map[string]bool // the warnings and left-out notes of the last derivation
	lastErr  string
}

// Reconnection delays of the events stream: the first retry, and the most between two.
const (
	retryFirst = 500 * time.Millisecond
	retryMost  = 30 * time.Second
)

// First asks the engine which API version it speaks and derives the services once,
// logging the warnings. ErrNotManager and an engine that cannot be reached fail at
// once; ErrNoSelf is retried for SelfWait (the proxy's own task may not be listed yet
// when it starts).
func (w *Watcher) First(ctx context.Context) (Derived, error) {
	if err := w.Client.Negotiate(ctx); err != nil {
		return Derived{}, err
	}
	wait := w.SelfWait
	if wait <= 0 {
		wait = 15 * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		d, err := w.derive(ctx)
		if err == nil {
			w.last, w.updating = d.Services, d.Updating
			return d, nil
		}
		if !errors.Is(err, ErrNoSelf) || time.Now().After(deadline) {
			return d, err
		}
		select {
		case <-ctx.Done():
			return d, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Run derives the services on every service event and every Interval until ctx is
// done, and calls apply with them whenever they differ from the last ones (those of
// First at first). A failure keeps the last services and is logged when it starts and
// when it ends.
func (w *Watcher) Run(ctx context.Context, apply func([]config.Service)) {
	interval, fast := w.Interval, w.UpdatingInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if fast <= 0 {
		fast = time.Second
	}
	fast = min(fast, interval)
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default: // a derivation is already due: it will see this change too
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.follow(ctx, poke)
	}()
	defer func() { <-done }()

	next := time.NewTimer(interval)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		case <-kick:
		}
		wait := interval
		if w.updating {
			wait = fast
		}
		next.Reset(wait)
		d, err := w.derive(ctx)
		if err != nil {
			if ctx.Err() == nil && err.Error() != w.lastErr {
				w.log().Warn("reading the swarm failed; keeping the services as they were", "docker_host", w.Client.Host(), "err", err)
			}
			w.lastErr = err.Error()
			continue
		}
		if w.lastErr != "" {
			w.log().Info("reading the swarm works again", "docker_host", w.Client.Host())
			w.lastErr = ""
		}
		if d.Updating != w.updating {
			w.log().Debug("rolling update", "updating", d.Updating)
			w.updating = d.Updating
			if d.Updating {
				next.Reset(fast)
			}
		}
		if !reflect.DeepEqual(d.Services, w.last) {
			w.last = d.Services
			apply(d.Services)
		}
	}
}

// follow reads the events stream until ctx is done, calling poke after every service
// event and after every (re)connection, since events may have been missed meanwhile.
func (w *Watcher) follow(ctx context.Context, poke func()) {
	delay := retryFirst
	first := true
	for {
		err := w.Client.Events(ctx, func() {
			if !first {
				w.log().Info("events stream reconnected", "docker_host", w.Client.Host())
				poke()
			}
			first, delay = false, retryFirst
		}, func(e Event) bool {
			if e.Type == "service" {
				w.log().Debug("service event", "action", e.Action, "service", e.Actor.Attributes["name"])
				poke()
			}
			return true
		})
		if ctx.Err() != nil {
			return
		}
		w.log().Warn("events stream lost; reconnecting (tasks are still polled)", "docker_host", w.Client.Host(), "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, retryMost)
	}
}

// derive reads the services and tasks once and derives the proxy's services, logging
// the warnings and notes that are new since the last derivation.
func (w *Watcher) derive(ctx context.Context) (Derived, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	services, err := w.Client.Services(ctx)
	if err != nil {
		return Derived{}, err
	}
	tasks, err := w.Client.Tasks(ctx)
	if err != nil {
		return Derived{}, err
	}
	d, err := Derive(services, tasks, w.Self, w.Balance)
	if err != nil {
		return d, err
	}
	now := map[string]bool{}
	for _, m := range d.Warnings {
		now[m] = true
		if !w.warned[m] {
			w.log().Warn(m)
		}
	}
	for _, m := range d.Left {
		now[m] = true
		if !w.warned[m] {
			w.log().Info(m)
		}
	}
	if w.warned == nil {
		var names []string
		for _, s := range d.Services {
			names = append(names, s.Name)
		}
		w.log().Info("discovery docker: following the swarm", "docker_host", w.Client.Host(), "proxy", d.Proxy,
			"networks", strings.Join(d.Networks, ","), "services", strings.Join(names, ","))
	}
	w.warned = now
	return d, nil
}

func (w *Watcher) log() *slog.Logger {
	if w.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Logger
}
