package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/localstack"
)

// The tutorial's claims, checked through the proxy on the default stack: service1 sticky
// with memory sessions, service2 plain round robin with memory sessions.
func TestTutorial(t *testing.T) {
	t.Parallel()
	s := startStack(t, localstack.Config{})

	t.Run("a client sticks to one service1 replica and counts 1..N", func(t *testing.T) {
		v := newVisitor(t, s.URL(), true)
		first, resp := v.get(t, "/service1")
		if first.Visits != 1 {
			t.Fatalf("first visit: got visits %d, want 1", first.Visits)
		}
		if id := stickyID(v.sessionCookie(t, "/service1")); id == "" {
			t.Fatalf("first answer's cookie %q has no server id prefix (Set-Cookie %q)",
				v.sessionCookie(t, "/service1"), resp.Header.Values("Set-Cookie"))
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "private") {
			t.Errorf("Cache-Control on a prefixed Set-Cookie: got %q, want it to contain private (nocache)", cc)
		}
		for n := 2; n <= 10; n++ {
			a, _ := v.get(t, "/service1")
			if a.Host != first.Host || a.Visits != n {
				t.Fatalf("visit %d: got %s visits %d, want %s visits %d", n, a.Host, a.Visits, first.Host, n)
			}
		}
	})

	t.Run("new clients spread over both service1 replicas", func(t *testing.T) {
		hosts := map[string]int{}
		for range 20 {
			a, _ := newVisitor(t, s.URL(), true).get(t, "/service1")
			hosts[a.Host]++
		}
		if want := s.RunningReplicas("service1"); !sameKeys(hosts, want) {
			t.Fatalf("20 new clients reached %v, want every replica of %v", hosts, want)
		}
	})

	t.Run("service2 spreads and a cookie-less client always starts at 1", func(t *testing.T) {
		v := newVisitor(t, s.URL(), false)
		hosts := map[string]int{}
		for range 10 {
			a, _ := v.get(t, "/service2")
			if a.Visits != 1 {
				t.Fatalf("cookie-less client on service2: got visits %d, want 1", a.Visits)
			}
			hosts[a.Host]++
		}
		if want := s.RunningReplicas("service2"); !sameKeys(hosts, want) {
			t.Fatalf("10 requests reached %v, want every replica of %v", hosts, want)
		}
	})

	t.Run("service2 counts a cookie only on the replica that made it", func(t *testing.T) {
		// Two clients take turns, so round robin sends each to the same replica every
		// time: both count. A client alone alternates replicas: each one resets it.
		a, b := newVisitor(t, s.URL(), true), newVisitor(t, s.URL(), true)
		counted, reset := 0, 0
		prev := map[*visitor]answer{}
		check := func(v *visitor) {
			t.Helper()
			got, _ := v.get(t, "/service2")
			if last, ok := prev[v]; ok {
				want := 1
				if got.Host == last.Host {
					want = last.Visits + 1
				}
				if got.Visits != want {
					t.Fatalf("after %s visits %d, got %s visits %d, want visits %d",
						last.Host, last.Visits, got.Host, got.Visits, want)
				}
				if want > 1 {
					counted++
				} else {
					reset++
				}
			}
			prev[v] = got
		}
		for range 6 {
			check(a)
			check(b)
		}
		for range 6 {
			check(a)
		}
		if counted == 0 || reset == 0 {
			t.Fatalf("got %d counted and %d reset answers, want some of each", counted, reset)
		}
	})

	t.Run("bad input through the proxy", func(t *testing.T) {
		badInput(t, s)
	})

	t.Run("the stickiness doctor finds nothing wrong with the tutorial", func(t *testing.T) {
		// Enough new visitors of service1 for its no-cookie check to settle.
		for range 25 {
			newVisitor(t, s.URL(), true).get(t, "/service1")
			newVisitor(t, s.URL(), true).get(t, "/service2")
		}
		if w := doctorLines(t, s); len(w) != 0 {
			t.Errorf("got %q, want no warning line in /stats?format=text", w)
		}
	})
}

// doctorLines are the stickiness doctor's "warning ..." lines of the proxy's /stats text.
func doctorLines(t *testing.T, s *localstack.Stack) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(statsText(t, s.AdminURL())) {
		if strings.HasPrefix(line, "warning ") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// sameKeys reports whether m has exactly the keys in want.
func sameKeys(m map[string]int, want []string) bool {
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	return slices.Equal(got, want)
}

// The stateless arm: cookie sessions, round robin for both services.
func TestStatelessStore(t *testing.T) {
	t.Parallel()
	s := startStack(t, localstack.Config{Store: "cookie"})
	for _, path := range []string{"/service1", "/service2"} {
		t.Run(path+" spreads over replicas and the count still goes up", func(t *testing.T) {
			v := newVisitor(t, s.URL(), true)
			hosts := map[string]int{}
			for n := 1; n <= 8; n++ {
				a, _ := v.get(t, path)
				if a.Visits != n {
					t.Fatalf("visit %d on %s: got visits %d, want %d", n, a.Host, a.Visits, n)
				}
				hosts[a.Host]++
			}
			if want := s.RunningReplicas(strings.TrimPrefix(path, "/")); !sameKeys(hosts, want) {
				t.Fatalf("8 requests reached %v, want every replica of %v", hosts, want)
			}
		})
	}
}

// The 2018 original set both services' cookies on Path=/: a visit to service2 replaced
// service1's cookie and reset its count. Our default path per service fixes that.
func TestCookiePathTrap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		cookiePath string
		wantAfter  int
	}{
		{"with the default cookie path service2 leaves service1's count alone", "", 4},
		{"with COOKIE_PATH=/ a visit to service2 resets service1's count", "/", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startStack(t, localstack.Config{CookiePath: tc.cookiePath})
			v := newVisitor(t, s.URL(), true)
			for n := 1; n <= 3; n++ {
				if a, _ := v.get(t, "/service1"); a.Visits != n {
					t.Fatalf("visit %d: got visits %d", n, a.Visits)
				}
			}
			v.get(t, "/service2")
			if a, _ := v.get(t, "/service1"); a.Visits != tc.wantAfter {
				t.Fatalf("service1 after a visit to service2: got visits %d, want %d", a.Visits, tc.wantAfter)
			}
			// The stickiness doctor names the trap, and only the trap.
			w := doctorLines(t, s)
			trap := len(w) == 1 && strings.HasPrefix(w[0], "warning service2 cookie-path it sets connect.sid, the sticky cookie of service1, on Path=/,")
			if tc.cookiePath == "/" && !trap {
				t.Errorf("with COOKIE_PATH=/: got doctor lines %q, want the cookie-path warning on service2", w)
			}
			if tc.cookiePath == "" && len(w) != 0 {
				t.Errorf("got doctor lines %q, want none", w)
			}
		})
	}
}
