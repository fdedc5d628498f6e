# Benchmarks: our services and proxy side by side with the Node original, HAProxy,
# nginx and Caddy, in one run on 127.0.0.1. Everything it needs it installs or builds:
# haproxy, nginx, caddy and wrk from Debian (apt-get, as root; their services are not
# started: the bench runs its own), the Node original's modules with npm ci from
# bench/node/package-lock.json, the binaries, the bare hello server, the floors.
#   make bench            full run (about 15 minutes: the last full run took 872 s)
#   make bench QUICK=1    short run (a few minutes once built): 1 s runs, smaller floods
# Results: the table on stdout, bench/results/latest.json (+ a dated copy) and SVG.

QUICK ?=
BENCH_QUICK := $(if $(filter-out 0 false no,$(QUICK)),1,)

.PHONY: bench bench-deps bench-tools test-bench bench-profile node-original

bench: build bench-deps bench-tools ## performance vs the Node original, HAProxy, nginx and Caddy (QUICK=1: short)
	bench/bin/bench -bin $(CURDIR)/$(BIN) -dir $(CURDIR)/bench \
	  -command 'make bench$(if $(BENCH_QUICK), QUICK=1)' $(if $(BENCH_QUICK),-quick)

# The tools the run drives; each is installed only when missing, and said so.
bench-deps: bench/node/node_modules/.package-lock.json
	@missing=""; \
	for t in haproxy nginx caddy wrk; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "bench: installing from Debian:$$missing (their system services are not started)"; \
	  norc=; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && norc=1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; rc=$$?; \
	  [ -z "$$norc" ] || rm -f /usr/sbin/policy-rc.d; exit $$rc; \
	fi

# The Node original's modules: make bench runs it, and a test of internal/pageview
# compares our routes with express's on it (CI runs this target before make test).
node-original: bench/node/node_modules/.package-lock.json ## install the Node original (nodejs from Debian, npm ci in bench/node)

bench/node/node_modules/.package-lock.json: bench/node/package-lock.json
	@command -v npm >/dev/null || { echo "bench: installing from Debian: nodejs npm"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@echo "bench: installing the Node original's modules (npm ci in bench/node)"
	cd bench/node && npm ci --no-audit --no-fund --loglevel=error

# The harness, the two ceilings (hello, the bare Go ReverseProxy) and the floors of the
# engine designs (relay, epollrelay, fastproxy), built exactly as our services are.
bench-tools:
	@mkdir -p bench/bin
	$(GOBUILD) -o bench/bin/hello ./bench/hello
	$(GOBUILD) -o bench/bin/goproxy ./bench/goproxy
	$(GOBUILD) -o bench/bin/relay ./bench/relay
	$(GOBUILD) -o bench/bin/epollrelay ./bench/epollrelay
	$(GOBUILD) -o bench/bin/fastproxy ./bench/fastproxy
	$(GO) build -o bench/bin/bench ./bench

test-bench: ## the bench harness's own tests (parses wrk output); runs no benchmark
	$(GO) test -count=1 ./bench/...

bench-profile: build bench-deps bench-tools ## CPU and allocation profiles under load: WHAT=proxy (default) or WHAT=service (STORE=cookie)
	STORE='$(STORE)' bench/profile/profile.sh $(or $(WHAT),proxy)
