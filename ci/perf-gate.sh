#!/usr/bin/env bash
# The performance gate, as CI runs it: measure a small embedded reference fleet with loadgen,
# judge the runs with `loadgen gate`, and check the HTML report in headless Chromium. Used by
# .ci/run (a bounded smoke run) and by ci/workflows/perf-gate.yml (with a baseline built from
# the base branch).
#
# Usage: ci/perf-gate.sh [--baseline-bin PATH] [--repeats N] [--out DIR]
#   --baseline-bin PATH  also measure this loadgen binary (e.g. built from the base branch),
#                        interleaved with ours, and apply the gate's relative rules against it
#   --repeats N          runs per side (default 1; more runs, more statistical power)
#   --out DIR            where runs, JUnit XML, the Markdown summary and the screenshot go
#                        (default target/perf-gate)
# Exit status: the gate's (0 pass, 1 a gate failed, 2 usage or input error), or 1 when the
# report fails its browser check.
set -euo pipefail
cd "$(dirname "$0")/.."

baseline_bin=""
repeats=1
out=target/perf-gate
while [ $# -gt 0 ]; do
  case "$1" in
    --baseline-bin) baseline_bin=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "perf-gate: unknown argument $1" >&2; exit 2 ;;
  esac
done

echo "perf-gate: building loadgen (release)"
cargo build --release -q -p loadgen
head_bin=target/release/loadgen
rm -rf "$out"
mkdir -p "$out"

# A small fleet, every scenario the gate judges, about 25 s a run on a 2-core machine.
# The head binary also runs the chaos scenario (2 of the 20 servers killed under load through
# the gateway) and the scale step (the fleet grown to 40 through its admin API and swept, well
# under a second): a baseline built from an older branch may not know them, and the relative
# rules do not compare them anyway.
measure() { # $1: binary, $2: run folder, $3: scenarios, rest: more flags
  local bin=$1 dir=$2 scenarios=$3
  shift 3
  timeout 150 "$bin" --servers 20 --scenario "$scenarios" "$@" \
    --users 16 --warmup 1 --run-time 5 \
    --connections 200 --connections-ramp-up 2 --hold 4 --connection-rate 2 \
    --sync-rate 200 --sync-time 3 \
    --out "$dir" >"$dir.log" 2>&1 || {
      status=$?
      # 1 is a failed claim (the seed report's 1000 connections, say, on this small fleet):
      # the run was made, and this gate judges it by its own rules.
      if [ "$status" -ne 1 ]; then
        echo "perf-gate: loadgen exited with $status; its output:" >&2
        tail -30 "$dir.log" >&2
        exit 2
      fi
    }
  echo "perf-gate: measured $dir"
}

heads=()
baselines=()
for i in $(seq "$repeats"); do
  if [ -n "$baseline_bin" ]; then
    measure "$baseline_bin" "$out/baseline-$i" latency,connections,sync
    baselines+=(--baseline "$out/baseline-$i")
  fi
  measure "$head_bin" "$out/head-$i" latency,connections,sync,chaos,scale --chaos-time 3 \
    --chaos-rate 200 --scale-to 40
  heads+=("$out/head-$i")
done

status=0
"$head_bin" gate --config ci/gates.toml "${baselines[@]}" "${heads[@]}" \
  --junit "$out/gate-junit.xml" --summary "$out/gate-summary.md" || status=$?
cat "$out/gate-summary.md" 2>/dev/null || true
if [ "$status" -ne 0 ]; then
  echo "perf-gate: the gate failed (exit $status)" >&2
  exit "$status"
fi

if [ -n "$baseline_bin" ]; then
  "$head_bin" compare "$out/baseline-1" "$out/head-1" --out "$out/compare.html"
fi
"$head_bin" index "$out" >/dev/null
bash ci/check-report.sh --min-charts 8 "$out/head-1/report.html" "$out"
echo "perf-gate: passed; report $out/head-1/report.html, screenshot $out/report.png"
