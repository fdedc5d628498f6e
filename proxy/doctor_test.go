package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/doctor"
)

// pathServer answers its name and sets cookie (a new value each time) on
// cookiePath, as the tutorial's services do with COOKIE_PATH.
func pathServer(t *testing.T, name, cookie, cookiePath string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie(cookie); err != nil {
			http.SetCookie(w, &http.Cookie{Name: cookie, Value: "s:" + name, Path: cookiePath, HttpOnly: true})
		}
		io.WriteString(w, name)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func warningsOf(t *testing.T, adm string) []doctor.Warning { return stats(t, adm).Warnings }

func TestDoctorSaysNothingForTheTutorial(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		// The tutorial's services (make run): each sets connect.sid on its own path.
		_, front, adm := startApp(t, engine, fmt.Sprintf(`services:
  service1:
    servers: "%s, %s"
    cookie: "connect.sid prefix nocache"
  service2:
    servers: "%s, %s"
`, pathServer(t, "s1a", "connect.sid", "/service1"), pathServer(t, "s1b", "connect.sid", "/service1"),
			pathServer(t, "s2a", "connect.sid", "/service2"), pathServer(t, "s2b", "connect.sid", "/service2")), nil)
		for range doctor.Samples + 5 {
			for _, p := range []string{"/service1", "/service2"} {
				newVisitor(t).get(front + p)
			}
		}
		if w := warningsOf(t, adm); len(w) != 0 {
			t.Errorf("got %+v, want no warning for the tutorial's configuration", w)
		}
		if txt := getBody(t, adm+"/stats?format=text"); strings.Contains(txt, "\nwarning ") {
			t.Errorf("stats text has a warning line:\n%s", txt)
		}
	})
}

func TestDoctorCheckSaysNothingForTheTutorialsFiles(t *testing.T) {
	t.Parallel()
	// Inside the overlay network: the plain names are VIPs, tasks.NAME the replicas.
	dns := &fakeDNS{m: map[string][]string{
		"service1": {"10.0.1.2"}, "tasks.service1": {"10.0.1.5", "10.0.1.6"},
		"service2": {"10.0.1.3"}, "tasks.service2": {"10.0.1.7", "10.0.1.8"},
	}}
	for _, file := range []string{"example.yaml", "../stack/proxy.yaml", "../stack/proxy.cookie.yaml"} {
		cfg, err := config.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if w := checkWarnings(context.Background(), cfg, dns); len(w) != 0 {
			t.Errorf("%s: got %q, want no warning", file, w)
		}
	}
}

func TestDoctorCheckFindsAVIP(t *testing.T) {
	t.Parallel()
	dns := &fakeDNS{m: map[string][]string{"service1": {"10.0.1.2"}, "tasks.service1": {"10.0.1.5", "10.0.1.6"}}}
	cfg, err := config.Parse("p.yaml", []byte("services:\n  service1:\n    servers: \"service1:8080\"\n    cookie: \"connect.sid prefix\"\n  other:\n    servers: \"service1:8080\"\n    virtual_host: \"*/other\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := checkWarnings(context.Background(), cfg, dns)
	if len(w) != 1 || !strings.HasPrefix(w[0], `warning: service1: servers "service1:8080" is the swarm service's virtual IP`) || !strings.Contains(w[0], `use servers: "tasks.service1:8080"`) {
		t.Errorf("got %q, want one warning for service1 only (other is not sticky)", w)
	}
}

func TestDoctorAtRuntime(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s1 := pathServer(t, "s1", "connect.sid", "/service1")
		_, port, _ := net.SplitHostPort(s1)
		// service1 names its VIP; its tasks resolve elsewhere. service3 is
		// sticky on a cookie its app never sets. service2 sets service1's
		// cookie on Path=/.
		dns := &fakeDNS{m: map[string][]string{"service1": {"127.0.0.1"}, "tasks.service1": {"127.0.0.2", "127.0.0.3"}}}
		_, front, adm := startApp(t, engine, fmt.Sprintf(`resolve_interval: 100ms
services:
  service1:
    servers: "service1:%s"
    cookie: "connect.sid prefix nocache"
  service2:
    servers: "%s"
  service3:
    servers: "%s"
    cookie: "sid prefix"
`, port, pathServer(t, "s2", "connect.sid", "/"), pathServer(t, "s3", "connect.sid", "/service3")), dns)

		eventually(t, "the VIP is reported", func() bool { return len(warningsOf(t, adm)) == 1 })
		newVisitor(t).get(front + "/service2")
		for range doctor.Samples {
			newVisitor(t).get(front + "/service3")
		}
		got := map[string]doctor.Kind{}
		for _, w := range warningsOf(t, adm) {
			got[w.Service] = w.Kind
		}
		if want := map[string]doctor.Kind{"service1": doctor.VIP, "service2": doctor.CookiePath, "service3": doctor.NoCookie}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got warnings %v, want %v", got, want)
		}
		txt := getBody(t, adm+"/stats?format=text")
		for _, line := range []string{"\nwarning service1 vip servers \"service1:" + port + "\" is the swarm service's virtual IP", "\nwarning service2 cookie-path it sets connect.sid", "\nwarning service3 no-cookie the first 20 answers"} {
			if !strings.Contains(txt, line) {
				t.Errorf("stats text has no line starting %q:\n%s", line, txt)
			}
		}
		if m := getBody(t, adm+"/metrics"); !strings.Contains(m, `proxy_doctor_warning{kind="vip",service="service1"} 1`) || !strings.Contains(m, `proxy_doctor_warning{kind="no-cookie",service="service3"} 1`) {
			t.Errorf("metrics lack proxy_doctor_warning lines")
		}
		// Fixed in DNS (the name now gives the tasks, as endpoint_mode dnsrr): the warning clears.
		dns.set("service1", "127.0.0.2", "127.0.0.3")
		eventually(t, "the VIP warning clears", func() bool {
			for _, w := range warningsOf(t, adm) {
				if w.Kind == doctor.VIP {
					return false
				}
			}
			return true
		})
	})
}
