package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
)

func TestTutorialThroughTheProxy(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s1a, s1b := startCountServer(t, "s1a", "127.0.0.1:0"), startCountServer(t, "s1b", "127.0.0.1:0")
		s2a, s2b := startCountServer(t, "s2a", "127.0.0.1:0"), startCountServer(t, "s2b", "127.0.0.1:0")
		_, front, adm := startApp(t, engine, fmt.Sprintf(`services:
  service1:
    servers: "%s, %s"
    cookie: "connect.sid prefix nocache"
    health_check: /healthz
  service2:
    servers: [%q, %q]
`, s1a.addr, s1b.addr, s2a.addr, s2b.addr), nil)

		// service1: sticky, the counter goes up on one replica.
		b := newVisitor(t)
		_, body, sc := b.get(front + "/service1")
		name, _, _ := strings.Cut(body, " ")
		if !strings.HasSuffix(body, " 1") || !strings.Contains(sc, "~s:") {
			t.Fatalf("first visit %q, Set-Cookie %q", body, sc)
		}
		for i := 2; i <= 5; i++ {
			if _, body, _ := b.get(front + "/service1"); body != fmt.Sprintf("%s %d", name, i) {
				t.Fatalf("visit %d: %q, want %s %d", i, body, name, i)
			}
		}
		// service2: not sticky, alternates, the cookie is passed as it is.
		c := newVisitor(t)
		seen := map[string]bool{}
		for range 4 {
			_, body, sc := c.get(front + "/service2")
			n, _, _ := strings.Cut(body, " ")
			seen[n] = true
			if strings.Contains(sc, "~") {
				t.Errorf("service2 (no cookie setting) got a prefixed cookie %q", sc)
			}
		}
		if len(seen) != 2 {
			t.Errorf("service2 answered from %v, want both replicas", seen)
		}

		st := stats(t, adm)
		if len(st.Services) != 2 || st.Services[0].Name != "service1" {
			t.Fatalf("stats %+v", st)
		}
		s := st.Services[0]
		if s.Sticky.Hits != 4 || s.Sticky.New != 1 || s.Cookie != "connect.sid" {
			t.Errorf("service1 sticky %+v, want 4 hits 1 new", s.Sticky)
		}
		var total uint64
		for _, sv := range s.Servers {
			total += sv.Requests
			if sv.State != "up" || len(sv.ID) != backend.IDLen {
				t.Errorf("server %+v", sv)
			}
		}
		if total != 5 {
			t.Errorf("service1 servers answered %d requests, want 5", total)
		}

		resp, err := http.Get(adm + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`proxy_sticky_total{outcome="hit",service="service1"} 4`, `proxy_responses_total{code="2xx",service="service2"} 4`} {
			if !bytes.Contains(metrics, []byte(want)) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		if resp, _ := http.Get(adm + "/readyz"); resp.StatusCode != 200 {
			t.Errorf("/readyz %d", resp.StatusCode)
		}
	})
}

func TestErrorsAndHeaders(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s := startCountServer(t, "s", "127.0.0.1:0")
		_, front, _ := startApp(t, engine, fmt.Sprintf("services:\n  service1:\n    servers: %q\n", s.addr), nil)

		resp, err := http.Get(front + "/other?x=<b>")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || string(body) != "no route for /other\n" {
			t.Errorf("no route: %d %q", resp.StatusCode, body)
		}

		// Oversized headers: 431, and the proxy keeps working.
		req, _ := http.NewRequest("GET", front+"/service1", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 2<<20))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("2 MiB of headers: %d, want 431", resp.StatusCode)
		}

		req, _ = http.NewRequest("GET", front+"/service1", nil)
		req.Header.Set("X-Forwarded-For", "198.51.100.1")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := s.header().Get("X-Forwarded-For"); got != "198.51.100.1, 127.0.0.1" {
			t.Errorf("X-Forwarded-For %q, want the client appended", got)
		}
	})
}

func TestKilledReplicaClientsMove(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		a, b := startCountServer(t, "a", "127.0.0.1:0"), startCountServer(t, "b", "127.0.0.1:0")
		_, front, adm := startApp(t, engine, fmt.Sprintf("services:\n  service1:\n    servers: \"%s, %s\"\n    cookie: connect.sid prefix nocache\n", a.addr, b.addr), nil)
		var browsers []*visitor
		for range 4 {
			br := newVisitor(t)
			br.get(front + "/service1")
			br.get(front + "/service1")
			browsers = append(browsers, br)
		}
		a.srv.Close()
		for _, br := range browsers {
			status, body, sc := br.get(front + "/service1")
			if status != 200 {
				t.Fatalf("after the kill: %d %q", status, body)
			}
			if body != "b 3" && body != "b 1" {
				t.Errorf("after the kill: %q, want b 3 (was on b) or b 1 (moved)", body)
			}
			if body == "b 1" && !strings.Contains(sc, "~") {
				t.Errorf("moved client got Set-Cookie %q, want a prefixed one", sc)
			}
		}
		st := stats(t, adm).Services[0]
		if st.Sticky.Rebalanced != 2 || st.Responses["5xx"] != 0 {
			t.Errorf("stats %+v, want 2 rebalanced and no 5xx", st)
		}
		for _, sv := range st.Servers {
			if sv.Address == a.addr && (sv.State != "down" || sv.Failures == 0) {
				t.Errorf("killed server %+v, want down with failures", sv)
			}
		}
	})
}

func TestDNSAnswersAddAndRemoveServers(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		// Three "tasks" on one port, on 127.0.0.1, .2 and .3 as DNS answers them.
		first := startCountServer(t, "t1", "127.0.0.1:0")
		_, port, _ := net.SplitHostPort(first.addr)
		startCountServer(t, "t2", "127.0.0.2:"+port)
		startCountServer(t, "t3", "127.0.0.3:"+port)
		dns := &fakeDNS{m: map[string][]string{"tasks.service1": {"127.0.0.1", "127.0.0.2"}}}
		_, front, adm := startApp(t, engine, "resolve_interval: 10ms\nservices:\n  service1:\n    servers: tasks.service1:"+port+"\n", dns)

		servers := func() []string {
			var out []string
			for _, s := range stats(t, adm).Services[0].Servers {
				out = append(out, s.Address+" "+s.State)
			}
			return out
		}
		if got := servers(); !slices.Equal(got, []string{"127.0.0.1:" + port + " up", "127.0.0.2:" + port + " up"}) {
			t.Fatalf("servers %v", got)
		}
		dns.set("tasks.service1", "127.0.0.2", "127.0.0.3")
		eventually(t, "127.0.0.3 joins and 127.0.0.1 leaves", func() bool {
			return slices.Equal(servers(), []string{"127.0.0.2:" + port + " up", "127.0.0.3:" + port + " up"})
		})
		seen := map[string]bool{}
		for range 4 {
			_, body, _ := (newVisitor(t)).get(front + "/service1")
			n, _, _ := strings.Cut(body, " ")
			seen[n] = true
		}
		if !seen["t2"] || !seen["t3"] || seen["t1"] {
			t.Errorf("answered by %v, want t2 and t3 only", seen)
		}
		dns.set("tasks.service1")
		eventually(t, "every server leaves", func() bool { return len(servers()) == 0 })
		status, body, _ := (newVisitor(t)).get(front + "/service1")
		if status != 503 || body != "no server available for service1\n" {
			t.Errorf("with no server: %d %q", status, body)
		}
	})
}

func TestRestartedReplicaComesBackAfterRiseChecks(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		a, b := startCountServer(t, "a", "127.0.0.1:0"), startCountServer(t, "b", "127.0.0.1:0")
		_, front, adm := startApp(t, engine, fmt.Sprintf("check: {interval: 20ms, rise: 2, fall: 2}\nservices:\n  service1:\n    servers: \"%s, %s\"\n    health_check: /healthz\n", a.addr, b.addr), nil)
		state := func(addr string) string {
			for _, s := range stats(t, adm).Services[0].Servers {
				if s.Address == addr {
					return s.State
				}
			}
			return "missing"
		}
		a.srv.Close()
		eventually(t, "the checks mark a down", func() bool { return state(a.addr) == "down" })
		for range 4 {
			if _, body, _ := (newVisitor(t)).get(front + "/service1"); !strings.HasPrefix(body, "b ") {
				t.Fatalf("with a down: %q", body)
			}
		}
		startCountServer(t, "a again", a.addr)
		eventually(t, "the checks bring a back", func() bool { return state(a.addr) == "up" })
		seen := map[string]bool{}
		for range 4 {
			_, body, _ := (newVisitor(t)).get(front + "/service1")
			seen[strings.TrimRight(body, " 0123456789")] = true
		}
		if !seen["a again"] {
			t.Errorf("the restarted replica got no traffic: %v", seen)
		}
	})
}

func TestReloadAddsChangesAndRemovesServices(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s1, s2 := startCountServer(t, "one", "127.0.0.1:0"), startCountServer(t, "two", "127.0.0.1:0")
		a, front, adm := startApp(t, engine, fmt.Sprintf("services:\n  service1:\n    servers: %q\n    cookie: connect.sid prefix\n", s1.addr), nil)
		br := newVisitor(t)
		br.get(front + "/service1")
		br.get(front + "/service1")

		cfg, err := config.Parse("reload.yaml", []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
access_log: false
services:
  service1:
    servers: %q
    cookie: connect.sid prefix
    balance: leastconn
  service2:
    virtual_host: "*/two/*"
    servers: %q
`, s1.addr, s2.addr)))
		if err != nil {
			t.Fatal(err)
		}
		a.apply(cfg)
		if _, body, _ := br.get(front + "/service1"); body != "one 3" {
			t.Errorf("service1 after the reload: %q, want one 3 (session and server kept)", body)
		}
		if _, body, _ := (newVisitor(t)).get(front + "/two/x"); body != "two 1" {
			t.Errorf("the added service: %q", body)
		}
		st := stats(t, adm)
		if len(st.Services) != 2 || st.Services[0].Balance != "leastconn" || st.Services[0].Sticky.Hits != 2 {
			t.Errorf("stats after the reload: %+v", st.Services)
		}

		cfg2, _ := config.Parse("reload.yaml", []byte(fmt.Sprintf("services:\n  service2:\n    virtual_host: \"*/two/*\"\n    servers: %q\n", s2.addr)))
		a.apply(cfg2)
		if status, _, _ := br.get(front + "/service1"); status != 404 {
			t.Errorf("a removed service answers %d, want 404", status)
		}
		if n := len(stats(t, adm).Services); n != 1 {
			t.Errorf("%d services after removing one, want 1", n)
		}
	})
}

func TestAddressesChangingFasterThanTheCheckIntervalLeaveTheChecksRunning(t *testing.T) {
	// Discovery docker hands the proxy new addresses at every task change of a
	// rolling update. Were each to restart the checks, changes coming faster than
	// check.interval would put their rounds off for as long as they come: a dead
	// server would never be marked down.
	live := startCountServer(t, "live", "127.0.0.1:0")
	dead, other := freeAddr(t), freeAddr(t) // nothing listens on them
	yaml := func(servers string) string {
		return fmt.Sprintf("check: {interval: 100ms, fall: 1}\nservices:\n  service1:\n    servers: %q\n", servers)
	}
	a, _, adm := startApp(t, "fast", yaml(live.addr+", "+dead), nil)
	state := func(addr string) string {
		for _, s := range stats(t, adm).Services[0].Servers {
			if s.Address == addr {
				return s.State
			}
		}
		return "missing"
	}
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; state(dead) != "down"; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%s still %s after %d changes of addresses in 5s: the checks never ran", dead, state(dead), i)
		}
		servers := live.addr + ", " + dead
		if i%2 == 0 {
			servers += ", " + other
		}
		cfg, err := config.Parse("reload.yaml", []byte("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\naccess_log: false\n"+yaml(servers)))
		if err != nil {
			t.Fatal(err)
		}
		a.apply(cfg)
		time.Sleep(20 * time.Millisecond) // changes at this pace, faster than the checks: what the test is about
	}
}
