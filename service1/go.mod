module github.com/swarm-affinity/swarm-affinity/service1

go 1.26
