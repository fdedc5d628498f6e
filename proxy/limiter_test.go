package main

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

func TestMaxConnHoldsExtraConnections(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var open atomic.Int64
	l := newLimitListener(ln, 1, &open)
	defer l.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	c1, _ := net.Dial("tcp", ln.Addr().String())
	defer c1.Close()
	c2, _ := net.Dial("tcp", ln.Addr().String())
	defer c2.Close()
	first := <-accepted
	select {
	case <-accepted:
		t.Fatal("a second connection was accepted with maxconn 1")
	case <-time.After(50 * time.Millisecond):
	}
	if open.Load() != 1 {
		t.Errorf("%d connections counted, want 1", open.Load())
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was never accepted after the first closed")
	}
}
