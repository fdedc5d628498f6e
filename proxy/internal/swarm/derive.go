package swarm

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/discover"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/route"
)

// Self says which task is the proxy's own, so that it can find its networks: the task
// whose container ID starts with Hostname (a container's default host name is its
// short ID), or one of whose addresses is in Addrs (the container's own addresses,
// for a service that sets its own hostname:).
type Self struct {
	Hostname string
	Addrs    []netip.Addr
}

// ErrNoSelf means that no task of the swarm is the proxy's own: it does not run as a
// swarm service, or the manager does not know its task yet.
var ErrNoSelf = errors.New("the proxy is not a task of this swarm")

// Derived is what the proxy makes of the swarm at one moment.
type Derived struct {
	Proxy    string   // the proxy's own service
	Networks []string // the networks the proxy shares with its services (ingress excluded)
	Services []config.Service
	// Warnings are whole sentences, each naming a service and a key: what of the
	// services' settings the proxy does not do, and what it does instead.
	Warnings []string
	// Left are the services on the proxy's networks that are not routed, and why.
	Left []string
	// Updating says that a routed service is in a rolling update (or its rollback):
	// its tasks change every few seconds, and the watcher polls faster meanwhile.
	Updating bool
}

// Derive turns the swarm's services into the proxy's, as dockercloud/haproxy did: every
// service that shares a network with the proxy (ingress excluded), has SERVICE_PORTS
// and is not deactivated by DeactivateLabel is routed by its VIRTUAL_HOST (none: every
// request no other service takes) to its running tasks' addresses on that network, on
// each of its SERVICE_PORTS but EXCLUDE_PORTS. balance is the proxy's own BALANCE, for
// services without one. Services are named as in their stack file (the stack's name
// cut off) unless two would then share a name.
func Derive(services []Service, tasks []Task, self Self, balance string) (Derived, error) {
	var d Derived
	own, ok := findSelf(tasks, self)
	if !ok {
		return d, fmt.Errorf("%w (no task has container %q or one of the addresses %v): run it as a swarm service, e.g. with docker stack deploy",
			ErrNoSelf, self.Hostname, self.Addrs)
	}
	nets := map[string]bool{} // IDs and names of the proxy's networks
	for _, a := range own.NetworksAttachments {
		if a.Network.Spec.Ingress || a.Network.Spec.Name == "ingress" {
			continue
		}
		nets[a.Network.ID] = true
		nets[a.Network.Spec.Name] = true
		d.Networks = append(d.Networks, a.Network.Spec.Name)
	}
	slices.Sort(d.Networks)

	services = slices.Clone(services)
	slices.SortFunc(services, func(a, b Service) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	names := shortNames(services)
	var table route.Table[string]
	for _, s := range services {
		if s.ID == own.ServiceID {
			d.Proxy = s.Spec.Name
			continue
		}
		if !joins(s.Spec, nets) {
			continue
		}
		name := names[s.ID]
		if strings.EqualFold(s.Spec.Labels[DeactivateLabel], "true") {
			d.Left = append(d.Left, fmt.Sprintf("service %s: label %s=true: not routed", name, DeactivateLabel))
			continue
		}
		sc, warnings, why := derive(name, s.Spec.TaskTemplate.ContainerSpec.Env, balance)
		d.Warnings = append(d.Warnings, warnings...)
		if why != "" {
			d.Left = append(d.Left, fmt.Sprintf("service %s: %s", name, why))
			continue
		}
		if err := table.AddWeighted(sc.VirtualHost, name, sc.VirtualHostWeight); err != nil {
			d.Warnings = append(d.Warnings, fmt.Sprintf("service %s: VIRTUAL_HOST %q: %v: %s is not routed (dockercloud merged such services; give each its own VIRTUAL_HOST)", name, sc.VirtualHost, err, name))
			continue
		}
		sc.Servers = servers(s.ID, tasks, nets, sc.Servers)
		d.Services = append(d.Services, sc)
		if u := s.UpdateStatus; u != nil && (u.State == "updating" || u.State == "rollback_started") {
			d.Updating = true
		}
	}
	return d, nil
}

// findSelf finds the proxy's own task.
func findSelf(tasks []Task, self Self) (Task, bool) {
	for _, t := range tasks {
		if id := t.Status.ContainerStatus.ContainerID; len(self.Hostname) >= 12 && strings.HasPrefix(id, self.Hostname) {
			return t, true
		}
	}
	for _, t := range tasks {
		for _, a := range t.NetworksAttachments {
			for _, addr := range a.Addresses {
				if ip, ok := ipOf(addr); ok && slices.Contains(self.Addrs, ip) {
					return t, true
				}
			}
		}
	}
	return Task{}, false
}

// ipOf reads an attachment's address, "10.0.1.5/24".
func ipOf(addr string) (netip.Addr, bool) {
	if p, err := netip.ParsePrefix(addr); err == nil {
		return p.Addr(), true
	}
	ip, err := netip.ParseAddr(addr)
	return ip, err == nil
}

// joins says whether a service joins one of the networks nets (IDs and names).
func joins(spec ServiceSpec, nets map[string]bool) bool {
	for _, n := range append(slices.Clone(spec.TaskTemplate.Networks), spec.Networks...) {
		if nets[n.Target] {
			return true
		}
	}
	return false
}

// shortNames names each service as its stack file does ("service1" for
// "test_service1" of stack test) unless two services would share the name.
func shortNames(services []Service) map[string]string {
	names := make(map[string]string, len(services))
	count := map[string]int{}
	for _, s := range services {
		n := s.Spec.Name
		if ns := s.Spec.Labels[StackLabel]; ns != "" && strings.HasPrefix(n, ns+"_") && len(n) > len(ns)+1 {
			n = n[len(ns)+1:]
		}
		names[s.ID] = n
		count[n]++
	}
	for _, s := range services {
		if count[names[s.ID]] > 1 {
			names[s.ID] = s.Spec.Name
		}
	}
	return names
}

// servers are the addresses of the running tasks of service on the networks nets, on
// each of ports (targets with a port and no host).
func servers(service string, tasks []Task, nets map[string]bool, ports []discover.Target) []discover.Target {
	var out []discover.Target
	for _, t := range tasks {
		if t.ServiceID != service || t.DesiredState != "running" || t.Status.State != "running" {
			continue
		}
		for _, a := range t.NetworksAttachments {
			if !nets[a.Network.ID] || len(a.Addresses) == 0 {
				continue
			}
			ip, ok := ipOf(a.Addresses[0])
			if !ok {
				continue
			}
			for _, p := range ports {
				out = append(out, discover.Target{Host: ip.String(), Port: p.Port})
			}
			break // one address per task, as dockercloud took
		}
	}
	slices.SortFunc(out, func(a, b discover.Target) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

// unsupportedServiceKeys are the variables of a service that dockercloud/haproxy read in swarm
// mode, and what this proxy does with each one it does not do.
var unsupportedServiceKeys = map[string]string{
	"DEFAULT_SSL_CERT":      certsFromFiles,
	"SSL_CERT":              certsFromFiles,
	"TCP_PORTS":             "the proxy balances HTTP only",
	"GZIP_COMPRESSION_TYPE": "responses pass as the service sent them",
	"OPTION":                "HAProxy options are not read",
	"EXTRA_SETTINGS":        "HAProxy settings are not read",
	"EXTRA_ROUTE_SETTINGS":  "HAProxy settings are not read",
	"FAILOVER":              "there are no backup servers",
	"EXCLUDE_BASIC_AUTH":    "the proxy has no basic auth to exclude the service from",
}

// derive reads one service's environment. why is set when the service cannot be
// routed; warnings name what of its settings the proxy does not do. The returned
// service's Servers hold only the ports (no host): Derive fills in the tasks.
func derive(name string, env []string, defaultBalance string) (sc config.Service, warnings []string, why string) {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	warn := func(key, format string, args ...any) {
		warnings = append(warnings, fmt.Sprintf("service %s: %s: ", name, key)+fmt.Sprintf(format, args...))
	}
	sc.Name = name

	ports, problems := parsePorts(vars["SERVICE_PORTS"])
	for _, p := range problems {
		warn("SERVICE_PORTS", "%s", p)
	}
	if _, ok := vars["SERVICE_PORTS"]; !ok {
		return sc, warnings, "no SERVICE_PORTS: not routed (dockercloud/haproxy needs it in swarm mode); add e.g. SERVICE_PORTS=8080"
	}
	excluded, problems := parsePorts(vars["EXCLUDE_PORTS"])
	for _, p := range problems {
		warn("EXCLUDE_PORTS", "%s", p)
	}
	ports = slices.DeleteFunc(ports, func(t discover.Target) bool { return slices.Contains(excluded, t) })
	if len(ports) == 0 {
		return sc, warnings, "no port left in SERVICE_PORTS but EXCLUDE_PORTS: not routed"
	}
	sc.Servers = ports

	vh, ok := vars["VIRTUAL_HOST"]
	if !ok || strings.TrimSpace(vh) == "" {
		// dockercloud's default backend: every request that no VIRTUAL_HOST takes.
		vh = "*"
	}
	if err := sc.SetVirtualHost(vh); err != nil {
		warn("VIRTUAL_HOST", "%q: %v", vh, err)
		return sc, warnings, "its VIRTUAL_HOST cannot be read: not routed"
	}
	if w, ok := vars["VIRTUAL_HOST_WEIGHT"]; ok {
		if err := sc.SetVirtualHostWeight(w); err != nil {
			warn("VIRTUAL_HOST_WEIGHT", "%q: %v; the weight is 0", w, err)
		}
	}
	if c, ok := vars["COOKIE"]; ok {
		if err := sc.SetCookie(c); err != nil {
			warn("COOKIE", "%q: %v; %s runs without stickiness", c, err, name)
		}
	}
	b, ok := vars["BALANCE"]
	if !ok {
		b = defaultBalance
	}
	if err := sc.SetBalance(b); err != nil {
		warn("BALANCE", "%q: %v; %s is balanced roundrobin", b, err, name)
	}
	if hc, ok := vars["HEALTH_CHECK"]; ok {
		c, problems := parseHealthCheck(hc)
		sc.Check = c
		for _, p := range problems {
			warn("HEALTH_CHECK", "%q: %s", hc, p)
		}
	}
	if hc, ok := vars["HTTP_CHECK"]; ok {
		path, problems := parseHTTPCheck(hc)
		if err := sc.SetHealthCheck(path); err != nil {
			problems = append(problems, err.Error())
		}
		for _, p := range problems {
			warn("HTTP_CHECK", "%q: %s", hc, p)
		}
	}
	// dockercloud's FORCE_SSL (any value) and HSTS_MAX_AGE (seconds): they take effect
	// when the proxy has a TLS listener (listen_tls, LISTEN_TLS).
	if _, ok := vars["FORCE_SSL"]; ok {
		sc.ForceSSL = true
	}
	if v, ok := vars["HSTS_MAX_AGE"]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			sc.HSTSMaxAge = n
		} else {
			warn("HSTS_MAX_AGE", "%q is not a number of seconds; no Strict-Transport-Security", v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(unsupportedServiceKeys)) {
		if _, ok := vars[k]; ok {
			// The value is never shown: SSL_CERT holds a private key.
			warn(k, "not supported (%s); ignored", unsupportedServiceKeys[k])
		}
	}
	return sc, warnings, ""
}

// parsePorts reads a list of ports, "8080" or "80, 8080", into targets without host.
func parsePorts(v string) (ports []discover.Target, problems []string) {
	for p := range strings.SplitSeq(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			problems = append(problems, fmt.Sprintf("%q is not a port from 1 to 65535; left out", p))
			continue
		}
		t := discover.Target{Port: strconv.Itoa(n)}
		if !slices.Contains(ports, t) {
			ports = append(ports, t)
		}
	}
	return ports, problems
}

// LocalSelf is the Self of this process: its host name and the addresses of its
// interfaces (in a container, the container's), loopback excluded.
func LocalSelf() Self {
	var s Self
	s.Hostname, _ = os.Hostname()
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() {
			s.Addrs = append(s.Addrs, p.Addr())
		}
	}
	return s
}
