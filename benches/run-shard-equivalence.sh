#!/usr/bin/env bash
# Are N shards one generator? Against one `fleet up` of SERVERS servers, the latency scenario at a
# combined open-model RATE for SECS s: one loadgen, then 2 shards and 4 shards (processes at once,
# one agreed --start-at, merged with `loadgen merge`), interleaved REPEATS times. Prints each
# run's p50/p99, achieved rate and errors, and the medians per setup: the aim is p50/p99 of the
# merged runs within noise of the single generator's.
# Usage: benches/run-shard-equivalence.sh [SERVERS] [RATE] [SECS] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
servers=${1:-50}
rate=${2:-2000}
secs=${3:-10}
repeats=${4:-3}
users=64
source benches/fleet-up.sh
fleet_up "$servers"
common=(--target "$admin" --scenario health,latency --rate "$rate" --users "$users"
  --run-time "$secs" --warmup 1)
ok() { [[ $1 -eq 0 || $1 -eq 1 ]]; }
results="$out/results.tsv"
for round in $(seq "$repeats"); do
  for n in 1 2 4; do
    dir="$out/r$round-n$n"
    if ((n == 1)); then
      target/release/loadgen "${common[@]}" --out "$dir" >"$dir.log" 2>&1 || ok $? || { cat "$dir.log" >&2; exit 1; }
      run="$dir/run.json"
    else
      at=$(date -u -d '+4 seconds' +%Y-%m-%dT%H:%M:%S.%3NZ)
      pids=()
      for i in $(seq "$n"); do
        target/release/loadgen "${common[@]}" --shard "$i/$n" --run-id "eq-$round-$n" \
          --start-at "$at" --out "$dir/shard-$i" >"$dir-$i.log" 2>&1 &
        pids+=($!)
      done
      for i in $(seq "$n"); do wait "${pids[$((i - 1))]}" || ok $? || { cat "$dir-$i.log" >&2; exit 1; }; done
      target/release/loadgen merge "$dir"/shard-* --out "$dir/merged" >"$dir.log" 2>&1 || ok $? || { cat "$dir.log" >&2; exit 1; }
      run="$dir/merged/run.json"
    fi
    python3 - "$run" "$n" "$round" >>"$results" <<'PY'
import json, sys
run, n, rnd = sys.argv[1:]
l = json.load(open(run))["latency"]
errors = sum(l["errors"].values())
print("\t".join(str(x) for x in [n, rnd, l["latency_us"]["p50"] / 1000, l["latency_us"]["p99"] / 1000,
      round(l["throughput_rps"]), errors]))
PY
    echo "round $round, $n generator(s) done" >&2
  done
done
python3 - "$results" "$servers" "$rate" "$secs" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
servers, rate, secs = sys.argv[2:]
print(f"{servers} servers, {rate} req/s combined, {secs} s measured; times in ms")
print("generators  round  p50     p99     req/s   errors")
for r in rows:
    print(f"{r[0]:>10} {r[1]:>6} {float(r[2]):6.2f} {float(r[3]):7.2f} {r[4]:>7} {r[5]:>6}")
for n in ("1", "2", "4"):
    mine = [r for r in rows if r[0] == n]
    med = lambda i: statistics.median(float(r[i]) for r in mine)
    print(f"median, {n} generator(s): p50 {med(2):.2f} p99 {med(3):.2f} req/s {med(4):.0f}")
PY
