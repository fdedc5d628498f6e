package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
)

// Measurement is one row of scenario 1 or 2: one server (or proxy over backends)
// under one kind of traffic, repeated.
type Measurement struct {
	Key   string `json:"key"`   // stable id, e.g. "service/ours-memory/returning"
	Label string `json:"label"` // row label in the table
	// Server is the server key: a service alone (ours-memory, ours-cookie, node, hello),
	// a proxy (ours-proxy, ours-std, haproxy, nginx, caddy) or a floor (goproxy, relay,
	// epollrelay, fastproxy).
	Server   string `json:"server"`
	Backends string `json:"backends,omitempty"`
	Traffic  string `json:"traffic"` // returning, new (service); sticky, roundrobin (proxy)
	RPS      Stat   `json:"rps"`
	P50ms    Stat   `json:"p50_ms"`
	P99ms    Stat   `json:"p99_ms"`
	// Proxies only: latency added over hitting the backend directly (the median
	// of this run minus the median of the direct row named by Direct), and the
	// proxy's own CPU per request.
	Direct      string  `json:"direct,omitempty"`
	P50AddedMS  float64 `json:"p50_added_ms,omitempty"`
	P99AddedMS  float64 `json:"p99_added_ms,omitempty"`
	CPUusPerReq float64 `json:"cpu_us_per_req,omitempty"`
	CtxSwPerReq float64 `json:"ctxsw_per_req,omitempty"` // context switches per request
	// Held is, for a slowloris row, how many of its connections the proxy held
	// at the end of the run.
	Held int `json:"held,omitempty"`
	// RSS of the measured process (the proxy, for proxies) after its runs.
	RSSMBAfter float64 `json:"rss_mb_after,omitempty"`
	Errors     int64   `json:"errors"`
	Runs       []Run   `json:"runs"`
}

func (h *Harness) measure(ctx context.Context, m Measurement, r WrkRun, srv, cpuOf *Server) (Measurement, error) {
	fmt.Fprintf(h.log, "  %4.0fs %-44s", time.Since(h.start).Seconds(), m.Label)
	r.Duration = h.opt.Duration
	warmup := h.opt.Warmup
	if warmup == 0 && (m.Server == "node" || m.Backends == "node") {
		// Quick runs skip warm-ups, but the Node original's first second runs
		// before V8 has compiled its hot path: it would spread its figures by 20%.
		warmup = time.Second
	}
	runs, err := h.load.repeat(ctx, r, h.opt.Reps, warmup, srv, cpuOf, h.log)
	fmt.Fprintln(h.log)
	if err != nil {
		return m, fmt.Errorf("%s: %w", m.Label, err)
	}
	m.Runs = runs
	var rps, p50, p99, cpu, sw []float64
	for _, r := range runs {
		rps, p50, p99, cpu = append(rps, r.RPS), append(p50, r.P50ms), append(p99, r.P99ms), append(cpu, r.CPUusPerReq)
		sw = append(sw, r.CtxSwPerReq)
		m.Errors += r.Errors
	}
	m.RPS, m.P50ms, m.P99ms = statOf(rps), statOf(p50), statOf(p99)
	if cpuOf != nil {
		m.CPUusPerReq, m.CtxSwPerReq = statOf(cpu).Median, statOf(sw).Median
		if rss, err := cpuOf.RSS(); err == nil {
			m.RSSMBAfter = mb(rss)
		}
	}
	return m, nil
}

// mb converts bytes to MB (10^6 bytes, as docker prints image sizes).
func mb(b int64) float64 { return float64(b) / 1e6 }

// serviceScenario is scenario 1: each server alone, returning and new visitors.
func (h *Harness) serviceScenario(ctx context.Context) ([]Measurement, error) {
	fmt.Fprintln(h.log, "1. service alone: returning visitor (one valid session cookie), new visitor (no cookie)")
	targets := []struct {
		key, label string
		start      func() (*Server, error)
	}{
		{"ours-memory", "ours, memory store", func() (*Server, error) { return h.ours(ctx, "service1", "memory") }},
		{"ours-cookie", "ours, cookie store", func() (*Server, error) { return h.ours(ctx, "service1", "cookie") }},
		{"node", "Node original", func() (*Server, error) { return h.node(ctx, "service1") }},
		{"hello", "bare Go hello (ceiling)", func() (*Server, error) { return h.hello(ctx) }},
	}
	var out []Measurement
	for _, t := range targets {
		srv, err := t.start()
		if err != nil {
			return out, err
		}
		url := "http://" + srv.Addr + "/service1"
		cookie, err := firstVisit(url)
		if err != nil {
			srv.Stop()
			return out, fmt.Errorf("%s: %w", t.label, err)
		}
		for _, v := range []struct {
			traffic string
			headers []string
		}{{"returning", []string{"Cookie: connect.sid=" + cookie}}, {"new", nil}} {
			m, err := h.measure(ctx, Measurement{Key: "service/" + t.key + "/" + v.traffic,
				Label: t.label + ", " + v.traffic + " visitor", Server: t.key, Traffic: v.traffic},
				WrkRun{URL: url, Headers: v.headers}, srv, srv)
			if err != nil {
				srv.Stop()
				return out, err
			}
			out = append(out, m)
		}
		srv.Stop()
	}
	return out, nil
}

// backendSet is a set of backends both proxies are measured over in scenario 2.
type backendSet struct {
	key, label string
	start      func() ([]*Server, error) // the four backends of type backends, in order
	direct     map[string]string         // traffic -> row measured without a proxy
}

// proxyUnderTest is one of the proxies of scenario 2.
type proxyUnderTest struct {
	key, label string
	start      func(backends) (*Server, error)
	// sticky gives the headers of its sticky traffic: what a returning visitor
	// sends after a first visit through it.
	sticky func(base string) ([]string, error)
	// insert: it has HAProxy's insert mode, configured on /service1/ (ours and
	// HAProxy): an insert row is measured too.
	insert bool
}

// proxyScenario is scenario 2: our proxy and HAProxy over the same backends, the
// sticky path (a prefixed cookie on every request) and plain round robin (no
// cookie rule, no cookie), over our services and over the hello server; then the
// tutorial's own stack, HAProxy over the Node original, for reference.
func (h *Harness) proxyScenario(ctx context.Context) ([]Measurement, error) {
	fmt.Fprintln(h.log, "2. proxy: sticky (prefixed cookie, one pinned client) and round robin (no cookie), 2 backends each")
	sets := []backendSet{
		{"services", "our services", func() ([]*Server, error) {
			var ss []*Server
			for _, name := range []string{"service1", "service1", "service2", "service2"} {
				s, err := h.ours(ctx, name, "memory")
				if err != nil {
					stopAll(ss...)
					return nil, err
				}
				ss = append(ss, s)
			}
			return ss, nil
		}, map[string]string{"sticky": "service/ours-memory/returning", "roundrobin": "service/ours-memory/new"}},
		{"hello", "hello", func() ([]*Server, error) {
			a, err := h.hello(ctx)
			if err != nil {
				return nil, err
			}
			b, err := h.hello(ctx)
			if err != nil {
				a.Stop()
				return nil, err
			}
			return []*Server{a, b, a, b}, nil
		}, map[string]string{"sticky": "service/hello/returning", "roundrobin": "service/hello/new"}},
	}
	proxies := []proxyUnderTest{
		{"ours-proxy", "ours", func(b backends) (*Server, error) { return h.ourProxy(ctx, b) }, prefixedCookie, true},
		{"ours-std", "ours (std engine)", func(b backends) (*Server, error) { return h.ourProxyOn(ctx, "std", b) }, prefixedCookie, true},
		{"haproxy", "HAProxy", func(b backends) (*Server, error) {
			s, err := h.haproxy(ctx, b, "/healthz")
			if err != nil {
				return nil, err
			}
			return s, h.waitRoutes(ctx, s)
		}, prefixedCookie, true},
		{"nginx", "nginx", func(b backends) (*Server, error) { return h.nginx(ctx, b) }, hashedCookie, false},
		{"caddy", "Caddy", func(b backends) (*Server, error) { return h.caddy(ctx, b) }, caddyCookie, false},
	}
	var out []Measurement
	for _, set := range sets {
		ms, err := h.overBackends(ctx, set, proxies)
		out = append(out, ms...)
		if err != nil {
			return out, err
		}
	}
	ms, err := h.slowlorisRows(ctx, proxies)
	out = append(out, ms...)
	if err != nil {
		return out, err
	}
	m, err := h.haproxyOverNodeRow(ctx)
	if err != nil {
		return out, err
	}
	return append(out, m), nil
}

// overBackends starts one set of backends and measures every proxy over it (and, over
// hello, the floors).
func (h *Harness) overBackends(ctx context.Context, set backendSet, proxies []proxyUnderTest) ([]Measurement, error) {
	bs, err := set.start()
	if err != nil {
		return nil, err
	}
	defer stopAll(bs...)
	b := backends{bs[0].Addr, bs[1].Addr, bs[2].Addr, bs[3].Addr}
	var out []Measurement
	for _, p := range proxies {
		ms, err := h.proxyRows(ctx, p, set, b)
		out = append(out, ms...)
		if err != nil {
			return out, err
		}
	}
	if set.key == "hello" {
		for _, f := range floors {
			m, err := h.floorRow(ctx, f.key, f.label, b)
			if err != nil {
				return out, err
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// floors are the programs of bench/ that pass the sticky traffic on untouched over
// hello, no routes, no cookie rule, no health checks: the bare Go ReverseProxy (the
// ceiling of a proxy on net/http), and the floors of the engine designs (what a proxy
// on each could reach if its proxying work cost nothing). key is its program in
// bench/bin and its Server; report.go reads their rows by key.
var floors = []struct{ key, label string }{
	{"goproxy", "bare Go ReverseProxy over hello (ceiling)"},
	{"relay", "floor: goroutine relay, no parsing (over hello)"},
	{"epollrelay", "floor: epoll relay, one thread, no parsing (over hello)"},
	{"fastproxy", "floor: minimal fasthttp proxy (over hello)"},
}

// floorRow measures one of the floors over hello with the sticky rows' traffic.
func (h *Harness) floorRow(ctx context.Context, key, label string, b backends) (Measurement, error) {
	px, err := h.floor(ctx, key, b)
	if err != nil {
		return Measurement{}, err
	}
	defer px.Stop()
	return h.measure(ctx, Measurement{Key: "proxy/" + key + "/hello/sticky", Label: label,
		Server: key, Backends: "hello", Traffic: "sticky", Direct: "service/hello/returning"},
		WrkRun{URL: "http://" + px.Addr + "/service1", Headers: []string{"Cookie: connect.sid=s1~hello"}}, px, px)
}

// proxyRows starts proxy p over b and measures its sticky and round robin rows.
func (h *Harness) proxyRows(ctx context.Context, p proxyUnderTest, set backendSet, b backends) ([]Measurement, error) {
	px, err := p.start(b)
	if err != nil {
		return nil, err
	}
	defer px.Stop()
	base := "http://" + px.Addr
	stickyHeaders, err := p.sticky(base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.label, err)
	}
	// The insert-mode route (/service1/, the same backends), for the proxies that
	// have HAProxy's insert mode: the proxy's own SRV cookie beside the backend's
	// session cookie, SRV taken off on the way in.
	inserted := ""
	if p.insert {
		if inserted, err = firstVisitCookies(base+"/service1/", "connect.sid", "SRV"); err != nil {
			return nil, fmt.Errorf("%s, insert mode: %w", p.label, err)
		}
	}
	type traffic struct {
		traffic, label, direct string
		run                    WrkRun
	}
	traffics := []traffic{
		{"sticky", "sticky", "sticky", WrkRun{URL: base + "/service1", Headers: stickyHeaders}},
		{"insert", "sticky insert", "sticky", WrkRun{URL: base + "/service1/", Headers: []string{"Cookie: " + inserted}}},
		{"roundrobin", "round robin", "roundrobin", WrkRun{URL: base + "/service2"}},
	}
	if set.key == "hello" && px.TLSAddr != "" && p.key != "ours-std" {
		// HTTPS, the same certificate on our proxy and HAProxy (ours serves it on the
		// std engine whatever the cleartext engine, so once), session resumption on
		// (both servers' default). wrk keeps its connections (one handshake each,
		// HTTP/1.1: wrk offers no ALPN); with Connection: close every request is a
		// new connection and a full handshake (wrk 4.1 does not resume sessions).
		secure := "https://" + px.TLSAddr + "/service1"
		traffics = append(traffics,
			traffic{"sticky-https", "sticky, HTTPS", "sticky", WrkRun{URL: secure, Headers: stickyHeaders}},
			traffic{"handshake-https", "sticky, HTTPS, a handshake per request", "sticky",
				WrkRun{URL: secure, Headers: append(slices.Clone(stickyHeaders), "Connection: close")}})
	}
	var out []Measurement
	for _, t := range traffics {
		if t.traffic == "insert" && !p.insert {
			continue
		}
		m, err := h.measure(ctx, Measurement{Key: "proxy/" + p.key + "/" + set.key + "/" + t.traffic,
			Label: p.label + " over " + set.label + ", " + t.label, Server: p.key,
			Backends: set.key, Traffic: t.traffic, Direct: set.direct[t.direct]}, t.run, px, px)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	if p.key == "ours-proxy" && set.key == "hello" {
		// The sticky row again, with a browser's worth of /live viewer attached:
		// the live view's cost to the proxy, measured within this run.
		stop, err := watchLive(ctx, px.Admin)
		if err != nil {
			return out, err
		}
		m, err := h.measure(ctx, Measurement{Key: "proxy/ours-proxy/hello/sticky-live",
			Label: "ours over hello, sticky, /live watched", Server: p.key, Backends: set.key,
			Traffic: "sticky", Direct: set.direct["sticky"]},
			WrkRun{URL: base + "/service1", Headers: stickyHeaders}, px, px)
		if serr := stop(); err == nil {
			err = serr
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

// watchLive opens the live view's event stream on our proxy's admin port and
// reads it, as a browser showing /live does, until stop; stop fails if no
// message came (the row would have measured no viewer).
func watchLive(ctx context.Context, admin string) (stop func() error, err error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/live/events", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watching /live: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("watching /live: %s", resp.Status)
	}
	var messages atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: state") {
				messages.Add(1)
			}
		}
	}()
	return func() error {
		cancel()
		resp.Body.Close()
		<-done
		if messages.Load() == 0 {
			return errors.New("watching /live: no message came while the row ran")
		}
		return nil
	}, nil
}

// haproxyOverNodeRow is the tutorial's own stack, for reference: HAProxy sticky over
// two Node replicas.
func (h *Harness) haproxyOverNodeRow(ctx context.Context) (Measurement, error) {
	a, err := h.node(ctx, "service1")
	if err != nil {
		return Measurement{}, err
	}
	b, err := h.node(ctx, "service1")
	if err != nil {
		a.Stop()
		return Measurement{}, err
	}
	defer stopAll(a, b)
	px, err := h.haproxyNode(ctx, a, b)
	if err != nil {
		return Measurement{}, err
	}
	defer px.Stop()
	base := "http://" + px.Addr
	cookie, err := firstVisit(base + "/service1")
	if err != nil {
		return Measurement{}, fmt.Errorf("HAProxy over Node: %w", err)
	}
	return h.measure(ctx, Measurement{Key: "proxy/haproxy/node/sticky", Label: "HAProxy over Node original, sticky",
		Server: "haproxy", Backends: "node", Traffic: "sticky", Direct: "service/node/returning"},
		WrkRun{URL: base + "/service1", Headers: []string{"Cookie: connect.sid=" + cookie}}, px, px)
}

// haproxyNode is HAProxy over two Node replicas: only /service1 is served (the
// Node original answers its one route), so readiness is checked on /service1.
func (h *Harness) haproxyNode(ctx context.Context, a, b *Server) (*Server, error) {
	s, err := h.haproxy(ctx, backends{a.Addr, b.Addr, a.Addr, b.Addr}, "/service1")
	if err != nil {
		return nil, err
	}
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err = probe.Until(wait, "HAProxy over Node to set a session cookie", func() (bool, error) {
		_, err := firstVisit("http://" + s.Addr + "/service1")
		return err == nil, err
	})
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("HAProxy over Node: %w", err)
	}
	return s, nil
}

// Memory is one row of scenario 3.
type Memory struct {
	Key         string  `json:"key"`
	Label       string  `json:"label"`
	Requests    int64   `json:"requests"` // completed during the load
	Clients     int     `json:"clients,omitempty"`
	Seconds     float64 `json:"seconds"`
	RSSMBBefore float64 `json:"rss_mb_before"`
	RSSMBAfter  float64 `json:"rss_mb_after"`
	// MBPer100k is the growth per 100,000 requests: (after-before)/requests*1e5.
	MBPer100k float64 `json:"mb_per_100k"`
}

// memoryScenario is scenario 3: RSS before and after a flood of new visitors on
// our service (default settings) and on the Node original, and of our proxy after
// ProxyN requests from Clients distinct sticky clients (over two hello backends).
func (h *Harness) memoryScenario(ctx context.Context, rates map[string]float64) ([]Memory, error) {
	fmt.Fprintln(h.log, "3. memory: RSS before and after cookie-less floods; proxy with distinct sticky clients")
	var out []Memory
	flood := func(key, label string, srv *Server, n int64, clients int, r WrkRun, rate float64) error {
		defer srv.Stop()
		before, err := srv.RSS()
		if err != nil {
			return err
		}
		fmt.Fprintf(h.log, "  %4.0fs %-44s", time.Since(h.start).Seconds(), label)
		got, took, err := h.load.fill(ctx, r, n, rate, h.opt.FillLimit, srv, h.log)
		fmt.Fprintln(h.log)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		after, err := srv.RSS()
		if err != nil {
			return err
		}
		m := Memory{Key: key, Label: label, Requests: got, Clients: clients, Seconds: took.Seconds(),
			RSSMBBefore: mb(before), RSSMBAfter: mb(after)}
		if got > 0 {
			m.MBPer100k = (m.RSSMBAfter - m.RSSMBBefore) / float64(got) * 1e5
		}
		out = append(out, m)
		return nil
	}

	srv, err := h.ours(ctx, "service1", "memory")
	if err != nil {
		return out, err
	}
	if err := flood("service", "ours (memory store, defaults), new visitors", srv, h.opt.ServiceN, 0,
		WrkRun{URL: "http://" + srv.Addr + "/service1"}, rates["service/ours-memory/new"]); err != nil {
		return out, err
	}

	if srv, err = h.node(ctx, "service1"); err != nil {
		return out, err
	}
	if err := flood("node", "Node original, new visitors", srv, h.opt.NodeN, 0,
		WrkRun{URL: "http://" + srv.Addr + "/service1"}, rates["service/node/new"]); err != nil {
		return out, err
	}

	a, err := h.hello(ctx)
	if err != nil {
		return out, err
	}
	defer a.Stop()
	b, err := h.hello(ctx)
	if err != nil {
		return out, err
	}
	defer b.Stop()
	px, err := h.ourProxy(ctx, backends{a.Addr, b.Addr, a.Addr, b.Addr})
	if err != nil {
		return out, err
	}
	file, err := h.stickyClients(px, h.opt.Clients)
	if err != nil {
		px.Stop()
		return out, err
	}
	err = flood("proxy", fmt.Sprintf("our proxy, %d sticky clients", h.opt.Clients), px, h.opt.ProxyN, h.opt.Clients,
		WrkRun{URL: "http://" + px.Addr + "/service1", Script: filepath.Join(h.opt.BenchDir, "lua", "clients.lua"),
			ScriptArgs: []string{file}}, rates["proxy/ours-proxy/hello/sticky"])
	return out, err
}

// stickyClients writes n distinct sticky cookie values to a file: the server ids
// come from the proxy's own answers to first visits (two backends, round robin),
// the session part is made up ("c<i>"), as the hello backends ignore it.
func (h *Harness) stickyClients(px *Server, n int) (string, error) {
	ids := map[string]bool{}
	for i := 0; i < 20 && len(ids) < 2; i++ {
		c, err := firstVisit("http://" + px.Addr + "/service1")
		if err != nil {
			return "", err
		}
		id, _, ok := strings.Cut(c, "~")
		if !ok {
			return "", fmt.Errorf("our proxy: first visit cookie %q has no server id", c)
		}
		ids[id] = true
	}
	var list []string
	for id := range ids {
		list = append(list, id)
	}
	var sb strings.Builder
	for i := range n {
		sb.WriteString(list[i%len(list)] + "~c" + strconv.Itoa(i) + "\n")
	}
	path := filepath.Join(h.tmp, "clients.txt")
	return path, os.WriteFile(path, []byte(sb.String()), 0o600)
}

// Image is one row of scenario 4.
type Image struct {
	Name   string  `json:"name"`
	SizeMB float64 `json:"size_mb"` // 0 when not built
	Built  bool    `json:"built"`
	Note   string  `json:"note,omitempty"`
}

// NodeBaseImageMB is the size of the full `node` image the tutorial built on:
// "650MB for the full image, vs 50MB for the Alpine Linux version" (Derick Bailey,
// "How a 650MB Node.js Image for Docker Uses Less Space Than a 50MB Image",
// WatchMeCode, 31 May 2017, the node:8 days). Its published size, not measured.
const NodeBaseImageMB = 650

// imageScenario is scenario 4: sizes of our images, when docker answers and they
// exist, against the node base image's published size.
func (h *Harness) imageScenario(ctx context.Context) []Image {
	fmt.Fprintln(h.log, "4. images")
	var out []Image
	for _, name := range []string{"service1", "service2", "proxy"} {
		ref := "swarm-affinity/" + name + ":latest"
		img := Image{Name: ref}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		b, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Size}}", ref).Output()
		cancel()
		if n, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && perr == nil {
			img.SizeMB, img.Built = float64(n)/1e6, true
		} else {
			img.Note = "not built (make images)"
		}
		out = append(out, img)
	}
	return append(out, Image{Name: "node (full, as the tutorial)", SizeMB: NodeBaseImageMB, Built: true,
		Note: "published size, 2017"})
}
