package discover

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDNS answers from a map that tests change; a name missing from the map
// is NXDOMAIN, a name mapped to nil fails like a DNS timeout.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][]string
	calls   int
}

func (f *fakeDNS) set(name string, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[name] = ips
}

func (f *fakeDNS) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.answers, name)
}

func (f *fakeDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	ips, ok := f.answers[host]
	switch {
	case !ok:
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	case ips == nil:
		return nil, &net.DNSError{Err: "i/o timeout", Name: host, IsTimeout: true}
	}
	return slices.Clone(ips), nil
}

func TestParse(t *testing.T) {
	t.Parallel()
	got, err := Parse([]string{"tasks.service1:8080", "127.0.0.1:9001, 127.0.0.1:9002", " [::1]:80 ", "127.0.0.1:9001"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{{"tasks.service1", "8080"}, {"127.0.0.1", "9001"}, {"127.0.0.1", "9002"}, {"::1", "80"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []struct{ in, want string }{
		{"tasks.service1", "no port"},
		{"http://a:80", "without a scheme"},
		{"a:0", "1 to 65535"},
		{"a:http", "1 to 65535"},
		{":80", "not a host name"},
		{" , ", "no host:port given"},
	} {
		if _, err := Parse([]string{bad.in}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Parse(%q) error = %v, want one containing %q", bad.in, err, bad.want)
		}
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	dns := &fakeDNS{answers: map[string][]string{"tasks.s1": {"10.0.0.2", "10.0.0.1"}}}
	targets, _ := Parse([]string{"tasks.s1:8080, 192.168.1.1:80, localhost:9001"})
	w := &Watcher{Targets: targets, Resolver: dns}
	ctx := context.Background()

	check := func(step string, want ...string) {
		t.Helper()
		if got := w.Resolve(ctx); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", step, got, want)
		}
	}
	check("first answer", "10.0.0.1:8080", "10.0.0.2:8080", "192.168.1.1:80", "localhost:9001")
	dns.set("tasks.s1", "10.0.0.2", "10.0.0.3")
	check("a task replaced", "10.0.0.2:8080", "10.0.0.3:8080", "192.168.1.1:80", "localhost:9001")
	dns.set("tasks.s1", nil...) // nil: a failure, not an answer
	check("DNS failure keeps the last answer", "10.0.0.2:8080", "10.0.0.3:8080", "192.168.1.1:80", "localhost:9001")
	dns.remove("tasks.s1")
	check("NXDOMAIN empties the name", "192.168.1.1:80", "localhost:9001")
	if dns.calls != 4 {
		t.Errorf("%d lookups, want 4 (IPs and localhost are never looked up)", dns.calls)
	}
}

func TestRunPolls(t *testing.T) {
	t.Parallel()
	dns := &fakeDNS{answers: map[string][]string{"tasks.s1": {"10.0.0.1"}}}
	targets, _ := Parse([]string{"tasks.s1:80"})
	w := &Watcher{Targets: targets, Resolver: dns, Interval: 5 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan []string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, func(a []string) { got <- a })
	}()
	if a := <-got; !slices.Equal(a, []string{"10.0.0.1:80"}) {
		t.Fatalf("first update %v", a)
	}
	dns.set("tasks.s1", "10.0.0.1", "10.0.0.9")
	deadline := time.After(5 * time.Second)
	for {
		select {
		case a := <-got:
			if len(a) == 2 {
				cancel()
				<-done
				return
			}
		case <-deadline:
			t.Fatal("the new answer never came through")
		}
	}
}

func TestRunResolvesStaticListsOnce(t *testing.T) {
	t.Parallel()
	targets, _ := Parse([]string{"127.0.0.1:1"})
	w := &Watcher{Targets: targets, Resolver: &fakeDNS{}, Interval: time.Millisecond}
	n := 0
	w.Run(context.Background(), func([]string) { n++ }) // returns at once
	if n != 1 {
		t.Errorf("%d updates, want 1", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"tasks.service1:8080", "127.0.0.1:9001, 127.0.0.1:9002", "[::1]:80", "a:", ":", "[:80", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := Parse([]string{s})
		if err != nil {
			return
		}
		for _, tg := range ts {
			again, err := Parse([]string{tg.String()})
			if err != nil || len(again) != 1 || again[0] != tg {
				t.Fatalf("%q: target %v prints as %q which parses to %v, %v", s, tg, tg.String(), again, err)
			}
		}
	})
}
