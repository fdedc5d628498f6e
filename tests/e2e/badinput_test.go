package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/localstack"
)

// badInput checks that what a careless or hostile client sends gets a clear answer and
// never a 5xx, through the proxy of a running default stack.
func badInput(t *testing.T, s *localstack.Stack) {
	cookieCases := []struct {
		name   string
		cookie func(valid string) string // the connect.sid value to send, from a valid one
	}{
		{"a garbage cookie starts a new session", func(string) string { return "garbage!!" }},
		{"a tampered cookie starts a new session", func(valid string) string {
			id, val, _ := strings.Cut(valid, "~")
			b := []byte(val)
			b[len(b)/2] ^= 0x01 // one bit of the signed value
			return id + "~" + string(b)
		}},
		{"a truncated cookie starts a new session", func(valid string) string { return valid[:len(valid)-5] }},
		{"an empty cookie starts a new session", func(string) string { return "" }},
	}
	for _, tc := range cookieCases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVisitor(t, s.URL(), true)
			v.get(t, "/service1")
			a, _ := v.get(t, "/service1")
			if a.Visits != 2 {
				t.Fatalf("second visit: got visits %d, want 2", a.Visits)
			}
			v.setSessionCookie(t, "/service1", tc.cookie(v.sessionCookie(t, "/service1")))
			got, _ := v.get(t, "/service1")
			if got.Visits != 1 {
				t.Fatalf("got visits %d, want 1 (a new session)", got.Visits)
			}
		})
	}

	t.Run("an unknown server id is dropped and the client balanced as new", func(t *testing.T) {
		v := newVisitor(t, s.URL(), true)
		v.get(t, "/service1")
		_, val, _ := strings.Cut(v.sessionCookie(t, "/service1"), "~")
		v.setSessionCookie(t, "/service1", "nosuchid~"+val)
		a, _ := v.get(t, "/service1")
		if a.Visits < 1 {
			t.Fatalf("got visits %d", a.Visits)
		}
		if id := stickyID(v.sessionCookie(t, "/service1")); id == "" || id == "nosuchid" {
			t.Fatalf("cookie after an unknown id: got %q, want a fresh prefixed cookie", v.sessionCookie(t, "/service1"))
		}
	})

	rawCases := []struct {
		name       string
		path       string
		header     http.Header
		wantStatus int
		check      func(t *testing.T, resp *http.Response, body string)
	}{
		{
			name:       "a malformed Cookie header is a new visitor",
			path:       "/service1",
			header:     http.Header{"Cookie": {`;;=;connect.sid="unterminated; =x; connect.sid=~`}},
			wantStatus: http.StatusOK,
		},
		{
			name:       "a huge header gets 431",
			path:       "/service1",
			header:     http.Header{"X-Huge": {strings.Repeat("a", 2<<20)}},
			wantStatus: http.StatusRequestHeaderFieldsTooLarge,
		},
		{
			name:       "an unknown path gets a one-line 404",
			path:       "/nowhere/<b>",
			wantStatus: http.StatusNotFound,
			check: func(t *testing.T, resp *http.Response, body string) {
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type: got %q, want text/plain", ct)
				}
				if strings.Count(strings.TrimSpace(body), "\n") != 0 {
					t.Errorf("body: got %q, want one line", body)
				}
			},
		},
		{
			name:       "a header with <script> is escaped in the page",
			path:       "/service1",
			header:     http.Header{"X-Evil": {"<script>alert(1)</script>"}, "Accept": {"text/html"}},
			wantStatus: http.StatusOK,
			check: func(t *testing.T, resp *http.Response, body string) {
				if strings.Contains(body, "<script>") {
					t.Errorf("page contains the raw <script> tag: %s", body)
				}
				if !strings.Contains(body, "alert(1)") {
					t.Errorf("page lost the header's text: %s", body)
				}
				if !strings.Contains(body, "<h1>I'm service1 on ") {
					t.Errorf("page lacks the <h1> line: %s", body)
				}
			},
		},
	}
	for _, tc := range rawCases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, s.URL()+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tc.header.Clone()
			if req.Header == nil {
				req.Header = http.Header{}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("got %s (%q), want %d", resp.Status, body, tc.wantStatus)
			}
			if tc.check != nil {
				tc.check(t, resp, string(body))
			}
		})
	}
}
