#!/usr/bin/env bash
# What the stack-* targets of mk/stack.mk do; run them through make, which passes the
# settings as environment variables:
#
#   STACK (test)  PORT (80)  STATS_PORT (1936)  STORE (memory|cookie)  REPLICAS (2)  UPDATE_DELAY (10s)
#   VERSION (image tag)  SERVICE, N (scale)  SERVICES (update)  STACK_WAIT (180, seconds)
#
# Plain bash (3.2 too, as on macOS) and the docker CLI (20.10 or later): no curl, no
# openssl, no jq, so it works on a fresh machine. The only address it sends traffic to is
# 127.0.0.1 (the proxy's ports, $PORT and $STATS_PORT).
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=${STACK:-test}
PORT=${PORT:-80}
STATS_PORT=${STATS_PORT:-1936}
STORE=${STORE:-memory}
VERSION=${VERSION:-latest}
STACK_WAIT=${STACK_WAIT:-180}
IMAGE_REPO=${IMAGE_REPO:-swarm-affinity}
IMAGE_MAX_BYTES=${IMAGE_MAX_BYTES:-15000000}
PLATFORM=${PLATFORM:-linux_amd64}
IMAGE_SOURCE=https://github.com/swarm-affinity/swarm-affinity
SECRETS_DIR=stack/secrets
NS_LABEL="com.docker.stack.namespace=$STACK"

say() { printf '%s\n' "$*"; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }

# need_engine fails with the fix when no Docker engine answers.
need_engine() {
	local out
	command -v docker >/dev/null || die "no docker command: install Docker (Docker Desktop, or 'apt-get install -y docker.io' on Debian)"
	if ! out=$(docker info --format '{{.ServerVersion}}' 2>&1); then
		die "no Docker engine answers (${out##*$'\n'}).
  Start it: on Debian 'apt-get install -y docker.io && dockerd >/tmp/dockerd.log 2>&1 &',
  elsewhere Docker Desktop or 'systemctl start docker'."
	fi
}

# need_swarm fails with the fix when no engine answers or the engine is in no swarm.
need_swarm() {
	local state
	need_engine
	state=$(docker info --format '{{.Swarm.LocalNodeState}}')
	case $state in
	active) ;;
	inactive)
		die "this Docker engine is not in a swarm.
  Make it a single-node swarm with 'make swarm-init' (runs 'docker swarm init'),
  or join an existing one with 'docker swarm join'." ;;
	*) die "this node's swarm state is '$state', not 'active': see 'docker info'." ;;
	esac
	if [[ $(docker info --format '{{.Swarm.ControlAvailable}}') != true ]]; then
		die "this node is a swarm worker: run make on a manager ('docker node ls' there)."
	fi
}

cmd_swarm_init() {
	local state
	need_engine
	state=$(docker info --format '{{.Swarm.LocalNodeState}}')
	if [[ $state == active ]]; then
		say "already in a swarm: nothing to do"
		return
	fi
	docker swarm init ${ADVERTISE_ADDR:+--advertise-addr "$ADVERTISE_ADDR"} >/dev/null ||
		die "docker swarm init failed; with several addresses, pick one: make swarm-init ADVERTISE_ADDR=<ip>"
	say "single-node swarm created; 'docker swarm leave --force' undoes it"
}

# cmd_images builds the three images from bin/$PLATFORM/ (make builds the binaries
# first, for the engine's OS and architecture) and checks their size.
cmd_images() {
	local name size revision created
	need_engine
	revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
	# The commit's date, not the build's: rebuilding the same commit gives the same image.
	created=$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)
	for name in service1 service2 proxy; do
		[[ -x bin/$PLATFORM/$name ]] || die "bin/$PLATFORM/$name is missing: run 'make images'"
		docker build --quiet -f stack/Dockerfile \
			--build-arg NAME="$name" --build-arg VERSION="$VERSION" \
			--build-arg REVISION="$revision" --build-arg CREATED="$created" --build-arg SOURCE="$IMAGE_SOURCE" \
			-t "$IMAGE_REPO/$name:$VERSION" -t "$IMAGE_REPO/$name:latest" "bin/$PLATFORM" >/dev/null 2>/tmp/stack-build.$$ ||
			{ cat /tmp/stack-build.$$ >&2; rm -f /tmp/stack-build.$$; die "docker build of $name failed"; }
		rm -f /tmp/stack-build.$$
		size=$(docker image inspect -f '{{.Size}}' "$IMAGE_REPO/$name:$VERSION")
		printf '%-40s %6.1f MB\n' "$IMAGE_REPO/$name:$VERSION" "$(awk "BEGIN{print $size/1000000}")"
		((size <= IMAGE_MAX_BYTES)) || die "$IMAGE_REPO/$name is $size bytes, more than $IMAGE_MAX_BYTES"
	done
	# Rebuilding under the same tag leaves the previous image untagged: drop ours (Docker
	# keeps any that a container still uses).
	docker image prune -f --filter "label=org.opencontainers.image.source=$IMAGE_SOURCE" >/dev/null 2>&1 || true
}

# cmd_secrets writes the missing secrets: 32 random bytes as 64 hex digits, no newline.
# Existing files are kept, so redeploying keeps sessions and server ids valid.
cmd_secrets() {
	local name hex
	mkdir -p "$SECRETS_DIR"
	chmod 700 "$SECRETS_DIR"
	for name in session_secret server_id_key stats_auth; do
		[[ -s $SECRETS_DIR/$name ]] && continue
		hex=$(head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n')
		[[ $name == stats_auth ]] && hex="stats:$hex"
		(umask 077 && printf '%s' "$hex" >"$SECRETS_DIR/$name")
		say "generated $SECRETS_DIR/$name"
	done
}

# hash_of prints the start of a file's SHA-256 (sha256sum on Linux, shasum on macOS).
hash_of() {
	if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -c1-12
}

cmd_deploy() {
	need_swarm
	cmd_secrets
	local files=(-c docker-compose.yml)
	export PROXY_CONFIG_FILE=./stack/proxy.yaml
	case $STORE in
	memory) ;;
	cookie)
		files+=(-c stack/docker-compose.cookie.yml)
		PROXY_CONFIG_FILE=./stack/proxy.cookie.yaml ;;
	*) die "STORE=$STORE: use memory (sticky proxy) or cookie (stateless service1)" ;;
	esac
	local name
	for name in service1 service2 proxy; do
		docker image inspect "$IMAGE_REPO/$name:$VERSION" >/dev/null 2>&1 ||
			die "image $IMAGE_REPO/$name:$VERSION is missing: run 'make images'"
	done
	export STACK PORT STATS_PORT VERSION UPDATE_DELAY=${UPDATE_DELAY:-10s} REPLICAS=${REPLICAS:-2}
	export PROXY_CONFIG_HASH SERVER_ID_KEY_HASH STATS_AUTH_HASH SESSION_SECRET_HASH
	PROXY_CONFIG_HASH=$(hash_of "$PROXY_CONFIG_FILE")
	SERVER_ID_KEY_HASH=$(hash_of "$SECRETS_DIR/server_id_key")
	STATS_AUTH_HASH=$(hash_of "$SECRETS_DIR/stats_auth")
	SESSION_SECRET_HASH=$(hash_of "$SECRETS_DIR/session_secret")
	# --resolve-image never: the images are local, there is no registry to ask.
	docker stack deploy --resolve-image never "${files[@]}" "$STACK"
	cmd_wait
	say "stack $STACK is up: curl -c j -b j 127.0.0.1:$PORT/service1 (stats: 127.0.0.1:$STATS_PORT/stats, user:password in $SECRETS_DIR/stats_auth)"
}

# http_status prints the status code of GET 127.0.0.1:$PORT$1, or nothing.
http_status() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n' "$1" >&3
		IFS=' ' read -r -t 5 _ code _ <&3 && printf '%s' "$code"
	) 2>/dev/null || true
}

# proxy_available prints "service available" lines from the proxy's /stats?format=text
# (admin port, with the stats_auth secret): how many replicas of each service the proxy
# can use. The format is documented in proxy/internal/admin: keys are read by name.
proxy_available() {
	local auth
	auth=$(base64 <"$SECRETS_DIR/stats_auth" | tr -d '\n')
	(
		exec 3<>"/dev/tcp/127.0.0.1/$STATS_PORT" || exit 1
		printf 'GET /stats?format=text HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Basic %s\r\n\r\n' "$auth" >&3
		while IFS= read -r -t 5 line || [[ -n $line ]]; do printf '%s\n' "${line%$'\r'}"; line=; done <&3
	) 2>/dev/null | awk '$1 == "service" { for (i = 3; i < NF; i += 2) if ($i == "available") print $2, $(i + 1) }' || true
}

# proxy_sees_all says whether the proxy on this node can use every replica of service1
# and service2 (it finds new ones by DNS and health checks within a few seconds).
proxy_sees_all() {
	local seen svc want have
	seen=$(proxy_available)
	for svc in service1 service2; do
		want=$(docker service inspect -f '{{.Spec.Mode.Replicated.Replicas}}' "${STACK}_$svc")
		have=$(awk -v s="$svc" '$1 == s {print $2}' <<<"$seen")
		if [[ $have != "$want" ]]; then
			say "proxy: $svc ${have:-?}/$want replicas available"
			return 1
		fi
	done
}

# converged says whether every service of the stack runs all its replicas, healthy, with
# no update in progress; otherwise it prints what it waits for and returns 1, or what
# went wrong and returns 2 when waiting will not help.
converged() {
	local svc state want running error services
	services=$(docker service ls -q --filter "label=$NS_LABEL")
	[[ -n $services ]] || { say "no service"; return 1; }
	for svc in $services; do
		state=$(docker service inspect -f '{{.Spec.Name}} {{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$svc")
		case ${state#* } in
		updating | rollback_started) say "${state% *}: update in progress"; return 1 ;;
		paused | rollback_paused | rollback_completed)
			say "${state% *}: update ${state#* }; see 'docker service ps ${state% *}'"
			return 2 ;;
		esac
		want=$(docker service inspect -f '{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{end}}' "$svc")
		if [[ -z $want ]]; then # global: one per active node
			want=$(docker node ls --format '{{.Status}} {{.Availability}}' | grep -c '^Ready Active' || true)
		fi
		running=$(docker service ps -f desired-state=running --format '{{.CurrentState}}' "$svc" |
			grep -c '^Running' || true)
		if [[ $running != "$want" ]]; then
			error=$(docker service ps --no-trunc --format '{{.Error}}' "$svc" | grep -m1 . || true)
			error=${error#\"}
			error=${error%\"}
			case $error in
			*"address already in use"*)
				say "${state% *} cannot publish its port (${error##*: listen }): something else uses it.
  Pick other ports: make stack-rm STACK=$STACK; make stack-deploy PORT=8000 STATS_PORT=8001"
				return 2 ;;
			esac
			say "${state% *}: $running/$want running${error:+ (last task error: ${error:0:200})}"
			return 1
		fi
	done
}

# cmd_wait polls until the stack has converged, the proxy answers 200 on both pages and
# can use every replica.
cmd_wait() {
	local deadline=$((SECONDS + STACK_WAIT)) why last= rc
	while :; do
		why=$(converged) && rc=0 || rc=$?
		((rc != 2)) || die "$why"
		if ((rc == 0)); then
			why="proxy: /service1 $(http_status /service1), /service2 $(http_status /service2)"
			[[ $why == *"/service1 200, /service2 200" ]] && why=$(proxy_sees_all) && return
		fi
		[[ $why != "$last" ]] && say "waiting: $why"
		last=$why
		((SECONDS < deadline)) || die "stack $STACK not ready after ${STACK_WAIT}s: $why; see 'make stack-ps stack-logs STACK=$STACK'"
		sleep 1
	done
}

# leftovers lists what the stack still owns: services, containers, networks, configs, secrets.
leftovers() {
	local kind
	for kind in service network config secret; do
		docker "$kind" ls -q --filter "label=$NS_LABEL" | sed "s/^/$kind /"
	done
	docker ps -aq --filter "label=$NS_LABEL" | sed 's/^/container /'
}

# cmd_rm removes the stack and waits until nothing of it is left. `docker stack rm`
# returns at once, and fails to remove the network while tasks still use it: it is
# repeated until the containers are gone and the network went with them.
cmd_rm() {
	local deadline=$((SECONDS + STACK_WAIT)) left
	need_engine
	left=$(leftovers)
	if [[ -z $left ]]; then
		say "nothing to remove: no stack $STACK"
		return
	fi
	docker stack rm "$STACK" >/dev/null 2>&1 || true
	say "removing stack $STACK"
	while left=$(leftovers) && [[ -n $left ]]; do
		((SECONDS < deadline)) || die "stack $STACK still has after ${STACK_WAIT}s: $(echo $left)"
		sleep 1
		# Once the containers are gone, the network, configs and secrets can go.
		grep -q '^container ' <<<"$left" || docker stack rm "$STACK" >/dev/null 2>&1 || true
	done
	if docker network ls --format '{{.Name}}' | grep -qx "${STACK}_web"; then
		die "network ${STACK}_web is still there"
	fi
	say "stack $STACK removed: no service, container, network, config or secret left"
}

# need_stack fails unless the stack has services.
need_stack() {
	[[ -n $(docker service ls -q --filter "label=$NS_LABEL") ]] ||
		die "there is no stack $STACK: deploy it first (make stack-deploy STACK=$STACK)"
}

cmd_scale() {
	need_swarm
	need_stack
	[[ ${N:-} =~ ^[0-9]+$ ]] || die "say how many replicas: make stack-scale SERVICE=service1 N=4"
	docker service scale --detach "${STACK}_${SERVICE:-service1}=$N" >/dev/null
	cmd_wait
	docker service ls --filter "label=$NS_LABEL"
}

# cmd_update restarts every replica, one at a time per service as update_config says
# (a new one starts and turns healthy before an old one stops); the services go in
# parallel. Images rebuilt under the same tag are picked up too.
cmd_update() {
	need_swarm
	need_stack
	local svc pids=() failed=0
	for svc in ${SERVICES:-service1 service2}; do
		say "rolling restart of ${STACK}_$svc"
		docker service update --force --quiet --detach=false "${STACK}_$svc" >/dev/null &
		pids+=($!)
	done
	for svc in "${pids[@]}"; do wait "$svc" || failed=1; done
	((failed == 0)) || die "rolling restart failed; see 'make stack-ps STACK=$STACK'"
	cmd_wait
	docker service ls --filter "label=$NS_LABEL"
}

cmd_ps() {
	need_swarm
	need_stack
	docker stack services "$STACK"
	echo
	docker stack ps "$STACK" --format 'table {{.Name}}\t{{.Image}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}'
}

cmd_logs() {
	need_swarm
	need_stack
	local svc
	if [[ -n ${SERVICE:-} ]]; then
		exec docker service logs --tail "${TAIL:-50}" ${FOLLOW:+--follow} "${STACK}_$SERVICE"
	fi
	for svc in service1 service2 proxy; do
		say "== ${STACK}_$svc"
		docker service logs --tail "${TAIL:-50}" "${STACK}_$svc" 2>&1 || true
	done
}

case ${1:-} in
check) need_swarm ;;
swarm-init) cmd_swarm_init ;;
images) cmd_images ;;
secrets) cmd_secrets ;;
deploy) cmd_deploy ;;
wait) need_swarm && cmd_wait ;;
rm) cmd_rm ;;
scale) cmd_scale ;;
update) cmd_update ;;
ps) cmd_ps ;;
logs) cmd_logs ;;
*) die "usage: stack/stack.sh check|swarm-init|images|secrets|deploy|wait|rm|scale|update|ps|logs (run it through make)" ;;
esac
