package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// pollEvery is how often the stack re-checks a condition it waits for.
const pollEvery = 20 * time.Millisecond

var client = &http.Client{Timeout: 2 * time.Second}

// listenAddr returns host:port, checking that the port is free; port 0 asks the kernel
// for a free one. setting names the knob a user turns when a fixed port is taken.
func listenAddr(host string, port int, setting string) (string, error) {
	if port == 0 {
		return freeAddr(host)
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

var (
	portsMu  sync.Mutex
	portsOut = map[string]bool{} // free ports this process already handed out
)

// freeAddr asks the kernel for a free port, never giving the same one twice in this
// process: the kernel may offer a port again as soon as our probe closed it, before the
// child that got it the first time has bound it.
func freeAddr(host string) (string, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", fmt.Errorf("finding a free port on %s: %w", host, err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !portsOut[addr] {
			portsOut[addr] = true
			return addr, nil
		}
	}
	return "", fmt.Errorf("finding a free port on %s: the kernel keeps offering used ones", host)
}

// poll calls cond every pollEvery until it returns true or an error, or ctx ends;
// what describes the wait for the timeout message.
func poll(ctx context.Context, what string, cond func() (bool, error)) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	var last error
	for {
		done, err := cond()
		if done || (err != nil && errors.Is(err, errFatal)) {
			return err
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

// errFatal marks an error that ends a poll at once (a process that died, say).
var errFatal = errors.New("fatal")

func waitHealthy(ctx context.Context, r *Replica) error {
	return poll(ctx, r.Name+" /healthz", func() (bool, error) {
		if !r.Running() {
			return false, fmt.Errorf("%w: %w", errFatal, r.proc.exitError())
		}
		resp, err := client.Get("http://" + r.Addr + "/healthz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// Stats is the part of the proxy's /stats JSON the stack and its tests read.
type Stats struct {
	Services []struct {
		Name    string `json:"name"`
		Servers []struct {
			ID      string `json:"id"`
			Address string `json:"address"`
			State   string `json:"state"`
		} `json:"servers"`
	} `json:"services"`
}

// ProxyStats fetches the proxy's /stats as JSON.
func (s *Stack) ProxyStats(ctx context.Context) (Stats, error) {
	var st Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.AdminURL()+"/stats", nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("proxy /stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// WaitReady waits until the proxy answers and sees exactly the running replicas up and
// the stopped ones down, for every service.
func (s *Stack) WaitReady(ctx context.Context) error {
	return poll(ctx, "the proxy to see every replica", func() (bool, error) {
		if s.proxy.exited() {
			return false, fmt.Errorf("%w: %w", errFatal, s.proxy.exitError())
		}
		st, err := s.ProxyStats(ctx)
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
		for _, svc := range st.Services {
			for _, srv := range svc.Servers {
				up, ok := want[srv.Address]
				if !ok {
					continue
				}
				seen++
				if up != (srv.State == "up") {
					return false, fmt.Errorf("%s is %s", srv.Address, srv.State)
				}
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
	r.proc.stop(10 * time.Second)
	return nil
}

// KillReplica ends a replica with SIGKILL, like a crash, and returns once it is gone.
func (s *Stack) KillReplica(name string) error {
	r, ok := s.Replica(name)
	if !ok {
		return fmt.Errorf("no replica named %q", name)
	}
	r.proc.kill()
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
	r.proc.stop(10 * time.Second)
	var nr *Replica
	// The port was ours a moment ago; another program could take it in between, so try
	// for a short while, like a task that is restarted until it sticks.
	err := poll(ctx, "restarting "+name, func() (bool, error) {
		var err error
		if nr, err = s.startReplicaAt(svc, name, r.Addr); err != nil {
			return false, err
		}
		if err := waitHealthy(ctx, nr); err != nil {
			return false, fmt.Errorf("%v", err) // not fatal here: try the port again
		}
		return true, nil
	})
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
	if err := s.proxy.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("telling the proxy to reload: %w", err)
	}
	return s.WaitReady(ctx)
}

// RunningReplicas lists the names of the replicas of service whose process is alive.
func (s *Stack) RunningReplicas(service string) []string {
	var names []string
	for _, r := range s.Replicas(service) {
		if r.Running() {
			names = append(names, r.Name)
		}
	}
	slices.Sort(names)
	return names
}
