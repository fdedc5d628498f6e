package pageview

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// The paths express 4 matched for app.get('/service1') with its default Router
// options (caseSensitive: false, strict: false), checked against the Node original
// (TestRoutesMatchTheNodeOriginal); gin alone matched only the exact path.
var expressPathCases = []struct {
	path string
	want int
}{
	{"/service1", 200},
	{"/SERVICE1", 200},
	{"/Service1/", 200},
	{"/service1/", 200},
	{"/service1?x=1", 200},
	{"/SERVICE1/?x=1", 200},
	{"/service1//", 404},
	{"//service1", 404},
	{"/%73ervice1", 404}, // matched as sent, not decoded
	{"/service1%2F", 404},
	{"/service1/x", 404},
	{"/service1.json", 404},
	{"/service1;x", 404},
	{"/service1x", 404},
	{"/service2", 404},
	{"/", 404},
}

func TestPathsMatchAsInExpress(t *testing.T) {
	t.Parallel()
	h := newHandler(t, newStore(t, "memory"))
	for _, tt := range expressPathCases {
		t.Run("GET "+tt.path+" is "+strconv.Itoa(tt.want), func(t *testing.T) {
			resp := serve(h, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if resp.StatusCode != tt.want {
				t.Errorf("got status %d, want %d", resp.StatusCode, tt.want)
			}
			if counted := strings.Contains(readBody(t, resp), "non unique visits 1"); counted != (tt.want == 200) {
				t.Errorf("counted: %v, want %v", counted, tt.want == 200)
			}
		})
	}
	for _, path := range []string{"/HEALTHZ", "/healthz/", "/Debug/Sessions"} {
		t.Run("GET "+path+" is 200 too: every route matches so", func(t *testing.T) {
			if resp := serve(h, httptest.NewRequest(http.MethodGet, path, nil)); resp.StatusCode != 200 {
				t.Errorf("got status %d, want 200", resp.StatusCode)
			}
		})
	}
	t.Run("the handler's caller keeps its request as it was", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/SERVICE1/", nil)
		serve(h, req)
		if req.URL.Path != "/SERVICE1/" {
			t.Errorf("got the caller's path changed to %q", req.URL.Path)
		}
	})
}

func TestHeadIsGetWithoutABody(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newHandler(t, newStore(t, "memory")))
	t.Cleanup(srv.Close)
	client := srv.Client()
	do := func(method string, cookie *http.Cookie) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/service1", nil)
		req.Header.Set("Accept-Encoding", "identity") // else Go asks gzip for a GET only
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	head, body := do(http.MethodHead, nil)
	if head.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD: got %d with body %q, want 200 and no body", head.StatusCode, body)
	}
	if head.Header.Get("Content-Type") != "text/html; charset=utf-8" || head.ContentLength <= 0 {
		t.Errorf("HEAD: got Content-Type %q, Content-Length %d; want the GET's", head.Header.Get("Content-Type"), head.ContentLength)
	}
	cookies := head.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("HEAD without a cookie: got %d cookies, want a new session's", len(cookies))
	}
	// As in the original: a HEAD counts a page view.
	head, _ = do(http.MethodHead, cookies[0])
	get, body := do(http.MethodGet, cookies[0])
	if !strings.HasSuffix(body, "non unique visits 3</h1>") {
		t.Errorf("GET after two HEADs: got %q, want visits 3", body)
	}
	if get.ContentLength != head.ContentLength || int(get.ContentLength) != len(body) {
		t.Errorf("got Content-Length %d for HEAD, %d for GET (body %d bytes); want the same", head.ContentLength, get.ContentLength, len(body))
	}
	for _, path := range []string{"/healthz", "/debug/sessions"} {
		req, _ := http.NewRequest(http.MethodHead, srv.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("HEAD %s: got %d, want 200", path, resp.StatusCode)
		}
	}
}

func TestOptionsListsTheMethodsAndStartsNoSession(t *testing.T) {
	t.Parallel()
	st := newStore(t, "memory")
	h := newHandler(t, st)
	for _, path := range []string{"/service1", "/SERVICE1/", "/healthz"} {
		t.Run("OPTIONS "+path, func(t *testing.T) {
			resp := serve(h, httptest.NewRequest(http.MethodOptions, path, nil))
			if resp.StatusCode != 200 || resp.Header.Get("Allow") != "GET,HEAD" || readBody(t, resp) != "GET,HEAD" {
				t.Errorf("got %d, Allow %q; want 200, Allow GET,HEAD and the same body", resp.StatusCode, resp.Header.Get("Allow"))
			}
			if c := setCookies(resp); len(c) != 0 {
				t.Errorf("got Set-Cookie %v, want none", c)
			}
		})
	}
	if resp := serve(h, httptest.NewRequest(http.MethodOptions, "/nope", nil)); resp.StatusCode != 404 {
		t.Errorf("OPTIONS /nope: got %d, want 404", resp.StatusCode)
	}
	if n := st.Len(); n != 0 {
		t.Errorf("got %d sessions after OPTIONS only, want 0", n)
	}
}

func TestOtherMethodsAre404(t *testing.T) {
	t.Parallel()
	h := newHandler(t, newStore(t, "memory"))
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		t.Run(method+" /service1 is 404 and counts nothing", func(t *testing.T) {
			resp := serve(h, httptest.NewRequest(method, "/service1", nil))
			if resp.StatusCode != 404 || len(setCookies(resp)) != 0 {
				t.Errorf("got %d with Set-Cookie %v, want 404 and none", resp.StatusCode, setCookies(resp))
			}
		})
	}
}

func TestAccessLogShowsThePathAsSent(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	h, err := NewServer(Config{Service: "service1", Host: "h", CookieName: testCookie}, newStore(t, "memory"),
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	serve(h, httptest.NewRequest(http.MethodHead, "/SERVICE1/?secret=1", nil))
	line := logs.String()
	for _, want := range []string{"method=HEAD", "path=/SERVICE1/ ", "status=200", "new_session=true"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "secret") {
		t.Errorf("log line %q holds the query", line)
	}
}
