#!/usr/bin/env bash
# Gateway overhead, side by side in one run: loadgen calling `echo` on a fleet's community
# servers (1) directly, (2) through a bare round-robin hyper proxy (benches/bin/bare_proxy.rs,
# the least any proxy costs) and (3) through the fleet's gateway `/mcp` (`community__echo`).
# Interleaved repeats of: a closed loop at USERS users (throughput), and an open model at RATE
# req/s (p50/p99 latency from the intended send time). Prints medians and ratios to direct.
# ISOLATION `process` puts the servers in child processes, leaving the fleet's own process (and
# its runtime) to the gateway, as the bare proxy has its own. In `task` mode the gateway calls
# its servers in-process; a second, idle-until-measured fleet started with `--gateway-over-http`
# adds (4) `gw-http`, the same gateway making a real loopback HTTP hop to its servers.
# FLEET_FLAGS (environment) are added to every fleet's `fleet up`. BASE_FLEET (environment), the
# path of another build's `fleet` binary, adds (5) `gw-base`: that build's gateway, from a fleet
# of its own, so a change to the gateway is measured side by side with the build before it.
# MODE (environment) picks the era: `stateless` (default; 2026-07-28 requests, the labels above),
# `session` (loadgen --protocol 2025-11-25: direct sessions to the servers against a session the
# gateway holds, whose calls it federates; labels `direct-s`, `gateway-s`, `gw-http-s`,
# `gw-base-s`, the ratios to `direct-s`; no proxy, whose round robin would lose the servers'
# sessions) or `both`, interleaved.
# ONLY (environment) picks the labels to measure (default: all of the above that were started).
# Usage: [MODE=stateless|session|both] benches/run-gateway.sh [SECS] [USERS] [RATE] [REPEATS]
#        [SERVERS] [ISOLATION]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
users=${2:-32}
rate=${3:-2000}
repeats=${4:-3}
servers=${5:-10}
isolation=${6:-task}
mode=${MODE:-stateless}
case $mode in stateless | session | both) ;; *) echo "MODE: stateless, session or both" >&2; exit 2 ;; esac
command -v curl >/dev/null || { echo "installing curl"; apt-get install -y -qq curl >/dev/null; }
cargo build --release -q -p fleet -p loadgen
cargo build --release -q -p benches --bin bare-proxy
out=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$out"' EXIT
start_fleet() { # $1: fleet binary, $2: log file, rest: extra flags; waits for its gateway line
  local bin=$1 log=$2
  shift 2
  # shellcheck disable=SC2086
  "$bin" up --servers "$servers" --isolation "$isolation" --no-memory --ephemeral-ports \
    --admin-port 0 --gateway-port 0 ${FLEET_FLAGS:-} "$@" >"$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do grep -q ' gateway ' "$log" 2>/dev/null && break; sleep 0.1; done
  grep -q ' gateway ' "$log" || { cat "$log"; exit 1; }
}
start_fleet target/release/fleet "$out/fleet.log"
admin=$(awk '$1 == "admin" {sub("/servers", "", $2); print $2}' "$out/fleet.log")
gateway=$(awk '$1 == "gateway" {print $2}' "$out/fleet.log")
[ -n "$admin" ] && [ -n "$gateway" ] || { cat "$out/fleet.log"; exit 1; }
gateways=(gateway)
if [ "$isolation" = task ]; then
  start_fleet target/release/fleet "$out/fleet-http.log" --gateway-over-http
  gw_http=$(awk '$1 == "gateway" {print $2}' "$out/fleet-http.log")
  gateways+=(gw-http)
fi
if [ -n "${BASE_FLEET:-}" ]; then
  start_fleet "$BASE_FLEET" "$out/fleet-base.log"
  gw_base=$(awk '$1 == "gateway" {print $2}' "$out/fleet-base.log")
  gateways+=(gw-base)
fi
labels=()
[ "$mode" = session ] || labels+=(direct proxy "${gateways[@]}")
[ "$mode" = stateless ] || for l in direct "${gateways[@]}"; do labels+=("$l-s"); done
mapfile -t backends < <(curl -s "$admin/servers" | python3 -c '
import json, sys
for s in json.load(sys.stdin)["servers"]:
    if s["group"] == "community":
        print("127.0.0.1:%d" % s["port"])')
target/release/bare-proxy "${backends[@]}" >"$out/proxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^proxy' "$out/proxy.log" 2>/dev/null && break; sleep 0.1; done
proxy=$(awk '/^proxy/{print $2}' "$out/proxy.log")
[ -n "$proxy" ] || { cat "$out/proxy.log"; exit 1; }
direct=()
for b in "${backends[@]}"; do direct+=("http://$b/mcp"); done
echo "fleet: $servers servers ($isolation mode, ${#backends[@]} community), gateway $gateway, proxy $proxy"
echo "$(nproc) CPUs; $secs s per run, closed loop at $users users, open model at $rate req/s; $mode"

run() { # $1: label, $2: extra flags (string), rest: targets...; writes "rps p50_us p99_us" to $out/res
  local label=$1 extra=$2
  shift 2
  local tool='echo:{"text":"hi"}'
  case ${label%-s} in gateway | gw-http | gw-base) tool='community__echo:{"text":"hi"}' ;; esac
  # A session label: each user opens a 2025-11-25 session per target first.
  case $label in *-s) extra+=" --protocol 2025-11-25" ;; esac
  rm -rf "$out/run"
  # shellcheck disable=SC2086
  target/release/loadgen --scenario latency --users "$users" --warmup 1 --run-time "$secs" \
    --tool "$tool" $extra --out "$out/run" --target "$@" >"$out/lg.log" 2>&1 \
    || { tail -20 "$out/lg.log"; exit 1; }
  python3 - "$out/run/run.json" >"$out/res" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["latency"]
l = r["latency_us"]
errors = r["requests"] - r["ok"]
if errors:
    print(f"warning: {errors} errors", file=sys.stderr)
print(f'{r["throughput_rps"]:.0f} {l["p50"]} {l["p99"]}')
PY
}

# ONLY (environment): the labels to measure, e.g. ONLY="direct gateway gw-base".
if [ -n "${ONLY:-}" ]; then
  for label in $ONLY; do
    case " ${labels[*]} " in
      *" $label "*) ;;
      *) echo "ONLY: no $label in this run (started: ${labels[*]})" >&2; exit 2 ;;
    esac
  done
  for label in $ONLY; do
    case $label in *-s) base=direct-s ;; *) base=direct ;; esac
    case " $ONLY " in *" $base "*) ;; *) echo "ONLY: $label needs $base (the ratios are to it)" >&2; exit 2 ;; esac
  done
  read -r -a labels <<<"$ONLY"
fi
declare -A rps p50 p99
for i in $(seq "$repeats"); do
  for label in "${labels[@]}"; do
    case ${label%-s} in
      direct) targets=("${direct[@]}") ;;
      proxy) targets=("$proxy") ;;
      gateway) targets=("$gateway") ;;
      gw-http) targets=("$gw_http") ;;
      gw-base) targets=("$gw_base") ;;
    esac
    run "$label" "" "${targets[@]}"
    read -r r _ _ <"$out/res"
    rps[$label]+="$r "
    run "$label" "--rate $rate" "${targets[@]}"
    read -r _ a b <"$out/res"
    p50[$label]+="$a "
    p99[$label]+="$b "
    echo "repeat $i $label: closed $r req/s; at $rate req/s p50 $a us, p99 $b us"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo
printf '%-9s %12s %12s %12s %14s %14s\n' "" "req/s" "p50 us" "p99 us" "req/s / direct" "p50 - direct"
for label in "${labels[@]}"; do
  case $label in *-s) base=direct-s ;; *) base=direct ;; esac
  d_rps=$(echo "${rps[$base]}" | median)
  d_p50=$(echo "${p50[$base]}" | median)
  m_rps=$(echo "${rps[$label]}" | median)
  m_p50=$(echo "${p50[$label]}" | median)
  m_p99=$(echo "${p99[$label]}" | median)
  printf '%-9s %12s %12s %12s %14s %14s\n' "$label" "$m_rps" "$m_p50" "$m_p99" \
    "$(awk -v a="$m_rps" -v b="$d_rps" 'BEGIN{printf "%.0f %%", a * 100 / b}')" \
    "$((m_p50 - d_p50)) us"
done
