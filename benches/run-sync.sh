#!/usr/bin/env bash
# The shared memory's write-to-visible lag, task mode and process mode side by side: loadgen's
# sync scenario (a write on a random server, read back with `minVersion` on another) against its
# embedded fleet of SERVERS servers, once with every server a task of one process and once with
# every server its own process, interleaved REPEATS times. Prints per run and the medians: ack
# p50/p99, write-to-visible lag p50/p99 by the clients (a read round trip included) and the
# baseline read p99, the acknowledged writes lost, how busy the machine was during the
# measurement (all processes, from /proc/stat) and the load average before it, so noise from
# other work shows.
# Usage: benches/run-sync.sh [SERVERS] [RATE] [SECS] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
servers=${1:-500}
rate=${2:-1000}
secs=${3:-5}
repeats=${4:-3}
cargo build --release -q -p loadgen
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
results="$out/results.tsv"
for round in $(seq "$repeats"); do
  for mode in task process; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    log="$out/$mode-$round.log"
    # A failed claim exits non-zero; the figures are what this measures.
    target/release/loadgen --isolation "$mode" --servers "$servers" --scenario sync \
      --sync-rate "$rate" --sync-time "$secs" >"$log" 2>&1 || true
    run=$(awk '$1 == "run" && $2 == "file:" {print $3}' "$log")
    [ -n "$run" ] || { cat "$log"; exit 1; }
    python3 - "$run" "$mode" "$round" "$load" >>"$results" <<'PY'
import json, sys
run, mode, rnd, load = sys.argv[1:]
f = json.load(open(run))["sync"]["figures"]
ms = lambda h, q: h[q] / 1000
busy = f["cpu"]["machine_busy_percent"]
print("\t".join(str(x) for x in [mode, rnd, load, ms(f["ack_us"], "p50"), ms(f["ack_us"], "p99"),
      ms(f["lag_us"], "p50"), ms(f["lag_us"], "p99"), ms(f["baseline_read_us"], "p99"),
      f["acked"], f["writes"], f["check"]["lost"], f"{busy:.0f}"]))
PY
    echo "round $round $mode done (load average before: $load)" >&2
  done
done
python3 - "$results" "$servers" "$rate" "$secs" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
servers, rate, secs = sys.argv[2:]
print(f"sync scenario, {servers} servers, {rate} writes/s for {secs} s; times in ms")
print("mode     round  load  ack p50  ack p99  lag p50  lag p99  read p99  acked/writes  lost  busy %")
for r in rows:
    print(f"{r[0]:8} {r[1]:>5} {r[2]:>5} {float(r[3]):8.2f} {float(r[4]):8.2f} {float(r[5]):8.2f} "
          f"{float(r[6]):8.2f} {float(r[7]):9.2f} {r[8]:>6}/{r[9]:<6} {r[10]:>5} {r[11]:>7}")
for mode in ("task", "process"):
    mine = [r for r in rows if r[0] == mode]
    if mine:
        med = lambda i: statistics.median(float(r[i]) for r in mine)
        print(f"median {mode:8} ack p50 {med(3):.2f} p99 {med(4):.2f}; lag p50 {med(5):.2f} p99 {med(6):.2f}")
PY
