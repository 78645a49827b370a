#!/usr/bin/env bash
# How fast a running fleet grows from 500 to 1000 servers, and what the larger fleet costs in
# memory: loadgen's scale step (the embedded fleet grown through its admin API, `POST
# /groups/{group}/scale`, timed from the request until every server is healthy, then every
# server swept) run alone, ROUNDS times per isolation mode, each round a fresh fleet. It prints
# each round's time to healthy, sweep and memory at both sizes, then the median per mode: the
# figure benches/README.md ("The scale step") records against its aim (1000 servers healthy
# ≤ 2 s, task mode). The fleet's ports are kernel-chosen (--ephemeral-ports), so nothing else
# running on the machine is in the way. Needs `cargo build --release -p loadgen` and python3.
#
# Usage: benches/run-scale.sh [ROUNDS] [MODES]   (defaults: 3, "task process")
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
MODES=${2:-task process}
SERVERS=${SERVERS:-500}
SCALE_TO=${SCALE_TO:-1000}
LOADGEN=${CARGO_TARGET_DIR:-target}/release/loadgen
[ -x "$LOADGEN" ] || { echo "build it first: cargo build --release -p loadgen" >&2; exit 2; }

out=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT

for mode in $MODES; do
  for round in $(seq "$ROUNDS"); do
    dir="$out/$mode-$round"
    # The step alone (with the health sweep every run makes), bounded in time.
    timeout 300 "$LOADGEN" --scenario scale --servers "$SERVERS" --scale-to "$SCALE_TO" \
      --isolation "$mode" --ephemeral-ports --quiet --out "$dir" > "$dir.log" 2>&1 &
    pid=$!
    status=0
    wait "$pid" || status=$?
    pid=""
    # 1 is a failed claim (the run was made); anything else is a run that was not.
    if [ "$status" -gt 1 ]; then
      echo "round $round ($mode): loadgen exited with $status" >&2
      tail -20 "$dir.log" >&2
      exit 1
    fi
  done
done

python3 - "$out" "$ROUNDS" $MODES << 'EOF'
import json, statistics, sys
out, rounds, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
mib = lambda b: "-" if b is None else f"{b / 2**20:.1f} MiB"
for mode in modes:
    healthy = []
    for r in range(1, rounds + 1):
        run = json.load(open(f"{out}/{mode}-{r}/run.json"))
        s = run["scale"]
        if not s["ran"]:
            sys.exit(f"{mode} round {r}: the step did not run: {s['reason']}")
        f = s["figures"]
        b, a = f["memory_before"], f["memory_after"]
        healthy.append(f["healthy_s"] if f["healthy_s"] is not None else float("inf"))
        print(f"{mode} round {r}: {f['from_servers']} -> {f['to_servers']} healthy in "
              f"{f['healthy_s']} s (requests {f['request_ms']:.0f} ms); sweep "
              f"{f['sweep']['ok']}/{f['sweep']['servers']} in {f['sweep']['seconds']:.2f} s; "
              f"fleet RSS {mib(b['fleet_rss_bytes'])} -> {mib(a['fleet_rss_bytes'])}; servers' "
              f"PSS {mib(b['servers_pss_bytes'])} -> {mib(a['servers_pss_bytes'])}, RSS "
              f"{mib(b['servers_rss_bytes'])} -> {mib(a['servers_rss_bytes'])}")
    print(f"{mode}: healthy in {statistics.median(healthy):.3f} s (median of {rounds}; "
          f"{min(healthy):.3f}-{max(healthy):.3f} s)")
EOF
