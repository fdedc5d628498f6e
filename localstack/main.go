// Command localstack is `make run`: the whole tutorial on 127.0.0.1 without Docker.
// It starts the replicas of service1 and service2 and the proxy in front of them, prints
// where to look, and stops every process it started on Ctrl-C or SIGTERM. The code is in
// internal/localstack; run it with -h for its settings.
package main

import (
	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/internal/localstack"
)

func main() {
	cli.StopWithParent() // killed with make: stop the stack rather than leave it running
	cli.Main("make run", localstack.Main)
}
