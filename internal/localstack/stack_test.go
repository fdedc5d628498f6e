package localstack

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/localstack/localstacktest"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// binDir holds service1, service2 and proxy: $SWARM_AFFINITY_BIN (make test sets it
// after `make build`), or a folder TestMain builds them into.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(localstacktest.RunWithBinaries(m, "localstack", &binDir))
}

// Close must stop the proxy, and wait for it to drain, before it stops any replica:
// a replica that stops first turns the proxy's last requests into errors.
func TestCloseStopsTheProxyBeforeAnyReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local stack; not in -short mode")
	}
	t.Parallel()
	out := &proc.Buffer{}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stack, err := Start(ctx, Config{BinDir: binDir, Replicas: 1, Out: out})
	if err != nil {
		t.Fatalf("starting the stack: %v\n%s", err, out.String())
	}
	if err := stack.Close(); err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(out.String(), "\n")
	proxyEnd, replicaStops := -1, 0
	for i, l := range lines {
		name, _, _ := strings.Cut(l, "|")
		switch name = strings.TrimSpace(name); {
		case name == "proxy" && strings.Contains(l, "proxy stopped"):
			proxyEnd = i
		case strings.HasPrefix(name, "service") && strings.Contains(l, "shutting down"):
			replicaStops++
			if proxyEnd < 0 {
				t.Errorf("line %d: %s began to stop before the proxy had stopped: %q", i+1, name, l)
			}
		}
	}
	if proxyEnd < 0 || replicaStops != 2 {
		t.Errorf("got the proxy's end at line %d and %d replicas stopping, want the proxy's end and 2 replicas:\n%s",
			proxyEnd+1, replicaStops, out.String())
	}
}

func TestRetryLostPort(t *testing.T) {
	t.Parallel()
	// sh stands for the child: "exit 1" one that lost its port and ended at once,
	// "sleep 60" one that runs.
	for _, tc := range []struct {
		name       string
		script     string
		ready      bool
		wantStarts int
	}{
		{"a process that ends while it is awaited is started again, three times in all", "exit 1", false, 3},
		{"a process that runs but is not ready is not started again", "sleep 60", false, 1},
		{"a process that gets ready is started once", "sleep 60", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var p *proc.Process
			starts := 0
			start := func() (*proc.Process, error) {
				starts++
				var err error
				if p, err = proc.Start("sh", []string{"/bin/sh", "-c", tc.script}, []string{"PATH=" + os.Getenv("PATH")}, nil); err == nil {
					t.Cleanup(p.Kill)
				}
				return p, err
			}
			ready := func() error {
				if tc.ready {
					return nil
				}
				if tc.script == "exit 1" {
					<-p.Done() // as waitHealthy ends once the process has
				}
				return errors.New("not ready")
			}
			err := retryLostPort(3, start, ready)
			if (err == nil) != tc.ready || starts != tc.wantStarts {
				t.Errorf("got error %v after %d starts, want ready %v after %d", err, starts, tc.ready, tc.wantStarts)
			}
		})
	}
}
