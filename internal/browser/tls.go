package browser

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"time"
)

// TLSTransport is a Transport for https URLs whose connections all go to addr
// (host:port), whatever host the URL names, as a browser whose DNS says the site is
// there: a test asks for https://site.test/ and the proxy on 127.0.0.1 sees SNI
// "site.test". It trusts only roots (a test's own CA, or a self-signed certificate),
// offers HTTP/2 and HTTP/1.1 (ALPN) as browsers do, and keeps its own connections.
// protos, if given, replaces that offer: []string{"http/1.1"} for a client that never
// speaks HTTP/2 (a websocket, curl --http1.1).
func TLSTransport(roots *x509.CertPool, addr string, protos ...string) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	t := &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 2,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}
	if len(protos) > 0 {
		t.TLSClientConfig.NextProtos = protos
		t.ForceAttemptHTTP2 = false
		t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return t
}
