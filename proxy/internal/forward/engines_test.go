package forward_test

import (
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/h1"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// The tests of this file's package run against both engines: what the proxy
// does must not depend on the engine: engine: std is net/http with this
// package's Handler, engine: fast is package h1.

// engine starts a proxy serving a routing table on 127.0.0.1.
type engine struct {
	name  string
	start func(t testing.TB, o opts, tb *forward.Table) (url string)
}

// opts are the settings the tests vary, for either engine.
type opts struct {
	logger        *slog.Logger
	accessLog     bool
	serverTimeout time.Duration // 0: the default
}

var engines = []engine{
	{"std", func(t testing.TB, o opts, tb *forward.Table) string {
		h := forward.NewHandler(forward.Options{
			Transport: forward.NewTransport(forward.TransportOptions{ResponseHeaderTimeout: o.serverTimeout}),
			Logger:    o.logger, AccessLog: o.accessLog,
		})
		h.SetTable(tb)
		front := httptest.NewServer(h)
		t.Cleanup(front.Close)
		return front.URL
	}},
	{"fast", func(t testing.TB, o opts, tb *forward.Table) string {
		s := h1.NewServer(h1.Options{
			Table: func() *forward.Table { return tb }, Logger: o.logger,
			AccessLog: func() bool { return o.accessLog }, ServerTimeout: o.serverTimeout,
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve(ln)
		t.Cleanup(func() { s.Close() })
		return "http://" + ln.Addr().String()
	}},
}

// eachEngine runs test once per engine, in parallel.
func eachEngine(t *testing.T, test func(t *testing.T, e engine)) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			test(t, e)
		})
	}
}

// front is a running proxy.
type front struct{ URL string }

func startProxy(t testing.TB, e engine, o opts, svcs ...*forward.Service) front {
	t.Helper()
	tb, err := forward.NewTable(svcs)
	if err != nil {
		t.Fatal(err)
	}
	return front{URL: e.start(t, o, tb)}
}

var testIDs = backend.NewIDs([]byte("forward test key"))

// service makes a service over the given servers, routed at /name, sticky on
// cookie unless it is "".
func service(name, cookie string, servers ...*testServer) *forward.Service {
	pool := backend.NewPool(testIDs, backend.RoundRobin)
	var addrs []string
	for _, s := range servers {
		addrs = append(addrs, s.addr)
	}
	pool.Update(addrs)
	return &forward.Service{
		Name: name, VirtualHost: "*/" + name + ", */" + name + "/*",
		Sticky: sticky.Rule{Name: cookie, NoCache: cookie != ""}, Retries: 3, Pool: pool,
	}
}
