# The swarm stack (docker-compose.yml): images, secrets, deploy, scale, rolling restart.
# The work is done by stack/stack.sh; these targets pass it the settings below.
# Stack name and port as in the tutorial; override on the command line:
#   make stack-deploy STACK=demo PORT=8000 STORE=cookie
#
# PORT (80), STATS_PORT (1936), STORE (memory|cookie), REPLICAS (2 of each service) and
# UPDATE_DELAY (10s, update_config.delay) go to stack.sh only when given, on the command
# line or in the environment; their defaults live there. A first deploy uses the
# defaults; a stack that exists keeps what it runs with: a redeploy changes only what it
# is given, and stack-scale, stack-update, stack-ps and stack-logs read the ports, store
# and replica counts from the stack (only STACK names it) and refuse a value that
# contradicts them. TLS=1 (HTTPS with HTTP/2 on TLS_PORT, 443) is kept the same way.

STACK        ?= test
SERVICE      ?= service1
N            ?=
# The stack file stack-deploy deploys; stack/docker-compose.2018.yml is the tutorial's own,
# read by the proxy from the services' environment as dockercloud/haproxy did.
STACK_FILE   ?= docker-compose.yml
# Set by `make test-stack` to run tests/swarm; CI sets required (no engine = failure).
STACK_TESTS  ?= run
# TLS=1: the proxy also serves HTTPS (HTTP/2) on TLS_PORT, with the certificate in
# stack/secrets/tls.pem: a real one put there is used as it is, else stack.sh writes a
# self-signed one for localhost (and renews it) at every deploy with HTTPS, given or kept.
TLS          ?=

# given,VAR is $(VAR) if the user gave VAR (command line or environment), else empty.
given = $(if $(filter command line environment,$(origin $1)),$($1))

STACK_SH := STACK='$(STACK)' PORT='$(call given,PORT)' STATS_PORT='$(call given,STATS_PORT)' \
	STORE='$(call given,STORE)' REPLICAS='$(call given,REPLICAS)' UPDATE_DELAY='$(call given,UPDATE_DELAY)' \
	TLS='$(call given,TLS)' TLS_PORT='$(call given,TLS_PORT)' \
	VERSION='$(VERSION)' STACK_FILE='$(STACK_FILE)' GO='$(GO)' stack/stack.sh

.PHONY: images stack-secrets swarm-init stack-check stack-deploy stack-rm stack-ps stack-logs \
	stack-scale stack-update test-stack

# The engine's architecture, which may not be this machine's (Docker Desktop on a Mac
# runs a Linux VM): the images get linux binaries built for it, in bin/linux_<arch>/.
ENGINE_ARCH = $(or $(shell docker version --format '{{.Server.Arch}}' 2>/dev/null),$(shell $(GO) env GOARCH))
IMAGE_BIN   = $(BIN)/linux_$(ENGINE_ARCH)

images: ## images swarm-affinity/{service1,service2,proxy}:VERSION and :latest, FROM scratch
	@mkdir -p $(IMAGE_BIN)
	GOOS=linux GOARCH=$(ENGINE_ARCH) $(GOBUILD) -o $(IMAGE_BIN)/service1 ./service1
	GOOS=linux GOARCH=$(ENGINE_ARCH) $(GOBUILD) -o $(IMAGE_BIN)/service2 ./service2
	GOOS=linux GOARCH=$(ENGINE_ARCH) $(GOBUILD) -o $(IMAGE_BIN)/proxy ./proxy
	@PLATFORM=linux_$(ENGINE_ARCH) $(STACK_SH) images

stack-secrets: ## generate the stack's secrets into stack/secrets/ (git-ignored) if missing
	@$(STACK_SH) secrets

swarm-init: ## make this engine a single-node swarm (docker swarm init) unless it is in one
	@$(STACK_SH) swarm-init

# stack-check first: no image build when the engine or the swarm is missing.
stack-deploy: stack-check images ## deploy or redeploy the stack (STACK=test PORT=80 STORE=memory|cookie TLS=1 STACK_FILE=...) and wait for it
	@$(STACK_SH) deploy

stack-check:
	@$(STACK_SH) check

stack-rm: ## remove the stack and wait until its services, networks, configs, secrets are gone
	@$(STACK_SH) rm

stack-ps: ## the stack's services and tasks
	@$(STACK_SH) ps

stack-logs: ## recent logs of every service (SERVICE=proxy FOLLOW=1 to follow one)
	@SERVICE='$(call given,SERVICE)' \
	  TAIL='$(TAIL)' FOLLOW='$(FOLLOW)' $(STACK_SH) logs

stack-scale: ## scale a service and wait: make stack-scale SERVICE=service1 N=4
	@SERVICE='$(SERVICE)' N='$(N)' $(STACK_SH) scale

stack-update: ## rolling restart of service1 and service2, one replica at a time (SERVICES=...)
	@SERVICES='$(SERVICES)' $(STACK_SH) update

test-stack: images ## deploy a stack under a unique name on this engine and test it end to end
	STACK_TESTS='$(STACK_TESTS)' $(GO) test -count=1 -timeout 12m -v ./tests/swarm/

# The stack on a real swarm of 3 Docker engines on this machine (issue 16):
# scripts/swarm-nodes.sh brings them up in network namespaces (root; docker.io, iproute2,
# iptables, util-linux) and tears them down. NODES_TESTS=required (CI) fails where the
# machine cannot; run skips and says why.
NODES_TESTS ?= run

.PHONY: test-swarm-nodes
test-swarm-nodes: ## the stack on a real 3-node swarm in network namespaces, a node lost and back (root)
	@# Every module now: the nodes' namespaces have no network to download one.
	$(GO) list -deps $(PKGS) >/dev/null
	@# The run's own name (see tests/swarm/nodes_cluster_test.go), so that whatever a
	@# killed run left is torn down here, and nothing else.
	name=sa-t$$$$; \
	NODES_TEST_NAME=$$name NODES_TESTS='$(NODES_TESTS)' $(GO) test -race -count=1 -timeout 15m -v -run '^TestNodes$$' ./tests/swarm/; \
	  rc=$$?; \
	  if [ "$$(id -u)" = 0 ]; then SWARM_NODES_NAME=$$name scripts/swarm-nodes.sh down || rc=1; fi; \
	  exit $$rc
