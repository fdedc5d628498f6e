package lab

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		args       []string
		env        map[string]string
		wantEvents []string
		wantErr    string // "" for no error
	}{
		{"locally the default events are a kill and a scale-out", nil, nil, []string{"kill", "scale"}, ""},
		{"against a URL there is no default event", nil, map[string]string{"URL": "http://127.0.0.1"}, []string{}, ""},
		{"EVENTS=none runs without events", nil, map[string]string{"EVENTS": "none"}, []string{}, ""},
		{"events keep their order", nil, map[string]string{"EVENTS": "restart, Kill"}, []string{"restart", "kill"}, ""},
		{"a flag wins over the environment", []string{"-events", "scale"}, map[string]string{"EVENTS": "kill"}, []string{"scale"}, ""},
		{"an unknown event is named with the choices", nil, map[string]string{"EVENTS": "explode"}, nil, `unknown event "explode"; choose from kill, scale, restart`},
		{"events need a local stack", nil, map[string]string{"URL": "http://127.0.0.1", "EVENTS": "kill"}, nil, "EVENTS work on the local stacks only"},
		{"a URL needs its scheme", nil, map[string]string{"URL": "127.0.0.1"}, nil, "URL=http://127.0.0.1"},
		{"a bare argument is not a setting", []string{"CLIENTS=3"}, nil, nil, `unexpected argument "CLIENTS=3"`},
		{"LIVE=1 has no default event: they are typed", nil, map[string]string{"LIVE": "1"}, []string{}, ""},
		{"LIVE=1 refuses EVENTS", nil, map[string]string{"LIVE": "1", "EVENTS": "kill"}, nil, "with LIVE=1 the events are yours"},
		{"LIVE=1 needs local stacks", nil, map[string]string{"LIVE": "1", "URL": "http://127.0.0.1"}, nil, "LIVE=1 starts local stacks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseCommand(tc.args, env(tc.env), io.Discard)
			if tc.wantErr != "" {
				var ue *cli.UsageError
				if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want a usage error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Events, tc.wantEvents) {
				t.Errorf("events: got %q, want %q", c.Events, tc.wantEvents)
			}
		})
	}
}

func TestParseCommandReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := parseCommand(nil, env(map[string]string{"CLIENTS": "0", "REQUESTS": "many", "BALANCE": "random"}), io.Discard)
	for _, want := range []string{"CLIENTS=0", `REQUESTS="many": not a whole number`, `BALANCE="random"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to mention %s", err, want)
		}
	}
}

// The whole command, as `make lab` runs it: the progress lines, the table and the
// report folder, with the workers, the events and the progress in one process under
// -race.
func TestMainPrintsTheTableAndWritesTheReport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts local stacks; not in -short mode")
	}
	t.Parallel()
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := Main(t.Context(), []string{"-bin", binDir, "-out", out, "-clients", "4", "-requests", "4", "-think", "5",
		"-arms", "sticky", "-events", "kill"}, env(nil), &stdout, &stderr)
	if err != nil {
		t.Fatalf("got %v; stderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"Lab: 4 visitors per arm", "events: kill", "arm ", "sticky ", "Report: "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	for _, want := range []string{"sending 16 requests...", "sticky: kill service1-1...", "sticky: kill service1-1 done"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr (the progress, not a terminal) lacks %q:\n%s", want, stderr.String())
		}
	}
	reports, _ := filepath.Glob(filepath.Join(out, "*", ReportHTML))
	if len(reports) != 1 {
		t.Errorf("got reports %v, want one under %s", reports, out)
	}
}

func TestCommandsPassEventsAndStopOnQuit(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	stopped := false
	ch := commands(strings.NewReader("kill\n\nExplode\n SCALE \nquit\nrestart\n"), &out, func() { stopped = true })
	var got []string
	for c := range ch {
		got = append(got, c)
	}
	if !slices.Equal(got, []string{"kill", "scale"}) {
		t.Errorf("got commands %v, want kill and scale (nothing after quit)", got)
	}
	if !stopped {
		t.Error("quit did not stop the lab")
	}
	if !strings.Contains(out.String(), `"explode" is not an event`) {
		t.Errorf("got %q, want the unknown line named", out.String())
	}
}
