package route

import (
	"strings"
	"testing"
)

func tutorialTable(t testing.TB) *Table[string] {
	t.Helper()
	var tb Table[string]
	for _, s := range []struct{ spec, svc string }{
		{"*/service1, */service1/*", "service1"},
		{"*/service2, */service2/*", "service2"},
		{"api.example.com/service1/*", "api"},
		{"*.example.org", "org"},
	} {
		if err := tb.Add(s.spec, s.svc); err != nil {
			t.Fatalf("Add(%q): %v", s.spec, err)
		}
	}
	return &tb
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tb := tutorialTable(t)
	tests := []struct {
		host, path string
		want       string
	}{
		{"localhost", "/service1", "service1"},
		{"localhost:8080", "/service1", "service1"},
		{"LOCALHOST", "/SERVICE1", "service1"},
		{"localhost", "/service1/", "service1"},
		{"localhost", "/service1/a/b", "service1"},
		{"localhost", "/service2", "service2"},
		{"localhost", "/service12", ""},
		{"localhost", "/service", ""},
		{"localhost", "/", ""},
		{"localhost", "", ""},
		{"api.example.com", "/service1/x", "api"},
		{"API.example.com:80", "/service1/x", "api"},
		{"api.example.com", "/service1", "service1"},
		{"www.example.org", "/anything", "org"},
		{"example.org", "/anything", ""},
		{"[::1]:80", "/service2/", "service2"},
		{"::1", "/service2", "service2"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			t.Parallel()
			got, ok := tb.Match(tt.host, tt.path)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("Match(%q, %q) = %q, %v; want %q", tt.host, tt.path, got, ok, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ spec, want string }{
		{"", "no entry"},
		{" , ", "no entry"},
		{"https://x/a", "cannot be for HTTPS only"},
		{"*/a*b", "only allowed at the end"},
		{"ex*ample.com/a", "host must be"},
		{"example.com:80/a", "no port"},
		{"*/a?x=1", "query"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %v, want one containing %q", tt.spec, err, tt.want)
			}
		})
	}
}

func TestParseForms(t *testing.T) {
	t.Parallel()
	tests := []struct{ spec, want string }{
		{"*/service1", "*/service1"},
		{"*/service1/*", "*/service1/*"},
		{"http://Example.com", "example.com/*"},
		{"*", "*/*"},
		{"/x", "*/x"},
		{"*.Example.com/A", "*.example.com/a"},
	}
	for _, tt := range tests {
		rules, err := Parse(tt.spec)
		if err != nil || len(rules) != 1 || rules[0].String() != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %s", tt.spec, rules, err, tt.want)
		}
	}
}

func TestDuplicateRule(t *testing.T) {
	t.Parallel()
	var tb Table[int]
	if err := tb.Add("*/a", 1); err != nil {
		t.Fatal(err)
	}
	if err := tb.Add("*/b, */A", 2); err == nil {
		t.Error("a rule routed twice was accepted")
	}
}

func TestWeightOrdersRulesBeforeSpecificity(t *testing.T) {
	t.Parallel()
	// dockercloud's VIRTUAL_HOST_WEIGHT example: web.example.com and *.example.com.
	tests := []struct {
		name                  string
		webWeight, wildWeight int
		host, want            string
	}{
		{"the named host wins at equal weights", 0, 0, "web.example.com", "web"},
		{"the named host wins with the higher weight", 1, 0, "web.example.com", "web"},
		{"the wildWeightd wins with the higher weight", 0, 1, "web.example.com", "wild"},
		{"a weight does not make a rule match what it does not", 0, 1, "example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var tb Table[string]
			if err := tb.AddWeighted("web.example.com", "web", tt.webWeight); err != nil {
				t.Fatal(err)
			}
			if err := tb.AddWeighted("*.example.com", "wild", tt.wildWeight); err != nil {
				t.Fatal(err)
			}
			if got, _ := tb.Match(tt.host, "/"); got != tt.want {
				t.Errorf("Match(%q) = %q, want %q", tt.host, got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"*/service1, */service1/*", "http://a.b/c*", "*.x/", "https://", "*/*/*", ",,", "[::1]/a"} {
		f.Add(s, "host:80", "/path")
	}
	f.Fuzz(func(t *testing.T, spec, host, path string) {
		var tb Table[int]
		rules, err := Parse(spec)
		if err != nil {
			return
		}
		// What Parse accepts, Add accepts, and String gives back a spec that
		// parses to the same rules.
		for _, r := range rules {
			again, err := Parse(r.String())
			if err != nil || len(again) != 1 || again[0] != r {
				t.Fatalf("rule %+v printed as %q parses to %v, %v", r, r.String(), again, err)
			}
		}
		_ = tb.Add(spec, 1)
		tb.Match(host, path)
	})
}

func BenchmarkMatch(b *testing.B) {
	tb := tutorialTable(b)
	b.ReportAllocs()
	for b.Loop() {
		if v, ok := tb.Match("localhost:8080", "/service2/page"); !ok || v != "service2" {
			b.Fatal("no match")
		}
	}
}
