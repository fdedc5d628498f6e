package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// scripts/demo.sh walks through the tutorial against a `make run` stack and stops the
// replica that holds its session; what it prints must show each claim.
func TestDemoScript(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is missing; .ci/run installs it (apt-get install -y curl)")
		}
		t.Skip("demo.sh needs curl: apt-get install -y curl")
	}
	port := freePort(t)
	_, out, runDir := makeRun(t, fmt.Sprintf("PORT=%d", port), fmt.Sprintf("ADMIN_PORT=%d", freePort(t)))
	stackPids(t, runDir, out) // waits until make run is up

	demo := exec.Command("bash", filepath.Join(repoRoot, "scripts", "demo.sh"), fmt.Sprintf("http://127.0.0.1:%d", port))
	demo.Env = append(os.Environ(), "RUN_DIR="+runDir)
	got, err := demo.CombinedOutput()
	if err != nil {
		t.Fatalf("demo.sh: %v\n%s", err, got)
	}
	text := string(got)
	for _, want := range []*regexp.Regexp{
		// step 1: one replica counts 1, 2, 3
		regexp.MustCompile(`(?s)I'm service1 on (service1-\d) non unique visits 1.*I'm service1 on \1 non unique visits 2.*I'm service1 on \1 non unique visits 3`),
		regexp.MustCompile(`connect\.sid=[a-z0-9]+~`),
		// step 2: service2 round robin reaches both replicas, always at 1
		regexp.MustCompile(`service2 on service2-1 non unique visits 1`),
		regexp.MustCompile(`service2 on service2-2 non unique visits 1`),
		// step 5: the replica is stopped, the next answer comes from another with visits 1
		regexp.MustCompile(`\$ kill \d+`),
		regexp.MustCompile(`(?s)\$ kill \d+.*I'm service1 on service1-\d non unique visits 1.*non unique visits 2`),
	} {
		if !want.MatchString(text) {
			t.Errorf("demo.sh output does not match %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "visits 0") {
		t.Errorf("demo.sh shows a zero count:\n%s", text)
	}
}
