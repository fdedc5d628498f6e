#!/usr/bin/env bash
# What the stack-* targets of mk/stack.mk do; run them through make, which passes the
# settings as environment variables:
#
#   STACK (test)  PORT (80)  STATS_PORT (1936)  STORE (memory|cookie)  REPLICAS (2)  UPDATE_DELAY (10s)
#   TLS (1: HTTPS too, 0: not)  TLS_PORT (443)
#   VERSION (image tag)  SERVICE, N (scale)  SERVICES (update)  STACK_WAIT (180, seconds)
#   STACK_FILE (deploy: docker-compose.yml, or stack/docker-compose.2018.yml)
#
# make passes PORT, STATS_PORT, STORE, REPLICAS, UPDATE_DELAY, TLS and TLS_PORT only when the user gave
# them (on its command line or in the environment), and empty otherwise: the defaults in
# brackets apply to a first deploy only. A stack that exists is read back from the swarm
# (read_stack), so every later command needs only STACK: a redeploy keeps what it is not
# told to change, and scale, update, ps, logs and wait refuse a value that contradicts it.
#
# Plain bash (3.2 too, as on macOS) and the docker CLI (20.10 or later): no curl, no
# openssl, no jq, so it works on a fresh machine. The only address it sends traffic to is
# 127.0.0.1 (the proxy's ports, $PORT and $STATS_PORT).
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=${STACK:-test}
PORT=${PORT:-}
STATS_PORT=${STATS_PORT:-}
STORE=${STORE:-}
REPLICAS=${REPLICAS:-}
UPDATE_DELAY=${UPDATE_DELAY:-}
TLS=${TLS:-}
TLS_PORT=${TLS_PORT:-}
VERSION=${VERSION:-latest}
STACK_WAIT=${STACK_WAIT:-180}
# How long a wait keeps going in a state that means it cannot succeed if it lasts
# (nothing listens on the proxy's port, swarm stopped restarting a task): long enough to
# ride over a task being replaced, far shorter than STACK_WAIT.
STUCK_GRACE=5
IMAGE_REPO=${IMAGE_REPO:-swarm-affinity}
IMAGE_MAX_BYTES=${IMAGE_MAX_BYTES:-15000000}
PLATFORM=${PLATFORM:-linux_amd64}
IMAGE_SOURCE=https://github.com/swarm-affinity/swarm-affinity
SECRETS_DIR=stack/secrets
GO=${GO:-go}
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

# tls_cert makes sure $SECRETS_DIR/tls.pem holds the stack's certificate: a real one
# its owner put there is kept as it is; a missing one, or a self-signed one about to
# expire, is (re)written self-signed for localhost (Go's standard library: a fresh
# machine has no openssl).
tls_cert() {
	"$GO" run ./internal/cmd/gencert -out "$SECRETS_DIR/tls.pem" -names localhost,127.0.0.1
}

# hash_of prints the start of a file's SHA-256 (sha256sum on Linux, shasum on macOS).
hash_of() {
	if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -c1-12
}

# --- The settings of a stack, given or read back from the swarm ---

# The defaults of a first deploy (see the header).
DEFAULT_PORT=80
DEFAULT_STATS_PORT=1936
DEFAULT_STORE=memory
DEFAULT_REPLICAS=2
DEFAULT_UPDATE_DELAY=10s
DEFAULT_TLS_PORT=443
# service1's label naming the variant, set by docker-compose.yml (memory) and
# stack/docker-compose.cookie.yml (cookie), so it holds however the stack was deployed.
STORE_LABEL=com.swarm-affinity.store

# stack_arg prints " STACK=<name>" unless the stack is the default one: the commands a
# message suggests must act on the same stack.
stack_arg() { [[ $STACK == test ]] || printf ' STACK=%s' "$STACK"; }

# duration_ns prints a Go duration ("10s", "1m30s", "1.5s", "0") in nanoseconds, or fails.
duration_ns() {
	[[ $1 == 0 ]] && { echo 0; return; }
	awk -v d="$1" 'BEGIN {
		u["ns"] = 1; u["us"] = 1e3; u["ms"] = 1e6; u["s"] = 1e9; u["m"] = 60e9; u["h"] = 3600e9
		if (d == "") exit 1
		while (match(d, /^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)/)) {
			part = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
			match(part, /^[0-9.]+/)
			total += substr(part, 1, RLENGTH) * u[substr(part, RLENGTH + 1)]
		}
		if (d != "") exit 1
		printf "%.0f\n", total
	}'
}

# check_given fails, naming every bad one, unless the settings the user gave are well
# formed; ports and replica counts come out as plain decimal numbers.
check_given() {
	local bad='' name
	for name in PORT STATS_PORT TLS_PORT; do
		[[ -n ${!name} ]] || continue
		if [[ ${!name} =~ ^[0-9]{1,5}$ ]] && ((10#${!name} >= 1 && 10#${!name} <= 65535)); then
			printf -v "$name" %d "$((10#${!name}))"
		else
			bad+=$'\n'"  $name=${!name}: give a TCP port, 1 to 65535"
		fi
	done
	case $STORE in
	'' | memory | cookie) ;;
	*) bad+=$'\n'"  STORE=$STORE: use memory (sticky proxy) or cookie (stateless service1)" ;;
	esac
	case $TLS in
	'') ;;
	1 | true | yes) TLS=1 ;;
	0 | false | no) TLS=0 ;;
	*) bad+=$'\n'"  TLS=$TLS: give TLS=1 (HTTPS too) or TLS=0" ;;
	esac
	if [[ -n $REPLICAS ]]; then
		if [[ $REPLICAS =~ ^[0-9]{1,4}$ ]]; then REPLICAS=$((10#$REPLICAS)); else
			bad+=$'\n'"  REPLICAS=$REPLICAS: give a number of replicas, e.g. REPLICAS=3"
		fi
	fi
	if [[ -n $UPDATE_DELAY ]] && ! duration_ns "$UPDATE_DELAY" >/dev/null; then
		bad+=$'\n'"  UPDATE_DELAY=$UPDATE_DELAY: give a duration such as 10s, 500ms or 1m30s"
	fi
	[[ -z $bad ]] || die "bad settings:$bad"
}

# read_stack sets DEPLOYED_* from the stack's services as the swarm holds them now: the
# ports the proxy publishes (its targets 8080, or 80 in the 2018 file, and 1936), service1's store label and update
# delay, each service's replica count. What it cannot read (no stack, a service missing,
# a stack deployed before the label existed) stays empty.
read_stack() {
	DEPLOYED_PORT='' DEPLOYED_STATS_PORT='' DEPLOYED_STORE='' DEPLOYED_DELAY='' DEPLOYED_DELAY_NS=''
	DEPLOYED_SERVICE1='' DEPLOYED_SERVICE2='' DEPLOYED_TLS_PORT=''
	local ids specs name ports store replicas delay delay_ns port
	ids=$(docker service ls -q --filter "label=$NS_LABEL") || die "cannot list the services of stack $STACK"
	[[ -n $ids ]] || return 0
	# shellcheck disable=SC2086 # one argument per service id
	specs=$(docker service inspect --format '{{.Spec.Name}}|
		{{- with .Spec.EndpointSpec}}{{range .Ports}}{{.TargetPort}}:{{.PublishedPort}} {{end}}{{end}}|
		{{- index .Spec.Labels "'"$STORE_LABEL"'"}}|
		{{- with .Spec.Mode.Replicated}}{{.Replicas}}{{end}}|
		{{- with .Spec.UpdateConfig}}{{.Delay}}|{{printf "%d" .Delay}}{{end}}' $ids) ||
		die "cannot inspect the services of stack $STACK"
	while IFS='|' read -r name ports store replicas delay delay_ns; do
		case ${name#"${STACK}_"} in
		proxy)
			for port in $ports; do
				case ${port%%:*} in
				# 8080 in our stack (the proxy runs as nobody); 80 in the 2018 file's.
				8080 | 80) DEPLOYED_PORT=${port#*:} ;;
				1936) DEPLOYED_STATS_PORT=${port#*:} ;;
				8443) DEPLOYED_TLS_PORT=${port#*:} ;; # HTTPS (stack/docker-compose.tls.yml)
				esac
			done ;;
		service1)
			DEPLOYED_SERVICE1=$replicas DEPLOYED_STORE=$store
			DEPLOYED_DELAY=$delay DEPLOYED_DELAY_NS=$delay_ns ;;
		service2) DEPLOYED_SERVICE2=$replicas ;;
		esac
	done <<<"$specs"
}

# deployed_words prints what read_stack found as make settings, e.g. "PORT=8000
# STATS_PORT=8001 STORE=memory REPLICAS=2 UPDATE_DELAY=10s", the replicas per service
# when they differ.
deployed_words() {
	local words=
	[[ -z $DEPLOYED_PORT ]] || words+=" PORT=$DEPLOYED_PORT"
	[[ -z $DEPLOYED_STATS_PORT ]] || words+=" STATS_PORT=$DEPLOYED_STATS_PORT"
	[[ -z $DEPLOYED_STORE ]] || words+=" STORE=$DEPLOYED_STORE"
	if [[ $DEPLOYED_SERVICE1 == "$DEPLOYED_SERVICE2" ]]; then
		[[ -z $DEPLOYED_SERVICE1 ]] || words+=" REPLICAS=$DEPLOYED_SERVICE1"
	else
		words+=" (service1 ${DEPLOYED_SERVICE1:-?} replicas, service2 ${DEPLOYED_SERVICE2:-?})"
	fi
	[[ -z $DEPLOYED_DELAY ]] || words+=" UPDATE_DELAY=$DEPLOYED_DELAY"
	[[ -z $DEPLOYED_TLS_PORT ]] || words+=" TLS=1 TLS_PORT=$DEPLOYED_TLS_PORT"
	printf '%s' "${words# }"
}

# deploy_settings sets PORT, STATS_PORT, STORE, UPDATE_DELAY, SERVICE1_REPLICAS and
# SERVICE2_REPLICAS for a deploy: each as the user gave it, else as the stack runs it,
# else the default. On an existing stack it says what it keeps and what it changes.
deploy_settings() {
	local kept='' changed='' name deployed default
	check_given
	read_stack
	for name in PORT STATS_PORT STORE; do
		deployed=DEPLOYED_$name default=DEFAULT_$name
		deployed=${!deployed} default=${!default}
		if [[ -n ${!name} ]]; then
			[[ -z $deployed || ${!name} == "$deployed" ]] || changed+=" $name $deployed -> ${!name};"
		elif [[ -n $deployed ]]; then
			kept+=" $name=$deployed"
			printf -v "$name" %s "$deployed"
		else
			printf -v "$name" %s "$default"
		fi
	done
	if [[ -z $UPDATE_DELAY ]]; then
		[[ -z $DEPLOYED_DELAY ]] || kept+=" UPDATE_DELAY=$DEPLOYED_DELAY"
		UPDATE_DELAY=${DEPLOYED_DELAY:-$DEFAULT_UPDATE_DELAY}
	elif [[ -n $DEPLOYED_DELAY && $(duration_ns "$UPDATE_DELAY") != "$DEPLOYED_DELAY_NS" ]]; then
		changed+=" UPDATE_DELAY $DEPLOYED_DELAY -> $UPDATE_DELAY;"
	fi
	if [[ -n $REPLICAS ]]; then
		SERVICE1_REPLICAS=$REPLICAS SERVICE2_REPLICAS=$REPLICAS
		[[ -z $DEPLOYED_SERVICE1$DEPLOYED_SERVICE2 || "$DEPLOYED_SERVICE1 $DEPLOYED_SERVICE2" == "$REPLICAS $REPLICAS" ]] ||
			changed+=" replicas service1 ${DEPLOYED_SERVICE1:-0} service2 ${DEPLOYED_SERVICE2:-0} -> $REPLICAS each;"
	else
		SERVICE1_REPLICAS=${DEPLOYED_SERVICE1:-$DEFAULT_REPLICAS}
		SERVICE2_REPLICAS=${DEPLOYED_SERVICE2:-$DEFAULT_REPLICAS}
		[[ -z $DEPLOYED_SERVICE1$DEPLOYED_SERVICE2 ]] ||
			kept+=" replicas service1=$SERVICE1_REPLICAS service2=$SERVICE2_REPLICAS"
	fi
	# HTTPS: as given (TLS=1, TLS=0), else as deployed; its port likewise.
	if [[ -z $TLS ]]; then
		TLS=0
		if [[ -n $DEPLOYED_TLS_PORT ]]; then TLS=1 kept+=" TLS=1"; fi
	elif [[ -n $DEPLOYED_PORT && $TLS == 1 && -z $DEPLOYED_TLS_PORT ]] || [[ $TLS == 0 && -n $DEPLOYED_TLS_PORT ]]; then
		changed+=" TLS -> $TLS;"
	fi
	if [[ $TLS == 1 ]]; then
		if [[ -z $TLS_PORT ]]; then
			TLS_PORT=${DEPLOYED_TLS_PORT:-$DEFAULT_TLS_PORT}
			[[ -z $DEPLOYED_TLS_PORT ]] || kept+=" TLS_PORT=$TLS_PORT"
		elif [[ -n $DEPLOYED_TLS_PORT && $TLS_PORT != "$DEPLOYED_TLS_PORT" ]]; then
			changed+=" TLS_PORT $DEPLOYED_TLS_PORT -> $TLS_PORT;"
		fi
		[[ $TLS_PORT != "$PORT" && $TLS_PORT != "$STATS_PORT" ]] ||
			die "TLS_PORT $TLS_PORT is also PORT or STATS_PORT: give HTTPS a port of its own, e.g. TLS_PORT=8443"
	else
		TLS_PORT=
	fi
	[[ $PORT != "$STATS_PORT" ]] || die "PORT and STATS_PORT are both $PORT: the proxy needs two ports, e.g. PORT=8000 STATS_PORT=8001"
	[[ -z $kept ]] || say "stack $STACK exists: keeping${kept} (give a setting to change it)"
	[[ -z $changed ]] || say "changing${changed%;}"
}

# stack_settings sets PORT, STATS_PORT and STORE from the stack as deployed, for the
# commands that act on it as it is (update, scale, ps, logs, wait; $1 names the command).
# A setting the user gave that contradicts the stack is refused, with what is deployed and
# how to change it: those commands never change a setting.
stack_settings() {
	local command=$1 wrong='' fix='' name deployed
	check_given
	need_stack
	read_stack
	for name in PORT STATS_PORT STORE TLS_PORT; do
		deployed=DEPLOYED_$name
		deployed=${!deployed}
		if [[ -n ${!name} && -n $deployed && ${!name} != "$deployed" ]]; then
			wrong+=" $name=${!name}" fix+=" $name=${!name}"
		fi
	done
	if [[ -n $TLS && $TLS != "$([[ -n $DEPLOYED_TLS_PORT ]] && echo 1 || echo 0)" ]]; then
		wrong+=" TLS=$TLS" fix+=" TLS=$TLS"
	fi
	if [[ -n $REPLICAS && "$DEPLOYED_SERVICE1 $DEPLOYED_SERVICE2" != "$REPLICAS $REPLICAS" ]]; then
		wrong+=" REPLICAS=$REPLICAS" fix+=" REPLICAS=$REPLICAS"
	fi
	if [[ -n $UPDATE_DELAY && -n $DEPLOYED_DELAY && $(duration_ns "$UPDATE_DELAY") != "$DEPLOYED_DELAY_NS" ]]; then
		wrong+=" UPDATE_DELAY=$UPDATE_DELAY" fix+=" UPDATE_DELAY=$UPDATE_DELAY"
	fi
	if [[ -n $wrong ]]; then
		die "stack $STACK runs with $(deployed_words), not${wrong}.
  $command acts on the stack as it is: leave${wrong} out,
  or change the stack first: make stack-deploy$(stack_arg)${fix}"
	fi
	PORT=${DEPLOYED_PORT:-${PORT:-$DEFAULT_PORT}}
	STATS_PORT=${DEPLOYED_STATS_PORT:-${STATS_PORT:-$DEFAULT_STATS_PORT}}
	STORE=${DEPLOYED_STORE:-${STORE:-$DEFAULT_STORE}}
	TLS=0 TLS_PORT=$DEPLOYED_TLS_PORT
	[[ -z $TLS_PORT ]] || TLS=1
	if [[ -z $DEPLOYED_PORT || -z $DEPLOYED_STATS_PORT ]]; then
		say "stack $STACK: ${STACK}_proxy publishes no port for its target 8080 (or 80) or 1936: using PORT=$PORT STATS_PORT=$STATS_PORT"
	fi
}

cmd_deploy() {
	need_swarm
	deploy_settings
	cmd_secrets
	# STACK_FILE: another stack file, e.g. stack/docker-compose.2018.yml (the tutorial's own).
	local stack_file=${STACK_FILE:-docker-compose.yml}
	[[ -f $stack_file ]] || die "STACK_FILE=$stack_file: no such file (paths are from the repository's root)"
	local files=(-c "$stack_file")
	export PROXY_CONFIG_FILE=./stack/proxy.yaml
	case $STORE in
	memory) ;;
	cookie)
		[[ $stack_file == docker-compose.yml ]] || die "STORE=cookie goes with docker-compose.yml, not STACK_FILE=$stack_file"
		files+=(-c stack/docker-compose.cookie.yml)
		PROXY_CONFIG_FILE=./stack/proxy.cookie.yaml ;;
	esac
	# HTTPS (given, or kept from the deployed stack): the certificate as a swarm secret.
	export TLS_PORT TLS_CERT_HASH=0
	if [[ $TLS == 1 ]]; then
		[[ $stack_file == docker-compose.yml ]] || die "TLS=1 goes with docker-compose.yml, not STACK_FILE=$stack_file"
		tls_cert
		files+=(-c stack/docker-compose.tls.yml)
		TLS_CERT_HASH=$(hash_of "$SECRETS_DIR/tls.pem")
	fi
	local name
	for name in service1 service2 proxy; do
		docker image inspect "$IMAGE_REPO/$name:$VERSION" >/dev/null 2>&1 ||
			die "image $IMAGE_REPO/$name:$VERSION is missing: run 'make images'"
	done
	export STACK PORT STATS_PORT VERSION UPDATE_DELAY SERVICE1_REPLICAS SERVICE2_REPLICAS
	export PROXY_CONFIG_HASH SERVER_ID_KEY_HASH STATS_AUTH_HASH SESSION_SECRET_HASH
	PROXY_CONFIG_HASH=$(hash_of "$PROXY_CONFIG_FILE")
	SERVER_ID_KEY_HASH=$(hash_of "$SECRETS_DIR/server_id_key")
	STATS_AUTH_HASH=$(hash_of "$SECRETS_DIR/stats_auth")
	SESSION_SECRET_HASH=$(hash_of "$SECRETS_DIR/session_secret")
	# --resolve-image never: the images are local, there is no registry to ask.
	docker stack deploy --resolve-image never "${files[@]}" "$STACK"
	cmd_wait
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

# listening says whether something accepts connections on 127.0.0.1:$1. Only "connection
# refused" is a no: anything else (a reset, a slow answer) is left to the HTTP checks.
listening() {
	local err
	err=$( (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>&1) && return 0
	[[ $err != *refused* ]]
}

# replicas_of prints how many replicas of service $1 the stack asks for.
replicas_of() {
	docker service inspect -f '{{.Spec.Mode.Replicated.Replicas}}' "${STACK}_$1"
}

# proxy_ready says whether the proxy on this node answers 200 on the page of service1 and
# service2 and can use every replica of both (it finds new ones by DNS and health checks
# within a few seconds); a service scaled to 0 is not asked for its page. Otherwise it
# prints what it waits for and returns 1, or 3 when nothing listens on a port it checks:
# the proxy's tasks run, so their host-mode ports should be bound (waiting helps only
# while a task is being replaced).
proxy_ready() {
	local seen svc want have port code avail
	for port in "$PORT" "$STATS_PORT" ${TLS_PORT:+"$TLS_PORT"}; do
		listening "$port" && continue
		avail=$(docker node inspect self --format '{{.Spec.Availability}}' 2>/dev/null || true)
		if [[ -n $avail && $avail != active ]]; then
			avail=" This node is $avail ('docker node ls'), so no proxy runs here: run make on a node with a proxy."
		else
			avail=
		fi
		say "nothing listens on 127.0.0.1:$port, although every task of stack $STACK runs: the proxy publishes it in host mode on each node that runs one.$avail"
		return 3
	done
	for svc in service1 service2; do
		want=$(replicas_of "$svc")
		((want > 0)) || continue
		code=$(http_status "/$svc")
		# 301: force_ssl sends cleartext visitors to https; the proxy answers.
		if [[ $code != 200 && $code != 301 ]]; then
			say "proxy: /$svc ${code:-no answer}"
			return 1
		fi
	done
	seen=$(proxy_available)
	for svc in service1 service2; do
		want=$(replicas_of "$svc")
		have=$(awk -v s="$svc" '$1 == s {print $2}' <<<"$seen")
		if [[ $have != "$want" ]]; then
			say "proxy: $svc ${have:-?}/$want replicas available"
			return 1
		fi
	done
}

# converged says whether every service of the stack runs all its replicas, healthy, with
# no update in progress; otherwise it prints what it waits for and returns 1, what went
# wrong and 2 when waiting will not help, or 3 when it will not help if it lasts (swarm
# has no task left to start for a replica: restart_policy's max_attempts ran out).
converged() {
	local svc name state want running live error services
	services=$(docker service ls -q --filter "label=$NS_LABEL")
	[[ -n $services ]] || { say "there is no stack $STACK (it was removed?): deploy it with make stack-deploy$(stack_arg)"; return 2; }
	for svc in $services; do
		state=$(docker service inspect -f '{{.Spec.Name}} {{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$svc")
		name=${state% *}
		case ${state#* } in
		updating | rollback_started) say "$name: update in progress"; return 1 ;;
		paused | rollback_paused | rollback_completed)
			say "$name: update ${state#* }; see 'docker service ps $name'"
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
				say "$name cannot publish its port (${error##*: listen }): something else uses it.
  Pick other ports: make stack-rm$(stack_arg), then make stack-deploy$(stack_arg) PORT=8000 STATS_PORT=8001"
				return 2 ;;
			esac
			# A task to be started again after a failure is desired Ready; one that swarm
			# gave up on is desired Shutdown, like the history.
			live=$(docker service ps --format '{{.DesiredState}}' "$svc" | grep -c -e '^Running' -e '^Ready' -e '^Accepted' || true)
			if ((live < want)); then
				say "$name: $running/$want running, and swarm gave up restarting the rest (restart_policy max_attempts)${error:+; last task error: ${error:0:200}}.
  See 'make stack-ps$(stack_arg)' and 'make stack-logs$(stack_arg) SERVICE=${name#"${STACK}_"}'"
				return 3
			fi
			say "$name: $running/$want running${error:+ (last task error: ${error:0:200})}"
			return 1
		fi
	done
}

# cmd_wait polls until the stack has converged and its proxy is ready, then says where it
# answers. It stops at once in a state where waiting cannot help (converged or
# proxy_ready returned 2), after STUCK_GRACE seconds in one where it cannot help if it
# lasts (3), and after STACK_WAIT seconds otherwise.
cmd_wait() {
	local deadline=$((SECONDS + STACK_WAIT)) why last='' rc stuck_since='' svc
	while :; do
		why=$(converged) && rc=0 || rc=$?
		if ((rc == 0)); then
			why=$(proxy_ready) && rc=0 || rc=$?
		fi
		case $rc in
		0) break ;;
		2) die "$why" ;;
		3)
			stuck_since=${stuck_since:-$SECONDS}
			((SECONDS - stuck_since < STUCK_GRACE)) || die "$why" ;;
		*) stuck_since= ;;
		esac
		[[ $why != "$last" ]] && say "waiting: $why"
		last=$why
		((SECONDS < deadline)) || die "stack $STACK not ready after ${STACK_WAIT}s: $why; see 'make stack-ps stack-logs$(stack_arg)'"
		sleep 1
	done
	say "stack $STACK is up: curl -c j -b j 127.0.0.1:$PORT/service1 (stats: 127.0.0.1:$STATS_PORT/stats, user:password in $SECRETS_DIR/stats_auth)"
	if [[ $TLS == 1 ]]; then
		say "  and over HTTPS: curl --cacert $SECRETS_DIR/tls.pem -c j -b j https://localhost:$TLS_PORT/service1"
	fi
	say "live view: http://127.0.0.1:$STATS_PORT/live in a browser (the same user:password): who is served by whom, as it happens"
	for svc in service1 service2; do
		[[ $(replicas_of "$svc") != 0 ]] ||
			say "$svc has 0 replicas: /$svc answers 503 until make stack-scale$(stack_arg) SERVICE=$svc N=2"
	done
}

# leftovers lists what the stack still owns: services, containers, networks, configs,
# secrets; it fails if the engine does not answer (an empty list means nothing is left).
leftovers() {
	local kind ids
	for kind in service network config secret; do
		ids=$(docker "$kind" ls -q --filter "label=$NS_LABEL") || return 1
		[[ -z $ids ]] || sed "s/^/$kind /" <<<"$ids"
	done
	ids=$(docker ps -aq --filter "label=$NS_LABEL") || return 1
	[[ -z $ids ]] || sed 's/^/container /' <<<"$ids"
}

# cmd_rm removes the stack and waits until nothing of it is left. `docker stack rm`
# returns at once, and fails to remove the network while tasks still use it: it is
# repeated until the containers are gone and the network went with them.
cmd_rm() {
	local deadline=$((SECONDS + STACK_WAIT)) left
	need_engine
	left=$(leftovers) || die "cannot list what stack $STACK owns: the engine stopped answering"
	if [[ -z $left ]]; then
		say "nothing to remove: no stack $STACK"
		return
	fi
	docker stack rm "$STACK" >/dev/null 2>&1 || true
	say "removing stack $STACK"
	while :; do
		left=$(leftovers) || die "cannot list what stack $STACK owns: the engine stopped answering"
		[[ -n $left ]] || break
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
		die "there is no stack $STACK: deploy it first (make stack-deploy$(stack_arg))"
}

# say_stack prints what the stack runs with and where it answers (after stack_settings).
say_stack() {
	say "stack $STACK runs with $(deployed_words): 127.0.0.1:$PORT/service1, stats 127.0.0.1:$STATS_PORT/stats, live view 127.0.0.1:$STATS_PORT/live"
}

cmd_scale() {
	need_swarm
	stack_settings "make stack-scale"
	case ${SERVICE:-service1} in
	service1 | service2) ;;
	proxy) die "SERVICE=proxy: the proxy runs one task on each node (mode: global) and cannot be scaled" ;;
	*) die "SERVICE=$SERVICE: scale service1 or service2, e.g. make stack-scale SERVICE=service1 N=4" ;;
	esac
	[[ ${N:-} =~ ^[0-9]+$ ]] || die "say how many replicas: make stack-scale$(stack_arg) SERVICE=service1 N=4"
	docker service scale --detach "${STACK}_${SERVICE:-service1}=$N" >/dev/null
	cmd_wait
	docker service ls --filter "label=$NS_LABEL"
}

# cmd_update restarts every replica, one at a time per service as update_config says
# (a new one starts and turns healthy before an old one stops); the services go in
# parallel. Images rebuilt under the same tag are picked up too.
cmd_update() {
	need_swarm
	stack_settings "make stack-update"
	local svc pids=() failed=0
	for svc in ${SERVICES:-service1 service2}; do
		say "rolling restart of ${STACK}_$svc"
		docker service update --force --quiet --detach=false "${STACK}_$svc" >/dev/null &
		pids+=($!)
	done
	for svc in "${pids[@]}"; do wait "$svc" || failed=1; done
	((failed == 0)) || die "rolling restart failed; see 'make stack-ps$(stack_arg)'"
	cmd_wait
	docker service ls --filter "label=$NS_LABEL"
}

cmd_ps() {
	need_swarm
	stack_settings "make stack-ps"
	say_stack
	echo
	docker stack services "$STACK"
	echo
	docker stack ps "$STACK" --format 'table {{.Name}}\t{{.Image}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}'
}

cmd_logs() {
	need_swarm
	stack_settings "make stack-logs"
	say_stack
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
check) check_given && need_swarm ;;
swarm-init) cmd_swarm_init ;;
images) cmd_images ;;
secrets) check_given && cmd_secrets && if [[ $TLS == 1 ]]; then tls_cert; fi ;;
deploy) cmd_deploy ;;
wait) need_swarm && stack_settings "stack/stack.sh wait" && cmd_wait ;;
rm) cmd_rm ;;
scale) cmd_scale ;;
update) cmd_update ;;
ps) cmd_ps ;;
logs) cmd_logs ;;
*) die "usage: stack/stack.sh check|swarm-init|images|secrets|deploy|wait|rm|scale|update|ps|logs (run it through make)" ;;
esac
