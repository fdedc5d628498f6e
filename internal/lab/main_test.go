package lab

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/localstack/localstacktest"
)

// binDir holds service1 and proxy: $SWARM_AFFINITY_BIN (make test-e2e sets it after
// `make build`), or a folder TestMain builds them into (as tests/e2e does).
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	flag.Parse() // for testing.Short: -short runs only the tests that need no stack
	if !testing.Short() {
		dir, cleanup, err := localstacktest.Binaries()
		if err != nil {
			fmt.Fprintln(os.Stderr, "lab:", err)
			return 1
		}
		defer cleanup()
		binDir = dir
	}
	return m.Run()
}
