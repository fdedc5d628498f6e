// Package browser is the one simulated visitor of the end-to-end tests, the lab and the
// benchmarks: an HTTP client with a cookie jar of its own, as a browser has, that asks
// the services for their JSON answer and decodes it with pageview.Answer, the type the
// services encode it with.
package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/pageview"
)

// Options shape a Browser. The zero value is a browser with cookies, its own
// connections and a 5 s timeout.
type Options struct {
	// Transport sends the requests; nil: one of the browser's own, so that it does not
	// share connections with other browsers (a real one does not).
	Transport http.RoundTripper
	// NoCookies makes a client that keeps no cookie, as curl without a jar.
	NoCookies bool
	// Timeout bounds one request, body included; 0 means 5 s.
	Timeout time.Duration
}

// Browser is one visitor. It is safe for concurrent use, as http.Client is.
type Browser struct {
	client *http.Client
}

// maxBody is the most of an answer a Browser reads.
const maxBody = 1 << 20

// New makes a Browser.
func New(o Options) *Browser {
	c := &http.Client{Transport: o.Transport, Timeout: o.Timeout}
	if c.Transport == nil {
		c.Transport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2}
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if !o.NoCookies {
		c.Jar, _ = cookiejar.New(nil) // never fails without options
	}
	return &Browser{client: c}
}

// Get asks for url with the browser's cookies and header (nil: none) and returns the
// answer with its body read (at most 1 MiB). An error is a request that got no whole
// answer; its text leaves out the URL, which the caller knows.
func (b *Browser) Get(ctx context.Context, url string, header http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, nil, short(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp, body, fmt.Errorf("reading the answer: %w", short(err))
	}
	return resp, body, nil
}

// Page asks for url as JSON (Accept: application/json) and decodes the service's
// answer. It fails for no answer, a status other than 200 (the error holds the status
// and the body's first line, e.g. the proxy's "no server available for service1") and
// an answer that is not a service's JSON. resp is set whenever an answer came.
func (b *Browser) Page(ctx context.Context, url string) (pageview.Answer, *http.Response, error) {
	var a pageview.Answer
	resp, body, err := b.Get(ctx, url, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return a, resp, err
	}
	if resp.StatusCode != http.StatusOK {
		return a, resp, fmt.Errorf("%s: %s", resp.Status, FirstLine(body))
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, resp, fmt.Errorf("not the JSON answer of a service: %q", FirstLine(body))
	}
	return a, resp, nil
}

// Cookie is the value of the cookie name the browser would send to rawURL.
func (b *Browser) Cookie(rawURL, name string) (string, bool) {
	u, err := url.Parse(rawURL)
	if err != nil || b.client.Jar == nil {
		return "", false
	}
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

// SetCookie replaces the browser's cookie name for rawURL's path with value, as a
// user editing cookies would. It does nothing for a browser without cookies.
func (b *Browser) SetCookie(rawURL, name, value string) {
	u, err := url.Parse(rawURL)
	if err != nil || b.client.Jar == nil {
		return
	}
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: u.Path}})
}

// CloseIdleConnections closes the browser's kept-alive connections.
func (b *Browser) CloseIdleConnections() { b.client.CloseIdleConnections() }

// StickyID is the proxy's server id in front of a prefixed cookie value ("<id>~..."),
// as HAProxy's `cookie NAME prefix` writes it.
func StickyID(value string) (string, bool) {
	id, _, ok := strings.Cut(value, "~")
	return id, ok
}

// FirstLine is the first line of an answer, cut to 120 bytes, for messages.
func FirstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// short drops what net/http puts in front of a transport error: `Get "http://...": `.
func short(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
