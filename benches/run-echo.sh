#!/usr/bin/env bash
# Side-by-side throughput of `echo` tools/call on one fleet server (stateless 2026-07-28 path
# and 2025-11-25 session path) against a bare axum JSON echo, all driven by wrk on loopback in
# one run. Usage: [WRK_THREADS=10] benches/run-echo.sh [SECONDS_PER_RUN] [CONNECTIONS...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
shift || true
threads=${WRK_THREADS:-10}
conns=("${@:-10 100}")
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p benches --bin echo-servers
out=$(mktemp -d)
target/release/echo-servers --seconds $((secs * 20 + 60)) >"$out/urls" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$out"' EXIT
for _ in $(seq 100); do grep -q '^bare' "$out/urls" 2>/dev/null && break; sleep 0.1; done
fleet_url=$(awk '/^fleet/{print $2}' "$out/urls")
bare_url=$(awk '/^bare/{print $2}' "$out/urls")
meta='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
call='"name":"echo","arguments":{"text":"hello"}'

lua() { # $1 file, $2 body, rest: headers as name=value
  local f=$1 body=$2; shift 2
  { echo 'wrk.method = "POST"'
    printf 'wrk.body = [[%s]]\n' "$body"
    echo 'wrk.headers["Content-Type"] = "application/json"'
    echo 'wrk.headers["Accept"] = "application/json, text/event-stream"'
    for h in "$@"; do printf 'wrk.headers["%s"] = "%s"\n' "${h%%=*}" "${h#*=}"; done
  } >"$f"
}
lua "$out/bare.lua" "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{$call}}"
lua "$out/stateless.lua" "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{$meta,$call}}" \
  "MCP-Protocol-Version=2026-07-28" "Mcp-Method=tools/call" "Mcp-Name=echo"
# The session path: one 2025-11-25 session per wrk thread (a session is served by one rmcp
# worker, so a single shared session would measure that worker, not the server).
session() { # prints a fresh, initialized session id
  local sid
  sid=$(curl -s -D - -o /dev/null "$fleet_url" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wrk","version":"0"}}}' \
    | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}' | tr -d '\r')
  curl -s -o /dev/null "$fleet_url" -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -H "mcp-session-id: $sid" -H 'mcp-protocol-version: 2025-11-25' -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  echo "$sid"
}
lua "$out/session.lua" "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{$call}}" \
  "MCP-Protocol-Version=2025-11-25"
{ printf 'local sids = {'
  for _ in $(seq "$threads"); do printf '"%s",' "$(session)"; done
  echo '}'
  cat <<'LUA'
local n = 0
function setup(thread) n = n + 1; thread:set("sid", sids[n]) end
function init(args)
  wrk.headers["Mcp-Session-Id"] = sid
  local req = wrk.format()
  request = function() return req end
end
LUA
} >>"$out/session.lua"

printf '%-10s %5s %12s %10s %10s %8s\n' path conns req/s p50 p99 non2xx
for c in ${conns[@]}; do
  for path in bare stateless session; do
    url=$fleet_url; [ $path = bare ] && url=$bare_url
    wrk -t"$threads" -c"$c" -d"${secs}s" --latency -s "$out/$path.lua" "$url" >"$out/$path.txt"
    rps=$(awk '/^Requests\/sec/{print $2}' "$out/$path.txt")
    p50=$(awk '$1=="50%"{print $2}' "$out/$path.txt")
    p99=$(awk '$1=="99%"{print $2}' "$out/$path.txt")
    bad=$(awk '/Non-2xx/{print $5}' "$out/$path.txt")
    printf '%-10s %5s %12s %10s %10s %8s\n' "$path" "$c" "$rps" "$p50" "$p99" "${bad:-0}"
  done
done
