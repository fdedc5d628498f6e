package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// answer is a service's JSON answer (Accept: application/json).
type answer struct {
	Service string            `json:"service"`
	Host    string            `json:"host"`
	Visits  int               `json:"visits"`
	Headers map[string]string `json:"headers"`
}

// visitor is one browser: its own connections and, if it keeps cookies, its own jar.
type visitor struct {
	base   string
	client *http.Client
}

func newVisitor(t *testing.T, base string, keepCookies bool) *visitor {
	t.Helper()
	c := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 2},
	}
	if keepCookies {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Jar = jar
	}
	t.Cleanup(c.CloseIdleConnections)
	return &visitor{base: base, client: c}
}

// try asks for path as JSON; it does not fail the test, so goroutines may call it.
func (v *visitor) try(path string) (answer, *http.Response, error) {
	return v.do(path, nil)
}

func (v *visitor) do(path string, header http.Header) (answer, *http.Response, error) {
	var a answer
	req, err := http.NewRequest(http.MethodGet, v.base+path, nil)
	if err != nil {
		return a, nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return a, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return a, resp, err
	}
	if resp.StatusCode != http.StatusOK {
		return a, resp, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	if strings.Contains(req.Header.Get("Accept"), "json") {
		if err := json.Unmarshal(body, &a); err != nil {
			return a, resp, fmt.Errorf("GET %s: decoding %q: %w", path, body, err)
		}
	}
	return a, resp, nil
}

// get is try that fails the test on any error or a status other than 200.
func (v *visitor) get(t *testing.T, path string) (answer, *http.Response) {
	t.Helper()
	a, resp, err := v.try(path)
	if err != nil {
		t.Fatal(err)
	}
	return a, resp
}

// sessionCookie is the value of connect.sid the visitor would send to path ("" if none).
func (v *visitor) sessionCookie(t *testing.T, path string) string {
	t.Helper()
	if v.client.Jar == nil {
		return ""
	}
	u, err := url.Parse(v.base + path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v.client.Jar.Cookies(u) {
		if c.Name == "connect.sid" {
			return c.Value
		}
	}
	return ""
}

// setSessionCookie replaces the visitor's connect.sid for path with value.
func (v *visitor) setSessionCookie(t *testing.T, path, value string) {
	t.Helper()
	u, err := url.Parse(v.base + path)
	if err != nil {
		t.Fatal(err)
	}
	v.client.Jar.SetCookies(u, []*http.Cookie{{Name: "connect.sid", Value: value, Path: path}})
}

// stickyID is the proxy's server id in front of a prefixed cookie value ("" if none).
func stickyID(value string) string {
	id, _, ok := strings.Cut(value, "~")
	if !ok {
		return ""
	}
	return id
}
