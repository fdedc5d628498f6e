// Package e2e checks, through the proxy, what a user of the local stack sees: the real
// service and proxy binaries on 127.0.0.1, started by the same localstack package that
// `make run` uses.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/tests/localstack"
)

// binDir holds service1, service2 and proxy: $SWARM_AFFINITY_BIN (make test-e2e sets it
// after `make build`), or a folder TestMain builds them into.
var binDir string

// repoRoot is the folder with go.work.
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == "off" {
		fmt.Fprintln(os.Stderr, "e2e: run these tests inside the repository (go.work not found)")
		return 1
	}
	repoRoot = filepath.Dir(strings.TrimSpace(string(out)))
	binDir = os.Getenv("SWARM_AFFINITY_BIN")
	if binDir == "" {
		dir, err := os.MkdirTemp("", "swarm-affinity-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		for _, name := range []string{"service1", "service2", "proxy"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./"+name)
			cmd.Dir = repoRoot
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: building %s: %v\n%s", name, err, out)
				return 1
			}
		}
		binDir = dir
	}
	return m.Run()
}

// startStack starts a local stack for one test on free ports and stops it when the test
// ends. The processes' output goes to a file whose path is printed if the test fails.
func startStack(t *testing.T, cfg localstack.Config) *localstack.Stack {
	t.Helper()
	cfg.BinDir = binDir
	logs := &syncBuffer{}
	cfg.Out = logs
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := localstack.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting the local stack: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("output of the stack's processes:\n%s", logs.String())
		}
	})
	return s
}

// syncBuffer is a bytes.Buffer safe for the stack's concurrent writers.
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
