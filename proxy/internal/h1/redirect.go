package h1

import (
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
)

// redirectHTTPS answers a request to a force_ssl service with 301 to https, as the std
// engine does (forward.AppendHTTPSLocation decides the Location for both), and counts
// it as the service's answer, before writing it (a client holding the answer finds it
// in /stats). A Host that cannot be redirected to gets 400.
func (c *conn) redirectHTTPS(n int, svc *forward.Service, start time.Time) bool {
	b := c.buf[c.r : c.r+n]
	h := &c.req
	var host []byte
	if h.host >= 0 {
		host = h.fields[h.host].value.of(b)
	}
	o := append(c.out[:0], "HTTP/1.1 301 Moved Permanently\r\nLocation: "...)
	o, ok := forward.AppendHTTPSLocation(o, host, h.target.of(b), svc.HTTPSPort)
	status := 301
	if !ok {
		status = 400
	}
	d := time.Since(start)
	svc.Counters.Record(forward.StickyNone, status, d)
	if c.s.o.AccessLog() {
		forward.LogRequest(c.s.o.Logger, string(h.method.of(b)), string(h.path.of(b)), status, svc.Name, "", forward.StickyNone, d, false)
	}
	if !ok {
		c.reject(badRequest(forward.NoHTTPSHostText))
		return false
	}
	rb, err := c.bodyOf(n)
	keep := err == nil && rb.complete && !h.connClose && !c.s.closing.Load()
	o = append(o, "\r\nContent-Length: 0\r\n"...)
	if !keep {
		o = append(o, "Connection: close\r\n"...)
	}
	o = append(o, "\r\n"...)
	c.out = o
	c.dl.write(c.nc, time.Now(), c.s.o.Limits.WriteTimeout)
	if _, err := c.nc.Write(o); err != nil {
		return false
	}
	if !keep {
		c.linger() // the client may still be sending a body nobody reads
		return false
	}
	c.consume(n + rb.inBuf)
	return true
}
