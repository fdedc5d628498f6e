package lab

import (
	"os"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/localstack/localstacktest"
)

// binDir holds service1 and proxy: $SWARM_AFFINITY_BIN (make test-e2e sets it after
// `make build`), or a folder TestMain builds them into (as tests/e2e does).
var binDir string

func TestMain(m *testing.M) {
	os.Exit(localstacktest.RunWithBinaries(m, "lab", &binDir))
}
