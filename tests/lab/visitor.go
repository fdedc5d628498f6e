package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"time"
)

// reply is the services' JSON answer (Accept: application/json).
type reply struct {
	Service string `json:"service"`
	Host    string `json:"host"`
	Visits  int    `json:"visits"`
}

// visitor is one simulated browser: its own cookie jar, the arm's shared connections.
type visitor struct {
	id     int
	url    string // the page it visits, e.g. http://127.0.0.1:8080/service1
	client *http.Client
}

func newVisitor(id int, url string, transport http.RoundTripper) *visitor {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &visitor{id: id, url: url, client: &http.Client{
		Transport: transport,
		Jar:       jar,
		Timeout:   5 * time.Second,
	}}
}

// visit sends one request and records what came back; it never fails, it records.
// t0 is the lab's start, the zero of every time in the log.
func (v *visitor) visit(ctx context.Context, seq int, t0 time.Time) Answer {
	a := Answer{Visitor: v.id, Seq: seq}
	start := time.Now()
	a.StartMS = ms(start.Sub(t0))
	a = v.fetch(ctx, a)
	a.LatencyMS = ms(time.Since(start))
	return a
}

func (v *visitor) fetch(ctx context.Context, a Answer) Answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		a.Error = shortError(err)
		return a
	}
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		a.Error = "reading the answer: " + shortError(err)
		return a
	}
	if resp.StatusCode != http.StatusOK {
		a.Error = fmt.Sprintf("%s: %s", resp.Status, firstLine(body))
		return a
	}
	var r reply
	if err := json.Unmarshal(body, &r); err != nil {
		a.Error = fmt.Sprintf("not the JSON answer of a service: %q", firstLine(body))
		return a
	}
	a.Replica, a.Visits = r.Host, r.Visits
	return a
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// shortError drops the "Get "http://...": " that net/http puts in front.
func shortError(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "\": "); i >= 0 {
		s = s[i+3:]
	}
	return s
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// open visits another page of the site with the visitor's cookies, recording nothing.
func (v *visitor) open(ctx context.Context, url string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
