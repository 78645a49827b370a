#!/usr/bin/env bash
# What a 2025-11-25 session costs a task-mode fleet while it idles, and what a client opening
# sessions as fast as it can does to the servers beside the one it floods. Sessions live until
# ended or idle for `session_idle` (60 s), so a greedy client's sessions are memory held by
# the fleet; the figure that matters is resident bytes per idle session, and whether an
# unrelated server stays fast while they pile up.
#   1. Idle cost: a fleet of one community server with `max_sessions` raised out of the way;
#      after 200 warm-up sessions, two batches of N (default 2000) sessions are opened
#      (`initialize` + `notifications/initialized`, 4 lanes) and left idle. Prints the fleet's
#      VmRSS before each batch, 1 s after it and 8 s after it (past `session_resident`), and
#      the bytes per session of each batch at both readings.
#   2. Flood: a fleet of two community servers at the default `max_sessions`; loadgen sends
#      `echo` to the second at 200 req/s (2 s warm-up, 15 s measured), once alone and once
#      while 6 lanes open sessions on the first for the whole run. Prints sessions opened,
#      503s past the cap, the fleet's VmRSS over time (peak and after), both loadgen
#      latencies and the servers' restarts.
# Needs `cargo build --release -p fleet -p loadgen`; FLEET=path runs another fleet binary
# (e.g. a copy built from main) against the same loadgen. Ports 34711-34712 and 34721-34723.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}/release
FLEET_BIN=${FLEET:-$T/fleet}
N=${N:-2000}
OUT=$(mktemp -d /tmp/session-flood.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

cat > "$OUT/client.py" <<'PY'
"""Session client lanes: `idle N` opens N sessions and leaves them open; `flood SECONDS`
opens sessions until the time is up. Each lane is a thread with one keep-alive connection."""
import http.client, json, sys, threading, time

port, mode, amount, lanes = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {},
    "clientInfo": {"name": "session-flood", "version": "0"}}})
DONE = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
BASE = {"content-type": "application/json", "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25"}
counts = {"opened": 0, "refused_503": 0, "other": 0, "errors": 0}
lock = threading.Lock()

def one(conn):
    conn.request("POST", "/mcp", INIT, BASE)
    r = conn.getresponse()
    r.read()
    sid = r.getheader("mcp-session-id")
    if r.status != 200 or not sid:
        return "refused_503" if r.status == 503 else "other"
    conn.request("POST", "/mcp", DONE, {**BASE, "mcp-session-id": sid})
    r = conn.getresponse()
    r.read()
    return "opened" if r.status in (200, 202) else "other"

def lane(quota, deadline):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    done = 0
    while (quota is None or done < quota) and (deadline is None or time.monotonic() < deadline):
        try:
            kind = one(conn)
        except (OSError, http.client.HTTPException):
            kind = "errors"
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        with lock:
            counts[kind] += 1
        done += kind == "opened"
    conn.close()

start = time.monotonic()
if mode == "idle":
    n = int(amount)
    quotas = [n // lanes + (i < n % lanes) for i in range(lanes)]
    threads = [threading.Thread(target=lane, args=(q, None)) for q in quotas]
else:
    threads = [threading.Thread(target=lane, args=(None, start + amount)) for _ in range(lanes)]
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.monotonic() - start
print(json.dumps({**counts, "seconds": round(elapsed, 2), "per_second": round(counts["opened"] / elapsed)}))
PY

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
start_fleet() { # name admin_port max_sessions servers...
  local name=$1 admin=$2 max=$3; shift 3
  { echo "admin_port = $admin"; echo "[server]"; echo "max_sessions = $max"
    local p; for p in "$@"; do
      printf '[[groups]]\nname = "g%s"\nprofile = "community"\ncount = 1\nfirst_port = %s\n' "$p" "$p"
    done; } > "$OUT/$name.toml"
  "$FLEET_BIN" up --spec "$OUT/$name.toml" --no-memory --no-gateway > "$OUT/$name.log" 2>&1 &
  FLEET_PID=$!
  PIDS+=("$FLEET_PID")
  local _; for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$admin/servers" > /dev/null && break; sleep 0.5; done
  sleep 2
}

echo "== idle cost: 1 community server, max_sessions 1000000, N=$N per batch"
start_fleet idle 34711 1000000 34721
python3 "$OUT/client.py" 34721 idle 200 4 > /dev/null
sleep 8
before=$(rss_kb "$FLEET_PID")
for batch in 1 2; do
  python3 "$OUT/client.py" 34721 idle "$N" 4 > "$OUT/idle$batch.json"
  echo "batch $batch: $(cat "$OUT/idle$batch.json")"
  # 1 s after: the sessions are resident; 8 s after: past `session_resident` (5 s).
  for wait in 1 7; do
    sleep "$wait"
    after=$(rss_kb "$FLEET_PID")
    echo "  VmRSS $before -> $after kB: $(( (after - before) * 1024 / N )) bytes per session"
  done
  before=$after
done
kill "$FLEET_PID"; wait "$FLEET_PID" 2>/dev/null || true

echo "== flood: 2 community servers at the default max_sessions; flood on 34722, echo on 34723"
start_fleet flood 34712 4096 34722 34723
measure() {
  "$T/loadgen" --target http://127.0.0.1:34723/mcp --tool 'echo:{"text":"hi"}' --scenario latency \
    --rate 200 --warmup 2s --run-time 15s --out "$OUT/$1" --json > "$OUT/$1.json" 2> "$OUT/$1.err"
  python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['phases'][0]; print(sys.argv[2], p['requests'], 'requests,', p['ok'], 'ok, latency ms', p['latency_ms'])" "$OUT/$1.json" "$1"
}
measure alone
echo "VmRSS before the flood: $(rss_kb "$FLEET_PID") kB"
( while kill -0 "$FLEET_PID" 2>/dev/null; do echo "$(date +%s.%N | cut -c1-14) $(rss_kb "$FLEET_PID")"; sleep 0.5; done ) > "$OUT/rss.log" 2>/dev/null &
PIDS+=("$!")
python3 "$OUT/client.py" 34722 flood 17 6 > "$OUT/flood-client.json" &
FLOOD=$!
measure flood
wait "$FLOOD"
sleep 1
echo "flood client: $(cat "$OUT/flood-client.json")"
awk '{ if ($2 > peak) peak = $2; last = $2 } END { printf "VmRSS during the flood: peak %d kB, 1 s after %d kB\n", peak, last }' "$OUT/rss.log"
curl -s http://127.0.0.1:34712/servers | python3 -c "import json,sys; s=json.load(sys.stdin)['servers']; print('restarts:', {x['id']: x['restarts'] for x in s}, 'open sessions:', {x['id']: x.get('open_sessions') for x in s})"
echo "files in $OUT"
