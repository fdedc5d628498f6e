// Package e2e checks, through the proxy, what a user of the local stack sees: the real
// service and proxy binaries on 127.0.0.1, started by the same localstack package that
// `make run` uses.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
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
	// make test-e2e runs this package once per proxy engine.
	cfg.Engine = os.Getenv("SWARM_AFFINITY_ENGINE")
	logs := &proc.Buffer{}
	cfg.Out = logs
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := localstack.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting the local stack: %v\n%s", err, logs.String())
	}
	if cfg.Engine != "" {
		checkEngine(t, s, cfg.Engine)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("output of the stack's processes:\n%s", logs.String())
		}
	})
	return s
}

// checkEngine fails the test unless the stack's proxy runs engine (it says so in the
// first line of /stats?format=text): a run meant for one engine must not test another.
func checkEngine(t *testing.T, s *localstack.Stack, engine string) {
	t.Helper()
	first, _, _ := strings.Cut(statsText(t, s.AdminURL()), "\n")
	f := strings.Fields(first)
	for i := 1; i+1 < len(f); i += 2 {
		if f[i] == "engine" && f[i+1] == engine {
			return
		}
	}
	t.Fatalf("the proxy says %q, want engine %s", first, engine)
}

// statsText is the proxy's /stats?format=text on its admin URL.
func statsText(t *testing.T, admin string) string {
	t.Helper()
	return adminPage(t, admin+"/stats?format=text")
}

// adminPage is the body of a page of the proxy's admin port, which must answer 200.
func adminPage(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %s, %v; want 200 and the page", url, resp.Status, err)
	}
	return string(b)
}
