#!/usr/bin/env bash
# The standalone gateway over three fleet nodes on one machine, against the gateway inside one
# node, side by side in one run: a `fleet gateway` in front of three `fleet up` processes is
# what spreads one MCP endpoint over several machines, and it must not cost much of what the
# in-fleet gateway delivers (aim: >= 80 % of its throughput at the same load), nor drop calls
# when a whole node dies (aim: >= 99.9 % of calls succeed while one node is SIGKILLed).
# Part 1, interleaved REPEATS times: loadgen's closed loop (USERS users, SECS s, `community__echo`)
# against node 1's own gateway (`in-fleet`: task mode, calls its servers in-process) and
# against the standalone gateway over all three nodes (`standalone`: a loopback HTTP hop to
# every server). Part 2: the same load on the standalone gateway for KILL_SECS s while node 3 is
# SIGKILLed a third of the way in: requests, successes and the success rate.
# Both gateways serve on THREADS threads (default: the CPUs, the in-fleet gateway's own
# default in task mode).
# Usage: benches/run-gateway-nodes.sh [SECS] [USERS] [REPEATS] [SERVERS] [KILL_SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
users=${2:-32}
repeats=${3:-3}
servers=${4:-10}
kill_secs=${5:-12}
threads=${THREADS:-$(nproc)}
command -v curl >/dev/null || { echo "installing curl"; apt-get install -y -qq curl >/dev/null; }
cargo build --release -q -p fleet -p loadgen
out=$(mktemp -d)
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT
wait_line() { # $1: log, $2: first word of the line to wait for
  for _ in $(seq 300); do awk -v w="$2" '$1 == w {f=1} END{exit !f}' "$1" 2>/dev/null && return; sleep 0.1; done
  cat "$1"; exit 1
}
nodes=()
for n in 1 2 3; do
  target/release/fleet up --servers "$servers" --isolation task --no-memory --ephemeral-ports \
    --admin-port 0 --gateway-port 0 --gateway-threads "$threads" \
    --admin-token-file "$out/token-$n" >"$out/node-$n.log" 2>&1 &
  pids+=($!)
  wait_line "$out/node-$n.log" gateway
  nodes+=("n$n=$(awk '$1 == "admin" {sub("/servers", "", $2); print $2}' "$out/node-$n.log")")
done
node3_pid=${pids[2]}
in_fleet=$(awk '$1 == "gateway" {print $2}' "$out/node-1.log")
node_flags=()
for n in "${nodes[@]}"; do node_flags+=(--node "$n"); done
target/release/fleet gateway --port 0 --threads "$threads" "${node_flags[@]}" \
  >"$out/gateway.log" 2>"$out/gateway.err" &
pids+=($!)
wait_line "$out/gateway.log" gateway
standalone=$(awk '$1 == "gateway" {print $2}' "$out/gateway.log")
echo "3 nodes of $servers servers (task mode); in-fleet $in_fleet, standalone $standalone"
echo "$(nproc) CPUs, $threads gateway threads; $secs s per run, closed loop at $users users"

run() { # $1: target URL, $2: run time; prints "rps requests ok" of the latency phase
  rm -rf "$out/run"
  # Exit status 1 is a claim of the seed report failing (e.g. "100% success" while a node is
  # killed): the figures are still measured; 2 and up is a run that could not be made.
  local status=0
  target/release/loadgen --scenario latency --users "$users" --warmup 1 --run-time "$2" \
    --tool 'community__echo:{"text":"hi"}' --out "$out/run" --target "$1" >"$out/lg.log" 2>&1 \
    || status=$?
  [ "$status" -le 1 ] || { tail -20 "$out/lg.log" >&2; exit 1; }
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["latency"]
print("%.0f %d %d" % (r["throughput_rps"], r["requests"], r["ok"]))' "$out/run/run.json"
}

declare -A rps
for i in $(seq "$repeats"); do
  for label in in-fleet standalone; do
    url=$in_fleet
    [ "$label" = standalone ] && url=$standalone
    run "$url" "$secs" >"$out/res"
    read -r r req ok <"$out/res"
    rps[$label]+="$r "
    echo "repeat $i $label: $r req/s ($ok of $req ok)"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
a=$(echo "${rps[in-fleet]}" | median)
b=$(echo "${rps[standalone]}" | median)
echo
echo "median req/s: in-fleet $a, standalone $b: $(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.0f %%", b * 100 / a}') of in-fleet"

echo
echo "node 3 SIGKILLed $((kill_secs / 3 + 1)) s into a $kill_secs s run on the standalone gateway"
( sleep $((kill_secs / 3 + 1)); kill -9 "$node3_pid" ) &
killer=$!
run "$standalone" "$kill_secs" >"$out/res"
read -r r req ok <"$out/res"
wait "$killer" || true
wait "$node3_pid" 2>/dev/null || true
errors=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["latency"]
print(", ".join("%s %s" % kv for kv in sorted(r.get("errors", {}).items()) if kv[1]) or "none")' "$out/run/run.json")
echo "while killing: $r req/s, $ok of $req ok: $(awk -v o="$ok" -v q="$req" 'BEGIN{printf "%.3f %%", o * 100 / q}'); errors: $errors"
grep -E 'stopped answering|node answers' "$out/gateway.err" | sed 's/^/  gateway log: /' || true
