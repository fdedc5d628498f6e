package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func row(key, server string, rps, p99 float64, direct string) Measurement {
	return Measurement{Key: key, Label: key, Server: server, Direct: direct,
		RPS: Stat{Median: rps, Min: rps * 0.9, Max: rps * 1.1}, P50ms: Stat{Median: 1}, P99ms: Stat{Median: p99}}
}

func withCPU(m Measurement, us float64) Measurement {
	m.CPUusPerReq = us
	return m
}

func sample() *Results {
	return &Results{
		Service: []Measurement{
			row("service/ours-memory/returning", "ours-memory", 30000, 3, ""),
			row("service/ours-memory/new", "ours-memory", 20000, 4, ""),
			row("service/node/returning", "node", 5000, 20, ""),
			row("service/node/new", "node", 4000, 25, ""),
			row("service/ours-cookie/returning", "ours-cookie", 26000, 3, ""),
			row("service/hello/returning", "hello", 50000, 2, ""),
			row("service/hello/new", "hello", 50000, 2, ""),
		},
		Proxy: []Measurement{
			withCPU(row("proxy/ours-proxy/hello/sticky", "ours-proxy", 23000, 5, "service/hello/returning"), 13),
			withCPU(row("proxy/haproxy/hello/sticky", "haproxy", 25000, 4, "service/hello/returning"), 10),
			row("proxy/nginx/hello/sticky", "nginx", 20000, 4, "service/hello/returning"),
			row("proxy/caddy/hello/sticky", "caddy", 25000, 4, "service/hello/returning"),
			row("proxy/ours-proxy/hello/sticky-live", "ours-proxy", 20700, 5, "service/hello/returning"),
			row("proxy/ours-proxy/hello/sticky-https", "ours-proxy", 12000, 6, "service/hello/returning"),
			row("proxy/haproxy/hello/sticky-https", "haproxy", 16000, 5, "service/hello/returning"),
			row("proxy/ours-proxy/hello/handshake-https", "ours-proxy", 1500, 40, "service/hello/returning"),
			row("proxy/haproxy/hello/handshake-https", "haproxy", 2000, 30, "service/hello/returning"),
		},
		Memory: []Memory{
			{Key: "service", Label: "ours", Requests: 1_000_123, RSSMBBefore: 10, RSSMBAfter: 60},
			{Key: "node", Label: "node", Requests: 200_000, RSSMBBefore: 60, RSSMBAfter: 284, MBPer100k: 112},
		},
		Images: []Image{{Name: "swarm-affinity/proxy:latest", Note: "not built (make images)"}},
	}
}

func TestDeriveComputesTheRatiosAndTargetsFromTheRows(t *testing.T) {
	t.Parallel()
	r := sample()
	r.derive()
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"service_vs_node_rps", r.ServiceVsNodeRPS, 6},
		{"service_vs_node_new_rps", r.ServiceVsNodeNewRPS, 5},
		{"service_vs_hello_rps", r.ServiceVsHelloRPS, 0.6},
		{"service_new_vs_hello_rps", r.ServiceNewVsHelloRPS, 0.4},
		{"cookie_store_vs_hello_rps", r.CookieStoreVsHelloRPS, 0.52},
		{"proxy_vs_haproxy_hello_rps", r.ProxyVsHAProxyHelloRPS, 0.92},
		{"proxy_vs_nginx_rps", r.ProxyVsNginxRPS, 1.15},
		{"proxy_vs_caddy_rps", r.ProxyVsCaddyRPS, 0.92},
		{"proxy_cpu_vs_haproxy", r.ProxyCPUVsHAProxy, 1.3},
		{"proxy_live_vs_none_rps", r.ProxyLiveVsNoneRPS, 0.9},
		{"proxy_vs_haproxy_https_rps", r.ProxyVsHAProxyHTTPSRPS, 0.75},
		{"proxy_vs_haproxy_handshake_rps", r.ProxyVsHAProxyHandshakeRPS, 0.75},
		{"proxy_p99_added_ms", r.ProxyP99AddedMS, 3},
		{"haproxy_p99_added_ms", r.HAProxyP99AddedMS, 2},
		{"service_rss_mb_after_1m", r.ServiceRSSMBAfter1M, 60},
		{"node_rss_mb_per_100k", r.NodeRSSMBPer100k, 112},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %g, want %g", c.name, c.got, c.want)
		}
	}
	met := map[string]bool{}
	for _, tg := range r.Targets {
		met[tg.Name] = tg.Met
	}
	want := map[string]bool{
		"service vs Node original, returning visitors (req/s)":            true,
		"service vs Node original, new visitors (req/s)":                  true,
		"service vs hello ceiling, returning visitors (req/s)":            false, // 0.6 < 0.7
		"service vs hello ceiling, new visitors (req/s)":                  false, // 0.4 < 0.5
		"cookie store vs hello ceiling, returning visitors (req/s)":       true,  // 0.52 >= 0.5
		"proxy vs HAProxy, sticky over hello (req/s)":                     true,
		"proxy vs nginx, sticky over hello (req/s)":                       true,
		"proxy vs Caddy, sticky over hello (req/s)":                       false, // 0.92 < 1
		"proxy CPU per request vs HAProxy's, sticky over hello":           true,  // 13 µs <= 1.3 x 10 µs
		"proxy p99 added vs HAProxy's, sticky over hello":                 true,  // 3 ms <= 1.5 x 2 ms
		"proxy with a /live viewer vs without, sticky over hello (req/s)": false, // 0.9 < 0.95
		"service RSS after 1M new visitors (MB)":                          true,
		"image swarm-affinity/proxy:latest (MB)":                          false, // not built
	}
	for name, w := range want {
		if got, ok := met[name]; !ok || got != w {
			t.Errorf("target %q: got met=%v (present %v), want met=%v", name, got, ok, w)
		}
	}
	if _, ok := met["proxy vs HAProxy, sticky over our services (req/s)"]; ok {
		t.Error("a target without its rows is listed; want it left out")
	}
}

func TestResultsSurviveTheirJSONAndPrintTheirTable(t *testing.T) {
	t.Parallel()
	r := sample()
	r.derive()
	dir := t.TempDir()
	paths, err := r.Write(dir)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(paths) != 4 {
		t.Errorf("got %d files written, want 4 (latest and dated, JSON and SVG): %v", len(paths), paths)
	}
	b, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("reading back latest.json: %v", err)
	}
	var keys map[string]any
	json.Unmarshal(b, &keys)
	for _, k := range []string{"service_vs_node_rps", "service_vs_node_new_rps", "service_vs_hello_rps",
		"proxy_vs_haproxy_rps", "proxy_vs_haproxy_hello_rps", "proxy_p99_added_ms", "haproxy_p99_added_ms",
		"service_rss_mb_after_1m", "node_rss_mb_per_100k", "proxy_rss_mb", "machine"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("latest.json has no top-level key %q", k)
		}
	}
	if back.ServiceVsNodeRPS != r.ServiceVsNodeRPS || len(back.Proxy) != len(r.Proxy) {
		t.Errorf("got %+v back, want what was written", back)
	}
	var out bytes.Buffer
	back.Table(&out)
	for _, want := range []string{"1. Service alone", "30,000", "2. Proxy", "3. Memory", "1,000,123", "4. Images", "NOT MEASURED", "MET"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table has no %q:\n%s", want, out.String())
		}
	}
	svg, err := os.ReadFile(filepath.Join(dir, "latest.svg"))
	if err != nil || !bytes.Contains(svg, []byte("<svg")) {
		t.Errorf("latest.svg: got %v, %.40q; want an SVG", err, svg)
	}
}

func TestStatOfTakesTheMedianAndTheRange(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   []float64
		want Stat
	}{
		{[]float64{3, 1, 2}, Stat{Median: 2, Min: 1, Max: 3}},
		{[]float64{4, 1, 2, 3}, Stat{Median: 2.5, Min: 1, Max: 4}},
		{nil, Stat{}},
	} {
		if got := statOf(c.in); got != c.want {
			t.Errorf("statOf(%v): got %+v, want %+v", c.in, got, c.want)
		}
	}
	if got := (Stat{Median: 100, Min: 97, Max: 103}).Spread(); got != 0.03 {
		t.Errorf("Spread: got %g, want 0.03", got)
	}
}
