// Command lab is `make lab`: the sticky-vs-stateless experiment. It starts a local stack
// per arm (or measures a deployed one with URL=...), sends the same load of simulated
// visitors to each, makes the events happen, prints the results table and writes the
// report folder lab-results/<time>/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/swarm-affinity/swarm-affinity/tests/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/tests/lab"
)

func main() { cli.Main("make lab", run) }

// config is every setting of the command, parsed once.
type config struct {
	lab.Settings
	bin    string
	out    string
	events string
	arms   string
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	env := &cli.Env{Getenv: getenv}
	d := lab.Settings{}.WithDefaults()
	fs.IntVar(&c.Clients, "clients", env.Int("CLIENTS", d.Clients), "simulated visitors per arm (env CLIENTS)")
	fs.IntVar(&c.Requests, "requests", env.Int("REQUESTS", d.Requests), "requests per visitor (env REQUESTS)")
	fs.IntVar(&c.Parallel, "parallel", env.Int("PARALLEL", d.Parallel), "visitors of an arm active at once (env PARALLEL)")
	fs.IntVar(&c.ThinkMS, "think", env.Int("THINK", d.ThinkMS), "average pause in ms between a visitor's requests; -1: none (env THINK)")
	fs.IntVar(&c.Replicas, "replicas", env.Int("REPLICAS", d.Replicas), "replicas each arm starts with, local stacks only (env REPLICAS)")
	fs.StringVar(&c.events, "events", getenv("EVENTS"), "events during the run, in order: kill, scale, restart, or none; "+
		"default kill,scale on local stacks, none against URL (env EVENTS)")
	fs.StringVar(&c.SessionTTL, "session-ttl", getenv("SESSION_TTL"), "every replica's SESSION_TTL, e.g. 2s; empty: the services' default (env SESSION_TTL)")
	fs.StringVar(&c.CookiePath, "cookie-path", getenv("COOKIE_PATH"), "every replica's COOKIE_PATH; empty: each service its own path; / is the 2018 trap (env COOKIE_PATH)")
	fs.StringVar(&c.Balance, "balance", getenv("BALANCE"), "the proxy's balance: roundrobin or leastconn (env BALANCE)")
	fs.StringVar(&c.arms, "arms", env.String("ARMS", strings.Join(lab.ArmNames(), ",")), "arms to run (env ARMS)")
	fs.StringVar(&c.URL, "url", getenv("URL"), "a deployed stack's proxy, e.g. http://127.0.0.1; empty: local stacks (env URL)")
	fs.StringVar(&c.bin, "bin", env.String("BIN", "bin"), "folder with the built binaries (env BIN)")
	fs.StringVar(&c.out, "out", env.String("LAB_RESULTS", "lab-results"), "where the report folders go (env LAB_RESULTS)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, cli.UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		env.Errs = append(env.Errs, fmt.Errorf("unexpected argument %q; settings are variables, e.g. make lab CLIENTS=30 EVENTS=kill", fs.Arg(0)))
	}
	switch {
	case c.events == "" && c.URL == "":
		c.Events = []string{lab.Kill, lab.Scale}
	case c.events == "" || c.events == "none":
		c.Events = []string{}
	default:
		c.Events = splitList(c.events)
	}
	c.Arms = splitList(c.arms)
	if err := c.Check(); err != nil {
		env.Errs = append(env.Errs, err)
	}
	if len(env.Errs) > 0 {
		return c, cli.UsageError{Err: errors.Join(env.Errs...)}
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, strings.ToLower(f))
	}
	return out
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	began := time.Now()
	dir := filepath.Join(c.out, began.UTC().Format("2006-01-02_15-04-05"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "stack.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()

	where := "local stacks, one per arm, started from " + c.bin + "/"
	if c.URL != "" {
		where = "the stack at " + c.URL
	}
	events := strings.Join(c.Events, ", ")
	if events == "" {
		events = "none"
	}
	extra := ""
	if c.SessionTTL != "" {
		extra += "; SESSION_TTL=" + c.SessionTTL
	}
	if c.Balance != "" {
		extra += "; balance " + c.Balance
	}
	if c.CookiePath != "" {
		extra += "; COOKIE_PATH=" + c.CookiePath
	}
	fmt.Fprintf(stdout, "Lab: %d visitors per arm (%d at a time), %d requests each (and /service2 every 5)%s; events: %s; on %s.\n",
		c.Clients, c.Parallel, c.Requests, extra, events, where)

	p := newProgress(stderr)
	res, err := lab.Run(ctx, lab.Config{
		Settings: c.Settings,
		BinDir:   c.bin,
		StackLog: logFile,
		OnStart:  func(arms []string) { p.start(c.Clients * c.Requests * len(arms)) },
		OnAnswer: func(string) { p.add() },
		OnEvent:  p.event,
	})
	p.finish()
	if err != nil {
		return fmt.Errorf("%w\n(the processes' output is in %s)", err, logFile.Name())
	}
	if err := lab.WriteReport(dir, res); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	lab.PrintTable(stdout, res)
	fmt.Fprintf(stdout, "\nThe load took %.1f s; the whole lab %.1f s.\n", res.DurationS, time.Since(began).Seconds())
	fmt.Fprintf(stdout, "Report: %s (open it in a browser; charts, results.csv and every answer beside it)\n",
		filepath.Join(dir, lab.ReportHTML))
	return nil
}

// progress is the bar on a terminal, and a line per event elsewhere (a log, CI).
type progress struct {
	mu  sync.Mutex
	w   io.Writer
	bar *progressbar.ProgressBar
	tty bool
	n   int // answers so far
	max int // the bar's length
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progress) start(total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		fmt.Fprintf(p.w, "sending %d requests...\n", total)
		return
	}
	p.max = total
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription("requests"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
	)
}

func (p *progress) add() {
	if p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.n > p.max { // a slow event keeps visitors coming: grow the bar rather than end it
		p.max += 100
		p.bar.ChangeMax(p.max)
	}
	p.bar.Add(1)
}

func (p *progress) event(arm string, ev lab.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	what := fmt.Sprintf("%s: %s %s", arm, ev.Kind, ev.Replica)
	switch {
	case ev.EndMS == 0:
		what += "..."
	case ev.Error != "":
		what += " failed: " + ev.Error
	default:
		what += " done"
	}
	if p.bar != nil {
		p.bar.Describe(what)
		return
	}
	fmt.Fprintln(p.w, what)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}
