// Package localstack starts the tutorial's whole system on 127.0.0.1 from the built
// binaries: replicas of service1 and service2, each on its own port, and the proxy in
// front of them. `make run`, the end-to-end tests and the classroom lab all use it, so
// what a user runs is what the tests check.
//
// No Docker is involved: a replica is a process, "stopping a replica" is SIGTERM to it,
// "scaling" starts one more process and tells the proxy (config rewrite + SIGHUP).
package localstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// Service describes one service of the stack.
type Service struct {
	// Name is the service's name and path: "service1" serves /service1.
	Name string
	// Binary is the file in Config.BinDir that runs it; empty means Name.
	Binary string
	// Replicas is how many processes to start; 0 means Config.Replicas.
	Replicas int
	// Sticky puts a cookie rule on the service's route: Cookie, or HAProxy's
	// `cookie connect.sid prefix nocache` when Cookie is empty.
	Sticky bool
	// Cookie is the rule of a Sticky service, e.g. "SRV insert indirect nocache".
	Cookie string
	// Balance is the proxy's balance algorithm; empty means roundrobin.
	Balance string
	// Env is added to every replica's environment (KEY=value), after the stack's own.
	Env []string
}

// Config is what Start needs. The zero value of each field has a useful meaning.
type Config struct {
	// BinDir holds the service1, service2 and proxy binaries (`make build` puts them in bin/).
	BinDir string
	// Dir is where the stack writes its proxy config; empty means a new temporary folder,
	// removed by Close.
	Dir string
	// Services to start; nil means the tutorial's: service1 (sticky) and service2, and
	// with Store "cookie" both plain round robin: stateless sessions need no stickiness.
	Services []Service
	// Replicas per service when a Service does not say; 0 means 2, as in the tutorial.
	Replicas int
	// Store is the session store of every service: "memory" (default) or "cookie".
	Store string
	// Secret is SESSION_SECRET for the cookie store; empty means a random one per run.
	Secret string
	// Engine is the proxy's engine: key ("fast" or "std"); empty leaves the proxy's
	// default.
	Engine string
	// CookiePath is COOKIE_PATH for every service; empty leaves each service's default
	// (its own path). "/" reproduces the 2018 original's trap.
	CookiePath string
	// Host is the address everything binds to; empty means 127.0.0.1.
	Host string
	// ProxyPort and AdminPort are the proxy's ports; 0 picks free ones.
	ProxyPort, AdminPort int
	// TLS turns on the proxy's HTTPS listener on TLSPort (0: a free one) with a
	// self-signed certificate for localhost and Host, which the stack writes to Dir
	// (tls.pem) or keeps from an earlier run while it is valid (see CertFile).
	TLS     bool
	TLSPort int
	// Out receives every child's output, one line at a time with its name in front;
	// nil discards it.
	Out io.Writer
}

// Replica is one running (or stopped) process of a service.
type Replica struct {
	Service string // "service1"
	Name    string // INSTANCE_NAME: "service1-2"
	Addr    string // host:port it listens on
	process *proc.Process
}

// Pid is the replica's process id.
func (r *Replica) Pid() int { return r.process.Pid() }

// Running reports whether the replica's process is still alive.
func (r *Replica) Running() bool { return !r.process.Exited() }

// Exited is closed when the replica's process ends.
func (r *Replica) Exited() <-chan struct{} { return r.process.Done() }

// ExitError says how the replica ended; call it after Exited is closed.
func (r *Replica) ExitError() error { return r.process.Err() }

// Stack is a running local stack. Its methods are safe for concurrent use.
type Stack struct {
	cfg        Config
	out        io.Writer
	configPath string
	ownDir     bool
	proxyAddr  string
	adminAddr  string
	tlsAddr    string
	certFile   string
	secret     string

	mu       sync.Mutex
	proxy    *proc.Process
	replicas map[string][]*Replica // by service name, in start order
	next     map[string]int        // next replica number per service
	closed   bool
}

// Start builds nothing: it starts the processes from cfg.BinDir and returns once every
// replica answers /healthz and the proxy reports every server up, or ctx ends. On error
// everything already started is stopped again.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	cfg = withDefaults(cfg)
	if err := checkBinaries(cfg); err != nil {
		return nil, err
	}
	s := &Stack{
		cfg:      cfg,
		out:      cfg.Out,
		secret:   cfg.Secret,
		replicas: map[string][]*Replica{},
		next:     map[string]int{},
	}
	if s.out == nil {
		s.out = io.Discard
	}
	if cfg.Store == "cookie" && s.secret == "" {
		s.secret = randomHex(32)
	}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "swarm-affinity-")
		if err != nil {
			return nil, err
		}
		dir, s.ownDir = d, true
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s.configPath = filepath.Join(dir, "proxy.yaml")
	if cfg.TLS {
		s.certFile = filepath.Join(dir, "tls.pem")
		if err := selfSigned(s.certFile, cfg.Host); err != nil {
			return nil, err
		}
	}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	for _, svc := range cfg.Services {
		for range svc.Replicas {
			if _, err := s.startReplica(ctx, svc); err != nil {
				return nil, err
			}
		}
	}
	if err := s.startProxy(ctx); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// startProxy starts the proxy and waits until it sees every replica up. Ports the stack
// chose itself are chosen again if another program took one in the meantime.
func (s *Stack) startProxy(ctx context.Context) error {
	key := "SERVER_ID_KEY=" + randomHex(32)
	tries := 3
	if s.cfg.ProxyPort != 0 && s.cfg.AdminPort != 0 && (!s.cfg.TLS || s.cfg.TLSPort != 0) {
		tries = 1 // every port is the user's: choosing again gives the same ones
	}
	return retryLostPort(tries, func() (*proc.Process, error) {
		var err error
		if s.proxyAddr, err = listenAddr(s.cfg.Host, s.cfg.ProxyPort, "PORT"); err != nil {
			return nil, err
		}
		if s.adminAddr, err = listenAddr(s.cfg.Host, s.cfg.AdminPort, "ADMIN_PORT"); err != nil {
			return nil, err
		}
		if s.cfg.TLS {
			if s.tlsAddr, err = listenAddr(s.cfg.Host, s.cfg.TLSPort, "TLS_PORT"); err != nil {
				return nil, err
			}
		}
		if err = s.writeProxyConfig(); err != nil {
			return nil, err
		}
		p, err := s.startProcess("proxy", filepath.Join(s.cfg.BinDir, "proxy"), []string{"-config", s.configPath}, []string{key})
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.proxy = p
		s.mu.Unlock()
		return p, nil
	}, func() error { return s.WaitReady(ctx) })
}

// retryLostPort starts a process with start and waits with ready. A process that
// exits while ready waits lost its port: another program took it between the check
// that it was free and the process's bind. Then it is started again, tries times in
// all; any other outcome is the result.
func retryLostPort(tries int, start func() (*proc.Process, error), ready func() error) error {
	var err error
	for range tries {
		var p *proc.Process
		if p, err = start(); err != nil {
			return err
		}
		if err = ready(); err == nil || !p.Exited() {
			return err
		}
	}
	return err
}

func withDefaults(cfg Config) Config {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 2
	}
	if cfg.Store == "" {
		cfg.Store = "memory"
	}
	if cfg.Services == nil {
		cfg.Services = []Service{{Name: "service1", Sticky: cfg.Store != "cookie"}, {Name: "service2"}}
	}
	svcs := make([]Service, len(cfg.Services))
	for i, svc := range cfg.Services {
		if svc.Binary == "" {
			svc.Binary = svc.Name
		}
		if svc.Replicas == 0 {
			svc.Replicas = cfg.Replicas
		}
		svcs[i] = svc
	}
	cfg.Services = svcs
	return cfg
}

func checkBinaries(cfg Config) error {
	var errs []error
	names := []string{"proxy"}
	for _, svc := range cfg.Services {
		names = append(names, svc.Binary)
	}
	for _, n := range names {
		p := filepath.Join(cfg.BinDir, n)
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			errs = append(errs, fmt.Errorf("%s is missing or not executable; run `make build` first", p))
		}
	}
	return errors.Join(errs...)
}

// URL is the proxy's address, e.g. "http://127.0.0.1:8080".
func (s *Stack) URL() string { return "http://" + s.proxyAddr }

// AdminURL is the proxy's admin address, e.g. "http://127.0.0.1:1936".
func (s *Stack) AdminURL() string { return "http://" + s.adminAddr }

// TLSURL is the proxy's HTTPS address, e.g. "https://127.0.0.1:8443"; "" without TLS.
func (s *Stack) TLSURL() string {
	if s.tlsAddr == "" {
		return ""
	}
	return "https://" + s.tlsAddr
}

// CertFile is the self-signed certificate (and key) of the HTTPS listener, for a
// client to trust (curl --cacert); "" without TLS.
func (s *Stack) CertFile() string { return s.certFile }

// ProxyPid is the proxy's process id.
func (s *Stack) ProxyPid() int { return s.proxy.Pid() }

// ProxyExited is closed when the proxy process ends.
func (s *Stack) ProxyExited() <-chan struct{} { return s.proxy.Done() }

// ProxyError says how the proxy ended; call it after ProxyExited is closed.
func (s *Stack) ProxyError() error { return s.proxy.Err() }

// Services is the stack's service list, defaults filled in.
func (s *Stack) Services() []Service { return slices.Clone(s.cfg.Services) }

// Replicas lists the replicas of service in start order, stopped ones included.
func (s *Stack) Replicas(service string) []*Replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.replicas[service])
}

// Replica finds a replica by its INSTANCE_NAME ("service1-2").
func (s *Stack) Replica(name string) (*Replica, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, reps := range s.replicas {
		for _, r := range reps {
			if r.Name == name {
				return r, true
			}
		}
	}
	return nil, false
}

func (s *Stack) service(name string) (Service, bool) {
	for _, svc := range s.cfg.Services {
		if svc.Name == name {
			return svc, true
		}
	}
	return Service{}, false
}

// startReplica starts the next replica of svc on a free port and waits until it answers
// /healthz. A free port can be taken by another program between our check and the
// replica's bind; then the replica exits at once and is started again on another port.
func (s *Stack) startReplica(ctx context.Context, svc Service) (*Replica, error) {
	s.mu.Lock()
	s.next[svc.Name]++
	name := svc.Name + "-" + strconv.Itoa(s.next[svc.Name])
	s.mu.Unlock()
	var r *Replica
	err := retryLostPort(3, func() (*proc.Process, error) {
		addr, err := listenAddr(s.cfg.Host, 0, "")
		if err != nil {
			return nil, err
		}
		if r, err = s.startReplicaAt(svc, name, addr); err != nil {
			return nil, err
		}
		return r.process, nil
	}, func() error { return waitHealthy(ctx, r) })
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Stack) startReplicaAt(svc Service, name, addr string) (*Replica, error) {
	env := []string{
		"ADDR=" + addr,
		"INSTANCE_NAME=" + name,
		"SESSION_STORE=" + s.cfg.Store,
	}
	if s.secret != "" {
		env = append(env, "SESSION_SECRET="+s.secret)
	}
	if s.cfg.CookiePath != "" {
		env = append(env, "COOKIE_PATH="+s.cfg.CookiePath)
	}
	env = append(env, svc.Env...)
	p, err := s.startProcess(name, filepath.Join(s.cfg.BinDir, svc.Binary), nil, env)
	if err != nil {
		return nil, err
	}
	r := &Replica{Service: svc.Name, Name: name, Addr: addr, process: p}
	s.mu.Lock()
	defer s.mu.Unlock()
	reps := s.replicas[svc.Name]
	if i := slices.IndexFunc(reps, func(o *Replica) bool { return o.Name == name }); i >= 0 {
		reps[i] = r // a restart keeps the replica's place and name
	} else {
		s.replicas[svc.Name] = append(reps, r)
	}
	return r, nil
}

// writeProxyConfig writes the proxy config for the replicas that run now. It lists
// stopped replicas too: the proxy finds them down by itself, as it would in a swarm.
func (s *Stack) writeProxyConfig() error {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by localstack for this run; edits are lost\n")
	fmt.Fprintf(&b, "listen: %q\nadmin: %q\n", s.proxyAddr, s.adminAddr)
	if s.cfg.TLS {
		fmt.Fprintf(&b, "listen_tls: %q\ncertificates: [%q]\n", s.tlsAddr, s.certFile)
	}
	if s.cfg.Engine != "" {
		fmt.Fprintf(&b, "engine: %s\n", s.cfg.Engine)
	}
	// Checks faster than HAProxy's 2 s: on one machine a replica is up or down at once,
	// and a restarted replica should get traffic again within a second.
	fmt.Fprintf(&b, "check: {interval: 250ms, timeout: 1s, rise: 2, fall: 2}\nservices:\n")
	s.mu.Lock()
	for _, svc := range s.cfg.Services {
		var addrs []string
		for _, r := range s.replicas[svc.Name] {
			addrs = append(addrs, r.Addr)
		}
		fmt.Fprintf(&b, "  %s:\n", svc.Name)
		fmt.Fprintf(&b, "    virtual_host: \"*/%s, */%s/*\"\n", svc.Name, svc.Name)
		fmt.Fprintf(&b, "    servers: %q\n", strings.Join(addrs, ", "))
		if svc.Sticky {
			rule := svc.Cookie
			if rule == "" {
				rule = "connect.sid prefix nocache"
			}
			fmt.Fprintf(&b, "    cookie: %q\n", rule)
		}
		if svc.Balance != "" {
			fmt.Fprintf(&b, "    balance: %s\n", svc.Balance)
		}
		fmt.Fprintf(&b, "    health_check: /healthz\n")
	}
	s.mu.Unlock()
	tmp := s.configPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.configPath) // the proxy never reads a half-written file
}

// Close stops the proxy first and waits for it to end, so that it drains its requests
// in flight while every replica still answers; then it stops the replicas, together,
// and removes the stack's temporary folder. It is safe to call more than once.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	proxy := s.proxy
	var replicas []*proc.Process
	for _, reps := range s.replicas {
		for _, r := range reps {
			replicas = append(replicas, r.process)
		}
	}
	s.mu.Unlock()
	if proxy != nil {
		proxy.Stop(5 * time.Second)
	}
	var wg sync.WaitGroup
	for _, p := range replicas {
		wg.Go(func() { p.Stop(5 * time.Second) })
	}
	wg.Wait()
	if s.ownDir {
		return os.RemoveAll(filepath.Dir(s.configPath))
	}
	return nil
}

// outMu keeps the lines of every child of every stack of this process from
// interleaving (the lab runs three stacks into one log).
var outMu sync.Mutex

// startProcess starts bin with args and env (added to a minimal environment), copying
// every output line to the stack's Out with the child's name in front.
func (s *Stack) startProcess(name, bin string, args, env []string) (*proc.Process, error) {
	return proc.Start(name, append([]string{bin}, args...), append(baseEnv(), env...),
		proc.Lines(s.out, fmt.Sprintf("%-12s| ", name), &outMu))
}

// baseEnv is what children inherit: enough to run, nothing that changes their settings
// behind the stack's back (a stray SESSION_STORE in the user's shell, say).
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails on Linux (crypto/rand panics rather than return short)
	return hex.EncodeToString(b)
}
