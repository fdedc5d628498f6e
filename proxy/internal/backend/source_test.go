package backend

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
)

func clients(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	return out
}

func TestSourceKeepsAClientOnOneServer(t *testing.T) {
	t.Parallel()
	p := newPool(t, Source, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	for _, c := range clients(50) {
		first, _ := p.PickFor(c)
		for range 5 {
			if b, _ := p.PickFor(c); b != first {
				t.Fatalf("client %v: got %s, then %s; want the same server", c, first.Addr(), b.Addr())
			}
		}
	}
}

func TestSourceSpreadsClients(t *testing.T) {
	t.Parallel()
	p := newPool(t, Source, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80")
	count := map[*Backend]int{}
	const n = 20000
	for _, c := range clients(n) {
		b, _ := p.PickFor(c)
		count[b]++
	}
	for _, b := range p.Backends() {
		if share := float64(count[b]) / n; math.Abs(share-0.25) > 0.06 {
			t.Errorf("%s got %.1f%% of the clients, want 25%% ± 6", b.Addr(), 100*share)
		}
	}
}

func TestSourceRemapsAboutOneNthWhenAServerGoes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{3, 5, 8} {
		t.Run(fmt.Sprintf("%d servers", n), func(t *testing.T) {
			t.Parallel()
			var addrs []string
			for i := range n {
				addrs = append(addrs, fmt.Sprintf("10.0.0.%d:80", i+1))
			}
			p := newPool(t, Source, addrs...)
			cs := clients(10000)
			before := make([]*Backend, len(cs))
			for i, c := range cs {
				before[i], _ = p.PickFor(c)
			}
			gone := p.Backends()[1]
			p.Update(append(append([]string{}, addrs[:1]...), addrs[2:]...))
			moved, had := 0, 0
			for i, c := range cs {
				b, _ := p.PickFor(c)
				if before[i] == gone {
					had++
				}
				if b != before[i] {
					moved++
					if before[i] != gone {
						t.Fatalf("client %v moved from %s, which stayed, to %s", c, before[i].Addr(), b.Addr())
					}
				}
			}
			if moved != had {
				t.Errorf("%d clients moved, want exactly the %d of the server that went", moved, had)
			}
			if share := float64(moved) / float64(len(cs)); math.Abs(share-1/float64(n)) > 0.5/float64(n) {
				t.Errorf("%.1f%% of the clients moved, want about 1/%d", 100*share, n)
			}
		})
	}
}

func TestOnlySourceKeepsARing(t *testing.T) {
	t.Parallel()
	addrs := []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}
	made := newPool(t, Source, addrs...)
	p := newPool(t, RoundRobin, addrs...)
	p.Update(addrs[:2])
	p.Update(addrs)
	if n := len(p.snap.Load().ring); n != 0 {
		t.Fatalf("a roundrobin pool holds a ring of %d points, want none", n)
	}
	p.SetBalance(Source) // a reload
	for _, c := range clients(200) {
		got, _ := p.PickFor(c)
		want, _ := made.PickFor(c)
		if got == nil || got.Addr() != want.Addr() {
			t.Fatalf("client %v after the pool turned to source: got %v, want %s (as a pool made source)", c, got, want.Addr())
		}
	}
	p.Update(addrs[1:])
	if b, _ := p.PickFor(clients(1)[0]); b == nil || b.Addr() == addrs[0] {
		t.Errorf("after %s left: got %v, want one of the others", addrs[0], b)
	}
}

func TestSourceSkipsADownServerAndComesBack(t *testing.T) {
	t.Parallel()
	p := newPool(t, Source, "10.0.0.1:80", "10.0.0.2:80")
	c := netip.MustParseAddr("192.0.2.7")
	home, _ := p.PickFor(c)
	home.SetUp(false)
	if b, ok := p.PickFor(c); !ok || b == home {
		t.Fatalf("with its server down: got %v, want the other server", b)
	}
	if b, _ := p.PickFor(c, p.Backends()...); b != nil {
		t.Errorf("every server tried: got %s, want none", b.Addr())
	}
	home.SetUp(true)
	if b, _ := p.PickFor(c); b != home {
		t.Errorf("its server back up: got %s, want %s", b.Addr(), home.Addr())
	}
}

func TestStaticRRTakesServersInOrder(t *testing.T) {
	t.Parallel()
	p := newPool(t, StaticRR, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	var got []string
	for range 6 {
		b, _ := p.Pick()
		got = append(got, b.Addr()[7:8])
	}
	if fmt.Sprint(got) != "[1 2 3 1 2 3]" {
		t.Errorf("got %v, want [1 2 3 1 2 3]", got)
	}
	p.Backends()[1].SetUp(false)
	got = got[:0]
	for range 3 {
		b, _ := p.Pick()
		got = append(got, b.Addr()[7:8])
	}
	if fmt.Sprint(got) != "[1 3 3]" {
		t.Errorf("with server 2 down got %v, want [1 3 3] (its turn goes to the next)", got)
	}
}

func TestParseBalance(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Balance{"": RoundRobin, "roundrobin": RoundRobin, "LeastConn": LeastConn, "source": Source, "static-rr": StaticRR} {
		if got, err := ParseBalance(in); err != nil || got != want {
			t.Errorf("ParseBalance(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"uri", "first", "hdr(host)", "random"} {
		if _, err := ParseBalance(in); err == nil {
			t.Errorf("ParseBalance(%q): got no error, want one", in)
		}
	}
}

func TestPickForAllocatesNothing(t *testing.T) {
	p := newPool(t, Source, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	c := netip.MustParseAddr("192.0.2.7")
	if n := testing.AllocsPerRun(100, func() { p.PickFor(c) }); n != 0 {
		t.Errorf("PickFor: %v allocations, want 0", n)
	}
}

func BenchmarkPickForSource(b *testing.B) {
	p := NewPool(NewIDs([]byte("k")), Source)
	p.Update([]string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"})
	c := netip.MustParseAddr("192.0.2.7")
	b.ReportAllocs()
	for b.Loop() {
		p.PickFor(c)
	}
}
