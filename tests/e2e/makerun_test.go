package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// freePort is a port of 127.0.0.1 that is free now.
func freePort(t *testing.T) int {
	t.Helper()
	addr, err := proc.FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return n
}

// makeRunning is one `make run` a test started.
type makeRunning struct {
	cmd  *exec.Cmd
	out  *proc.Buffer
	dir  string         // its RUN_DIR: stack.txt, tls.pem
	port map[string]int // the ports makeRunUp gave it, by setting (PORT, ADMIN_PORT, ...)
	pids []int          // the processes stack.txt lists, once makeRunUp returned
	done chan struct{}  // closed when make run has ended; err is then what Wait said
	err  error
}

// makeRun starts `make run` as a user would, in its own process group. Its end is
// r.done; the test's end kills whatever of it is left. Every test of make run starts it
// here, so here they skip in make test-e2e's pass for another proxy engine
// (SWARM_AFFINITY_ENGINE set, which startStack gives the stack): make run has no engine
// setting and would run the proxy's default engine again, which the first pass tested.
func makeRun(t *testing.T, settings ...string) *makeRunning {
	t.Helper()
	if engine := os.Getenv("SWARM_AFFINITY_ENGINE"); engine != "" {
		t.Skipf("this pass is for the %s engine, and make run has no engine setting: it runs the default engine, tested by the first pass", engine)
	}
	r := &makeRunning{out: &proc.Buffer{}, dir: t.TempDir(), done: make(chan struct{})}
	args := append([]string{"--no-print-directory", "run", "RUN_DIR=" + r.dir, "QUIET=1"}, settings...)
	r.cmd = exec.Command("make", args...)
	r.cmd.Dir = repoRoot
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.err = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	})
	return r
}

// makeRunUp starts `make run` with settings and a free port for each of ports, and
// waits until it is up (r.pids filled). A port taken by another program between the
// probe and make run's bind (the tests run in parallel, and every replica listens on
// a port the kernel picks) makes it start again on new ports, twice at most.
func makeRunUp(t *testing.T, ports []string, settings ...string) *makeRunning {
	t.Helper()
	for try := 1; ; try++ {
		given := map[string]int{}
		all := slices.Clone(settings)
		for _, name := range ports {
			given[name] = freePort(t)
			all = append(all, fmt.Sprintf("%s=%d", name, given[name]))
		}
		r := makeRun(t, all...)
		r.port = given
		pids, err := stackPids(r)
		if err == nil {
			r.pids = pids
			return r
		}
		if try < 3 && strings.Contains(r.out.String(), "already in use") {
			t.Logf("make run found a port taken (try %d), again on others: %s", try, firstLine(r.out.String(), "already in use"))
			continue
		}
		t.Fatalf("%v; output:\n%s", err, r.out.String())
	}
}

// firstLine is the first line of s that holds sub.
func firstLine(s, sub string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// stackPids reads the pids make run lists in stack.txt, waiting until it is written;
// an error if make run ends first, or writes nothing in 2 minutes.
func stackPids(r *makeRunning) ([]int, error) {
	path := filepath.Join(r.dir, "stack.txt")
	deadline := time.Now().Add(2 * time.Minute) // make run builds first
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			var pids []int
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				var pid string
				switch {
				case len(f) == 2 && f[0] == "proxy":
					pid = f[1]
				case len(f) == 4 && f[0] == "replica":
					pid = f[2]
				default:
					continue
				}
				n, err := strconv.Atoi(pid)
				if err != nil {
					return nil, fmt.Errorf("stack.txt: bad pid in %q", sc.Text())
				}
				pids = append(pids, n)
			}
			return pids, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("make run ended (%v) before it wrote %s", r.err, path)
		case <-time.After(20 * time.Millisecond): // polling for a file
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("make run wrote no %s in 2 minutes", path)
		}
	}
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// waitGone polls until none of pids is alive.
func waitGone(t *testing.T, pids []int, out *proc.Buffer) {
	t.Helper()
	alivePids := func() []int {
		var left []int
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		return left
	}
	if _, err := probe.Within(20*time.Second, "every process gone", func() bool { return len(alivePids()) == 0 }); err != nil {
		t.Fatalf("processes still alive 20s after make run ended: %v; output:\n%s", alivePids(), out.String())
	}
}

func TestMakeRun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		crash bool   // SIGKILL one replica first
		sig   string // how make run is stopped
	}{
		{name: "Ctrl-C leaves no process behind", sig: "int"},
		{name: "Ctrl-C after a replica crashed leaves no process behind", crash: true, sig: "int"},
		{name: "killing the launcher itself leaves no process behind", sig: "kill-launcher"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := makeRunUp(t, []string{"PORT", "ADMIN_PORT"}, "REPLICAS=3")
			pids, out := r.pids, r.out
			if len(pids) != 7 {
				t.Fatalf("stack.txt lists %d processes, want 7 (proxy and 3+3 replicas)", len(pids))
			}
			v := newVisitor(t, fmt.Sprintf("http://127.0.0.1:%d", r.port["PORT"]), true)
			for n := 1; n <= 3; n++ {
				if a, _ := v.get(t, "/service1"); a.Visits != n {
					t.Fatalf("visit %d through make run: got visits %d", n, a.Visits)
				}
			}
			checkLiveURL(t, out, 6)
			if tc.crash {
				_ = syscall.Kill(pids[len(pids)-1], syscall.SIGKILL)
			}
			switch tc.sig {
			case "int":
				ctrlC(t, r)
			case "kill-launcher":
				launcher := launcherPid(t, pids[0])
				_ = syscall.Kill(launcher, syscall.SIGKILL)
			}
			waitGone(t, pids, out)
		})
	}
}

// checkLiveURL finds the live view's URL in make run's banner and checks that it
// serves the page and names the replicas (want of them) for it.
func checkLiveURL(t *testing.T, out *proc.Buffer, want int) {
	t.Helper()
	var live string
	deadline := time.Now().Add(30 * time.Second)
	for live == "" {
		for line := range strings.Lines(out.String()) {
			if u, ok := strings.CutPrefix(strings.TrimSpace(line), "live:"); ok {
				live = strings.TrimSpace(u)
			}
		}
		if live == "" && time.Now().After(deadline) {
			t.Fatalf("make run printed no live: line; output:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the output
	}
	u, err := url.Parse(strings.Replace(live, "localhost", "127.0.0.1", 1))
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Split(u.Query().Get("names"), ",")
	if len(names) != want || !strings.Contains(u.Query().Get("names"), ":service1-1") {
		t.Errorf("the live URL %s names %v, want %d replicas by name", live, names, want)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET %s: %s %s, want the page", live, resp.Status, resp.Header.Get("Content-Type"))
	}
}

// ctrlC sends make run what the terminal sends its foreground group on Ctrl-C and
// waits until it ends.
func ctrlC(t *testing.T, r *makeRunning) {
	t.Helper()
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("make run still running 30s after Ctrl-C; output:\n%s", r.out.String())
	}
}

// launcherPid is the parent of the proxy process: the localstack launcher.
func launcherPid(t *testing.T, child int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return ppid
}

func TestMakeRunPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	r := makeRun(t, fmt.Sprintf("PORT=%d", port), fmt.Sprintf("ADMIN_PORT=%d", freePort(t)))
	out := r.out
	select {
	case <-r.done:
		var ee *exec.ExitError
		if err := r.err; !errors.As(err, &ee) {
			t.Fatalf("make run with PORT=%d taken: got %v, want a failure; output:\n%s", port, err, out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("make run with its port taken is still running; output:\n%s", out.String())
	}
	for _, want := range []string{fmt.Sprintf("port %d", port), "in use", fmt.Sprintf("PORT=%d", port+1)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
