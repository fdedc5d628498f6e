package localstack

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// RepoRoot is the folder holding go.work, found through the go command.
func RepoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	gowork := strings.TrimSpace(string(out))
	if err != nil || gowork == "" || gowork == "off" {
		return "", fmt.Errorf("go.work not found: run inside the repository")
	}
	return filepath.Dir(gowork), nil
}

// TestBinaries gives tests a folder with the stack's binaries: $SWARM_AFFINITY_BIN when
// set (`make test-e2e` sets it after `make build`), else a new temporary folder that it
// builds service1, service2 and proxy into, which cleanup removes.
func TestBinaries() (dir string, cleanup func(), err error) {
	if dir := os.Getenv("SWARM_AFFINITY_BIN"); dir != "" {
		return dir, func() {}, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", nil, err
	}
	dir, err = os.MkdirTemp("", "swarm-affinity-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	for _, name := range []string{"service1", "service2", "proxy"} {
		cmd := exec.Command("go", "build", "-tags", "nomsgpack", "-o", filepath.Join(dir, name), "./"+name)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("building %s: %w\n%s", name, err, out)
		}
	}
	return dir, cleanup, nil
}

// Buffer collects the stack's output (Config.Out) for a test to show when it fails;
// unlike bytes.Buffer it is safe for the children's concurrent writers.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
