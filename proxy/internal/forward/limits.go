package forward

import "time"

// Limits bound what one client can hold of the proxy, for both engines: with the
// header and idle timeouts of the HTTP server, they give every phase of a request a
// bound. Zero fields take the defaults shown (the proxy's, see config.Timeouts).
type Limits struct {
	// BodyTimeout is the longest pause while a request body arrives (10s).
	BodyTimeout time.Duration
	// BodyMinRate is the average a body must keep once BodyTimeout has passed since
	// it started, in bytes per second (500; negative: no minimum): a body may take
	// BodyTimeout plus one second per BodyMinRate bytes received, as Apache's
	// mod_reqtimeout "body=10,MinRate=500". A slow upload that keeps moving gets
	// through; a trickle that would hold the connection for hours does not.
	BodyMinRate int
	// WriteTimeout is the longest one write to the client may block (30s): a client
	// that stops reading is cut, a slow download that keeps moving is not.
	WriteTimeout time.Duration
	// TunnelTimeout ends an upgraded connection (websocket) silent both ways (1h).
	TunnelTimeout time.Duration
	// ServerName is the Host sent for an HTTP/1.0 request that has none, as nginx
	// falls back to its server_name: never an address of ours, which a server would
	// echo ("localhost").
	ServerName string
}

// WithDefaults fills the zero fields.
func (l Limits) WithDefaults() Limits {
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = 10 * time.Second
	}
	if l.BodyMinRate == 0 {
		l.BodyMinRate = 500
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = 30 * time.Second
	}
	if l.TunnelTimeout <= 0 {
		l.TunnelTimeout = time.Hour
	}
	if l.ServerName == "" {
		l.ServerName = "localhost"
	}
	return l
}

// BodyDeadline is when the next read of a request body that started at start and has
// brought got bytes so far must end: BodyTimeout from now, and never later than the
// minimum rate allows.
func (l Limits) BodyDeadline(start, now time.Time, got int64) time.Time {
	d := now.Add(l.BodyTimeout)
	if l.BodyMinRate > 0 {
		byRate := start.Add(l.BodyTimeout + time.Duration(got)*time.Second/time.Duration(l.BodyMinRate))
		if byRate.Before(d) {
			d = byRate
		}
	}
	return d
}

// BufferedBody is the largest request body (of known length) that the proxy reads
// whole before it chooses a server, as nginx buffers request bodies: a client that
// sends a head and then its body slowly, or never, holds no connection to a server,
// and a body that did not arrive in time is answered 408 by the proxy alone.
// Larger bodies (and chunked ones) stream to the server as they come.
const BufferedBody = 16 << 10
