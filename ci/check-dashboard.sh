#!/usr/bin/env bash
# Start a fleet and check its live dashboard in a real browser (headless Chromium).
#
# Usage: ci/check-dashboard.sh [--servers N] [--timeout SECONDS] [--screenshot PATH] [--verbose]
#                              [--load LOADGEN_BINARY] FLEET_BINARY
#
#   FLEET_BINARY     the `fleet` binary to run (e.g. target/release/fleet)
#   --servers N      servers to start, one dashboard cell each (default 500)
#   --timeout S      limit for the browser session (default 90; the check is cut at S+30)
#   --screenshot P   also save a PNG of the dashboard with every server healthy at P
#   --load BIN       first drive 300 req/s of traffic at the fleet with this loadgen for 30 s
#                    (it goes on during the check), so the charts have something to show
#   --verbose        print the end of Chromium's stderr when a check fails
#
# Runs `FLEET_BINARY up` on free loopback ports with its state in a temporary directory, waits
# (at most 75 s) for the one-time login URL it prints on stdout with the other addresses once
# healthy (a line `  dashboard  http://127.0.0.1:PORT/#token=...`), and runs
# ci/check_dashboard.py (Python standard library only), which drives Chromium over the DevTools
# protocol and prints one PASS/FAIL line per check: login, cells, layout, screenshot, frames,
# kill-api, kill-page, origin, console, network; see its docstring for the page contract.
# The fleet is always stopped at the end (SIGTERM; SIGKILL after 15 s).  Installs Debian's
# `chromium` package if `chromium` is not on PATH (apt-get; sudo when not root).  Exit status:
# 0 all passed, 1 a check failed, 2 the browser session or the fleet broke, 64 bad usage.
# Chromium is kept off the network by its flags (only 127.0.0.1 resolves); nothing here needs
# the internet except the package install.
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }

script_start=$(date +%s.%N)
here=$(cd "$(dirname "$0")" && pwd)
py_args=()
positional=()
servers=500
loadgen=
timeout_s=90
startup_s=60
while [ $# -gt 0 ]; do
  case "$1" in
    --servers) [ $# -ge 2 ] || usage; servers=$2; shift 2 ;;
    --servers=*) servers=${1#*=}; shift ;;
    --timeout) [ $# -ge 2 ] || usage; timeout_s=$2; shift 2 ;;
    --timeout=*) timeout_s=${1#*=}; shift ;;
    --screenshot) [ $# -ge 2 ] || usage; py_args+=(--screenshot "$2"); shift 2 ;;
    --screenshot=*) py_args+=(--screenshot "${1#*=}"); shift ;;
    --verbose) py_args+=("$1"); shift ;;
    --load) [ $# -ge 2 ] || usage; loadgen=$2; shift 2 ;;
    -h|--help) usage ;;
    --) shift; positional+=("$@"); break ;;
    -*) echo "check-dashboard: unknown option $1" >&2; usage ;;
    *) positional+=("$1"); shift ;;
  esac
done
[ ${#positional[@]} -eq 1 ] || usage
fleet=${positional[0]}
case "$fleet" in */*) ;; *) fleet=$(command -v "$fleet" || echo "$fleet") ;; esac
[ -x "$fleet" ] && [ -f "$fleet" ] || { echo "check-dashboard: not an executable file: $fleet" >&2; exit 64; }
case "$servers" in ''|*[!0-9]*|0) echo "check-dashboard: --servers takes a whole number >= 1" >&2; exit 64 ;; esac
case "$timeout_s" in ''|*[!0-9]*) echo "check-dashboard: --timeout takes whole seconds" >&2; exit 64 ;; esac

# --- install what is missing ------------------------------------------------------------------
apt_who=check-dashboard
# shellcheck source=ci/chromium.sh
. "$here/chromium.sh"
echo "check-dashboard: $("$chromium_bin" --version 2>/dev/null | head -n1) ($chromium_bin)"

# --- start the fleet ----------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/check-dashboard.XXXXXX")  # fleet state and output, browser profile
fleet_pid=
stop_fleet() {
  [ -n "$fleet_pid" ] || return 0
  if kill -0 "$fleet_pid" 2>/dev/null; then
    kill -TERM "$fleet_pid" 2>/dev/null || true
    local i
    for i in $(seq 150); do
      kill -0 "$fleet_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$fleet_pid" 2>/dev/null; then
      echo "check-dashboard: the fleet did not stop within 15 s of SIGTERM; killing it" >&2
      # It leads its own process group (setsid below): its server processes go with it.
      kill -KILL -- "-$fleet_pid" 2>/dev/null || kill -KILL "$fleet_pid" 2>/dev/null || true
    fi
  fi
  wait "$fleet_pid" 2>/dev/null || true
  fleet_pid=
}
checker_pid=
load_pid=
cleanup() {
  if [ -n "$load_pid" ]; then kill -INT "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; fi
  if [ -n "$checker_pid" ] && kill -0 "$checker_pid" 2>/dev/null; then
    kill -TERM "$checker_pid" 2>/dev/null || true  # timeout(1) passes it on to the checker
    wait "$checker_pid" 2>/dev/null || true
  fi
  stop_fleet
  # If the Python driver was killed before it could, end the Chromium it started: the process
  # group it recorded (Chromium leads its own group), and nothing else.
  if [ -s "$work/browser/chromium.pgid" ]; then
    pgid=$(cat "$work/browser/chromium.pgid")
    if kill -0 -- "-$pgid" 2>/dev/null; then kill -KILL -- "-$pgid" 2>/dev/null || true; fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fleet_tail() {
  echo "check-dashboard: the fleet's stdout (last lines):"
  tail -n 15 "$work/fleet.stdout" 2>/dev/null | sed 's/token=[^[:space:]&]*/token=.../; s/^/    /'
  echo "check-dashboard: the fleet's stderr (last lines):"
  tail -n 25 "$work/fleet.stderr" 2>/dev/null | sed 's/token=[^[:space:]&]*/token=.../; s/^/    /'
}

# The fleet picks its own admin and gateway ports (0): ports chosen here and bound by the fleet a
# moment later could be taken meanwhile by whatever else runs (the tests start fleets beside it).
echo "check-dashboard: starting $fleet up --servers $servers (admin and gateway on ports the kernel picks)"
setsid "$fleet" up --servers "$servers" --ephemeral-ports --admin-port 0 \
  --gateway-port 0 --admin-token-file "$work/token" --memory-repo "$work/memory" \
  --startup-timeout "$startup_s" >"$work/fleet.stdout" 2>"$work/fleet.stderr" </dev/null &
fleet_pid=$!

# The one-time login URL, printed once the fleet is healthy: "  dashboard  http://.../#token=...".
# It comes with the lines that follow "N/N healthy in S s"; 5 s after that line it is not coming.
login_url=
wait_s=$((startup_s + 15))
deadline=$(( $(date +%s) + wait_s ))
healthy_at=
while :; do
  login_url=$(sed -nE 's/^[[:space:]]*dashboard[[:space:]]+(http:\/\/[^[:space:]]+).*/\1/p' "$work/fleet.stdout" | head -n1)
  [ -n "$login_url" ] && break
  if [ -z "$healthy_at" ] && grep -qE '^[0-9]+/[0-9]+ healthy in' "$work/fleet.stdout"; then
    healthy_at=$(date +%s)
  fi
  if [ -n "$healthy_at" ] && [ "$(date +%s)" -ge $((healthy_at + 5)) ]; then
    echo "check-dashboard: BROKEN, the fleet is up but printed no 'dashboard http://...' line"
    fleet_tail
    exit 2
  fi
  if ! kill -0 "$fleet_pid" 2>/dev/null; then
    status=0; wait "$fleet_pid" || status=$?; fleet_pid=
    echo "check-dashboard: BROKEN, the fleet exited (status $status) before printing its dashboard URL"
    fleet_tail
    exit 2
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "check-dashboard: BROKEN, no 'dashboard http://...' line from the fleet within $wait_s s"
    fleet_tail
    exit 2
  fi
  sleep 0.2
done
# The admin API is the login URL's origin.
admin=$(printf '%s' "$login_url" | sed -E 's#^(http://[^/]+).*#\1#')
fleet_ready=$(date +%s.%N)
echo "check-dashboard: fleet up in $(python3 -c "print('%.1f' % ($fleet_ready - $script_start))") s;" \
  "dashboard $(printf '%s' "$login_url" | sed 's/token=[^&#]*/token=.../')"

if [ -n "$loadgen" ]; then
  echo "check-dashboard: 300 req/s from $loadgen for 30 s before the check"
  "$loadgen" --target "$admin/servers" --scenario latency --rate 300 --warmup 0 --run-time 60 \
    --quiet --out "$work/load" >"$work/load.log" 2>&1 </dev/null &
  load_pid=$!
  sleep 30
fi

# --- run ----------------------------------------------------------------------------------------
# In the background and waited for, so that a signal to this script is handled at once (the
# trap stops the checker, which ends its Chromium, then the fleet) rather than after the check.
status=0
timeout --kill-after=10 "$((timeout_s + 30))" \
  python3 "$here/check_dashboard.py" --chromium "$chromium_bin" --workdir "$work/browser" \
  --timeout "$timeout_s" --started-at "$script_start" --admin "$admin" --login-url "$login_url" \
  --token-file "$work/token" --servers "$servers" "${py_args[@]}" &
checker_pid=$!
wait "$checker_pid" || status=$?
checker_pid=
case "$status" in
  0|1|2) ;;
  124) echo "check-dashboard: BROKEN, timed out after $((timeout_s + 30)) s - $admin"; status=2 ;;
  *) echo "check-dashboard: BROKEN, the checker ended with status $status - $admin"; status=2 ;;
esac
if ! kill -0 "$fleet_pid" 2>/dev/null; then
  fstatus=0; wait "$fleet_pid" || fstatus=$?; fleet_pid=
  echo "check-dashboard: BROKEN, the fleet exited (status $fstatus) during the check"
  fleet_tail
  status=2
elif [ "$status" -ne 0 ]; then
  fleet_tail
fi
exit "$status"
