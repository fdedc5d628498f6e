package swarm

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

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
		checkKept(t, v, answers[v])
	}
	for _, v := range onLost {
		checkRestarted(t, v, answers[v], lost)
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

// checkKept checks the answers of a visitor whose replica was not lost: every one came,
// from its replica, with the count going on.
func checkKept(t *testing.T, v *nodeVisitor, answers []answer) {
	t.Helper()
	for _, a := range answers {
		if a.err != nil {
			t.Errorf("%s, whose replica %s was not lost: %v", v.name, v.host, a.err)
			return
		}
		if a.host != v.host || a.visits != v.visits+1 {
			t.Errorf("%s, whose replica %s was not lost: got %s with visits %d, want %s with visits %d",
				v.name, v.host, a.host, a.visits, v.host, v.visits+1)
			return
		}
		v.visits++
	}
}

// checkRestarted checks the answers of a visitor whose replica was on the lost node: no
// failure, then a new session (visits 1) on a live replica, which goes on counting
// there. A request the proxy had already sent to the lost replica is given up on once
// the proxy's checks mark the replica down, and goes to a live one (a GET may be sent
// again): it is late (the checks take a few seconds), not lost.
func checkRestarted(t *testing.T, v *nodeVisitor, answers []answer, lost int) {
	t.Helper()
	was := v.host
	restarted := false
	for _, a := range answers {
		switch {
		case a.err != nil && !restarted:
			t.Errorf("%s, whose replica %s was lost: a request failed before it started again, want none: %v",
				v.name, was, a.err)
			return
		case a.err != nil:
			t.Errorf("%s after it restarted on %s: %v", v.name, v.host, a.err)
			return
		case !restarted && a.visits != 1:
			t.Errorf("%s, whose replica %s was lost: first answer %s with visits %d, want visits 1 (a new session)",
				v.name, was, a.host, a.visits)
			return
		case !restarted:
			restarted = true
			v.host, v.visits = a.host, 1
		case a.host != v.host || a.visits != v.visits+1:
			t.Errorf("%s after it restarted: got %s with visits %d, want %s with visits %d",
				v.name, a.host, a.visits, v.host, v.visits+1)
			return
		default:
			v.visits++
		}
	}
	if !restarted {
		t.Errorf("%s, whose replica %s was lost: never started again (%d answers)", v.name, was, len(answers))
		return
	}
	t.Logf("%s: its replica %s (node%d) lost; no request failed, it started again at 1 on %s", v.name, was, lost, v.host)
}
