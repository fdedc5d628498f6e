// Command proxy is a small reverse proxy with path routing and HAProxy's
// sticky prefix cookie, in place of the tutorial's dockercloud/haproxy.
// See README.md; `proxy -h` lists every setting.
package main

import "github.com/swarm-affinity/swarm-affinity/internal/cli"

var version = "dev"

// main: SIGTERM (Swarm stopping the task) or SIGINT drains and exits 0; see run.
func main() { cli.Main("proxy", run) }
