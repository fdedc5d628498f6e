package pageview

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

func TestCountsPerVisitor(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind+" store counts 1, 2, 3 for one visitor and separately for another", func(t *testing.T) {
			t.Parallel()
			h := newHandler(t, newStore(t, kind))
			var alice, bob visitor
			steps := []struct {
				who  *visitor
				name string
				want int
			}{
				{&alice, "alice", 1}, {&alice, "alice", 2}, {&bob, "bob", 1},
				{&alice, "alice", 3}, {&bob, "bob", 2},
			}
			for i, s := range steps {
				a, _ := s.who.visit(t, h)
				if a.Visits != s.want {
					t.Fatalf("step %d (%s): got visits %d, want %d", i, s.name, a.Visits, s.want)
				}
			}
		})
	}
}

func TestHTMLBodyIsHeadersJSONThenH1(t *testing.T) {
	t.Parallel()
	h := newHandler(t, newStore(t, "memory"))
	tests := []struct {
		name    string
		path    string
		headers [][2]string
		want    string
	}{
		{
			name:    "curl-like request",
			path:    "/service1",
			headers: [][2]string{{"User-Agent", "curl/7.88.1"}, {"Accept", "*/*"}},
			want:    `{"accept":"*/*","host":"example.com","user-agent":"curl/7.88.1"}<h1>I'm service1 on test-host non unique visits 1</h1>`,
		},
		{
			name:    "trailing slash and a repeated header joined with comma",
			path:    "/service1/",
			headers: [][2]string{{"X-Forwarded-For", "10.0.0.1"}, {"X-Forwarded-For", "10.0.0.2"}},
			want:    `{"host":"example.com","x-forwarded-for":"10.0.0.1, 10.0.0.2"}<h1>I'm service1 on test-host non unique visits 1</h1>`,
		},
		{
			name:    "header names are lower case",
			path:    "/service1",
			headers: [][2]string{{"X-MiXeD-CaSe", "v"}},
			want:    `{"host":"example.com","x-mixed-case":"v"}<h1>I'm service1 on test-host non unique visits 1</h1>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.path, nil) // Host: example.com
			for _, kv := range tt.headers {
				req.Header.Add(kv[0], kv[1])
			}
			resp := serve(h, req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got status %d, want 200", resp.StatusCode)
			}
			if got, want := resp.Header.Get("Content-Type"), "text/html; charset=utf-8"; got != want {
				t.Errorf("got Content-Type %q, want %q", got, want)
			}
			if got := readBody(t, resp); got != tt.want {
				t.Errorf("got body\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestEchoedInputIsEscaped(t *testing.T) {
	t.Parallel()
	const evil = `<script>alert("x")</script>&`
	st := newStore(t, "memory")
	h, err := NewServer(Config{Service: "service1", Host: "<b>host</b>", CookieName: testCookie}, st, discard())
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/service1", nil)
	req.Header.Set("X-Evil", evil)
	req.Host = "<i>evil-host</i>"
	body := readBody(t, serve(h, req))

	for _, markup := range []string{"<script", "</script", "<b>", "<i>"} {
		if strings.Contains(body, markup) {
			t.Errorf("body contains %q as markup:\n%s", markup, body)
		}
	}
	// The JSON part still carries the exact values.
	jsonPart, _, ok := strings.Cut(body, "<h1>")
	if !ok {
		t.Fatalf("no <h1> in body %q", body)
	}
	var hdrs map[string]string
	if err := json.Unmarshal([]byte(jsonPart), &hdrs); err != nil {
		t.Fatalf("JSON part %q: %v", jsonPart, err)
	}
	if hdrs["x-evil"] != evil || hdrs["host"] != "<i>evil-host</i>" {
		t.Errorf("got x-evil %q host %q, want %q and %q", hdrs["x-evil"], hdrs["host"], evil, "<i>evil-host</i>")
	}
	if want := "<h1>I'm service1 on &lt;b&gt;host&lt;/b&gt; non unique visits 1</h1>"; !strings.HasSuffix(body, want) {
		t.Errorf("body does not end with %q:\n%s", want, body)
	}
}

func TestJSONAnswer(t *testing.T) {
	t.Parallel()
	h := newHandler(t, newStore(t, "memory"))
	for _, accept := range []string{"application/json", "application/json, text/html;q=0.5"} {
		t.Run("Accept: "+accept+" gives JSON", func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/service1", nil)
			req.Header.Set("Accept", accept)
			req.Header.Set("X-Evil", "<script>")
			resp := serve(h, req)
			if got, want := resp.Header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
				t.Errorf("got Content-Type %q, want %q", got, want)
			}
			body := readBody(t, resp)
			if strings.Contains(body, "<script>") {
				t.Errorf("JSON body holds raw <script>: %s", body)
			}
			var a Answer
			if err := json.Unmarshal([]byte(body), &a); err != nil {
				t.Fatalf("decoding %q: %v", body, err)
			}
			want := Answer{Service: "service1", Host: "test-host", Visits: 1}
			if a.Service != want.Service || a.Host != want.Host || a.Visits != want.Visits {
				t.Errorf("got %+v, want service1/test-host/1", a)
			}
			if a.Headers["accept"] != accept || a.Headers["host"] != "example.com" || a.Headers["x-evil"] != "<script>" {
				t.Errorf("got headers %v, want accept, host and x-evil echoed", a.Headers)
			}
		})
	}
	t.Run("a browser's Accept gives HTML", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/service1", nil)
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		if got := serve(h, req).Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("got Content-Type %q, want text/html", got)
		}
	})
}

func TestOtherPathsAre404(t *testing.T) {
	t.Parallel()
	h := newHandler(t, newStore(t, "memory"))
	for _, path := range []string{"/", "/service2", "/service1/x", "/service1x", "/healthz/x", "/favicon.ico"} {
		t.Run(path+" is 404 with one line of text", func(t *testing.T) {
			resp := serve(h, httptest.NewRequest(http.MethodGet, path, nil))
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("got status %d, want 404", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
				t.Errorf("got Content-Type %q, want text/plain; charset=utf-8", got)
			}
			if body := readBody(t, resp); strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
				t.Errorf("got body %q, want one line", body)
			}
			if c := setCookies(resp); len(c) > 0 {
				t.Errorf("404 set a session cookie: %v", c)
			}
		})
	}
}

func TestHealthzIsOKAndNotCounted(t *testing.T) {
	t.Parallel()
	st := newStore(t, "memory")
	h := newHandler(t, st)
	var v visitor
	v.visit(t, h)
	for range 3 {
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		req.AddCookie(v.cookie)
		resp := serve(h, req)
		if body := readBody(t, resp); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("got %d %q, want 200 \"ok\"", resp.StatusCode, body)
		}
		if c := setCookies(resp); len(c) > 0 {
			t.Errorf("/healthz set a session cookie: %v", c)
		}
		// Cookie-less probes must not create sessions either.
		serve(h, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	}
	if a, _ := v.visit(t, h); a.Visits != 2 {
		t.Errorf("after 3 /healthz: got visits %d, want 2", a.Visits)
	}
	if got := st.Len(); got != 1 {
		t.Errorf("got %d live sessions, want 1 (healthz starts none)", got)
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		kind   string
		secure bool
		path   string
	}{
		{"memory store, default path", "memory", false, "/service1"},
		{"memory store, COOKIE_PATH=/ and Secure", "memory", true, "/"},
		{"cookie store", "cookie", false, "/service1"},
		{"cookie store, Secure", "cookie", true, "/service1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, tt.kind, func(c *store.Config) { c.Cookie.Secure = tt.secure; c.Cookie.Path = tt.path })
			var v visitor
			_, resp := v.visit(t, newHandler(t, st))
			sc := setCookies(resp)
			if len(sc) != 1 {
				t.Fatalf("got %d Set-Cookie for %s, want 1: %v", len(sc), testCookie, sc)
			}
			c := v.cookie
			if c.Path != tt.path || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != tt.secure {
				t.Errorf("got %q; want Path=%s, HttpOnly, SameSite=Lax, Secure=%v", sc[0], tt.path, tt.secure)
			}
			if c.MaxAge != 0 || !c.Expires.IsZero() {
				t.Errorf("got %q; want a browser-session cookie (no Max-Age, no Expires)", sc[0])
			}
		})
	}
}

func TestSetCookieOnlyWhenNeeded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind string
		want []int // Set-Cookie count per visit
	}{
		{"memory", []int{1, 0, 0}}, // as express: only when a session starts
		{"cookie", []int{1, 1, 1}}, // the value changes on every request
	}
	for _, tt := range tests {
		t.Run(tt.kind+" store", func(t *testing.T) {
			t.Parallel()
			h := newHandler(t, newStore(t, tt.kind))
			var v visitor
			for i, want := range tt.want {
				_, resp := v.visit(t, h)
				if got := len(setCookies(resp)); got != want {
					t.Errorf("visit %d: got %d Set-Cookie, want %d", i+1, got, want)
				}
			}
		})
	}
}

func TestBadCookiesStartANewSession(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind+" store", func(t *testing.T) {
			t.Parallel()
			st := newStore(t, kind)
			h := newHandler(t, st)
			var v visitor
			v.visit(t, h)
			v.visit(t, h)
			good := v.cookie.Value
			foreign := visitor{}
			foreign.visit(t, newHandler(t, newStore(t, kind, func(c *store.Config) { c.Secret = []byte(otherSecret) })))

			tests := []struct{ name, value string }{
				{"tampered (one character changed)", flip(good, len(good)/2)},
				{"tampered (last character changed)", flip(good, len(good)-2)},
				{"truncated", good[:len(good)/2]},
				{"garbage", "not-a-cookie"},
				{"garbage with separators", "a|b|c"},
				{"empty", ""},
				{"signed with another secret", foreign.cookie.Value},
				{"express-style s: value", "s:abc.def"},
				{"very long", strings.Repeat("A", 5000)},
			}
			for _, tt := range tests {
				t.Run(tt.name+" gives visits 1", func(t *testing.T) {
					req := httptest.NewRequest(http.MethodGet, "/service1", nil)
					req.Header.Set("Accept", "application/json")
					req.Header.Set("Cookie", testCookie+"="+tt.value)
					resp := serve(h, req)
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("got status %d, want 200", resp.StatusCode)
					}
					if a := decodeAnswer(t, resp); a.Visits != 1 {
						t.Errorf("got visits %d, want 1", a.Visits)
					}
					if len(setCookies(resp)) != 1 {
						t.Errorf("got no new session cookie")
					}
				})
			}
			// The good cookie still works after all that.
			if a, _ := v.visit(t, h); a.Visits != 3 {
				t.Errorf("good cookie: got visits %d, want 3", a.Visits)
			}
		})
	}
}

// flip changes the character at i to another base64 character.
// flip changes the character at i so that what it encodes changes for sure: in a
// base64 character it flips the top bit of the six (the low bits of a last character
// may be padding a decoder ignores, so 'A' -> 'B' there can decode to the same bytes).
func flip(s string, i int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := []byte(s)
	if j := strings.IndexByte(alphabet, b[i]); j >= 0 {
		b[i] = alphabet[j^32]
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestExpiredOrEvictedSessionStartsANewOne(t *testing.T) {
	t.Parallel()
	t.Run("memory store: idle for SESSION_TTL", func(t *testing.T) {
		t.Parallel()
		clk := newClock()
		h := newHandler(t, newStore(t, "memory", func(c *store.Config) { c.Now = clk.Now; c.TTL = time.Minute }))
		var v visitor
		v.visit(t, h)
		clk.Add(59 * time.Second)
		if a, _ := v.visit(t, h); a.Visits != 2 {
			t.Fatalf("before TTL: got visits %d, want 2", a.Visits)
		}
		old := v.cookie.Value
		clk.Add(time.Minute)
		a, resp := v.visit(t, h)
		if a.Visits != 1 || len(setCookies(resp)) != 1 || v.cookie.Value == old {
			t.Errorf("after TTL: got visits %d, Set-Cookie %v; want 1 and a new cookie", a.Visits, setCookies(resp))
		}
	})
	t.Run("memory store: evicted by SESSION_MAX", func(t *testing.T) {
		t.Parallel()
		st := newStore(t, "memory", func(c *store.Config) { c.Max = 2 })
		h := newHandler(t, st)
		var first visitor
		first.visit(t, h)
		for range 2 { // two newer sessions push the first out
			var other visitor
			other.visit(t, h)
		}
		if got := st.Len(); got != 2 {
			t.Errorf("got %d live sessions, want 2 (SESSION_MAX)", got)
		}
		if a, resp := first.visit(t, h); a.Visits != 1 || len(setCookies(resp)) != 1 {
			t.Errorf("evicted session: got visits %d, Set-Cookie %v; want 1 and a new cookie", a.Visits, setCookies(resp))
		}
	})
	t.Run("cookie store: cookie older than SESSION_TTL", func(t *testing.T) {
		t.Parallel()
		clk := newClock()
		h := newHandler(t, newStore(t, "cookie", func(c *store.Config) { c.Now = clk.Now; c.TTL = time.Hour }))
		var v visitor
		v.visit(t, h)
		clk.Add(59 * time.Minute)
		if a, _ := v.visit(t, h); a.Visits != 2 {
			t.Fatalf("before TTL: got visits %d, want 2", a.Visits)
		}
		clk.Add(time.Hour)
		if a, _ := v.visit(t, h); a.Visits != 1 {
			t.Errorf("after TTL: got visits %d, want 1", a.Visits)
		}
	})
}
