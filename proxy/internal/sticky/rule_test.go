package sticky

import (
	"strings"
	"testing"
	"time"
)

func TestParseRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"the tutorial's prefix rule", "connect.sid prefix nocache", "connect.sid prefix nocache"},
		{"dockercloud's documented insert rule", "SRV insert indirect nocache", "SRV insert indirect nocache"},
		{"every insert option", "SRV insert indirect nocache postonly preserve httponly secure domain .a.test domain b.test maxidle 30m maxlife 8h attr SameSite=Lax attr Partitioned",
			"SRV insert indirect nocache postonly preserve httponly secure domain .a.test domain b.test maxidle 1800s maxlife 28800s attr SameSite=Lax attr Partitioned"},
		{"rewrite with nocache", "JSESSIONID rewrite nocache", "JSESSIONID rewrite nocache"},
		{"prefix with indirect and preserve", "sid prefix indirect preserve", "sid prefix indirect preserve"},
		{"keywords in any case, times in seconds by default", "SRV INSERT MaxIdle 60", "SRV insert maxidle 60s"},
		{"dynamic is accepted (our ids are always keyed)", "SRV insert dynamic", "SRV insert"},
		{"a mode given twice is one mode", "SRV insert insert", "SRV insert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRule(tt.in)
			if err != nil {
				t.Fatalf("ParseRule(%q): %v", tt.in, err)
			}
			if got := r.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseRuleRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"an empty rule", "", "empty"},
		{"a bad cookie name", "con;nect prefix", "not a cookie name"},
		{"no mode (HAProxy's passive mode)", "SRV indirect", "no mode"},
		{"insert with prefix, as HAProxy", "SRV insert prefix", "modes are incompatible"},
		{"rewrite with insert, as HAProxy", "SRV rewrite insert", "modes are incompatible"},
		{"rewrite with indirect, as HAProxy", "SRV rewrite indirect", "'rewrite' and 'indirect' modes are incompatible"},
		{"preserve without insert or indirect, as HAProxy", "SRV prefix preserve", "requires at least 'insert' or 'indirect'"},
		{"an unknown option", "SRV insert sticky", "not a cookie option"},
		{"domain without its name", "SRV insert domain", "expects a domain name"},
		{"a domain with a bad character", "SRV insert domain a;b.test", "not permitted in domain name"},
		{"attr without its value", "SRV insert attr", "expects an attribute"},
		{"an attr holding ;", "SRV insert attr a;b", "not permitted in attribute value"},
		{"a bad maxidle", "SRV insert maxidle soon", "not a time"},
		{"a zero maxlife", "SRV insert maxlife 0", "at least 1s"},
		{"insert-only options in prefix mode", "sid prefix httponly maxidle 30m", "httponly, maxidle only acts on a cookie the proxy inserts"},
		{"postonly in rewrite mode", "SRV rewrite postonly", "postonly only acts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseRule(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseRule(%q): got %v, want an error saying %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseSeconds(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"30": 30 * time.Second, "30m": 30 * time.Minute, "8h": 8 * time.Hour, "1d": 24 * time.Hour, "500ms": time.Second, "90s": 90 * time.Second} {
		if got, err := parseSeconds(in); err != nil || got != want {
			t.Errorf("parseSeconds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}
