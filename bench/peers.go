package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The proxies a user would pick instead of ours (nginx, Caddy; HAProxy is in
// harness.go) and the floors (bench/goproxy, bench/relay, bench/epollrelay,
// bench/fastproxy), each started pinned to the servers' core like every server.

// expandTo fills the ${...} of the bench file name with vars and writes it to the
// harness's temporary folder, named after the port of listen (the server it configures
// listens there, so two servers' files never share a name); it returns the path.
func (h *Harness) expandTo(name, listen string, vars map[string]string) (string, error) {
	tmpl, err := os.ReadFile(filepath.Join(h.opt.BenchDir, name))
	if err != nil {
		return "", err
	}
	out := expandBraces(string(tmpl), vars)
	path := filepath.Join(h.tmp, portOf(listen)+"-"+name)
	return path, os.WriteFile(path, []byte(out), 0o600)
}

// expandBraces replaces ${NAME} (upper case) with vars[NAME] and leaves every other
// "$" alone: nginx's own variables ($host, $cookie_connect_sid) must pass.
func expandBraces(s string, vars map[string]string) string {
	return braced.ReplaceAllStringFunc(s, func(m string) string { return vars[m[2:len(m)-1]] })
}

var braced = regexp.MustCompile(`\$\{[A-Z0-9_]+\}`)

// vars are the backends as the bench's templates name them (SERVICE1_A, ...), and
// more, given as name, value pairs.
func (b backends) vars(more ...string) map[string]string {
	v := map[string]string{"SERVICE1_A": b.Service1A, "SERVICE1_B": b.Service1B,
		"SERVICE2_A": b.Service2A, "SERVICE2_B": b.Service2B}
	for i := 0; i+1 < len(more); i += 2 {
		v[more[i]] = more[i+1]
	}
	return v
}

// env is vars as an environment (KEY=value), for HAProxy, which expands its
// config's "${...}" itself.
func (b backends) env() []string {
	var env []string
	for k, v := range b.vars() {
		env = append(env, k+"="+v)
	}
	return env
}

// nginx starts Debian's nginx with bench/nginx.conf: one worker, which is the process
// measured (the master only waits).
func (h *Harness) nginx(ctx context.Context, b backends) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(h.tmp, "nginx-")
	if err != nil {
		return nil, err
	}
	conf, err := h.expandTo("nginx.conf", addr, b.vars("NGINX_LISTEN", addr, "NGINX_DIR", dir))
	if err != nil {
		return nil, err
	}
	s, err := startServer(ctx, "nginx", addr, h.opt.ServerCPU, nil, "http://"+addr+"/healthz",
		"nginx", "-p", dir, "-c", conf)
	if err != nil {
		return nil, err
	}
	if err := s.measureChild(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, h.waitRoutes(ctx, s)
}

// caddy starts Debian's Caddy with bench/Caddyfile, on one OS thread of Go code
// (GOMAXPROCS=1) as our proxy is once pinned to one core.
func (h *Harness) caddy(ctx context.Context, b backends) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf, err := h.expandTo("Caddyfile", addr, b.vars("CADDY_LISTEN", addr))
	if err != nil {
		return nil, err
	}
	s, err := startServer(ctx, "caddy", addr, h.opt.ServerCPU, []string{"GOMAXPROCS=1", "HOME=" + h.tmp},
		"http://"+addr+"/healthz", "caddy", "run", "--config", conf, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	return s, h.waitRoutes(ctx, s)
}

// floor starts one of the floors (goproxy, relay, epollrelay, fastproxy; see floors)
// over service1's two backends.
func (h *Harness) floor(ctx context.Context, name string, b backends) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var env []string
	if name == "epollrelay" {
		env = []string{"GOMAXPROCS=1"} // one event loop, as HAProxy's nbthread 1
	}
	// A floor has no route of its own: its readiness probe is answered by a backend.
	return startServer(ctx, name, addr, h.opt.ServerCPU, env, "http://"+addr+"/healthz",
		filepath.Join(h.opt.BenchDir, "bin", name), "-addr", addr, b.Service1A, b.Service1B)
}

func portOf(addr string) string {
	_, port, _ := strings.Cut(addr, ":")
	return port
}

// prefixedCookie is the sticky traffic of a proxy that prefixes the backend's own
// session cookie with a server id (ours, HAProxy): the Cookie of a first visit.
func prefixedCookie(base string) ([]string, error) {
	c, err := firstVisit(base + "/service1")
	if err == nil && !strings.Contains(c, "~") {
		err = fmt.Errorf("the cookie of a first visit to %s/service1 has no server id prefix", base)
	}
	return []string{"Cookie: connect.sid=" + c}, err
}

// hashedCookie is nginx's sticky traffic: the session cookie it hashes.
func hashedCookie(base string) ([]string, error) {
	c, err := firstVisit(base + "/service1")
	return []string{"Cookie: connect.sid=" + c}, err
}

// caddyCookie is Caddy's sticky traffic: its own "lb" cookie naming the backend, and
// the session cookie.
func caddyCookie(base string) ([]string, error) {
	c, err := firstVisitCookies(base+"/service1", "lb", "connect.sid")
	return []string{"Cookie: " + c}, err
}
