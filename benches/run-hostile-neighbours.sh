#!/usr/bin/env bash
# Whether hostile neighbours can stall, bloat or take over a fleet: `echo` latency on one
# community server that nobody attacks, measured by loadgen once alone and once while every
# attack of benches/hostile.py runs at once against the servers beside it (slowloris, idle and
# slow-body connections, sessions opened in a loop, connections spread over the ports until the
# fleet's process reaches its descriptor limit, and the security tools' CPU bombs). The fleet is
# task mode with a lowered `ulimit -n` (so the attacker can reach it) and a fast health monitor
# (so a prober that fails under the attack shows as restarts within the run). Prints both runs'
# latency, each attack's summary, every server's restarts, the fleet's descriptors and memory at
# their peak, and its WARN/ERROR lines (a log flood is a finding too); then a short summary block
# to paste into benches/README.md. Every parameter is an environment variable (see below).
# Needs `cargo build --release -p fleet -p loadgen` and python3; the ports below free.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}/release
RUN_TIME=${RUN_TIME:-20}            # loadgen's measured seconds per run (after a 2 s warm-up)
RATE=${RATE:-200}                   # loadgen's echo calls per second
FLEET_NOFILE=${FLEET_NOFILE:-4096}  # the fleet's `ulimit -n`
CONNS=${CONNS:-500}                 # slowloris, idle and slow-body connections, each
SPREAD_MAX=${SPREAD_MAX:-$((FLEET_NOFILE + 2000))}
INTERVAL=${INTERVAL:-2}             # seconds between the bytes slowloris and slow-body drip
REOPEN_AFTER=${REOPEN_AFTER:-0.05}  # seconds before the attacker reopens a closed connection
LANES=${LANES:-8}                   # session lanes
SESSION_RATE=${SESSION_RATE:-1000}  # initialize calls per second in all (0: unbounded)
BOMB_LANES=${BOMB_LANES:-2}
ATTACKS=${ATTACKS:-slowloris idle slow-body sessions spread bombs}  # any of these
SPEC_EXTRA=${SPEC_EXTRA:-}          # TOML appended to the fleet's spec, e.g. "[server]\n..."
RAMP=${RAMP:-0}                     # seconds the attacks run before loadgen starts (0: its
                                    # warm-up and first seconds overlap the attacks' ramp-up)
HEALTH_INTERVAL=${HEALTH_INTERVAL:-500}
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-500}
ADMIN_PORT=${ADMIN_PORT:-31637}
FIRST_PORT=${FIRST_PORT:-31640}     # community: +0 echo (not attacked), +1..+5 attacked
SEC_PORT=${SEC_PORT:-31650}         # security: +0 bombs, +1 spread only
ATTACK_FOR=$((RAMP + 2 + RUN_TIME + 3))

for port in "$ADMIN_PORT" $(seq "$FIRST_PORT" $((FIRST_PORT + 5))) "$SEC_PORT" $((SEC_PORT + 1)); do
  python3 -c "import socket,sys; socket.create_server(('127.0.0.1', int(sys.argv[1])))" "$port" \
    2> /dev/null || { echo "port $port is in use; set ADMIN_PORT/FIRST_PORT/SEC_PORT" >&2; exit 2; }
done

# hostile.py's arguments, checked before anything starts.
ARGS=(--for "$ATTACK_FOR" --conns "$CONNS" --interval "$INTERVAL" --lanes "$LANES"
  --reopen-after "$REOPEN_AFTER"
  --session-rate "$SESSION_RATE" --spread-max "$SPREAD_MAX" --bomb-lanes "$BOMB_LANES")
for attack in $ATTACKS; do
  case $attack in
    slowloris) ARGS+=(--slowloris $((FIRST_PORT + 1))) ;;
    idle) ARGS+=(--idle $((FIRST_PORT + 2))) ;;
    slow-body) ARGS+=(--slow-body $((FIRST_PORT + 3))) ;;
    sessions) ARGS+=(--sessions $((FIRST_PORT + 4))) ;;
    spread) ARGS+=(--spread "$((FIRST_PORT + 1))-$((FIRST_PORT + 5)),$SEC_PORT-$((SEC_PORT + 1))")
      ;;
    bombs) ARGS+=(--bombs "$SEC_PORT") ;;
    *) echo "unknown attack in ATTACKS: $attack" >&2; exit 2 ;;
  esac
done

OUT=$(mktemp -d /tmp/hostile-neighbours.XXXXXX)
cat > "$OUT/fleet.toml" <<TOML
admin_port = $ADMIN_PORT
[health]
interval = $HEALTH_INTERVAL
timeout = $HEALTH_TIMEOUT
[[groups]]
name = "community"
profile = "community"
count = 6
first_port = $FIRST_PORT
[[groups]]
name = "security"
profile = "security"
count = 2
first_port = $SEC_PORT
TOML
printf '%b\n' "$SPEC_EXTRA" >> "$OUT/fleet.toml"

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null || true; done; }
trap cleanup EXIT
# `ulimit -n` sets the hard limit too, so the fleet cannot raise it back.
(ulimit -n "$FLEET_NOFILE" && exec "$T/fleet" up --spec "$OUT/fleet.toml" --no-memory \
  --no-gateway) > "$OUT/fleet.log" 2>&1 &
FLEET=$!
PIDS+=("$FLEET")
ADMIN=http://127.0.0.1:$ADMIN_PORT
servers() { curl -sf --max-time "${1:-10}" "$ADMIN/servers"; }
for _ in $(seq 1 60); do
  servers 2 2> /dev/null | python3 -c "import json,sys
s = json.load(sys.stdin)['servers']; sys.exit(not s or any(x['state'] != 'healthy' for x in s))" \
    2> /dev/null && break
  sleep 0.5
done
servers > "$OUT/servers.before.json"

measure() {
  local rc=0
  timeout $((RUN_TIME + 60)) "$T/loadgen" --target "http://127.0.0.1:$FIRST_PORT/mcp" \
    --tool 'echo:{"text":"hi"}' --scenario latency --rate "$RATE" --warmup 2s \
    --run-time "${RUN_TIME}s" --out "$OUT/$1" --json > "$OUT/$1.json" 2> "$OUT/$1.err" || rc=$?
  echo "$rc" > "$OUT/$1.rc"
}
# The fleet's open descriptors and resident memory every half second while it runs.
sample() {
  local end=$((SECONDS + ATTACK_FOR + RUN_TIME + 120))
  while [ $SECONDS -lt $end ] && [ -d "/proc/$FLEET" ]; do
    echo "$(find "/proc/$FLEET/fd" -mindepth 1 2> /dev/null | wc -l)" \
      "$(awk '/VmRSS/ {print $2}' "/proc/$FLEET/status" 2> /dev/null || echo 0)"
    sleep 0.5
  done
}

echo "fleet up (ulimit -n $FLEET_NOFILE, pid $FLEET); echo alone for ${RUN_TIME}s..."
measure alone
sample > "$OUT/samples" &
PIDS+=($!)
python3 benches/hostile.py "${ARGS[@]}" > "$OUT/attacks.jsonl" 2> "$OUT/attacks.err" &
ATTACKER=$!
PIDS+=("$ATTACKER")
echo "attacks for ${ATTACK_FOR}s; echo attacked from ${RAMP}s in..."
# Whether the admin API still answers halfway through the attacks.
(sleep $((ATTACK_FOR / 2)) && { servers 3 || echo '{"error": "no answer in 3 s"}'; } \
  > "$OUT/servers.during.json" 2> /dev/null) &
PIDS+=($!)
sleep "$RAMP"
measure attacked
wait "$ATTACKER" || echo "attacker exited with status $?" >> "$OUT/attacks.err"
sleep 2
servers 10 > "$OUT/servers.after.json" 2> /dev/null || echo '{"error": "no answer in 10 s"}' \
  > "$OUT/servers.after.json"
if [ -d "/proc/$FLEET" ]; then echo running > "$OUT/fleet.state"; else
  wait "$FLEET" && echo "exited 0" > "$OUT/fleet.state" || echo "exited $?" > "$OUT/fleet.state"
fi

OUT="$OUT" FLEET_NOFILE="$FLEET_NOFILE" RUN_TIME="$RUN_TIME" RATE="$RATE" CONNS="$CONNS" \
  SPREAD_MAX="$SPREAD_MAX" ATTACKS="$ATTACKS" LANES="$LANES" SESSION_RATE="$SESSION_RATE" \
  HEALTH="$HEALTH_INTERVAL/$HEALTH_TIMEOUT" COMMIT="$(git rev-parse --short HEAD)" python3 - <<'PY'
import collections, datetime, json, os, re
out = os.environ["OUT"]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"error": f"{name}: {e}"}
def echo(run):
    j, rc = load(f"{run}.json"), open(os.path.join(out, f"{run}.rc")).read().strip()
    if "phases" not in j or not j["phases"]:
        err = open(os.path.join(out, f"{run}.err")).read().strip().splitlines()[-1:]
        return None, False, f"echo {run}: no figures (loadgen exit {rc}; {err})"
    p = j["phases"][0]; l = p["latency_ms"]
    errors = ", ".join(f"{k} {v}" for k, v in p["errors"].items() if v) or "none"
    # Every call the open model planned sent and answered: failures are worse than slowness.
    all_ok = p["ok"] >= float(os.environ["RATE"]) * float(os.environ["RUN_TIME"])
    return l["p99"], all_ok, (
        f"echo {run}: {p['requests']} requests, {p['ok']} ok (errors: {errors}), p50 {l['p50']} "
        f"ms, p99 {l['p99']} ms, p99.9 {l['p99_9']} ms, max {l['max']} ms (loadgen exit {rc})")
def restarts(name):
    j = load(name)
    if "servers" not in j:
        return None, j.get("error", "?")
    return ({s["id"]: s["restarts"] for s in j["servers"]},
            {s["id"]: s["last_error"] for s in j["servers"] if s["last_error"]})
levels = collections.Counter(); top = collections.Counter()
for line in open(os.path.join(out, "fleet.log"), errors="replace"):
    m = re.search(r"\b(WARN|ERROR)\b\s+(.*)", line)
    if m:
        levels[m.group(1)] += 1
        top[re.sub(r"\d+", "N", m.group(0))[:140]] += 1
fds, rss = [], []
for line in open(os.path.join(out, "samples")):
    parts = line.split()
    if len(parts) == 2:
        fds.append(int(parts[0])); rss.append(int(parts[1]))
_, _, alone = echo("alone"); p99, all_ok, attacked = echo("attacked")
before, _ = restarts("servers.before.json"); after, errors = restarts("servers.after.json")
during = load("servers.during.json")
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
e = os.environ
print(f"\n==== hostile neighbours, {now} UTC, commit {e['COMMIT']} ====")
print(f"fleet: task mode, 6 community + 2 security, ulimit -n {e['FLEET_NOFILE']}, health "
      f"interval/timeout {e['HEALTH']} ms; loadgen {e['RATE']}/s for {e['RUN_TIME']} s; attacks "
      f"{e['ATTACKS']}: {e['CONNS']} conns each, spread up to {e['SPREAD_MAX']}, "
      f"{e['LANES']} session lanes at {e['SESSION_RATE']}/s")
print(alone); print(attacked)
for line in open(os.path.join(out, "attacks.jsonl")):
    print("attack:", line.strip())
print("restarts before the attack:", before)
print("restarts after:", after, f"(total {sum(after.values())})" if after else "",
      "| last errors:", errors)
print("admin GET /servers halfway through the attacks:",
      "answered" if "servers" in during else during.get("error"))
fds, rss = fds or [0], rss or [0]
print(f"fleet: {open(os.path.join(out, 'fleet.state')).read().strip()}, descriptors "
      f"{fds[0]} at the start of the attack, max {max(fds)} of {e['FLEET_NOFILE']}; RSS "
      f"{rss[0] / 1024:.0f} MB at the start, max {max(rss) / 1024:.0f} MB")
print(f"fleet log: {levels['WARN']} WARN, {levels['ERROR']} ERROR lines; most frequent:")
for text, n in top.most_common(4):
    print(f"  {n} x {text}")
restarted = after is None or any(after.get(k, 0) > v for k, v in (before or {}).items())
fast = p99 is not None and p99 < 50
print(f"verdict: echo p99 under attack < 50 ms: {'met' if fast else 'NOT met'}; every echo "
      f"call answered: {'met' if all_ok else 'NOT met'}; no server restarted: "
      f"{'NOT met' if restarted else 'met'}")
print(f"files in {out}")
PY
