package swarm

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStack walks through the tutorial on a real swarm, in the order a user would:
// deploy (on a taken port first, as README.md's paragraph says), watch service1 stick and
// service2 spread, look at it, scale, restart everything under load, switch to the
// stateless variant, remove (runSteps' last step). Only the deploys name ports: every
// other command is given just STACK and must find the stack's settings itself. The steps
// share the stack, so they run in sequence; one that fails stops the rest (the stack is
// removed all the same).
func TestStack(t *testing.T) {
	requireSwarm(t)
	s := newStack(t)
	t.Logf("stack %s on 127.0.0.1:%d (stats on %d)", s.name, s.port, s.statsPort)
	s.runSteps(t, []step{
		{"README's port-80-taken paragraph, run as written, deploys on other ports", testPortTaken},
		{"the stack answers on its published port", testDeploy},
		{"service1 counts on one replica named after its slot", testSticky},
		{"service1 counts on one replica over https (HTTP/2) too", testStickyHTTPS},
		{"new clients reach both service1 replicas", testNewClientsSpread},
		{"service2 spreads a client over its replicas", testService2Spreads},
		{"the published admin port wants the stats_auth secret", testStatsAuth},
		{"make stack-ps and stack-logs given only STACK show the stack's ports", testPsLogs},
		{"a setting that contradicts the stack is refused, naming what is deployed", testRefused},
		{"make stack-scale N=3 given only STACK gives new clients a third replica", testScale},
		{"make stack-update given only STACK restarts every replica without a 5xx", testRollingRestart},
		{"make stack-deploy STORE=cookie keeps the ports and replicas and counts while spreading", testStateless},
	})
}

func testDeploy(t *testing.T, s *stack) {
	// stack-deploy waited by itself; the test checks it, through the port, by polling.
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

func testSticky(t *testing.T, s *stack) { checkSticky(t, s.newVisitor()) }

// checkSticky follows one visitor through five visits to service1: one replica, a count.
func checkSticky(t *testing.T, v *visitor) {
	s := v.s
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
	for _, c := range []struct {
		page, user, pass string
		want             int
	}{
		{"stats", "", "", http.StatusUnauthorized},
		{"stats", user, "wrong", http.StatusUnauthorized},
		{"stats", user, pass, http.StatusOK},
		{"live", "", "", http.StatusUnauthorized},
		{"live", user, pass, http.StatusOK},
	} {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/%s", s.statsPort, c.page), nil)
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
			t.Errorf("GET /%s as %q: got status %d, want %d", c.page, c.user, resp.StatusCode, c.want)
		}
	}
}

func testScale(t *testing.T, s *stack) {
	s.checkAddrs(t, "make stack-scale", s.make(3*time.Minute, "stack-scale", "SERVICE=service1", "N=3"))
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
	out := s.make(5*time.Minute, "stack-update")
	close(stop)
	wg.Wait()

	s.checkAddrs(t, "make stack-update", out)
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
	out := s.make(5*time.Minute, "stack-deploy", append(s.versionVar(), "STORE=cookie")...)
	s.checkAddrs(t, "make stack-deploy STORE=cookie", out)
	keeping := fmt.Sprintf("keeping PORT=%d STATS_PORT=%d UPDATE_DELAY=1s replicas service1=3 service2=2", s.port, s.statsPort)
	if !strings.Contains(out, keeping) {
		t.Errorf("make stack-deploy STORE=cookie on the scaled stack did not say %q", keeping)
	}
	// Stateless service1 is balanced round robin: new clients reach all of its replicas,
	// the third one that stack-scale added included.
	reachAll(t, s, "service1", 3, 2*time.Minute)
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

// readmePortTaken are the commands of README.md's "Port 80 taken?" paragraph, in order:
// the first fails and says what to do, the next two do it.
var readmePortTaken = []string{"make stack-deploy", "make stack-rm", "make stack-deploy PORT=8000 STATS_PORT=8001"}

// readmeCommands returns the `make ...` commands quoted in the paragraph of README.md
// that starts with start.
func readmeCommands(t *testing.T, root, start string) []string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, para, ok := strings.Cut(string(readme), start)
	if !ok {
		t.Fatalf("README.md has no paragraph starting %q", start)
	}
	para, _, _ = strings.Cut(para, "\n\n")
	var commands []string
	for _, m := range regexp.MustCompile("`(make [^`]+)`").FindAllStringSubmatch(para, -1) {
		commands = append(commands, strings.Join(strings.Fields(m[1]), " "))
	}
	return commands
}

// testPortTaken runs README.md's "Port 80 taken?" paragraph as written, with the test's
// stack name (STACK in the environment) and ports: the README's 80 is a port the test
// holds on every interface, its 1936 a free port, its 8000 and 8001 the stack's ports.
// The failing deploy must say so at once: it runs with STACK_WAIT=600, beyond its timeout.
func testPortTaken(t *testing.T, s *stack) {
	if got := readmeCommands(t, s.root, "Port 80 taken?"); !slices.Equal(got, readmePortTaken) {
		t.Fatalf("README.md's port-80 paragraph has %q, the test runs %q: make them agree", got, readmePortTaken)
	}
	busy, err := net.Listen("tcp", ":0") // every interface, as the proxy's host-mode port
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	// UPDATE_DELAY=1s: the tutorial's 10s between two replicas would make the rolling
	// restarts slow.
	// TLS=1: HTTPS too, kept by every later command, so the sticky checks run over https.
	env := append(s.versionVar(), "STACK="+s.name, "STACK_WAIT=600", "UPDATE_DELAY=1s",
		fmt.Sprintf("PORT=%d", busyPort), fmt.Sprintf("STATS_PORT=%d", freePorts(t, 1)[0]),
		"TLS=1", fmt.Sprintf("TLS_PORT=%d", s.tlsPort))
	ours := map[string]string{"PORT=8000": "PORT=" + strconv.Itoa(s.port), "STATS_PORT=8001": "STATS_PORT=" + strconv.Itoa(s.statsPort)}
	run := func(command string) (string, error) {
		args := strings.Fields(command)[1:]
		for i, arg := range args {
			if v, ok := ours[arg]; ok {
				args[i] = v
			}
		}
		return s.tryMake(3*time.Minute, env, args...)
	}

	out, err := run(readmePortTaken[0])
	if err == nil {
		t.Fatalf("make stack-deploy on a taken port %d succeeded, want a failure saying the port is taken", busyPort)
	}
	for _, want := range []string{
		fmt.Sprintf("0.0.0.0:%d: bind: address already in use", busyPort),
		"make stack-rm STACK=" + s.name + ", then make stack-deploy STACK=" + s.name + " PORT=8000 STATS_PORT=8001",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("make stack-deploy on a taken port: its output lacks %q", want)
		}
	}
	if _, err := run(readmePortTaken[1]); err != nil {
		t.Fatal(err)
	}
	out, err = run(readmePortTaken[2])
	if err != nil {
		t.Fatal(err)
	}
	s.checkAddrs(t, readmePortTaken[2], out)
}

func testPsLogs(t *testing.T, s *stack) {
	for _, target := range []string{"stack-ps", "stack-logs"} {
		out := s.make(time.Minute, target)
		s.checkAddrs(t, "make "+target, out)
		runs := fmt.Sprintf("stack %s runs with PORT=%d STATS_PORT=%d STORE=memory REPLICAS=2 UPDATE_DELAY=1s",
			s.name, s.port, s.statsPort)
		if !strings.Contains(out, runs) {
			t.Errorf("make %s: its output lacks %q", target, runs)
		}
		for _, svc := range []string{"service1", "service2", "proxy"} {
			// ps lists the tasks, logs prefixes each line with the task: <stack>_<svc>.<slot or node>.
			if task := s.name + "_" + svc + "."; !strings.Contains(out, task) {
				t.Errorf("make %s: its output names no task %s...", target, task)
			}
		}
	}
}

func testRefused(t *testing.T, s *stack) {
	deployed := fmt.Sprintf("stack %s runs with PORT=%d STATS_PORT=%d STORE=memory REPLICAS=2 UPDATE_DELAY=1s",
		s.name, s.port, s.statsPort)
	for _, c := range []struct {
		target string
		vars   []string
		fix    string
	}{
		{"stack-ps", []string{"PORT=80"}, "make stack-deploy STACK=" + s.name + " PORT=80"},
		{"stack-logs", []string{"STATS_PORT=1936", "PORT=" + strconv.Itoa(s.port)}, "make stack-deploy STACK=" + s.name + " STATS_PORT=1936"},
		{"stack-update", []string{"STORE=cookie"}, "make stack-deploy STACK=" + s.name + " STORE=cookie"},
		{"stack-scale", []string{"SERVICE=service1", "N=3", "REPLICAS=3"}, "make stack-deploy STACK=" + s.name + " REPLICAS=3"},
		{"stack-update", []string{"UPDATE_DELAY=10s"}, "make stack-deploy STACK=" + s.name + " UPDATE_DELAY=10s"},
	} {
		command := "make " + c.target + " " + strings.Join(c.vars, " ")
		out, err := s.tryMake(time.Minute, nil, append([]string{c.target, "STACK=" + s.name}, c.vars...)...)
		if err == nil {
			t.Errorf("%s succeeded, want it refused", command)
			continue
		}
		for _, want := range []string{deployed, c.fix} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: its refusal lacks %q", command, want)
			}
		}
	}
}
