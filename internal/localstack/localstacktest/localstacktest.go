// Package localstacktest gives tests what they need to start local stacks: the
// repository's root and the built binaries.
package localstacktest

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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

// Binaries gives tests a folder with the stack's binaries: $SWARM_AFFINITY_BIN when
// set (`make test` sets it after `make build`), else a new temporary folder that it
// builds service1, service2 and proxy into, which cleanup removes.
func Binaries() (dir string, cleanup func(), err error) {
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

// RunWithBinaries is a TestMain's body: it runs m with *binDir set to the folder
// Binaries gives, removed afterwards, and returns m's exit code. Under -short it sets
// nothing: only the tests that start no stack run then. name starts its messages.
func RunWithBinaries(m *testing.M, name string, binDir *string) int {
	flag.Parse() // for testing.Short
	if !testing.Short() {
		dir, cleanup, err := Binaries()
		if err != nil {
			fmt.Fprintln(os.Stderr, name+":", err)
			return 1
		}
		defer cleanup()
		*binDir = dir
	}
	return m.Run()
}
