package lab

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// binDir holds service1 and proxy: $SWARM_AFFINITY_BIN (make test-e2e sets it after
// `make build`), or a folder TestMain builds them into (as tests/e2e does).
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	flag.Parse() // for testing.Short: -short runs only the tests that need no stack
	binDir = os.Getenv("SWARM_AFFINITY_BIN")
	if binDir == "" && !testing.Short() {
		out, err := exec.Command("go", "env", "GOWORK").Output()
		gowork := strings.TrimSpace(string(out))
		if err != nil || gowork == "" || gowork == "off" {
			fmt.Fprintln(os.Stderr, "lab: run these tests inside the repository (go.work not found)")
			return 1
		}
		dir, err := os.MkdirTemp("", "swarm-affinity-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "lab:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		for _, name := range []string{"service1", "proxy"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./"+name)
			cmd.Dir = filepath.Dir(gowork)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "lab: building %s: %v\n%s", name, err, out)
				return 1
			}
		}
		binDir = dir
	}
	return m.Run()
}

// syncBuffer is a bytes.Buffer safe for the stacks' concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
