package swarm

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/route"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// recording reads testdata/<name>: the Engine API's answers for a deployed stack
// (record.sh), and the proxy's own task's container, its host name there.
func recording(t *testing.T, name string) ([]Service, []Task, Self) {
	t.Helper()
	var services []Service
	var tasks []Task
	for file, v := range map[string]any{"services.json": &services, "tasks.json": &tasks} {
		b, err := os.ReadFile(filepath.Join("testdata", name, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s/%s: %v", name, file, err)
		}
	}
	for _, s := range services {
		if strings.HasSuffix(s.Spec.Name, "_proxy") {
			for _, task := range tasks {
				if task.ServiceID == s.ID {
					return services, tasks, Self{Hostname: task.Status.ContainerStatus.ContainerID[:12]}
				}
			}
		}
	}
	t.Fatalf("%s: no task of a proxy service", name)
	return nil, nil, Self{}
}

func byName(services []config.Service) map[string]config.Service {
	m := map[string]config.Service{}
	for _, s := range services {
		m[s.Name] = s
	}
	return m
}

// webAddrs are the addresses on the stack's network web of the running tasks of a
// service of the recording, as host:port for SERVICE_PORTS 8080.
func webAddrs(t *testing.T, services []Service, tasks []Task, name string) []string {
	t.Helper()
	var out []string
	for _, s := range services {
		if s.Spec.Name != "dropin_"+name {
			continue
		}
		for _, task := range tasks {
			for _, a := range task.NetworksAttachments {
				if task.ServiceID == s.ID && a.Network.Spec.Name == "dropin_web" {
					out = append(out, strings.TrimSuffix(a.Addresses[0], "/24")+":8080")
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func serverList(sc config.Service) []string {
	var out []string
	for _, s := range sc.Servers {
		out = append(out, s.String())
	}
	return out
}

func TestThe2018StackRoutesAsExampleYAML(t *testing.T) {
	t.Parallel()
	services, tasks, self := recording(t, "2018")
	d, err := Derive(services, tasks, self, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Warnings) > 0 || len(d.Left) > 0 {
		t.Errorf("the 2018 stack gave warnings %q and left out %q, want none", d.Warnings, d.Left)
	}
	if d.Proxy != "dropin_proxy" || !slices.Equal(d.Networks, []string{"dropin_web"}) {
		t.Errorf("got proxy %q on networks %q, want dropin_proxy on dropin_web (ingress excluded)", d.Proxy, d.Networks)
	}
	example, err := config.Load("../../example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, want := byName(d.Services), byName(example.Services)
	if len(got) != 2 {
		t.Fatalf("derived services %v, want service1 and service2", serviceNames(d.Services))
	}
	for _, name := range []string{"service1", "service2"} {
		g, w := got[name], want[name]
		if g.Sticky.String() != w.Sticky.String() || g.Balance != w.Balance {
			t.Errorf("%s: got cookie %q balance %v, want example.yaml's %q %v",
				name, g.Sticky, g.Balance, w.Sticky, w.Balance)
		}
		// Every task's own address on the shared network, not the ingress one nor a
		// VIP: what stickiness needs.
		if got, want := serverList(g), webAddrs(t, services, tasks, name); !slices.Equal(got, want) {
			t.Errorf("%s: got servers %v, want the tasks' addresses on dropin_web %v", name, got, want)
		}
	}

	// The routes: the post's VIRTUAL_HOST=*/service1 is example.yaml's first rule. The
	// requests of the tutorial go to the same service through both.
	derived, file := table(t, d.Services), table(t, example.Services)
	for _, req := range []struct{ host, path string }{
		{"localhost", "/service1"}, {"127.0.0.1:80", "/SERVICE1"}, {"example.com", "/service2"},
		{"localhost", "/"}, {"localhost", "/service3"}, {"localhost", "/service12"},
	} {
		g, gok := derived.Match(req.host, req.path)
		w, wok := file.Match(req.host, req.path)
		if g != w || gok != wok {
			t.Errorf("%s%s: the 2018 stack routes to %q (%v), example.yaml to %q (%v)", req.host, req.path, g, gok, w, wok)
		}
	}
	// What differs, as dockercloud/haproxy did: "*/service1" is that path only.
	if g, ok := derived.Match("localhost", "/service1/page"); ok {
		t.Errorf("/service1/page goes to %q; VIRTUAL_HOST=*/service1 routes only /service1 (example.yaml adds */service1/*)", g)
	}
}

func table(t *testing.T, services []config.Service) *route.Table[string] {
	t.Helper()
	var tb route.Table[string]
	for _, s := range services {
		if err := tb.AddWeighted(s.VirtualHost, s.Name, s.VirtualHostWeight); err != nil {
			t.Fatal(err)
		}
	}
	return &tb
}

func TestExtrasLeaveOutAndWarn(t *testing.T) {
	t.Parallel()
	services, tasks, self := recording(t, "extras")
	d, err := Derive(services, tasks, self, "")
	if err != nil {
		t.Fatal(err)
	}
	got := byName(d.Services)
	for _, name := range []string{"deactivated", "noports", "elsewhere"} {
		if _, ok := got[name]; ok {
			t.Errorf("service %s is routed; want it left out", name)
		}
	}
	wantLeft := []string{
		"service deactivated: label com.docker.dockercloud.haproxy.deactivate=true: not routed",
		"service noports: no SERVICE_PORTS: not routed",
	}
	for _, w := range wantLeft {
		if !slices.ContainsFunc(d.Left, func(l string) bool { return strings.HasPrefix(l, w) }) {
			t.Errorf("left out %q, want a note starting %q", d.Left, w)
		}
	}
	if slices.ContainsFunc(d.Left, func(l string) bool { return strings.Contains(l, "elsewhere") }) {
		t.Errorf("a service on another network is mentioned: %q", d.Left)
	}

	insert, ok := got["insert"]
	if !ok {
		t.Fatalf("service insert is not routed: %q %q", d.Warnings, d.Left)
	}
	// dockercloud's own example COOKIE and BALANCE=source, as the file's parser reads them.
	if insert.Sticky.Mode != sticky.ModeInsert || insert.Sticky.Name != "SRV" || !insert.Sticky.Indirect || !insert.Sticky.NoCache ||
		insert.Balance != backend.Source || insert.HealthCheck != "/healthz" || insert.VirtualHostWeight != 2 {
		t.Errorf("insert: cookie %q balance %v health_check %q weight %d, want SRV insert indirect nocache, source, /healthz, 2",
			insert.Sticky, insert.Balance, insert.HealthCheck, insert.VirtualHostWeight)
	}
	if !insert.ForceSSL {
		t.Error("insert: FORCE_SSL=yes, want force_ssl on (dockercloud: any value)")
	}
	if c := insert.Check; c.Interval != time.Second || c.Rise != 1 || c.Fall != 2 {
		t.Errorf("insert: check %+v, want HEALTH_CHECK's inter 1000 rise 1 fall 2", c)
	}
	if got, want := serverList(insert), webAddrs(t, services, tasks, "insert"); !slices.Equal(got, want) {
		t.Errorf("insert: servers %v, want %v (SERVICE_PORTS 8080, 9090 but EXCLUDE_PORTS 9090)", got, want)
	}
	wantWarnings := []string{
		"service insert: SSL_CERT: not supported (certificates come from files, not the environment",
	}
	for _, w := range wantWarnings {
		if !slices.ContainsFunc(d.Warnings, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("warnings %q, want one starting %q", d.Warnings, w)
		}
	}
	if len(d.Warnings) != len(wantWarnings) {
		t.Errorf("got %d warnings %q, want %d", len(d.Warnings), d.Warnings, len(wantWarnings))
	}
	for _, w := range d.Warnings {
		if strings.Contains(w, "never-shown") {
			t.Errorf("a warning shows SSL_CERT's value: %q", w)
		}
	}
}

func TestDeriveNamesServicesAndCatchesConflicts(t *testing.T) {
	t.Parallel()
	net := []NetworkTarget{{Target: "web1"}}
	svc := func(id, name, stack string, env ...string) Service {
		var s Service
		s.ID, s.Spec.Name = id, name
		s.Spec.Labels = map[string]string{StackLabel: stack}
		s.Spec.TaskTemplate.ContainerSpec.Env = env
		s.Spec.TaskTemplate.Networks = net
		return s
	}
	task := func(service, container, ip string) Task {
		var t Task
		t.ServiceID, t.DesiredState = service, "running"
		t.Status.State = "running"
		t.Status.ContainerStatus.ContainerID = container
		var a NetworkAttachment
		a.Network.ID, a.Network.Spec.Name, a.Addresses = "web1", "a_web", []string{ip + "/24"}
		t.NetworksAttachments = []NetworkAttachment{a}
		return t
	}
	services := []Service{
		svc("p", "a_proxy", "a"),
		svc("x", "a_app", "a", "SERVICE_PORTS=80", "VIRTUAL_HOST=*/app"),
		svc("y", "b_app", "b", "SERVICE_PORTS=80", "VIRTUAL_HOST=*/other"),
		svc("z", "b_web", "b", "SERVICE_PORTS=80", "VIRTUAL_HOST=*/app"),
		svc("w", "b_default", "b", "SERVICE_PORTS=80"),
	}
	tasks := []Task{
		task("p", "0123456789abcdef", "10.0.0.2"),
		task("x", "1", "10.0.0.3"),
		func() Task { t := task("x", "2", "10.0.0.4"); t.Status.State = "starting"; return t }(),
	}

	t.Run("two services of one name in two stacks keep their full names", func(t *testing.T) {
		d, err := Derive(services, tasks, Self{Hostname: "0123456789ab"}, "leastconn")
		if err != nil {
			t.Fatal(err)
		}
		got := byName(d.Services)
		for _, name := range []string{"a_app", "b_app", "default"} {
			if _, ok := got[name]; !ok {
				t.Errorf("no service %s among %v", name, serviceNames(d.Services))
			}
		}
		if got["a_app"].Balance != backend.LeastConn {
			t.Errorf("a_app: balance %v, want the proxy's BALANCE leastconn", got["a_app"].Balance)
		}
		if s := serverList(got["a_app"]); !slices.Equal(s, []string{"10.0.0.3:80"}) {
			t.Errorf("a_app: servers %v, want only the running task 10.0.0.3:80 (not the starting one)", s)
		}
		if got["default"].VirtualHost != "*" {
			t.Errorf("a service without VIRTUAL_HOST routes %q, want * (dockercloud's default backend)", got["default"].VirtualHost)
		}
	})
	t.Run("a route claimed twice goes to the first service by name", func(t *testing.T) {
		d, _ := Derive(services, tasks, Self{Hostname: "0123456789ab"}, "")
		if _, ok := byName(d.Services)["web"]; ok {
			t.Errorf("b_web, whose */app a_app has, is routed")
		}
		if !slices.ContainsFunc(d.Warnings, func(w string) bool {
			return strings.HasPrefix(w, `service web: VIRTUAL_HOST "*/app": "*/app" is already routed to a_app`)
		}) {
			t.Errorf("warnings %q, want one about web's VIRTUAL_HOST", d.Warnings)
		}
	})
	t.Run("the proxy finds its task by its address", func(t *testing.T) {
		d, err := Derive(services, tasks, Self{Hostname: "myproxy", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}}, "")
		if err != nil || d.Proxy != "a_proxy" {
			t.Errorf("got proxy %q, %v; want a_proxy", d.Proxy, err)
		}
	})
	t.Run("a proxy that is no task of the swarm says so", func(t *testing.T) {
		_, err := Derive(services, tasks, Self{Hostname: "myproxy"}, "")
		if !errors.Is(err, ErrNoSelf) {
			t.Errorf("got %v, want ErrNoSelf", err)
		}
	})
}

func serviceNames(s []config.Service) []string {
	var out []string
	for _, x := range s {
		out = append(out, x.Name)
	}
	return out
}

func TestDeriveReadsEachVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   []string
		check func(t *testing.T, sc config.Service, warnings []string, why string)
	}{
		{"COOKIE goes through the file's own parser", []string{"SERVICE_PORTS=8080", "COOKIE=connect.sid prefix nocache"},
			func(t *testing.T, sc config.Service, _ []string, _ string) {
				var want config.Service
				if err := want.SetCookie("connect.sid prefix nocache"); err != nil {
					t.Fatal(err)
				}
				if sc.Sticky.String() != want.Sticky.String() {
					t.Errorf("got cookie %q, want %q", sc.Sticky, want.Sticky)
				}
			}},
		{"a bad port is left out with a warning", []string{"SERVICE_PORTS=8080, http"},
			func(t *testing.T, sc config.Service, w []string, _ string) {
				if len(sc.Servers) != 1 || len(w) != 1 || !strings.Contains(w[0], `SERVICE_PORTS: "http" is not a port`) {
					t.Errorf("got ports %v and warnings %q, want 8080 and one warning naming http", sc.Servers, w)
				}
			}},
		{"a VIRTUAL_HOST this proxy cannot read leaves the service out", []string{"SERVICE_PORTS=8080", "VIRTUAL_HOST=https://example.com"},
			func(t *testing.T, _ config.Service, w []string, why string) {
				if why == "" || len(w) != 1 || !strings.Contains(w[0], "drop the https:// scheme") {
					t.Errorf("got why %q warnings %q, want the service left out and the reason", why, w)
				}
			}},
		{"a bad weight is 0 with a warning", []string{"SERVICE_PORTS=8080", "VIRTUAL_HOST_WEIGHT=high"},
			func(t *testing.T, sc config.Service, w []string, _ string) {
				if sc.VirtualHostWeight != 0 || len(w) != 1 || !strings.Contains(w[0], "VIRTUAL_HOST_WEIGHT") {
					t.Errorf("got weight %d warnings %q", sc.VirtualHostWeight, w)
				}
			}},
		{"HTTP_CHECK OPTIONS * stays a TCP check with a warning", []string{"SERVICE_PORTS=8080", `HTTP_CHECK=OPTIONS * HTTP/1.1\r\nHost:\ www`},
			func(t *testing.T, sc config.Service, w []string, _ string) {
				if sc.HealthCheck != "" || len(w) != 2 {
					t.Errorf("got health_check %q warnings %q, want a TCP check and two warnings", sc.HealthCheck, w)
				}
			}},
		{"every port excluded leaves the service out", []string{"SERVICE_PORTS=8080", "EXCLUDE_PORTS=8080"},
			func(t *testing.T, _ config.Service, _ []string, why string) {
				if !strings.Contains(why, "EXCLUDE_PORTS") {
					t.Errorf("got why %q, want EXCLUDE_PORTS named", why)
				}
			}},
		{"an unsupported key warns once, without its value", []string{"SERVICE_PORTS=8080", "TCP_PORTS=22", "GZIP_COMPRESSION_TYPE=text/html"},
			func(t *testing.T, _ config.Service, w []string, _ string) {
				if len(w) != 2 || !strings.HasPrefix(w[0], "service s: GZIP_COMPRESSION_TYPE: not supported") || !strings.HasPrefix(w[1], "service s: TCP_PORTS: not supported") || strings.Contains(w[1], "22") {
					t.Errorf("got warnings %q", w)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc, w, why := derive("s", tt.env, "")
			tt.check(t, sc, w, why)
		})
	}
}
