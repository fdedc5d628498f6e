package swarm

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// Every stack setting mk/stack.mk takes from the environment (a `NAME ?=` default, or
// `$(call given,NAME)`) is in settingVars, so that the test's make commands never
// inherit one from the environment of whoever runs the test. Runs without docker.
func TestSettingVarsHoldEveryStackSettingOfTheMakefile(t *testing.T) {
	t.Parallel()
	mk, err := os.ReadFile(filepath.Join(repoRoot(t), "mk", "stack.mk"))
	if err != nil {
		t.Fatal(err)
	}
	// Whether the tests run at all, not how the stack is: the tests read them themselves.
	gates := []string{"STACK_TESTS", "NODES_TESTS"}
	read := regexp.MustCompile(`(?m)^([A-Z_]+)\s*\?=|\$\(call given,([A-Z_]+)\)`)
	for _, m := range read.FindAllStringSubmatch(string(mk), -1) {
		name := m[1] + m[2]
		if !slices.Contains(settingVars, name) && !slices.Contains(gates, name) {
			t.Errorf("mk/stack.mk reads %s from the environment; settingVars lacks it", name)
		}
	}
}
