// Command bench is `make bench`: it measures our services and proxy side by side
// with the Node original (bench/node), HAProxy (bench/haproxy.cfg), nginx
// (bench/nginx.conf) and Caddy (bench/Caddyfile), with a bare Go hello server as the
// ceiling of a service and the floors of a proxy (bench/goproxy, bench/relay,
// bench/epollrelay, bench/fastproxy), in one run on 127.0.0.1, prints one table and
// writes results/latest.json, a dated copy and an SVG chart.
//
// Every server is pinned to one core and wrk to the other (taskset), so the
// figures are comparable within a run; between machines, compare the ratios.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
)

func main() { cli.Main("bench", run) }

// flags are the harness's command line: Options and what says which run to make.
type flags struct {
	opt      Options
	only     string
	command  string
	duration time.Duration
	reps     int
	from     string
}

func (f *flags) table() *cli.Command {
	return &cli.Command{
		Name: "bench",
		Intro: "Our services and proxy side by side with the Node original, HAProxy, nginx, Caddy and the floors, in one run on 127.0.0.1.\n" +
			"`make bench` installs what it needs and runs this.",
		Settings: []cli.Setting{
			{Flag: "quick", Default: "false", Bool: true, Set: cli.Bool(&f.opt.Quick),
				Usage: "short run: 1 s runs without warm-up; floods: ours 1,000,000, Node original and proxy 100,000"},
			{Flag: "bin", Default: "bin", Usage: "directory of service1, service2 and proxy (make build)", Set: cli.String(&f.opt.RepoBin)},
			{Flag: "dir", Default: "bench", Usage: "the bench directory: proxy.yaml, haproxy.cfg, nginx.conf, Caddyfile, lua/, node/, bin/ (hello, the floors)", Set: cli.String(&f.opt.BenchDir)},
			{Flag: "out", DefaultText: "DIR/results", Usage: "where to write the results", Set: cli.String(&f.opt.OutDir)},
			{Flag: "server-cpu", Default: "0", Usage: "core every server is pinned to (taskset -c)", Set: cli.String(&f.opt.ServerCPU)},
			{Flag: "load-cpu", Default: "1", Usage: "core the load generator is pinned to", Set: cli.String(&f.opt.LoadCPU)},
			{Flag: "c", Default: "50", Usage: "connections", Set: cli.Int(&f.opt.Conns, 1, 10000)},
			{Flag: "only", Default: "1234", Usage: "scenarios to run, e.g. 12 (1 service, 2 proxy, 3 memory, 4 images)", Set: cli.String(&f.only)},
			{Flag: "command", Default: "bench", Usage: "the command shown in the output, e.g. \"make bench QUICK=1\"", Set: cli.String(&f.command)},
			{Flag: "duration", DefaultText: "4s, quick 1s", Usage: "one repetition", Set: cli.Duration(&f.duration, false)},
			{Flag: "reps", DefaultText: "3", Usage: "repetitions of each measurement", Set: cli.Int(&f.reps, 1, 100)},
			{Flag: "from", Usage: "run nothing: read a results JSON, print its table and redraw its chart (FILE.svg)", Set: cli.String(&f.from)},
		},
	}
}

// options fills in the sizes of a full or a quick run. Full: 3 runs of 4 s after a
// 1 s warm-up; a million requests for each flood. Quick cuts durations, not scenarios:
// 3 runs of 1 s, no warm-up (but for the Node original, whose JIT needs one); our
// service still takes its million, the Node original and the proxy 100,000 each (the
// Node original's growth is per 100,000 anyway; the proxy still sees its 10,000
// distinct sticky clients, each 10 times), so that a `make bench QUICK=1` takes a
// few minutes, where a full run takes about 15 minutes.
func (f flags) options() Options {
	opt := f.opt
	opt.Duration, opt.Reps, opt.Warmup = 4*time.Second, 3, time.Second
	opt.ServiceN, opt.NodeN, opt.ProxyN, opt.Clients = 1_000_000, 1_000_000, 1_000_000, 10_000
	opt.FillLimit = 300 * time.Second
	if opt.Quick {
		opt.Duration, opt.Warmup = time.Second, 0
		opt.NodeN, opt.ProxyN = 100_000, 100_000
		opt.FillLimit = 90 * time.Second
	}
	if f.duration > 0 {
		opt.Duration = f.duration
	}
	if f.reps > 0 {
		opt.Reps = f.reps
	}
	if opt.OutDir == "" {
		opt.OutDir = filepath.Join(opt.BenchDir, "results")
	}
	return opt
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var f flags
	if err := f.table().Parse(args, getenv, stdout); err != nil {
		return err
	}
	if f.from != "" {
		return replay(f.from, stdout)
	}
	opt := f.options()
	if err := preflight(opt); err != nil {
		return err
	}
	start := time.Now()
	res := newResults(opt, f.command, start)
	fmt.Fprintf(stderr, "%s: servers on core %s, wrk on core %s, %d connections; load average %.2f\n",
		f.command, opt.ServerCPU, opt.LoadCPU, opt.Conns, res.Machine.LoadAvgBefore)

	h, err := newHarness(opt, stderr)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.scenarios(ctx, f.only, res); err != nil {
		return err
	}
	res.Seconds = time.Since(start).Seconds()
	res.derive()
	fmt.Fprintln(stdout)
	res.Table(stdout)
	paths, err := res.Write(opt.OutDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", strings.Join(paths, ", "))
	return nil
}

// newResults starts the results of a run: where, when and how it measures.
func newResults(opt Options, command string, start time.Time) *Results {
	return &Results{Date: start.UTC(), Command: command, Quick: opt.Quick, Machine: machine(opt),
		Method: Method{Connections: opt.Conns, ServerCPU: opt.ServerCPU, LoadCPU: opt.LoadCPU,
			LoadGenerator: res0(wrkVersion()), DurationSeconds: opt.Duration.Seconds(), Reps: opt.Reps,
			WarmupSeconds: opt.Warmup.Seconds(), ServiceRequests: opt.ServiceN, NodeRequests: opt.NodeN,
			ProxyRequests: opt.ProxyN, ProxyClients: opt.Clients,
			Notes: "Returning visitor: every request carries the one session cookie of a first visit (wrk -H). " +
				"New visitor: no cookie, so every request starts a session. Proxy sticky: every request carries the " +
				"prefixed cookie the proxy set on a first visit (pinned to one backend); round robin: the route without " +
				"a cookie rule, no cookie. Scenario 3 floods with wrk in runs sized from the measured rate until the " +
				"request count is reached (counts are wrk's own). Proxy p99 added: proxy p99 minus the direct p99 of the " +
				"same backend and traffic. MB = 10^6 bytes."}}
}

// scenarios runs the scenarios only names (e.g. "12") into res, in order; the floods
// of scenario 3 are sized from the rates scenarios 1 and 2 measured.
func (h *Harness) scenarios(ctx context.Context, only string, res *Results) error {
	var err error
	if strings.Contains(only, "1") {
		if res.Service, err = h.serviceScenario(ctx); err != nil {
			return err
		}
	}
	if strings.Contains(only, "2") {
		if res.Proxy, err = h.proxyScenario(ctx); err != nil {
			return err
		}
	}
	if strings.Contains(only, "3") {
		rates := map[string]float64{"service/ours-memory/new": 20000, "service/node/new": 3000, "proxy/ours-proxy/hello/sticky": 15000}
		for _, m := range append(append([]Measurement(nil), res.Service...), res.Proxy...) {
			if m.RPS.Median > 0 {
				rates[m.Key] = m.RPS.Median
			}
		}
		if res.Memory, err = h.memoryScenario(ctx, rates); err != nil {
			return err
		}
	}
	if strings.Contains(only, "4") {
		res.Images = h.imageScenario(ctx)
	}
	return nil
}

func res0(s string, _ error) string { return s }

// replay prints the table of a results file and redraws its chart beside it.
func replay(path string, stdout io.Writer) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	res.derive()
	res.Table(stdout)
	svg := strings.TrimSuffix(path, filepath.Ext(path)) + ".svg"
	if err := res.Chart(svg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", svg)
	return nil
}

// preflight checks everything the run needs is there, and says how to get it.
func preflight(opt Options) error {
	var errs []error
	for _, name := range []string{"service1", "service2", "proxy"} {
		if _, err := os.Stat(filepath.Join(opt.RepoBin, name)); err != nil {
			errs = append(errs, fmt.Errorf("%s not found in %s: run make build", name, opt.RepoBin))
		}
	}
	for _, name := range []string{"hello", "goproxy", "relay", "epollrelay", "fastproxy"} {
		if _, err := os.Stat(filepath.Join(opt.BenchDir, "bin", name)); err != nil {
			errs = append(errs, fmt.Errorf("bench/bin/%s not found: run make bench (it builds it)", name))
		}
	}
	if _, err := os.Stat(filepath.Join(opt.BenchDir, "node", "node_modules", "express-session")); err != nil {
		errs = append(errs, fmt.Errorf("the Node original's modules are missing: cd bench/node && npm ci"))
	}
	for _, tool := range []string{"taskset", "wrk", "haproxy", "nginx", "caddy", "node"} {
		if _, err := exec.LookPath(tool); err != nil {
			errs = append(errs, fmt.Errorf("%s not on PATH: make bench installs wrk, haproxy, nginx and caddy with apt-get", tool))
		}
	}
	if n := runtime.NumCPU(); n < 2 {
		errs = append(errs, fmt.Errorf("%d CPU available: the benchmark pins the servers and the load generator to two different cores", n))
	}
	return errors.Join(errs...)
}

func machine(opt Options) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), CPUModel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvgBefore, _ = strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	m.Node = firstLine("node", "--version")
	m.HAProxy = firstLine("haproxy", "-v")
	m.Nginx = strings.TrimSpace(combinedFirstLine("nginx", "-v")) // nginx prints its version on stderr
	m.Caddy = firstLine("caddy", "version")
	m.Wrk, _ = wrkVersion()
	m.Build = firstLine(filepath.Join(opt.RepoBin, "proxy"), "-version")
	return m
}

func wrkVersion() (string, error) {
	out, _ := exec.Command("wrk", "-v").CombinedOutput() // wrk -v exits 1
	line, _, _ := strings.Cut(string(out), "\n")
	if f := strings.Fields(line); len(f) >= 2 {
		return "wrk " + f[1], nil
	}
	return "wrk", nil
}

// combinedFirstLine is firstLine of stdout and stderr together.
func combinedFirstLine(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, name, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

func firstLine(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
