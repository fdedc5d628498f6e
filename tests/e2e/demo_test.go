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
	r := makeRunUp(t, []string{"PORT", "ADMIN_PORT"})
	port, runDir := r.port["PORT"], r.dir

	demo := exec.Command("bash", filepath.Join(repoRoot, "scripts", "demo.sh"), fmt.Sprintf("http://127.0.0.1:%d", port))
	demo.Env = append(os.Environ(), "RUN_DIR="+runDir)
	got, err := demo.CombinedOutput()
	if err != nil {
		t.Fatalf("demo.sh: %v\n%s", err, got)
	}
	text := string(got)
	// step 1: one replica counts 1, 2, 3
	s1 := regexp.MustCompile(`I'm service1 on (\S+) non unique visits (\d+)`).FindAllStringSubmatch(text, 3)
	if len(s1) < 3 || s1[0][1] != s1[1][1] || s1[1][1] != s1[2][1] ||
		s1[0][2] != "1" || s1[1][2] != "2" || s1[2][2] != "3" {
		t.Errorf("demo.sh's first step does not count 1, 2, 3 on one replica: %q\n%s", s1, text)
	}
	for _, want := range []*regexp.Regexp{
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
