package swarm

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStack walks through the tutorial on a real swarm, in the order a user would:
// deploy, watch service1 stick and service2 spread, scale, restart everything under
// load, switch to the stateless variant, remove. The steps share the stack, so they run
// in sequence; one that fails stops the rest (the stack is removed all the same).
func TestStack(t *testing.T) {
	requireSwarm(t)
	start := time.Now()
	s := newStack(t)
	t.Logf("stack %s on 127.0.0.1:%d (stats on %d)", s.name, s.port, s.statsPort)

	removed := false
	t.Cleanup(func() {
		if !removed {
			if err := s.tryMake(3*time.Minute, "stack-rm"); err != nil {
				t.Error(err)
			}
			s.checkNothingLeft()
		}
		t.Logf("stack test took %.0fs", time.Since(start).Seconds())
	})

	steps := []struct {
		name string
		run  func(t *testing.T, s *stack)
	}{
		{"make stack-deploy answers on the published port", testDeploy},
		{"service1 counts on one replica named after its slot", testSticky},
		{"new clients reach both service1 replicas", testNewClientsSpread},
		{"service2 spreads a client over its replicas", testService2Spreads},
		{"the published admin port wants the stats_auth secret", testStatsAuth},
		{"make stack-scale N=3 gives new clients a third replica", testScale},
		{"make stack-update restarts every replica without a 5xx", testRollingRestart},
		{"make stack-deploy STORE=cookie counts while spreading", testStateless},
		{"make stack-rm leaves nothing behind", func(t *testing.T, s *stack) {
			s.make(3*time.Minute, "stack-rm")
			removed = true
			s.checkNothingLeft()
		}},
	}
	for _, step := range steps {
		if !t.Run(step.name, func(t *testing.T) { step.run(t, s) }) {
			return
		}
	}
}

func testDeploy(t *testing.T, s *stack) {
	s.make(5*time.Minute, "stack-deploy")
	// stack-deploy waits by itself; the test checks it, through the port, by polling.
	v := s.newVisitor()
	eventually(t, time.Minute, "both pages answer", func() error {
		for _, path := range []string{"/service1", "/service2"} {
			if _, err := v.get(path); err != nil {
				return err
			}
		}
		return nil
	})
}

func testSticky(t *testing.T, s *stack) {
	v := s.newVisitor()
	want := s.hostPattern("service1")
	first := v.mustGet(t, "/service1")
	if first.Service != "service1" || !want.MatchString(first.Host) || first.Visits != 1 {
		t.Fatalf("first visit: got service %q on %q with visits %d, want service1 on %s with visits 1",
			first.Service, first.Host, first.Visits, want)
	}
	cookie, ok := v.cookie("/service1", "connect.sid")
	id, sid, prefixed := strings.Cut(cookie, "~")
	if !ok || !prefixed || id == "" {
		t.Fatalf("the client's connect.sid is %q, want <server id>~<session id>", cookie)
	}
	for visit := 2; visit <= 5; visit++ {
		p := v.mustGet(t, "/service1")
		if p.Host != first.Host || p.Visits != visit {
			t.Fatalf("visit %d: got %q with visits %d, want %q with visits %d",
				visit, p.Host, p.Visits, first.Host, visit)
		}
		// As HAProxy's `cookie prefix`: the replica sees the cookie it set, without the id.
		if got := p.Headers["cookie"]; strings.Contains(got, id+"~") || !strings.Contains(got, sid) {
			t.Fatalf("visit %d: service1 received Cookie %q, want connect.sid=%s without the server id", visit, got, sid)
		}
	}
}

// reachAll asks new clients (no cookie) for path until n different replicas answered.
func reachAll(t *testing.T, s *stack, service string, n int, within time.Duration) map[string]int {
	t.Helper()
	pattern := s.hostPattern(service)
	hosts := map[string]int{}
	eventually(t, within, fmt.Sprintf("new clients reach %d replicas of %s", n, service), func() error {
		p, err := s.newVisitor().get("/" + service)
		if err != nil {
			return err
		}
		if !pattern.MatchString(p.Host) || p.Visits != 1 {
			t.Fatalf("a new client got %q with visits %d, want a host matching %s with visits 1", p.Host, p.Visits, pattern)
		}
		hosts[p.Host]++
		if len(hosts) < n {
			return fmt.Errorf("reached %v", slices.Sorted(maps.Keys(hosts)))
		}
		return nil
	})
	return hosts
}

func testNewClientsSpread(t *testing.T, s *stack) {
	hosts := reachAll(t, s, "service1", 2, 30*time.Second)
	t.Logf("new clients reached %v", hosts)
}

func testService2Spreads(t *testing.T, s *stack) {
	v := s.newVisitor()
	pattern := s.hostPattern("service2")
	hosts := map[string]int{}
	for range 6 {
		p := v.mustGet(t, "/service2")
		if p.Service != "service2" || !pattern.MatchString(p.Host) {
			t.Fatalf("got service %q on %q, want service2 on a host matching %s", p.Service, p.Host, pattern)
		}
		hosts[p.Host]++
	}
	if len(hosts) < 2 {
		t.Fatalf("one client's 6 requests to service2 all went to %v, want round robin over 2 replicas", hosts)
	}
	t.Logf("one client's requests went to %v", hosts)
}

func testStatsAuth(t *testing.T, s *stack) {
	secret, err := os.ReadFile(filepath.Join(s.root, "stack", "secrets", "stats_auth"))
	if err != nil {
		t.Fatalf("make stack-deploy should have written the secret: %v", err)
	}
	user, pass, ok := strings.Cut(string(secret), ":")
	if !ok {
		t.Fatalf("stack/secrets/stats_auth is not user:password")
	}
	stats := fmt.Sprintf("http://127.0.0.1:%d/stats", s.statsPort)
	for _, c := range []struct {
		user, pass string
		want       int
	}{
		{"", "", http.StatusUnauthorized},
		{user, "wrong", http.StatusUnauthorized},
		{user, pass, http.StatusOK},
	} {
		req, err := http.NewRequest(http.MethodGet, stats, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET /stats as %q: got status %d, want %d", c.user, resp.StatusCode, c.want)
		}
	}
}

func testScale(t *testing.T, s *stack) {
	s.make(3*time.Minute, "stack-scale", "SERVICE=service1", "N=3")
	third := s.name + "_service1-3"
	eventually(t, time.Minute, "a new client reaches "+third, func() error {
		p, err := s.newVisitor().get("/service1")
		if err != nil {
			return err
		}
		if p.Host != third {
			return fmt.Errorf("last new client got %s", p.Host)
		}
		return nil
	})
}

// load counts the answers to a request sent every 20ms until stop is closed.
type load struct {
	ok, server5xx, failed atomic.Int64
	mu                    sync.Mutex
	firstErrors           []string
}

// run calls get every 20ms until stop is closed; an error that says ": status 5..."
// counts as a 5xx, any other as a failure.
func (l *load) run(get func() error, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		err := get()
		switch {
		case err == nil:
			l.ok.Add(1)
			continue
		case strings.Contains(err.Error(), ": status 5"):
			l.server5xx.Add(1)
		default:
			l.failed.Add(1)
		}
		l.mu.Lock()
		if len(l.firstErrors) < 5 {
			l.firstErrors = append(l.firstErrors, time.Now().Format("15:04:05.000 ")+err.Error())
		}
		l.mu.Unlock()
	}
}

func (l *load) String() string {
	return fmt.Sprintf("%d ok, %d 5xx, %d failed; first errors: %q",
		l.ok.Load(), l.server5xx.Load(), l.failed.Load(), l.firstErrors)
}

func testRollingRestart(t *testing.T, s *stack) {
	// Three sticky service1 clients with a count, before the restart.
	clients := make([]*visitor, 3)
	for i := range clients {
		clients[i] = s.newVisitor()
		for visit := 1; visit <= 2; visit++ {
			if p := clients[i].mustGet(t, "/service1"); p.Visits != visit {
				t.Fatalf("client %d before the restart: got visits %d, want %d", i, p.Visits, visit)
			}
		}
	}

	// New clients (no cookie jar) asking for path.
	newClients := func(path string) func() error {
		v := s.newVisitor()
		v.client.Jar = nil
		return func() error { _, err := v.get(path); return err }
	}
	var service1, service2 load
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(4)
	go service2.run(newClients("/service2"), stop, &wg)
	go service2.run(newClients("/service2"), stop, &wg)
	go service1.run(newClients("/service1"), stop, &wg)
	go service1.run(newClients("/service1"), stop, &wg)
	s.make(5*time.Minute, "stack-update")
	close(stop)
	wg.Wait()

	t.Logf("service2 under load during the rolling restart: %v", &service2)
	t.Logf("service1 (new clients) under load during the rolling restart: %v", &service1)
	if service2.server5xx.Load() > 0 || service2.failed.Load() > 0 {
		t.Errorf("service2 during the rolling restart: %v; want no 5xx and no failed request", &service2)
	}
	if service2.ok.Load() < 50 {
		t.Errorf("service2 answered only %d requests during the rolling restart, want a steady load (50 or more)", service2.ok.Load())
	}

	// Every replica is new and knows no session: each client starts again at 1, on a
	// replica it then sticks to.
	for i, v := range clients {
		first, err := v.get("/service1")
		if err != nil {
			t.Fatalf("client %d after the restart: %v", i, err)
		}
		if first.Visits != 1 {
			t.Errorf("client %d after the restart: got visits %d on %s, want 1 (sessions lived in the old replicas)",
				i, first.Visits, first.Host)
			continue
		}
		for visit := 2; visit <= 3; visit++ {
			p := v.mustGet(t, "/service1")
			if p.Host != first.Host || p.Visits != visit {
				t.Errorf("client %d after the restart, visit %d: got %q with visits %d, want %q with visits %d",
					i, visit, p.Host, p.Visits, first.Host, visit)
				break
			}
		}
	}
}

func testStateless(t *testing.T, s *stack) {
	s.make(5*time.Minute, "stack-deploy", "STORE=cookie")
	pattern := s.hostPattern("service1")
	// The proxy and service1 roll over to the new settings one task at a time: poll until
	// a client's count goes on whichever replica answers.
	eventually(t, 2*time.Minute, "one client counts 1 to 6 over several service1 replicas", func() error {
		v := s.newVisitor()
		hosts := map[string]int{}
		for visit := 1; visit <= 6; visit++ {
			p, err := v.get("/service1")
			if err != nil {
				return err
			}
			if !pattern.MatchString(p.Host) {
				t.Fatalf("got host %q, want one matching %s", p.Host, pattern)
			}
			hosts[p.Host]++
			if p.Visits != visit {
				return fmt.Errorf("visit %d got visits %d on %s (replicas so far %v)", visit, p.Visits, p.Host, hosts)
			}
		}
		if len(hosts) < 2 {
			return fmt.Errorf("all six visits went to %v", hosts)
		}
		t.Logf("one client counted 1 to 6 over %v", hosts)
		return nil
	})
}
