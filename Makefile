# swarm-affinity: the Docker Swarm sticky-sessions tutorial, in Go.
# The two commands README.md starts with: `make run` (the tutorial on localhost)
# and `make test`. Topic targets live in mk/*.mk, one file per topic.

SHELL   := bash
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Static, reproducible binaries: they are copied as they are into FROM scratch images.
# nomsgpack leaves gin's MessagePack codec out (we never bind MessagePack): the services
# shrink from 15 MB to under 9 MB, which keeps the images well under 15 MB.
GOBUILD := CGO_ENABLED=0 $(GO) build -tags nomsgpack -trimpath -ldflags '-s -w -X main.version=$(VERSION)'

# Every module of go.work; `./...` does not work at a workspace root without a go.mod.
MODULES    := internal service1 service2 proxy localstack lab tests bench
PKGS       := $(addsuffix /...,$(addprefix ./,$(MODULES)))
# Unit and integration tests: everything but tests/ (the end-to-end and swarm tests).
UNIT_PKGS  := ./internal/... ./service1/... ./service2/... ./proxy/... ./localstack/... ./lab/... ./bench/...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.DEFAULT_GOAL := help
.PHONY: help build test test-unit test-e2e lint vet staticcheck fmt clean run

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

build: ## static binaries in bin/: service1 service2 proxy
	@mkdir -p $(BIN)
	$(GOBUILD) -o $(BIN)/service1 ./service1
	$(GOBUILD) -o $(BIN)/service2 ./service2
	$(GOBUILD) -o $(BIN)/proxy ./proxy

test: test-unit test-e2e ## every test: unit (with -race) and end to end

# Both with -race: the test processes run the launcher's and the lab's concurrent code
# (internal/localstack, internal/lab) in-process; the binaries they start are `make build`'s.
test-unit: build ## unit and integration tests (services, proxy, launcher, lab, bench harness), with -race
	SWARM_AFFINITY_BIN=$(CURDIR)/$(BIN) $(GO) test -race -count=1 -timeout 10m $(UNIT_PKGS)

# The second pass runs tests/e2e on the std engine; its tests of `make run` skip, since
# make run has no engine setting (they would run the default engine again).
test-e2e: build ## end-to-end tests against the real binaries on 127.0.0.1, with -race (e2e on both proxy engines)
	SWARM_AFFINITY_BIN=$(CURDIR)/$(BIN) $(GO) test -race -count=1 -timeout 10m ./tests/...
	SWARM_AFFINITY_BIN=$(CURDIR)/$(BIN) SWARM_AFFINITY_ENGINE=std $(GO) test -race -count=1 -timeout 10m ./tests/e2e/

lint: vet staticcheck ## go vet and staticcheck (pinned)

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) run $(STATICCHECK) $(PKGS)

fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

clean: ## remove what the builds wrote (bin/, bench/bin/, .run/); lab-results/ stays
	rm -rf $(BIN) bench/bin .run

-include mk/*.mk

run: build ## the whole tutorial on localhost; settings: REPLICAS=3 STORE=cookie PORT=8081 TLS=1
	$(GO) build -o $(BIN)/localstack ./localstack
	$(BIN)/localstack -bin $(BIN)
