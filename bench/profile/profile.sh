#!/usr/bin/env bash
# Profile one of our binaries under the benchmark's load: make bench-profile
# WHAT=proxy (sticky, over two hello servers) or WHAT=service (returning visitor;
# STORE=memory, the default, or STORE=cookie). The binary is built with net/http/pprof added through
# `go build -overlay` (the source tree is not touched), pinned to core 0 like in
# `make bench`, loaded by wrk on core 1 for 12 s while an 8 s CPU profile is
# taken; then prints the top of the CPU and allocation profiles.
# Output: bench/bin/profile-WHAT.{cpu,allocs}.pprof (profile-service-STORE.* for a
# service) and the binary, for go tool pprof.
set -euo pipefail
what=${1:-proxy}
store=${STORE:-memory}
case $store in memory|cookie) ;; *) echo "$0: STORE is $store; want memory or cookie" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/bench/bin
mkdir -p "$bin"
case $what in
  proxy) pkg=proxy tag=proxy ;;
  service) pkg=service1 tag=service-$store ;;
  *) echo "usage: $0 proxy|service" >&2; exit 2 ;;
esac
overlay=$(mktemp)
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$overlay" "$tmp"; }
trap cleanup EXIT
printf '{"Replace":{"%s/%s/zz_pprof.go":"%s/bench/profile/pprof.go.txt"}}' "$root" "$pkg" "$root" > "$overlay"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -overlay "$overlay" -o "$bin/$pkg-pprof" "./$pkg")

port() { echo $((20000 + RANDOM % 30000)); } # a free port, most likely
wait_url() { for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
pp=127.0.0.1:$(port)
if [ "$what" = proxy ]; then
  a=127.0.0.1:$(port); b=127.0.0.1:$(port); listen=127.0.0.1:$(port)
  taskset -c 0 "$bin/hello" -addr "$a" 2>/dev/null & pids+=($!)
  taskset -c 0 "$bin/hello" -addr "$b" 2>/dev/null & pids+=($!)
  # The cleartext listener on the fast engine; no HTTPS listener (no certificate here).
  sed -e "s/\${PROXY_LISTEN}/$listen/; s/\${PROXY_ENGINE}/fast/; s/\${SERVICE[12]_A}/$a/g; s/\${SERVICE[12]_B}/$b/g" \
    -e '/^listen_tls:/d; /^certificates:/d' \
    "$root/bench/proxy.yaml" > "$tmp/proxy.yaml"
  PPROF_ADDR=$pp LOG_LEVEL=warn SERVER_ID_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
    taskset -c 0 "$bin/proxy-pprof" -config "$tmp/proxy.yaml" & pids+=($!)
  url=http://$listen/service1
else
  listen=127.0.0.1:$(port)
  PPROF_ADDR=$pp LOG_LEVEL=warn ADDR=$listen SESSION_STORE=$store SESSION_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
    taskset -c 0 "$bin/service1-pprof" & pids+=($!)
  url=http://$listen/service1
fi
wait_url "$url"
cookie=$(curl -si "$url" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: connect.sid=\([^;]*\).*/\1/p' | head -1)
taskset -c 1 wrk -t1 -c50 -d12s --latency -H "Cookie: connect.sid=$cookie" "$url" > "$tmp/wrk.txt" &
w=$!
sleep 1
curl -s -o "$bin/profile-$tag.cpu.pprof" "http://$pp/debug/pprof/profile?seconds=8"
curl -s -o "$bin/profile-$tag.allocs.pprof" "http://$pp/debug/pprof/allocs"
wait $w
grep -E 'Requests/sec|99%' "$tmp/wrk.txt"
echo "== CPU, cumulative (go tool pprof -top -cum $bin/$pkg-pprof $bin/profile-$tag.cpu.pprof)"
go tool pprof -top -cum -nodecount=30 "$bin/$pkg-pprof" "$bin/profile-$tag.cpu.pprof" 2>/dev/null | sed -n '4,40p'
echo "== allocations (alloc_space)"
go tool pprof -sample_index=alloc_space -top -nodecount=12 "$bin/$pkg-pprof" "$bin/profile-$tag.allocs.pprof" 2>/dev/null | sed -n '5,20p'
