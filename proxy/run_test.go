package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// TestRunReloadsOnSIGHUPAndDrains runs the whole program: it starts, a
// SIGHUP (sent on the channel run would wire to the signal) adds a replica,
// -healthcheck probes it, a slow request in flight finishes after the stop,
// and the program returns nil.
func TestRunReloadsOnSIGHUPAndDrains(t *testing.T) {
	t.Parallel()
	a := startCountServer(t, "a", "127.0.0.1:0")
	b := startCountServer(t, "b", "127.0.0.1:0")
	release := make(chan struct{})
	slowLn, _ := net.Listen("tcp", "127.0.0.1:0")
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "slow done")
	})}
	go slow.Serve(slowLn)
	t.Cleanup(func() { slow.Close() })

	dir := t.TempDir()
	file := filepath.Join(dir, "proxy.yaml")
	listen, adminAddr := freeAddr(t), freeAddr(t)
	write := func(servers string) {
		os.WriteFile(file, []byte(fmt.Sprintf("listen: %q\nadmin: %q\nservices:\n  service1:\n    servers: %q\n  slow:\n    servers: %q\n", listen, adminAddr, servers, slowLn.Addr().String())), 0o600)
	}
	write(a.addr)
	env := map[string]string{"PROXY_CONFIG": file, "LOG_LEVEL": "error"}
	getenv := func(k string) string { return env[k] }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	logs := &proc.Buffer{}
	hup := make(chan os.Signal, 1)
	go func() { done <- runReloading(ctx, nil, getenv, io.Discard, logs, hup) }()
	adm := "http://" + adminAddr
	eventually(t, "the proxy answers /readyz", func() bool {
		resp, err := http.Get(adm + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if err := run(context.Background(), []string{"-healthcheck"}, getenv, io.Discard, io.Discard); err != nil {
		t.Errorf("-healthcheck on a running proxy: %v", err)
	}

	write(a.addr + ", " + b.addr)
	hup <- syscall.SIGHUP
	eventually(t, "the reload adds b", func() bool { return len(stats(t, adm).Services[0].Servers) == 2 })

	// A bad file on reload changes nothing.
	os.WriteFile(file, []byte("services: {service1: {servers: nope}}\n"), 0o600)
	hup <- syscall.SIGHUP
	eventually(t, "the proxy to refuse the bad file", func() bool { return strings.Contains(logs.String(), "reload failed") })
	if n := len(stats(t, adm).Services); n != 2 {
		t.Errorf("after a bad reload %d services, want the 2 still running", n)
	}

	slowDone := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + listen + "/slow")
		if err != nil {
			slowDone <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slowDone <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	eventually(t, "the slow request is in flight", func() bool {
		for _, s := range stats(t, adm).Services {
			if s.Name == "slow" && len(s.Servers) == 1 && s.Servers[0].Active == 1 {
				return true
			}
		}
		return false
	})
	cancel() // SIGTERM
	eventually(t, "the listener closes", func() bool {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if got := <-slowDone; got != "200 slow done" {
		t.Errorf("request in flight during the drain: %q, want 200 slow done", got)
	}
	if err := <-done; err != nil {
		t.Errorf("run after SIGTERM: %v, want nil", err)
	}
	write(a.addr)
	if err := run(context.Background(), []string{"-healthcheck"}, getenv, io.Discard, io.Discard); err == nil {
		t.Error("-healthcheck on a stopped proxy succeeded")
	}
}
