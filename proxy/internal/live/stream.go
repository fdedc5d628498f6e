package live

import (
	"embed"
	"net/http"
	"strconv"
	"time"
)

// page holds the view's files, served as they are: no build step, nothing
// fetched from elsewhere, so the page works offline on a classroom projector.
//
//go:embed page/live.html page/live.css page/live.js
var page embed.FS

// writeTimeout bounds one write to a viewer: a viewer that reads nothing for
// that long is disconnected (its browser reconnects by itself).
const writeTimeout = 10 * time.Second

// ServeHTTP serves the view, under /live on the admin port (the caller puts its
// auth in front):
//
//	GET /live           the page
//	GET /live/live.js   its script, /live/live.css its style
//	GET /live/events    the event stream (text/event-stream): an event "state"
//	                    every Interval while connected, its data a Message (JSON);
//	                    an event "dropped" (data {"dropped":N}) before the first
//	                    message after N were missed
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/live", "/live/":
		asset(w, "page/live.html", "text/html; charset=utf-8")
	case "/live/live.js":
		asset(w, "page/live.js", "text/javascript; charset=utf-8")
	case "/live/live.css":
		asset(w, "page/live.css", "text/css; charset=utf-8")
	case "/live/events":
		h.stream(w, r)
	default:
		plain(w, http.StatusNotFound, "not found; the live view is /live")
	}
}

func asset(w http.ResponseWriter, name, contentType string) {
	b, err := page.ReadFile(name)
	if err != nil {
		plain(w, http.StatusInternalServerError, "the live view is missing from this build")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	// Only its own files and stream: nothing inline, nothing from elsewhere.
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	_, _ = w.Write(b)
}

func (h *Hub) stream(w http.ResponseWriter, r *http.Request) {
	v, ok := h.add()
	if !ok {
		plain(w, http.StatusServiceUnavailable, "too many viewers of /live ("+strconv.Itoa(h.o.MaxViewers)+"); close one")
		return
	}
	defer h.remove(v)
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // a proxy in front must not hold the stream back
	w.WriteHeader(http.StatusOK)
	// The browser's EventSource reconnects after this many ms if the stream ends.
	if !write(w, rc, []byte("retry: 2000\n\n")) {
		return
	}
	var buf []byte
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.closed:
			return
		case msg := <-v.q:
			buf = buf[:0]
			if n := v.dropped.Swap(0); n > 0 {
				buf = append(buf, "event: dropped\ndata: {\"dropped\":"...)
				buf = strconv.AppendUint(buf, n, 10)
				buf = append(buf, "}\n\n"...)
			}
			buf = append(buf, "event: state\ndata: "...)
			buf = append(buf, msg...)
			buf = append(buf, "\n\n"...)
			if !write(w, rc, buf) {
				return
			}
		}
	}
}

// write sends b to the viewer at once, or reports that it could not within
// writeTimeout.
func write(w http.ResponseWriter, rc *http.ResponseController, b []byte) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}
