// Package config is the proxy's configuration file: its types, defaults, and the parser
// that reports every problem at once, each as "file:line: what is wrong; what to write".
// The vocabulary is dockercloud/haproxy's (virtual_host, cookie, balance, health_check);
// proxy/README.md lists every key.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/discover"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/health"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/route"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// Config is the proxy's configuration file, with dockercloud/haproxy's
// vocabulary (see proxy/README.md and proxy/example.yaml). Parse fills what the file
// leaves out with Default's values.
type Config struct {
	File            string        // the file it was read from, for messages
	Listen          string        // listen: ":80"
	Admin           string        // admin: "" (off) or ":1936"
	MaxConn         int           // maxconn: 4096 client connections at once
	MaxConnPerIP    int           // maxconn_per_ip: 512 of them from one client address; 0: no cap
	BodyMinRate     int           // body_min_rate: 500 bytes/s that a request body must average after timeout.body
	ServerName      string        // server_name: "localhost", the Host of an HTTP/1.0 request that has none
	MaxHeaderBytes  int           // max_header_bytes: 32768; more gets 431
	Retries         int           // retries: 3 other servers after a failed connection
	ResolveInterval time.Duration // resolve_interval: 5s
	AccessLog       bool          // access_log: true
	Engine          string        // engine: "fast" (package h1) or "std" (net/http)
	Timeout         Timeouts
	Check           health.Config // check: {interval: 2s, timeout: 2s, rise: 2, fall: 3}
	TLS             TLS           // listen_tls, certificates, https_port, force_ssl, hsts_max_age
	// Discovery is where Services come from: DiscoveryFile (services: in the file) or
	// DiscoveryDocker (the swarm, through the Docker Engine API: Services is empty
	// here and filled by the proxy as the swarm changes).
	Discovery string
	// TrustedProxies: trusted_proxies: "10.0.0.0/8, 127.0.0.1": peers whose last
	// X-Forwarded-For hop is the client's address for balance source.
	TrustedProxies []netip.Prefix
	Services       []Service
}

// The values of discovery:.
const (
	DiscoveryFile   = "file"
	DiscoveryDocker = "docker"
)

// Timeouts are dockercloud's TIMEOUT and HAProxy's "timeout" settings: together they
// bound every phase of a request, so that no client (and no server) can hold a
// connection for longer than they allow without moving bytes.
type Timeouts struct {
	Connect     time.Duration // connect: 5s, to reach a server (then the next one is tried)
	Server      time.Duration // server: 50s, from the request sent to the server's response headers (504)
	Client      time.Duration // client: 50s, idle keep-alive client connections
	HTTPRequest time.Duration // http_request: 10s, to receive a request's headers (408)
	// Body: 10s, the longest pause while the client sends its request body; past it
	// (or past the time body_min_rate allows) the request gets 408.
	Body time.Duration
	// Write: 30s, the longest one write to the client may wait (a client that stops
	// reading); a response that keeps moving may take as long as it needs.
	Write  time.Duration
	Tunnel time.Duration // tunnel: 1h, an upgraded connection (websocket) silent both ways
}

// Service is one entry of services:.
// The setters in service.go read each key's value, for the file and for the
// swarm's service environment alike.
type Service struct {
	Name              string
	VirtualHost       string            // virtual_host: "*/NAME, */NAME/*"
	VirtualHostWeight int               // virtual_host_weight: 0; higher weights' rules are tried first
	Servers           []discover.Target // servers: "tasks.NAME:8080" or a list
	Sticky            sticky.Rule       // cookie: "connect.sid prefix nocache" (zero: not sticky)
	Balance           backend.Balance   // balance: roundrobin
	HealthCheck       string            // health_check: "" (TCP connect) or "/healthz"
	Check             health.Config     // check: this service's own; zero fields take the file's check:
	ForceSSL          bool              // force_ssl: cleartext requests get 301 to https (default: the top-level force_ssl)
	HSTSMaxAge        int               // hsts_max_age: seconds of Strict-Transport-Security on HTTPS answers, 0 none
	serversRaw        string            // as written, for the summary
	rules             []route.Rule      // parsed virtual_host
	forceSSL          *bool             // as written, nil: the top-level value
	hstsMaxAge        *int
}

// Default is the configuration of an empty file (but for services, which it must have):
// dockercloud/haproxy's defaults.
func Default() Config {
	return Config{
		Listen:          ":80",
		MaxConn:         4096,
		MaxConnPerIP:    512,
		BodyMinRate:     500,
		ServerName:      "localhost",
		MaxHeaderBytes:  32 << 10,
		Retries:         3,
		ResolveInterval: 5 * time.Second,
		AccessLog:       true,
		Engine:          "fast",
		Timeout: Timeouts{
			Connect:     5 * time.Second,
			Server:      50 * time.Second,
			Client:      50 * time.Second,
			HTTPRequest: 10 * time.Second,
			Body:        10 * time.Second,
			Write:       30 * time.Second,
			Tunnel:      time.Hour,
		},
		Check:     health.Config{}.WithDefaults(),
		Discovery: DiscoveryFile,
	}
}

// Load reads and checks the file. Every problem is reported, each as
// "file:line: what is wrong; what to write".
func Load(file string) (*Config, error) { return LoadOnto(file, Default()) }

// LoadOnto is Load with base in place of Default: what the file leaves out keeps
// base's value (PROXY_DISCOVERY=docker gives a base whose Discovery is docker).
func LoadOnto(file string, base Config) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w; give its path with -config or PROXY_CONFIG, or take the services from the swarm with PROXY_DISCOVERY=docker", err)
	}
	return ParseOnto(file, data, base)
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// Parse reads a configuration from data; file names it in errors.
func Parse(file string, data []byte) (*Config, error) { return ParseOnto(file, data, Default()) }

// ParseOnto is Parse with base in place of Default (see LoadOnto).
func ParseOnto(file string, data []byte, base Config) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		line := "1"
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			if m[1] != "" {
				line = m[1]
			}
			msg = msg[len(m[0]):]
		}
		return nil, fmt.Errorf("%s:%s: %s (YAML syntax)", file, line, msg)
	}
	p := &parser{file: file}
	cfg := base
	cfg.Services = nil
	cfg.File = file
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s:1: the file is empty; start from example.yaml", file)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: expected keys such as listen: and services:, got a %s", file, root.Line, kindName(root))
	}
	var services, discoveryNode *yaml.Node
	p.mapping(root, "", topKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "listen":
			cfg.Listen = p.addr(v, key, false)
		case "admin":
			cfg.Admin = p.addr(v, key, true)
		case "maxconn":
			cfg.MaxConn = p.int(v, key, 1, 1<<20)
		case "maxconn_per_ip":
			cfg.MaxConnPerIP = p.int(v, key, 0, 1<<20)
		case "body_min_rate":
			cfg.BodyMinRate = p.int(v, key, 0, 1<<30)
		case "server_name":
			cfg.ServerName = p.str(v, key)
			if !validServerName(cfg.ServerName) {
				p.errorf(v, "server_name: %q is not a host name; write e.g. example.com or localhost", cfg.ServerName)
			}
		case "max_header_bytes":
			cfg.MaxHeaderBytes = p.int(v, key, 1024, 1<<24)
		case "retries":
			cfg.Retries = p.int(v, key, 0, 10)
		case "resolve_interval":
			cfg.ResolveInterval = p.duration(v, key, true)
		case "access_log":
			cfg.AccessLog = p.bool(v, key)
		case "engine":
			cfg.Engine = p.str(v, key)
			if cfg.Engine != "fast" && cfg.Engine != "std" {
				p.errorf(v, "engine: %q: write fast (the default) or std (net/http)", cfg.Engine)
			}
		case "timeout":
			p.mapping(v, "timeout.", timeoutKeys, func(key string, _, v *yaml.Node) {
				d := p.duration(v, "timeout."+key, true)
				switch key {
				case "connect":
					cfg.Timeout.Connect = d
				case "server":
					cfg.Timeout.Server = d
				case "client":
					cfg.Timeout.Client = d
				case "http_request":
					cfg.Timeout.HTTPRequest = d
				case "body":
					cfg.Timeout.Body = d
				case "write":
					cfg.Timeout.Write = d
				case "tunnel":
					cfg.Timeout.Tunnel = d
				}
			})
		case "check":
			p.check(v, "check.", &cfg.Check)
		case "discovery":
			switch d := p.str(v, key); d {
			case DiscoveryFile, DiscoveryDocker:
				cfg.Discovery = d
			default:
				p.errorf(v, "discovery: %q: write file (the services: of this file) or docker (the swarm's services, from the Docker Engine API)", d)
			}
			discoveryNode = v
		case "trusted_proxies":
			cfg.TrustedProxies = p.prefixes(v, key)
		case "listen_tls", "certificates", "https_port", "force_ssl", "hsts_max_age":
			p.tls(&cfg, key, k, v)
		case "services":
			services = v
		}
	})
	switch {
	case cfg.Discovery == DiscoveryDocker && services != nil:
		at := services
		if discoveryNode != nil {
			at = discoveryNode
		}
		p.errorf(at, "services: and discovery: docker exclude each other: with docker the services come from the swarm (their VIRTUAL_HOST, SERVICE_PORTS...); remove services: or discovery: docker")
	case cfg.Discovery == DiscoveryDocker:
	case services == nil:
		p.errorf(root, `services: is missing; add at least one, e.g. services: {service1: {servers: "tasks.service1:8080"}}, or take them from the swarm with discovery: docker`)
	default:
		p.services(&cfg, services)
		resolveTLS(&cfg)
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return &cfg, nil
}

var (
	topKeys     = []string{"listen", "admin", "maxconn", "maxconn_per_ip", "body_min_rate", "server_name", "max_header_bytes", "retries", "resolve_interval", "access_log", "engine", "timeout", "check", "discovery", "trusted_proxies", "listen_tls", "certificates", "https_port", "force_ssl", "hsts_max_age", "services"}
	timeoutKeys = []string{"connect", "server", "client", "http_request", "body", "write", "tunnel"}
	checkKeys   = []string{"interval", "timeout", "rise", "fall"}
	serviceKeys = []string{"virtual_host", "virtual_host_weight", "servers", "cookie", "balance", "health_check", "check", "force_ssl", "hsts_max_age"}
	serviceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// services reads services:, one entry per service; a route claimed twice is an error
// at the second claim.
func (p *parser) services(cfg *Config, n *yaml.Node) {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		p.errorf(n, `services: expected one entry per service, e.g. service1: {servers: "tasks.service1:8080"}`)
		return
	}
	var table route.Table[string]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		switch {
		case !serviceName.MatchString(name):
			p.errorf(k, "service name %q: use letters, digits, '.', '_' and '-'", name)
		case slices.ContainsFunc(cfg.Services, func(s Service) bool { return s.Name == name }):
			p.errorf(k, "service %s is defined twice", name)
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			p.errorf(v, `service %s is empty; write at least servers: "tasks.%s:8080"`, name, name)
		default:
			cfg.Services = append(cfg.Services, p.service(k, v, &table))
		}
	}
}

// service reads the entry of the service named by k and adds its routes to table.
func (p *parser) service(k, v *yaml.Node, table *route.Table[string]) Service {
	name := k.Value
	sc := Service{Name: name}
	where := "services." + name + "."
	var vhNode *yaml.Node
	p.mapping(v, where, serviceKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "virtual_host":
			sc.VirtualHost = p.str(v, where+key)
			vhNode = v
		case "virtual_host_weight":
			sc.VirtualHostWeight = p.int(v, where+key, -maxWeight, maxWeight)
		case "servers":
			sc.Servers, sc.serversRaw = p.servers(v, where, name)
		case "cookie":
			if err := sc.SetCookie(p.str(v, where+key)); err != nil {
				p.errorf(v, "%scookie: %v", where, err)
			}
		case "balance":
			if err := sc.SetBalance(p.str(v, where+key)); err != nil {
				p.errorf(v, "%sbalance: %v", where, err)
			}
		case "health_check":
			if err := sc.SetHealthCheck(p.str(v, where+key)); err != nil {
				p.errorf(v, "%shealth_check %v", where, err)
			}
		case "check":
			p.check(v, where+"check.", &sc.Check)
		case "force_ssl", "hsts_max_age":
			p.serviceTLS(&sc, where, key, v)
		}
	})
	if sc.Servers == nil && sc.serversRaw == "" {
		p.errorf(k, `service %s: servers is missing; write servers: "tasks.%s:8080"`, name, name)
	}
	if sc.VirtualHost == "" {
		// The tutorial's own routing, so a service needs no more than its servers.
		sc.VirtualHost = fmt.Sprintf("*/%s, */%s/*", name, name)
		vhNode = k
	}
	err := sc.SetVirtualHost(sc.VirtualHost)
	if err == nil {
		err = table.Add(sc.VirtualHost, name)
	}
	if err != nil {
		p.errorf(vhNode, "%svirtual_host: %v", where, err)
	}
	return sc
}

// servers reads a servers: value, a string or a list of strings, into targets, and
// gives it back as written for the summary. A bad entry is one problem of its own.
func (p *parser) servers(v *yaml.Node, where, service string) ([]discover.Target, string) {
	var entries []string
	if v.Kind == yaml.SequenceNode {
		for _, e := range v.Content {
			entries = append(entries, p.str(e, where+"servers"))
		}
	} else {
		entries = []string{p.str(v, where+"servers")}
	}
	t, err := discover.Parse(entries)
	if err != nil {
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			p.errorf(v, "%sservers: %v, e.g. \"tasks.%s:8080\"", where, e, service)
		}
	}
	return t, strings.Join(entries, ", ")
}

// prefixes reads a list of addresses and CIDR prefixes, a string ("10.0.0.0/8,
// 127.0.0.1") or a YAML list; an address is a prefix of its own length.
func (p *parser) prefixes(v *yaml.Node, key string) []netip.Prefix {
	var entries []string
	if v.Kind == yaml.SequenceNode {
		for _, e := range v.Content {
			entries = append(entries, p.str(e, key))
		}
	} else {
		entries = strings.Split(p.str(v, key), ",")
	}
	var out []netip.Prefix
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pf, err := netip.ParsePrefix(e)
		if err != nil {
			p.errorf(v, "%s: %q is not an address or a prefix such as 10.0.0.0/8", key, e)
			continue
		}
		out = append(out, pf.Masked())
	}
	return out
}

// parser collects every problem of a file, each with its line.
type parser struct {
	file string
	errs []error
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s", p.file, n.Line, fmt.Sprintf(format, args...)))
}

// mapping walks the keys of n, rejecting unknown and repeated ones.
func (p *parser) mapping(n *yaml.Node, where string, known []string, fn func(key string, k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: expected keys (%s), got a %s", strings.TrimSuffix(where, "."), strings.Join(known, ", "), kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		if !slices.Contains(known, key) {
			hint := ""
			if s := closest(key, known); s != "" {
				hint = fmt.Sprintf("did you mean %q? ", s)
			}
			p.errorf(k, "unknown key %s%s; %sknown keys: %s", where, key, hint, strings.Join(known, ", "))
			continue
		}
		if seen[key] {
			p.errorf(k, "%s%s is set twice", where, key)
			continue
		}
		seen[key] = true
		fn(key, k, v)
	}
}

func (p *parser) str(n *yaml.Node, key string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s: expected a string, got a %s", key, kindName(n))
		return ""
	}
	return strings.TrimSpace(n.Value)
}

// addr reads a listen address, host:port or :port ("" is off when allowed).
func (p *parser) addr(n *yaml.Node, key string, emptyOK bool) string {
	s := p.str(n, key)
	if s == "" && emptyOK {
		return ""
	}
	if err := cli.CheckAddr(s); err != nil {
		p.errorf(n, "%s: %v", key, err)
	}
	return s
}

func (p *parser) int(n *yaml.Node, key string, lo, hi int) int {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || v < lo || v > hi {
		p.errorf(n, "%s: %q is not a whole number from %d to %d", key, n.Value, lo, hi)
		return 0
	}
	return v
}

func (p *parser) bool(n *yaml.Node, key string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.errorf(n, "%s: %q is not true or false", key, n.Value)
	}
	return b
}

// duration reads "5s", "1m30s", "500ms", or a bare number of milliseconds
// as HAProxy and dockercloud's TIMEOUT ("connect 5000").
func (p *parser) duration(n *yaml.Node, key string, positive bool) time.Duration {
	s := strings.TrimSpace(n.Value)
	d, err := ParseDuration(s)
	switch {
	case n.Kind != yaml.ScalarNode || err != nil:
		p.errorf(n, `%s: %q is not a duration; write e.g. "5s", "500ms" or 5000 (milliseconds)`, key, s)
	case d < 0 || (positive && d == 0):
		p.errorf(n, "%s: %q must be more than 0", key, s)
	}
	return d
}

// ParseDuration reads "5s", "1m30s", "500ms", or a bare number of milliseconds as
// HAProxy and dockercloud's TIMEOUT write them ("connect 5000").
func ParseDuration(s string) (time.Duration, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(ms) * time.Millisecond, nil
	}
	return time.ParseDuration(s)
}

// check reads a check: mapping (the file's, or a service's own) into c.
func (p *parser) check(n *yaml.Node, where string, c *health.Config) {
	p.mapping(n, where, checkKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "interval":
			c.Interval = p.duration(v, where+key, true)
		case "timeout":
			c.Timeout = p.duration(v, where+key, true)
		case "rise":
			c.Rise = p.int(v, where+key, 1, 100)
		case "fall":
			c.Fall = p.int(v, where+key, 1, 100)
		}
	})
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("value (%q)", n.Value)
	}
	return "alias"
}

// closest returns the known key nearest to key, if it is a likely typo.
func closest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// NeedsRestart lists the settings whose change from old to c a reload cannot apply:
// the listeners and their limits are set up once, at start. (Certificates are not
// among them: a reload loads them again.)
func (c *Config) NeedsRestart(old *Config) []string {
	var keys []string
	if old.Listen != c.Listen {
		keys = append(keys, "listen")
	}
	if old.Admin != c.Admin {
		keys = append(keys, "admin")
	}
	if old.MaxConn != c.MaxConn || old.MaxConnPerIP != c.MaxConnPerIP {
		keys = append(keys, "maxconn")
	}
	if old.BodyMinRate != c.BodyMinRate || old.ServerName != c.ServerName || old.Engine != c.Engine {
		keys = append(keys, "body_min_rate, server_name, engine")
	}
	if old.MaxHeaderBytes != c.MaxHeaderBytes {
		keys = append(keys, "max_header_bytes")
	}
	if old.Timeout != c.Timeout {
		keys = append(keys, "timeout")
	}
	if old.TLS.Listen != c.TLS.Listen {
		keys = append(keys, "listen_tls")
	}
	return keys
}

// validServerName accepts a host name (letters, digits, '-', '.'), the Host a server
// receives for an HTTP/1.0 request that named none.
func validServerName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Summary describes the configuration in a few lines, for -check.
func (c *Config) Summary() string {
	var b strings.Builder
	admin := c.Admin
	if admin == "" {
		admin = "off"
	}
	fmt.Fprintf(&b, "%s: ok\nlisten %s (engine %s), admin %s, maxconn %d (%d per client address), retries %d\n",
		c.File, c.Listen, c.Engine, admin, c.MaxConn, c.MaxConnPerIP, c.Retries)
	fmt.Fprintf(&b, "timeouts: connect %v, server %v, client %v, http_request %v, body %v (then %d bytes/s), write %v, tunnel %v\n",
		c.Timeout.Connect, c.Timeout.Server, c.Timeout.Client, c.Timeout.HTTPRequest, c.Timeout.Body, c.BodyMinRate, c.Timeout.Write, c.Timeout.Tunnel)
	if c.TLS.Listen != "" {
		fmt.Fprintf(&b, "listen_tls %s (HTTP/2 and HTTP/1.1, TLS 1.2+), %d certificate(s)\n", c.TLS.Listen, len(c.TLS.Certificates))
	}
	if c.Discovery == DiscoveryDocker {
		fmt.Fprintf(&b, "discovery docker: the services come from the swarm (Docker Engine API), followed every %v and on its events\n", c.ResolveInterval)
	}
	for _, s := range c.Services {
		var rules []string
		for _, r := range s.rules {
			rules = append(rules, r.String())
		}
		fmt.Fprintf(&b, "service %s: %s -> %s", s.Name, strings.Join(rules, ", "), s.serversRaw)
		if slices.ContainsFunc(s.Servers, func(t discover.Target) bool { return !t.Static() }) {
			fmt.Fprintf(&b, " (resolved every %v)", c.ResolveInterval)
		}
		fmt.Fprintf(&b, "; balance %v", s.Balance)
		if s.Sticky.On() {
			fmt.Fprintf(&b, "; sticky cookie %s", s.Sticky)
		}
		if s.ForceSSL {
			fmt.Fprintf(&b, "; force_ssl to port %d", c.TLS.RedirectPort())
		}
		if s.HSTSMaxAge > 0 {
			fmt.Fprintf(&b, "; hsts max-age=%d", s.HSTSMaxAge)
		}
		if s.HealthCheck != "" {
			fmt.Fprintf(&b, "; check GET %s", s.HealthCheck)
		} else {
			b.WriteString("; check TCP connect")
		}
		hc := s.HealthConfig(c.Check)
		fmt.Fprintf(&b, " every %v rise %d fall %d", hc.Interval, hc.Rise, hc.Fall)
		if s.VirtualHostWeight != 0 {
			fmt.Fprintf(&b, "; virtual_host_weight %d", s.VirtualHostWeight)
		}
		b.WriteString("\n")
	}
	return b.String()
}
