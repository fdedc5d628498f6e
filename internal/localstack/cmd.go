package localstack

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
)

// command is every setting of the launcher, parsed once.
type command struct {
	bin        string
	runDir     string
	replicas   int
	store      string
	port       int
	adminPort  int
	cookiePath string
	quiet      bool
	tls        bool
	tlsPort    int
}

func (c *command) table() *cli.Command {
	return &cli.Command{
		Name:     "make run",
		Intro:    "The whole tutorial on 127.0.0.1 without Docker: replicas of service1 and service2 behind the proxy.",
		ArgsHint: "settings are flags or variables, e.g. make run REPLICAS=3",
		Settings: []cli.Setting{
			{Flag: "bin", Env: "BIN", Default: "bin", Usage: "folder with the built binaries", Set: cli.String(&c.bin)},
			{Flag: "run-dir", Env: "RUN_DIR", Default: ".run", Usage: "where to write the proxy config and stack.txt, the list of processes",
				Set: cli.String(&c.runDir)},
			{Flag: "replicas", Env: "REPLICAS", Default: "2", Usage: "replicas of each service", Set: cli.Int(&c.replicas, 1, 20)},
			{Flag: "store", Env: "STORE", Default: "memory", Usage: "session store: memory, or cookie for stateless mode with a throw-away secret",
				Set: cli.OneOf(&c.store, "memory", "cookie")},
			{Flag: "port", Env: "PORT", Default: "8080", Usage: "the proxy's port on 127.0.0.1", Set: cli.Int(&c.port, 1, 65535)},
			{Flag: "admin-port", Env: "ADMIN_PORT", Default: "1936", Usage: "the proxy's admin (stats) port", Set: cli.Int(&c.adminPort, 1, 65535)},
			{Flag: "cookie-path", Env: "COOKIE_PATH", DefaultText: "each service's own", Usage: "COOKIE_PATH for both services; / reproduces the 2018 trap",
				Set: cli.String(&c.cookiePath)},
			{Flag: "tls", Env: "TLS", Default: "false", Bool: true, Usage: "also HTTPS (HTTP/2) on TLS_PORT, with a self-signed certificate for localhost kept in RUN_DIR/tls.pem",
				Set: cli.Bool(&c.tls)},
			{Flag: "tls-port", Env: "TLS_PORT", Default: "8443", Usage: "the proxy's HTTPS port on 127.0.0.1 (with TLS)", Set: cli.Int(&c.tlsPort, 1, 65535)},
			{Flag: "quiet", Env: "QUIET", Default: "false", Bool: true, Usage: "do not print the processes' log lines",
				Set: cli.Bool(&c.quiet)},
		},
	}
}

func parseCommand(args []string, getenv func(string) string, help io.Writer) (command, error) {
	var c command
	err := c.table().Parse(args, getenv, help)
	if err == nil && c.port == c.adminPort {
		err = cli.Usage(fmt.Errorf("PORT and ADMIN_PORT are both %d: choose two ports", c.port))
	}
	if err == nil && c.tls && (c.tlsPort == c.port || c.tlsPort == c.adminPort) {
		err = cli.Usage(fmt.Errorf("TLS_PORT %d is also PORT or ADMIN_PORT: choose another port", c.tlsPort))
	}
	return c, err
}

// Main is `make run` (a cli.RunFunc): it starts the stack, writes its process list to
// RUN_DIR/stack.txt for scripts/demo.sh, prints where to look, and stops every process it
// started when ctx ends (Ctrl-C, SIGTERM) or the proxy exits.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseCommand(args, getenv, stdout)
	if err != nil {
		return err
	}
	out := stdout
	if c.quiet {
		out = io.Discard
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stack, err := Start(startCtx, Config{
		BinDir:     c.bin,
		Dir:        c.runDir,
		Replicas:   c.replicas,
		Store:      c.store,
		CookiePath: c.cookiePath,
		ProxyPort:  c.port,
		AdminPort:  c.adminPort,
		TLS:        c.tls,
		TLSPort:    c.tlsPort,
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
	live, err := stack.LiveURL(startCtx)
	if err != nil {
		return fmt.Errorf("asking the proxy for its servers: %w", err)
	}
	printBanner(stdout, c, stack, live)
	return watch(ctx, stdout, stack, statePath)
}

// watch waits for Ctrl-C, SIGTERM or the proxy's end. A replica that ends is reported and
// left stopped, as the tutorial wants: the proxy sends its clients elsewhere.
func watch(ctx context.Context, stdout io.Writer, stack *Stack, statePath string) error {
	exited := make(chan *Replica)
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
// "url URL", "admin URL", with TLS "tls URL" and "cert FILE", "proxy PID",
// "replica NAME PID ADDR" (running replicas only).
func writeState(path string, stack *Stack) error {
	var b strings.Builder
	fmt.Fprintf(&b, "url %s\nadmin %s\n", stack.URL(), stack.AdminURL())
	if stack.TLSURL() != "" {
		fmt.Fprintf(&b, "tls %s\ncert %s\n", stack.TLSURL(), stack.CertFile())
	}
	fmt.Fprintf(&b, "proxy %d\n", stack.ProxyPid())
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

func printBanner(w io.Writer, c command, stack *Stack, live string) {
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
	if tls := stack.TLSURL(); tls != "" {
		tls = strings.Replace(tls, "127.0.0.1", "localhost", 1)
		fmt.Fprintf(tw, "  %s/service1\tthe same over HTTPS (HTTP/2), self-signed certificate %s\n", tls, stack.CertFile())
	}
	fmt.Fprintf(tw, "  %s/stats\tthe proxy's view: servers, ids, sticky hits\n", admin)
	tw.Flush()
	fmt.Fprintf(w, "\n  live:  %s\n         who is served by whom, as it happens (open it, then stop a replica)\n",
		strings.Replace(live, "127.0.0.1", "localhost", 1))
	fmt.Fprintf(w, "\n  try:   curl -c jar -b jar %s/service1\n", strings.TrimPrefix(url, "http://"))
	if tls := stack.TLSURL(); tls != "" {
		fmt.Fprintf(w, "         curl --cacert %s -c jar -b jar %s/service1\n", stack.CertFile(), strings.Replace(tls, "127.0.0.1", "localhost", 1))
	}
	fmt.Fprintf(w, "  tour:  %s\n\nCtrl-C stops every process it started.\n\n", demo)
}
