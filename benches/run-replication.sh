#!/usr/bin/env bash
# Memory replication between three fleet nodes on one machine: three `fleet up` processes, each
# with its own memory repository, publishing to and merging from one peer repository. loadgen's
# sync scenario over the three nodes' admin APIs writes RATE writes/s (spread over every server
# of every node: RATE/3 per node) for SECS s and reads each write back on a server of another
# node, waiting for the writer node's version: its lag is the replication lag (write
# acknowledged on node A -> visible on node B), read round trip included.
#   Part 1: the storm alone.   Part 2: the storm again, node 3 SIGKILLed a third of the way in
#   and started again (same repository and ports) at two thirds.
# After each part the nodes are stopped and compared: `memory-compare` says whether all three
# hold the same graph, `fleet memory verify` and `git fsck --full` check each repository.
# Aims (benches/README.md): lag p99 <= 2 s, 0 acknowledged writes lost, identical graphs, fsck
# clean (the peer's too); after the kill, node 3 converges and nothing acknowledged is lost.
# Usage: benches/run-replication.sh [SERVERS per node] [RATE] [SECS] [PORT BASE]
#   PARTS="storm" runs part 1 only; BIN=DIR takes fleet, loadgen and memory-compare from DIR
#   (another build, for side-by-side runs) instead of building this checkout's.
# (fixed ports, so node 3 comes back where loadgen looks for it: PORT BASE + 1..3 for the admin
# APIs, + 100..399 for the servers; below the kernel's ephemeral range)
set -euo pipefail
cd "$(dirname "$0")/.."
servers=${1:-20}
rate=${2:-900}
secs=${3:-20}
base=${4:-21000}
command -v git >/dev/null || { echo "installing git"; apt-get install -y -qq git >/dev/null; }
parts=${PARTS:-storm kill}
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p fleet -p loadgen -p benches
  BIN=target/release
fi
out=$(mktemp -d)
declare -A pids
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT
wait_line() { # $1: log, $2: first word of the line to wait for
  for _ in $(seq 600); do awk -v w="$2" '$1 == w {f=1} END{exit !f}' "$1" 2>/dev/null && return; sleep 0.1; done
  cat "$1"; exit 1
}
start_node() { # $1: node number, $2: part
  local n=$1
  cat >"$out/spec-$n.toml" <<EOF
admin_port = $((base + n))
gateway_port = 0
[[groups]]
name = "community"
profile = "community"
count = $servers
first_port = $((base + 100 * n))
EOF
  "$BIN"/fleet up --spec "$out/spec-$n.toml" --no-gateway \
    --memory-repo "$out/$2/node-$n" --memory-peer "$out/$2/peer.git" --memory-node-id "node-$n" \
    --admin-token-file "$out/token-$n" >>"$out/$2/node-$n.log" 2>&1 &
  pids[$n]=$!
  wait_line "$out/$2/node-$n.log" admin
}
stop_nodes() { # node 3 restarted in a subshell is not this shell's child: wait by polling
  for n in 1 2 3; do kill "${pids[$n]}" 2>/dev/null || true; done
  for n in 1 2 3; do
    wait "${pids[$n]}" 2>/dev/null || true
    while kill -0 "${pids[$n]}" 2>/dev/null; do sleep 0.1; done
  done
}
storm() { # $1: part; runs loadgen's sync scenario over the three nodes, prints its figures
  local status=0
  "$BIN"/loadgen --scenario sync --sync-rate "$rate" --sync-time "$secs" \
    --target "http://127.0.0.1:$((base + 1))" --target "http://127.0.0.1:$((base + 2))" \
    --target "http://127.0.0.1:$((base + 3))" --out "$out/$1/run" >"$out/$1/loadgen.log" 2>&1 \
    || status=$?
  # 1 is a claim of the seed report failing: the figures are still measured.
  [ "$status" -le 1 ] || { tail -30 "$out/$1/loadgen.log" >&2; exit 1; }
  python3 - "$out/$1/run/run.json" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))["sync"]["figures"]
c = f["check"]
ms = lambda h, q: h[q] / 1000
print(f"  {f['servers']} servers on {f['nodes']} nodes; {f['writes']} writes at {f['achieved_wps']:.0f}/s, "
      f"{f['acked']} acknowledged, failed {dict(f['failed']) or 'none'}")
print(f"  replication lag (ack on one node -> read on another): p50 {ms(f['lag_us'], 'p50'):.0f} ms, "
      f"p99 {ms(f['lag_us'], 'p99'):.0f} ms, max {ms(f['lag_us'], 'max'):.0f} ms over {f['visible']} writes; "
      f"not visible {dict(f['visibility_failures']) or 'none'}")
print(f"  ack p50 {ms(f['ack_us'], 'p50'):.1f} ms, p99 {ms(f['ack_us'], 'p99'):.1f} ms; machine busy "
      f"{f['cpu']['machine_busy_percent']:.0f} %" if f.get('cpu') else "")
print(f"  final check on {len(c['servers'])} servers: {c['acked']} acknowledged, lost {c['lost']}, "
      f"complete {c['complete']}, read errors {c['read_errors']}, node versions {c.get('node_versions', {})}")
PY
}
settle_and_compare() { # $1: part; lets the nodes merge, stops them, compares and checks
  # Converged: every node has merged every other node's whole published history, and that is
  # the other node's own version (nothing left to publish), twice in a row.
  python3 - "$base" <<'PY' | sed 's/^/  /'
import json, sys, time, urllib.request
base = int(sys.argv[1])
def view(n):
    with urllib.request.urlopen(f"http://127.0.0.1:{base + n}/servers", timeout=5) as r:
        return json.load(r)["memory"]
start, stable = time.time(), 0
while time.time() - start < 120:
    m = {f"node-{n}": view(n) for n in (1, 2, 3)}
    done = all(
        other["merged"] == other["version"] == m[other["node"]]["committed_version"]
        for v in m.values() for other in v["nodes"]
    ) and all(len(v["nodes"]) == 2 for v in m.values())
    stable = stable + 1 if done else 0
    if stable == 2:
        print(f"converged {time.time() - start:.1f} s after the storm: versions "
              + ", ".join(f"{k} {v['committed_version']}" for k, v in m.items()))
        break
    time.sleep(0.5)
else:
    print("NOT converged within 120 s: " + json.dumps({k: v["nodes"] for k, v in m.items()}))
PY
  stop_nodes
  "$BIN"/memory-compare "$out/$1"/node-{1,2,3} | sed 's/^/  /'
  for n in 1 2 3; do
    "$BIN"/fleet memory verify --memory-repo "$out/$1/node-$n" >"$out/$1/verify-$n.log" 2>&1 \
      && echo "  node-$n: fleet memory verify ok" \
      || { echo "  node-$n: fleet memory verify FAILED"; sed 's/^/    /' "$out/$1/verify-$n.log"; }
    git -C "$out/$1/node-$n" fsck --full --no-progress >"$out/$1/fsck-$n.log" 2>&1 \
      && echo "  node-$n: git fsck --full clean" \
      || { echo "  node-$n: git fsck --full FAILED"; sed 's/^/    /' "$out/$1/fsck-$n.log"; }
  done
  git -C "$out/$1/peer.git" fsck --full --no-progress >"$out/$1/fsck-peer.log" 2>&1 \
    && echo "  peer: git fsck --full clean, $(ls "$out/$1/peer.git/objects/pack" | grep -c '\.idx$') packs" \
    || { echo "  peer: git fsck --full FAILED"; sed 's/^/    /' "$out/$1/fsck-peer.log"; }
}

echo "3 nodes x $servers servers (task mode) on $(nproc) CPUs; $rate writes/s for $secs s; load average $(cut -d' ' -f1 /proc/loadavg)"
for part in $parts; do
  mkdir -p "$out/$part"
  "$BIN"/fleet memory init-peer "$out/$part/peer.git" >/dev/null
  for n in 1 2 3; do start_node "$n" "$part"; done
  echo
  if [ "$part" = storm ]; then
    echo "part 1: the storm"
    storm "$part"
  else
    echo "part 2: the storm, node 3 SIGKILLed at $((secs / 3 + 1)) s and started again at $((2 * secs / 3 + 1)) s"
    (
      sleep $((secs / 3 + 1)); kill -9 "${pids[3]}"
      sleep $((secs / 3)); start_node 3 "$part"; echo "${pids[3]}" >"$out/node3.pid"
    ) &
    killer=$!
    storm "$part"
    wait "$killer"
    pids[3]=$(cat "$out/node3.pid")
    grep -h "replayed acknowledged ops" "$out/$part/node-3.log" | tail -1 | sed 's/^/  node-3 restart: /' || true
  fi
  settle_and_compare "$part"
done
