package swarm

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNodes deploys the stack on a real swarm of three Docker engines on this machine
// (scripts/swarm-nodes.sh: one network namespace and one dockerd per node, node1 the
// manager) and checks what one node cannot show: a proxy on every node, replicas spread
// over the nodes and reached across them through the overlay network, a visitor sticky
// whichever node's proxy it reaches, and a node lost and back. Every request is sent
// from node1's namespace (see NodeClient) to the nodes' own addresses.
func TestNodes(t *testing.T) {
	requireNodes(t)
	start := time.Now()
	t.Cleanup(func() { t.Logf("multi-node test took %.0fs", time.Since(start).Seconds()) })
	c := upCluster(t, 3)
	r := &nodesRun{c: c, b: c.startBrowser(t, 1)}

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"make images puts the same images on every node", r.testImages},
		{"make stack-deploy runs one proxy per node and spreads service1 over the nodes", r.testDeploy},
		{"a visitor counts on one replica whichever node's proxy it reaches", r.testStickyAcrossNodes},
		{"make stack-scale N=4 gives new visitors the new replica and keeps the others counting", r.testScale},
		{"make stack-update restarts every replica without a 5xx on any node's proxy", r.testRollingUpdate},
		{"a node cut off loses only its replicas' sessions, and swarm moves its replicas", r.testNodeLost},
		{"the node rejoins when healed and its proxy serves every replica", r.testNodeBack},
		{"make lab URL= measures the stack through one node's proxy", r.testLab},
	}
	for _, step := range steps {
		began := time.Now()
		ok := t.Run(step.name, step.run)
		t.Logf("%s: %.1fs", step.name, time.Since(began).Seconds())
		if !ok {
			return
		}
	}
}

// nodesRun is what the steps share: the cluster, the browser, the visitors.
type nodesRun struct {
	c *cluster
	b *browser
	// lost is the node testNodeLost cut off, 0 before.
	lost int
	// counting are visitors with a session on a replica that testNodeLost did not lose.
	counting []*nodeVisitor
	visitors int
}

// nodeVisitor is one browser's visitor: its cookies live in the NodeClient.
type nodeVisitor struct {
	name   string
	host   string // the replica it sticks to
	visits int    // its count so far
	cookie string // its connect.sid
}

func (r *nodesRun) newVisitor() *nodeVisitor {
	r.visitors++
	return &nodeVisitor{name: "v" + strconv.Itoa(r.visitors)}
}

// visit asks node k's proxy for /service1 as v and checks that the count goes on:
// visits+1 on v's replica (or, for a new visitor, 1 on any replica).
func (r *nodesRun) visit(v *nodeVisitor, k int) error {
	p, cookie, err := r.b.get(v.name, r.c.addr(k), "/service1")
	if err != nil {
		return err
	}
	v.cookie = cookie
	if v.host == "" {
		v.host = p.Host
	}
	if p.Host != v.host || p.Visits != v.visits+1 {
		return fmt.Errorf("%s through node%d's proxy: got %s with visits %d, want %s with visits %d",
			v.name, k, p.Host, p.Visits, v.host, v.visits+1)
	}
	v.visits++
	return nil
}

// reach asks node k's proxy (cycling over nodes) for /service1 without a cookie until
// n different replicas answered.
func (r *nodesRun) reach(t *testing.T, n int, nodes []int, within time.Duration) map[string]int {
	t.Helper()
	pattern := regexp.MustCompile(`^` + regexp.QuoteMeta(r.c.stack+"_service1") + `-[0-9]+$`)
	hosts := map[string]int{}
	i := 0
	eventually(t, within, fmt.Sprintf("new visitors reach %d replicas of service1 through node%v", n, nodes), func() error {
		k := nodes[i%len(nodes)]
		i++
		p, _, err := r.b.get("", r.c.addr(k), "/service1")
		if err != nil {
			return err
		}
		if !pattern.MatchString(p.Host) || p.Visits != 1 {
			t.Fatalf("a new visitor got %q with visits %d, want a host matching %s with visits 1", p.Host, p.Visits, pattern)
		}
		hosts[p.Host]++
		if len(hosts) < n {
			return fmt.Errorf("reached %v", slices.Sorted(maps.Keys(hosts)))
		}
		return nil
	})
	return hosts
}

func (r *nodesRun) all() []int {
	var ks []int
	for k := 1; k <= r.c.n; k++ {
		ks = append(ks, k)
	}
	return ks
}

func (r *nodesRun) testImages(t *testing.T) {
	c := r.c
	c.mustRun(5*time.Minute, c.script, "images")
	tag := c.version
	if tag == "" {
		tag = "latest"
	}
	for _, name := range []string{"service1", "service2", "proxy"} {
		image := "swarm-affinity/" + name + ":" + tag
		ids := map[string][]int{}
		for k := 1; k <= c.n; k++ {
			out, err := c.docker(k, "image", "inspect", "--format", "{{.Id}}", image)
			if err != nil {
				t.Fatalf("node%d has no %s: %v", k, image, err)
			}
			id := strings.TrimSpace(out)
			ids[id] = append(ids[id], k)
		}
		if len(ids) != 1 {
			t.Errorf("%s differs between the nodes: image ids %v, want one", image, ids)
		}
	}
}

func (r *nodesRun) testDeploy(t *testing.T) {
	c := r.c
	c.make(5*time.Minute, "stack-deploy", "REPLICAS=3")
	eventually(t, time.Minute, "one proxy runs on each node", func() error {
		ts, err := c.tasks("proxy")
		if err != nil {
			return err
		}
		per := map[int]int{}
		for _, tk := range ts {
			if tk.state == "Running" {
				per[tk.node]++
			}
		}
		for k := 1; k <= c.n; k++ {
			if per[k] != 1 {
				return fmt.Errorf("running proxies per node: %v, want 1 on each of node1..node%d", per, c.n)
			}
		}
		return nil
	})
	hosts, err := c.running("service1")
	if err != nil {
		t.Fatal(err)
	}
	if got := nodesOf(hosts); len(hosts) != 3 || !slices.Equal(got, r.all()) {
		t.Fatalf("service1's replicas run on %v, want its 3 replicas on nodes %v", hosts, r.all())
	}
	t.Logf("service1's replicas: %v", hosts)
	for k := 1; k <= c.n; k++ {
		for _, path := range []string{"/service1", "/service2"} {
			if _, _, err := r.b.get("", c.addr(k), path); err != nil {
				t.Errorf("node%d's proxy: %v", k, err)
			}
		}
	}
}

func (r *nodesRun) testStickyAcrossNodes(t *testing.T) {
	hosts, err := r.c.running("service1")
	if err != nil {
		t.Fatal(err)
	}
	reached := map[string]int{}
	for i := range 6 {
		v := r.newVisitor()
		var id string
		var path []string
		for visit := range 6 {
			k := (i+visit)%r.c.n + 1
			path = append(path, "node"+strconv.Itoa(k))
			if err := r.visit(v, k); err != nil {
				t.Fatalf("after %s: %v", strings.Join(path[:visit], ", "), err)
			}
			// The same server id whichever proxy set or read the cookie: they share its key.
			cookieID, _, _ := strings.Cut(v.cookie, "~")
			if visit == 0 {
				id = cookieID
			} else if cookieID != id {
				t.Fatalf("%s's cookie went from server id %q to %q through node%d", v.name, id, cookieID, k)
			}
		}
		reached[v.host]++
		r.counting = append(r.counting, v)
		t.Logf("%s counted 1 to 6 on %s (node%d) through %s", v.name, v.host, hosts[v.host], strings.Join(path, ", "))
	}
	if len(reached) < 2 {
		t.Errorf("6 new visitors all stuck to %v, want the proxies to spread them over the replicas", reached)
	}
}

func (r *nodesRun) testScale(t *testing.T) {
	r.c.make(3*time.Minute, "stack-scale", "SERVICE=service1", "N=4")
	hosts := r.reach(t, 4, r.all(), time.Minute)
	t.Logf("new visitors reached %v", hosts)
	for i, v := range r.counting {
		if err := r.visit(v, i%r.c.n+1); err != nil {
			t.Error(err)
		}
	}
}

func (r *nodesRun) testRollingUpdate(t *testing.T) {
	var service1, service2 load
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for k := 1; k <= r.c.n; k++ {
		for _, l := range []struct {
			load *load
			path string
		}{{&service1, "/service1"}, {&service2, "/service2"}} {
			wg.Add(1)
			go l.load.run(func() error { _, _, err := r.b.get("", r.c.addr(k), l.path); return err }, stop, &wg)
		}
	}
	r.c.make(5*time.Minute, "stack-update")
	close(stop)
	wg.Wait()
	t.Logf("service1 (new visitors) through the 3 proxies during the rolling update: %v", &service1)
	t.Logf("service2 through the 3 proxies during the rolling update: %v", &service2)
	for name, l := range map[string]*load{"service1": &service1, "service2": &service2} {
		if l.server5xx.Load() > 0 || l.failed.Load() > 0 {
			t.Errorf("%s during the rolling update: %v; want no 5xx and no failed request", name, l)
		}
		if l.ok.Load() < 50 {
			t.Errorf("%s answered only %d requests during the rolling update, want a steady load (50 or more)", name, l.ok.Load())
		}
	}
	// The sessions lived in the old replicas.
	r.counting = nil
}

// answer is what one visitor got during the cut.
type answer struct {
	host   string
	visits int
	err    error
}

func (r *nodesRun) testNodeLost(t *testing.T) {
	c := r.c
	hosts, err := c.running("service1")
	if err != nil {
		t.Fatal(err)
	}
	// The worker holding the most replicas of service1 (node1 is the only manager).
	lost, most := 0, 0
	for k := 2; k <= c.n; k++ {
		n := 0
		for _, on := range hosts {
			if on == k {
				n++
			}
		}
		if n > most {
			lost, most = k, n
		}
	}
	if lost == 0 {
		t.Fatalf("no worker runs a replica of service1 (%v): nothing to lose", hosts)
	}
	var live []int
	for k := 1; k <= c.n; k++ {
		if k != lost {
			live = append(live, k)
		}
	}

	// Visitors with a session, through the live nodes' proxies, until some live on the
	// node about to be lost and some elsewhere.
	var onLost, onLive []*nodeVisitor
	for i := 0; len(onLost) < 2 || len(onLive) < 2; i++ {
		if i == 40 {
			t.Fatalf("40 new visitors: %d on node%d's replicas, %d on the others; want 2 of each", len(onLost), lost, len(onLive))
		}
		v := r.newVisitor()
		for range 2 {
			if err := r.visit(v, live[i%len(live)]); err != nil {
				t.Fatal(err)
			}
		}
		if hosts[v.host] == lost {
			onLost = append(onLost, v)
		} else {
			onLive = append(onLive, v)
		}
	}

	cut := time.Now()
	c.mustRun(30*time.Second, c.script, "cut", strconv.Itoa(lost))
	r.lost = lost

	// Every visitor keeps browsing through the live nodes' proxies until swarm has moved
	// the lost replicas and everyone has had a few answers.
	var mu sync.Mutex
	answers := map[*nodeVisitor][]answer{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, v := range append(slices.Clone(onLost), onLive...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for j := i; ; j++ {
				p, _, err := r.b.get(v.name, c.addr(live[j%len(live)]), "/service1")
				mu.Lock()
				answers[v] = append(answers[v], answer{host: p.Host, visits: p.Visits, err: err})
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	var down, moved time.Duration
	eventually(t, 2*time.Minute, fmt.Sprintf("swarm marks node%d down and runs 4 replicas of service1 on nodes %v", lost, live), func() error {
		status, err := c.nodeStatus(lost)
		if err != nil {
			return err
		}
		if status != "Down" {
			return fmt.Errorf("node%d is %s", lost, status)
		}
		if down == 0 {
			down = time.Since(cut)
		}
		now, err := c.running("service1")
		if err != nil {
			return err
		}
		if len(now) != 4 || slices.Contains(nodesOf(now), lost) {
			return fmt.Errorf("service1 runs %v", now)
		}
		moved = time.Since(cut)
		hosts = now
		return nil
	})
	eventually(t, 30*time.Second, "every visitor answered 5 times since the cut", func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range append(slices.Clone(onLost), onLive...) {
			good := 0
			for _, a := range answers[v] {
				if a.err == nil {
					good++
				}
			}
			if good < 5 {
				return fmt.Errorf("%s: %d good answers", v.name, good)
			}
		}
		return nil
	})
	close(stop)
	wg.Wait()
	t.Logf("node%d cut off: marked down after %.1fs, its replicas running elsewhere after %.1fs: %v",
		lost, down.Seconds(), moved.Seconds(), hosts)

	for _, v := range onLive {
		for _, a := range answers[v] {
			if a.err != nil {
				t.Errorf("%s, whose replica %s was not lost: %v", v.name, v.host, a.err)
				break
			}
			if a.host != v.host || a.visits != v.visits+1 {
				t.Errorf("%s, whose replica %s was not lost: got %s with visits %d, want %s with visits %d",
					v.name, v.host, a.host, a.visits, v.host, v.visits+1)
				break
			}
			v.visits++
		}
	}
	for _, v := range onLost {
		was := v.host
		restarted := false
		var failed []string
	replies:
		for _, a := range answers[v] {
			switch {
			case a.err != nil && !restarted:
				// Waiting for the proxy to give up on the lost replica is allowed.
				failed = append(failed, a.err.Error())
				continue
			case a.err != nil:
				t.Errorf("%s after it restarted on %s: %v", v.name, v.host, a.err)
			case !restarted && a.visits != 1:
				t.Errorf("%s, whose replica %s was lost: first answer %s with visits %d, want visits 1 (a new session)",
					v.name, was, a.host, a.visits)
			case !restarted:
				restarted = true
				v.host, v.visits = a.host, 1
				continue
			case a.host != v.host || a.visits != v.visits+1:
				t.Errorf("%s after it restarted: got %s with visits %d, want %s with visits %d",
					v.name, a.host, a.visits, v.host, v.visits+1)
			default:
				v.visits++
				continue
			}
			break replies
		}
		if !restarted {
			t.Errorf("%s, whose replica %s was lost: never started again (%d answers, failures %q)", v.name, was, len(answers[v]), failed)
			continue
		}
		t.Logf("%s: its replica %s (node%d) lost; %d failed requests before it started again at 1 on %s (%v)",
			v.name, was, lost, len(failed), v.host, failed)
	}
	r.counting = onLive

	// The moved replicas serve: the live proxies find them by DNS.
	r.reach(t, 4, live, time.Minute)
}

func (r *nodesRun) testNodeBack(t *testing.T) {
	c := r.c
	if r.lost == 0 {
		t.Fatal("no node was cut off")
	}
	k := r.lost
	c.mustRun(30*time.Second, c.script, "heal", strconv.Itoa(k))
	eventually(t, 2*time.Minute, fmt.Sprintf("node%d is Ready again", k), func() error {
		status, err := c.nodeStatus(k)
		if err != nil {
			return err
		}
		if status != "Ready" {
			return fmt.Errorf("node%d is %s", k, status)
		}
		return nil
	})
	// The replicas swarm moved away are not run twice: node k stops its old ones.
	eventually(t, time.Minute, "4 service1 containers run on all the nodes together", func() error {
		per := map[int]int{}
		total := 0
		for n := 1; n <= c.n; n++ {
			out, err := c.docker(n, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+c.stack+"_service1")
			if err != nil {
				return err
			}
			per[n] = len(strings.Fields(out))
			total += per[n]
		}
		if total != 4 {
			return fmt.Errorf("service1 containers per node: %v", per)
		}
		return nil
	})
	// Its (new) proxy finds every replica, on the other nodes, through the overlay.
	r.reach(t, 4, []int{k}, 2*time.Minute)
	for _, v := range r.counting {
		if err := r.visit(v, k); err != nil {
			t.Error(err)
		}
	}
}

// labResults is the part of the lab's results.json the test reads.
type labResults struct {
	Arms []struct {
		Name     string   `json:"name"`
		Replicas []string `json:"replicas"`
		Summary  struct {
			Requests   int `json:"requests"`
			Failed     int `json:"failed"`
			Continuity struct {
				Continued int `json:"continued"`
				Pairs     int `json:"pairs"`
			} `json:"continuity"`
		} `json:"summary"`
	} `json:"arms"`
}

func (r *nodesRun) testLab(t *testing.T) {
	c := r.c
	url := "http://" + c.addr(2)
	out := c.mustRun(5*time.Minute, c.script, "exec", "1", "make", "--no-print-directory", "-C", c.root,
		"lab", "URL="+url, "CLIENTS=12", "REQUESTS=8")
	m := regexp.MustCompile(`(?m)^Report: (\S+)/report\.html`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("make lab printed no Report: line")
	}
	dir := m[1]
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(c.root, dir)
	}
	t.Cleanup(func() {
		os.RemoveAll(dir)
		os.Remove(filepath.Dir(dir)) // lab-results/, if the lab made it and nothing else is in it
	})
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res labResults
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("%s/results.json: %v", dir, err)
	}
	arms := map[string]bool{}
	for _, a := range res.Arms {
		arms[a.Name] = true
		s := a.Summary
		if s.Requests == 0 || s.Failed != 0 {
			t.Errorf("lab arm %s through %s: %d requests, %d failed; want some and none failed", a.Name, url, s.Requests, s.Failed)
		}
		if a.Name == "sticky" && (s.Continuity.Pairs == 0 || s.Continuity.Continued != s.Continuity.Pairs) {
			t.Errorf("lab arm sticky through %s: %d of %d visits continued the count, want all", url, s.Continuity.Continued, s.Continuity.Pairs)
		}
		if a.Name == "sticky" && len(a.Replicas) < 2 {
			t.Errorf("lab arm sticky through %s answered from %v, want several replicas", url, a.Replicas)
		}
	}
	if !arms["sticky"] || !arms["neither"] {
		t.Errorf("the lab measured the arms %v through %s, want sticky (/service1) and neither (/service2)", slices.Sorted(maps.Keys(arms)), url)
	}
}
