module github.com/swarm-affinity/swarm-affinity/bench

go 1.26.0
