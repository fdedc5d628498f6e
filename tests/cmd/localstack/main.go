// Command localstack is `make run`: the whole tutorial on 127.0.0.1 without Docker.
// It starts the replicas of service1 and service2 and the proxy in front of them, prints
// where to look, and stops every process it started on Ctrl-C or SIGTERM.
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
	"text/tabwriter"
	"time"

	"github.com/swarm-affinity/swarm-affinity/tests/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/tests/localstack"
)

func main() { cli.Main("make run", run) }

// config is every setting of the launcher, parsed once.
type config struct {
	bin        string
	runDir     string
	replicas   int
	store      string
	port       int
	adminPort  int
	cookiePath string
	quiet      bool
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("localstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	env := &cli.Env{Getenv: getenv}
	fs.StringVar(&c.bin, "bin", env.String("BIN", "bin"), "folder with the built binaries (env BIN)")
	fs.StringVar(&c.runDir, "run-dir", env.String("RUN_DIR", ".run"), "where to write the proxy config and stack.txt, the list of processes (env RUN_DIR)")
	fs.IntVar(&c.replicas, "replicas", env.Int("REPLICAS", 2), "replicas of each service (env REPLICAS)")
	fs.StringVar(&c.store, "store", env.String("STORE", "memory"), "session store: memory, or cookie for stateless mode with a throw-away secret (env STORE)")
	fs.IntVar(&c.port, "port", env.Int("PORT", 8080), "the proxy's port on 127.0.0.1 (env PORT)")
	fs.IntVar(&c.adminPort, "admin-port", env.Int("ADMIN_PORT", 1936), "the proxy's admin (stats) port (env ADMIN_PORT)")
	fs.StringVar(&c.cookiePath, "cookie-path", env.String("COOKIE_PATH", ""), "COOKIE_PATH for both services; / reproduces the 2018 trap (env COOKIE_PATH)")
	fs.BoolVar(&c.quiet, "quiet", getenv("QUIET") != "", "do not print the processes' log lines (env QUIET)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, cli.UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		env.Errs = append(env.Errs, fmt.Errorf("unexpected argument %q; settings are flags or variables, e.g. make run REPLICAS=3", fs.Arg(0)))
	}
	if c.replicas < 1 || c.replicas > 20 {
		env.Errs = append(env.Errs, fmt.Errorf("REPLICAS=%d: choose 1 to 20", c.replicas))
	}
	if c.store != "memory" && c.store != "cookie" {
		env.Errs = append(env.Errs, fmt.Errorf("STORE=%q: choose memory or cookie", c.store))
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"PORT", c.port}, {"ADMIN_PORT", c.adminPort}} {
		if p.v < 1 || p.v > 65535 {
			env.Errs = append(env.Errs, fmt.Errorf("%s=%d: choose a port from 1 to 65535", p.name, p.v))
		}
	}
	if c.port == c.adminPort {
		env.Errs = append(env.Errs, fmt.Errorf("PORT and ADMIN_PORT are both %d: choose two ports", c.port))
	}
	if len(env.Errs) > 0 {
		return c, cli.UsageError{Err: errors.Join(env.Errs...)}
	}
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	out := stdout
	if c.quiet {
		out = io.Discard
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stack, err := localstack.Start(startCtx, localstack.Config{
		BinDir:     c.bin,
		Dir:        c.runDir,
		Replicas:   c.replicas,
		Store:      c.store,
		CookiePath: c.cookiePath,
		ProxyPort:  c.port,
		AdminPort:  c.adminPort,
		Out:        out,
	})
	if err != nil {
		return err
	}
	defer stack.Close()
	statePath := filepath.Join(c.runDir, "stack.txt")
	if err := writeState(statePath, stack); err != nil {
		return err
	}
	defer os.Remove(statePath)
	printBanner(stdout, c, stack)
	return watch(ctx, stdout, stack, statePath)
}

// watch waits for Ctrl-C, SIGTERM or the proxy's end. A replica that ends is reported and
// left stopped, as the tutorial wants: the proxy sends its clients elsewhere.
func watch(ctx context.Context, stdout io.Writer, stack *localstack.Stack, statePath string) error {
	exited := make(chan *localstack.Replica)
	for _, svc := range stack.Services() {
		for _, r := range stack.Replicas(svc.Name) {
			go func() {
				select {
				case <-r.Exited():
					exited <- r
				case <-ctx.Done():
				}
			}()
		}
	}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout, "\nstopping every process of the stack...")
			return nil
		case <-stack.ProxyExited():
			return fmt.Errorf("the proxy stopped (%v); stopping the replicas too", stack.ProxyError())
		case r := <-exited:
			fmt.Fprintf(stdout, "\n%s stopped (%v). Its memory sessions are gone; the proxy sends its clients to the other replicas.\n",
				r.Name, r.ExitError())
			_ = writeState(statePath, stack)
		}
	}
}

// writeState lists the processes for scripts/demo.sh, one per line:
// "url URL", "admin URL", "proxy PID", "replica NAME PID ADDR" (running replicas only).
func writeState(path string, stack *localstack.Stack) error {
	var b strings.Builder
	fmt.Fprintf(&b, "url %s\nadmin %s\nproxy %d\n", stack.URL(), stack.AdminURL(), stack.ProxyPid())
	for _, svc := range stack.Services() {
		for _, r := range stack.Replicas(svc.Name) {
			if r.Running() {
				fmt.Fprintf(&b, "replica %s %d %s\n", r.Name, r.Pid(), r.Addr)
			}
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func printBanner(w io.Writer, c config, stack *localstack.Stack) {
	mode := "memory sessions, as in the tutorial"
	s1 := "sticky: one replica counts your visits"
	s2 := "round robin: each replica has its own sessions"
	if c.store == "cookie" {
		mode = "stateless cookie sessions with a throw-away secret"
		s1 = "round robin: any replica continues your count"
		s2 = s1
	}
	url := strings.Replace(stack.URL(), "127.0.0.1", "localhost", 1)
	admin := strings.Replace(stack.AdminURL(), "127.0.0.1", "localhost", 1)
	demo := "scripts/demo.sh"
	if c.port != 8080 {
		demo += " " + url
	}
	fmt.Fprintf(w, "\nswarm-affinity is running: %d replicas of each service behind the proxy (%s).\n\n", c.replicas, mode)
	tw := tabwriter.NewWriter(w, 0, 0, 4, ' ', 0)
	fmt.Fprintf(tw, "  %s/service1\t%s\n", url, s1)
	fmt.Fprintf(tw, "  %s/service2\t%s\n", url, s2)
	fmt.Fprintf(tw, "  %s/stats\tthe proxy's view: servers, ids, sticky hits\n", admin)
	tw.Flush()
	fmt.Fprintf(w, "\n  try:   curl -c jar -b jar %s/service1\n  tour:  %s\n\nCtrl-C stops every process it started.\n\n",
		strings.TrimPrefix(url, "http://"), demo)
}
