package discover

import (
	"context"
	"net"
	"strings"
	"testing"
)

type mapResolver map[string][]string

func (m mapResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if ips, ok := m[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestCheckVIP(t *testing.T) {
	t.Parallel()
	res := mapResolver{
		"service1":       {"10.0.1.2"},
		"tasks.service1": {"10.0.1.5", "10.0.1.6"},
		"dnsrr":          {"10.0.2.5", "10.0.2.6"},
		"tasks.dnsrr":    {"10.0.2.5", "10.0.2.6"},
		"single":         {"10.0.3.5"},
		"tasks.single":   {"10.0.3.5"},
		"plain":          {"192.0.2.1"},
	}
	tests := []struct {
		name, target string
		vip          bool
	}{
		{"a service name that is a VIP", "service1:8080", true},
		{"tasks.NAME, the tutorial's", "tasks.service1:8080", false},
		{"endpoint_mode dnsrr: the name gives the tasks", "dnsrr:8080", false},
		{"one task whose address the name gives", "single:8080", false},
		{"a name that is no swarm service", "plain:8080", false},
		{"an IP address", "10.0.1.2:8080", false},
		{"a name that does not resolve", "nowhere:8080", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts, err := Parse([]string{tt.target})
			if err != nil {
				t.Fatal(err)
			}
			msg, vip := CheckVIP(context.Background(), res, ts[0])
			if vip != tt.vip {
				t.Fatalf("got vip %v (%q), want %v", vip, msg, tt.vip)
			}
			if vip && !strings.Contains(msg, `use servers: "tasks.service1:8080"`) {
				t.Errorf("got message %q, want it to say what to write", msg)
			}
		})
	}
}
