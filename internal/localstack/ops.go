package localstack

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

var client = &http.Client{Timeout: 2 * time.Second}

// listenAddr returns host:port, checking that the port is free; port 0 asks for a free
// one. setting names the knob a user turns when a fixed port is taken.
func listenAddr(host string, port int, setting string) (string, error) {
	if port == 0 {
		return proc.FreeAddr(host)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if setting != "" && errors.Is(err, syscall.EADDRINUSE) {
			return "", fmt.Errorf("port %d on %s is already in use (an earlier `make run`?); "+
				"stop that program or pick another port, e.g. make run %s=%d", port, host, setting, port+1)
		}
		return "", fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitHealthy(ctx context.Context, r *Replica) error {
	return probe.Until(ctx, r.Name+" /healthz", func() (bool, error) {
		if !r.Running() {
			return false, probe.Fatal(r.process.Err())
		}
		err := probe.Get(ctx, "http://"+r.Addr+"/healthz", 2*time.Second)
		return err == nil, err
	})
}

// ProxyServer is one server of the proxy, as its /stats?format=text lists it.
type ProxyServer struct {
	Service, ID, State, Address string
}

// ProxyServers asks the proxy which servers it has, of every service, and their state.
func (s *Stack) ProxyServers(ctx context.Context) ([]ProxyServer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.AdminURL()+"/stats?format=text", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("proxy /stats: %s", resp.Status)
	}
	var servers []ProxyServer
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		// server SERVICE ID STATE key value...; see proxy/internal/admin.
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[0] != "server" {
			continue
		}
		srv := ProxyServer{Service: f[1], ID: f[2], State: f[3]}
		for i := 4; i+1 < len(f); i += 2 {
			if f[i] == "address" {
				srv.Address = f[i+1]
			}
		}
		servers = append(servers, srv)
	}
	return servers, sc.Err()
}

// WaitReady waits until the proxy answers and sees exactly the running replicas up and
// the stopped ones down, for every service.
func (s *Stack) WaitReady(ctx context.Context) error {
	return probe.Until(ctx, "the proxy to see every replica", func() (bool, error) {
		if s.proxy.Exited() {
			return false, probe.Fatal(s.proxy.Err())
		}
		servers, err := s.ProxyServers(ctx)
		if err != nil {
			return false, err
		}
		want := map[string]bool{} // address -> should be up
		s.mu.Lock()
		for _, reps := range s.replicas {
			for _, r := range reps {
				want[r.Addr] = r.Running()
			}
		}
		s.mu.Unlock()
		seen := 0
		for _, srv := range servers {
			up, ok := want[srv.Address]
			if !ok {
				continue
			}
			seen++
			if up != (srv.State == "up") {
				return false, fmt.Errorf("%s is %s", srv.Address, srv.State)
			}
		}
		if seen != len(want) {
			return false, fmt.Errorf("proxy lists %d of %d replicas", seen, len(want))
		}
		return true, nil
	})
}

// StopReplica stops a replica the way Swarm stops a task: SIGTERM, so it finishes its
// in-flight requests, and SIGKILL after 10 s. It returns once the process is gone.
func (s *Stack) StopReplica(name string) error {
	r, ok := s.Replica(name)
	if !ok {
		return fmt.Errorf("no replica named %q", name)
	}
	r.process.Stop(10 * time.Second)
	return nil
}

// KillReplica ends a replica with SIGKILL, like a crash, and returns once it is gone.
func (s *Stack) KillReplica(name string) error {
	r, ok := s.Replica(name)
	if !ok {
		return fmt.Errorf("no replica named %q", name)
	}
	r.process.Kill()
	return nil
}

// AddReplica starts one more replica of service (scale-out), tells the proxy, and returns
// once the proxy routes to it.
func (s *Stack) AddReplica(ctx context.Context, service string) (*Replica, error) {
	svc, ok := s.service(service)
	if !ok {
		return nil, fmt.Errorf("no service named %q", service)
	}
	r, err := s.startReplica(ctx, svc)
	if err != nil {
		return nil, err
	}
	if err := s.reloadProxy(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// RestartReplica stops a replica and starts it again under the same name and port, then
// waits until the proxy routes to it again. Its memory sessions are gone, as in a swarm.
func (s *Stack) RestartReplica(ctx context.Context, name string) error {
	r, ok := s.Replica(name)
	if !ok {
		return fmt.Errorf("no replica named %q", name)
	}
	svc, _ := s.service(r.Service)
	r.process.Stop(10 * time.Second)
	var nr *Replica
	// The port was ours a moment ago; another program could take it in between, so try
	// it again, like a task that is restarted until it sticks.
	err := retryLostPort(3, func() (*proc.Process, error) {
		var err error
		if nr, err = s.startReplicaAt(svc, name, r.Addr); err != nil {
			return nil, err
		}
		return nr.process, nil
	}, func() error { return waitHealthy(ctx, nr) })
	if err != nil {
		return err
	}
	return s.WaitReady(ctx)
}

// RollingRestart restarts the replicas of service one at a time, each waiting until the
// proxy routes to it again, as `docker service update --force` with parallelism 1 does.
func (s *Stack) RollingRestart(ctx context.Context, service string) error {
	for _, r := range s.Replicas(service) {
		if !r.Running() {
			continue
		}
		if err := s.RestartReplica(ctx, r.Name); err != nil {
			return err
		}
	}
	return nil
}

// reloadProxy rewrites the config and signals the proxy to re-read it, then waits until
// the proxy sees the replicas as they are.
func (s *Stack) reloadProxy(ctx context.Context) error {
	if err := s.writeProxyConfig(); err != nil {
		return err
	}
	if err := s.proxy.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("telling the proxy to reload: %w", err)
	}
	return s.WaitReady(ctx)
}

// RunningReplicas lists the names of the replicas of service whose process is alive,
// lowest number first (see SortReplicaNames).
func (s *Stack) RunningReplicas(service string) []string {
	var names []string
	for _, r := range s.Replicas(service) {
		if r.Running() {
			names = append(names, r.Name)
		}
	}
	SortReplicaNames(names)
	return names
}

// SortReplicaNames orders replica names by service, then by number: service1-2 before
// service1-10, where a sort by string would put service1-10 first. A name without a
// number after its last '-', '_' or '.' counts as number 0.
func SortReplicaNames(names []string) {
	slices.SortStableFunc(names, func(a, b string) int {
		pa, na := splitReplicaNumber(a)
		pb, nb := splitReplicaNumber(b)
		return cmp.Or(strings.Compare(pa, pb), cmp.Compare(na, nb))
	})
}

func splitReplicaNumber(s string) (string, int) {
	i := strings.LastIndexAny(s, "-_.")
	if i < 0 {
		return s, 0
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, 0
	}
	return s[:i], n
}

// LiveURL is the proxy's live view with the replicas' names given to the page
// (/live?names=ID:NAME,...): the proxy knows its servers by id only.
func (s *Stack) LiveURL(ctx context.Context) (string, error) {
	servers, err := s.ProxyServers(ctx)
	if err != nil {
		return "", err
	}
	byAddr := map[string]string{}
	for _, svc := range s.Services() {
		for _, r := range s.Replicas(svc.Name) {
			byAddr[r.Addr] = r.Name
		}
	}
	var names []string
	for _, srv := range servers {
		if name, ok := byAddr[srv.Address]; ok {
			names = append(names, srv.ID+":"+name)
		}
	}
	u := s.AdminURL() + "/live"
	if len(names) > 0 {
		u += "?names=" + url.QueryEscape(strings.Join(names, ","))
	}
	return u, nil
}
