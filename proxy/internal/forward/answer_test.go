package forward_test

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/forward"
)

// noTime is a text handler without the time, so that lines compare whole.
func noTime(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
}

func TestAccessLogLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want string
	}{
		{"a sticky hit", func(l *slog.Logger) {
			forward.LogRequest(l, "GET", "/service1", 200, "service1", "hcrab3doxl", forward.StickyHit, 1500*time.Microsecond, false)
		}, `level=INFO msg=request method=GET path=/service1 status=200 service=service1 server=hcrab3doxl sticky=hit dur_ms=1.5` + "\n"},
		{"an answer cut short", func(l *slog.Logger) {
			forward.LogRequest(l, "POST", "/a b", 502, "s", "", forward.StickyNone, 2*time.Millisecond, true)
		}, `level=INFO msg=request method=POST path="/a b" status=502 service=s server="" sticky="" dur_ms=2 aborted=true` + "\n"},
		{"no route", func(l *slog.Logger) {
			forward.LogNoRoute(l, "GET", "/nope", 250*time.Microsecond)
		}, `level=INFO msg=request method=GET path=/nope status=404 service="" dur_ms=0.25` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			tt.log(noTime(&buf))
			if got := buf.String(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// BenchmarkLogRequest is the access log line of one request (access_log is on
// by default), to a text handler that writes nowhere.
func BenchmarkLogRequest(b *testing.B) {
	l := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.ReportAllocs()
	for b.Loop() {
		forward.LogRequest(l, "GET", "/service1", 200, "service1", "hcrab3doxl", forward.StickyHit, 1500*time.Microsecond, false)
	}
}
