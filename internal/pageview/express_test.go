package pageview

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// TestRoutesMatchTheNodeOriginal sends the same requests to the Node original
// (bench/node/server.js: express 4 and express-session as the tutorial used them) and
// to our counter, and compares what they answer: the status (and Allow) of each path
// and method, and how a visitor's GETs and HEADs count. It needs node and the original's modules
// (`make node-original`, which .ci/run runs); without them it skips, or fails in CI.
func TestRoutesMatchTheNodeOriginal(t *testing.T) {
	t.Parallel()
	node := startNodeOriginal(t)
	ours := httptest.NewServer(newHandler(t, newStore(t, "memory")))
	t.Cleanup(ours.Close)

	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodOptions}
	for _, method := range methods {
		for _, tt := range expressPathCases {
			t.Run(method+" "+tt.path+" gets the original's status", func(t *testing.T) {
				want, wantAllow := status(t, http.DefaultClient, method, node+tt.path)
				got, allow := status(t, http.DefaultClient, method, ours.URL+tt.path)
				if got != want || allow != wantAllow {
					t.Errorf("got %d, Allow %q; the original answers %d, Allow %q", got, allow, want, wantAllow)
				}
				if method == http.MethodGet && want != tt.want {
					t.Errorf("the original answers %d, expressPathCases says %d", want, tt.want)
				}
			})
		}
	}
	t.Run("GET, HEAD, HEAD, GET counts as in the original", func(t *testing.T) {
		for _, base := range []string{node, ours.URL} {
			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar}
			var got []int
			for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodHead, http.MethodGet} {
				got = append(got, visits(t, client, method, base+"/service1"))
			}
			// A HEAD has no body to show its count: -1.
			if want := []int{1, -1, -1, 4}; !slices.Equal(got, want) {
				t.Errorf("%s: got visits %v, want %v", base, got, want)
			}
		}
	})
}

// startNodeOriginal runs bench/node/server.js on a free port of 127.0.0.1 until the
// test ends and returns its base URL.
func startNodeOriginal(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("..", "..", "bench", "node"))
	nodeBin, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "express"))
	}
	if err != nil {
		msg := "the Node original is not installed (" + err.Error() + "): run make node-original"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	addr, err := proc.FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	out := &proc.Buffer{Max: 64 << 10}
	node, err := proc.Start("node", []string{nodeBin, filepath.Join(dir, "server.js")},
		append(os.Environ(), "PORT="+port, "SERVICE_NAME=service1"), out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Stop(5 * time.Second) })

	base := "http://" + addr
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	err = probe.Until(ctx, "the Node original to answer on "+base, func() (bool, error) {
		if node.Exited() {
			return false, probe.Fatal(node.Err())
		}
		resp, err := http.Get(base + "/service1")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return true, nil
	})
	if err != nil {
		t.Fatalf("%v; its output:\n%s", err, out)
	}
	return base
}

// status returns the status and the Allow header of an answer.
func status(t *testing.T, client *http.Client, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Allow")
}

var visitsRE = regexp.MustCompile(`non unique visits (\d+)</h1>$`)

// visits returns the count a page shows, or -1 when the answer has none (a HEAD).
func visits(t *testing.T, client *http.Client, method, url string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: got status %d", method, url, resp.StatusCode)
	}
	m := visitsRE.FindSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
