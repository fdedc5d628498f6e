package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/browser"
	"github.com/swarm-affinity/swarm-affinity/internal/certgen"
	"github.com/swarm-affinity/swarm-affinity/internal/probe"
)

// Options are the harness's settings; run fills them from its flags.
type Options struct {
	Quick     bool
	RepoBin   string // bin/ of the repo: service1 service2 proxy
	BenchDir  string // bench/: the peers' configs, proxy.yaml, lua/, node/, bin/
	OutDir    string // where results go
	ServerCPU string // taskset core of every server
	LoadCPU   string // taskset core of wrk
	Conns     int
	Duration  time.Duration // one repetition
	Reps      int
	Warmup    time.Duration // a dropped run before the repetitions
	ServiceN  int64         // cookie-less requests to our service (scenario 3)
	NodeN     int64         // cookie-less requests to the Node original (scenario 3)
	ProxyN    int64         // requests through our proxy (scenario 3)
	Clients   int           // distinct sticky clients through our proxy (scenario 3)
	FillLimit time.Duration // most time one scenario 3 load may take
}

// Harness runs the scenarios. It owns every process it starts and stops them all.
type Harness struct {
	opt    Options
	load   Load
	log    io.Writer
	secret string // SESSION_SECRET of our services, random per run
	idKey  string // SERVER_ID_KEY of our proxy, random per run
	tmp    string // temp dir: generated configs, cookie lists
	tlsPEM string // the certificate (and key) both proxies serve HTTPS with
	start  time.Time
}

func newHarness(opt Options, log io.Writer) (*Harness, error) {
	tmp, err := os.MkdirTemp("", "swarm-affinity-bench-")
	if err != nil {
		return nil, err
	}
	// One certificate for both proxies, so their handshakes cost the same: ECDSA
	// P-256, self-signed for 127.0.0.1 (wrk does not verify it).
	cert, err := certgen.SelfSigned(certgen.Options{}, "localhost", "127.0.0.1")
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	tlsPEM := filepath.Join(tmp, "tls.pem")
	if err := certgen.WriteFile(tlsPEM, cert.PEM()); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &Harness{
		tlsPEM: tlsPEM,
		opt:    opt,
		load:   Load{CPU: opt.LoadCPU, Conns: opt.Conns},
		log:    log,
		secret: randomHex(32),
		idKey:  randomHex(32),
		tmp:    tmp,
		start:  time.Now(),
	}, nil
}

func (h *Harness) Close() { os.RemoveAll(h.tmp) }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ours starts one of our services (bin/service1 or bin/service2), access log off.
func (h *Harness) ours(ctx context.Context, name, store string, env ...string) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env = append([]string{"ADDR=" + addr, "SESSION_STORE=" + store, "SESSION_SECRET=" + h.secret,
		"LOG_LEVEL=warn", "INSTANCE_NAME=" + name + "-" + strings.Split(addr, ":")[1]}, env...)
	return startServer(ctx, name+" ("+store+")", addr, h.opt.ServerCPU, env,
		"http://"+addr+"/healthz", filepath.Join(h.opt.RepoBin, name))
}

// node starts the Node original serving /name.
func (h *Harness) node(ctx context.Context, name string) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	port := strings.Split(addr, ":")[1]
	return startServer(ctx, "node "+name, addr, h.opt.ServerCPU,
		[]string{"PORT=" + port, "SERVICE_NAME=" + name},
		"http://"+addr+"/"+name, "node", filepath.Join(h.opt.BenchDir, "node", "server.js"))
}

// hello starts the bare net/http ceiling.
func (h *Harness) hello(ctx context.Context) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return startServer(ctx, "hello", addr, h.opt.ServerCPU, nil, "http://"+addr+"/healthz",
		filepath.Join(h.opt.BenchDir, "bin", "hello"), "-addr", addr)
}

// backends are the addresses both proxies balance over: two sticky (service1) and
// two round robin (service2).
type backends struct {
	Service1A, Service1B, Service2A, Service2B string
}

// ourProxy starts bin/proxy with bench/proxy.yaml, its ${...} filled in, on the
// fast engine (the default).
func (h *Harness) ourProxy(ctx context.Context, b backends) (*Server, error) {
	return h.ourProxyOn(ctx, "fast", b)
}

// ourProxyOn starts bin/proxy with bench/proxy.yaml on engine ("fast" or "std").
func (h *Harness) ourProxyOn(ctx context.Context, engine string, b backends) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	tlsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	path, err := h.expandTo("proxy.yaml", addr, b.vars("PROXY_LISTEN", addr, "PROXY_ENGINE", engine,
		"PROXY_LISTEN_TLS", tlsAddr, "TLS_PEM", h.tlsPEM))
	if err != nil {
		return nil, err
	}
	// The admin port is on (HAProxy's stats are not): the live-view row watches
	// /live on it; unwatched, it costs a request nothing.
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s, err := startServer(ctx, "our proxy ("+engine+")", addr, h.opt.ServerCPU,
		[]string{"LOG_LEVEL=warn", "SERVER_ID_KEY=" + h.idKey, "PROXY_CONFIG=" + path, "ADMIN=" + admin},
		"http://"+addr+"/", filepath.Join(h.opt.RepoBin, "proxy"), "-config", path)
	if err != nil {
		return nil, err
	}
	s.Admin = admin
	s.TLSAddr = tlsAddr
	return s, h.waitRoutes(ctx, s)
}

// haproxy starts HAProxy with bench/haproxy.cfg over b, in the foreground: the
// config reads the backends, its listeners (the HTTPS one with the bench's
// certificate) and healthPath, the path of its health checks, from its environment.
// It returns once HAProxy accepts connections, before its checks have passed.
func (h *Harness) haproxy(ctx context.Context, b backends, healthPath string) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	tlsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := append(b.env(), "HAPROXY_LISTEN="+addr, "HAPROXY_LISTEN_TLS="+tlsAddr, "TLS_PEM="+h.tlsPEM, "HEALTH_PATH="+healthPath)
	s, err := startServer(ctx, "haproxy", addr, h.opt.ServerCPU, env,
		"http://"+addr+"/", "haproxy", "-db", "-f", filepath.Join(h.opt.BenchDir, "haproxy.cfg"))
	if err != nil {
		return nil, err
	}
	s.TLSAddr = tlsAddr
	return s, nil
}

// waitRoutes waits until a proxy answers 200 on /service1 and /service2 (its
// health checks have passed), for at most 15 s.
func (h *Harness) waitRoutes(ctx context.Context, s *Server) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for _, path := range []string{"/service1", "/service2"} {
		err := probe.Until(ctx, s.Name+" to answer 200 on "+path, func() (bool, error) {
			err := probe.Get(ctx, "http://"+s.Addr+path, time.Second)
			return err == nil, err
		})
		if err != nil {
			s.Stop()
			return fmt.Errorf("%w; its output: %s", err, s.output())
		}
	}
	return nil
}

// firstVisitCookies visits url as a new visitor and returns the Cookie header
// it would send back, "name=value; ..." for each of names, which must all be set.
func firstVisitCookies(url string, names ...string) (string, error) {
	b := browser.New(browser.Options{})
	defer b.CloseIdleConnections()
	resp, _, err := b.Get(context.Background(), url, nil)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	var pairs []string
	for _, n := range names {
		c, ok := b.Cookie(url, n)
		if !ok {
			return "", fmt.Errorf("GET %s: no %s cookie in the answer", url, n)
		}
		pairs = append(pairs, n+"="+c)
	}
	return strings.Join(pairs, "; "), nil
}

// firstVisit is a new visitor's first GET: it returns the connect.sid cookie the
// answer sets, a session cookie, prefixed with a server id when it went through a
// sticky proxy.
func firstVisit(url string) (string, error) {
	c, err := firstVisitCookies(url, "connect.sid")
	return strings.TrimPrefix(c, "connect.sid="), err
}
