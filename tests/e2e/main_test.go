// Package e2e checks, through the proxy, what a user of the local stack sees: the real
// service and proxy binaries on 127.0.0.1, started by the same localstack package that
// `make run` uses.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/localstack"
	"github.com/swarm-affinity/swarm-affinity/internal/localstack/localstacktest"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// binDir holds service1, service2 and proxy; repoRoot is the folder with go.work.
var binDir, repoRoot string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	var err error
	if repoRoot, err = localstacktest.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, cleanup, err := localstacktest.Binaries()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer cleanup()
	binDir = dir
	return m.Run()
}

// startStack starts a local stack for one test on free ports and stops it when the test
// ends. The processes' output is shown if the test fails.
func startStack(t *testing.T, cfg localstack.Config) *localstack.Stack {
	t.Helper()
	cfg.BinDir = binDir
	logs := &proc.Buffer{}
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
