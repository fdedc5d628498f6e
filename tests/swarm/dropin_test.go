package swarm

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// the2018File is the tutorial's own stack file: the proxy reads VIRTUAL_HOST, COOKIE
// and SERVICE_PORTS from the services' environment through the Docker socket, as
// dockercloud/haproxy did.
const the2018File = "STACK_FILE=stack/docker-compose.2018.yml"

// containerHost is what the 2018 services show as their host: the container's short ID
// (the post set no hostname:).
var containerHost = regexp.MustCompile(`^[0-9a-f]{12}$`)

// TestThe2018StackFile deploys stack/docker-compose.2018.yml and runs the tutorial's
// checks through the published port: service1 sticks and counts, service2 spreads, a
// scale-up reaches new clients, a rolling update passes without a 5xx. The steps share
// the stack; the first that fails stops the rest, and the stack is removed all the same.
func TestThe2018StackFile(t *testing.T) {
	requireSwarm(t)
	s := newStack(t)
	t.Logf("stack %s (the 2018 file) on 127.0.0.1:%d", s.name, s.port)
	s.runSteps(t, []step{
		{"make stack-deploy STACK_FILE=stack/docker-compose.2018.yml answers on the published port", func(t *testing.T, s *stack) {
			// A first deploy: the stack's settings are the ones given here.
			s.make(5*time.Minute, "stack-deploy", append(s.versionVar(), the2018File,
				fmt.Sprintf("PORT=%d", s.port), fmt.Sprintf("STATS_PORT=%d", s.statsPort))...)
		}},
		{"service1 counts on one replica", test2018Sticky},
		{"service2 spreads a client over its replicas", test2018Spreads},
		{"a scale-up to 3 reaches new clients", func(t *testing.T, s *stack) {
			s.make(3*time.Minute, "stack-scale", "SERVICE=service1", "N=3")
			hosts := map[string]bool{}
			eventually(t, time.Minute, "new clients reach 3 replicas of service1", func() error {
				p, err := s.newVisitor().get("/service1")
				if err != nil {
					return err
				}
				hosts[p.Host] = true
				if len(hosts) < 3 {
					return fmt.Errorf("reached %v", hosts)
				}
				return nil
			})
		}},
		{"a rolling update passes without a 5xx", test2018RollingUpdate},
	})
}

// step is one step of a stack test.
type step struct {
	name string
	run  func(t *testing.T, s *stack)
}

// runSteps runs the steps on s in order (they share the stack) and stops at the first
// that fails; then, failed or not, a last step removes the stack with make stack-rm and
// checks that nothing of it is left.
func (s *stack) runSteps(t *testing.T, steps []step) {
	t.Helper()
	start := time.Now()
	removed := false
	t.Cleanup(func() {
		if !removed {
			if _, err := s.tryMake(3*time.Minute, nil, "stack-rm", "STACK="+s.name); err != nil {
				t.Error(err)
			}
			s.checkNothingLeft()
		}
		t.Logf("%s took %.0fs", t.Name(), time.Since(start).Seconds())
	})
	steps = append(steps, step{"make stack-rm leaves nothing behind", func(t *testing.T, s *stack) {
		s.make(3*time.Minute, "stack-rm")
		removed = true
		s.checkNothingLeft()
	}})
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) { st.run(t, s) }) {
			return
		}
	}
}

func test2018Sticky(t *testing.T, s *stack) {
	v := s.newVisitor()
	first := v.mustGet(t, "/service1")
	if first.Service != "service1" || !containerHost.MatchString(first.Host) || first.Visits != 1 {
		t.Fatalf("first visit: got service %q on %q with visits %d, want service1 on a container with visits 1", first.Service, first.Host, first.Visits)
	}
	cookie, _ := v.cookie("/service1", "connect.sid")
	id, sid, prefixed := strings.Cut(cookie, "~")
	if !prefixed || id == "" {
		t.Fatalf("connect.sid is %q, want <server id>~<session> (COOKIE=connect.sid prefix nocache)", cookie)
	}
	for visit := 2; visit <= 5; visit++ {
		p := v.mustGet(t, "/service1")
		if p.Host != first.Host || p.Visits != visit {
			t.Fatalf("visit %d: got %q with visits %d, want %q with visits %d", visit, p.Host, p.Visits, first.Host, visit)
		}
		if got := p.Headers["cookie"]; strings.Contains(got, id+"~") || !strings.Contains(got, sid) {
			t.Fatalf("visit %d: service1 received Cookie %q, want its own session without the server id", visit, got)
		}
	}
}

func test2018Spreads(t *testing.T, s *stack) {
	v := s.newVisitor()
	hosts := map[string]int{}
	for range 6 {
		p := v.mustGet(t, "/service2")
		if p.Service != "service2" || !containerHost.MatchString(p.Host) {
			t.Fatalf("got service %q on %q, want service2 on a container", p.Service, p.Host)
		}
		hosts[p.Host]++
	}
	if len(hosts) < 2 {
		t.Fatalf("one client's 6 requests to service2 all went to %v, want round robin over 2 replicas", hosts)
	}
}

// test2018RollingUpdate restarts every replica of both services under load. The 2018
// file's update_config (parallelism 5) would stop both replicas of a service at once,
// which no proxy can hide; the update here goes one replica at a time, with the file's
// own order (stop the old one, then start the new one) and the post's 10 s between two
// replicas: by then the proxy must know the new replica, since the next old one stops.
func test2018RollingUpdate(t *testing.T, s *stack) {
	var service1, service2 load
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopLoad := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopLoad()
	wg.Add(4)
	newClient := func(path string) func() error {
		v := s.newVisitor()
		v.client.Jar = nil
		return func() error { _, err := v.get(path); return err }
	}
	go service1.run(newClient("/service1"), stop, &wg)
	go service1.run(newClient("/service1"), stop, &wg)
	go service2.run(newClient("/service2"), stop, &wg)
	go service2.run(newClient("/service2"), stop, &wg)

	var updates sync.WaitGroup
	errs := make(chan error, 2)
	for _, svc := range []string{"service1", "service2"} {
		updates.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, "docker", "service", "update", "--force", "--quiet", "--detach=false",
				"--update-parallelism", "1", "--update-delay", "10s", s.name+"_"+svc).CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("docker service update %s: %v: %s", svc, err, out)
			}
		})
	}
	updates.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The last old replicas stop as the update ends: keep the load on until 100 more
	// requests of each service have been answered after that.
	after1, after2 := service1.ok.Load()+100, service2.ok.Load()+100
	eventually(t, 2*time.Minute, "100 more answers of each service after the update", func() error {
		if service1.ok.Load() < after1 || service2.ok.Load() < after2 {
			return fmt.Errorf("service1 %v, service2 %v", &service1, &service2)
		}
		return nil
	})
	stopLoad()
	t.Logf("service1 under load during the rolling update: %v", &service1)
	t.Logf("service2 under load during the rolling update: %v", &service2)
	for name, l := range map[string]*load{"service1": &service1, "service2": &service2} {
		if l.server5xx.Load() > 0 || l.failed.Load() > 0 {
			t.Errorf("%s during the rolling update: %v; want no 5xx and no failed request", name, l)
		}
		if l.ok.Load() < 50 {
			t.Errorf("%s answered only %d requests during the rolling update, want a steady load (50 or more)", name, l.ok.Load())
		}
	}
}
