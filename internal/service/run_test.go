package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/browser"
	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/internal/pageview"
	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

var listeningRE = regexp.MustCompile(`msg=listening .*addr=(\S+)|"msg":"listening".*"addr":"([^"]+)"`)

// runMain runs service1's main and returns its exit code, as the binary would exit.
func runMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return cli.Exit(ctx, "service1", Program{Name: "service1", Version: "test"}.Main, args, getenv, stdout, stderr)
}

// startMain runs service1's main on 127.0.0.1:0 with env and returns the address it listens on,
// its log and a function that stops it and returns its exit code.
func startMain(t *testing.T, env map[string]string) (addr string, logs *proc.Buffer, stop func() int) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	env["ADDR"] = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	logs = &proc.Buffer{}
	code := make(chan int, 1)
	go func() { code <- runMain(ctx, nil, envOf(env), &bytes.Buffer{}, logs) }()
	stop = func() int { cancel(); return <-code }
	t.Cleanup(cancel)
	wait, cancelWait := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancelWait()
	err := probe.Until(wait, "service1's Main to listen", func() (bool, error) {
		if m := listeningRE.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1] + m[2]
			return true, nil
		}
		select {
		case c := <-code:
			return false, probe.Fatal(fmt.Errorf("Main exited with %d before listening", c))
		default:
			return false, nil
		}
	})
	if err != nil {
		t.Fatalf("%v; log:\n%s", err, logs)
	}
	return addr, logs, stop
}

func visit(t *testing.T, b *browser.Browser, url string) pageview.Answer {
	t.Helper()
	a, _, err := b.Page(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestMainServesCountsAndStops(t *testing.T) {
	t.Parallel()
	for _, storeKind := range []string{"memory", "cookie"} {
		t.Run(storeKind+" store", func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"SESSION_STORE": storeKind, "INSTANCE_NAME": "replica-7", "LOG_FORMAT": "text"}
			if storeKind == "cookie" {
				env["SESSION_SECRET"] = goodSecret
			}
			addr, logs, stop := startMain(t, env)
			client := browser.New(browser.Options{})
			for want := 1; want <= 3; want++ {
				a := visit(t, client, "http://"+addr+"/service1")
				if a.Visits != want || a.Host != "replica-7" || a.Service != "service1" {
					t.Fatalf("got %+v, want visits %d on replica-7", a, want)
				}
			}
			var out bytes.Buffer
			if code := runMain(context.Background(), []string{"-healthcheck", "-addr", addr}, envOf(nil), &out, &out); code != cli.ExitOK {
				t.Errorf("-healthcheck against a running service: got exit %d, want 0 (%s)", code, &out)
			}
			if code := stop(); code != cli.ExitOK {
				t.Errorf("after shutdown: got exit %d, want 0; log:\n%s", code, logs)
			}
			log := logs.String()
			for _, want := range []string{"method=GET", "path=/service1", "status=200", "dur_ms=", "new_session=true", "new_session=false", "msg=stopped"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			if strings.Contains(log, goodSecret) || regexp.MustCompile(`connect\.sid=`).MatchString(log) {
				t.Errorf("log holds a secret or a cookie value:\n%s", log)
			}
			if storeKind == "memory" && !strings.Contains(log, "SESSION_SECRET not set") {
				t.Errorf("memory store without a secret: no log line saying so:\n%s", log)
			}
		})
	}
}

func TestMainJSONLogs(t *testing.T) {
	t.Parallel()
	addr, logs, stop := startMain(t, map[string]string{"LOG_FORMAT": "json", "LOG_LEVEL": "debug"})
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	stop()
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if m["path"] == "/healthz" && m["status"] == float64(200) && m["new_session"] == false {
			found = true
		}
	}
	if !found {
		t.Errorf("no JSON access line for /healthz:\n%s", logs)
	}
}

// Health checks come every few seconds from Docker and the proxy: at the default level
// they are not logged, page views are.
func TestMainLogsHealthChecksOnlyAtDebug(t *testing.T) {
	t.Parallel()
	addr, logs, stop := startMain(t, map[string]string{})
	for _, path := range []string{"/healthz", "/service1"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	stop()
	if strings.Contains(logs.String(), "path=/healthz") {
		t.Errorf("a /healthz access line at the default level:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "path=/service1") {
		t.Errorf("no access line for /service1:\n%s", logs)
	}
}

func TestMainExitCodes(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	freeAddr, err := proc.FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		want       int
		wantStdout string
		wantStderr string
	}{
		{"-h lists the settings and exits 0", []string{"-h"}, nil, cli.ExitOK, "SESSION_MAX", ""},
		{"a bad flag value exits 2", []string{"-session-max", "-1"}, nil, cli.ExitUsage, "", "-session-max"},
		{"an unknown flag exits 2", []string{"-bogus"}, nil, cli.ExitUsage, "", "-bogus"},
		{"a bad environment value exits 2", nil, map[string]string{"SESSION_TTL": "forever"}, cli.ExitUsage, "", "SESSION_TTL"},
		{"the cookie store without a secret exits 2", nil, map[string]string{"SESSION_STORE": "cookie"}, cli.ExitUsage, "",
			"SESSION_STORE=cookie needs SESSION_SECRET"},
		{"a busy port exits 1 naming the address", []string{"-addr", busy.Addr().String()}, nil, cli.ExitFailure, "", busy.Addr().String()},
		{"-healthcheck with nothing listening exits 1", []string{"-healthcheck", "-addr", freeAddr}, nil, cli.ExitFailure, "", "healthcheck"},
		{"-healthcheck with a bad setting exits 1 too", []string{"-healthcheck", "-addr", "nope"}, nil, cli.ExitFailure, "", "-addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr proc.Buffer
			env := tt.env
			if env == nil {
				env = map[string]string{}
			}
			code := runMain(context.Background(), tt.args, envOf(env), &stdout, &stderr)
			if code != tt.want {
				t.Errorf("got exit %d, want %d; stderr: %s", code, tt.want, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
