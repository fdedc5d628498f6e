package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/browser"
	"github.com/swarm-affinity/swarm-affinity/internal/pageview"
)

// answer is a service's JSON answer.
type answer = pageview.Answer

// visitor is one browser on a stack: the simulated browser of internal/browser (its
// own connections and, if it keeps cookies, its own jar) and the stack's base URL.
type visitor struct {
	base string
	b    *browser.Browser
}

func newVisitor(t *testing.T, base string, keepCookies bool) *visitor {
	t.Helper()
	b := browser.New(browser.Options{NoCookies: !keepCookies})
	t.Cleanup(b.CloseIdleConnections)
	return &visitor{base: base, b: b}
}

// try asks for path as JSON; it does not fail the test, so goroutines may call it.
func (v *visitor) try(path string) (answer, *http.Response, error) {
	a, resp, err := v.b.Page(context.Background(), v.base+path)
	if err != nil {
		return a, resp, fmt.Errorf("GET %s: %w", path, err)
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
	c, _ := v.b.Cookie(v.base+path, "connect.sid")
	return c
}

// setSessionCookie replaces the visitor's connect.sid for path with value.
func (v *visitor) setSessionCookie(t *testing.T, path, value string) {
	t.Helper()
	v.b.SetCookie(v.base+path, "connect.sid", value)
}

// stickyID is the proxy's server id in front of a prefixed cookie value ("" if none).
func stickyID(value string) string {
	id, _ := browser.StickyID(value)
	return id
}
