package h1

import (
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
)

// testPools are the server pools of a Server, without the Server, one server
// answering on 127.0.0.1, and a connection to it got as a request gets one,
// at now.
func testPools(t *testing.T) (p *pools, b *backend.Backend, bc *bconn, now time.Time) {
	t.Helper()
	p = new(pools)
	p.init(time.Second)
	t.Cleanup(p.closeIdle)
	bp := backend.NewPool(testIDs, backend.RoundRobin)
	bp.Update([]string{rawBackend(t, "HTTP/1.1 204 No Content\r\n\r\n")})
	b, now = bp.Backends()[0], time.Now()
	bc, err := p.get(b, now)
	if err != nil {
		t.Fatal(err)
	}
	return p, b, bc, now
}

func TestServerPoolsForgetOnlyWhatNoRequestUses(t *testing.T) {
	t.Parallel()
	t.Run("a connection given back after its pool was forgotten is kept for the next request", func(t *testing.T) {
		t.Parallel()
		p, b, bc, now := testPools(t)
		p.expire(now) // nothing idle, nothing waiting: the pool goes
		if !bc.pl.dead {
			t.Fatal("the pool of a connection out on a request was kept: the test would prove nothing")
		}
		p.put(bc, now)
		again, err := p.get(b, now)
		if err != nil {
			t.Fatal(err)
		}
		if again != bc {
			t.Error("the next request got a new connection, want the one given back")
		}
	})
	t.Run("a request waiting on a server is given up on when it goes down, expiry or not", func(t *testing.T) {
		t.Parallel()
		p, b, bc, now := testPools(t)
		p.wait(bc, b)
		p.expire(now)
		b.SetUp(false)
		p.giveUpOnDown()
		if !bc.down.Load() {
			t.Error("the wait goes on after its server was marked down, want it given up on")
		}
		p.done(bc)
		bc.nc.Close()
	})
	t.Run("a connection given back once the Server closed is closed", func(t *testing.T) {
		t.Parallel()
		p, _, bc, now := testPools(t)
		p.closeIdle()
		p.put(bc, now)
		bc.nc.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := bc.nc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("read from it: %v, want it closed", err)
		}
	})
}
