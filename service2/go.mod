module github.com/swarm-affinity/swarm-affinity/service2

go 1.26
