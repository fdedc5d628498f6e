package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/probe"
	"github.com/swarm-affinity/swarm-affinity/internal/proc"
)

// Server is a process under test, pinned to the servers' core with taskset. taskset
// execs the program, so the pid is the server's own (for /proc/<pid>/status).
type Server struct {
	Name  string
	Addr  string // 127.0.0.1:port it listens on
	Admin string // our proxy's admin port (for /live), "" for the others
	p     *proc.Process
	out   *proc.Buffer // the last of its output, for errors
	// measured is the process whose CPU, memory and context switches are the
	// server's: its own (0), or the one that does the work (nginx's worker).
	measured int
	// TLSAddr is where a proxy also serves HTTPS (the bench's certificate); "" if not.
	TLSAddr string
}

// startServer starts argv pinned to cpu with env added to the harness's own, and
// waits until GET readyURL answers (any HTTP status) or 15 s pass.
func startServer(ctx context.Context, name, addr, cpu string, env []string, readyURL string, argv ...string) (*Server, error) {
	out := &proc.Buffer{Max: 4096}
	p, err := proc.Start(name, append([]string{"taskset", "-c", cpu}, argv...), append(os.Environ(), env...), out)
	if err != nil {
		return nil, err
	}
	s := &Server{Name: name, Addr: addr, p: p, out: out}
	client := &http.Client{Timeout: time.Second}
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err = probe.Until(wait, name+" to answer "+readyURL, func() (bool, error) {
		if p.Exited() {
			return false, probe.Fatal(p.Err())
		}
		resp, err := client.Get(readyURL)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return true, nil
	})
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w; its output: %s", err, s.output())
	}
	return s, nil
}

// output is the end of what the server printed.
func (s *Server) output() string { return strings.TrimSpace(s.out.String()) }

// Pid is the process measured as the server: its own, or its worker's.
func (s *Server) Pid() int {
	if s.measured != 0 {
		return s.measured
	}
	return s.p.Pid()
}

// measureChild makes the server's only child process the one measured: nginx's
// master forks the worker that serves.
func (s *Server) measureChild() error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", s.p.Pid(), s.p.Pid()))
	if err != nil {
		return fmt.Errorf("%s: its worker process: %w", s.Name, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return fmt.Errorf("%s: %d child processes, want its one worker", s.Name, len(f))
	}
	s.measured, err = strconv.Atoi(f[0])
	return err
}

// CtxSwitches is how many times the server's threads were switched off a core, by
// their own wait (voluntary) or not: a measure of the wake-ups a request costs.
func (s *Server) CtxSwitches() (int64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", s.Pid()))
	if err != nil {
		return 0, fmt.Errorf("%s: reading its threads: %w", s.Name, err)
	}
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", s.Pid(), t.Name()))
		if err != nil {
			continue // a thread that ended
		}
		for line := range strings.Lines(string(b)) {
			for _, k := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if v, ok := strings.CutPrefix(line, k); ok {
					x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					n += x
				}
			}
		}
	}
	return n, nil
}

// RSS is the server's resident set size (VmRSS of /proc/<pid>/status) in bytes.
func (s *Server) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.Pid()))
	if err != nil {
		return 0, fmt.Errorf("%s: reading RSS: %w", s.Name, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: VmRSS %q: %w", s.Name, v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS in /proc/%d/status", s.Name, s.Pid())
}

// CPUTime is the user+system CPU time the server has used (all its threads).
func (s *Server) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.Pid()))
	if err != nil {
		return 0, fmt.Errorf("%s: reading CPU time: %w", s.Name, err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces:
	// state is field 3, utime 14, stime 15 (proc(5)), in clock ticks of 1/100 s.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: short /proc/%d/stat", s.Name, s.Pid())
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%s: /proc/%d/stat: %w", s.Name, s.Pid(), err)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// Stop ends the server (SIGTERM, SIGKILL to its process group after 5 s) and waits.
func (s *Server) Stop() {
	if s != nil {
		s.p.Stop(5 * time.Second)
	}
}

// Alive reports an error when the server has exited.
func (s *Server) Alive() error {
	if s.p.Exited() {
		return fmt.Errorf("%s exited during the run (%v): %s", s.Name, s.p.Err(), s.output())
	}
	return nil
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on now.
func freeAddr() (string, error) { return proc.FreeAddr("127.0.0.1") }

// stopAll stops servers in reverse order of start.
func stopAll(servers ...*Server) {
	for i := len(servers) - 1; i >= 0; i-- {
		servers[i].Stop()
	}
}
