package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/live"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// setup runs a proxy with one sticky service over one real server, sends it
// a few requests and returns the admin server.
func setup(t *testing.T, auth string) (adminURL string, svc *forward.Service, srv *httptest.Server) {
	t.Helper()
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie("connect.sid"); err != nil {
			http.SetCookie(w, &http.Cookie{Name: "connect.sid", Value: "s1", Path: "/"})
		}
		io.WriteString(w, "hi")
	}))
	t.Cleanup(srv.Close)
	pool := backend.NewPool(backend.NewIDs([]byte("k")), backend.RoundRobin)
	pool.Update([]string{strings.TrimPrefix(srv.URL, "http://")})
	svc = &forward.Service{Name: "service1", VirtualHost: "*/service1", Sticky: sticky.Rule{Name: "connect.sid", NoCache: true}, Pool: pool}
	tb, err := forward.NewTable([]*forward.Service{svc})
	if err != nil {
		t.Fatal(err)
	}
	h := forward.NewHandler(forward.Options{})
	h.SetTable(tb)
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)

	var cookie string
	for range 3 {
		req, _ := http.NewRequest("GET", front.URL+"/service1", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if sc := resp.Header.Get("Set-Cookie"); sc != "" {
			cookie, _, _ = strings.Cut(sc, ";")
		}
	}
	http.Get(front.URL + "/nowhere")
	// The proxy counts a request once its answer is out: let it finish.
	// The checks below say what is missing if it never comes.
	probe.Within(5*time.Second, "three 2xx counted", func() bool { return svc.Counters.Responses[2].Load() >= 3 })

	hub := live.NewHub(live.Options{Sources: func() []live.Source { return nil }})
	ad := httptest.NewServer(NewHandler(Options{Table: h.Table, Auth: auth, Version: "test", Live: hub}))
	t.Cleanup(ad.Close)
	return ad.URL, svc, srv
}

func get(t *testing.T, url string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestStatsJSONReflectsTraffic(t *testing.T) {
	t.Parallel()
	url, svc, srv := setup(t, "")
	code, hdr, body := get(t, url+"/stats", "Accept", "application/json")
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("/stats: %d %s", code, hdr.Get("Content-Type"))
	}
	var st Stats
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Services) != 1 || len(st.Routes) != 1 || st.Routes[0].Service != "service1" {
		t.Fatalf("stats %+v", st)
	}
	s := st.Services[0]
	if s.Name != "service1" || s.Cookie != "connect.sid" || s.Balance != "roundrobin" || s.Available != 1 {
		t.Errorf("service %+v", s)
	}
	if s.Sticky != (StickyStats{Hits: 2, New: 1}) {
		t.Errorf("sticky %+v, want 2 hits 1 new", s.Sticky)
	}
	if s.Responses["2xx"] != 3 {
		t.Errorf("responses %v, want 3 2xx", s.Responses)
	}
	if len(s.Servers) != 1 {
		t.Fatalf("servers %+v", s.Servers)
	}
	sv := s.Servers[0]
	want := ServerStats{ID: svc.Pool.Backends()[0].ID(), Address: strings.TrimPrefix(srv.URL, "http://"), State: "up", Requests: 3}
	if sv != want {
		t.Errorf("server %+v, want %+v", sv, want)
	}
	// The documented field names, as scripts read them.
	for _, key := range []string{`"routes"`, `"rule"`, `"service"`, `"services"`, `"cookie"`, `"balance"`, `"servers"`, `"id"`, `"address"`, `"state"`, `"active"`, `"requests"`, `"failures"`, `"sticky"`, `"hits"`, `"new"`, `"rebalanced"`} {
		if !strings.Contains(body, key) {
			t.Errorf("stats JSON lacks %s", key)
		}
	}
}

func TestStatsTextIsOneLinePerServiceAndServer(t *testing.T) {
	t.Parallel()
	url, svc, srv := setup(t, "")
	code, hdr, body := get(t, url+"/stats?format=text")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("/stats?format=text: %d %s", code, hdr.Get("Content-Type"))
	}
	id := svc.Pool.Backends()[0].ID()
	want := "proxy version test engine -\n" +
		"service service1 available 1 servers 1 cookie connect.sid balance roundrobin mode prefix\n" +
		"server service1 " + id + " up address " + strings.TrimPrefix(srv.URL, "http://") + " active 0 requests 3 failures 0\n"
	if body != want {
		t.Errorf("got\n%s\nwant\n%s", body, want)
	}
}

func TestStatsTextSaysDashForNoCookieAndShowsDownServers(t *testing.T) {
	t.Parallel()
	pool := backend.NewPool(backend.NewIDs([]byte("k")), backend.LeastConn)
	pool.Update([]string{"127.0.0.1:1", "127.0.0.1:2"})
	pool.Backends()[1].SetUp(false)
	svc := &forward.Service{Name: "service2", VirtualHost: "*/service2", Pool: pool}
	tb, err := forward.NewTable([]*forward.Service{svc})
	if err != nil {
		t.Fatal(err)
	}
	ad := httptest.NewServer(NewHandler(Options{Table: func() *forward.Table { return tb }}))
	t.Cleanup(ad.Close)
	_, _, body := get(t, ad.URL+"/stats?format=text")
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) != 4 || lines[0] != "proxy version - engine -" || lines[1] != "service service2 available 1 servers 2 cookie - balance leastconn mode -" ||
		!strings.HasPrefix(lines[2], "server service2 "+pool.Backends()[0].ID()+" up address 127.0.0.1:1 ") ||
		!strings.HasPrefix(lines[3], "server service2 "+pool.Backends()[1].ID()+" down address 127.0.0.1:2 ") {
		t.Errorf("got\n%s", body)
	}
}

func TestStatsHTML(t *testing.T) {
	t.Parallel()
	url, svc, _ := setup(t, "")
	code, hdr, body := get(t, url+"/stats")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("/stats: %d %s", code, hdr.Get("Content-Type"))
	}
	if !strings.Contains(body, svc.Pool.Backends()[0].ID()) || !strings.Contains(body, "2 hits") {
		t.Errorf("page lacks the server id or sticky counts:\n%s", body)
	}
}

func TestMetricsReflectTraffic(t *testing.T) {
	t.Parallel()
	url, svc, _ := setup(t, "")
	_, _, body := get(t, url+"/metrics")
	id := svc.Pool.Backends()[0].ID()
	for _, want := range []string{
		`proxy_server_up{server="` + id + `",service="service1"} 1`,
		`proxy_server_requests_total{server="` + id + `",service="service1"} 3`,
		`proxy_sticky_total{outcome="hit",service="service1"} 2`,
		`proxy_responses_total{code="2xx",service="service1"} 3`,
		`proxy_request_duration_seconds_count{service="service1"} 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	url, _, _ := setup(t, "stats:s3cret")
	for _, path := range []string{"/stats", "/stats?format=text", "/metrics", "/live", "/live/live.js"} {
		code, hdr, _ := get(t, url+path)
		if code != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s without auth: %d", path, code)
		}
		req, _ := http.NewRequest("GET", url+path, nil)
		req.SetBasicAuth("stats", "wrong")
		if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 401 {
			t.Errorf("%s with a wrong password: %d", path, resp.StatusCode)
		}
		req.SetBasicAuth("stats", "s3cret")
		if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 200 {
			t.Errorf("%s with auth: %d", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _, _ := get(t, url+path); code != 200 {
			t.Errorf("%s: %d, want 200 without auth", path, code)
		}
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	url, _, srv := setup(t, "")
	if code, _, body := get(t, url+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	srv.Close()
	// Not down yet (no check ran): still ready. Mark it down as a check would.
	_, svc, _ := setup(t, "")
	svc.Pool.Backends()[0].SetUp(false)
	ad := httptest.NewServer(NewHandler(Options{Table: func() *forward.Table {
		tb, _ := forward.NewTable([]*forward.Service{svc})
		return tb
	}}))
	defer ad.Close()
	if code, _, body := get(t, ad.URL+"/readyz"); code != 503 || body != "no server available for service1\n" {
		t.Errorf("/readyz with no server: %d %q", code, body)
	}
}
