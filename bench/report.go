package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Results is what a run writes to results/latest.json. The top-level ratios are the
// figures the README and the lab quote; every one is measured within this run.
type Results struct {
	Date    time.Time `json:"date"`
	Command string    `json:"command"`
	Quick   bool      `json:"quick"`
	Seconds float64   `json:"seconds"` // the whole run
	Machine Machine   `json:"machine"`
	Method  Method    `json:"method"`

	ServiceVsNodeRPS    float64 `json:"service_vs_node_rps"`     // returning visitors
	ServiceVsNodeNewRPS float64 `json:"service_vs_node_new_rps"` // new visitors
	ServiceVsHelloRPS   float64 `json:"service_vs_hello_rps"`    // returning visitors
	// The same over hello's new-visitor row, and the cookie store's returning
	// visitors over hello's (the lab's stateless arm).
	ServiceNewVsHelloRPS   float64 `json:"service_new_vs_hello_rps,omitempty"`
	CookieStoreVsHelloRPS  float64 `json:"cookie_store_vs_hello_rps,omitempty"`
	ProxyVsHAProxyRPS      float64 `json:"proxy_vs_haproxy_rps"` // sticky, over our services
	ProxyVsHAProxyHelloRPS float64 `json:"proxy_vs_haproxy_hello_rps"`
	// ProxyVsGoProxyHelloRPS compares our proxy with the standard library's bare
	// ReverseProxy (bench/goproxy), sticky traffic over hello: the Go ceiling.
	ProxyVsGoProxyHelloRPS float64 `json:"proxy_vs_goproxy_hello_rps,omitempty"`
	// Over hello, sticky traffic: ours against the proxies a user would pick
	// instead, the std engine, and the floors of the engine designs (issue 13).
	ProxyVsNginxRPS           float64 `json:"proxy_vs_nginx_rps,omitempty"`
	ProxyVsCaddyRPS           float64 `json:"proxy_vs_caddy_rps,omitempty"`
	ProxyStdVsHAProxyRPS      float64 `json:"proxy_std_vs_haproxy_rps,omitempty"`
	ProxyCPUVsHAProxy         float64 `json:"proxy_cpu_vs_haproxy,omitempty"` // CPU µs per request, ours / HAProxy's
	RelayVsHAProxyRPS         float64 `json:"floor_relay_vs_haproxy_rps,omitempty"`
	EpollRelayVsHAProxyRPS    float64 `json:"floor_epollrelay_vs_haproxy_rps,omitempty"`
	FastHTTPVsHAProxyRPS      float64 `json:"floor_fasthttp_vs_haproxy_rps,omitempty"`
	ProxySlowlorisVsHAProxy   float64 `json:"proxy_slowloris_vs_haproxy_rps,omitempty"` // both under 2,000 slowloris connections
	ProxySlowlorisVsUnderNone float64 `json:"proxy_slowloris_vs_plain_rps,omitempty"`   // ours under them / ours without
	// ProxyLiveVsNoneRPS is our proxy's req/s with a /live viewer attached over
	// its req/s without, sticky traffic over hello.
	ProxyLiveVsNoneRPS float64 `json:"proxy_live_vs_none_rps,omitempty"`
	// HTTPS over hello, sticky traffic, the same certificate on both: on kept
	// connections, and with a new connection (a full TLS handshake) per request.
	ProxyVsHAProxyHTTPSRPS     float64 `json:"proxy_vs_haproxy_https_rps,omitempty"`
	ProxyVsHAProxyHandshakeRPS float64 `json:"proxy_vs_haproxy_handshake_rps,omitempty"`
	ProxyP99AddedMS            float64 `json:"proxy_p99_added_ms"`   // sticky, over hello
	HAProxyP99AddedMS          float64 `json:"haproxy_p99_added_ms"` // sticky, over hello
	ServiceRSSMBAfter1M        float64 `json:"service_rss_mb_after_1m"`
	NodeRSSMBPer100k           float64 `json:"node_rss_mb_per_100k"`
	ProxyRSSMB                 float64 `json:"proxy_rss_mb"`

	Targets []Target      `json:"targets"`
	Service []Measurement `json:"service"` // scenario 1
	Proxy   []Measurement `json:"proxy"`   // scenario 2
	Memory  []Memory      `json:"memory"`  // scenario 3
	Images  []Image       `json:"images"`  // scenario 4
}

// Machine is where the run took place.
type Machine struct {
	CPUModel      string  `json:"cpu_model"`
	Cores         int     `json:"cores"`
	Kernel        string  `json:"kernel"`
	LoadAvgBefore float64 `json:"loadavg_1m_before"`
	Go            string  `json:"go"`
	Node          string  `json:"node"`
	HAProxy       string  `json:"haproxy"`
	Nginx         string  `json:"nginx,omitempty"`
	Caddy         string  `json:"caddy,omitempty"`
	Wrk           string  `json:"wrk"`
	Build         string  `json:"build,omitempty"` // bin/proxy -version: the commit built
}

// Method is how the figures were taken.
type Method struct {
	Connections     int     `json:"connections"`
	ServerCPU       string  `json:"server_cpu"`
	LoadCPU         string  `json:"load_cpu"`
	LoadGenerator   string  `json:"load_generator"`
	DurationSeconds float64 `json:"duration_s"`
	Reps            int     `json:"reps"`
	WarmupSeconds   float64 `json:"warmup_s"`
	ServiceRequests int64   `json:"service_requests"`
	NodeRequests    int64   `json:"node_requests"`
	ProxyRequests   int64   `json:"proxy_requests"`
	ProxyClients    int     `json:"proxy_clients"`
	Notes           string  `json:"notes"`
}

// Target is one performance goal (README, "Performance") and whether this run met it.
type Target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Want  string  `json:"want"`
	Met   bool    `json:"met"`
	// Skipped: not measured in this run (e.g. the images were not built).
	Skipped bool   `json:"skipped,omitempty"`
	Note    string `json:"note,omitempty"`
}

func (r *Results) row(key string) (Measurement, bool) {
	for _, m := range append(append([]Measurement(nil), r.Service...), r.Proxy...) {
		if m.Key == key {
			return m, true
		}
	}
	return Measurement{}, false
}

func (r *Results) rps(key string) float64 {
	m, _ := r.row(key)
	return m.RPS.Median
}

func (r *Results) memory(key string) (Memory, bool) {
	for _, m := range r.Memory {
		if m.Key == key {
			return m, true
		}
	}
	return Memory{}, false
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// derive fills in the latency added by each proxy row, the headline ratios and
// the targets from the raw rows.
func (r *Results) derive() {
	for i, m := range r.Proxy {
		if d, ok := r.row(m.Direct); ok {
			r.Proxy[i].P50AddedMS = m.P50ms.Median - d.P50ms.Median
			r.Proxy[i].P99AddedMS = m.P99ms.Median - d.P99ms.Median
		}
	}
	r.ServiceVsNodeRPS = ratio(r.rps("service/ours-memory/returning"), r.rps("service/node/returning"))
	r.ServiceVsNodeNewRPS = ratio(r.rps("service/ours-memory/new"), r.rps("service/node/new"))
	r.ServiceVsHelloRPS = ratio(r.rps("service/ours-memory/returning"), r.rps("service/hello/returning"))
	r.ServiceNewVsHelloRPS = ratio(r.rps("service/ours-memory/new"), r.rps("service/hello/new"))
	r.CookieStoreVsHelloRPS = ratio(r.rps("service/ours-cookie/returning"), r.rps("service/hello/returning"))
	r.ProxyVsHAProxyRPS = ratio(r.rps("proxy/ours-proxy/services/sticky"), r.rps("proxy/haproxy/services/sticky"))
	r.ProxyVsHAProxyHelloRPS = ratio(r.rps("proxy/ours-proxy/hello/sticky"), r.rps("proxy/haproxy/hello/sticky"))
	r.ProxyVsGoProxyHelloRPS = ratio(r.rps("proxy/ours-proxy/hello/sticky"), r.rps("proxy/goproxy/hello/sticky"))
	r.ProxyLiveVsNoneRPS = ratio(r.rps("proxy/ours-proxy/hello/sticky-live"), r.rps("proxy/ours-proxy/hello/sticky"))
	r.ProxyVsHAProxyHTTPSRPS = ratio(r.rps("proxy/ours-proxy/hello/sticky-https"), r.rps("proxy/haproxy/hello/sticky-https"))
	r.ProxyVsHAProxyHandshakeRPS = ratio(r.rps("proxy/ours-proxy/hello/handshake-https"), r.rps("proxy/haproxy/hello/handshake-https"))
	ours, _ := r.row("proxy/ours-proxy/hello/sticky")
	ha, _ := r.row("proxy/haproxy/hello/sticky")
	r.ProxyP99AddedMS, r.HAProxyP99AddedMS = ours.P99AddedMS, ha.P99AddedMS
	r.ProxyVsNginxRPS = ratio(ours.RPS.Median, r.rps("proxy/nginx/hello/sticky"))
	r.ProxyVsCaddyRPS = ratio(ours.RPS.Median, r.rps("proxy/caddy/hello/sticky"))
	r.ProxyStdVsHAProxyRPS = ratio(r.rps("proxy/ours-std/hello/sticky"), ha.RPS.Median)
	r.ProxyCPUVsHAProxy = ratio(ours.CPUusPerReq, ha.CPUusPerReq)
	r.RelayVsHAProxyRPS = ratio(r.rps("proxy/relay/hello/sticky"), ha.RPS.Median)
	r.EpollRelayVsHAProxyRPS = ratio(r.rps("proxy/epollrelay/hello/sticky"), ha.RPS.Median)
	r.FastHTTPVsHAProxyRPS = ratio(r.rps("proxy/fastproxy/hello/sticky"), ha.RPS.Median)
	r.ProxySlowlorisVsHAProxy = ratio(r.rps("proxy/ours-proxy/hello/sticky-slowloris"), r.rps("proxy/haproxy/hello/sticky-slowloris"))
	r.ProxySlowlorisVsUnderNone = ratio(r.rps("proxy/ours-proxy/hello/sticky-slowloris"), ours.RPS.Median)
	if m, ok := r.memory("service"); ok {
		r.ServiceRSSMBAfter1M = m.RSSMBAfter
	}
	if m, ok := r.memory("node"); ok {
		r.NodeRSSMBPer100k = m.MBPer100k
	}
	if m, ok := r.memory("proxy"); ok {
		r.ProxyRSSMB = m.RSSMBAfter
	}

	at := func(name string, v, want float64, atLeast bool, unit string) Target {
		t := Target{Name: name, Value: v}
		if atLeast {
			t.Want, t.Met = fmt.Sprintf(">= %g%s", want, unit), v >= want
		} else {
			t.Want, t.Met = fmt.Sprintf("<= %g%s", want, unit), v <= want
		}
		return t
	}
	r.Targets = nil
	for _, t := range []struct {
		name     string
		v, want  float64
		num, den string
	}{
		{"service vs Node original, returning visitors (req/s)", r.ServiceVsNodeRPS, 5, "service/ours-memory/returning", "service/node/returning"},
		{"service vs Node original, new visitors (req/s)", r.ServiceVsNodeNewRPS, 5, "service/ours-memory/new", "service/node/new"},
		{"service vs hello ceiling, returning visitors (req/s)", r.ServiceVsHelloRPS, 0.7, "service/ours-memory/returning", "service/hello/returning"},
		{"service vs hello ceiling, new visitors (req/s)", r.ServiceNewVsHelloRPS, 0.5, "service/ours-memory/new", "service/hello/new"},
		{"cookie store vs hello ceiling, returning visitors (req/s)", r.CookieStoreVsHelloRPS, 0.5, "service/ours-cookie/returning", "service/hello/returning"},
		{"proxy vs HAProxy, sticky over our services (req/s)", r.ProxyVsHAProxyRPS, 0.95, "proxy/ours-proxy/services/sticky", "proxy/haproxy/services/sticky"},
		{"proxy vs HAProxy, sticky over hello (req/s)", r.ProxyVsHAProxyHelloRPS, 0.9, "proxy/ours-proxy/hello/sticky", "proxy/haproxy/hello/sticky"},
		{"proxy vs nginx, sticky over hello (req/s)", r.ProxyVsNginxRPS, 1, "proxy/ours-proxy/hello/sticky", "proxy/nginx/hello/sticky"},
		{"proxy vs Caddy, sticky over hello (req/s)", r.ProxyVsCaddyRPS, 1, "proxy/ours-proxy/hello/sticky", "proxy/caddy/hello/sticky"},
		{"proxy with a /live viewer vs without, sticky over hello (req/s)", r.ProxyLiveVsNoneRPS, 0.95, "proxy/ours-proxy/hello/sticky-live", "proxy/ours-proxy/hello/sticky"},
	} {
		_, ok1 := r.row(t.num)
		_, ok2 := r.row(t.den)
		if ok1 && ok2 {
			r.Targets = append(r.Targets, at(t.name, t.v, t.want, true, "x"))
		}
	}
	_, ok1 := r.row("proxy/ours-proxy/hello/sticky")
	_, ok2 := r.row("service/hello/returning")
	if ok1 && ok2 {
		p99 := Target{Name: "proxy p99 added vs HAProxy's, sticky over hello", Want: "<= 1.5x"}
		if r.HAProxyP99AddedMS > 0 {
			p99.Value = r.ProxyP99AddedMS / r.HAProxyP99AddedMS
			p99.Met = p99.Value <= 1.5
		} else {
			p99.Met = r.ProxyP99AddedMS <= 0
			p99.Note = "(HAProxy added none: no ratio)"
		}
		p99.Note = strings.TrimSpace(fmt.Sprintf("ours %+.2f ms, HAProxy %+.2f ms %s", r.ProxyP99AddedMS, r.HAProxyP99AddedMS, p99.Note))
		r.Targets = append(r.Targets, p99)
	}
	if ok1 && r.ProxyCPUVsHAProxy > 0 {
		t := at("proxy CPU per request vs HAProxy's, sticky over hello", r.ProxyCPUVsHAProxy, 1.3, false, "x")
		t.Note = fmt.Sprintf("ours %.1f µs, HAProxy %.1f µs", ours.CPUusPerReq, ha.CPUusPerReq)
		r.Targets = append(r.Targets, t)
	}
	if m, ok := r.memory("service"); ok {
		t := at(fmt.Sprintf("service RSS after %s new visitors (MB)", count(m.Requests)), m.RSSMBAfter, 100, false, " MB")
		r.Targets = append(r.Targets, t)
	}
	if m, ok := r.memory("proxy"); ok {
		t := at(fmt.Sprintf("proxy RSS after %s requests, %d sticky clients (MB)", count(m.Requests), m.Clients), m.RSSMBAfter, 64, false, " MB")
		r.Targets = append(r.Targets, t)
	}
	for _, img := range r.Images {
		if strings.HasPrefix(img.Name, "swarm-affinity/") {
			t := at("image "+img.Name+" (MB)", img.SizeMB, 15, false, " MB")
			if !img.Built {
				t.Met, t.Skipped, t.Note = false, true, img.Note
			}
			r.Targets = append(r.Targets, t)
		}
	}
}

// count writes 1000000 as "1M", 200000 as "200k".
func count(n int64) string {
	switch {
	case n >= 1e6 && n%1e6 < 5e4:
		return fmt.Sprintf("%gM", math.Round(float64(n)/1e5)/10)
	case n >= 1e3:
		return fmt.Sprintf("%gk", math.Round(float64(n)/1e3))
	}
	return fmt.Sprint(n)
}

// Table prints the results as the text tables make bench ends with.
func (r *Results) Table(w io.Writer) {
	fmt.Fprintf(w, "swarm-affinity benchmark, %s, `%s` (%.0f s)\n", r.Date.Format("2006-01-02 15:04 MST"), r.Command, r.Seconds)
	fmt.Fprintf(w, "machine: %s, %d cores, %s; 1-min load average before the run: %.2f\n",
		r.Machine.CPUModel, r.Machine.Cores, r.Machine.Kernel, r.Machine.LoadAvgBefore)
	haproxy := strings.Fields(r.Machine.HAProxy + " ? ? ?")[2]      // "HAProxy version 2.6.12-1+deb12u4 2026/10/17 ..."
	nginx := strings.TrimPrefix(r.Machine.Nginx, "nginx version: ") // "nginx version: nginx/1.22.1"
	caddy := strings.Fields(r.Machine.Caddy + " ?")[0]              // "v2.6.2 h1:..."
	fmt.Fprintf(w, "versions: %s, %s, Node %s, HAProxy %s, %s, Caddy %s, %s\n", r.Machine.Build, r.Machine.Go, r.Machine.Node, haproxy, nginx, caddy, r.Machine.Wrk)
	fmt.Fprintf(w, "method: every server pinned to core %s, load generator (%s, 1 thread) to core %s, %d connections, 127.0.0.1;\n",
		r.Method.ServerCPU, r.Method.LoadGenerator, r.Method.LoadCPU, r.Method.Connections)
	fmt.Fprintf(w, "        each row: median of %d runs of %gs (±: half the range, relative); access logs off.\n\n",
		r.Method.Reps, r.Method.DurationSeconds)

	if len(r.Service) > 0 {
		t := grid{{"1. Service alone", "req/s", "±", "p50 ms", "p99 ms", "CPU µs/req", "ctxsw/req", "errors"}}
		for _, m := range r.Service {
			t = append(t, []string{"  " + m.Label, thousands(m.RPS.Median), pct(m.RPS.Spread()),
				f2(m.P50ms.Median), f2(m.P99ms.Median), fmt.Sprintf("%.1f", m.CPUusPerReq),
				fmt.Sprintf("%.2f", m.CtxSwPerReq), fmt.Sprint(m.Errors)})
		}
		t.write(w)
	}
	if len(r.Proxy) > 0 {
		t := grid{{"2. Proxy, 2 backends", "req/s", "±", "p50 ms", "p99 ms", "p99 added", "CPU µs/req", "ctxsw/req", "RSS MB", "errors"}}
		for _, m := range r.Proxy {
			t = append(t, []string{"  " + m.Label, thousands(m.RPS.Median), pct(m.RPS.Spread()), f2(m.P50ms.Median),
				f2(m.P99ms.Median), fmt.Sprintf("%+.2f", m.P99AddedMS), fmt.Sprintf("%.1f", m.CPUusPerReq),
				fmt.Sprintf("%.2f", m.CtxSwPerReq), fmt.Sprintf("%.1f", m.RSSMBAfter), fmt.Sprint(m.Errors)})
		}
		t.write(w)
	}
	if len(r.Memory) > 0 {
		t := grid{{"3. Memory (RSS)", "requests", "seconds", "before MB", "after MB", "MB per 100k"}}
		for _, m := range r.Memory {
			t = append(t, []string{"  " + m.Label, thousands(float64(m.Requests)), fmt.Sprintf("%.0f", m.Seconds),
				fmt.Sprintf("%.1f", m.RSSMBBefore), fmt.Sprintf("%.1f", m.RSSMBAfter), fmt.Sprintf("%+.1f", m.MBPer100k)})
		}
		t.write(w)
	}
	if len(r.Images) > 0 {
		t := grid{{"4. Images", "MB", ""}}
		for _, img := range r.Images {
			size := fmt.Sprintf("%.1f", img.SizeMB)
			if !img.Built {
				size = "-"
			}
			t = append(t, []string{"  " + img.Name, size, img.Note})
		}
		t.write(w)
	}

	fmt.Fprintln(w, "\nTargets (ratios within this run)")
	var targets bytes.Buffer
	tw := tabwriter.NewWriter(&targets, 0, 0, 2, ' ', 0)
	for _, t := range r.Targets {
		met, v := "MET", strconv.FormatFloat(t.Value, 'g', 3, 64)
		switch {
		case t.Skipped:
			met, v = "NOT MEASURED", "-"
		case !t.Met:
			met = "MISSED"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", t.Name, v, t.Want, met, t.Note)
	}
	tw.Flush()
	for line := range strings.Lines(targets.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
	if r.ProxyVsGoProxyHelloRPS > 0 {
		fmt.Fprintf(w, "\nOur proxy vs the bare Go ReverseProxy (the Go ceiling), sticky traffic over hello: %.2fx req/s.\n",
			r.ProxyVsGoProxyHelloRPS)
	}
	if r.ProxyVsHAProxyHTTPSRPS > 0 {
		fmt.Fprintf(w, "\nHTTPS, sticky over hello, the same certificate: ours %.2fx HAProxy's req/s on kept connections",
			r.ProxyVsHAProxyHTTPSRPS)
		if r.ProxyVsHAProxyHandshakeRPS > 0 {
			fmt.Fprintf(w, ", %.2fx with a TLS handshake per request", r.ProxyVsHAProxyHandshakeRPS)
		}
		fmt.Fprintln(w, ".")
	}
	if m, ok := r.memory("node"); ok {
		fmt.Fprintf(w, "\nNode original: RSS %+.1f MB per 100,000 new visitors (measured over %s requests), never freed by its MemoryStore.\n",
			m.MBPer100k, count(m.Requests))
	}
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

// Write saves the results as latest.json and a copy named for the date, next to
// the SVG chart (latest.svg and its dated copy). It returns the paths written.
func (r *Results) Write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	stamp := r.Date.UTC().Format("2006-01-02T1504Z")
	if r.Quick {
		stamp += "-quick"
	}
	var paths []string
	for _, name := range []string{"latest.json", stamp + ".json"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	for _, name := range []string{"latest.svg", stamp + ".svg"} {
		p := filepath.Join(dir, name)
		if err := r.Chart(p); err != nil {
			return paths, fmt.Errorf("chart: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

// grid is a text table: the first column aligned left, the others right, the
// last one left when it holds notes (an empty header).
type grid [][]string

func (g grid) write(w io.Writer) {
	var width []int
	for _, row := range g {
		for i, c := range row {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range g {
		var b strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			switch {
			case i == 0:
				b.WriteString(c + pad)
			case i == len(row)-1 && g[0][i] == "":
				b.WriteString("  " + c)
			default:
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	fmt.Fprintln(w)
}
