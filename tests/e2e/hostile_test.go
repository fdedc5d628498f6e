package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/localstack"
)

// TestAFloodOfSilentRequestsLeavesOthersServed is issue 12's flood, scaled down: one
// address opens far more connections than maxconn_per_ip allows, each sending a
// request head that announces a body and then nothing (60 bytes). With the proxy's
// default settings, a normal client keeps getting its page within a second, nothing
// counts as a server error, and the proxy's memory stays bounded.
func TestAFloodOfSilentRequestsLeavesOthersServed(t *testing.T) {
	t.Parallel()
	s := startStack(t, localstack.Config{})
	addr := strings.TrimPrefix(s.URL(), "http://")
	const flood = 1200 // maxconn_per_ip is 512, maxconn 4096
	head := []byte("POST /service1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range flood {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			continue // refused: fine, that is the point
		}
		c.Write(head) // a refused one may be reset already
		conns = append(conns, c)
	}

	// A normal client meanwhile, for two seconds, then the proxy's memory.
	cl := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(2 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		start := time.Now()
		resp, err := cl.Get(s.URL() + "/service1")
		if err != nil {
			t.Fatalf("a normal client, request %d during the flood: %v", n, err)
		}
		resp.Body.Close()
		if took := time.Since(start); resp.StatusCode != 200 || took > time.Second {
			t.Fatalf("a normal client, request %d during the flood: %d after %v, want 200 within 1s", n, resp.StatusCode, took)
		}
		time.Sleep(100 * time.Millisecond) // a visitor's pace, not a synchronisation
	}
	rss := rssMB(t, s.ProxyPid())
	t.Logf("the proxy holds %d MB with the flood's connections open", rss)
	if rss > 64 {
		t.Errorf("the proxy holds %d MB during the flood, want at most 64", rss)
	}
	// Every flood connection ends, none hangs: those that got a slot with 408
	// once timeout.body (10s) has passed, the others at once with 429 or, when
	// too many are refused at the same moment, a reset.
	var got408, got429, reset, hung int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			mu.Lock()
			defer mu.Unlock()
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				hung++
			case err != nil:
				reset++
			case resp.StatusCode == http.StatusRequestTimeout:
				got408++
			case resp.StatusCode == http.StatusTooManyRequests:
				got429++
			default:
				t.Errorf("a flood connection got %s", resp.Status)
			}
		})
	}
	wg.Wait()
	t.Logf("flood of %d: %d got 408, %d got 429, %d were reset, %d hung", len(conns), got408, got429, reset, hung)
	if hung > 0 || got408 > 512 || got408 < 400 {
		t.Errorf("want none hung and about maxconn_per_ip (512) answered 408")
	}
	if !strings.Contains(statsText(t, s.AdminURL()), " rejected_maxconn_per_ip ") {
		t.Error("/stats?format=text does not count the refused connections")
	}
	assertNoServerErrors(t, s.AdminURL())
}

// rssMB is the resident memory of process pid in MB.
func rssMB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read the proxy's memory from: %v", err)
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(string(v)), "kB")))
			return kb / 1000
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// assertNoServerErrors checks the proxy counted no 5xx for any service.
func assertNoServerErrors(t *testing.T, admin string) {
	t.Helper()
	for line := range strings.Lines(adminPage(t, admin+"/metrics")) {
		if strings.HasPrefix(line, "proxy_responses_total{") && strings.Contains(line, `code="5xx"`) && !strings.HasSuffix(strings.TrimSpace(line), " 0") {
			t.Errorf("server errors counted: %s", strings.TrimSpace(line))
		}
	}
}
