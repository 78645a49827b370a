#!/usr/bin/env bash
# The README's test command, shared by .ci/run and any CI workflow. Ends with one line summing
# every test binary's result, so a reader (or CI) sees the total rather than the last binary's.
# First, the layout rules the compiler does not check (ci/check_layout.py: no import circles
# between a crate's files, no production file over 800 lines); a broken rule fails the run
# after the tests have run.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
if ! command -v python3 >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3 >/dev/null
fi
python3 ci/check_layout.py || status=$?
cargo test --workspace 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
