package forward

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"time"
	"unsafe"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// What both engines share of a request's outcome: the sticky verdict, the
// proxy's own answers and the access log line, so that a request reads the
// same in /stats, /metrics and the log whichever engine served it.

// Outcome says what stickiness did for a request of svc answered by b (nil: no
// server answered): pinned is the available server its cookie named (nil:
// none), hadID whether the request carried any id at all.
func Outcome(svc *Service, pinned, b *backend.Backend, hadID bool) Sticky {
	switch {
	case !svc.Sticky.On():
		return StickyNone
	case pinned != nil && pinned == b:
		return StickyHit
	case hadID:
		return StickyRebalanced
	}
	return StickyNew
}

// Pin is what a request's sticky cookies say, read from its Cookie headers one
// by one with Read (the zero value has read none).
type Pin struct {
	// Server is the server named by the first id that names an available
	// one; nil: none does.
	Server *backend.Backend
	// HadID says some cookie carried an id that has not expired (an expired
	// one counts as absent, as in HAProxy).
	HadID bool
	// Dates are the dates of the last such cookie (insert mode with maxidle or
	// maxlife), for the refresh of the inserted cookie.
	Dates sticky.Dates
}

// Read reads the sticky cookies of one Cookie header value h of a request of
// svc at now (Unix seconds). It allocates nothing; h is not kept.
func (p *Pin) Read(svc *Service, h []byte, now int64) {
	for i := 0; ; {
		f, next, ok := svc.Sticky.Next(h, i, now)
		if !ok {
			return
		}
		i = next
		if f.Expired {
			p.Dates = sticky.Dates{}
			continue
		}
		p.HadID = true
		p.Dates = f.Dates
		if p.Server == nil {
			if b, ok := svc.Pool.Lookup(unsafe.String(unsafe.SliceData(f.ID), len(f.ID))); ok && b.Available() {
				p.Server = b
			}
		}
	}
}

// ClientAddr is the client's address for balance source: the peer's, or,
// when the peer is one of trusted, the last hop of lastXFF (the value of the
// request's last X-Forwarded-For header, nil: none; a bad hop means the
// peer's): the hop that the trusted proxy itself added. It allocates nothing.
func ClientAddr(peer netip.Addr, trusted []netip.Prefix, lastXFF []byte) netip.Addr {
	peer = peer.Unmap()
	if len(trusted) == 0 || len(lastXFF) == 0 || !slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(peer) }) {
		return peer
	}
	last := lastXFF
	if i := bytes.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	last = bytes.TrimSpace(last)
	if a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(last), len(last))); err == nil {
		return a.Unmap()
	}
	return peer
}

// StatusClientGone is logged, by either engine, for a request whose client left
// before its answer was whole (nginx's 499); nobody receives it.
const StatusClientGone = 499

// The proxy's own answers: one line of text, never an address or Go error text.

// NoRouteText answers a request that matches no route; the path, cut to 200
// bytes, is echoed in a text/plain answer that no browser sniffs.
func NoRouteText(path string) string {
	if len(path) > 200 {
		path = path[:200] + "..."
	}
	return "no route for " + path
}

// LogNoRoute writes the access log line of a request that matched no route,
// answered 404 with NoRouteText(path); path is as the URL's EscapedPath.
func LogNoRoute(logger *slog.Logger, method, path string, d time.Duration) {
	logger.LogAttrs(context.Background(), slog.LevelInfo, "request", slog.String("method", method), slog.String("path", path),
		slog.Int("status", http.StatusNotFound), slog.String("service", ""), slog.Float64("dur_ms", ms(d)))
}

// BodyFaultText answers a request whose body failed by the client's fault:
// status 408 when it stalled (or fell below body_min_rate), else 400 (malformed
// or cut short).
func BodyFaultText(status int) string {
	if status == http.StatusRequestTimeout {
		return "request timeout: the request body stalled"
	}
	return "bad request: malformed or incomplete request body"
}

// BadHostText answers (400) a request whose Host is missing, empty, repeated or
// malformed.
const BadHostText = "bad request: missing, empty, repeated or malformed Host"

// NoServerText answers when a service has no available server left to try.
func NoServerText(svc string) string { return "no server available for " + svc }

// RefusedText answers when every server tried refused the connection.
func RefusedText(svc string) string {
	return "service unavailable: no server of " + svc + " accepted the connection"
}

// TimeoutText answers when the server did not answer within timeout.server.
func TimeoutText(svc string) string { return "gateway timeout: " + svc + " did not answer in time" }

// BadGatewayText answers when the server's answer was missing or malformed.
func BadGatewayText(svc string) string { return "bad gateway: " + svc + " gave no valid answer" }

// LogRequest writes the access log line of one request. It builds typed
// attributes (LogAttrs), not key-value arguments: nothing is boxed, so a line
// costs few allocations, access_log being on by default.
func LogRequest(logger *slog.Logger, method, path string, status int, service, server string, sticky Sticky, d time.Duration, aborted bool) {
	attrs := [...]slog.Attr{slog.String("method", method), slog.String("path", path), slog.Int("status", status),
		slog.String("service", service), slog.String("server", server), slog.String("sticky", sticky.String()),
		slog.Float64("dur_ms", ms(d)), slog.Bool("aborted", true)}
	n := len(attrs)
	if !aborted {
		n--
	}
	logger.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs[:n]...)
}

// AppendCacheDirectives appends the directives of one Cache-Control value to
// dst (", "-separated, after any dst holds) for a response that sets a sticky
// cookie: "public" is dropped, a "private" directive is kept once, as a plain
// "private" (a field-qualified private="set-cookie" would let shared caches
// keep the rest), everything else stays. has says a private directive is in
// dst already; AppendPrivate ends the value.
func AppendCacheDirectives(dst, v []byte, has bool) ([]byte, bool) {
	for len(v) > 0 {
		d := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			d, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		d = bytes.TrimSpace(d)
		name, _, _ := bytes.Cut(d, []byte("="))
		name = bytes.TrimSpace(name)
		switch {
		case len(name) == 0, asciiFold(name, "public"):
			continue
		case asciiFold(name, "private"):
			if has {
				continue
			}
			has = true
			d = []byte("private")
		}
		dst = appendDirective(dst, d)
	}
	return dst, has
}

// AppendPrivate ends a merged Cache-Control value: "private" unless has.
func AppendPrivate(dst []byte, has bool) []byte {
	if has {
		return dst
	}
	return appendDirective(dst, []byte("private"))
}

func appendDirective(dst, d []byte) []byte {
	if len(dst) > 0 {
		dst = append(dst, ", "...)
	}
	return append(dst, d...)
}

// asciiFold reports whether b equals lower (lower-case ASCII), ignoring case.
func asciiFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
