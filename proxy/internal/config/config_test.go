package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

func TestTutorialConfig(t *testing.T) {
	t.Parallel()
	cfg, err := Load("../../example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":80" || cfg.Admin != ":1936" || len(cfg.Services) != 2 {
		t.Fatalf("got %+v", cfg)
	}
	s1, s2 := cfg.Services[0], cfg.Services[1]
	if s1.Name != "service1" || s1.Sticky.Name != "connect.sid" || !s1.Sticky.NoCache || s1.Sticky.Mode != sticky.ModePrefix || s1.HealthCheck != "/healthz" || s1.Balance != backend.RoundRobin {
		t.Errorf("service1 %+v", s1)
	}
	if s2.Name != "service2" || s2.Sticky.On() || len(s2.Servers) != 1 || s2.Servers[0].Host != "tasks.service2" {
		t.Errorf("service2 %+v", s2)
	}
	// The defaults dockercloud/haproxy had.
	if cfg.Retries != 3 || cfg.MaxConn != 4096 || cfg.ResolveInterval != 5*time.Second || cfg.Check.Rise != 2 || cfg.Check.Fall != 3 || cfg.Check.Interval != 2*time.Second {
		t.Errorf("defaults %+v", cfg)
	}
}

func TestLauncherConfig(t *testing.T) {
	t.Parallel()
	// What `make run` writes: flow style, IP lists, no admin auth.
	cfg, err := Parse("run.yaml", []byte(`listen: "127.0.0.1:8080"
admin: "127.0.0.1:1936"
services:
  service1: {virtual_host: "*/service1, */service1/*", servers: "127.0.0.1:9101, 127.0.0.1:9102", cookie: "connect.sid prefix nocache", health_check: /healthz}
  service2: {virtual_host: "*/service2, */service2/*", servers: "127.0.0.1:9201, 127.0.0.1:9202", health_check: /healthz}
`))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Services[0].Servers); n != 2 {
		t.Errorf("service1 has %d servers, want 2", n)
	}
}

func TestMinimalConfig(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("min.yaml", []byte("services:\n  service1:\n    servers: [\"10.0.0.1:8080\", \"10.0.0.2:8080\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Services[0].VirtualHost; got != "*/service1, */service1/*" {
		t.Errorf("default virtual_host %q", got)
	}
	if cfg.Listen != ":80" || cfg.Admin != "" {
		t.Errorf("listen %q admin %q, want :80 and off", cfg.Listen, cfg.Admin)
	}
}

func TestBadConfigsSayFileLineAndFix(t *testing.T) {
	t.Parallel()
	const svc = "services:\n  service1:\n    servers: \"a:1\"\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top key", "listn: \":80\"\n" + svc, `proxy.yaml:1: unknown key listn; did you mean "listen"?`},
		{"unknown service key", "services:\n  service1:\n    servers: \"a:1\"\n    cookei: x\n", `proxy.yaml:4: unknown key services.service1.cookei; did you mean "cookie"?`},
		{"servers without port", "services:\n  service1:\n    servers: tasks.service1\n", `proxy.yaml:3: services.service1.servers: "tasks.service1" has no port; write host:port`},
		{"servers missing", "services:\n  service1:\n    cookie: \"connect.sid prefix\"\n", `proxy.yaml:2: service service1: servers is missing; write servers: "tasks.service1:8080"`},
		{"rewrite with indirect, refused as HAProxy does", "services:\n  service1:\n    servers: \"a:1\"\n    cookie: \"SRV rewrite indirect\"\n", `proxy.yaml:4: services.service1.cookie: cookie 'rewrite' and 'indirect' modes are incompatible`},
		{"two modes", "services:\n  service1:\n    servers: \"a:1\"\n    cookie: \"SRV insert prefix\"\n", `proxy.yaml:4: services.service1.cookie: cookie 'rewrite', 'insert' and 'prefix' modes are incompatible`},
		{"preserve alone", "services:\n  service1:\n    servers: \"a:1\"\n    cookie: \"SRV rewrite preserve\"\n", `proxy.yaml:4: services.service1.cookie: cookie 'preserve' requires at least 'insert' or 'indirect'`},
		{"cookie without mode", "services:\n  service1:\n    servers: \"a:1\"\n    cookie: connect.sid\n", `proxy.yaml:4: services.service1.cookie: no mode; write "connect.sid prefix nocache"`},
		{"bad balance", "services:\n  service1:\n    servers: \"a:1\"\n    balance: uri\n", `proxy.yaml:4: services.service1.balance: "uri" is not supported; write roundrobin, static-rr, leastconn or source`},
		{"bad trusted proxy", "trusted_proxies: \"10.0.0.0/8, proxy1\"\n" + svc, `proxy.yaml:1: trusted_proxies: "proxy1" is not an address or a prefix`},
		{"bad duration", "timeout:\n  connect: soon\n" + svc, `proxy.yaml:2: timeout.connect: "soon" is not a duration`},
		{"zero interval", "check:\n  interval: 0\n" + svc, `proxy.yaml:2: check.interval: "0" must be more than 0`},
		{"bad maxconn", "maxconn: lots\n" + svc, `proxy.yaml:1: maxconn: "lots" is not a whole number`},
		{"bad listen", "listen: 80\n" + svc, `proxy.yaml:1: listen: "80" is not an address; write ":80"`},
		{"bad bool", "access_log: maybe\n" + svc, `proxy.yaml:1: access_log: "maybe" is not true or false`},
		{"no services", "listen: \":80\"\n", "proxy.yaml:1: services: is missing"},
		{"empty service", "services:\n  service1:\n", "proxy.yaml:2: service service1 is empty"},
		{"same route twice", svc + "  service2:\n    virtual_host: \"*/service1\"\n    servers: \"b:1\"\n", `proxy.yaml:5: services.service2.virtual_host: "*/service1" is already routed to service1`},
		{"bad route", "services:\n  service1:\n    servers: \"a:1\"\n    virtual_host: \"*/a*b\"\n", `proxy.yaml:4: services.service1.virtual_host: "*/a*b": '*' is only allowed at the end`},
		{"bad health path", "services:\n  service1:\n    servers: \"a:1\"\n    health_check: healthz\n", `proxy.yaml:4: services.service1.health_check "healthz": write a path`},
		{"YAML syntax", "services:\n  service1: [\n", "proxy.yaml:2: did not find expected node content (YAML syntax)"},
		{"tabs", "services:\n\tservice1: {}\n", "proxy.yaml:2: "},
		{"empty file", "", "proxy.yaml:1: the file is empty"},
		{"a list at the top", "- a\n", "proxy.yaml:1: expected keys"},
		{"key set twice", "listen: \":1\"\nlisten: \":2\"\n" + svc, "proxy.yaml:2: "},
		{"bad discovery", "discovery: consul\n" + svc, `proxy.yaml:1: discovery: "consul": write file`},
		{"services with discovery docker", "discovery: docker\n" + svc, "proxy.yaml:1: services: and discovery: docker exclude each other"},
		{"bad weight", svc + "    virtual_host_weight: high\n", `proxy.yaml:4: services.service1.virtual_host_weight: "high" is not a whole number from -1000 to 1000`},
		{"bad service check", svc + "    check: {rise: 0}\n", `proxy.yaml:4: services.service1.check.rise: "0" is not a whole number from 1 to 100`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("proxy.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v\nwant one containing %q", err, tt.want)
			}
		})
	}
}

func TestDiscoveryDockerNeedsNoServices(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		base       Config
	}{
		{"the file says discovery: docker", "discovery: docker\nmaxconn: 100\n", Default()},
		{"PROXY_DISCOVERY=docker gives the base", "maxconn: 100\n", func() Config { c := Default(); c.Discovery = DiscoveryDocker; return c }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseOnto("p.yaml", []byte(tt.yaml), tt.base)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Discovery != DiscoveryDocker || cfg.MaxConn != 100 || len(cfg.Services) != 0 {
				t.Errorf("got discovery %q maxconn %d services %d, want docker, 100, none", cfg.Discovery, cfg.MaxConn, len(cfg.Services))
			}
			if !strings.Contains(cfg.Summary(), "discovery docker: the services come from the swarm") {
				t.Errorf("the summary does not say where the services come from:\n%s", cfg.Summary())
			}
		})
	}
}

func TestAServiceCanHaveItsOwnCheckAndWeight(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("p.yaml", []byte("check: {interval: 3s, rise: 4}\nservices:\n  a:\n    servers: \"x:1\"\n    health_check: /healthz\n    virtual_host_weight: 5\n    check: {interval: 1s, fall: 9}\n  b:\n    servers: \"y:1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Services[0], cfg.Services[1]
	if got := a.HealthConfig(cfg.Check); got.Interval != time.Second || got.Rise != 4 || got.Fall != 9 || got.Path != "/healthz" || got.Timeout != 2*time.Second {
		t.Errorf("a's check %+v, want its own interval and fall over the file's rise and timeout", got)
	}
	if got := b.HealthConfig(cfg.Check); got != cfg.Check {
		t.Errorf("b's check %+v, want the file's %+v", got, cfg.Check)
	}
	if a.VirtualHostWeight != 5 || !strings.Contains(cfg.Summary(), "virtual_host_weight 5") {
		t.Errorf("weight %d; summary:\n%s", a.VirtualHostWeight, cfg.Summary())
	}
}

func TestStickyModesAndBalances(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("p.yaml", []byte(`trusted_proxies: ["10.0.0.0/8", "127.0.0.1"]
services:
  web: {servers: "a:1", cookie: "SRV insert indirect nocache httponly maxidle 30m", balance: static-rr}
  api: {servers: "b:1", cookie: "JSESSIONID rewrite"}
  ws: {servers: "c:1", balance: source}
`))
	if err != nil {
		t.Fatal(err)
	}
	web, api, ws := cfg.Services[0], cfg.Services[1], cfg.Services[2]
	if web.Sticky.Mode != sticky.ModeInsert || !web.Sticky.Indirect || !web.Sticky.HTTPOnly || web.Sticky.MaxIdle != 30*time.Minute || web.Balance != backend.StaticRR {
		t.Errorf("web: got %+v", web)
	}
	if api.Sticky.Mode != sticky.ModeRewrite || api.Sticky.Name != "JSESSIONID" {
		t.Errorf("api: got %+v", api.Sticky)
	}
	if ws.Sticky.On() || ws.Balance != backend.Source {
		t.Errorf("ws: got %+v", ws)
	}
	if got := fmt.Sprint(cfg.TrustedProxies); got != "[10.0.0.0/8 127.0.0.1/32]" {
		t.Errorf("trusted_proxies: got %s, want [10.0.0.0/8 127.0.0.1/32]", got)
	}
	if sum := cfg.Summary(); !strings.Contains(sum, "sticky cookie SRV insert indirect nocache httponly maxidle 1800s") || !strings.Contains(sum, "balance source") {
		t.Errorf("summary:\n%s", sum)
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	t.Parallel()
	_, err := Parse("p.yaml", []byte("listn: x\nservices:\n  s1:\n    servers: nope\n    balance: x\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	if n := strings.Count(err.Error(), "p.yaml:"); n != 3 {
		t.Errorf("%d problems reported, want 3:\n%v", n, err)
	}
}

func TestDurationsInMilliseconds(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("p.yaml", []byte("timeout: {connect: 5000, server: 1m}\nservices: {s: {servers: \"a:1\"}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Timeout.Connect != 5*time.Second || cfg.Timeout.Server != time.Minute {
		t.Errorf("timeouts %+v", cfg.Timeout)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("services:\n  service1:\n    servers: \"a:1\"\n"))
	f.Add([]byte("listen: \":80\"\nservices: {s: {servers: [\"a:1\", \"b:2\"], cookie: \"x prefix\"}}\n"))
	f.Add([]byte("- [\n"))
	f.Add([]byte("services: &a {s: *a}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if err == nil && len(cfg.Services) == 0 && cfg.Discovery != DiscoveryDocker {
			t.Fatal("a config without services was accepted")
		}
		if err == nil {
			_ = cfg.Summary()
		}
	})
}
