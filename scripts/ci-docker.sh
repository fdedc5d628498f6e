#!/usr/bin/env bash
# A Docker engine in a single-node swarm for CI, and the machine left as it was after:
#
#   scripts/ci-docker.sh up     install docker.io if dockerd is missing (Debian), start
#                               dockerd if no engine answers, `docker swarm init` if the
#                               node is in no swarm; remembers what it did
#   scripts/ci-docker.sh down   undoes only that: leaves the swarm if `up` created it,
#                               stops the dockerd if `up` started it
#
# .ci/run does: scripts/ci-docker.sh up; trap 'scripts/ci-docker.sh down' EXIT; ...
# What `up` did is kept in $CI_DOCKER_STATE (a file under /tmp), with the run it belongs
# to ($CI_DOCKER_OWNER, default the calling shell's pid). The package stays installed:
# uninstalling is not undoing a start.
set -euo pipefail

STATE=${CI_DOCKER_STATE:-/tmp/swarm-affinity-ci-docker.state}
DOCKERD_LOG=${DOCKERD_LOG:-/tmp/swarm-affinity-ci-dockerd.log}

say() { printf 'ci-docker: %s\n' "$*"; }
die() { printf 'ci-docker: %s\n' "$*" >&2; exit 1; }

# as_root runs a command as root, through sudo when we are not root.
as_root() {
	if ((EUID == 0)); then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
		die "need root (or sudo) to run: $*"
	fi
}

running() { [[ -e /proc/$1 ]]; }
stopped() { ! running "$1"; }

engine_answers() { docker info >/dev/null 2>&1; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every second until it succeeds.
wait_for() {
	local what=$1 seconds=$2
	shift 2
	local deadline=$((SECONDS + seconds))
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 1
	done
}

# OWNER names the run whose `up` wrote $STATE: `down` undoes only its own run's `up`, so
# a second run on the same machine (whose `up` refuses) never stops the first one's
# engine. By default the calling shell, the same for the `up` and `down` of one script.
OWNER=${CI_DOCKER_OWNER:-$PPID}

up() {
	if [[ -s $STATE ]]; then
		die "$STATE exists: another run's 'up' ($(grep -m1 '^owner=' "$STATE" || echo 'owner unknown')) was not followed by its 'down'; if that run is gone, run 'CI_DOCKER_OWNER=<that owner> $0 down' or remove $STATE"
	fi
	echo "owner=$OWNER" >"$STATE"

	if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
		say "installing docker.io from Debian"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
	fi

	if ! engine_answers; then
		say "starting dockerd (log: $DOCKERD_LOG)"
		local pidfile=/tmp/swarm-affinity-ci-dockerd.pid
		# setsid: a session of its own, so a Ctrl-C meant for the tests does not stop it.
		as_root setsid dockerd --pidfile "$pidfile" >"$DOCKERD_LOG" 2>&1 </dev/null &
		if ! wait_for "dockerd" 60 engine_answers; then
			tail -n 20 "$DOCKERD_LOG" >&2 || true
			die "dockerd did not answer within 60s"
		fi
		# Its own pid file, not $!: that may be sudo's or a subshell's.
		echo "dockerd_pid=$(cat "$pidfile")" >>"$STATE"
	fi
	say "engine $(docker info --format '{{.ServerVersion}}'), client $(docker version --format '{{.Client.Version}}' 2>/dev/null || echo '?')"

	local state
	state=$(docker info --format '{{.Swarm.LocalNodeState}}')
	case $state in
	active) say "node already in a swarm: keeping it" ;;
	inactive)
		say "docker swarm init (single node)"
		docker swarm init >/dev/null
		echo "swarm_created=1" >>"$STATE"
		;;
	*) die "swarm state is '$state'; fix it by hand ('docker info')" ;;
	esac
	[[ $(docker info --format '{{.Swarm.ControlAvailable}}') == true ]] ||
		die "this node is a swarm worker: the stack tests need a manager"
}

down() {
	if [[ ! -f $STATE ]]; then
		say "nothing to undo ($STATE is missing)"
		return
	fi
	local dockerd_pid='' swarm_created='' owner=''
	# shellcheck disable=SC1090
	source "$STATE"
	if [[ $owner != "$OWNER" ]]; then
		say "$STATE belongs to another run (owner $owner, this one $OWNER): leaving its engine alone"
		return
	fi
	if [[ -n $swarm_created ]]; then
		say "leaving the swarm 'up' created"
		docker swarm leave --force >/dev/null || say "docker swarm leave failed"
	fi
	if [[ -n $dockerd_pid ]]; then
		say "stopping the dockerd 'up' started (pid $dockerd_pid)"
		as_root kill -TERM "$dockerd_pid" 2>/dev/null || true
		if ! wait_for "dockerd to stop" 60 stopped "$dockerd_pid"; then
			say "dockerd $dockerd_pid still runs after 60s"
		fi
	fi
	rm -f "$STATE"
}

case ${1:-} in
up) up ;;
down) down ;;
*) die "usage: $0 up|down" ;;
esac
