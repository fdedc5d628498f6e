// Package proc starts and stops the child processes of the launchers, the lab and the
// benchmarks: each child in its own process group, killed by the kernel if the thread
// that started it dies (Pdeathsig), so that no crash leaves one behind; its output
// copied a line at a time; free ports for it to listen on. Linux only.
package proc

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// Process is one running (or ended) child.
type Process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and its output is copied
	err  error         // Wait's result; read after done is closed
}

// Start starts argv[0] with the arguments argv[1:] and exactly the environment env
// (nil: none), in its own process group. Everything it writes to stdout and stderr goes
// to out (nil: discarded); give it a Lines writer to keep lines whole and prefixed. name
// names the process in errors.
func Start(name string, argv, env []string, out io.Writer) (*Process, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("starting %s: no command", name)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A grandchild that keeps the output pipe open must not keep Wait from returning.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, argv[0], err)
	}
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id (and its process group's).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process (not its group).
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop asks the process to finish with SIGTERM (as Swarm stops a task), waits up to
// grace, then kills its whole process group. It returns once the process is reaped.
func (p *Process) Stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.Kill()
	}
}

// Kill ends the process group at once (SIGKILL), like a crash, and waits for the reap.
func (p *Process) Kill() {
	if !p.Exited() {
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	}
	<-p.done
}

// Err waits for the process to end and says how it ended, for messages: "NAME exited",
// "NAME exited: exit status 2", "NAME exited: signal: killed".
func (p *Process) Err() error {
	<-p.done
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return fmt.Errorf("%s exited", p.name)
	case errors.As(p.err, &ee):
		return fmt.Errorf("%s exited: %s", p.name, ee.ProcessState)
	}
	return fmt.Errorf("%s: %w", p.name, p.err)
}
