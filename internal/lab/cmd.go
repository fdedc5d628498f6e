package lab

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
)

// command is every setting of `make lab`, parsed once.
type command struct {
	Settings
	bin    string
	out    string
	events string
	arms   string
}

func (c *command) table() *cli.Command {
	d := Settings{}.WithDefaults()
	c.Settings = d
	n := func(dst *int) func(string) error { return cli.Int(dst, math.MinInt, math.MaxInt) } // Check says the range
	return &cli.Command{
		Name:     "make lab",
		Intro:    "The sticky-vs-stateless experiment (LAB.md): the same simulated visitors against each arm, events mid-run.",
		ArgsHint: "settings are variables, e.g. make lab CLIENTS=30 EVENTS=kill",
		Settings: []cli.Setting{
			{Flag: "clients", Env: "CLIENTS", Default: strconv.Itoa(d.Clients), Usage: "simulated visitors per arm", Set: n(&c.Clients)},
			{Flag: "requests", Env: "REQUESTS", Default: strconv.Itoa(d.Requests), Usage: "requests per visitor", Set: n(&c.Requests)},
			{Flag: "parallel", Env: "PARALLEL", Default: strconv.Itoa(d.Parallel), Usage: "visitors of an arm active at once", Set: n(&c.Parallel)},
			{Flag: "think", Env: "THINK", Default: strconv.Itoa(d.ThinkMS), Usage: "average pause in ms between a visitor's requests; -1: none", Set: n(&c.ThinkMS)},
			{Flag: "replicas", Env: "REPLICAS", Default: strconv.Itoa(d.Replicas), Usage: "replicas each arm starts with, local stacks only", Set: n(&c.Replicas)},
			{Flag: "events", Env: "EVENTS", DefaultText: "kill,scale (none against URL)",
				Usage: "events during the run, in order: kill, scale, restart, or none", Set: cli.String(&c.events)},
			{Flag: "session-ttl", Env: "SESSION_TTL", DefaultText: "the services'", Usage: "every replica's SESSION_TTL, e.g. 2s", Set: cli.String(&c.SessionTTL)},
			{Flag: "cookie-path", Env: "COOKIE_PATH", DefaultText: "each service's own", Usage: "every replica's COOKIE_PATH; / is the 2018 trap", Set: cli.String(&c.CookiePath)},
			{Flag: "balance", Env: "BALANCE", DefaultText: "roundrobin", Usage: "the proxy's balance: roundrobin or leastconn", Set: cli.String(&c.Balance)},
			{Flag: "arms", Env: "ARMS", Default: strings.Join(defaultArms(), ","), Usage: "arms to run, from " + strings.Join(ArmNames(), ", "), Set: cli.String(&c.arms)},
			{Flag: "live", Env: "LIVE", Default: "false", Bool: true,
				Usage: "keep the stacks up until Ctrl-C for the proxies' live views; type kill, scale or restart to make an event happen",
				Set:   cli.Bool(&c.Live)},
			{Flag: "url", Env: "URL", DefaultText: "local stacks", Usage: "a deployed stack's proxy, e.g. http://127.0.0.1", Set: cli.String(&c.URL)},
			{Flag: "bin", Env: "BIN", Default: "bin", Usage: "folder with the built binaries", Set: cli.String(&c.bin)},
			{Flag: "out", Env: "LAB_RESULTS", Default: "lab-results", Usage: "where the report folders go", Set: cli.String(&c.out)},
		},
	}
}

func parseCommand(args []string, getenv func(string) string, help io.Writer) (command, error) {
	var c command
	err := c.table().Parse(args, getenv, help)
	if errors.Is(err, flag.ErrHelp) {
		return c, err
	}
	switch {
	case c.events == "" && c.URL == "" && !c.Live:
		c.Events = []string{Kill, Scale}
	case c.events == "" || c.events == "none":
		c.Events = []string{}
	default:
		c.Events = splitList(c.events)
	}
	c.Arms = splitList(c.arms)
	return c, cli.Usage(err, c.Check()) // every problem at once
}

// printLive tells the teacher where to look and what to type.
func printLive(w io.Writer, arms []LiveArm) {
	fmt.Fprintln(w, "\nLive: open each arm's view (a browser window per arm), then make events happen here.")
	for _, a := range arms {
		fmt.Fprintf(w, "  %-9s %s\n            site %s\n", a.Name, a.Live, a.Site)
	}
	fmt.Fprintln(w, "Type kill, scale or restart and Enter: it happens in every arm at once. quit or Ctrl-C ends the lab and writes its report.")
}

// commands reads the events a teacher types, one per line, until in ends; quit
// calls stop. A line that is no event is answered with what is.
func commands(in io.Reader, out io.Writer, stop func()) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			switch cmd := strings.ToLower(strings.TrimSpace(sc.Text())); cmd {
			case "":
			case Kill, Scale, Restart:
				ch <- cmd
			case "quit", "q", "exit":
				stop()
				return
			default:
				fmt.Fprintf(out, "%q is not an event: type kill, scale, restart or quit\n", cmd)
			}
		}
	}()
	return ch
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, strings.ToLower(f))
	}
	return out
}

// Main is `make lab` (a cli.RunFunc): it runs the lab as the settings say, prints the
// results table and writes the report folder OUT/<time>/.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseCommand(args, getenv, stdout)
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
	cfg := Config{
		Settings: c.Settings,
		BinDir:   c.bin,
		StackLog: logFile,
		OnStart:  func(arms []string) { p.start(c.Clients * c.Requests * len(arms)) },
		OnAnswer: func(string) { p.add() },
		OnEvent:  p.event,
	}
	if c.Live {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
		cfg.OnStart, cfg.OnAnswer = nil, nil
		cfg.OnLive = func(arms []LiveArm) { printLive(stdout, arms) }
		cfg.Commands = commands(os.Stdin, stdout, stop)
	}
	res, err := Run(ctx, cfg)
	p.finish()
	if err != nil {
		return fmt.Errorf("%w\n(the processes' output is in %s)", err, logFile.Name())
	}
	if err := WriteReport(dir, res); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	PrintTable(stdout, res)
	fmt.Fprintf(stdout, "\nThe load took %.1f s; the whole lab %.1f s.\n", res.DurationS, time.Since(began).Seconds())
	fmt.Fprintf(stdout, "Report: %s (open it in a browser; charts, results.csv and every answer beside it)\n",
		filepath.Join(dir, ReportHTML))
	return nil
}
