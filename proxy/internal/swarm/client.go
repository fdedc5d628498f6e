// Package swarm makes the proxy a drop-in for dockercloud/haproxy: it reads the swarm's
// services from the Docker Engine API and turns each service's environment (VIRTUAL_HOST,
// SERVICE_PORTS, COOKIE, BALANCE, ...) into a config.Service, as dockercloud/haproxy
// turned it into HAProxy's configuration.
//
// The client asks only GET /version, /services, /tasks and /events, so the proxy can sit
// behind a read-only socket proxy (SERVICES=1 TASKS=1 EVENTS=1 VERSION=1, POST=0). It is
// plain net/http over the unix socket or TCP of DOCKER_HOST.
//
// Files: client.go (the API), derive.go (services and tasks -> config.Service), env.go
// (the proxy's own dockercloud settings: TIMEOUT, STATS_PORT, ...), haproxy.go (the
// HAProxy words those settings hold), watch.go (following the swarm).
package swarm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultHost is where the Engine API is when DOCKER_HOST is not set.
const DefaultHost = "unix:///var/run/docker.sock"

// APIVersion is the Engine API version the client asks for: Docker 20.10's, whose
// answers the tests replay. An older engine is asked in its own version (down to
// minAPIVersion), a newer one that no longer serves 1.41 in its oldest.
const APIVersion = "1.41"

// minAPIVersion is the oldest engine the client works with: service events came with
// API 1.30 (Docker 17.06).
const minAPIVersion = "1.30"

// ErrNotManager is the engine's answer on a swarm worker or outside a swarm: only a
// manager answers /services and /tasks.
var ErrNotManager = errors.New("this Docker engine is not a swarm manager")

// Client asks one Docker engine. Make it with NewClient; it is safe for concurrent use.
type Client struct {
	host    string // DOCKER_HOST as given, for messages
	http    *http.Client
	base    string // "http://docker" or "http://host:port"
	version string // "v1.41", set by Negotiate
}

// NewClient reads dockerHost ("" for DefaultHost): unix:///path/to/docker.sock or
// tcp://host:port (plain HTTP, e.g. a socket proxy on the stack's network).
func NewClient(dockerHost string) (*Client, error) {
	if dockerHost == "" {
		dockerHost = DefaultHost
	}
	u, err := url.Parse(dockerHost)
	if err != nil {
		return nil, fmt.Errorf("DOCKER_HOST=%q: %v; write unix:///var/run/docker.sock or tcp://host:2375", dockerHost, err)
	}
	c := &Client{host: dockerHost, version: "v" + APIVersion}
	tr := &http.Transport{
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       time.Minute,
		ResponseHeaderTimeout: 30 * time.Second,
		Proxy:                 nil, // HTTP_PROXY must never see the Engine API
	}
	switch u.Scheme {
	case "unix":
		path := u.Path
		if path == "" {
			path = u.Opaque
		}
		if path == "" {
			return nil, fmt.Errorf("DOCKER_HOST=%q names no socket; write unix:///var/run/docker.sock", dockerHost)
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		c.base = "http://docker"
	case "tcp", "http":
		if u.Host == "" || u.Port() == "" {
			return nil, fmt.Errorf("DOCKER_HOST=%q: write tcp://host:port, e.g. tcp://socket-proxy:2375", dockerHost)
		}
		c.base = "http://" + u.Host
	default:
		return nil, fmt.Errorf("DOCKER_HOST=%q: only unix:// and tcp:// are supported (not %s://)", dockerHost, u.Scheme)
	}
	// No client timeout: the events stream lasts. Each request has its own context.
	c.http = &http.Client{Transport: tr}
	return c, nil
}

// Host is DOCKER_HOST as the client was made with, for messages.
func (c *Client) Host() string { return c.host }

// Negotiate picks the API version to speak from the engine's /version.
func (c *Client) Negotiate(ctx context.Context) error {
	var v struct {
		APIVersion    string `json:"ApiVersion"`
		MinAPIVersion string `json:"MinAPIVersion"`
	}
	if err := c.getJSON(ctx, "/version", nil, &v, false); err != nil {
		return err
	}
	switch {
	case v.APIVersion == "":
		return fmt.Errorf("%s: /version gave no ApiVersion: is this a Docker engine?", c.host)
	case versionLess(v.APIVersion, minAPIVersion):
		return fmt.Errorf("%s: the Docker engine speaks API %s; the proxy needs %s or later (Docker 17.06)", c.host, v.APIVersion, minAPIVersion)
	case versionLess(v.APIVersion, APIVersion):
		c.version = "v" + v.APIVersion
	case v.MinAPIVersion != "" && versionLess(APIVersion, v.MinAPIVersion):
		c.version = "v" + v.MinAPIVersion
	}
	return nil
}

// versionLess compares API versions such as "1.41" and "1.9" by number.
func versionLess(a, b string) bool {
	am, an, _ := strings.Cut(a, ".")
	bm, bn, _ := strings.Cut(b, ".")
	ai, _ := strconv.Atoi(am)
	bi, _ := strconv.Atoi(bm)
	if ai != bi {
		return ai < bi
	}
	aj, _ := strconv.Atoi(an)
	bj, _ := strconv.Atoi(bn)
	return aj < bj
}

// Services lists the swarm's services (GET /services).
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	var s []Service
	return s, c.getJSON(ctx, "/services", nil, &s, true)
}

// Tasks lists the tasks that should be running (GET /tasks, desired-state running).
func (c *Client) Tasks(ctx context.Context) ([]Task, error) {
	var t []Task
	q := url.Values{"filters": {`{"desired-state":["running"]}`}}
	return t, c.getJSON(ctx, "/tasks", q, &t, true)
}

// Events streams the swarm's service events (GET /events, type service) to fn until
// the stream ends (EOF: the engine restarted or a proxy in between closed it), ctx
// is done, or fn returns false. It returns nil only for ctx done or fn's false;
// connected is called once the engine has answered.
func (c *Client) Events(ctx context.Context, connected func(), fn func(Event) bool) error {
	q := url.Values{"filters": {`{"type":["service"]}`}}
	resp, err := c.get(ctx, "/events", q, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	connected()
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var e Event
		if err := dec.Decode(&e); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s: the events stream ended", c.host)
			}
			return fmt.Errorf("%s: reading the events stream: %w", c.host, err)
		}
		if !fn(e) {
			return nil
		}
	}
}

// getJSON GETs path and decodes the answer into v.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any, versioned bool) error {
	resp, err := c.get(ctx, path, q, versioned)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s: GET %s: decoding the answer: %w", c.host, path, err)
	}
	return nil
}

// get is the only request the client makes: a GET. A status other than 200 is an
// error carrying the engine's message; 503 "not a swarm manager" is ErrNotManager.
func (c *Client) get(ctx context.Context, path string, q url.Values, versioned bool) (*http.Response, error) {
	u := c.base
	if versioned {
		u += "/" + c.version
	}
	u += path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no Docker Engine API at %s: %w", c.host, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var msg struct {
		Message string `json:"message"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if json.Unmarshal(body, &msg) != nil || msg.Message == "" {
		msg.Message = strings.TrimSpace(string(body))
	}
	if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(msg.Message, "not a swarm manager") {
		return nil, fmt.Errorf("%w (%s: %s)", ErrNotManager, c.host, msg.Message)
	}
	return nil, fmt.Errorf("%s: GET %s: status %d: %s", c.host, path, resp.StatusCode, msg.Message)
}
