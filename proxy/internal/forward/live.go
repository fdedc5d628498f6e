package forward

import (
	"net/http"
	"net/netip"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/live"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// Observe hands a finished request of s to its live view, if anyone watches:
// both engines call it once per request, where they count it. visitor is only
// called then (it hashes the request's cookie), so with nobody watching a
// request costs one atomic load here. srv is the server that answered (nil:
// none), status as counted (0: no whole answer).
func (s *Service) Observe(visitor func() live.Visitor, srv *backend.Backend, st Sticky, status int) {
	if !s.Live.Watched() {
		return
	}
	id := ""
	if srv != nil {
		id = srv.ID()
	}
	s.Live.Request(visitor(), id, st, status)
}

// VisitorCookie is the cookie whose value names a visitor of s in the live
// view, "" for none (the view then names a visitor by its connection). Only
// prefix mode's cookie is one per visitor ("<id>~<session>"): insert's and
// rewrite's values are the server's id, the same for all its visitors.
func (s *Service) VisitorCookie() string {
	if s.Sticky.Mode != sticky.ModePrefix {
		return ""
	}
	return s.Sticky.Name
}

// visitor names the client of request r for the live view (see live.Visitor):
// the service's VisitorCookie in the request and in the answer's header h, as
// sent, and the client's address.
func (s *Service) visitor(r *http.Request, h http.Header) live.Visitor {
	var v live.Visitor
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		v.Client = live.HashAddr(ap)
	}
	name := s.VisitorCookie()
	if name == "" {
		return v
	}
	for _, c := range r.Header["Cookie"] {
		if val, ok := live.CookieValue(c, name); ok {
			v.Cookie = live.HashString(val)
			break
		}
	}
	for _, c := range h["Set-Cookie"] {
		if val, ok := live.SetCookieValue(c, name); ok {
			v.Set = live.HashString(val)
		}
	}
	return v
}
