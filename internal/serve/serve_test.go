package serve

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startRun runs h on 127.0.0.1:0 and returns its base URL, the cancel that starts the
// shutdown and the channel Run's result arrives on.
func startRun(t *testing.T, h http.Handler, timeout time.Duration) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ln, err := Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, NewServer(h), ln, timeout, discard()) }()
	return "http://" + ln.Addr().String(), cancel, done
}

func TestRunFinishesInFlightRequestsOnShutdown(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	})
	url, cancel, done := startRun(t, h, 5*time.Second)

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	cancel() // SIGTERM

	// New connections are refused while the request is in flight.
	if _, err := probe.Within(5*time.Second, "new connections refused", func() bool {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
		_, err := c.Get(url + "/")
		return err != nil
	}); err != nil {
		t.Fatal("still accepting connections after shutdown started")
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before the in-flight request finished", err)
	default:
	}
	close(release)
	if r := <-got; r.err != nil || r.body != "done" {
		t.Errorf("in-flight request: got %q, %v; want \"done\"", r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: got %v, want nil", err)
	}
}

func TestRunGivesUpAfterTimeout(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	url, cancel, done := startRun(t, h, 50*time.Millisecond)
	go func() {
		if resp, err := http.Get(url + "/stuck"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT") {
		t.Errorf("got %v, want an error naming SHUTDOWN_TIMEOUT", err)
	}
}

func TestListenNamesTheAddress(t *testing.T) {
	t.Parallel()
	ln, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Listen(context.Background(), ln.Addr().String())
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("port in use: got %v, want an error naming %s", err, ln.Addr())
	}
}
