#!/usr/bin/env bash
# What `loadgen merge` costs at scale: one real 60 s shard run (the latency scenario at RATE
# req/s against a `fleet up` of SERVERS servers, so its run file has a row and a histogram per
# server and 60 seconds of per-second histograms), copied into SHARDS shard files (the shard
# number changed in each), then `loadgen merge` of all of them, REPEATS times; prints the run
# file's size and each merge's wall time and the median. Aim: 64 files of a 60 s run in <= 5 s.
# Usage: benches/run-merge-cost.sh [SHARDS] [SERVERS] [RATE] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
shards=${1:-64}
servers=${2:-500}
rate=${3:-1000}
repeats=${4:-3}
source benches/fleet-up.sh
fleet_up "$servers"
target/release/loadgen --target "$admin" --scenario health,latency --rate "$rate" \
  --users 64 --run-time 60 --warmup 1 --shard "1/$shards" --run-id merge-cost \
  --out "$out/shard-1" >"$out/shard.log" 2>&1 || [[ $? -eq 1 ]] || { cat "$out/shard.log" >&2; exit 1; }
fleet_down
python3 - "$out" "$shards" <<'PY'
import json, os, sys
out, shards = sys.argv[1], int(sys.argv[2])
run = json.load(open(f"{out}/shard-1/run.json"))
for i in range(2, shards + 1):
    run["shard"]["index"] = i
    os.makedirs(f"{out}/shard-{i}", exist_ok=True)
    json.dump(run, open(f"{out}/shard-{i}/run.json", "w"))
PY
size=$(du -k "$out/shard-1/run.json" | cut -f1)
echo "$shards shard files of a 60 s run, $servers servers, ${size} KB each ($(nproc) CPUs)"
times=()
for r in $(seq "$repeats"); do
  rm -rf "$out/merged"
  start=$(date +%s.%N)
  target/release/loadgen merge "$out"/shard-* --out "$out/merged" >"$out/merge.log" 2>&1 \
    || [[ $? -eq 1 ]] || { cat "$out/merge.log" >&2; exit 1; }
  t=$(echo "$(date +%s.%N) - $start" | bc)
  times+=("$t")
  echo "merge $r: ${t} s"
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median: %.2f s\n", a[int((NR+1)/2)]}'
