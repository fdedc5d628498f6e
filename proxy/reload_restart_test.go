package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/proc"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
)

// TestAReloadNamesTheSettingsThatWaitForARestart: the warning reads the same
// whichever settings changed, and its changed attribute names them.
func TestAReloadNamesTheSettingsThatWaitForARestart(t *testing.T) {
	t.Parallel()
	logs := &proc.Buffer{}
	s := startCountServer(t, "one", "127.0.0.1:0")
	services := fmt.Sprintf("services:\n  service1:\n    servers: %q\n", s.addr)
	a, _, _ := startAppLogging(t, "fast", services, nil, logs)
	cfg, err := config.Parse("reload.yaml", []byte("engine: std\nlisten: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\nserver_name: other\n"+services))
	if err != nil {
		t.Fatal(err)
	}
	a.apply(cfg)
	want := `msg="reload: these settings take effect at the next restart" changed="body_min_rate, server_name, engine"`
	if got := logs.String(); !strings.Contains(got, want) {
		t.Errorf("logs %q lack %q", got, want)
	}
}
