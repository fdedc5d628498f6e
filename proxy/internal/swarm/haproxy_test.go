package swarm

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/health"
)

func TestParseHealthCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		want     health.Config
		problems []string // each a word the problem names
	}{
		{"check inter 2000 rise 2 fall 3", health.Config{Interval: 2 * time.Second, Rise: 2, Fall: 3}, nil},
		{"check", health.Config{}, nil},
		{"check inter 500 rise 1", health.Config{Interval: 500 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 1}, nil},
		{"check inter 5s fastinter 1s port 8081", health.Config{Interval: 5 * time.Second}, []string{`"fastinter"`, `"1s"`, `"port"`, `"8081"`}},
		{"check rise many", health.Config{}, []string{`rise "many"`}},
		{"inter 2000", health.Config{Interval: 2 * time.Second}, []string{`no "check"`}},
		{"check fall", health.Config{}, []string{"fall needs a value"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, problems := parseHealthCheck(tt.in)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if !mentions(problems, tt.problems) {
				t.Errorf("problems %q, want one naming each of %q", problems, tt.problems)
			}
		})
	}
}

// mentions says whether problems has exactly one problem per want, each containing it.
func mentions(problems, want []string) bool {
	if len(problems) != len(want) {
		return false
	}
	for i, w := range want {
		if !strings.Contains(problems[i], w) {
			return false
		}
	}
	return true
}

func TestParseHTTPCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, path string
		problems []string
	}{
		{"GET /healthz", "/healthz", nil},
		{"/healthz", "/healthz", []string{"not OPTIONS"}},
		{"HEAD /ping HTTP/1.1", "/ping", []string{`"HTTP/1.1" after the path`, "not HEAD"}},
		{`OPTIONS * HTTP/1.1\r\nHost:\ www`, "", []string{"after the path", `"*" is not a path`}},
		{"", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			path, problems := parseHTTPCheck(tt.in)
			if path != tt.path || !mentions(problems, tt.problems) {
				t.Errorf("got %q %q, want %q and problems naming %q", path, problems, tt.path, tt.problems)
			}
		})
	}
}

func TestParseTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		want     config.Timeouts
		problems []string
	}{
		{"connect 5000, client 50000, server 50000", config.Timeouts{Connect: 5 * time.Second, Client: 50 * time.Second, Server: 50 * time.Second}, nil},
		{"connect 5s,http-request 10s", config.Timeouts{Connect: 5 * time.Second, HTTPRequest: 10 * time.Second}, nil},
		{"connect 5000, tunnel 1h, queue 1s, server soon", config.Timeouts{Connect: 5 * time.Second, Tunnel: time.Hour}, []string{`"queue"`, `server "soon"`}},
		{"http-keep-alive 10s", config.Timeouts{Client: 10 * time.Second}, nil},
		{"client", config.Timeouts{}, []string{"NAME VALUE"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var got config.Timeouts
			problems := parseTimeout(tt.in, &got)
			if got != tt.want || !mentions(problems, tt.problems) {
				t.Errorf("got %+v %q, want %+v and problems naming %q", got, problems, tt.want, tt.problems)
			}
		})
	}
}

func TestParseOptionNamesWhatItDoesNotDo(t *testing.T) {
	t.Parallel()
	if p := parseOption("redispatch, httplog, dontlognull, forwardfor"); len(p) != 0 {
		t.Errorf("dockercloud's default OPTION gave %q, want nothing", p)
	}
	if p := parseOption("redispatch, http-server-close, abortonclose"); !slices.Equal(p, []string{`"http-server-close" is not supported`, `"abortonclose" is not supported`}) {
		t.Errorf("got %q", p)
	}
}
