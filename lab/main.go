// Command lab is `make lab`: the sticky-vs-stateless experiment of LAB.md. It starts a
// local stack per arm (or measures a deployed one with URL=...), sends the same load of
// simulated visitors to each, makes the events happen, prints the results table and
// writes the report folder lab-results/<time>/. The code is in internal/lab; run it with
// -h for its settings.
package main

import (
	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/internal/lab"
)

func main() {
	cli.StopWithParent() // killed with make: stop the stacks rather than leave them running
	cli.Main("make lab", lab.Main)
}
