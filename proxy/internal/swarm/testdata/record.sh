#!/usr/bin/env bash
# Records the Docker Engine API answers that the tests of package swarm (and the
# proxy's discovery tests) replay: run it from the repository root on a swarm manager
# with the images built (make images), e.g. on CI's engine (scripts/ci-docker.sh up).
#
#   proxy/internal/swarm/testdata/record.sh
#
# It deploys stack/docker-compose.2018.yml as stack "dropin" and records into
# testdata/2018/, adds testdata/extras.yml and records into testdata/extras/, then
# removes the stack. Each directory holds what the proxy asks, as the engine answered:
#   version.json    GET /version
#   services.json   GET /v1.41/services
#   tasks.json      GET /v1.41/tasks?filters={"desired-state":["running"]}
#   events.jsonl    GET /v1.41/events?filters={"type":["service"]}, during a
#                   `docker service update --env-add` of service2 (2018 only)
# The answers are cut down to the stack's own services and tasks (other stacks on the
# same engine would make them differ from run to run). Traffic goes only to the
# engine's socket and to the stack's published port on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")"
STACK=dropin
VERSION=${VERSION:-latest}
SOCK=${SOCK:-/var/run/docker.sock}
PORT=${PORT:-18480}
STATS_PORT=${STATS_PORT:-18481}
root=$(cd ../../../.. && pwd)

api() { curl -sf --unix-socket "$SOCK" "http://docker$1"; }

# only_stack keeps the services (or tasks, by service ID) of $STACK in a JSON list.
only_stack() {
	python3 -c '
import json, sys
stack, kind = sys.argv[1], sys.argv[2]
items = json.load(sys.stdin)
if kind == "services":
    items = [s for s in items if s["Spec"].get("Labels", {}).get("com.docker.stack.namespace") == stack]
else:
    ids = set(sys.argv[3].split())
    items = [t for t in items if t["ServiceID"] in ids]
json.dump(items, sys.stdout, indent=1, sort_keys=True)
print()' "$@"
}

deploy() {
	STACK=$STACK PORT=$PORT STATS_PORT=$STATS_PORT VERSION=$VERSION UPDATE_DELAY=1s REPLICAS=2 \
		STATS_AUTH_HASH=$(sha256sum "$root/stack/secrets/stats_auth" | cut -c1-12) \
		docker stack deploy --resolve-image never "$@" "$STACK" >/dev/null
}

# settle waits until every service of the stack runs its replicas and the proxy answers.
settle() {
	local deadline=$((SECONDS + 120))
	until [[ $(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$PORT/service2") == 200 ]] &&
		! docker stack services "$STACK" --format '{{.Replicas}}' | awk -F/ '$1 != $2 {bad=1} END {exit !bad}'; do
		((SECONDS < deadline)) || { echo "record: stack $STACK did not settle" >&2; exit 1; }
		sleep 1
	done
	sleep 6 # one more poll of the proxy, so that its own task is listed as it runs
}

record() {
	local dir=$1 services ids
	mkdir -p "$dir"
	api /version | python3 -m json.tool >"$dir/version.json"
	services=$(api /v1.41/services | only_stack "$STACK" services)
	printf '%s\n' "$services" >"$dir/services.json"
	ids=$(python3 -c 'import json,sys; print(" ".join(s["ID"] for s in json.load(sys.stdin)))' <<<"$services")
	api '/v1.41/tasks?filters=%7B%22desired-state%22%3A%5B%22running%22%5D%7D' | only_stack "$STACK" tasks "$ids" >"$dir/tasks.json"
}

trap 'docker stack rm "$STACK" >/dev/null 2>&1 || true' EXIT
(cd "$root" && make -s stack-secrets >/dev/null)
deploy -c "$root/stack/docker-compose.2018.yml"
settle
record 2018
# The events of one update, as the proxy reads them.
(timeout 8 curl -sN --unix-socket "$SOCK" 'http://docker/v1.41/events?filters=%7B%22type%22%3A%5B%22service%22%5D%7D' >2018/events.jsonl || true) &
sleep 1
docker service update --detach --env-add RECORDED=1 "${STACK}_service2" >/dev/null
wait
deploy -c "$root/stack/docker-compose.2018.yml" -c extras.yml
settle
record extras
echo "recorded into $(pwd)/2018 and $(pwd)/extras"
