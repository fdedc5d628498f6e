package main

import (
	"testing"

	"github.com/swarm-affinity/swarm-affinity/internal/service/servicetest"
)

func TestBinary(t *testing.T) { servicetest.TestBinary(t, "service2") }
