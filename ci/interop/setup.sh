#!/usr/bin/env bash
# Installs the third-party MCP software the interop tests start, pinned, from the registries:
# the official Python SDK (PyPI) into a venv (with `hdrhistogram`, an HdrHistogram implementation
# nobody here wrote, to check merged runs) and the TypeScript SDK with its reference
# `server-everything` (npm). Idempotent and safe to run from several test binaries at once (one
# flock). Prints the install folder on success.
#
# Usage: ci/interop/setup.sh [DIR]   (default: target/interop under the repository)
# Exit status: 0 installed (or already there); 3 a registry cannot be reached (tests then skip,
# saying so); anything else, a broken set-up (tests fail).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-${CARGO_TARGET_DIR:-target}/interop}
PY_PACKAGES=(mcp==2.3.0 uvicorn==0.38.0 pyjwt==2.10.1 cryptography==46.0.3 hdrhistogram==0.10.8)
NPM_PACKAGES=(@modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/sdk@1.32.2)
stamp="ready-$(printf '%s\n' "${PY_PACKAGES[@]}" "${NPM_PACKAGES[@]}" | md5sum | cut -c1-12)"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
exec 9>"$dir/.lock"
flock 9
if [[ -f "$dir/$stamp" ]]; then
  echo "$dir"
  exit 0
fi
reachable() { curl -sf -o /dev/null --max-time 10 "$1"; }
if ! reachable https://pypi.org/simple/mcp/ || ! reachable https://registry.npmjs.org/@modelcontextprotocol%2fsdk; then
  echo "interop set-up: PyPI or the npm registry cannot be reached" >&2
  exit 3
fi
# Python's venv and npm come from Debian when the machine lacks them.
need=()
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if ((${#need[@]})); then
  echo "interop set-up: installing ${need[*]} from Debian" >&2
  apt-get update -qq >&2 && apt-get install -y -qq "${need[@]}" >&2
fi
rm -rf "$dir/venv" "$dir/node"
python3 -m venv "$dir/venv"
"$dir/venv/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" >&2
mkdir -p "$dir/node"
(cd "$dir/node" && echo '{"private":true}' > package.json &&
  npm install --silent --no-audit --no-fund "${NPM_PACKAGES[@]}" >&2)
touch "$dir/$stamp"
echo "$dir"
