#!/usr/bin/env bash
# Checks deploy/: every Kubernetes manifest against the Kubernetes API schemas in strict mode
# (`kubernetes-validate` from PyPI, pinned, in a venv under target/), that the check rejects a
# manifest with an unknown field (so it can fail), the Dockerfile's shape (multi-stage, an
# unprivileged numeric USER), and, with LOADGEN and FLEET set to built binaries, a dry run of
# the Jobs' own shell commands on loopback: the shards Job's command for every completion index
# against a small `fleet up`, then the merge Job's command (merge and gate) on their files, with
# the volume paths moved to a temporary folder. No cluster or container runtime is needed.
#
# Usage: [LOADGEN=target/release/loadgen FLEET=target/release/fleet] ci/validate-manifests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${CARGO_TARGET_DIR:-target}/kube-validate
if [[ ! -x "$venv/bin/kubernetes-validate" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi
"$venv/bin/kubernetes-validate" --strict --quiet deploy/kubernetes/*.yaml
echo "manifests: $(ls deploy/kubernetes/*.yaml | wc -l) valid against Kubernetes 1.37 (strict)"

tmp=$(mktemp -d)
# Every fleet and gateway started below, stopped between the dry runs and at exit. The trap's
# status is the script's (and runs under set -e): a process already gone, or its exit status,
# must not become it.
background=()
stop_background() {
  for p in "${background[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  background=()
}
cleanup() {
  stop_background
  rm -rf "$tmp"
}
trap cleanup EXIT

# The check can fail: a field Kubernetes does not know is rejected.
sed 's/^  backoffLimit: 0$/  backoffLimit: 0\n  retryForever: true/' deploy/kubernetes/loadgen-merge.yaml >"$tmp/bad.yaml"
if "$venv/bin/kubernetes-validate" --strict --quiet "$tmp/bad.yaml" >/dev/null 2>&1; then
  echo "manifests: a Job with an unknown field passed the strict check" >&2
  exit 1
fi

froms=$(grep -c '^FROM ' deploy/Dockerfile)
user=$(awk '$1 == "USER" {u = $2} END {print u}' deploy/Dockerfile)
if ((froms < 2)) || [[ ! "$user" =~ ^[1-9][0-9]*(:[0-9]+)?$ ]]; then
  echo "deploy/Dockerfile: expected a multi-stage build ($froms FROM) ending as a numeric non-root USER ($user)" >&2
  exit 1
fi
for kept_out in target/ .git/; do
  grep -qx "$kept_out" deploy/Dockerfile.dockerignore || {
    echo "deploy/Dockerfile.dockerignore: $kept_out must stay out of the build context" >&2; exit 1; }
done
echo "Dockerfile: $froms stages, runs as $user, target/ and .git/ kept out of its context"

[[ -n "${LOADGEN:-}" && -n "${FLEET:-}" ]] || exit 0
loadgen=$(realpath "$LOADGEN")
fleet=$(realpath "$FLEET")
# The Jobs' commands, with the volumes' paths moved into $tmp.
"$venv/bin/python" - "$tmp" <<'PY'
import sys, yaml
tmp = sys.argv[1]
for job in ("loadgen-shards", "loadgen-merge"):
    with open(f"deploy/kubernetes/{job}.yaml") as f:
        doc = yaml.safe_load(f)
    script = doc["spec"]["template"]["spec"]["containers"][0]["args"][0]
    script = script.replace("/runs/", f"{tmp}/runs/").replace("/etc/mcpfleet/", f"{tmp}/etc/")
    with open(f"{tmp}/{job}.sh", "w") as f:
        f.write(script)
PY
mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/runs"
ln -s "$loadgen" "$tmp/bin/loadgen"
cp ci/gates.toml "$tmp/etc/gates.toml"
"$fleet" up --servers 2 --no-memory --no-gateway --ephemeral-ports --admin-port 0 >"$tmp/up" 2>&1 &
background+=($!)
for _ in $(seq 100); do grep -q 'http://.*/mcp' "$tmp/up" 2>/dev/null && break; sleep 0.1; done
targets=$(grep -o 'http://[0-9.]*:[0-9-]*/mcp' "$tmp/up" | tr '\n' ' ')
[[ -n "$targets" ]] || { cat "$tmp/up" >&2; exit 1; }
export PATH="$tmp/bin:$PATH" RUN_ID=dry-run SHARDS=2 TARGETS="$targets" RATE=200 USERS=8 \
  RUN_TIME=2 WARMUP=0 START_AT=$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ)
pids=()
for index in 0 1; do
  JOB_COMPLETION_INDEX=$index timeout 120 sh "$tmp/loadgen-shards.sh" >"$tmp/shard-$index.log" 2>&1 &
  pids+=($!)
done
for i in 0 1; do
  wait "${pids[$i]}" || { echo "shards Job command, index $i, failed:" >&2; cat "$tmp/shard-$i.log" >&2; exit 1; }
done
timeout 120 sh "$tmp/loadgen-merge.sh" >"$tmp/merge.log" 2>&1 || {
  echo "merge Job command failed:" >&2; cat "$tmp/merge.log" >&2; exit 1; }
[[ -f "$tmp/runs/dry-run/merged/report.html" ]] || { echo "no merged report" >&2; exit 1; }
echo "dry run: the shards Job's command (2 shards) and the merge Job's (merge, gate) passed on loopback"
stop_background

# The fleet StatefulSet's commands for two pods: the init container makes the peer repository,
# each node publishes its memory there under its pod name. Volumes move into $tmp, 0.0.0.0 to
# loopback, and each node gets 2 servers on ephemeral ports (the manifest's own ports would
# collide on one machine).
"$venv/bin/python" - "$tmp" <<'PY'
import sys, yaml
tmp = sys.argv[1]
with open("deploy/kubernetes/fleet-nodes.yaml") as f:
    sets = [d for d in yaml.safe_load_all(f) if d and d["kind"] == "StatefulSet"]
pod = sets[0]["spec"]["template"]["spec"]
with open("deploy/kubernetes/fleet-gateway.yaml") as f:
    gateway = [d for d in yaml.safe_load_all(f) if d and d["kind"] == "Deployment"][0]
gateway = gateway["spec"]["template"]["spec"]["containers"][0]["args"]
for name, args in (("init-peer", pod["initContainers"][0]["args"]),
                   ("node", pod["containers"][0]["args"]), ("gateway", gateway)):
    with open(f"{tmp}/{name}.args", "w") as f:
        f.write("\0".join(args))
PY
mkdir -p "$tmp/peer" "$tmp/bin"
ln -sf "$fleet" "$tmp/bin/fleet"
mapfile -d '' -t init <"$tmp/init-peer.args"
init=("${init[@]//\/peer\//$tmp/peer/}")
for pod in fleet-0 fleet-1; do
  PATH="$tmp/bin:$PATH" "${init[@]}" >/dev/null || { echo "init container failed for $pod" >&2; exit 1; }
  mapfile -d '' -t node <"$tmp/node.args"
  for i in "${!node[@]}"; do
    node[$i]=${node[$i]//\$(POD_NAME)/$pod}
    node[$i]=${node[$i]//0.0.0.0/127.0.0.1}
    node[$i]=${node[$i]//\/peer\//$tmp/peer/}
    node[$i]=${node[$i]//\/memory\//$tmp/$pod/}
  done
  mkdir -p "$tmp/$pod"
  PATH="$tmp/bin:$PATH" "${node[@]}" --servers 2 --ephemeral-ports --admin-port 0 >"$tmp/$pod.log" 2>&1 &
  background+=($!)
done
published() {
  local out
  out=$("$fleet" memory init-peer "$tmp/peer/memory.git") \
    && grep -q 'node fleet-0' <<<"$out" && grep -q 'node fleet-1' <<<"$out"
}
for _ in $(seq 150); do published && break; sleep 0.2; done
published || {
  echo "the StatefulSet's nodes did not publish to the peer repository:" >&2
  cat "$tmp/fleet-0.log" "$tmp/fleet-1.log" >&2; exit 1; }
echo "dry run: the fleet StatefulSet's commands (init container, two nodes) published both nodes' memory to the peer"

# The gateway Deployment's command over node fleet-0, found through DNS as in the cluster
# (localhost instead of the headless Service), called by the Service's name.
admin_port=$(grep -o 'admin *http://127.0.0.1:[0-9]*' "$tmp/fleet-0.log" | grep -o '[0-9]*$')
mapfile -d '' -t gw <"$tmp/gateway.args"
for i in "${!gw[@]}"; do
  gw[$i]=${gw[$i]//0.0.0.0/127.0.0.1}
  gw[$i]=${gw[$i]/#dns:fleet-nodes.*:7900/dns:localhost:$admin_port}
  [[ "${gw[$i]}" == 7990 ]] && gw[$i]=0
done
PATH="$tmp/bin:$PATH" "${gw[@]}" >"$tmp/gateway.out" 2>"$tmp/gateway.log" &
background+=($!)
for _ in $(seq 150); do grep -q 'gateway *http://' "$tmp/gateway.out" && break; sleep 0.2; done
mcp=$(grep -o 'http://127.0.0.1:[0-9]*/mcp' "$tmp/gateway.out" | head -1)
[[ -n "$mcp" ]] || { echo "the gateway Deployment's command did not start:" >&2; cat "$tmp/gateway.log" >&2; exit 1; }
"$venv/bin/python" - "$mcp" <<'PY' || { echo "the gateway did not list the node's tools:" >&2; cat "$tmp/gateway.log" >&2; exit 1; }
import json, sys, urllib.request
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {
    "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientCapabilities": {},
              "io.modelcontextprotocol/clientInfo": {"name": "validate-manifests", "version": "1"}}}}).encode()
req = urllib.request.Request(sys.argv[1], data=body, headers={
    "Host": "fleet-gateway.mcpfleet.svc", "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/list"})
tools = json.load(urllib.request.urlopen(req, timeout=10))["result"]["tools"]
assert any(t["name"] == "community__echo" for t in tools), tools
PY
stop_background
echo "dry run: the gateway Deployment's command found node fleet-0 in DNS and served its tools by the Service's name"
