module github.com/swarm-affinity/swarm-affinity/tests

go 1.26
