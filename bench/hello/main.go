// Command hello is the benchmark's ceiling: the least a Go net/http server can do
// per request, on the same core and the same 127.0.0.1 as the servers under test.
//
// It answers every path with 200 "hello". To stand in for a session service behind
// a sticky proxy, it sets a connect.sid cookie on a request that carries none (as
// express-session does for a new visitor) and nothing when the request has one.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address, host:port")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: http.HandlerFunc(hello)}
	fmt.Fprintln(os.Stderr, "hello: listening on", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
}

func hello(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie("connect.sid"); err != nil {
		w.Header().Set("Set-Cookie", "connect.sid=hello; Path=/; HttpOnly")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "hello\n")
}
