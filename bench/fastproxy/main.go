// Command fastproxy measures the "use a library" option for the proxy engine: a
// minimal reverse proxy on valyala/fasthttp (Server + one HostClient per backend,
// round robin), with the defaults that break a proxy turned off: no header name
// or path normalisation, no Server, Date, Content-Type or User-Agent added,
// bodies streamed instead of buffered and capped, no retries of requests already
// sent. Like bench/goproxy it has no routes, cookies or health checks: the
// gap to our proxy's row is what those cost on this library.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "listen address, host:port")
	flag.Parse()
	var clients []*fasthttp.HostClient
	for _, a := range flag.Args() {
		clients = append(clients, &fasthttp.HostClient{
			Addr:                          a,
			MaxConns:                      4096,
			MaxIdleConnDuration:           90 * time.Second,
			ReadBufferSize:                32 << 10,
			DisableHeaderNamesNormalizing: true,
			DisablePathNormalizing:        true,
			NoDefaultUserAgentHeader:      true,
			StreamResponseBody:            true,
			RetryIfErr:                    func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		})
	}
	if len(clients) == 0 {
		fmt.Fprintln(os.Stderr, "usage: fastproxy -addr HOST:PORT BACKEND...")
		os.Exit(2)
	}
	var next atomic.Uint64
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			hc := clients[next.Add(1)%uint64(len(clients))]
			ctx.Request.Header.Add("X-Forwarded-For", ctx.RemoteIP().String())
			if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Response.Reset()
				ctx.SetStatusCode(fasthttp.StatusBadGateway)
				ctx.SetBodyString("bad gateway\n")
			}
		},
		ReadBufferSize:                32 << 10,
		StreamRequestBody:             true,
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		IdleTimeout:                   50 * time.Second,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fastproxy:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "fastproxy: listening on", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "fastproxy:", err)
		os.Exit(1)
	}
}
