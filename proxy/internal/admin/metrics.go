package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
)

// collector turns the proxy's own atomic counters into Prometheus metrics at
// scrape time, so the request path never touches the Prometheus client.
type collector struct{ a *admin }

var (
	descServerUp = prometheus.NewDesc("proxy_server_up",
		"1 when the server takes new requests, 0 when down or draining.", []string{"service", "server"}, nil)
	descServerState = prometheus.NewDesc("proxy_server_state",
		"1 for the state the server is in (up, down, draining).", []string{"service", "server", "state"}, nil)
	descActive = prometheus.NewDesc("proxy_server_active_requests",
		"Requests in flight on the server.", []string{"service", "server"}, nil)
	descRequests = prometheus.NewDesc("proxy_server_requests_total",
		"Requests sent to the server.", []string{"service", "server"}, nil)
	descFailures = prometheus.NewDesc("proxy_server_failures_total",
		"Attempts that could not connect to the server.", []string{"service", "server"}, nil)
	descAvailable = prometheus.NewDesc("proxy_service_servers_available",
		"Servers of the service that take new requests.", []string{"service"}, nil)
	descSticky = prometheus.NewDesc("proxy_sticky_total",
		"Requests of a sticky service by outcome: hit (the cookie's server answered), new (no server id), rebalanced (the id's server was gone or refused).",
		[]string{"service", "outcome"}, nil)
	descResponses = prometheus.NewDesc("proxy_responses_total",
		"Answers by status class (other: no whole answer, the client left or the server died mid-body).", []string{"service", "code"}, nil)
	descDuration = prometheus.NewDesc("proxy_request_duration_seconds",
		"Time from the request's arrival to the end of its answer.", []string{"service"}, nil)
	descConns = prometheus.NewDesc("proxy_client_connections",
		"Client connections open now.", nil, nil)
	descRejected = prometheus.NewDesc("proxy_client_connections_rejected_total",
		"Client connections refused at once (503, or 429 for one address over maxconn_per_ip), by reason.", []string{"reason"}, nil)
	descWarning = prometheus.NewDesc("proxy_doctor_warning",
		"1 for each condition of the stickiness doctor that holds (kind: vip, no-cookie, cookie-path); /stats says what to do.", []string{"service", "kind"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descServerUp, descServerState, descActive, descRequests, descFailures,
		descAvailable, descSticky, descResponses, descDuration, descConns, descRejected, descWarning,
		descHandshakes, descResumed, descCertExpiry} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if c.a.o.Connections != nil {
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(c.a.o.Connections()))
	}
	if c.a.o.Rejected != nil {
		for reason, n := range c.a.o.Rejected() {
			ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(n), reason)
		}
	}
	if c.a.o.TLS != nil {
		collectTLS(c.a.o.TLS(), ch)
	}
	for _, s := range c.a.o.Table().Services() {
		for _, b := range s.Pool.Backends() {
			id := b.ID()
			up := 0.0
			if b.Available() {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descServerUp, prometheus.GaugeValue, up, s.Name, id)
			for _, st := range []backend.State{backend.Up, backend.Down, backend.Draining} {
				v := 0.0
				if b.State() == st {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(descServerState, prometheus.GaugeValue, v, s.Name, id, st.String())
			}
			ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(b.Active()), s.Name, id)
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(b.Requests()), s.Name, id)
			ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(b.Failures()), s.Name, id)
		}
		ch <- prometheus.MustNewConstMetric(descAvailable, prometheus.GaugeValue, float64(s.Pool.Available()), s.Name)
		if s.Sticky.On() {
			ch <- prometheus.MustNewConstMetric(descSticky, prometheus.CounterValue, float64(s.Counters.Hits.Load()), s.Name, "hit")
			ch <- prometheus.MustNewConstMetric(descSticky, prometheus.CounterValue, float64(s.Counters.New.Load()), s.Name, "new")
			ch <- prometheus.MustNewConstMetric(descSticky, prometheus.CounterValue, float64(s.Counters.Rebalanced.Load()), s.Name, "rebalanced")
		}
		for i, class := range classes {
			ch <- prometheus.MustNewConstMetric(descResponses, prometheus.CounterValue, float64(s.Counters.Responses[i].Load()), s.Name, class)
		}
		if s.Doctor != nil {
			for _, w := range s.Doctor.Warnings() {
				ch <- prometheus.MustNewConstMetric(descWarning, prometheus.GaugeValue, 1, s.Name, string(w.Kind))
			}
		}
		buckets, count, sum := s.Counters.Duration.Snapshot()
		ch <- prometheus.MustNewConstHistogram(descDuration, count, sum, buckets, s.Name)
	}
}
