package forward

import (
	"bytes"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// NoHTTPSHostText answers a force_ssl request whose Host cannot be redirected to.
const NoHTTPSHostText = "bad request: no host to redirect to https"

// HSTSHeader is the value of Strict-Transport-Security for a max-age in seconds, as
// dockercloud's HSTS_MAX_AGE sent it; "" for 0 (none). Browsers honour it only over
// HTTPS (RFC 6797 §7.2), so the proxy sends it only there.
func HSTSHeader(maxAge int) string {
	if maxAge <= 0 {
		return ""
	}
	return "max-age=" + strconv.Itoa(maxAge)
}

// AppendHTTPSLocation appends the Location of force_ssl's redirect to dst: https, the
// request's host without its port, port unless it is 443, then the path and query as
// the client sent them. host is the Host header; target the request target, in origin
// form ("/a?b") or absolute form ("http://h/a?b", whose path and query are kept). Both
// engines call it, so they redirect alike.
//
// It reports false, with dst unchanged, when the host cannot be put in a URL (empty, or
// other than a name, an IPv4 address or a bracketed IPv6 one) or the target holds a
// control character or space: the answer is then a 400, never a Location that another
// header could be smuggled into (nor a path with a malformed percent escape).
func AppendHTTPSLocation(dst, host, target []byte, port int) ([]byte, bool) {
	name, ok := hostName(host)
	if !ok {
		return dst, false
	}
	path := originPath(target)
	inQuery := false
	for i, b := range path {
		switch {
		case b <= ' ' || b == 0x7f:
			return dst, false
		case b == '?':
			inQuery = true
		case b == '%' && !inQuery && (i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2])):
			// Both engines refuse such a path before routing; refuse it here too.
			return dst, false
		}
	}
	out := append(dst, "https://"...)
	out = append(out, name...)
	if port != 443 && port > 0 {
		out = append(out, ':')
		out = strconv.AppendInt(out, int64(port), 10)
	}
	if len(path) == 0 || path[0] != '/' {
		out = append(out, '/')
	}
	return append(out, path...), true
}

// hostName is host without its port, if it is a plausible name or address.
func hostName(host []byte) ([]byte, bool) {
	if len(host) == 0 || len(host) > 255 {
		return nil, false
	}
	if host[0] == '[' {
		end := bytes.IndexByte(host, ']')
		if end < 0 || !validPort(host[end+1:]) {
			return nil, false
		}
		if a, err := netip.ParseAddr(string(host[1:end])); err != nil || !a.Is6() || a.Zone() != "" {
			return nil, false
		}
		return host[:end+1], true
	}
	name := host
	for i := len(host) - 1; i >= 0; i-- {
		if host[i] == ':' {
			if !validPort(host[i:]) {
				return nil, false
			}
			name = host[:i]
			break
		}
	}
	if len(name) == 0 {
		return nil, false
	}
	for _, b := range name {
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '-' || b == '_') {
			return nil, false
		}
	}
	return name, true
}

// validPort reports whether p is "" or ":digits".
func validPort(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	if p[0] != ':' || len(p) > 6 {
		return false
	}
	for _, b := range p[1:] {
		if b < '0' || b > '9' {
			return false
		}
	}
	return true
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// originPath is the path and query of a request target: the target itself in origin
// form, the part after the authority in absolute form ("http://h/p?q" -> "/p?q",
// "http://h?q" -> "?q"), nothing for "*".
func originPath(t []byte) []byte {
	if len(t) == 0 || t[0] == '/' {
		return t
	}
	for i := 0; i+2 < len(t); i++ {
		if t[i] == ':' && t[i+1] == '/' && t[i+2] == '/' {
			rest := t[i+3:]
			for j, b := range rest {
				if b == '/' || b == '?' {
					return rest[j:]
				}
			}
			return nil
		}
		if t[i] == '/' || t[i] == '?' {
			break
		}
	}
	return nil
}

// redirectHTTPS answers a cleartext request to a force_ssl service with 301 to https
// and counts it as the service's answer (no server was asked).
func (h *Handler) redirectHTTPS(w http.ResponseWriter, r *http.Request, svc *Service, start time.Time) {
	loc, ok := AppendHTTPSLocation(nil, []byte(r.Host), []byte(r.RequestURI), svc.HTTPSPort)
	status := http.StatusMovedPermanently
	if ok {
		w.Header()["Location"] = []string{string(loc)}
		w.Header()["Content-Length"] = []string{"0"}
		w.WriteHeader(status)
	} else {
		status = http.StatusBadRequest
		plain(w, status, NoHTTPSHostText)
	}
	d := time.Since(start)
	svc.Counters.Record(StickyNone, status, d)
	if h.accessLog.Load() {
		LogRequest(h.logger, r.Method, r.URL.EscapedPath(), status, svc.Name, "", StickyNone, d, false)
	}
}
