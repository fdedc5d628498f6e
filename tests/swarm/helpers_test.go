// Package swarm tests the swarm stack end to end: it deploys docker-compose.yml on the
// local Docker engine through the Makefile's own targets (stack-deploy, stack-scale,
// stack-update, stack-rm), under a unique stack name and free ports, and talks to it
// only through the proxy's published port on 127.0.0.1.
//
// It runs only when `make test-stack` asks for it (STACK_TESTS=run or required), so
// `make test` never deploys anything.
package swarm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
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

// requireSwarm skips the test unless `make test-stack` asked for it, and skips (or, with
// STACK_TESTS=required, fails) when no engine answers or it is not a swarm manager.
func requireSwarm(t *testing.T) {
	t.Helper()
	unavailable := t.Skipf
	if optIn(t, "STACK_TESTS", "the swarm stack tests deploy a real stack on the local Docker engine: run them with `make test-stack`") {
		unavailable = t.Fatalf
	}
	if _, err := exec.LookPath("docker"); err != nil {
		unavailable("no docker client on PATH (install docker.io, or Docker Desktop): %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format",
		"{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}").CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		unavailable("no Docker engine answers (`docker info`: %v: %s); start dockerd, or run scripts/ci-docker.sh up",
			err, strings.TrimSpace(lines[len(lines)-1]))
		return
	}
	if state := strings.TrimSpace(string(out)); state != "active true" {
		unavailable("the engine is not a swarm manager (swarm state and control: %q); run `make swarm-init`", state)
	}
}

// optIn reads the variable that turns on a test needing more than Go (an engine, root):
// empty skips the test with howToRun, run or required let it go on, anything else fails
// it. It says whether the test is required: then a machine that cannot run it is a
// failure, not a skip.
func optIn(t *testing.T, name, howToRun string) (required bool) {
	t.Helper()
	switch mode := os.Getenv(name); mode {
	case "run":
	case "required":
		return true
	case "":
		t.Skip(howToRun)
	default:
		t.Fatalf("%s=%q: want run (skip where the machine cannot) or required (fail there)", name, mode)
	}
	return false
}

// repoRoot is the directory holding go.work, where make runs.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the test's directory: run the test from the repository")
		}
		dir = parent
	}
}

// freePorts returns n TCP ports that were free on 127.0.0.1 a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// stack is a stack deployed by this test, driven through the Makefile.
type stack struct {
	t         *testing.T
	root      string
	name      string
	port      int
	statsPort int
	tlsPort   int    // the proxy's HTTPS port: the first deploy has TLS=1, later ones keep it
	base      string // http://127.0.0.1:<port>
	version   string // the images' tag, VERSION; "" lets the Makefile compute it
}

func newStack(t *testing.T) *stack {
	t.Helper()
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 3)
	s := &stack{
		t:         t,
		root:      repoRoot(t),
		name:      "sat" + hex.EncodeToString(suffix),
		port:      ports[0],
		statsPort: ports[1],
		tlsPort:   ports[2],
	}
	s.base = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	// One image tag for the whole test, as the Makefile would compute it now: a commit
	// landing meanwhile must not turn the next stack-deploy into an upgrade of everything.
	if out, err := exec.Command("git", "-C", s.root, "describe", "--tags", "--always", "--dirty").Output(); err == nil {
		s.version = strings.TrimSpace(string(out))
	}
	return s
}

// settingVars are the environment variables make and stack/stack.sh read as the stack's
// settings. The test's make runs without them (and without the MAKEFLAGS of a `make
// test-stack` above it), so that each command gets exactly the settings the test names.
var settingVars = []string{"STACK", "PORT", "STATS_PORT", "STORE", "REPLICAS", "UPDATE_DELAY", "TLS", "TLS_PORT", "VERSION",
	"STACK_FILE", "SERVICE", "SERVICES", "N", "TAIL", "FOLLOW", "STACK_WAIT", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKELEVEL"}

// versionVar is the image tag every deploy of the test gives, if any.
func (s *stack) versionVar() []string {
	if s.version == "" {
		return nil
	}
	return []string{"VERSION=" + s.version}
}

// make runs `make <target> STACK=<name> <vars>` at the repository root and fails the
// test if it fails: the stack's other settings come from the stack itself, or from vars.
// It returns the output, which also goes to the test log.
func (s *stack) make(timeout time.Duration, target string, vars ...string) string {
	s.t.Helper()
	out, err := s.tryMake(timeout, nil, append([]string{target, "STACK=" + s.name}, vars...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// tryMake runs make with args at the repository root, with env added to an environment
// cleared of settingVars, and returns its output and whether it failed.
func (s *stack) tryMake(timeout time.Duration, env []string, args ...string) (string, error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = s.root
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(settingVars, name)
	})
	cmd.Env = append(cmd.Env, env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	s.t.Logf("%s (%.1fs):\n%s", strings.Join(slices.Concat(env, []string{"make"}, args), " "),
		time.Since(start).Seconds(), indent(out))
	if err != nil {
		return string(out), fmt.Errorf("make %s: %v", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// addrPattern matches the 127.0.0.1 addresses make prints for the stack's pages.
var addrPattern = regexp.MustCompile(`127\.0\.0\.1:([0-9]+)/(service1|stats|live)`)

// checkAddrs fails the test unless out names the stack's own ports, for its pages and
// its stats, and no other: the command read them from the stack.
func (s *stack) checkAddrs(t *testing.T, command, out string) {
	t.Helper()
	want := map[string]int{"service1": s.port, "stats": s.statsPort, "live": s.statsPort}
	seen := map[string]bool{}
	for _, m := range addrPattern.FindAllStringSubmatch(out, -1) {
		if port, _ := strconv.Atoi(m[1]); port != want[m[2]] {
			t.Errorf("%s printed %s, want 127.0.0.1:%d/%s (the stack's port)", command, m[0], want[m[2]], m[2])
		}
		seen[m[2]] = true
	}
	for _, page := range []string{"service1", "stats", "live"} {
		if !seen[page] {
			t.Errorf("%s printed no 127.0.0.1:<port>/%s, want 127.0.0.1:%d/%s", command, page, want[page], page)
		}
	}
}

func indent(b []byte) string {
	b = bytes.TrimRight(b, "\n")
	return "    " + strings.ReplaceAll(string(b), "\n", "\n    ")
}

// leftovers lists what of the stack still exists, as "kind id" lines.
func (s *stack) leftovers() ([]string, error) {
	label := "label=com.docker.stack.namespace=" + s.name
	var left []string
	for _, args := range [][]string{
		{"service", "ls", "-q", "--filter", label},
		{"network", "ls", "-q", "--filter", label},
		{"network", "ls", "-q", "--filter", "name=^" + s.name + "_"},
		{"config", "ls", "-q", "--filter", label},
		{"secret", "ls", "-q", "--filter", label},
		{"ps", "-aq", "--filter", label},
	} {
		out, err := exec.Command("docker", args...).Output()
		if err != nil {
			return nil, fmt.Errorf("docker %s: %w", strings.Join(args, " "), err)
		}
		for _, id := range strings.Fields(string(out)) {
			left = append(left, args[0]+" "+id)
		}
	}
	return left, nil
}

// checkNothingLeft fails the test if any service, network, config, secret or container
// of the stack is still there.
func (s *stack) checkNothingLeft() {
	s.t.Helper()
	left, err := s.leftovers()
	if err != nil {
		s.t.Errorf("listing what is left of stack %s: %v", s.name, err)
		return
	}
	if len(left) > 0 {
		s.t.Errorf("after make stack-rm, stack %s still has: %s", s.name, strings.Join(left, ", "))
	}
}

// page is the JSON answer of service1 and service2 to Accept: application/json.
type page struct {
	Service string            `json:"service"`
	Host    string            `json:"host"`
	Visits  int               `json:"visits"`
	Headers map[string]string `json:"headers"`
}

// visitor is one browser: its own cookie jar, talking to the stack's published port
// (base: the http one; newTLSVisitor's, the https one).
type visitor struct {
	s      *stack
	client *http.Client
	jar    *cookiejar.Jar
	base   string
}

func (s *stack) newVisitor() *visitor {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return &visitor{s: s, jar: jar, client: &http.Client{Jar: jar, Timeout: 5 * time.Second}, base: s.base}
}

// get asks for path with Accept: application/json and decodes the page.
func (v *visitor) get(path string) (page, error) {
	req, err := http.NewRequest(http.MethodGet, v.base+path, nil)
	if err != nil {
		return page{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return page{}, fmt.Errorf("GET %s: reading the body: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return page{}, fmt.Errorf("GET %s: status %d: %.200s", path, resp.StatusCode, body)
	}
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		return page{}, fmt.Errorf("GET %s: not the JSON page (%v): %.200s", path, err, body)
	}
	return p, nil
}

// mustGet is get that fails the test.
func (v *visitor) mustGet(t *testing.T, path string) page {
	t.Helper()
	p, err := v.get(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cookie is the value of the named cookie the visitor holds for path, if any.
func (v *visitor) cookie(path, name string) (string, bool) {
	u, _ := url.Parse(v.base + path)
	for _, c := range v.jar.Cookies(u) {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

// hostPattern matches the host names of a service's replicas: <stack>_<service>-<slot>.
func (s *stack) hostPattern(service string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(s.name+"_"+service) + `-([0-9]+)$`)
}

// eventually calls try every 250ms until it returns nil or the deadline passes, then
// fails the test with try's last error.
func eventually(t *testing.T, within time.Duration, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
