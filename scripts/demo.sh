#!/usr/bin/env bash
# The tutorial as a script: each step says what it shows, the command, and the answer.
#
#   scripts/demo.sh                        the local stack of `make run` (localhost:8080)
#   scripts/demo.sh http://127.0.0.1       a swarm stack deployed with `make stack-deploy`
#
# Settings: RUN_DIR (where `make run` keeps stack.txt, default .run), STACK (the swarm
# stack's name, default test), PAUSE=1 waits for Enter between steps.
set -euo pipefail

URL=${1:-http://localhost:8080}
URL=${URL%/}
RUN_DIR=${RUN_DIR:-.run}
STACK=${STACK:-test}

command -v curl >/dev/null || { echo "demo.sh needs curl: apt-get install -y curl" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The local stack's process list, if this URL is the `make run` on this machine.
state="$RUN_DIR/stack.txt"
local_stack=false
if [[ -f $state ]]; then
  state_url=$(awk '$1 == "url" {print $2}' "$state")
  [[ ${state_url/127.0.0.1/localhost} == "${URL/127.0.0.1/localhost}" ]] && local_stack=true
fi

if ! curl -fsS -o /dev/null "$URL/service1" 2>"$work/err"; then
  echo "Nothing answers at $URL/service1 ($(cat "$work/err"))." >&2
  echo "Start the local stack first with 'make run' (in another terminal), or deploy the swarm stack with 'make stack-deploy'." >&2
  exit 1
fi

step=0
say() { # a step's title and explanation
  step=$((step + 1))
  printf '\n\033[1m%d. %s\033[0m\n' "$step" "$1"
  shift
  for line in "$@"; do printf '   %s\n' "$line"; done
  if [[ ${PAUSE:-} == 1 && -t 0 ]]; then read -rp "   (Enter) " _; fi
}

# visit JAR PATH: one request as a browser would make it; prints the command and the
# page's last line (the <h1>), and leaves the replica and the count in $host and $visits.
visit() {
  local jar=$1 path=$2 args=() shown
  if [[ $jar == - ]]; then shown="curl -s $URL$path"; else
    args=(-c "$work/$jar" -b "$work/$jar"); shown="curl -s -c $jar -b $jar $URL$path"
  fi
  local page
  page=$(curl -sS "${args[@]}" "$URL$path")
  local h1=${page##*<h1>}
  h1=${h1%%</h1>*}
  host=$(sed -E 's/^I.m [^ ]+ on (.*) non unique visits [0-9]+$/\1/' <<<"$h1")
  visits=${h1##* }
  printf '   $ %-62s -> %s\n' "$shown" "$h1"
}

cookie() { # the session cookie the jar holds for service1
  awk '$6 == "connect.sid" && $3 == "/service1" {print $7}' "$work/$1" 2>/dev/null | tail -n 1
}

say "service1 is sticky: one browser keeps landing on the same replica, and it counts." \
  "The proxy put its server id in front of the session cookie (HAProxy's 'cookie prefix')."
for _ in 1 2 3; do visit jar /service1; done
sticky_host=$host
printf '   the cookie the browser keeps: connect.sid=%s\n' "$(cookie jar)"
printf '   (the part before ~ names the replica; the proxy strips it before %s sees the cookie)\n' "$sticky_host"

say "service2 is plain round robin: each request may land on another replica." \
  "Without a cookie every answer is a new session: visits 1."
for _ in 1 2 3 4; do visit - /service2; done

say "service2 with a cookie jar: sessions live in each replica's memory," \
  "so the count goes on only when the next request lands on the replica that made it."
for _ in 1 2 3 4; do visit jar2 /service2; done

say "Clear the cookie and you are a new visitor: the proxy balances you again." \
  "(New visitors are spread in turn, so a few fresh browsers reach another replica.)"
for n in 1 2 3 4; do
  visit "fresh$n" /service1
  [[ $host != "$sticky_host" ]] && break
done

say "Stop the replica that holds the first browser's session ($sticky_host)."
if $local_stack; then
  pid=$(awk -v n="$sticky_host" '$1 == "replica" && $2 == n {print $3}' "$state")
  if [[ -z $pid ]]; then
    echo "   $sticky_host is not in $state any more (stopped already?)"
  else
    echo "   \$ kill $pid        # $sticky_host, as listed in $state"
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    echo "   The next request goes to a replica that is up; it does not know the session:"
    echo "   visits start again at 1, and the proxy sets a new cookie that sticks there."
    visit jar /service1
    visit jar /service1
    printf '   the new cookie: connect.sid=%s\n' "$(cookie jar)"
    echo "   (make run leaves the stopped replica down; restart make run to get it back.)"
  fi
else
  slot=${sticky_host##*-}
  service=${sticky_host%-*}
  echo "   On the swarm, stop that replica's container yourself:"
  echo "     docker kill \$(docker ps -q -f name=${service}.${slot}.)"
  echo "   then ask again:  curl -c jar -b jar $URL/service1"
  echo "   The answer comes from another replica with visits 1 and a new prefixed cookie."
  echo "   Swarm starts a new task in the stopped one's place (restart_policy), with no sessions."
fi

printf '\nThat is the tutorial. The proxy'"'"'s own view (servers, ids, sticky hits) is on its admin port, /stats.\n'
