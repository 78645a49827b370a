#!/usr/bin/env bash
# Check a generated mcpfleet HTML report in a real browser (headless Chromium).
#
# Usage: ci/check-report.sh [--min-charts N] [--timeout SECONDS] [--keep-netlog] [--verbose]
#                           REPORT.html [ARTIFACT_DIR]
#
#   REPORT.html    the report to open (e.g. target/mcpfleet-runs/<stamp>/report.html)
#   ARTIFACT_DIR   where the screenshot goes, as report.png (default: the report's directory)
#   --min-charts N at least N charts (<svg>) must render (default 1)
#   --timeout S    limit for the browser session (default 60; the whole check is cut at S+30)
#   --keep-netlog  also keep Chromium's NetLog as ARTIFACT_DIR/report-netlog.json
#   --verbose      print the end of Chromium's stderr when a check fails
#
# Installs Debian's `chromium` package if `chromium` is not on PATH (apt-get; sudo when not root).
# Then ci/check_report.py (Python standard library only) drives Chromium over the DevTools
# protocol and prints one PASS/FAIL line per check: charts, screenshot, network, console; see its
# docstring for what each relies on.  Exit status: 0 all passed, 1 a check failed, 2 the browser
# session broke, 64 bad usage.  Chromium is kept off the network by its flags; nothing here needs
# the internet except the package install.
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }

script_start=$(date +%s.%N)
here=$(cd "$(dirname "$0")" && pwd)
py_args=()
positional=()
timeout_s=60
while [ $# -gt 0 ]; do
  case "$1" in
    --min-charts) [ $# -ge 2 ] || usage; py_args+=(--min-charts "$2"); shift 2 ;;
    --min-charts=*) py_args+=(--min-charts "${1#*=}"); shift ;;
    --timeout) [ $# -ge 2 ] || usage; timeout_s=$2; shift 2 ;;
    --timeout=*) timeout_s=${1#*=}; shift ;;
    --keep-netlog|--verbose) py_args+=("$1"); shift ;;
    -h|--help) usage ;;
    --) shift; positional+=("$@"); break ;;
    -*) echo "check-report: unknown option $1" >&2; usage ;;
    *) positional+=("$1"); shift ;;
  esac
done
[ ${#positional[@]} -ge 1 ] && [ ${#positional[@]} -le 2 ] || usage
report=${positional[0]}
[ -f "$report" ] || { echo "check-report: no such file: $report" >&2; exit 64; }
artifacts=${positional[1]:-$(dirname "$report")}
case "$timeout_s" in ''|*[!0-9]*) echo "check-report: --timeout takes whole seconds" >&2; exit 64 ;; esac

# --- install what is missing ------------------------------------------------------------------
apt_who=check-report
# shellcheck source=ci/chromium.sh
. "$here/chromium.sh"
echo "check-report: $(chromium --version 2>/dev/null | head -n1) ($chromium_bin)"

# --- run ----------------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/check-report.XXXXXX")  # fresh --user-data-dir, NetLog
cleanup() {
  # If the Python driver was killed before it could, end the Chromium it started: the process
  # group it recorded (Chromium leads its own group), and nothing else.
  if [ -s "$work/chromium.pgid" ]; then
    pgid=$(cat "$work/chromium.pgid")
    if kill -0 -- "-$pgid" 2>/dev/null; then kill -KILL -- "-$pgid" 2>/dev/null || true; fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$artifacts"
echo "check-report: $report -> $artifacts/report.png"
status=0
timeout --kill-after=10 "$((timeout_s + 30))" \
  python3 "$here/check_report.py" --chromium "$chromium_bin" --workdir "$work" \
  --timeout "$timeout_s" --started-at "$script_start" "${py_args[@]}" "$report" "$artifacts" \
  || status=$?
case "$status" in
  0|1|2) ;;
  124) echo "check-report: BROKEN, timed out after $((timeout_s + 30)) s - $report"; status=2 ;;
  *) echo "check-report: BROKEN, the checker ended with status $status - $report"; status=2 ;;
esac
exit "$status"
