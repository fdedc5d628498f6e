package swarm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nodesName is the prefix of everything this run's swarm makes (SWARM_NODES_NAME of
// scripts/swarm-nodes.sh), its own so that it never takes down nodes that someone else
// (by hand, or another run at the same time) brought up: NODES_TEST_NAME, which
// `make test-swarm-nodes` sets so that it can clean up after a killed run, or one made
// up here.
func nodesName(t *testing.T) string {
	if name := os.Getenv("NODES_TEST_NAME"); name != "" {
		return name
	}
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "sa-t" + hex.EncodeToString(b)
}

// requireNodes skips the test unless `make test-swarm-nodes` asked for it (NODES_TESTS
// run or required), and skips (or, with required, fails) when the machine cannot run a
// swarm of nodes, saying why.
func requireNodes(t *testing.T) {
	t.Helper()
	required := optIn(t, "NODES_TESTS", "the multi-node test brings up a swarm of 3 Docker engines in network namespaces: run it with `make test-swarm-nodes`")
	root := repoRoot(t)
	out, err := exec.Command(filepath.Join(root, "scripts", "swarm-nodes.sh"), "check").CombinedOutput()
	if err != nil {
		why := strings.TrimSpace(string(out))
		if required {
			t.Fatalf("NODES_TESTS=required but this machine cannot run a swarm of nodes: %s", why)
		}
		t.Skipf("this machine cannot run a swarm of nodes: %s", why)
	}
}

// cluster is the swarm of nodes scripts/swarm-nodes.sh brought up for the test, with
// the stack deployed on it. Node k is 1..n; node 1 is the only manager.
type cluster struct {
	t       *testing.T
	name    string // SWARM_NODES_NAME
	root    string
	script  string
	n       int
	addrs   []string // addrs[k-1] is node k's address
	stack   string
	version string
	port    int // the proxy's port on every node
}

// upCluster brings up n nodes and tears them down (checking that nothing is left) when
// the test ends.
func upCluster(t *testing.T, n int) *cluster {
	t.Helper()
	root := repoRoot(t)
	c := &cluster{
		t:      t,
		name:   nodesName(t),
		root:   root,
		script: filepath.Join(root, "scripts", "swarm-nodes.sh"),
		n:      n,
		stack:  "nodes",
		port:   80,
	}
	if out, err := exec.Command("git", "-C", root, "describe", "--tags", "--always", "--dirty").Output(); err == nil {
		c.version = strings.TrimSpace(string(out))
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.logState()
		}
		if _, err := c.run(2*time.Minute, c.script, "down"); err != nil {
			t.Errorf("tearing the nodes down: %v", err)
		}
	})
	c.mustRun(3*time.Minute, c.script, "up", strconv.Itoa(n))
	for k := 1; k <= n; k++ {
		c.addrs = append(c.addrs, strings.TrimSpace(c.mustRun(10*time.Second, c.script, "addr", strconv.Itoa(k))))
	}
	return c
}

// command is name args... at the repository root, with the test's SWARM_NODES_NAME.
func (c *cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.root
	cmd.Env = append(os.Environ(), "SWARM_NODES_NAME="+c.name)
	if c.version != "" {
		cmd.Env = append(cmd.Env, "VERSION="+c.version)
	}
	return cmd
}

// run runs a command (see command) and logs what it printed; its error includes the
// output's last lines.
func (c *cluster) run(timeout time.Duration, name string, args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.command(ctx, name, args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	shown := strings.Join(append([]string{filepath.Base(name)}, args...), " ")
	c.t.Logf("%s (%.1fs):\n%s", shown, time.Since(start).Seconds(), indent(out))
	if err != nil {
		return string(out), fmt.Errorf("%s: %v", shown, err)
	}
	return string(out), nil
}

func (c *cluster) mustRun(timeout time.Duration, name string, args ...string) string {
	c.t.Helper()
	out, err := c.run(timeout, name, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// make runs `make target STACK=... PORT=... vars...` in node 1's namespace, where the
// Makefile's own checks reach the proxy at 127.0.0.1 and docker talks to the manager.
func (c *cluster) make(timeout time.Duration, target string, vars ...string) {
	c.t.Helper()
	args := append([]string{"exec", "1", "make", "--no-print-directory", "-C", c.root, target,
		"STACK=" + c.stack, "PORT=" + strconv.Itoa(c.port), "STATS_PORT=1936", "UPDATE_DELAY=1s"}, vars...)
	if c.version != "" {
		args = append(args, "VERSION="+c.version)
	}
	c.mustRun(timeout, c.script, args...)
}

// docker runs docker against node k's engine and returns its output, quietly.
func (c *cluster) docker(k int, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.command(ctx, c.script, append([]string{"exec", strconv.Itoa(k), "docker"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return "", fmt.Errorf("docker %s on node%d: %v: %s", strings.Join(args, " "), k, err, msg)
	}
	return string(out), nil
}

// addr is node k's proxy, host:port.
func (c *cluster) addr(k int) string { return fmt.Sprintf("%s:%d", c.addrs[k-1], c.port) }

// task is one task of a service as `docker service ps` shows it.
type task struct {
	host  string // the replica's host name, <stack>_<service>-<slot>, as its pages say
	node  int
	state string // Running, Starting, ...
}

var nodeName = regexp.MustCompile(`^node([0-9]+)$`)

// tasks lists the tasks of the stack's service that swarm wants running.
func (c *cluster) tasks(service string) ([]task, error) {
	out, err := c.docker(1, "service", "ps", "--filter", "desired-state=running",
		"--format", "{{.Name}} {{.Node}} {{.CurrentState}}", c.stack+"_"+service)
	if err != nil {
		return nil, err
	}
	var ts []task
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		m := nodeName.FindStringSubmatch(f[1])
		if m == nil {
			return nil, fmt.Errorf("task %s is on node %q, not one of node1..node%d", f[0], f[1], c.n)
		}
		k, _ := strconv.Atoi(m[1])
		// Name is <stack>_<service>.<slot> for a replicated service; the host name is
		// <stack>_<service>-<slot> (docker-compose.yml).
		name, slot, _ := strings.Cut(f[0], ".")
		ts = append(ts, task{host: name + "-" + slot, node: k, state: f[2]})
	}
	return ts, nil
}

// running is the tasks that run, by host name, with their node.
func (c *cluster) running(service string) (map[string]int, error) {
	ts, err := c.tasks(service)
	if err != nil {
		return nil, err
	}
	hosts := map[string]int{}
	for _, tk := range ts {
		if tk.state == "Running" {
			hosts[tk.host] = tk.node
		}
	}
	return hosts, nil
}

// nodesOf is the sorted distinct node numbers in a host -> node map.
func nodesOf(hosts map[string]int) []int {
	var ks []int
	for _, k := range hosts {
		if !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// nodeStatus is node k's status in `docker node ls` on the manager: Ready, Down, ...
func (c *cluster) nodeStatus(k int) (string, error) {
	out, err := c.docker(1, "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if name, status, ok := strings.Cut(strings.TrimSpace(line), " "); ok && name == fmt.Sprintf("node%d", k) {
			return status, nil
		}
	}
	return "", fmt.Errorf("node%d is not in `docker node ls`:\n%s", k, out)
}

// logState puts what the stack and the nodes looked like into the test log.
func (c *cluster) logState() {
	for _, args := range [][]string{
		{"node", "ls"},
		{"stack", "ps", "--no-trunc", "--format", "{{.Name}} {{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}", c.stack},
	} {
		out, err := c.docker(1, args...)
		c.t.Logf("docker %s:\n%s%v", strings.Join(args, " "), indent([]byte(out)), errOrEmpty(err))
	}
	for k := 1; k <= c.n; k++ {
		out, _ := c.command(context.Background(), c.script, "logs", strconv.Itoa(k)).CombinedOutput()
		c.t.Logf("node%d's dockerd, last lines:\n%s", k, indent(out))
	}
}

func errOrEmpty(err error) any {
	if err == nil {
		return ""
	}
	return err
}
