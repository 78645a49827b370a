#!/usr/bin/env bash
# loadgen against one reference server (community profile, `echo` calls) over stdio and over
# HTTP, in one run, each for SECS seconds with USERS users in a closed loop:
#   1. stdio, one `fleet serve-stdio` process per user (how a multi-agent host runs them);
#   2. stdio, PROCS processes shared by the users, requests pipelined by id (PROCS=1 too);
#   3. the same server over streamable HTTP (`fleet up --servers 1`, its own process).
# Prints requests/s, p50/p99 (ms) and the server processes' CPU seconds per run.
# Usage: benches/run-stdio.sh [SECS] [USERS] [PROCS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
users=${2:-16}
procs=${3:-2}
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p fleet -p loadgen
fleet="$target_dir/release/fleet"
loadgen="$target_dir/release/loadgen"
out=$(mktemp -d)
pid=
trap '[[ -n $pid ]] && kill $pid 2>/dev/null; rm -rf "$out"' EXIT
tool='echo:{"text":"hello"}'

run() { # $1: label, rest: loadgen flags; prints one line
  local label=$1
  shift
  rm -rf "$out/lg"
  "$loadgen" --scenario latency --users "$users" --warmup 1 --run-time "$secs" \
    --tool "$tool" --out "$out/lg" "$@" >"$out/lg.txt" 2>"$out/lg.err" || {
    tail -5 "$out/lg.err"
    return 1
  }
  python3 - "$label" "$out/lg/run.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[2]))
r, s = run["latency"], run.get("stdio") or {}
l = r["latency_us"]
errors = sum(r["errors"].values()) if isinstance(r["errors"], dict) else r["errors"]
cpu = f'{s["cpu_s"]:.1f}' if s else "-"
print(f'{sys.argv[1]:<28} {r["throughput_rps"]:>9.0f} {l["p50"]/1e3:>8.2f} {l["p99"]/1e3:>8.2f} '
      f'{errors:>7} {cpu:>11}')
PY
}

echo "fleet serve-stdio / fleet up --servers 1 ($(nproc) CPUs), $secs s, $users users, closed loop"
printf '%-28s %9s %8s %8s %7s %11s\n' transport req/s p50-ms p99-ms errors server-cpu-s
run "stdio, 1 process per user" --target "stdio:$fleet serve-stdio"
run "stdio, $procs processes" --target "stdio:$fleet serve-stdio" --stdio-processes "$procs"
run "stdio, 1 process" --target "stdio:$fleet serve-stdio" --stdio-processes 1
"$fleet" up --servers 1 --no-memory --no-gateway --ephemeral-ports --admin-port 0 >"$out/up" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'http://.*/mcp' "$out/up" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.]*:[0-9]*-[0-9]*/mcp' "$out/up" | head -1 | sed -E 's/:([0-9]+)-[0-9]+/:\1/')
run "http, 1 server process" --target "$url"
