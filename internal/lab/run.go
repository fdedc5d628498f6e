package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/localstack"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// Settings are the sizes and events of a run: what a student changes, and what the
// report repeats so a run can be told from another.
type Settings struct {
	// Clients is how many visitors each arm simulates. They arrive over the run:
	// Parallel at a time, each makes Requests requests with its own cookies and leaves,
	// and the next one arrives (a few more come while a slow event, such as a rolling
	// restart, is still running, so that someone sees its end). 0 means 60.
	Clients int `json:"clients"`
	// Requests per visitor; 0 means 40.
	Requests int `json:"requests"`
	// Parallel is how many visitors of an arm are active at once; 0 means 10.
	Parallel int `json:"parallel"`
	// ThinkMS is how long a visitor pauses between two requests, on average (each pause
	// is drawn between half and one and a half times it, so visitors drift apart). It
	// paces the load so a run lasts the same on any laptop; 0 means 50, -1 means none.
	ThinkMS int `json:"think_ms"`
	// Replicas each arm starts with (local stacks only); 0 means 2, as in the tutorial.
	Replicas int `json:"replicas"`
	// Events happen in this order while the load runs, spread evenly over it:
	// Kill, Scale, Restart. Local stacks only.
	Events []string `json:"events"`
	// SessionTTL is every replica's SESSION_TTL (idle expiry, e.g. "2s"); empty keeps the
	// services' default (30m). Local stacks only.
	SessionTTL string `json:"session_ttl,omitempty"`
	// Balance is the proxy's balance algorithm in every arm but the source ones:
	// roundrobin (empty) or leastconn. Local stacks only.
	Balance string `json:"balance,omitempty"`
	// CookiePath is every replica's COOKIE_PATH; empty keeps the services' defaults, each
	// its own path. Every visitor also opens service2 (same store, round robin) after
	// each 5th page of service1, as people click around a site; "/" reproduces the 2018
	// trap: service2's cookie replaces service1's. Local stacks only.
	CookiePath string `json:"cookie_path,omitempty"`
	// Arms to run, by name; nil means the three of the tutorial's lesson (sticky,
	// stateless, neither). The others (insert, source, source-nat) compare the
	// other ways to stick: ARMS=sticky,insert,source,source-nat.
	Arms []string `json:"arms"`
	// URL is a deployed stack's proxy, e.g. http://127.0.0.1; empty means the lab
	// starts (and stops) a local stack per arm from BinDir.
	URL string `json:"url,omitempty"`
	// Live keeps the stacks up for a class watching the proxies' live views: the
	// visitors keep coming until the run's context ends, each on connections of
	// its own (a round-robin service's live view names a visitor by its
	// connection), and the events happen when Config.Commands says. Local
	// stacks only, without Events.
	Live bool `json:"live,omitempty"`
}

// Config is what Run needs.
type Config struct {
	Settings
	// BinDir holds service1 and proxy for the local stacks (`make build`: bin/).
	BinDir string
	// StackLog receives the output of the local stacks' processes; nil discards it.
	StackLog io.Writer
	// OnStart, if set, is called once the arms are ready, just before the load starts.
	OnStart func(arms []string)
	// OnAnswer, if set, is called after every request, from many goroutines at once.
	OnAnswer func(arm string)
	// OnEvent, if set, is called when an event starts (EndMS 0) and when it ends.
	OnEvent func(arm string, ev Event)
	// Commands, in a Live run, are the events asked for by hand (kill, scale,
	// restart): each happens in every arm at once. Its end stops no run.
	Commands <-chan string
	// OnLive, in a Live run, is called with every arm's addresses once the arms
	// are up, and again after each scale-out (the new replica's name).
	OnLive func([]LiveArm)
}

// LiveArm is where one arm of a Live run is watched.
type LiveArm struct {
	Name string
	Site string // the arm's page, e.g. http://127.0.0.1:PORT/service1
	Live string // the proxy's live view, with the replicas' names
}

// maxLiveAnswers bounds what a Live run keeps per arm for its report (about 30 MB
// of answers); a class that goes on longer gets the report of its first part.
const maxLiveAnswers = 200_000

// liveArrival is the most a Live run's first visitors take to arrive, however
// long each stays.
const liveArrival = 3 * time.Second

// arm is one set-up under test.
type arm struct {
	name  string
	title string
	// stack is the local stack of the arm: service1 as the arm wants it behind the
	// proxy (startArms adds a service2, the other page of the site).
	stack localstack.Config
	// ownAddress: each visitor connects from an address of its own in
	// 127.0.0.0/8 (127.0.0.2 and up), as different clients do; otherwise every
	// visitor comes from 127.0.0.1, as many people behind one NAT.
	ownAddress bool
	// extra: not one of the arms a run has by default.
	extra bool
}

// arms are the set-ups, in the order the report shows them.
var arms = []arm{
	{"sticky", "memory sessions behind the sticky prefix cookie (the tutorial's service1)",
		localstack.Config{Services: []localstack.Service{{Name: "service1", Sticky: true}}}, false, false},
	{"stateless", "sessions kept in a signed cookie, plain round robin",
		localstack.Config{Store: "cookie", Services: []localstack.Service{{Name: "service1"}}}, false, false},
	{"neither", "memory sessions, plain round robin: the mistake the tutorial prevents",
		localstack.Config{Services: []localstack.Service{{Name: "service1"}}}, false, false},
	{"insert", "memory sessions behind the proxy's own cookie (cookie SRV insert indirect nocache)",
		localstack.Config{Services: []localstack.Service{{Name: "service1", Sticky: true, Cookie: "SRV insert indirect nocache"}}}, false, true},
	{"source", "memory sessions, balance source, every visitor from its own address",
		localstack.Config{Services: []localstack.Service{{Name: "service1", Balance: "source"}}}, true, true},
	{"source-nat", "memory sessions, balance source, every visitor behind one NAT address",
		localstack.Config{Services: []localstack.Service{{Name: "service1", Balance: "source"}}}, false, true},
}

// ArmNames lists every arm in report order.
func ArmNames() []string {
	var names []string
	for _, a := range arms {
		names = append(names, a.name)
	}
	return names
}

// defaultArms are the arms of a run that names none: the tutorial's lesson.
func defaultArms() []string {
	var names []string
	for _, a := range arms {
		if !a.extra {
			names = append(names, a.name)
		}
	}
	return names
}

func armByName(name string) (arm, bool) {
	i := slices.IndexFunc(arms, func(a arm) bool { return a.name == name })
	if i < 0 {
		return arm{}, false
	}
	return arms[i], true
}

// WithDefaults fills in the zero values as documented on Settings.
func (s Settings) WithDefaults() Settings {
	if s.Clients == 0 {
		s.Clients = 60
	}
	if s.Requests == 0 {
		s.Requests = 40
	}
	if s.Parallel == 0 {
		s.Parallel = 10
	}
	if s.ThinkMS == 0 {
		s.ThinkMS = 50
	}
	if s.Replicas == 0 {
		s.Replicas = 2
	}
	if s.Arms == nil {
		s.Arms = defaultArms()
	}
	if s.Events == nil {
		s.Events = []string{}
	}
	return s
}

// Check reports every setting that cannot work, each with the way to fix it.
func (s Settings) Check() error {
	var errs []error
	if s.Clients < 1 || s.Clients > 10000 {
		errs = append(errs, fmt.Errorf("CLIENTS=%d: choose 1 to 10000 visitors per arm", s.Clients))
	}
	if s.Requests < 2 || s.Requests > 10000 {
		errs = append(errs, fmt.Errorf("REQUESTS=%d: choose 2 to 10000 requests per visitor (continuity needs two)", s.Requests))
	}
	if s.Parallel < 1 || s.Parallel > 200 {
		errs = append(errs, fmt.Errorf("PARALLEL=%d: choose 1 to 200 visitors at once", s.Parallel))
	}
	if s.ThinkMS < -1 || s.ThinkMS > 10000 {
		errs = append(errs, fmt.Errorf("THINK=%d: choose 0 to 10000 ms between a visitor's requests (-1: no pause)", s.ThinkMS))
	}
	if s.Replicas < 1 || s.Replicas > 20 {
		errs = append(errs, fmt.Errorf("REPLICAS=%d: choose 1 to 20", s.Replicas))
	}
	if s.SessionTTL != "" {
		if d, err := time.ParseDuration(s.SessionTTL); err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("SESSION_TTL=%q: give a duration such as 2s or 30m", s.SessionTTL))
		}
	}
	if s.CookiePath != "" && !strings.HasPrefix(s.CookiePath, "/") {
		errs = append(errs, fmt.Errorf("COOKIE_PATH=%q: give a path such as / or /service1", s.CookiePath))
	}
	if s.Balance != "" && s.Balance != "roundrobin" && s.Balance != "leastconn" {
		errs = append(errs, fmt.Errorf("BALANCE=%q: choose roundrobin or leastconn", s.Balance))
	}
	seen := map[string]bool{}
	for _, e := range s.Events {
		switch {
		case e != Kill && e != Scale && e != Restart:
			errs = append(errs, fmt.Errorf("EVENTS: unknown event %q; choose from kill, scale, restart, e.g. EVENTS=kill,scale", e))
		case seen[e]:
			errs = append(errs, fmt.Errorf("EVENTS: %q is there twice; each event happens once per run", e))
		}
		seen[e] = true
	}
	if seen[Kill] && s.Replicas < 2 && !seen[Scale] {
		errs = append(errs, errors.New("EVENTS=kill with REPLICAS=1 leaves nothing to fail over to; use REPLICAS=2 or more"))
	}
	for _, a := range s.Arms {
		if _, ok := armByName(a); !ok {
			errs = append(errs, fmt.Errorf("arm %q: choose from %s", a, strings.Join(ArmNames(), ", ")))
		}
	}
	if s.Live && s.URL != "" {
		errs = append(errs, errors.New("LIVE=1 starts local stacks and keeps them up; a deployed stack has its own live view "+
			"at its stats port's /live (make stack-deploy prints it)"))
	}
	if s.Live && len(s.Events) > 0 {
		errs = append(errs, errors.New("with LIVE=1 the events are yours: leave EVENTS out and type kill, scale or restart while the lab runs"))
	}
	if s.URL != "" {
		if !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://") {
			errs = append(errs, fmt.Errorf("URL=%q: give the proxy's address with its scheme, e.g. URL=http://127.0.0.1", s.URL))
		}
		if len(s.Events) > 0 {
			errs = append(errs, errors.New("EVENTS work on the local stacks only: against a deployed stack, "+
				"run the lab without EVENTS and change the stack by hand while it runs (see LAB.md, \"Against a swarm\")"))
		}
		if s.SessionTTL != "" || s.Balance != "" || s.CookiePath != "" {
			errs = append(errs, errors.New("SESSION_TTL, BALANCE and COOKIE_PATH set up the local stacks; "+
				"a deployed stack has its own (docker-compose.yml, stack/proxy.yaml)"))
		}
	}
	return errors.Join(errs...)
}

// Results is everything one run saw.
type Results struct {
	Started  time.Time `json:"started"`
	Settings Settings  `json:"settings"`
	// Mode is "local" (the lab started its own stacks) or "url".
	Mode string `json:"mode"`
	// Notes say what the run could not do (an arm a deployed stack does not have).
	Notes []string `json:"notes,omitempty"`
	// DurationS is the wall time of the load, from the first request to the last answer.
	DurationS float64     `json:"duration_s"`
	Arms      []ArmResult `json:"arms"`
}

// ArmResult is what one arm saw.
type ArmResult struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	URL   string `json:"url"`
	// Replicas lists every replica the arm had or answered from, in start order.
	Replicas []string `json:"replicas"`
	Events   []Event  `json:"events"`
	// StartMS and EndMS bound the arm's load on the lab's clock.
	StartMS float64  `json:"start_ms"`
	EndMS   float64  `json:"end_ms"`
	Summary Summary  `json:"summary"`
	Answers []Answer `json:"answers"`
}

// target is an arm made ready to run: where to send the load, and how to change it.
type target struct {
	arm   arm
	url   string
	stack *localstack.Stack // nil against a deployed stack
	// detour is the other page of the site, opened every detourEvery pages; "" for none
	// (against a deployed stack the lab visits only the arm's page).
	detour string
	// cmds brings a Live run's events to the arm; closed when the run stops.
	cmds chan liveCommand
}

// liveCommand is one event of a Live run, for one arm; done is told when it is over.
type liveCommand struct {
	kind string
	done *sync.WaitGroup
}

// dispatch hands each command to every arm at once and waits until every arm has
// made it happen, until ctx ends; then it closes the arms' channels.
func dispatch(ctx context.Context, cfg Config, targets []*target) {
	defer func() {
		for _, t := range targets {
			close(t.cmds)
		}
	}()
	commands := cfg.Commands
	for {
		select {
		case <-ctx.Done():
			return
		case kind, ok := <-commands:
			if !ok {
				commands = nil // no more by hand; the visitors go on
				continue
			}
			var wg sync.WaitGroup
			wg.Add(len(targets))
			for _, t := range targets {
				select {
				case t.cmds <- liveCommand{kind, &wg}:
				case <-ctx.Done():
					return
				}
			}
			wg.Wait()
			if kind == Scale && cfg.OnLive != nil {
				cfg.OnLive(liveArms(ctx, targets))
			}
		}
	}
}

// liveArms are the arms' addresses; an arm whose proxy does not answer is left out.
func liveArms(ctx context.Context, targets []*target) []LiveArm {
	var out []LiveArm
	for _, t := range targets {
		live, err := t.stack.LiveURL(ctx)
		if err != nil {
			continue
		}
		out = append(out, LiveArm{Name: t.arm.name, Site: t.url, Live: live})
	}
	return out
}

// detourEvery is how many pages of service1 a visitor opens between two of service2.
const detourEvery = 5

// Run starts a local stack per arm (or finds the arms of the stack at cfg.URL), sends the
// same load to every arm at once, makes the events happen, and measures. The local
// stacks are stopped before Run returns. An error means no usable result.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	cfg.Settings = cfg.WithDefaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	var targets []*target
	var notes []string
	var err error
	mode := "local"
	if cfg.URL != "" {
		mode = "url"
		targets, notes, err = findArms(ctx, cfg.URL, cfg.Arms)
	} else {
		targets, err = startArms(ctx, cfg)
		defer func() {
			for _, t := range targets {
				t.stack.Close()
			}
		}()
	}
	if err != nil {
		return nil, err
	}

	if cfg.Live {
		for _, t := range targets {
			t.cmds = make(chan liveCommand)
		}
		if cfg.OnLive != nil {
			cfg.OnLive(liveArms(ctx, targets))
		}
		go dispatch(ctx, cfg, targets)
	}
	if cfg.OnStart != nil {
		var names []string
		for _, t := range targets {
			names = append(names, t.arm.name)
		}
		cfg.OnStart(names)
	}
	res := &Results{Started: time.Now().UTC(), Settings: cfg.Settings, Mode: mode, Notes: notes}
	t0 := time.Now()
	res.Arms = make([]ArmResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { res.Arms[i] = runArm(ctx, cfg, t, t0) })
	}
	wg.Wait()
	res.DurationS = time.Since(t0).Seconds()
	if err := ctx.Err(); err != nil && !cfg.Live {
		return nil, fmt.Errorf("the run was interrupted: %w", err)
	}
	for _, a := range res.Arms {
		if cfg.Live && len(a.Answers) >= maxLiveAnswers {
			res.Notes = append(res.Notes, fmt.Sprintf("the report holds the first %d answers of each arm", maxLiveAnswers))
			break
		}
	}
	for i := range res.Arms {
		res.Arms[i].Summary = Summarize(&res.Arms[i])
	}
	return res, nil
}

// startArms starts the arms' local stacks side by side.
func startArms(ctx context.Context, cfg Config) ([]*target, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	targets := make([]*target, len(cfg.Arms))
	errs := make([]error, len(cfg.Arms))
	var wg sync.WaitGroup
	for i, name := range cfg.Arms {
		a, _ := armByName(name)
		sc := a.stack
		sc.Services = slices.Clone(sc.Services)
		for j := range sc.Services {
			if sc.Services[j].Balance == "" {
				sc.Services[j].Balance = cfg.Balance
			}
			if cfg.SessionTTL != "" {
				sc.Services[j].Env = append(slices.Clone(sc.Services[j].Env), "SESSION_TTL="+cfg.SessionTTL)
			}
		}
		sc.CookiePath = cfg.CookiePath
		sc.Services = append(sc.Services, localstack.Service{Name: "service2", Balance: cfg.Balance})
		sc.BinDir = cfg.BinDir
		sc.Replicas = cfg.Replicas
		if cfg.StackLog != nil {
			sc.Out = proc.Lines(cfg.StackLog, fmt.Sprintf("%-9s ", name), &stackLogMu)
		}
		wg.Go(func() {
			s, err := localstack.Start(ctx, sc)
			if err != nil {
				errs[i] = fmt.Errorf("starting the %s arm's stack: %w", name, err)
				return
			}
			targets[i] = &target{arm: a, url: s.URL() + "/service1", detour: s.URL() + "/service2", stack: s}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, t := range targets {
			if t != nil {
				t.stack.Close()
			}
		}
		return nil, err
	}
	return targets, nil
}

// runArm sends the arm's load and makes its events happen at their share of the load.
func runArm(ctx context.Context, cfg Config, t *target, t0 time.Time) ArmResult {
	res := ArmResult{Name: t.arm.name, Title: t.arm.title, URL: t.url, Events: []Event{}}
	transport := &http.Transport{
		MaxIdleConns:        cfg.Parallel * 2,
		MaxIdleConnsPerHost: cfg.Parallel * 2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()

	res.StartMS = ms(time.Since(t0))
	l := startLoad(ctx, cfg, t, t0, transport)
	if cfg.Live {
		for c := range t.cmds {
			res.Events = append(res.Events, happen(l.ctx, t, c.kind, t0, cfg.OnEvent)...)
			l.lastEventEnd.Store(int64(time.Since(t0)))
			c.done.Done()
		}
	} else if t.stack != nil {
		total := int64(cfg.Clients * cfg.Requests)
		for i, kind := range cfg.Events {
			at := total * int64(i+1) / int64(len(cfg.Events)+1)
			if !waitCount(&l.done, at, l.finished) {
				break // the load ended first (interrupted): no point changing the stack
			}
			res.Events = append(res.Events, happen(ctx, t, kind, t0, cfg.OnEvent)...)
			l.lastEventEnd.Store(int64(time.Since(t0)))
		}
	}
	close(l.eventsDone)
	<-l.finished
	res.EndMS = ms(time.Since(t0))
	if t.stack != nil {
		for _, r := range t.stack.Replicas("service1") {
			res.Replicas = append(res.Replicas, r.Name)
		}
	}
	res.Answers = l.answers()
	return res
}

// load is the visitors of one arm: Parallel workers, each one visitor at a time.
type load struct {
	ctx       context.Context // of the requests
	stop      context.Context // ends the visitors' coming: ctx, or in a Live run the run's end
	cfg       Config
	t         *target
	t0        time.Time
	transport http.RoundTripper
	// lifetime is about how long one visitor stays.
	lifetime time.Duration

	done         atomic.Int64  // requests answered so far
	eventsDone   chan struct{} // closed by runArm when no event is to come
	lastEventEnd atomic.Int64  // time.Duration since t0; 0: no event happened
	nextID       atomic.Int64
	logs         [][]Answer    // per worker
	finished     chan struct{} // closed when every worker is done
}

// startLoad starts the workers; finished is closed when they are all done.
func startLoad(ctx context.Context, cfg Config, t *target, t0 time.Time, transport http.RoundTripper) *load {
	l := &load{ctx: ctx, stop: ctx, cfg: cfg, t: t, t0: t0, transport: transport,
		lifetime:   time.Duration(cfg.Requests*max(cfg.ThinkMS, 0)) * time.Millisecond,
		eventsDone: make(chan struct{}), logs: make([][]Answer, cfg.Parallel), finished: make(chan struct{})}
	if cfg.Live {
		// The end of the run lets the requests in flight finish: none is
		// counted as failed for it.
		l.ctx = context.WithoutCancel(ctx)
	}
	var wg sync.WaitGroup
	for w := range cfg.Parallel {
		wg.Go(func() { l.worker(w) })
	}
	go func() { wg.Wait(); close(l.finished) }()
	return l
}

// nextVisitor numbers the next visitor to arrive, or says that none is to come. The
// planned visitors are 0 to Clients-1. An event that is slow to end (a rolling restart
// waits for the proxy's health checks) must not outlast the load, or nobody would be
// there to see what it did: while events are still to come or running, and for one
// lifetime after the last one ended, more visitors keep arriving.
func (l *load) nextVisitor() (int, bool) {
	id := int(l.nextID.Add(1) - 1)
	if l.cfg.Live {
		return id, l.stop.Err() == nil
	}
	if id < l.cfg.Clients {
		return id, true
	}
	select {
	case <-l.eventsDone:
		end := time.Duration(l.lastEventEnd.Load())
		return id, end > 0 && time.Since(l.t0) < end+l.lifetime
	default:
		return id, true
	}
}

// worker is visitor after visitor, until none is to come or ctx ends; it records into
// logs[w], which only it writes.
func (l *load) worker(w int) {
	ctx, stop, cfg := l.ctx, l.stop, l.cfg
	// Visitors arrive spread over one lifetime rather than all at once, so they come
	// and go steadily (and a new replica fills up gradually, as in life).
	spread := l.lifetime
	if cfg.Live {
		spread = min(spread, liveArrival) // a class should not wait for its visitors
	}
	if !sleep(stop, spread*time.Duration(w)/time.Duration(cfg.Parallel)) {
		return
	}
	for stop.Err() == nil {
		id, ok := l.nextVisitor()
		if !ok {
			return
		}
		var transport http.RoundTripper = l.transport
		switch {
		case l.t.arm.ownAddress:
			transport = ownTransport(id)
		case cfg.Live:
			transport = nil // a browser's own connections: see Settings.Live
		}
		v := newVisitor(id, l.t.url, transport)
		for seq := 1; seq <= cfg.Requests && stop.Err() == nil; seq++ {
			if seq > 1 && !think(stop, cfg.ThinkMS) {
				break
			}
			a := v.visit(ctx, seq, l.t0)
			if !cfg.Live || l.done.Load() < maxLiveAnswers {
				l.logs[w] = append(l.logs[w], a)
			}
			if l.t.detour != "" && seq%detourEvery == 0 {
				v.open(ctx, l.t.detour)
			}
			l.done.Add(1)
			if cfg.OnAnswer != nil {
				cfg.OnAnswer(l.t.arm.name)
			}
		}
		if l.t.arm.ownAddress || cfg.Live {
			v.b.CloseIdleConnections() // it leaves, with the connections of its own
		}
	}
}

// ownTransport is the connections of visitor id from an address of its own,
// 127.0.0.2 and up (every address of 127.0.0.0/8 is the loopback's), so that
// balance source sees different clients.
func ownTransport(id int) *http.Transport {
	n := id % (250 * 250)
	local := &net.TCPAddr{IP: net.IPv4(127, 0, byte(n/250), byte(2+n%250))}
	d := &net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
	return &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
}

// answers are every worker's answers, by visitor and request number; call it once
// finished is closed.
func (l *load) answers() []Answer {
	var all []Answer
	for _, lg := range l.logs {
		all = append(all, lg...)
	}
	slices.SortFunc(all, func(a, b Answer) int {
		if a.Visitor != b.Visitor {
			return a.Visitor - b.Visitor
		}
		return a.Seq - b.Seq
	})
	return all
}

// think pauses a visitor between two requests: thinkMS on average, drawn between half
// and one and a half times it. False if ctx ended.
func think(ctx context.Context, thinkMS int) bool {
	if thinkMS <= 0 {
		return ctx.Err() == nil
	}
	return sleep(ctx, time.Duration(float64(thinkMS)*(0.5+rand.Float64())*float64(time.Millisecond)))
}

// sleep waits for d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitCount waits until done reaches at; false if the load ended before.
func waitCount(done *atomic.Int64, at int64, loadDone <-chan struct{}) bool {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for done.Load() < at {
		select {
		case <-loadDone:
			return done.Load() >= at
		case <-tick.C: // polling a counter, not waiting for time to pass
		}
	}
	return true
}

// happen makes one event happen to the arm's local stack and records it.
func happen(ctx context.Context, t *target, kind string, t0 time.Time, notify func(string, Event)) []Event {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	record := func(ev Event, do func() (string, error)) Event {
		ev.Kind = kind
		ev.StartMS = ms(time.Since(t0))
		if notify != nil {
			notify(t.arm.name, ev)
		}
		name, err := do()
		if name != "" {
			ev.Replica = name
		}
		if err != nil {
			ev.Error = err.Error()
		}
		ev.EndMS = ms(time.Since(t0))
		if notify != nil {
			notify(t.arm.name, ev)
		}
		return ev
	}
	running := t.stack.RunningReplicas("service1")
	switch kind {
	case Kill:
		if len(running) == 0 {
			return []Event{{Kind: kind, Error: "no replica left to kill"}}
		}
		victim := running[0]
		return []Event{record(Event{Replica: victim}, func() (string, error) {
			return victim, t.stack.KillReplica(victim)
		})}
	case Scale:
		return []Event{record(Event{}, func() (string, error) {
			r, err := t.stack.AddReplica(ctx, "service1")
			if err != nil {
				return "", err
			}
			return r.Name, nil
		})}
	case Restart:
		var evs []Event
		for _, name := range running {
			evs = append(evs, record(Event{Replica: name}, func() (string, error) {
				return name, t.stack.RestartReplica(ctx, name)
			}))
		}
		return evs
	}
	return nil
}

// stackLogMu keeps the lines of the arms' stacks whole in Config.StackLog.
var stackLogMu sync.Mutex
