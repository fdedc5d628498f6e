// Package servicetest tests a service binary as a whole: the service1 and service2
// mains run the same test, with their own name.
package servicetest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/localstack/localstacktest"
)

var listeningRE = regexp.MustCompile(`msg=listening .*addr=(\S+)`)

// TestBinary checks what only the real binary of service shows: a bad flag exits 2,
// the service answers on 127.0.0.1 under its name, -healthcheck exits 0, SIGTERM exits
// 0. The binary is the one in $SWARM_AFFINITY_BIN (make test builds it first), else
// one built for the test (see localstacktest.Binaries).
func TestBinary(t *testing.T, service string) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir, cleanup, err := localstacktest.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	bin := filepath.Join(dir, service)

	for _, tc := range []struct {
		name, setting string
		args, env     []string
	}{
		{"a bad flag exits 2 naming the setting", "-session-ttl", []string{"-session-ttl", "soon"}, nil},
		{"a port out of range in ADDR exits 2 naming it", "ADDR", nil, []string{"ADDR=:99999"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.setting) {
				t.Errorf("got %v, %q; want exit 2 naming %s", err, out, tc.setting)
			}
		})
	}

	t.Run("serves, passes -healthcheck and exits 0 on SIGTERM", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = append(os.Environ(), "ADDR=127.0.0.1:0", "LOG_FORMAT=text", "INSTANCE_NAME=bin-test")
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		addr := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
					addr <- m[1]
				}
			}
		}()
		var a string
		select {
		case a = <-addr:
		case <-ctx.Done():
			t.Fatal("the binary did not log its listening address")
		}

		resp, err := http.Get("http://" + a + "/" + service)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "<h1>I'm " + service + " on bin-test non unique visits 1</h1>"; resp.StatusCode != 200 || !strings.HasSuffix(string(body), want) {
			t.Errorf("got %d %q, want 200 ending in %q", resp.StatusCode, body, want)
		}
		if out, err := exec.Command(bin, "-healthcheck", "-addr", a).CombinedOutput(); err != nil {
			t.Errorf("-healthcheck: %v %s", err, out)
		}

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("after SIGTERM: %v, want exit 0", err)
		}
	})
}
