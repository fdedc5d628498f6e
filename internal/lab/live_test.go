package lab

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// liveReportDir is where the live test writes its lab report and the page's screenshot
// beside it: a folder removed after the test, or DIR/live with LAB_KEEP_REPORT=DIR, to
// look at (TestWriteReport writes its made-up report into DIR itself).
func liveReportDir(t *testing.T) (dir string, kept bool) {
	if d := os.Getenv("LAB_KEEP_REPORT"); d != "" {
		return filepath.Join(d, "live"), true
	}
	return t.TempDir(), false
}

// pageServer is one replica's box on the live page, as the DOM shows it.
type pageServer struct {
	State    string   `json:"state"`
	Visitors []string `json:"visitors"`
}

// readPage is what the page shows of service1: every server box by id.
const readPage = `(() => {
  const out = {};
  for (const box of document.querySelectorAll('section[data-service="service1"] .server')) {
    out[box.dataset.server] = {state: box.dataset.state,
      visitors: [...box.querySelectorAll('.visitor')].map(v => v.dataset.visitor)};
  }
  return out;
})()`

// TestLivePageShowsAKilledReplicaDownAndItsVisitorsMoved runs the lab's live mode
// (LIVE=1) on the sticky arm, opens the proxy's /live in a real headless Chromium,
// kills a replica the way a teacher types "kill", and reads the page's DOM: the
// killed replica shows down, and the visitors it held are shown on the other one.
func TestLivePageShowsAKilledReplicaDownAndItsVisitorsMoved(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local stack and a browser; not in -short mode")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium on PATH: install Debian's chromium (apt-get install chromium; .ci/run does) to run the live page test")
	}
	logs := &proc.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of the stack's processes:\n%s", logs.String())
		}
	})
	ctx, stop := context.WithTimeout(t.Context(), 2*time.Minute)
	defer stop()
	commands := make(chan string)
	armsc := make(chan []LiveArm, 4)
	type result struct {
		r   *Results
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := Run(ctx, Config{
			Settings: Settings{Clients: 1, Requests: 10000, Parallel: 6, ThinkMS: 40, Arms: []string{"sticky"}, Live: true},
			BinDir:   binDir, StackLog: logs, Commands: commands,
			OnLive: func(a []LiveArm) { armsc <- a },
		})
		done <- result{r, err}
	}()
	var arm LiveArm
	select {
	case arms := <-armsc:
		if len(arms) != 1 {
			t.Fatalf("got %d live arms, want the sticky one", len(arms))
		}
		arm = arms[0]
	case res := <-done:
		t.Fatalf("the live lab ended before it was up: %v", res.err)
	}
	u, err := url.Parse(arm.Live)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{} // replica name -> server id, from the URL the lab printed
	for _, pair := range strings.Split(u.Query().Get("names"), ",") {
		id, name, _ := strings.Cut(pair, ":")
		ids[name] = id
	}
	killed, other := ids["service1-1"], ids["service1-2"]
	if killed == "" || other == "" {
		t.Fatalf("the live URL %s does not name service1-1 and service1-2", arm.Live)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if _, err := chromedp.Run(bctx, chromedp.Navigate(arm.Live)); err != nil {
		t.Fatalf("opening %s: %v", arm.Live, err)
	}
	page := func() map[string]pageServer {
		t.Helper()
		out, err := chromedp.Run(bctx, chromedp.Evaluate[map[string]pageServer](readPage))
		if err != nil {
			t.Fatalf("reading the page: %v", err)
		}
		return out
	}
	until := func(what string, cond func(map[string]pageServer) bool) map[string]pageServer {
		t.Helper()
		wait, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var p map[string]pageServer
		if err := probe.Until(wait, "the page to show "+what, func() (bool, error) {
			p = page()
			return cond(p), nil
		}); err != nil {
			t.Fatalf("%v; it shows %+v", err, p)
		}
		return p
	}

	before := until("both replicas up with every visitor", func(p map[string]pageServer) bool {
		return p[killed].State == "up" && p[other].State == "up" && len(p[killed].Visitors) > 0 &&
			len(p[killed].Visitors)+len(p[other].Visitors) == 6
	})
	moving := before[killed].Visitors
	t.Logf("before the kill: %d visitors on service1-1, %d on service1-2", len(moving), len(before[other].Visitors))

	commands <- Kill
	after := until("service1-1 down and its visitors on service1-2", func(p map[string]pageServer) bool {
		if p[killed].State != "down" || len(p[killed].Visitors) != 0 {
			return false
		}
		for _, v := range moving {
			if !slices.Contains(p[other].Visitors, v) {
				return false
			}
		}
		return true
	})
	t.Logf("after the kill: %d visitors on service1-2", len(after[other].Visitors))

	// The picture shows where service1's visitors are once their flash is over.
	settled := `[...document.querySelectorAll('section[data-service="service1"] .visitor')].every(v => v.getAnimations().length === 0)`
	wait, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	if err := probe.Until(wait, "the visitors' flashes to end", func() (bool, error) {
		ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](settled))
		if err != nil {
			return false, probe.Fatal(err)
		}
		return ok, nil
	}); err != nil {
		t.Logf("the screenshot may show a flash: %v", err) // it still shows where everyone is
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	stop() // Ctrl-C: the lab stops the visitors and the stack, and returns its results
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	dir, kept := liveReportDir(t)
	if err := WriteReport(dir, res.r); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "live-sticky.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if kept {
		t.Logf("the lab report and the page's screenshot: %s", shot)
	}
	a := res.r.Arms[0]
	if len(a.Events) != 1 || a.Events[0].Kind != Kill || a.Events[0].Replica != "service1-1" {
		t.Errorf("got events %+v, want the one kill of service1-1", a.Events)
	}
	if a.Summary.Failed > 0 {
		t.Errorf("%d requests failed; want none (the proxy sends a dead replica's visitors elsewhere)", a.Summary.Failed)
	}
}
