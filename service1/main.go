// Command service1 is the tutorial's service1: a page-view counter with sessions.
// Run service1 -h for its settings; the code is shared with the other service in
// internal/service.
package main

import (
	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/internal/service"
)

var version = "dev"

func main() { cli.Main("service1", service.Program{Name: "service1", Version: version}.Main) }
