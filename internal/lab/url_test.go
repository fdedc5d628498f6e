package lab

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/pageview"
)

// fakeStack answers /service1 and /service2 the way a deployed stack does, from the
// visitor's cookie alone: "sticky" puts a server id in front of the count, "stateless"
// counts on, "neither" counts on only every other request (two replicas, round robin).
func fakeStack(t *testing.T, service1, service2 string) string {
	t.Helper()
	var rr atomic.Int64
	page := func(kind, path string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			n := 0
			if c, err := r.Cookie("connect.sid"); err == nil {
				v := c.Value
				if _, after, ok := strings.Cut(v, "~"); ok {
					v = after
				}
				n, _ = strconv.Atoi(v)
			}
			if kind == "neither" && rr.Add(1)%2 == 0 {
				n = 0 // the other replica does not know the session
			}
			n++
			val := strconv.Itoa(n)
			if kind == "sticky" {
				val = "s1~" + val
			}
			http.SetCookie(w, &http.Cookie{Name: "connect.sid", Value: val, Path: path})
			json.NewEncoder(w).Encode(pageview.Answer{Service: path[1:], Host: path[1:] + "-1", Visits: n})
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/service1", page(service1, "/service1"))
	mux.Handle("/service2", page(service2, "/service2"))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestFindArms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name               string
		service1, service2 string
		want               []string // arm:path
		wantNote           string
	}{
		{"the tutorial's stack gives the sticky and neither arms", "sticky", "neither",
			[]string{"sticky:/service1", "neither:/service2"}, "no stateless arm"},
		{"the STORE=cookie stack gives the stateless and neither arms", "stateless", "neither",
			[]string{"stateless:/service1", "neither:/service2"}, "no sticky arm"},
		{"a page that keeps counts is not taken for the neither arm", "stateless", "stateless",
			[]string{"stateless:/service1"}, "/service2 behaves like /service1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := fakeStack(t, tc.service1, tc.service2)
			targets, notes, err := findArms(t.Context(), base+"/", ArmNames())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tg := range targets {
				got = append(got, tg.arm.name+":"+strings.TrimPrefix(tg.url, base))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got arms %v, want %v", got, tc.want)
			}
			if !strings.Contains(strings.Join(notes, "\n"), tc.wantNote) {
				t.Errorf("notes %q lack %q", notes, tc.wantNote)
			}
		})
	}
}

func TestFindArmsWithoutStack(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, _, err := findArms(t.Context(), srv.URL, ArmNames())
	if err == nil || !strings.Contains(err.Error(), "make stack-deploy") {
		t.Errorf("got %v, want an error that says how to deploy the stack", err)
	}
}
