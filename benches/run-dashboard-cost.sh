#!/usr/bin/env bash
# What the live dashboard costs the fleet: one `fleet up` of SERVERS servers (task isolation by
# default, with its gateway and memory, idle but for the health probes), its CPU time (user + system, from /proc/PID/stat) over windows of SECS s with 0 and
# with VIEWERS open event streams (`curl -N /events`, each reading every frame), alternated
# ROUNDS times so drift of the machine falls on both sides. Prints each window's CPU as % of one
# core and the median difference: the viewers' cost. With BASE=DIR (another build's fleet, e.g.
# the one before the dashboard), also runs that fleet alone, alternated with this one's with
# VIEWERS viewers: the whole cost (sampler, viewers, and the request timing every server does).
# Aim (benches/README.md): 10 viewers at 500 servers < 2 % of a core.
# Usage: benches/run-dashboard-cost.sh [SERVERS] [VIEWERS] [SECS] [ROUNDS]
#   ISOLATION=process measures process mode (the servers' own CPU is not the fleet process's:
#   their counters reach it with the probes); BIN=DIR takes fleet from DIR instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."
servers=${1:-500}
viewers=${2:-10}
secs=${3:-30}
rounds=${4:-3}
isolation=${ISOLATION:-task}
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p fleet
  BIN=target/release
fi
work=$(mktemp -d)
fleet_pid=
curls=()
cleanup() {
  for p in "${curls[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$fleet_pid" ] && kill "$fleet_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
clk=$(getconf CLK_TCK)

start_fleet() { # $1: fleet binary
  "$1" up --servers "$servers" --isolation "$isolation" --ephemeral-ports --admin-port 21900 \
    --gateway-port 21999 --memory-repo "$work/memory-$RANDOM" --admin-token-file "$work/token" \
    >"$work/up.log" 2>&1 &
  fleet_pid=$!
  for _ in $(seq 600); do grep -q "healthy in" "$work/up.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "healthy in" "$work/up.log" || { cat "$work/up.log"; exit 1; }
  sleep 5 # past start-up's probes
}
stop_fleet() {
  kill "$fleet_pid"; wait "$fleet_pid" 2>/dev/null || true; fleet_pid=
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$fleet_pid/stat"; }
# CPU of the fleet process over one window, as % of one core.
window() {
  local a b
  a=$(cpu_ticks); sleep "$secs"; b=$(cpu_ticks)
  python3 -c "print('%.2f' % (($b - $a) / $clk / $secs * 100))"
}
open_viewers() {
  for _ in $(seq "$viewers"); do
    curl -sN --max-time $((secs * 4)) http://127.0.0.1:21900/events >/dev/null &
    curls+=($!)
  done
  sleep 3
}
close_viewers() {
  for p in "${curls[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${curls[@]}" 2>/dev/null || true
  curls=()
}
median() { python3 -c "import statistics,sys; print('%.2f' % statistics.median(map(float, sys.argv[1:])))" "$@"; }

echo "dashboard cost: $servers servers ($isolation), $viewers viewers, ${secs} s windows, $rounds rounds"
start_fleet "$BIN/fleet"
without=(); with=(); diffs=()
for r in $(seq "$rounds"); do
  w0=$(window)
  open_viewers
  w1=$(window)
  close_viewers
  without+=("$w0"); with+=("$w1")
  diffs+=("$(python3 -c "print('%.2f' % ($w1 - $w0))")")
  echo "  round $r: 0 viewers ${w0} % of a core, $viewers viewers ${w1} %"
done
stop_fleet
echo "median: 0 viewers $(median "${without[@]}") %, $viewers viewers $(median "${with[@]}") %," \
  "viewers' cost $(median "${diffs[@]}") % of a core"

if [ -n "${BASE:-}" ]; then
  base_w=(); ours_w=(); total=()
  for r in $(seq "$rounds"); do
    start_fleet "$BASE/fleet"; b=$(window); stop_fleet
    start_fleet "$BIN/fleet"; open_viewers; o=$(window); close_viewers; stop_fleet
    base_w+=("$b"); ours_w+=("$o")
    total+=("$(python3 -c "print('%.2f' % ($o - $b))")")
    echo "  round $r: build before ${b} %, this build with $viewers viewers ${o} %"
  done
  echo "median: build before $(median "${base_w[@]}") %, this build with $viewers viewers" \
    "$(median "${ours_w[@]}") %, whole cost $(median "${total[@]}") % of a core"
fi
