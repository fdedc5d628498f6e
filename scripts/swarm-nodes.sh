#!/usr/bin/env bash
# A real N-node Docker Swarm on one Linux machine, and nothing left of it afterwards:
#
#   scripts/swarm-nodes.sh check        can this machine run it? (root, tools, namespaces)
#   scripts/swarm-nodes.sh up [N]       N nodes (default 3): node1 the manager, the others workers
#   scripts/swarm-nodes.sh images       make images on node1, then copy them to every node
#   scripts/swarm-nodes.sh exec K CMD   run CMD in node K's network namespace, DOCKER_HOST=node K
#   scripts/swarm-nodes.sh cut K        unplug node K from the network (heal K plugs it back)
#   scripts/swarm-nodes.sh addr K       node K's address (10.77.0.1K)
#   scripts/swarm-nodes.sh ls           the nodes, their addresses and sockets, `docker node ls`
#   scripts/swarm-nodes.sh logs K       the end of node K's dockerd log
#   scripts/swarm-nodes.sh down         stop and remove everything `up` made; says what is left
#
# Each node is a network namespace (hostname nodeK, address 10.77.0.1K) whose veth is
# plugged into a bridge in a hub namespace, and a dockerd of its own (own data root, exec
# root, socket, key, cgroup parent) started in it with a mount namespace of its own. There
# is no default route and no address outside: nothing reaches the nodes from the machine
# except through their Docker sockets and `exec`, and nothing leaves them. The machine's
# own Docker engine, swarm, iptables and network are not touched.
# Why each step is done as it is (the traps of dockerd in a namespace) is said beside it.
#
# Settings (environment): SWARM_NODES_NAME (sa-nodes: prefix of the namespaces, cgroups
# and directories), SWARM_NODES_NET (10.77.0: the /24 inside the namespaces),
# SWARM_NODES_DATA (/var/lib/sa-nodes: data roots, not on overlayfs), SWARM_NODES_WAIT
# (90, seconds to wait for the engines and the swarm). Needs root and the packages
# docker.io, iproute2, iptables, util-linux.
set -euo pipefail

NAME=${SWARM_NODES_NAME:-sa-nodes}
NET=${SWARM_NODES_NET:-10.77.0}
DATA=${SWARM_NODES_DATA:-/var/lib/$NAME}
WAIT=${SWARM_NODES_WAIT:-90}
# Sockets and pid files; short, since containerd's socket path must stay under 108 bytes.
RUN=/run/$NAME
HUB=$NAME-hub
CGROUP_ROOT=/sys/fs/cgroup
SELF=$(readlink -f "$0")

say() { printf 'swarm-nodes: %s\n' "$*"; }
die() { printf 'swarm-nodes: %s\n' "$*" >&2; exit 1; }

ns_of() { printf '%s-node%s' "$NAME" "$1"; }
addr_of() { printf '%s.%s' "$NET" "$((10 + $1))"; }
sock_of() { printf 'unix://%s/node%s/docker.sock' "$RUN" "$1"; }
dk() { local k=$1; shift; docker -H "$(sock_of "$k")" "$@"; }

# nodes prints the numbers of the nodes `up` made (from its state file), or nothing.
nodes() {
	[[ -s $RUN/nodes ]] || return 0
	seq 1 "$(cat "$RUN/nodes")"
}

need_node() {
	[[ ${1:-} =~ ^[0-9]+$ ]] && (($1 >= 1)) && [[ -d /run/netns && -e /run/netns/$(ns_of "$1") ]] ||
		die "no node '${1:-}': the nodes are $(nodes | tr '\n' ' ')(scripts/swarm-nodes.sh ls)"
}

# wait_for SECONDS COMMAND...: polls COMMAND every half second until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
}

cmd_check() {
	local missing=() tool probe=$NAME-probe$$
	((EUID == 0)) || die "needs root: it makes network namespaces and starts dockerds"
	for tool in docker dockerd ip iptables unshare nsenter mount; do
		command -v "$tool" >/dev/null || missing+=("$tool")
	done
	((${#missing[@]} == 0)) ||
		die "missing ${missing[*]}: apt-get install -y docker.io iproute2 iptables util-linux"
	ip netns add "$probe" 2>/dev/null || die "cannot make a network namespace (ip netns add failed)"
	ip netns del "$probe"
	[[ -d $CGROUP_ROOT ]] || die "no cgroup tree at $CGROUP_ROOT"
	local d=$DATA
	while [[ ! -e $d ]]; do d=$(dirname "$d"); done
	[[ $(stat -fc %T "$d") != overlayfs ]] ||
		die "$DATA is on overlayfs, where dockerd cannot keep images; set SWARM_NODES_DATA to a directory on a disk or tmpfs"
}

# start_dockerd K: the node's own dockerd, started through the two steps below in a mount
# and UTS namespace of its own and the node's network namespace.
start_dockerd() {
	local k=$1 dir=$DATA/node$1 run=$RUN/node$1 major
	mkdir -p "$dir/root" "$run/exec" "$run/cgroup"
	# dockerd 20.10 takes its engine ID from /etc/docker/key.json, the same for every node
	# on this machine, and swarm then sees one node; each gets its own key (dockerd 23
	# and later have no such key and reject the setting).
	major=$(dockerd --version | sed -nE 's/^Docker version ([0-9]+)\..*/\1/p')
	if ((${major:-0} < 23)); then
		printf '{"deprecated-key-path": "%s/key.json"}\n' "$dir" >"$dir/daemon.json"
	else
		printf '{}\n' >"$dir/daemon.json"
	fi
	setsid unshare --mount --uts --propagation slave -- "$SELF" _in-mount-ns "$k" \
		>"$run/dockerd.log" 2>&1 </dev/null &
}

# _in-mount-ns K (in the node's new mount namespace): not `ip netns exec`, which remounts
# /sys and loses the cgroup tree under it. The tree is set aside, then put back over the
# sysfs of the node's network namespace in the next step.
in_mount_ns() {
	mount --rbind "$CGROUP_ROOT" "$RUN/node$1/cgroup"
	exec nsenter --net="/run/netns/$(ns_of "$1")" -- "$SELF" _in-net-ns "$1"
}

# _in-net-ns K (in the node's mount and network namespaces): a sysfs of this network
# namespace, the cgroup tree back, a tmpfs hiding the machine's containerd, then dockerd.
in_net_ns() {
	local k=$1 dir=$DATA/node$1 run=$RUN/node$1
	mount -t sysfs sysfs /sys
	mount --rbind "$run/cgroup" "$CGROUP_ROOT"
	umount -l "$run/cgroup"
	mount -t tmpfs tmpfs /run/containerd
	hostname "node$k"
	# DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: a worker uses the image it has instead of
	# trying (and, with no registry, stalling ~20 s) to pull it.
	DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 exec dockerd \
		--data-root "$dir/root" --exec-root "$run/exec" --pidfile "$run/dockerd.pid" \
		-H "unix://$run/docker.sock" --config-file "$dir/daemon.json" \
		--exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$NAME-node$k"
}

engine_answers() { dk "$1" info --format '{{.ID}}' >/dev/null 2>&1; }

all_ready() {
	local ready
	ready=$(dk 1 node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$' || true)
	[[ $ready == "$1" ]]
}

cmd_up() {
	local n=${1:-3} k ns token
	[[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 9)) || die "up N: N is 1 to 9, not '$n'"
	cmd_check
	[[ ! -e $RUN/nodes && ! -e /run/netns/$HUB ]] ||
		die "nodes are already up (or a run was not torn down): scripts/swarm-nodes.sh down first"
	mkdir -p "$RUN"
	echo "$n" >"$RUN/nodes"
	# The machine may have no /run/containerd; each dockerd needs one to hide behind a tmpfs.
	if [[ ! -d /run/containerd ]] && mkdir /run/containerd 2>/dev/null; then
		touch "$RUN/made-run-containerd"
	fi
	[[ -d /run/containerd ]] || die "cannot make /run/containerd"

	ip netns add "$HUB"
	ip -n "$HUB" link add br0 type bridge
	ip -n "$HUB" link set br0 up
	for k in $(nodes); do
		ns=$(ns_of "$k")
		ip netns add "$ns"
		ip link add "vnode$k" netns "$HUB" type veth peer name eth0 netns "$ns"
		ip -n "$HUB" link set "vnode$k" master br0 up
		ip -n "$ns" link set lo up
		ip -n "$ns" addr add "$(addr_of "$k")/24" dev eth0
		ip -n "$ns" link set eth0 up
		start_dockerd "$k"
	done
	for k in $(nodes); do
		wait_for "$WAIT" engine_answers "$k" || {
			tail -n 20 "$RUN/node$k/dockerd.log" >&2 || true
			die "node$k: dockerd did not answer within ${WAIT}s (log above; run down to clean up)"
		}
	done
	say "$n engines up ($(dk 1 version --format 'engine {{.Server.Version}}'))"

	dk 1 swarm init --advertise-addr "$(addr_of 1)" --listen-addr "$(addr_of 1):2377" >/dev/null
	token=$(dk 1 swarm join-token -q worker)
	for k in $(nodes); do
		((k == 1)) && continue
		dk "$k" swarm join --token "$token" --advertise-addr "$(addr_of "$k")" \
			--listen-addr "$(addr_of "$k"):2377" "$(addr_of 1):2377" >/dev/null
	done
	wait_for "$WAIT" all_ready "$n" || {
		dk 1 node ls >&2 || true
		die "not every node is Ready after ${WAIT}s"
	}
	say "swarm of $n nodes ready; node1 ($(addr_of 1)) is the manager: DOCKER_HOST=$(sock_of 1)"
}

# cmd_images builds the images with the Makefile against node1's engine and copies every
# swarm-affinity image to the other nodes (there is no registry for them to pull from).
cmd_images() {
	local k tags
	[[ -n $(nodes) ]] || die "no nodes: scripts/swarm-nodes.sh up first"
	cd "$(dirname "$0")/.."
	DOCKER_HOST=$(sock_of 1) make --no-print-directory images ${VERSION:+VERSION="$VERSION"}
	tags=$(dk 1 image ls --format '{{.Repository}}:{{.Tag}}' --filter 'reference=swarm-affinity/*')
	[[ -n $tags ]] || die "node1 has no swarm-affinity image after make images"
	for k in $(nodes); do
		((k == 1)) && continue
		# shellcheck disable=SC2086
		dk 1 image save $tags | dk "$k" image load -q >/dev/null
		say "node$k: loaded $(tr "\n" " " <<<"$tags")"
	done
}

cmd_exec() {
	local k=${1:-}
	need_node "$k"
	shift
	(($# > 0)) || die "exec K CMD...: say what to run"
	DOCKER_HOST=$(sock_of "$k") exec ip netns exec "$(ns_of "$k")" "$@"
}

cmd_link() {
	need_node "${2:-}"
	ip -n "$HUB" link set "vnode$2" "$1"
	say "node$2 ($(addr_of "$2")) is $([[ $1 == down ]] && echo cut off || echo back on the network)"
}

cmd_addr() {
	need_node "${1:-}"
	addr_of "$1"
}

cmd_ls() {
	local k
	[[ -n $(nodes) ]] || { say "no nodes (scripts/swarm-nodes.sh up)"; return; }
	for k in $(nodes); do
		printf 'node%s  %-12s DOCKER_HOST=%s  netns %s\n' "$k" "$(addr_of "$k")" "$(sock_of "$k")" "$(ns_of "$k")"
	done
	dk 1 node ls || true
}

cmd_logs() {
	need_node "${1:-}"
	tail -n "${TAIL:-40}" "$RUN/node$1/dockerd.log"
}

# cgroups K prints node K's cgroup directories: the --cgroup-parent under which its
# containers run, in every hierarchy (cgroup v1) or the one tree (v2). K may be '*'.
cgroups() {
	local f
	for f in "$CGROUP_ROOT/$NAME-node"$1 "$CGROUP_ROOT"/*/"$NAME-node"$1; do
		[[ -d $f ]] && echo "$f"
	done
	true
}

# node_pids K prints every process of node K: those in its network namespace (dockerd,
# containerd, shims, docker-proxy) and in its cgroups (the containers, which have network
# namespaces of their own).
node_pids() {
	{
		ip netns pids "$(ns_of "$1")" 2>/dev/null || true
		local f
		for f in $(cgroups "$1"); do
			find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null
		done
		true
	} | sort -u
}

no_pids() { [[ -z $(node_pids "$1") ]]; }
gone() { [[ ! -e /proc/$1 ]]; }

# leftovers lists what is still there of a run: namespaces, processes, cgroups, mounts,
# directories.
leftovers() {
	local ns f
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		[[ $ns == "$NAME-hub" || $ns =~ ^$NAME-node[0-9]+$ ]] && echo "namespace $ns"
	done
	cgroups '*' | sed 's/^/cgroup /'
	awk -v a="$RUN" -v b="$DATA" '$5 == a || index($5, a "/") == 1 || $5 == b || index($5, b "/") == 1 {print "mount " $5}' /proc/self/mountinfo
	[[ -e $RUN ]] && echo "directory $RUN"
	[[ -e $DATA ]] && echo "directory $DATA"
	true
}

# cmd_down undoes `up`, also after a failed or killed run: whatever of it is found is
# stopped and removed, then it checks that nothing is left.
cmd_down() {
	((EUID == 0)) || die "needs root"
	local ks k ns pid f left
	# Every node that may exist: from the state file, and from the namespaces themselves.
	ks=$({
		nodes
		ip netns list 2>/dev/null | awk '{print $1}' | sed -n "s/^$NAME-node\([0-9]*\)$/\1/p"
		cgroups '*' | sed 's/.*-node//'
		true
	} | sort -un)
	if [[ -z $ks && -z $(leftovers) ]]; then
		say "nothing to tear down"
		return
	fi
	# Leaving the swarm stops its containers; the nodes leave at the same time.
	for k in $ks; do
		if engine_answers "$k"; then
			timeout 20 docker -H "$(sock_of "$k")" swarm leave --force >/dev/null 2>&1 &
		fi
	done
	wait
	for k in $ks; do
		[[ -s $RUN/node$k/dockerd.pid ]] && kill -TERM "$(cat "$RUN/node$k/dockerd.pid")" 2>/dev/null || true
	done
	for k in $ks; do
		if [[ -s $RUN/node$k/dockerd.pid ]]; then
			pid=$(cat "$RUN/node$k/dockerd.pid")
			wait_for 30 gone "$pid" || say "node$k: dockerd $pid still runs after 30s; killing it"
		fi
		# What is left of the node: the dockerd if it hung, containerd, shims, containers.
		for pid in $(node_pids "$k"); do kill -KILL "$pid" 2>/dev/null || true; done
		wait_for 10 no_pids "$k" || say "node$k: processes left: $(node_pids "$k" | tr '\n' ' ')"
	done
	for k in $ks; do
		ns=$(ns_of "$k")
		[[ -e /run/netns/$ns ]] && ip netns del "$ns"
		for f in $(cgroups "$k"); do
			find "$f" -depth -type d -exec rmdir {} + 2>/dev/null || true
		done
	done
	[[ -e /run/netns/$HUB ]] && ip netns del "$HUB"
	# The mounts were made in the dockerds' own mount namespaces, gone with them; anything
	# still mounted under our directories is unmounted before they are removed.
	awk -v a="$RUN" -v b="$DATA" 'index($5, a "/") == 1 || index($5, b "/") == 1 {print $5}' /proc/self/mountinfo |
		sort -r | while read -r f; do umount -l "$f" || true; done
	# /run/containerd goes if `up` made it, it is empty (no containerd of the machine uses
	# it) and no other swarm of nodes (its hub) still hides behind it.
	if [[ -e $RUN/made-run-containerd ]] && ! ip netns list 2>/dev/null | grep -q -- '-hub\b'; then
		rmdir /run/containerd 2>/dev/null || true
	fi
	if [[ -z $(awk -v a="$RUN" -v b="$DATA" 'index($5, a "/") == 1 || index($5, b "/") == 1' /proc/self/mountinfo) ]]; then
		rm -rf "$RUN" "$DATA"
	fi
	left=$(leftovers)
	[[ -z $left ]] || die "still there after down: $(tr "\n" " " <<<"$left")"
	say "torn down: no namespace, process, cgroup, mount or directory of $NAME left"
}

case ${1:-} in
_in-mount-ns) in_mount_ns "$2" ;;
_in-net-ns) in_net_ns "$2" ;;
check) cmd_check && say "this machine can run a swarm of nodes (root, tools, network namespaces)" ;;
up) cmd_up "${2:-3}" ;;
images) cmd_images ;;
exec) shift && cmd_exec "$@" ;;
cut) cmd_link down "${2:-}" ;;
heal) cmd_link up "${2:-}" ;;
addr) cmd_addr "${2:-}" ;;
ls) cmd_ls ;;
logs) cmd_logs "${2:-}" ;;
down) cmd_down ;;
*) die "usage: scripts/swarm-nodes.sh check | up [N] | images | exec K CMD... | cut K | heal K | addr K | ls | logs K | down" ;;
esac
