// Command service2 is the tutorial's service2: a page-view counter with sessions.
// Run service2 -h for its settings; the code is shared with the other service in
// internal/service.
package main

import (
	"github.com/swarm-affinity/swarm-affinity/internal/cli"
	"github.com/swarm-affinity/swarm-affinity/internal/service"
)

var version = "dev"

func main() { cli.Main("service2", service.Program{Name: "service2", Version: version}.Main) }
