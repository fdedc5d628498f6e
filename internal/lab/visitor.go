package lab

import (
	"context"
	"net/http"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/browser"
)

// visitor is one simulated visitor of an arm: a browser with its own cookie jar on the
// arm's shared connections, and the page it visits.
type visitor struct {
	id  int
	url string // e.g. http://127.0.0.1:8080/service1
	b   *browser.Browser
}

func newVisitor(id int, url string, transport http.RoundTripper) *visitor {
	return &visitor{id: id, url: url, b: browser.New(browser.Options{Transport: transport})}
}

// visit sends one request and records what came back; it never fails, it records.
// t0 is the lab's start, the zero of every time in the log.
func (v *visitor) visit(ctx context.Context, seq int, t0 time.Time) Answer {
	a := Answer{Visitor: v.id, Seq: seq}
	start := time.Now()
	a.StartMS = ms(start.Sub(t0))
	page, resp, err := v.b.Page(ctx, v.url)
	a.LatencyMS = ms(time.Since(start))
	if resp != nil {
		a.Status = resp.StatusCode
	}
	if err != nil {
		a.Error = err.Error()
		return a
	}
	a.Replica, a.Visits = page.Host, page.Visits
	return a
}

// open visits another page of the site with the visitor's cookies, recording nothing.
func (v *visitor) open(ctx context.Context, url string) {
	_, _, _ = v.b.Get(ctx, url, http.Header{"Accept": {"application/json"}})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
