// Command service1 is the tutorial's service1: a page-view counter with sessions.
// Run service1 -h for its settings; the code is shared with the other service in
// internal/service.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/swarm-affinity/swarm-affinity/internal/service"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := service.Main(ctx, "service1", version, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
