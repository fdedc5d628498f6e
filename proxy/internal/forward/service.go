// Package forward is the proxy's request path: route the request to a
// service, take the sticky id off its cookie, pick a server, forward with
// httputil.ReverseProxy, retry a failed connection on another server, and put
// the answering server's id on the service's Set-Cookie.
package forward

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/doctor"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/live"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/route"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// Service is one routed service. Its fields are set before it goes into a
// Table and never change after: a reload builds new Services that share the
// Pool and the Counters of the old ones.
type Service struct {
	Name        string
	VirtualHost string // dockercloud VIRTUAL_HOST, e.g. "*/service1, */service1/*"
	// Weight is dockercloud's VIRTUAL_HOST_WEIGHT: the rules of a higher weight are
	// tried first (route.Table.AddWeighted); 0 for all leaves the most specific first.
	Weight int
	// Sticky is the cookie rule (HAProxy `cookie NAME prefix|insert|rewrite
	// ...`); its zero value (no Name) means not sticky. With NoCache, an answer
	// that carries a server id in a Set-Cookie gets "Cache-Control: private"
	// in every mode: HAProxy's nocache acts only in insert mode, and only on
	// answers it deems cacheable; we do more so that a shared cache never
	// hands one client's server id to another.
	Sticky sticky.Rule
	// TrustedProxies are the peers whose last X-Forwarded-For hop is taken as
	// the client's address for balance source; nil: the peer's own address.
	TrustedProxies []netip.Prefix
	// Retries is how many other servers a request that could not connect
	// is tried on (HAProxy `retries` with `option redispatch`).
	Retries int
	// ForceSSL answers a request that came in cleartext with 301 to https, same host,
	// path and query (dockercloud's FORCE_SSL), on either engine, before a server is
	// picked. HTTPSPort is the port of that Location; 443 (or 0) writes none.
	ForceSSL  bool
	HTTPSPort int
	// HSTS is the Strict-Transport-Security value of the service's HTTPS answers
	// (HSTSHeader), replacing any the server sent; "" sends none.
	HSTS     string
	Pool     *backend.Pool
	Counters *Counters // nil: NewTable makes one
	// Doctor watches the service for the stickiness doctor's conditions;
	// it outlives reloads like Counters. nil: NewTable makes one that logs
	// nothing.
	Doctor *doctor.Doctor
	// Trap is set by NewTable on a service that is not sticky when others
	// are: the engines show it every Set-Cookie of its answers.
	Trap *doctor.Trap
	// Live is the service's live view (shared across reloads, as Counters);
	// nil: none. The engines hand it every request through Observe.
	Live *live.Recorder
}

// Sticky is what the sticky cookie did for a request: the live view's
// live.Outcome itself, so that the view, /stats and the access log cannot
// number or name the outcomes differently.
type Sticky = live.Outcome

// The sticky outcomes, as in the access log and /stats (String: "", "hit",
// "new", "rebalanced").
const (
	StickyNone       = live.NotSticky  // the service has no cookie
	StickyHit        = live.Hit        // the cookie's server answered
	StickyNew        = live.New        // no id in the request: balanced, the response may set one
	StickyRebalanced = live.Rebalanced // an id that names no live server, or whose server refused: balanced
)

// Counters count what a service did. Everything is atomic; the admin port
// reads it while requests write it.
type Counters struct {
	Hits, New, Rebalanced atomic.Uint64
	// Responses counts answers by status class: [2] is 2xx...; [0] counts
	// requests that got no whole answer (the client went away, or the server
	// died in the middle of the body).
	Responses [6]atomic.Uint64
	Duration  Histogram
}

// Record counts one finished request: its sticky outcome, its status (0: no
// whole answer) and how long it took.
func (s *Counters) Record(sticky Sticky, status int, d time.Duration) {
	switch sticky {
	case StickyHit:
		s.Hits.Add(1)
	case StickyNew:
		s.New.Add(1)
	case StickyRebalanced:
		s.Rebalanced.Add(1)
	}
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	s.Responses[class].Add(1)
	s.Duration.Observe(d)
}

// Abort moves one answer counted by Record with status to the answers that
// did not reach the client whole: for an engine that counts an answer just
// before its last write (so a client that has it sees it counted) and then
// sees that write fail.
func (s *Counters) Abort(status int) {
	if class := status / 100; class >= 1 && class <= 5 {
		s.Responses[class].Add(^uint64(0))
		s.Responses[0].Add(1)
	}
}

// Buckets are the upper bounds of the duration histogram, in seconds.
var Buckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Histogram counts durations into Buckets without locks.
type Histogram struct {
	counts [14]atomic.Uint64 // per bucket (not cumulative); the last is +Inf
	sumNs  atomic.Int64
}

// Observe adds one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(Buckets) && s > Buckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

// Snapshot returns the cumulative count per bucket upper bound, the total
// count and the sum in seconds, as Prometheus wants them.
func (h *Histogram) Snapshot() (buckets map[float64]uint64, count uint64, sum float64) {
	buckets = make(map[float64]uint64, len(Buckets))
	for i, ub := range Buckets {
		count += h.counts[i].Load()
		buckets[ub] = count
	}
	count += h.counts[len(Buckets)].Load()
	return buckets, count, time.Duration(h.sumNs.Load()).Seconds()
}

// Table is the routing table and its services, built once per configuration
// and then only read.
type Table struct {
	routes   route.Table[*Service]
	services []*Service
}

// NewTable routes each service's VirtualHost to it. Services keep their order.
func NewTable(services []*Service) (*Table, error) {
	t := &Table{services: services}
	var sticky []doctor.StickyRoute
	for _, s := range services {
		if s.Pool == nil {
			return nil, fmt.Errorf("service %s has no pool", s.Name)
		}
		if s.Counters == nil {
			s.Counters = new(Counters)
		}
		if s.Doctor == nil {
			s.Doctor = doctor.New(s.Name, nil)
		}
		if err := t.routes.AddWeighted(s.VirtualHost, s, s.Weight); err != nil {
			return nil, fmt.Errorf("service %s: virtual_host: %w", s.Name, err)
		}
		if s.Sticky.On() {
			rules, _ := route.Parse(s.VirtualHost) // parsed by Add already
			for _, r := range rules {
				sticky = append(sticky, doctor.StickyRoute{Service: s.Name, Cookie: s.Sticky.Name, Path: r.Path, Prefix: r.Prefix})
			}
		}
	}
	for _, s := range services {
		if !s.Sticky.On() {
			s.Trap = doctor.NewTrap(s.Doctor, sticky)
		}
	}
	return t, nil
}

// Services lists the services in configuration order.
func (t *Table) Services() []*Service { return t.services }

// Route is one routing rule and the service it leads to.
type Route struct {
	Rule    string `json:"rule"` // in VIRTUAL_HOST form, e.g. "*/service1/*"
	Service string `json:"service"`
}

// Routes lists the routing rules, most specific first (the order they are
// tried in), with their service.
func (t *Table) Routes() []Route {
	var out []Route
	t.routes.Each(func(r route.Rule, s *Service) {
		out = append(out, Route{Rule: r.String(), Service: s.Name})
	})
	return out
}

// Match finds the service for a request's host and path.
func (t *Table) Match(host, path string) (*Service, bool) { return t.routes.Match(host, path) }
