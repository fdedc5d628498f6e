package proc

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
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
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	reaped := func() (bool, error) { return syscall.Kill(child, 0) != nil, nil }
	if err := probe.Until(ctx, fmt.Sprintf("the kernel to reap the shell's child %d", child), reaped); err != nil {
		t.Fatalf("the shell's child %d outlived the group kill: %v", child, err)
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
	}
}

func waitFor(t *testing.T, out *Buffer, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := probe.Until(ctx, fmt.Sprintf("%q in the output", s), func() (bool, error) {
		return strings.Contains(out.String(), s), nil
	}); err != nil {
		t.Fatalf("%v; the output: %q", err, out)
	}
}
