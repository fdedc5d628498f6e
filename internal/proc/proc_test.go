package proc

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func sh(t *testing.T, script string, out *Buffer) *Process {
	t.Helper()
	var mu sync.Mutex
	p, err := Start("sh", []string{"/bin/sh", "-c", script}, []string{"PATH=" + os.Getenv("PATH"), "WHO=child"}, Lines(out, "sh | ", &mu))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func TestStartCopiesEveryLineWithItsPrefix(t *testing.T) {
	t.Parallel()
	out := &Buffer{}
	p := sh(t, `echo "one $WHO"; printf 'two '; printf 'halves\n'; echo three >&2`, out)
	<-p.Done()
	want := "sh | one child\nsh | two halves\nsh | three\n"
	if got := out.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := p.Err(); err.Error() != "sh exited" {
		t.Errorf("got %q, want %q", err, "sh exited")
	}
}

func TestStopEndsTheProcessWithSIGTERM(t *testing.T) {
	t.Parallel()
	out := &Buffer{}
	p := sh(t, `trap 'echo terminated; exit 0' TERM; echo ready; while :; do sleep 0.01; done`, out)
	waitFor(t, out, "ready")
	p.Stop(10 * time.Second)
	if !p.Exited() || !strings.Contains(out.String(), "terminated") {
		t.Errorf("after Stop: exited %v, output %q; want it ended by its TERM trap", p.Exited(), out)
	}
}

func TestStopKillsTheGroupAfterTheGrace(t *testing.T) {
	t.Parallel()
	out := &Buffer{}
	// The shell ignores SIGTERM and has a child of its own.
	p := sh(t, `trap '' TERM; sleep 60 & echo "child $!"; wait`, out)
	waitFor(t, out, "child ")
	child := 0
	for _, f := range strings.Fields(out.String()) {
		if n, err := strconv.Atoi(f); err == nil {
			child = n
		}
	}
	p.Stop(50 * time.Millisecond)
	if err := p.Err(); !strings.Contains(err.Error(), "killed") {
		t.Errorf("got %v, want the shell killed", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(child, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the shell's child %d outlived the group kill", child)
		}
		time.Sleep(5 * time.Millisecond) // polling for the kernel to reap it
	}
}

func TestLinesCutsAnEndlessLine(t *testing.T) {
	t.Parallel()
	out := &Buffer{}
	var mu sync.Mutex
	w := Lines(out, "> ", &mu)
	w.Write([]byte(strings.Repeat("x", maxLine+10)))
	w.Flush()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || len(lines[0]) != 2+maxLine || lines[1] != "> xxxxxxxxxx" {
		t.Errorf("got %d lines (first %d bytes), want one of %d bytes and the 10 left", len(lines), len(lines[0]), 2+maxLine)
	}
}

func TestBufferKeepsTheLastMaxBytes(t *testing.T) {
	t.Parallel()
	b := &Buffer{Max: 4}
	b.Write([]byte("abc"))
	b.Write([]byte("def"))
	if got := b.String(); got != "cdef" {
		t.Errorf("got %q, want %q", got, "cdef")
	}
}

func TestFreeAddrNeverGivesAPortTwice(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 50 {
		a, err := FreeAddr("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if seen[a] {
			t.Fatalf("got %s twice", a)
		}
		seen[a] = true
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("the free address %s: %v", a, err)
		}
		ln.Close()
	}
}

func waitFor(t *testing.T, out *Buffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output after 10s: %q", s, out)
		}
		time.Sleep(5 * time.Millisecond) // polling the child's output
	}
}
