package browser

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/pageview"
)

// counter answers like a service: a count kept in its cookie, as JSON when asked.
func counter(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/down":
			http.Error(w, "no server available for service1\nmore", http.StatusServiceUnavailable)
			return
		case "/html":
			w.Write([]byte("<h1>hi</h1>"))
			return
		}
		n := 0
		if c, err := r.Cookie("connect.sid"); err == nil {
			n, _ = strconv.Atoi(strings.TrimPrefix(c.Value, "id~"))
		}
		n++
		http.SetCookie(w, &http.Cookie{Name: "connect.sid", Value: "id~" + strconv.Itoa(n), Path: "/service1"})
		if r.Header.Get("Accept") != "application/json" {
			t.Errorf("Accept: got %q, want application/json", r.Header.Get("Accept"))
		}
		json.NewEncoder(w).Encode(pageview.Answer{Service: "service1", Host: "h", Visits: n})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPageKeepsCookiesAndDecodesTheAnswer(t *testing.T) {
	t.Parallel()
	srv := counter(t)
	b := New(Options{})
	for want := 1; want <= 3; want++ {
		a, resp, err := b.Page(context.Background(), srv.URL+"/service1")
		if err != nil || resp.StatusCode != 200 || a.Visits != want || a.Host != "h" {
			t.Fatalf("visit %d: got %+v, %v", want, a, err)
		}
	}
	v, ok := b.Cookie(srv.URL+"/service1", "connect.sid")
	if id, sticky := StickyID(v); !ok || !sticky || id != "id" {
		t.Errorf("cookie: got %q, want id~3", v)
	}
	b.SetCookie(srv.URL+"/service1", "connect.sid", "id~10")
	if a, _, _ := b.Page(context.Background(), srv.URL+"/service1"); a.Visits != 11 {
		t.Errorf("after SetCookie: got visits %d, want 11", a.Visits)
	}
}

func TestPageWithoutCookiesStartsOverEachTime(t *testing.T) {
	t.Parallel()
	srv := counter(t)
	b := New(Options{NoCookies: true})
	for range 2 {
		if a, _, err := b.Page(context.Background(), srv.URL+"/service1"); err != nil || a.Visits != 1 {
			t.Fatalf("got %+v, %v; want visits 1", a, err)
		}
	}
}

func TestPageErrorsSayWhatCameBack(t *testing.T) {
	t.Parallel()
	srv := counter(t)
	b := New(Options{})
	for _, tc := range []struct {
		name, path, want string
		status           int
	}{
		{"a status other than 200 gives the status and the first line", "/down", "503 Service Unavailable: no server available for service1", 503},
		{"a page that is not JSON is named", "/html", `not the JSON answer of a service: "<h1>hi</h1>"`, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := b.Page(context.Background(), srv.URL+tc.path)
			if err == nil || err.Error() != tc.want || resp == nil || resp.StatusCode != tc.status {
				t.Errorf("got %v (%v), want %q with status %d", err, resp, tc.want, tc.status)
			}
		})
	}
	t.Run("no answer leaves the URL out of the error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, resp, err := b.Page(context.Background(), url+"/service1")
		if err == nil || resp != nil || strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "refused") {
			t.Errorf("got %v, %v; want connection refused without the URL", resp, err)
		}
	})
}
