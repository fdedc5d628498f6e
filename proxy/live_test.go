package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/live"
)

// liveView reads the admin port's /live/events and keeps what a page would
// show: every visitor's last state, each server's, and the events, plus every
// byte of the stream to check what it never holds.
type liveView struct {
	mu       sync.Mutex
	raw      strings.Builder
	visitors map[string]live.VisitorState // by name
	servers  map[string]string            // id -> state
	modes    map[string]string            // service -> "cookie | balance"
	events   []live.Event
	messages int
}

func watchLive(t *testing.T, adm string) *liveView {
	t.Helper()
	resp, err := http.Get(adm + "/live/events")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("GET /live/events: %s", resp.Status)
	}
	v := &liveView{visitors: map[string]live.VisitorState{}, servers: map[string]string{}, modes: map[string]string{}}
	go func() {
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			v.mu.Lock()
			v.raw.WriteString(line)
			if data, ok := strings.CutPrefix(line, "data: "); ok && strings.HasPrefix(data, "{\"full\"") {
				var m live.Message
				if err := json.Unmarshal([]byte(data), &m); err != nil {
					t.Errorf("a message that is not JSON: %v", err)
				}
				v.apply(m)
			}
			v.mu.Unlock()
		}
	}()
	v.until(t, "the first message", func() bool { return v.messages > 0 })
	return v
}

func (v *liveView) apply(m live.Message) {
	v.messages++
	if m.Full {
		clear(v.visitors)
	}
	clear(v.servers)
	for _, s := range m.Services {
		v.modes[s.Name] = s.Cookie + " | " + s.Balance
		for _, sv := range s.Servers {
			v.servers[sv.ID] = sv.State
		}
		for _, vs := range s.Visitors {
			v.visitors[vs.V] = vs
		}
	}
	for _, ev := range m.Events {
		if len(v.events) == 0 || ev.Seq > v.events[len(v.events)-1].Seq {
			v.events = append(v.events, ev)
		}
	}
}

// until polls cond, under the view's lock, until it holds or 10 s pass.
func (v *liveView) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	_, err := probe.Within(10*time.Second, what, func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return cond()
	})
	if err != nil {
		v.mu.Lock()
		defer v.mu.Unlock()
		t.Fatalf("timed out waiting for %s; visitors %+v, servers %v, events %+v", what, v.visitors, v.servers, v.events)
	}
}

func (v *liveView) hasEvent(kind, server string) bool {
	for _, ev := range v.events {
		if ev.Kind == kind && ev.Server == server {
			return true
		}
	}
	return false
}

// serverID is the id /stats gives the server at addr.
func serverID(t *testing.T, adm, addr string) string {
	t.Helper()
	for _, s := range stats(t, adm).Services {
		for _, sv := range s.Servers {
			if sv.Address == addr {
				return sv.ID
			}
		}
	}
	t.Fatalf("no server at %s in /stats", addr)
	return ""
}

func TestLiveShowsVisitorsMovingWhenTheirServerDies(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		a, b := startCountServer(t, "a", "127.0.0.1:0"), startCountServer(t, "b", "127.0.0.1:0")
		_, front, adm := startApp(t, engine, fmt.Sprintf("check: {interval: 20ms, fall: 1}\nservices:\n  service1:\n    servers: \"%s, %s\"\n    cookie: connect.sid prefix nocache\n", a.addr, b.addr), nil)
		idA, idB := serverID(t, adm, a.addr), serverID(t, adm, b.addr)
		view := watchLive(t, adm)

		// Four visitors, two requests each: two on a, two on b.
		var browsers []*visitor
		var cookies []string
		for range 4 {
			br := newVisitor(t)
			br.get(front + "/service1")
			br.get(front + "/service1")
			browsers = append(browsers, br)
			c, _ := br.b.Cookie(front+"/service1", "connect.sid")
			cookies = append(cookies, c)
		}
		onA := map[string]bool{}
		view.until(t, "4 visitors with 2 requests each", func() bool {
			clear(onA)
			n := 0
			for name, vs := range view.visitors {
				if vs.N == 2 && vs.From == "" {
					n++
				}
				if vs.Server == idA {
					onA[name] = true
				}
			}
			return n == 4 && len(onA) == 2
		})

		a.srv.Close()
		for _, br := range browsers {
			br.get(front + "/service1")
			br.get(front + "/service1") // with the new cookie, if it moved
		}
		view.until(t, "a down, and its 2 visitors on b, moved from a", func() bool {
			if view.servers[idA] != "down" || !view.hasEvent("down", idA) {
				return false
			}
			for name := range onA {
				vs := view.visitors[name]
				if vs.Server != idB || vs.From != idA || vs.N != 4 {
					return false
				}
			}
			return len(view.visitors) == 4 // the moved ones kept their names
		})

		view.mu.Lock()
		raw := view.raw.String()
		view.mu.Unlock()
		for _, c := range cookies {
			_, session, _ := strings.Cut(c, "~")
			if strings.Contains(raw, c) || strings.Contains(raw, session) {
				t.Errorf("the stream holds a cookie value (%q)", c)
			}
		}
		for _, addr := range []string{a.addr, b.addr, "127.0.0.1"} {
			if strings.Contains(raw, addr) {
				t.Errorf("the stream holds an address (%s)", addr)
			}
		}
	})
}

func TestLiveNamesInsertModeVisitorsApartThoughTheyShareTheirServersCookie(t *testing.T) {
	// In insert mode every visitor of a server carries the same SRV=<id>: the
	// view must not take them for one visitor.
	eachEngine(t, func(t *testing.T, engine string) {
		a, b := startCountServer(t, "a", "127.0.0.1:0"), startCountServer(t, "b", "127.0.0.1:0")
		_, front, adm := startApp(t, engine, fmt.Sprintf("services:\n  service1:\n    servers: \"%s, %s\"\n    cookie: SRV insert indirect nocache\n", a.addr, b.addr), nil)
		view := watchLive(t, adm)
		for range 4 {
			br := newVisitor(t)
			br.get(front + "/service1")
			br.get(front + "/service1")
			if c, _ := br.b.Cookie(front+"/service1", "SRV"); c == "" {
				t.Fatal("no SRV cookie inserted")
			}
		}
		view.until(t, "4 visitors with 2 requests each, and the service's rule", func() bool {
			n := 0
			for _, vs := range view.visitors {
				if vs.N == 2 {
					n++
				}
			}
			return n == 4 && len(view.visitors) == 4 && view.modes["service1"] == "SRV insert indirect nocache | roundrobin"
		})
	})
}

func TestLiveShowsServersJoiningAndLeaving(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		first := startCountServer(t, "t1", "127.0.0.1:0")
		_, port, _ := net.SplitHostPort(first.addr)
		startCountServer(t, "t2", "127.0.0.2:"+port)
		dns := &fakeDNS{m: map[string][]string{"tasks.service1": {"127.0.0.1"}}}
		a, _, adm := startApp(t, engine, "resolve_interval: 10ms\nservices:\n  service1:\n    servers: tasks.service1:"+port+"\n", dns)
		view := watchLive(t, adm)
		id1, id2 := a.ids.ID("127.0.0.1:"+port), a.ids.ID("127.0.0.2:"+port)

		dns.set("tasks.service1", "127.0.0.2")
		view.until(t, "t2 joined, t1 draining then gone", func() bool {
			return view.hasEvent("joined", id2) && view.hasEvent("draining", id1) && view.hasEvent("left", id1) &&
				view.servers[id2] == "up" && view.servers[id1] == ""
		})
	})
}
