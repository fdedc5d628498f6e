package main

import (
	"context"
	"fmt"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/discover"
)

// checkWarnings is the stickiness doctor's part of -check: for every sticky
// service (a cookie, or balance source), each servers name that resolves like
// a swarm service's virtual IP (discover.CheckVIP) through res (nil: the
// system's resolver). The other conditions need traffic; the running proxy
// reports them in /stats.
func checkWarnings(ctx context.Context, cfg *config.Config, res discover.Resolver) []string {
	var out []string
	for _, s := range cfg.Services {
		if !s.Sticky.On() && s.Balance != backend.Source {
			continue
		}
		for _, t := range s.Servers {
			if msg, vip := discover.CheckVIP(ctx, res, t); vip {
				out = append(out, fmt.Sprintf("warning: %s: %s", s.Name, msg))
			}
		}
	}
	return out
}
