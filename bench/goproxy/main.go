// Command goproxy is the benchmark's ceiling for a Go proxy: the Go standard
// library's httputil.ReverseProxy, set up as a competent one would be (backend
// connections kept alive, a buffer pool, X-Forwarded-* set), round robin over the
// backends given as arguments, and nothing else: no routes, no cookies, no health
// checks. Our proxy does all of these on top of the same ReverseProxy; the gap
// between the two rows is what they cost, the gap to HAProxy what net/http costs.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "listen address, host:port")
	flag.Parse()
	var targets []*url.URL
	for _, a := range flag.Args() {
		targets = append(targets, &url.URL{Scheme: "http", Host: a})
	}
	if len(targets) == 0 {
		fmt.Fprintln(os.Stderr, "usage: goproxy -addr HOST:PORT BACKEND...")
		os.Exit(2)
	}
	var next atomic.Uint64
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(targets[next.Add(1)%uint64(len(targets))])
			r.SetXForwarded()
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     90 * time.Second,
		},
		BufferPool: &pool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}},
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goproxy:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "goproxy: listening on", ln.Addr())
	if err := (&http.Server{Handler: rp}).Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "goproxy:", err)
		os.Exit(1)
	}
}

// pool is a httputil.BufferPool over sync.Pool.
type pool struct{ p sync.Pool }

func (p *pool) Get() []byte  { return *p.p.Get().(*[]byte) }
func (p *pool) Put(b []byte) { p.p.Put(&b) }
