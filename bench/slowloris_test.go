package main

import (
	"io"
	"net"
	"sync"
	"testing"
)

func TestSettleReturnsWhatTheAttackHolds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		held []int // what held answers, one value per call, the last one after
		n    int
		want int
	}{
		{"every connection held at once", []int{10}, 10, 10},
		{"every connection held after a climb", []int{0, 0, 3, 7, 10}, 10, 10},
		{"a proxy that takes only some: once the count stops rising", []int{0, 2, 4}, 10, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			held := func() int {
				v := tt.held[min(calls, len(tt.held)-1)]
				calls++
				return v
			}
			if got := settle(t.Context(), held, tt.n); got != tt.want {
				t.Errorf("got %d held, want %d", got, tt.want)
			}
		})
	}
}

// A real slowloris against a server that keeps every connection: settle returns when
// all of them are held, and stop says they were.
func TestSlowlorisHeldByAServerThatKeepsEveryConnection(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c) // until the attack closes it
			})
		}
	}()
	const n = 200
	held, stop := slowloris(t.Context(), ln.Addr().String(), n)
	got := settle(t.Context(), held, n)
	if end := stop(); got != n || end != n {
		t.Errorf("got %d held once settled and %d at the end, want %d and %d", got, end, n, n)
	}
}
