// Package cli is what the tests module's commands (`make run`, `make lab`) share: flag
// defaults from the environment, usage errors that exit 2, and the common main.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

// Env gives flags their defaults from environment variables and collects the values
// that do not parse, so that every problem is reported together.
type Env struct {
	Getenv func(string) string
	Errs   []error
}

// Int is the value of the variable name as a number, or def when it is unset.
func (e *Env) Int(name string, def int) int {
	v := e.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.Errs = append(e.Errs, fmt.Errorf("%s=%q is not a number", name, v))
		return def
	}
	return n
}

// String is the value of the variable name, or def when it is unset or empty.
func (e *Env) String(name, def string) string {
	if v := e.Getenv(name); v != "" {
		return v
	}
	return def
}

// UsageError is a bad setting: the command exits 2, as flag does.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Main runs run with a context that ends on Ctrl-C or SIGTERM, prints its error after
// "name: ", and exits 0 (also after -h), 2 for a UsageError, 1 for any other error.
//
// It also asks the kernel for SIGTERM when the parent dies, so that a command started
// by make stops the processes it started when make is killed, rather than linger.
func Main(name string, run func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error) {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	var ue UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
