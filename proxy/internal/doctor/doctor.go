// Package doctor is the stickiness doctor: it spots the misconfigurations
// that make sticky sessions silently fail on a swarm, which no proxy reported
// before, and says what to write instead:
//
//   - vip: a service's servers name resolves to one address while
//     tasks.<name> resolves to others: the name is the swarm service's virtual
//     IP, which hides the replicas, so stickiness is impossible;
//   - no-cookie: a sticky service (prefix or rewrite mode) whose first answers
//     to new visitors never set the cookie the rule names (the app sets
//     another, or none): no visitor ever sticks;
//   - cookie-path: a service that is not sticky sets the sticky cookie's name
//     on a path that covers a sticky service's route (the 2018 tutorial's
//     Path=/ trap): a visit to it replaces the sticky cookie.
//
// Each Doctor belongs to one service and outlives reloads, like its counters.
// A warning is logged once, when it first fires, and stays listed (Warnings)
// until cleared. The request path only calls the cheap hooks (SamplingNew,
// NewVisitorAnswer, Trap.Check), which cost an atomic load once the question
// is settled; until then NewVisitorAnswer takes a lock and reads the
// Set-Cookies only for the first Samples answers, and after them two atomic
// loads.
package doctor

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Kind names a condition, as in /stats and /metrics.
type Kind string

// The conditions.
const (
	VIP        Kind = "vip"
	NoCookie   Kind = "no-cookie"
	CookiePath Kind = "cookie-path"
)

// Warning is one condition that holds for a service.
type Warning struct {
	Service string `json:"service"`
	Kind    Kind   `json:"kind"`
	Message string `json:"message"`
}

// Samples is how many answers to new visitors NoCookie looks at before it
// says the cookie is never set.
const Samples = 20

// Doctor watches one service. The zero value is not usable; use New.
type Doctor struct {
	service string
	logger  *slog.Logger

	mu       sync.Mutex
	warnings map[Kind]string
	logged   map[Kind]bool

	// NoCookie's sampling: sampled counts the answers that did not set the
	// cookie (the warning fires at Samples); settled once one did.
	sampled atomic.Int32
	settled atomic.Bool
	seen    []string // cookie names the sampled answers set (a few); under mu
}

// New makes the doctor of service, which logs each warning once on logger
// (nil: discard).
func New(service string, logger *slog.Logger) *Doctor {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Doctor{service: service, logger: logger, warnings: map[Kind]string{}, logged: map[Kind]bool{}}
}

// Set records that condition k holds, with msg saying what to do; the first
// time it fires it is logged as a warning.
func (d *Doctor) Set(k Kind, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.warnings[k] = msg
	if !d.logged[k] {
		d.logged[k] = true
		d.logger.Warn("stickiness doctor: "+msg, "service", d.service, "condition", string(k))
	}
}

// Clear records that condition k no longer holds.
func (d *Doctor) Clear(k Kind) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.warnings, k)
}

// Warnings lists the conditions that hold, by kind.
func (d *Doctor) Warnings() []Warning {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Warning
	for k, m := range d.warnings {
		out = append(out, Warning{Service: d.service, Kind: k, Message: m})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

// SamplingNew reports whether NoCookie still wants to see answers to new
// visitors (then the engine calls NewVisitorAnswer for a 2xx answer to a
// request that carried no id): until one of them sets the cookie.
func (d *Doctor) SamplingNew() bool { return !d.settled.Load() }

// NewVisitorAnswer counts one 2xx answer to a new visitor of a service whose
// backend must set cookie itself (prefix or rewrite mode): named says it set
// cookie; setCookies are the answer's Set-Cookie values, for the message. The
// warning fires after Samples answers that did not, and clears at the first
// one that does (an app that sets its session cookie only at login, say).
func (d *Doctor) NewVisitorAnswer(cookie string, named bool, setCookies func(yield func([]byte) bool)) {
	if d.settled.Load() {
		return
	}
	if named {
		d.settled.Store(true)
		d.Clear(NoCookie)
		return
	}
	if d.sampled.Load() >= Samples {
		return // the warning has fired: only an answer that sets the cookie matters now
	}
	d.mu.Lock()
	for v := range setCookies {
		name, _, _ := bytes.Cut(v, []byte("="))
		if n := string(bytes.TrimSpace(name)); n != "" && len(d.seen) < 5 && !slices.Contains(d.seen, n) {
			d.seen = append(d.seen, n)
		}
	}
	fires := d.sampled.Add(1) == Samples
	set := "no cookie at all"
	if fires && len(d.seen) > 0 {
		set = "only " + strings.Join(d.seen, ", ")
	}
	d.mu.Unlock()
	if !fires {
		return
	}
	d.Set(NoCookie, fmt.Sprintf("the first %d answers to new visitors set no %s cookie (they set %s): until the service sets it, its visitors do not stick; if it never does, write the name of the session cookie it sets, or use insert mode (cookie: \"SRV insert indirect nocache\")", Samples, cookie, set))
}

// StickyRoute is a route of a sticky service, for Trap: its path, and whether
// it is a prefix ("*/service1/*").
type StickyRoute struct {
	Service, Cookie, Path string
	Prefix                bool
}

// Trap watches the Set-Cookie headers of a service that is not sticky for a
// sticky service's cookie name on a path that covers that service's routes.
// It is rebuilt with each routing table; its warnings go to the service's Doctor.
type Trap struct {
	d      *Doctor
	routes []StickyRoute
	fired  atomic.Bool
}

// NewTrap makes the trap of the service whose doctor is d, for the routes of
// every sticky service of the table (nil if there are none).
func NewTrap(d *Doctor, routes []StickyRoute) *Trap {
	if len(routes) == 0 {
		return nil
	}
	return &Trap{d: d, routes: routes}
}

// Check looks at one Set-Cookie value v of an answer to a request for
// reqPath. It allocates nothing unless it fires.
func (t *Trap) Check(v, reqPath []byte) {
	if t == nil || t.fired.Load() {
		return
	}
	eq := bytes.IndexByte(v, '=')
	if eq < 0 {
		return
	}
	name := bytes.TrimSpace(v[:eq])
	for _, r := range t.routes {
		if string(name) != r.Cookie {
			continue
		}
		path := cookiePath(v, reqPath)
		if !covers(path, r) || t.fired.Swap(true) {
			continue
		}
		t.d.Set(CookiePath, fmt.Sprintf("it sets %s, the sticky cookie of %s, on Path=%s, which covers %s's route %s: a visit here replaces that cookie and %s's visitors lose their server (the 2018 Path=/ trap); have it use its own path or another cookie name",
			r.Cookie, r.Service, path, r.Service, routeText(r), r.Service))
		return
	}
}

func routeText(r StickyRoute) string {
	if r.Prefix {
		return r.Path + "*"
	}
	return r.Path
}

// cookiePath is the Path attribute of Set-Cookie v, or the default path of a
// cookie set by an answer to reqPath (RFC 6265 5.1.4: up to its last '/').
func cookiePath(v, reqPath []byte) string {
	for attr := range bytes.SplitSeq(v, []byte(";")) {
		k, val, ok := bytes.Cut(attr, []byte("="))
		if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte("path")) {
			if p := bytes.TrimSpace(val); len(p) > 0 && p[0] == '/' {
				return string(p)
			}
		}
	}
	if i := bytes.LastIndexByte(reqPath, '/'); i > 0 {
		return string(reqPath[:i])
	}
	return "/"
}

// covers reports whether a cookie on path is sent with requests on route r
// (RFC 6265 path-match, on the route's path or below it for a prefix route).
func covers(path string, r StickyRoute) bool {
	if pathMatch(r.Path, path) {
		return true
	}
	return r.Prefix && strings.HasPrefix(path, r.Path)
}

// pathMatch is RFC 6265 5.1.4: does a cookie on cookiePath go with reqPath?
func pathMatch(reqPath, cookiePath string) bool {
	if reqPath == cookiePath {
		return true
	}
	return strings.HasPrefix(reqPath, cookiePath) &&
		(strings.HasSuffix(cookiePath, "/") || reqPath[len(cookiePath)] == '/')
}
