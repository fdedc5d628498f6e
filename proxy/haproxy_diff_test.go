package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// The differential test: the same request sequences through a real HAProxy
// (Debian's haproxy 2.6, as `make bench` and CI install it) and through our
// proxy on both engines, with the same cookie rule, over the same kind of
// backends. It compares what the client gets (status, which server answered,
// every Set-Cookie, Cache-Control) and what the backend gets (its Cookie
// headers), with the server ids mapped: HAProxy's are s1 and s2, ours keyed
// hashes. Where we differ from HAProxy on purpose, the scenario says so and
// asserts our behaviour instead.

// diffBackend is one server behind both proxies: it answers its name and the
// Cookie headers it got, and sets what the request asks for (X-Set-Cookie,
// repeated; X-Cache-Control).
type diffBackend struct {
	name, addr string
	srv        *http.Server
}

func startDiffBackend(t *testing.T, name string) *diffBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &diffBackend{name: name, addr: ln.Addr().String()}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, sc := range r.Header.Values("X-Set-Cookie") {
			w.Header().Add("Set-Cookie", sc)
		}
		if cc := r.Header.Get("X-Cache-Control"); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"name": name, "cookie": strings.Join(r.Header.Values("Cookie"), "\n")})
	})}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

// diffStep is one request of a scenario. Headers may hold {S} and {O}: the
// id, in the proxy under test, of the server that answered the first step
// (the visitor's home) and of the other one; {D-600} a valid maxidle date 600
// s ago ("|last|first" dates), {D-7200} an expired one.
type diffStep struct {
	what    string
	method  string
	headers []string
	killS   bool // stop the home server before this step
	// differs says why ours differs from HAProxy on purpose at this step;
	// the Set-Cookie each gives is then asserted on its own.
	differs                         string
	haproxySetCookie, oursSetCookie []string
}

type diffScenario struct {
	name, rule string
	steps      []diffStep
	// oursPrivate: on purpose, ours answers Cache-Control: private whenever
	// a Set-Cookie carries an id, where HAProxy may not: ours must then be
	// HAProxy's directives plus private.
	oursPrivate string
}

var diffScenarios = []diffScenario{
	{name: "prefix nocache, the tutorial's", rule: "connect.sid prefix nocache",
		oursPrivate: "HAProxy's nocache does nothing in prefix mode; ours makes an answer carrying an id private",
		steps: []diffStep{
			{what: "a new visitor: the session cookie gets the id", headers: []string{"X-Set-Cookie: connect.sid=s%3Aone; Path=/; HttpOnly"}},
			{what: "it comes back: the id comes off", headers: []string{"Cookie: a=1; connect.sid={S}~s%3Aone; b=x~y"}},
			{what: "an unknown id comes off too", headers: []string{"Cookie: connect.sid=zzzz~s%3Aone"}},
			{what: "a deletion (empty value)", headers: []string{"Cookie: connect.sid={S}~s%3Aone", "X-Set-Cookie: connect.sid=; Max-Age=0"},
				differs:          "HAProxy prefixes a deletion too (connect.sid=s1~); ours leaves it as the backend wrote it, since it carries no session to stick to",
				haproxySetCookie: []string{"connect.sid={S}~; Max-Age=0"}, oursSetCookie: []string{"connect.sid=; Max-Age=0"}},
			{what: "its server is gone: another one, and its cookie gets that id", killS: true,
				headers: []string{"Cookie: connect.sid={S}~s%3Aone", "X-Set-Cookie: connect.sid=s%3Atwo; Path=/"}},
		}},
	{name: "insert indirect nocache, dockercloud's example", rule: "SRV insert indirect nocache",
		oursPrivate: "HAProxy's nocache adds private only to the answers it deems cacheable; ours to every answer carrying an id",
		steps: []diffStep{
			{what: "a new visitor gets SRV, and private", headers: []string{"X-Set-Cookie: sid=app; Path=/", "X-Cache-Control: max-age=60"}},
			{what: "it comes back: SRV off the request, nothing inserted", headers: []string{"Cookie: sid=app; SRV={S}; lang=fr", "X-Cache-Control: max-age=60"}},
			{what: "SRV alone: the Cookie header goes", headers: []string{"Cookie: SRV={S}"}},
			{what: "SRV first", headers: []string{"Cookie: SRV={S}; sid=app"}},
			{what: "the backend's own SRV is dropped", headers: []string{"Cookie: SRV={S}", "X-Set-Cookie: SRV=mine"}},
			{what: "an unknown id: a new cookie", headers: []string{"Cookie: SRV=zzzz"}},
			{what: "an uncacheable answer: no private added by HAProxy", headers: []string{"Cookie: SRV=zzzz", "X-Cache-Control: no-store"}},
			{what: "its server is gone: the other one, a new cookie", killS: true, headers: []string{"Cookie: sid=app; SRV={S}"}},
		}},
	{name: "insert with its attributes, preserve, no indirect", rule: "SRV insert preserve httponly secure domain .example.test attr SameSite=Lax",
		steps: []diffStep{
			{what: "a new visitor gets SRV with the attributes"},
			{what: "the backend sees SRV (no indirect)", headers: []string{"Cookie: SRV={S}; a=1"}},
			{what: "preserve: the backend's own SRV passes, nothing inserted", headers: []string{"X-Set-Cookie: SRV=; Max-Age=0"}},
		}},
	{name: "insert postonly", rule: "SRV insert indirect postonly",
		steps: []diffStep{
			{what: "a GET gets no cookie", method: "GET"},
			{what: "a POST does", method: "POST"},
		}},
	{name: "insert maxidle maxlife", rule: "SRV insert indirect maxidle 1h maxlife 8h",
		steps: []diffStep{
			{what: "a new visitor gets SRV with two dates"},
			{what: "a cookie seen 600 s ago: valid, its dates refreshed (first kept)", headers: []string{"Cookie: SRV={S}{D-600}"}},
			{what: "a cookie idle for 2 h: expired, a new cookie", headers: []string{"Cookie: SRV={S}{D-7200}"}},
		}},
	{name: "rewrite", rule: "JSESSIONID rewrite",
		steps: []diffStep{
			{what: "the backend's value becomes the id", headers: []string{"X-Set-Cookie: JSESSIONID=abc123; Path=/"}},
			{what: "the backend sees the id", headers: []string{"Cookie: JSESSIONID={S}; x=1"}},
			{what: "its server is gone: the other one", killS: true, headers: []string{"Cookie: JSESSIONID={S}", "X-Set-Cookie: JSESSIONID=def; Path=/"}},
		}},
}

// diffResult is what one step gave, ids mapped to {S} and {O}.
type diffResult struct {
	Status    int
	Server    string // S or O
	SetCookie []string
	Cache     string // the Cache-Control directives, sorted
	Backend   string // the Cookie headers the backend got
}

func TestSameAsHAProxy(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed: the differential test needs a real HAProxy (apt-get install haproxy; .ci/run installs it)")
	}
	t.Parallel()
	for _, sc := range diffScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			want := runDiff(t, sc, func(t *testing.T, a, b *diffBackend) (string, func(string) string) {
				return startHAProxy(t, haproxy, sc.rule, a, b), func(addr string) string {
					if addr == a.addr {
						return "s1"
					}
					return "s2"
				}
			})
			for _, engine := range engines {
				got := runDiff(t, sc, func(t *testing.T, a, b *diffBackend) (string, func(string) string) {
					app, front, _ := startApp(t, engine, fmt.Sprintf("services:\n  app:\n    virtual_host: \"*/app, */app/*\"\n    servers: \"%s, %s\"\n    cookie: %q\n", a.addr, b.addr, sc.rule), nil)
					return front, app.ids.ID
				})
				for i, st := range sc.steps {
					w, g := want[i], got[i]
					if st.differs != "" {
						if !slices.Equal(w.SetCookie, st.haproxySetCookie) || !slices.Equal(g.SetCookie, st.oursSetCookie) {
							t.Errorf("%s, step %d (%s): got Set-Cookie %q from HAProxy and %q from ours, want %q and %q (%s)",
								engine, i+1, st.what, w.SetCookie, g.SetCookie, st.haproxySetCookie, st.oursSetCookie, st.differs)
						}
						w.SetCookie, g.SetCookie = nil, nil
					}
					if sc.oursPrivate != "" && len(g.SetCookie) > 0 {
						if want := cacheDirectives([]string{w.Cache, "private"}); g.Cache != want {
							t.Errorf("%s, step %d (%s): ours gave Cache-Control %q, want %q: HAProxy's and private (%s)", engine, i+1, st.what, g.Cache, want, sc.oursPrivate)
						}
						w.Cache, g.Cache = "", ""
					}
					if fmt.Sprint(w) != fmt.Sprint(g) {
						t.Errorf("%s, step %d (%s):\n got  %+v\n want %+v (HAProxy)", engine, i+1, st.what, g, w)
					}
				}
			}
		})
	}
}

// runDiff runs the steps of sc through the proxy that start brings up over two
// fresh backends; start returns its URL and its id of a server address.
func runDiff(t *testing.T, sc diffScenario, start func(t *testing.T, a, b *diffBackend) (string, func(string) string)) []diffResult {
	t.Helper()
	a, b := startDiffBackend(t, "a"), startDiffBackend(t, "b")
	front, idOf := start(t, a, b)
	client := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	byName := map[string]*diffBackend{"a": a, "b": b}
	var home, other *diffBackend
	var out []diffResult
	for i, st := range sc.steps {
		if st.killS {
			home.srv.Close()
		}
		method := st.method
		if method == "" {
			method = "GET"
		}
		req, _ := http.NewRequest(method, front+"/app", nil)
		for _, h := range st.headers {
			k, v, _ := strings.Cut(h, ": ")
			if home != nil {
				v = strings.NewReplacer("{S}", idOf(home.addr), "{O}", idOf(other.addr)).Replace(v)
			}
			v = expandDates(v)
			req.Header.Add(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("step %d (%s): %v", i+1, st.what, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var ans struct{ Name, Cookie string }
		json.Unmarshal(body, &ans)
		if home == nil {
			home = byName[ans.Name]
			if home == nil {
				t.Fatalf("step 1: no server answered: %d %q", resp.StatusCode, body)
			}
			other = map[*diffBackend]*diffBackend{a: b, b: a}[home]
		}
		ids := strings.NewReplacer(idOf(home.addr), "{S}", idOf(other.addr), "{O}")
		r := diffResult{Status: resp.StatusCode, Backend: ids.Replace(ans.Cookie), Cache: cacheDirectives(resp.Header.Values("Cache-Control"))}
		switch byName[ans.Name] {
		case home:
			r.Server = "S"
		case other:
			r.Server = "O"
		}
		for _, v := range resp.Header.Values("Set-Cookie") {
			r.SetCookie = append(r.SetCookie, checkDates(t, ids.Replace(v)))
		}
		out = append(out, r)
	}
	return out
}

var dateRE = regexp.MustCompile(`\|[A-Za-z0-9+/]{5}`)

// checkDates replaces the dates of an inserted value by {date}, after checking
// each decodes to about now (HAProxy's dates are 4-second quanta) or to the
// first date a step sent.
func checkDates(t *testing.T, v string) string {
	return dateRE.ReplaceAllStringFunc(v, func(m string) string {
		_, d := sticky.ReadValue([]byte("x" + m))
		now := time.Now().Unix()
		switch {
		case d.Last > now-10 && d.Last < now+10:
			return "|{now}"
		case d.Last > now-8*3600 && d.Last < now-500:
			return "|{past}"
		}
		t.Errorf("date %s in %q is %d, %d s from now", m, v, d.Last, d.Last-now)
		return m
	})
}

// expandDates writes {D-N}: the dates "|last|first" of a cookie last seen N
// s ago and first seen N+60 s ago, as HAProxy encodes them.
func expandDates(v string) string {
	return regexp.MustCompile(`\{D-(\d+)\}`).ReplaceAllStringFunc(v, func(m string) string {
		n, _ := strconv.ParseInt(m[3:len(m)-1], 10, 64)
		r := sticky.Rule{Name: "X", Mode: sticky.ModeInsert, MaxIdle: time.Hour, MaxLife: time.Hour}
		now := time.Now().Unix()
		s := string(r.AppendInsert(nil, "", now-n, now-n-60))
		return s[len("X="):strings.IndexByte(s, ';')]
	})
}

// cacheDirectives is the set of Cache-Control directives, lower case, sorted:
// one header "a, b" and two headers "a" and "b" say the same.
func cacheDirectives(values []string) string {
	var ds []string
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
				ds = append(ds, d)
			}
		}
	}
	slices.Sort(ds)
	return strings.Join(slices.Compact(ds), ", ")
}

var haproxyMu sync.Mutex // one HAProxy starting at a time: each takes a free port

// startHAProxy runs HAProxy with rule over a (s1) and b (s2) until the test
// ends, and returns its URL once it accepts connections.
func startHAProxy(t *testing.T, bin, rule string, a, b *diffBackend) string {
	t.Helper()
	haproxyMu.Lock()
	defer haproxyMu.Unlock()
	listen := freeAddr(t)
	cfg := fmt.Sprintf(`global
    nbthread 1
defaults
    mode http
    option http-keep-alive
    option redispatch
    retries 3
    timeout connect 1s
    timeout client 20s
    timeout server 20s
frontend web
    bind %s
    default_backend app
backend app
    balance roundrobin
    cookie %s
    server s1 %s cookie s1
    server s2 %s cookie s2
`, listen, rule, a.addr, b.addr)
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &proc.Buffer{}
	p, err := proc.Start("haproxy", []string{bin, "-f", file, "-db"}, os.Environ(), out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = probe.Until(ctx, "haproxy to listen on "+listen, func() (bool, error) {
		if p.Exited() { // a bad config: HAProxy says why and exits at once
			return false, probe.Fatal(p.Err())
		}
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err != nil {
			return false, err
		}
		c.Close()
		return true, nil
	})
	if err != nil {
		t.Fatalf("%v; its output:\n%s", err, out.String())
	}
	return "http://" + listen
}
