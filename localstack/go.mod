module github.com/swarm-affinity/swarm-affinity/localstack

go 1.26

require github.com/swarm-affinity/swarm-affinity/internal v0.0.0

replace github.com/swarm-affinity/swarm-affinity/internal => ../internal
