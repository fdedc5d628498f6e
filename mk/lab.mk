# The classroom lab (LAB.md): sticky vs stateless vs neither, measured side by side.
#   make lab                                 local stacks, started and stopped by the lab
#   make lab CLIENTS=30 REQUESTS=20 EVENTS=kill,scale,restart REPLICAS=3
#   make lab URL=http://127.0.0.1            a stack deployed with `make stack-deploy`
#   make lab LIVE=1                          the stacks stay up for the proxies' /live views, events typed by hand
# Empty settings take the lab's defaults (`bin/lab -h` lists them): 60 visitors per arm,
# 10 at a time, 40 requests each about 50 ms apart, 2 replicas, EVENTS=kill,scale (none against a URL).
# The report goes to lab-results/<time>/ (git-ignored).

CLIENTS  ?=
REQUESTS ?=
PARALLEL ?=
THINK    ?=
REPLICAS ?=
EVENTS   ?=
SESSION_TTL ?=
BALANCE  ?=
COOKIE_PATH ?=
ARMS     ?=
URL      ?=
LIVE     ?=

LAB_ENV := CLIENTS='$(CLIENTS)' REQUESTS='$(REQUESTS)' PARALLEL='$(PARALLEL)' THINK='$(THINK)' \
	REPLICAS='$(REPLICAS)' EVENTS='$(EVENTS)' ARMS='$(ARMS)' URL='$(URL)' LIVE='$(LIVE)' \
	SESSION_TTL='$(SESSION_TTL)' BALANCE='$(BALANCE)' COOKIE_PATH='$(COOKIE_PATH)'

.PHONY: lab

lab: build ## the classroom experiment (LAB.md); CLIENTS REQUESTS REPLICAS EVENTS=kill,scale,restart URL= LIVE=1
	$(GO) build -o $(BIN)/lab ./lab
	@$(LAB_ENV) $(BIN)/lab -bin $(BIN) -out lab-results
