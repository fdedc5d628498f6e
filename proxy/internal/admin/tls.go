package admin

import (
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/certs"
)

// TLSStats is the HTTPS listener's part of /stats, "tls" in the JSON (absent without
// listen_tls):
//
//	"tls": {
//	  "listen": ":443",
//	  "engine": "std",                          // net/http, whatever engine: says
//	  "handshakes": {"h2": 40, "http1": 2, "resumed": 30},
//	                                            // connections by protocol (ALPN; none is
//	                                            // http1), and how many resumed a session
//	  "certificates": [{"files": "/run/secrets/site.pem", "names": ["example.com"],
//	    "subject": "example.com", "not_after": "2027-03-01T00:00:00Z", "default": true}]
//	}
//
// and one line of the stats text, after the proxy line:
//
//	tls listen :443 engine std h2 40 http1 2 resumed 30 certificates 1
type TLSStats struct {
	Listen       string        `json:"listen"`
	Engine       string        `json:"engine"`
	Handshakes   TLSHandshakes `json:"handshakes"`
	Certificates []certs.Entry `json:"certificates"`
}

// TLSHandshakes counts the HTTPS listener's connections by what they negotiated.
type TLSHandshakes struct {
	H2      uint64 `json:"h2"`
	HTTP1   uint64 `json:"http1"`
	Resumed uint64 `json:"resumed"`
}

func (t *TLSStats) writeText(w io.Writer) {
	if t == nil {
		return
	}
	fmt.Fprintf(w, "tls listen %s engine %s h2 %d http1 %d resumed %d certificates %d\n", orDash(t.Listen), orDash(t.Engine),
		t.Handshakes.H2, t.Handshakes.HTTP1, t.Handshakes.Resumed, len(t.Certificates))
}

var (
	descHandshakes = prometheus.NewDesc("proxy_tls_handshakes_total",
		"TLS handshakes of the HTTPS listener by the protocol chosen: h2, or http/1.1 (also without ALPN).",
		[]string{"protocol"}, nil)
	descResumed = prometheus.NewDesc("proxy_tls_resumed_total",
		"Of the TLS handshakes, those that resumed a session (no certificate sent).", nil, nil)
	descCertExpiry = prometheus.NewDesc("proxy_tls_certificate_not_after_seconds",
		"When each loaded certificate expires, in Unix seconds: alert on it minus time().",
		[]string{"certificate", "subject"}, nil)
)

// collectTLS adds the HTTPS listener's metrics.
func collectTLS(t *TLSStats, ch chan<- prometheus.Metric) {
	if t == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descHandshakes, prometheus.CounterValue, float64(t.Handshakes.H2), "h2")
	ch <- prometheus.MustNewConstMetric(descHandshakes, prometheus.CounterValue, float64(t.Handshakes.HTTP1), "http/1.1")
	ch <- prometheus.MustNewConstMetric(descResumed, prometheus.CounterValue, float64(t.Handshakes.Resumed))
	for _, c := range t.Certificates {
		ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(c.NotAfter.Unix()), c.Files, c.Subject)
	}
}

// until is what the HTML page says of a certificate's expiry.
func until(t time.Time) string { return t.UTC().Format(time.DateOnly) }
