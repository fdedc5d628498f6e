package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/swarm/swarmtest"
)

// dropin is the whole proxy (runReloading) with discovery docker against the fake
// engine serving a recorded swarm whose tasks are real servers on 127.0.0.0/8 (one
// address per task, the port of SERVICE_PORTS), as in the overlay network.
type dropin struct {
	engine      *swarmtest.Engine
	front, adm  string
	logs        *proc.Buffer
	hup         chan os.Signal
	done        chan error
	port        string
	ips         []string // the next free addresses, for new tasks
	release     chan struct{}
	releaseOnce sync.Once
}

var dropinBlocks atomic.Int32

// startDropin runs the proxy on the recording dir until the test ends. Its tasks move
// to 127.<r>.<r>.2, .3, ... in the recording's order; env adds to the proxy's own.
func startDropin(t *testing.T, dir string, env map[string]string) *dropin {
	t.Helper()
	d := &dropin{engine: swarmtest.Start(t, dir), logs: &proc.Buffer{}, hup: make(chan os.Signal, 1), done: make(chan error, 1), release: make(chan struct{})}
	t.Cleanup(func() { d.releaseOnce.Do(func() { close(d.release) }) })
	free, err := proc.FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, d.port, _ = net.SplitHostPort(free)
	// A /24 of loopback of this test's own, so that parallel tests never share a server.
	block := dropinBlocks.Add(1)
	for i := 2; i < 60; i++ {
		d.ips = append(d.ips, fmt.Sprintf("127.%d.%d.%d", 10+os.Getpid()%200, block, i))
	}
	var proxyContainer string
	d.engine.Edit(func(s *swarmtest.State) {
		proxyContainer = s.ProxyContainer()[:12]
		for _, name := range []string{"service1", "service2"} {
			s.SetEnv(name, "SERVICE_PORTS", d.port)
			for _, task := range s.TasksOf(name) {
				swarmtest.SetAddress(task, d.startTask(t, name))
			}
		}
	})
	listen, adm := freeAddr(t), freeAddr(t)
	d.front, d.adm = "http://"+listen, "http://"+adm
	vars := map[string]string{
		"PROXY_DISCOVERY": "docker", "DOCKER_HOST": d.engine.Host(), "HOSTNAME": proxyContainer,
		"LISTEN": listen, "ADMIN": adm, "SERVER_ID_KEY": "drop-in test key 0123456789",
		"SWARM_MODE_POLLING_INTERVAL": "1",
	}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		d.done <- runReloading(ctx, nil, func(k string) string { return vars[k] }, io.Discard, d.logs, d.hup)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-d.done; err != nil {
			t.Errorf("the proxy ended with %v", err)
		}
	})
	eventually(t, "the proxy answers", func() bool {
		resp, err := http.Get(d.adm + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return d
}

// startTask starts the server of one more task of service and returns its address.
// It answers "<service> <addr> <visits>" with a session in connect.sid, as the
// tutorial's services do; ?slow waits for the end of the test.
func (d *dropin) startTask(t *testing.T, service string) string {
	t.Helper()
	ip := d.ips[0]
	d.ips = d.ips[1:]
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, d.port))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	sessions := map[string]int{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("slow") {
			<-d.release
		}
		mu.Lock()
		defer mu.Unlock()
		sid := ""
		if c, err := r.Cookie("connect.sid"); err == nil && sessions[c.Value] > 0 {
			sid = c.Value
		}
		if sid == "" {
			sid = fmt.Sprintf("s%d", len(sessions)+1)
			http.SetCookie(w, &http.Cookie{Name: "connect.sid", Value: sid, Path: "/"})
		}
		sessions[sid]++
		fmt.Fprintf(w, "%s %s %d", service, ip, sessions[sid])
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ip
}

// answer is a page of a task: which task answered and the visit count.
type answer struct {
	service, task string
	visits        int
}

func (v *visitor) page(url string) (answer, int) {
	v.t.Helper()
	status, body, _ := v.get(url)
	var a answer
	fmt.Sscanf(body, "%s %s %d", &a.service, &a.task, &a.visits)
	return a, status
}

func TestDropinRunsThe2018Stack(t *testing.T) {
	t.Parallel()
	d := startDropin(t, swarmtest.Dir("2018"), nil)

	t.Run("service1 sticks to one task and counts", func(t *testing.T) {
		v := newVisitor(t)
		first, _ := v.page(d.front + "/service1")
		for visit := 2; visit <= 4; visit++ {
			a, status := v.page(d.front + "/service1")
			if status != 200 || a.task != first.task || a.visits != visit {
				t.Fatalf("visit %d: got %d %+v, want 200 from %s with visits %d", visit, status, a, first.task, visit)
			}
		}
	})
	t.Run("service2 spreads one client over its tasks", func(t *testing.T) {
		v := newVisitor(t)
		seen := map[string]bool{}
		for range 4 {
			a, status := v.page(d.front + "/service2")
			if status != 200 || a.service != "service2" {
				t.Fatalf("got %d %+v, want 200 from service2", status, a)
			}
			seen[a.task] = true
		}
		if len(seen) != 2 {
			t.Errorf("4 requests reached %v, want both tasks of service2", seen)
		}
	})
	t.Run("a path the stack does not route is 404", func(t *testing.T) {
		if _, status := newVisitor(t).page(d.front + "/service1/page"); status != 404 {
			t.Errorf("got %d, want 404 (VIRTUAL_HOST=*/service1 is that path only)", status)
		}
	})
}

func TestDropinFollowsTheSwarm(t *testing.T) {
	t.Parallel()
	d := startDropin(t, swarmtest.Dir("2018"), map[string]string{"SWARM_MODE_POLLING_INTERVAL": "1"})

	t.Run("an update event changes the routes within a second, without dropping a request", func(t *testing.T) {
		inFlight := make(chan int, 1)
		go func() {
			resp, err := http.Get(d.front + "/service2?slow=1")
			if err != nil {
				inFlight <- 0
				return
			}
			resp.Body.Close()
			inFlight <- resp.StatusCode
		}()
		eventually(t, "the slow request reaches service2", func() bool {
			return strings.Contains(getBody(t, d.adm+"/stats?format=text"), "active 1 ")
		})
		var id string
		d.engine.Edit(func(s *swarmtest.State) {
			s.SetEnv("service2", "VIRTUAL_HOST", "*/service2, */service2/*, */two")
			id = s.ServiceID("service2")
		})
		v := newVisitor(t)
		d.engine.Event(swarmtest.ServiceEvent("update", id, "dropin_service2"))
		took, err := probe.Within(time.Second, "/two routed to service2", func() bool {
			a, status := v.page(d.front + "/two")
			return status == 200 && a.service == "service2"
		})
		if err != nil {
			t.Fatalf("/two not routed to service2 within 1s of the event")
		}
		t.Logf("routed %v after the event", took)
		d.releaseOnce.Do(func() { close(d.release) })
		if status := <-inFlight; status != 200 {
			t.Errorf("the request in flight during the change got %d, want 200", status)
		}
	})

	t.Run("a new task takes new clients within one poll", func(t *testing.T) {
		var ip string
		d.engine.Edit(func(s *swarmtest.State) {
			ip = d.startTask(t, "service1")
			s.AddTask("service1", "newtask", ip)
		})
		// One poll (1s) and the health checks' rise (2 checks, 2s apart) at most.
		took, err := probe.Within(6*time.Second, "a new client on the new task "+ip, func() bool {
			a, _ := newVisitor(t).page(d.front + "/service1")
			return a.task == ip
		})
		if err != nil {
			t.Fatalf("no new client reached the new task %s within 6s", ip)
		}
		t.Logf("the new task answered %v after it started", took)
	})

	t.Run("a reload keeps the swarm's services", func(t *testing.T) {
		d.hup <- syscall.SIGHUP
		eventually(t, "the reload", func() bool { return strings.Contains(d.logs.String(), "configuration reloaded") })
		if a, status := newVisitor(t).page(d.front + "/service1"); status != 200 || a.service != "service1" {
			t.Errorf("after SIGHUP got %d %+v, want service1", status, a)
		}
	})
}

func TestDropinWarnsOnceForEachUnsupportedSetting(t *testing.T) {
	t.Parallel()
	d := startDropin(t, swarmtest.Dir("extras"), map[string]string{"RSYSLOG_DESTINATION": "logs:514", "TIMEOUT": "connect 5000, tunnel 1h, queue 5s"})
	n := d.engine.Requests("/tasks")
	eventually(t, "two more polls", func() bool { return d.engine.Requests("/tasks") >= n+2 })
	logs := d.logs.String()
	for _, w := range []string{
		`RSYSLOG_DESTINATION: not supported`,
		`TIMEOUT: \"queue\" is not supported`,
		`force_ssl needs the TLS listener (listen_tls, LISTEN_TLS): not redirecting" service=insert`,
		`service insert: SSL_CERT: not supported`,
		`service noports: no SERVICE_PORTS: not routed`,
		`service deactivated: label com.docker.dockercloud.haproxy.deactivate=true: not routed`,
	} {
		if c := strings.Count(logs, w); c != 1 {
			t.Errorf("the log has %q %d times, want once:\n%s", w, c, logs)
		}
	}
	if strings.Contains(logs, "never-shown") {
		t.Error("the log shows SSL_CERT's value")
	}
}

func TestDropinOnAWorkerExitsWithOneLine(t *testing.T) {
	t.Parallel()
	e := swarmtest.Start(t, swarmtest.Dir("2018"))
	e.SetWorker(true)
	env := map[string]string{"PROXY_DISCOVERY": "docker", "DOCKER_HOST": e.Host(), "LISTEN": freeAddr(t)}
	err := runReloading(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard, nil)
	if err == nil {
		t.Fatal("the proxy started on a worker")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "node.role == manager") || !strings.Contains(msg, "DOCKER_HOST") {
		t.Errorf("got %q, want one line naming manager placement and DOCKER_HOST", msg)
	}
}

func TestDropinWithoutAnEngineSaysWhatToMount(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PROXY_DISCOVERY": "docker", "DOCKER_HOST": "unix://" + filepath.Join(t.TempDir(), "none.sock"), "LISTEN": freeAddr(t)}
	err := runReloading(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "/var/run/docker.sock") {
		t.Errorf("got %v, want the socket to mount named", err)
	}
}

func TestDropinCheckNeedsNoFile(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	env := map[string]string{"PROXY_DISCOVERY": "docker", "STATS_PORT": "1936", "MAXCONN": "100"}
	if err := run(context.Background(), []string{"-check"}, func(k string) string { return env[k] }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"admin :1936, maxconn 100", "discovery docker"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-check printed %q, want %q in it", out.String(), want)
		}
	}
	env["MAXCONN"] = "lots"
	err := run(context.Background(), []string{"-check"}, func(k string) string { return env[k] }, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "MAXCONN") {
		t.Errorf("MAXCONN=lots: got %v, want an error naming it", err)
	}
}
