// Package admin serves the proxy's admin port:
//
//	GET /stats     HTML for people; JSON with "Accept: application/json" or ?format=json;
//	               lines of text for scripts with ?format=text
//	GET /metrics   Prometheus text format (its own registry)
//	GET /healthz   200 "ok" while the process runs
//	GET /readyz    200 "ready" when every service has an available server,
//	               else 503 with one line per service that has none
//	GET /live      the live view (package live): the page, and /live/events its stream
//
// With Options.Auth ("user:pass", from STATS_AUTH) /stats, /metrics and /live ask
// for HTTP basic auth, compared in constant time; /healthz and /readyz stay
// open for orchestrators and reveal nothing.
//
// The stats JSON (field names are stable):
//
//	{
//	  "version": "dev",
//	  "engine": "fast",                     // the client listener's: fast (h1) or std (net/http)
//	  "uptime_s": 12.5,
//	  "connections": 3,                     // client connections open now
//	  "rejected": {"maxconn": 0, "maxconn_per_ip": 0},  // connections refused at once, by reason
//	  "routes": [{"rule": "*/service1/*", "service": "service1"}, ...],  // most specific first
//	  "services": [{
//	    "name": "service1",
//	    "cookie": "connect.sid",            // "" when not sticky
//	    "mode": "prefix",                   // prefix, insert or rewrite (absent when not sticky)
//	    "rule": "connect.sid prefix nocache", // the cookie rule in HAProxy's words (absent when not sticky)
//	    "nocache": true,
//	    "balance": "roundrobin",            // roundrobin, static-rr, leastconn or source
//	    "available": 2,                     // servers taking new requests
//	    "servers": [{
//	      "id": "xcspayso7h",               // the cookie prefix
//	      "address": "10.0.1.5:8080",
//	      "state": "up",                    // "up", "down" or "draining"
//	      "active": 0,                      // requests in flight
//	      "requests": 42,                   // answered (or being answered)
//	      "failures": 1                     // attempts that could not connect
//	    }],
//	    "sticky": {"hits": 40, "new": 2, "rebalanced": 1},
//	    "responses": {"1xx": 0, "2xx": 42, "3xx": 0, "4xx": 0, "5xx": 0, "other": 0}
//	                                        // other: no whole answer (the client left, or the
//	                                        // server died in the middle of the body)
//	  }],
//	  "warnings": [{                        // the stickiness doctor (package doctor); [] when none
//	    "service": "service1",
//	    "kind": "vip",                      // vip, no-cookie or cookie-path
//	    "message": "servers \"service1:8080\" is the swarm service's virtual IP ..."
//	  }]
//	}
//
// With listen_tls the JSON has "tls" too (see TLSStats).
//
// The stats text (?format=text, text/plain), for shell scripts such as stack/stack.sh:
// a first line about the proxy itself (with listen_tls, a "tls" line after it: see
// TLSStats), then one line per service, then one per server
// of it, in the JSON's order. Each service or server line is
// its kind and the service's name, then for a server its id and state, then key value
// pairs. Names, ids, states and addresses hold no blank. Lines and keys are stable;
// new keys may come at the end of a line, so read them by name (awk: for (i = 3; i < NF;
// i += 2) if ($i == "available") ...):
//
//	proxy version dev engine fast connections 3 rejected_maxconn 0 rejected_maxconn_per_ip 0
//	service service1 available 2 servers 2 cookie connect.sid balance roundrobin mode prefix
//	server service1 xcspayso7h up address 10.0.1.5:8080 active 0 requests 42 failures 1
//	server service1 mnb3kq7d2f down address 10.0.1.6:8080 active 0 requests 7 failures 3
//	service service2 available 2 servers 2 cookie - balance roundrobin mode -
//	...
//	warning service1 vip servers "service1:8080" is the swarm service's virtual IP ...
//
// after the services and servers, one warning line per condition of the
// stickiness doctor that holds: the service, the kind (vip, no-cookie,
// cookie-path), then the message, which does hold blanks (the rest of the line).
//
// cookie and mode are "-" for a service that is not sticky; state is up, down or draining.
package admin

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/doctor"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
)

// Options configure the admin handler.
type Options struct {
	// Table returns the routing table in use (required).
	Table func() *forward.Table
	// Auth is "user:pass" for basic auth on /stats and /metrics; "" is open.
	Auth string
	// Ready returns nil when the proxy serves traffic (nil func: always);
	// /readyz also fails while a service has no available server.
	Ready func() error
	// Connections returns the client connections open now (nil: not shown).
	Connections func() int64
	// Rejected returns the client connections refused so far, by reason
	// ("maxconn", "maxconn_per_ip"); nil: not shown.
	Rejected func() map[string]uint64
	Version  string
	Engine   string // the client listener's engine: "fast" or "std"
	Logger   *slog.Logger
	// Live serves /live and what is under it (a *live.Hub); nil: no live view.
	Live http.Handler

	// TLS returns the HTTPS listener's stats (nil func: no listen_tls).
	TLS func() *TLSStats
}

// NewHandler returns the admin port's handler.
func NewHandler(o Options) http.Handler {
	a := &admin{o: o, start: time.Now()}
	if o.Auth != "" {
		sum := sha256.Sum256([]byte(o.Auth))
		a.authSum = sum[:]
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&collector{a: a},
	)
	mux := http.NewServeMux()
	mux.Handle("GET /stats", a.auth(http.HandlerFunc(a.stats)))
	mux.Handle("GET /metrics", a.auth(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	if o.Live != nil {
		mux.Handle("GET /live", a.auth(o.Live))
		mux.Handle("GET /live/", a.auth(o.Live))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { text(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/stats", http.StatusFound)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		text(w, http.StatusNotFound, "not found; try /stats, /live, /metrics, /healthz or /readyz")
	})
	return mux
}

type admin struct {
	o       Options
	start   time.Time
	authSum []byte
}

func (a *admin) auth(next http.Handler) http.Handler {
	if a.authSum == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		got := sha256.Sum256([]byte(user + ":" + pass))
		// Both sides hashed: equal lengths, so the comparison takes the
		// same time whatever was sent.
		if subtle.ConstantTimeCompare(got[:], a.authSum) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="proxy stats", charset="UTF-8"`)
			text(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *admin) readyz(w http.ResponseWriter, r *http.Request) {
	if a.o.Ready != nil {
		if err := a.o.Ready(); err != nil {
			text(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	var missing []string
	for _, s := range a.o.Table().Services() {
		if s.Pool.Available() == 0 {
			missing = append(missing, "no server available for "+s.Name)
		}
	}
	if len(missing) > 0 {
		text(w, http.StatusServiceUnavailable, strings.Join(missing, "\n"))
		return
	}
	text(w, http.StatusOK, "ready")
}

// Stats is the /stats JSON document (see the package doc).
type Stats struct {
	Version     string            `json:"version"`
	Engine      string            `json:"engine,omitempty"`
	UptimeS     float64           `json:"uptime_s"`
	Connections *int64            `json:"connections,omitempty"`
	Rejected    map[string]uint64 `json:"rejected,omitempty"` // connections refused, by reason
	TLS         *TLSStats         `json:"tls,omitempty"`
	Routes      []forward.Route   `json:"routes"`
	Services    []ServiceStats    `json:"services"`
	// Warnings are the stickiness doctor's conditions that hold now.
	Warnings []doctor.Warning `json:"warnings"`
}

// ServiceStats is one service in Stats.
type ServiceStats struct {
	Name      string            `json:"name"`
	Cookie    string            `json:"cookie"`
	Mode      string            `json:"mode,omitempty"` // prefix, insert or rewrite; "" when not sticky
	Rule      string            `json:"rule,omitempty"` // the whole cookie rule, in HAProxy's words
	NoCache   bool              `json:"nocache"`
	Balance   string            `json:"balance"`
	Available int               `json:"available"`
	Servers   []ServerStats     `json:"servers"`
	Sticky    StickyStats       `json:"sticky"`
	Responses map[string]uint64 `json:"responses"`
}

// ServerStats is one server of a service.
type ServerStats struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	State    string `json:"state"`
	Active   int64  `json:"active"`
	Requests uint64 `json:"requests"`
	Failures uint64 `json:"failures"`
}

// StickyStats counts the sticky outcomes of a service.
type StickyStats struct {
	Hits       uint64 `json:"hits"`
	New        uint64 `json:"new"`
	Rebalanced uint64 `json:"rebalanced"`
}

var classes = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Snapshot reads the current stats.
func (a *admin) Snapshot() Stats {
	t := a.o.Table()
	st := Stats{Version: a.o.Version, Engine: a.o.Engine, UptimeS: time.Since(a.start).Round(time.Millisecond).Seconds(), Routes: t.Routes()}
	if st.Routes == nil {
		st.Routes = []forward.Route{}
	}
	if a.o.Connections != nil {
		n := a.o.Connections()
		st.Connections = &n
	}
	if a.o.Rejected != nil {
		st.Rejected = a.o.Rejected()
	}
	if a.o.TLS != nil {
		st.TLS = a.o.TLS()
	}
	st.Services = []ServiceStats{}
	st.Warnings = []doctor.Warning{}
	for _, s := range t.Services() {
		if s.Doctor != nil {
			st.Warnings = append(st.Warnings, s.Doctor.Warnings()...)
		}
		ss := ServiceStats{
			Name: s.Name, Cookie: s.Sticky.Name, NoCache: s.Sticky.NoCache, Balance: s.Pool.Balance().String(),
			Available: s.Pool.Available(),
			Servers:   []ServerStats{},
			Sticky:    StickyStats{Hits: s.Counters.Hits.Load(), New: s.Counters.New.Load(), Rebalanced: s.Counters.Rebalanced.Load()},
			Responses: map[string]uint64{},
		}
		if s.Sticky.On() {
			ss.Mode, ss.Rule = s.Sticky.Mode.String(), s.Sticky.String()
		}
		for i, c := range classes {
			ss.Responses[c] = s.Counters.Responses[i].Load()
		}
		for _, b := range s.Pool.Backends() {
			ss.Servers = append(ss.Servers, ServerStats{
				ID: b.ID(), Address: b.Addr(), State: b.State().String(),
				Active: b.Active(), Requests: b.Requests(), Failures: b.Failures(),
			})
		}
		st.Services = append(st.Services, ss)
	}
	return st
}

func (a *admin) stats(w http.ResponseWriter, r *http.Request) {
	st := a.Snapshot()
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_ = st.WriteText(w)
		return
	}
	if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.Execute(w, st); err != nil && a.o.Logger != nil {
		a.o.Logger.Debug("writing /stats", "err", err)
	}
}

// WriteText writes the stats text (see the package doc).
func (st Stats) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "proxy version %s engine %s", orDash(st.Version), orDash(st.Engine))
	if st.Connections != nil {
		fmt.Fprintf(bw, " connections %d", *st.Connections)
	}
	if st.Rejected != nil {
		fmt.Fprintf(bw, " rejected_maxconn %d rejected_maxconn_per_ip %d", st.Rejected["maxconn"], st.Rejected["maxconn_per_ip"])
	}
	bw.WriteString("\n")
	st.TLS.writeText(bw)
	for _, s := range st.Services {
		cookie := s.Cookie
		if cookie == "" {
			cookie = "-"
		}
		fmt.Fprintf(bw, "service %s available %d servers %d cookie %s balance %s mode %s\n",
			s.Name, s.Available, len(s.Servers), cookie, s.Balance, orDash(s.Mode))
		for _, sv := range s.Servers {
			fmt.Fprintf(bw, "server %s %s %s address %s active %d requests %d failures %d\n",
				s.Name, sv.ID, sv.State, sv.Address, sv.Active, sv.Requests, sv.Failures)
		}
	}
	for _, w := range st.Warnings {
		fmt.Fprintf(bw, "warning %s %s %s\n", w.Service, w.Kind, strings.Join(strings.Fields(w.Message), " "))
	}
	return bw.Flush()
}

// orDash is s, or "-" for nothing: a text field is never empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func text(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

var page = template.Must(template.New("stats").Funcs(template.FuncMap{"until": until}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>proxy stats</title>
<meta http-equiv="refresh" content="5">
<style>
body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}
td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}th{background:#eee}
.up{background:#dfd}.down{background:#fdd}.draining{background:#ffd}
</style></head><body>
<h1>proxy stats</h1>
{{range .Warnings}}<p style="background:#fdd;padding:.5em"><b>{{.Service}}: {{.Kind}}</b>: {{.Message}}</p>
{{end}}
<p>version {{.Version}}, up {{.UptimeS}} s{{with .Connections}}, {{.}} client connections{{end}}. Live view: <a href="/live">/live</a>. JSON: <a href="/stats?format=json">/stats?format=json</a>, <a href="/metrics">/metrics</a>.</p>
{{with .TLS}}<h2>https</h2>
<p>listen {{.Listen}} (engine {{.Engine}}, HTTP/2 and HTTP/1.1): {{.Handshakes.H2}} h2 and {{.Handshakes.HTTP1}} http/1.1 handshakes, {{.Handshakes.Resumed}} resumed.</p>
<table><tr><th>certificate</th><th>names</th><th>until</th><th></th></tr>
{{range .Certificates}}<tr><td>{{.Files}}</td><td>{{range .Names}}{{.}} {{end}}</td><td>{{until .NotAfter}}</td><td>{{if .Default}}default{{end}}</td></tr>
{{end}}</table>
{{end}}<h2>routes</h2>
<table><tr><th>rule</th><th>service</th></tr>
{{range .Routes}}<tr><td>{{.Rule}}</td><td>{{.Service}}</td></tr>
{{end}}</table>
{{range .Services}}
<h2>{{.Name}}</h2>
<p>balance {{.Balance}}{{if .Cookie}}, sticky cookie <code>{{.Rule}}</code>: {{.Sticky.Hits}} hits, {{.Sticky.New}} new, {{.Sticky.Rebalanced}} rebalanced{{end}}.
Responses: {{range $k, $v := .Responses}}{{$k}} {{$v}} {{end}}</p>
<table><tr><th>id</th><th>address</th><th>state</th><th>active</th><th>requests</th><th>failures</th></tr>
{{range .Servers}}<tr class="{{.State}}"><td><code>{{.ID}}</code></td><td>{{.Address}}</td><td>{{.State}}</td><td>{{.Active}}</td><td>{{.Requests}}</td><td>{{.Failures}}</td></tr>
{{else}}<tr><td colspan="6">no server</td></tr>
{{end}}</table>
{{end}}
</body></html>
`))
