package h1

import (
	"bytes"
	"net"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/live"
)

// visitor names the client of the request whose head is buf[r:r+n] for the live
// view (see live.Visitor): the service's VisitorCookie in the request and, when
// a server answered (answered: c.out holds the answer's head as sent), in the
// answer, and the client's address. It allocates nothing.
func (c *conn) visitor(n int, svc *forward.Service, answered bool) live.Visitor {
	var v live.Visitor
	if a, ok := c.nc.RemoteAddr().(*net.TCPAddr); ok {
		v.Client = live.HashAddr(a.AddrPort())
	}
	name := svc.VisitorCookie()
	if name == "" {
		return v
	}
	b := c.buf[c.r : c.r+n]
	for k := 0; k < c.req.n && v.Cookie == 0; k++ {
		f := &c.req.fields[k]
		if f.name.len() == 6 && fieldIs(f.name.of(b), "cookie") {
			if val, ok := live.CookieValue(f.value.of(b), name); ok {
				v.Cookie = live.Hash(val)
			}
		}
	}
	if !answered {
		return v
	}
	// The answer's head as composed for the client: lines of "Name: value"
	// after the status line, up to the blank line.
	o := c.out
	if i := bytes.Index(o, []byte("\r\n\r\n")); i >= 0 {
		o = o[:i]
	}
	for len(o) > 0 {
		line := o
		if i := bytes.Index(o, []byte("\r\n")); i >= 0 {
			line, o = o[:i], o[i+2:]
		} else {
			o = nil
		}
		if len(line) > 11 && fieldIs(line[:10], "set-cookie") && line[10] == ':' {
			if val, ok := live.SetCookieValue(bytes.TrimLeft(line[11:], " \t"), name); ok {
				v.Set = live.Hash(val)
			}
		}
	}
	return v
}
