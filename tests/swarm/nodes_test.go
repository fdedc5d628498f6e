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
	b *nodeBrowser
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
	// make stack-deploy waits for the proxy it reaches on this node; the others may
	// still be seeing their servers rise (two checks, 2 s apart) and answer 503 until.
	for k := 1; k <= c.n; k++ {
		for _, path := range []string{"/service1", "/service2"} {
			eventually(t, 30*time.Second, fmt.Sprintf("node%d's proxy serves %s", k, path), func() error {
				_, _, err := r.b.get("", c.addr(k), path)
				return err
			})
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
