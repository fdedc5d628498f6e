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
	"strings"
	"syscall"
)

// The exit codes of every binary.
const (
	ExitOK      = 0 // done, or -h
	ExitFailure = 1 // a runtime failure (port in use, shutdown timed out), or unhealthy
	ExitUsage   = 2 // a bad flag, variable or configuration, as the flag package does
)

// RunFunc is a binary's whole program: main only adds the signals and the exit code.
// stdout gets what was asked for (-h, -check), stderr the logs.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// ExitCode maps run's error to the exit code: nil and flag.ErrHelp are ExitOK, a
// *UsageError is ExitUsage, anything else ExitFailure. A -healthcheck run (Docker's
// HEALTHCHECK) gets ExitFailure for a usage error too: Docker reads 1 as unhealthy and
// reserves 2.
func ExitCode(err error, args []string) int {
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue) && !HasFlag(args, "healthcheck"):
		return ExitUsage
	}
	return ExitFailure
}

// Exit runs run and returns the exit code, printing its error to stderr after "name: ".
func Exit(ctx context.Context, name string, run RunFunc, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	err := run(ctx, args, getenv, stdout, stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
	}
	return ExitCode(err, args)
}

// Main is the whole main function of a binary: run gets a context that ends on SIGINT
// or SIGTERM (Swarm stops a task with SIGTERM), the process's arguments and
// environment, and the process exits with Exit's code.
func Main(name string, run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Exit(ctx, name, run, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// StopWithParent asks the kernel for SIGTERM when the parent process dies, so that a
// command started by make (`make run`, `make lab`) stops, and stops the processes it
// started, when make is killed rather than linger. Linux only, as the rest of the
// process plumbing.
func StopWithParent() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
}

// HasFlag reports whether args turn on the boolean flag name (-name, --name,
// -name=true), looking no further than "--"; args that are otherwise bad count too.
func HasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		n, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if n == name {
			if b, err := strconv.ParseBool(value); !hasValue || (err == nil && b) {
				return true
			}
		}
	}
	return false
}
