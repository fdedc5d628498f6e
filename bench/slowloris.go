package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
)

// slowlorisConns is how many connections the slowloris rows hold (issue 12's row).
const slowlorisConns = 2000

// slowloris holds n connections to addr from 127.0.0.2 (another client than wrk's
// 127.0.0.1), each sending a request head one line every 2 s, never ending it, and
// dialling again when the proxy closes it: the reconnecting slowloris of issue 12.
// held says how many are held now; stop ends them all and returns how many were held
// at the end.
func slowloris(ctx context.Context, addr string, n int) (held func() int, stop func() int) {
	ctx, cancel := context.WithCancel(ctx)
	var holding atomic.Int64
	var wg sync.WaitGroup
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: time.Second}
	for i := range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					pause(ctx, 50*time.Millisecond)
					continue
				}
				holding.Add(1)
				trickle(ctx, c, i)
				holding.Add(-1)
				c.Close()
				pause(ctx, 50*time.Millisecond) // then again, as an attacker would
			}
		})
	}
	held = func() int { return int(holding.Load()) }
	return held, func() int {
		h := held()
		cancel()
		wg.Wait()
		return h
	}
}

// settle waits until held reaches n, or has not risen for settleQuiet after it rose
// (the proxy takes no more: it refuses or closes the rest), for at most settleLimit,
// and returns held then: the attack has taken the slots it can take.
func settle(ctx context.Context, held func() int, n int) int {
	ctx, cancel := context.WithTimeout(ctx, settleLimit)
	defer cancel()
	high, rose := 0, time.Now()
	// Until's error is the limit or ctx: either way the row goes on with what is held.
	_ = probe.Until(ctx, "the slowloris connections to be held", func() (bool, error) {
		if c := held(); c > high {
			high, rose = c, time.Now()
		}
		return high >= n || (high > 0 && time.Since(rose) >= settleQuiet), nil
	})
	return held()
}

// settleQuiet and settleLimit bound settle: dialling 2000 connections takes well
// under a second on loopback.
const (
	settleQuiet = 500 * time.Millisecond
	settleLimit = 10 * time.Second
)

// trickle sends a head that never ends until the connection fails or ctx ends.
func trickle(ctx context.Context, c net.Conn, i int) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := fmt.Fprintf(c, "GET /service1 HTTP/1.1\r\nHost: x\r\n"); err != nil {
		return
	}
	for ctx.Err() == nil {
		if !pause(ctx, 2*time.Second) { // the attacker's pace
			return
		}
		if _, err := fmt.Fprintf(c, "X-%d: a\r\n", i); err != nil {
			return
		}
	}
}

// pause waits d unless ctx ends first; false if it did.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// slowlorisRows measures ours and HAProxy over hello with the sticky traffic while
// slowlorisConns slowloris connections are held by another client address.
func (h *Harness) slowlorisRows(ctx context.Context, proxies []proxyUnderTest) ([]Measurement, error) {
	a, err := h.hello(ctx)
	if err != nil {
		return nil, err
	}
	defer a.Stop()
	b, err := h.hello(ctx)
	if err != nil {
		return nil, err
	}
	defer b.Stop()
	bk := backends{a.Addr, b.Addr, a.Addr, b.Addr}
	var out []Measurement
	for _, p := range proxies {
		if p.key != "ours-proxy" && p.key != "haproxy" {
			continue
		}
		m, err := h.slowlorisRow(ctx, p, bk)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (h *Harness) slowlorisRow(ctx context.Context, p proxyUnderTest, bk backends) (Measurement, error) {
	px, err := p.start(bk)
	if err != nil {
		return Measurement{}, err
	}
	defer px.Stop()
	base := "http://" + px.Addr
	headers, err := p.sticky(base)
	if err != nil {
		return Measurement{}, fmt.Errorf("%s: %w", p.label, err)
	}
	held, stop := slowloris(ctx, px.Addr, slowlorisConns)
	fmt.Fprintf(h.log, "        (%d slowloris connections held at the start)\n", settle(ctx, held, slowlorisConns))
	m, err := h.measure(ctx, Measurement{Key: "proxy/" + p.key + "/hello/sticky-slowloris",
		Label: fmt.Sprintf("%s over hello, sticky, %s slowloris held", p.label, thousands(slowlorisConns)), Server: p.key,
		Backends: "hello", Traffic: "sticky-slowloris", Direct: "service/hello/returning"},
		WrkRun{URL: base + "/service1", Headers: headers}, px, px)
	m.Held = stop()
	fmt.Fprintf(h.log, "        (%d slowloris connections held at the end)\n", m.Held)
	return m, err
}
