package localstack

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is one child the stack started: a service replica or the proxy.
//
// Every child runs in its own process group and gets SIGKILL from the kernel if the
// goroutine's thread that started it dies (Pdeathsig), so neither a crash of the launcher
// nor a crash of a sibling can leave it behind.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // exit status; valid after done is closed
}

// startProcess starts bin with args and env (added to a minimal environment), copying
// every output line to out with "name | " in front.
func startProcess(name, bin string, args, env []string, out io.Writer) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(baseEnv(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		copyLines(out, pr, name)
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		<-copied
		close(p.done)
	}()
	return p, nil
}

// baseEnv is what children inherit: enough to run, nothing that changes their settings
// behind the stack's back (a stray SESSION_STORE in the user's shell, say).
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

var outMu sync.Mutex // keeps lines of different children from interleaving

func copyLines(out io.Writer, r io.Reader, name string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		outMu.Lock()
		fmt.Fprintf(out, "%-12s| %s\n", name, sc.Bytes())
		outMu.Unlock()
	}
	io.Copy(io.Discard, r) // an over-long line: keep draining so the child never blocks
}

// Pid is the child's process id.
func (p *process) Pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to finish (SIGTERM, as Swarm does), waits up to grace, then kills
// its whole process group. It returns once the process is reaped.
func (p *process) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

// kill ends the process group at once (SIGKILL), like a crash, and waits for the reap.
func (p *process) kill() {
	if !p.exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// exitError describes how the process ended, for messages.
func (p *process) exitError() error {
	<-p.done
	if p.err == nil {
		return fmt.Errorf("%s exited", p.name)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return fmt.Errorf("%s exited: %s", p.name, ee.ProcessState)
	}
	return fmt.Errorf("%s: %w", p.name, p.err)
}
