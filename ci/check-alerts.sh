#!/usr/bin/env bash
# Check the operators' monitoring files: Prometheus alerting rules, their unit tests, the example
# Prometheus configuration and the Grafana dashboard.
#
# Usage: ci/check-alerts.sh [--metrics FILE]
#
#   --metrics FILE  also require every mcpfleet_ series name in the rules and the dashboard to
#                   appear in FILE, the text of a running fleet's /metrics (admin API and gateway
#                   concatenated, e.g. curl -s 127.0.0.1:7900/metrics 127.0.0.1:7999/metrics)
#
# Installs Debian's `prometheus` package (for promtool) if `promtool` is not on PATH (apt-get
# --no-install-recommends; sudo when not root), with a policy-rc.d that keeps the package's
# service from starting during the install; the service is not left running. Then prints one
# PASS/FAIL line per check: `promtool check rules` of deploy/prometheus/mcpfleet-alerts.yml,
# `promtool check config` of deploy/prometheus/prometheus.yml, `promtool test rules` of
# deploy/prometheus/mcpfleet-alerts.test.yml, the same tests with one expected label changed
# (must fail, so the tests can fail), and deploy/grafana/mcpfleet-dashboard.json: valid JSON,
# unique panel ids, a gridPos on every panel, and every PromQL expression accepted by promtool's
# parser (the dashboard's expressions, variables filled in, checked as recording rules).
# Exit status: 0 all passed, 1 a check failed, 2 promtool or python3 missing and not installable,
# 64 bad usage. Nothing here needs the network except the package install.
set -euo pipefail

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }

metrics_file=
while [ $# -gt 0 ]; do
  case "$1" in
    --metrics) [ $# -ge 2 ] || usage; metrics_file=$2; shift 2 ;;
    --metrics=*) metrics_file=${1#*=}; shift ;;
    -h|--help) usage ;;
    *) echo "check-alerts: unknown argument $1" >&2; usage ;;
  esac
done
if [ -n "$metrics_file" ] && [ ! -f "$metrics_file" ]; then
  echo "check-alerts: no such file: $metrics_file" >&2; exit 64
fi

root=$(cd "$(dirname "$0")/.." && pwd)
rules=$root/deploy/prometheus/mcpfleet-alerts.yml
tests=$root/deploy/prometheus/mcpfleet-alerts.test.yml
config=$root/deploy/prometheus/prometheus.yml
dashboard=$root/deploy/grafana/mcpfleet-dashboard.json

# --- install what is missing ------------------------------------------------------------------
apt_flags=(--no-install-recommends)
apt_who=check-alerts
# shellcheck source=ci/apt.sh
. "$root/ci/apt.sh"

# The prometheus package's postinst starts its service (invoke-rc.d / deb-systemd-invoke). Only
# promtool is wanted: a policy-rc.d answering 101 ("action forbidden") makes both skip the start.
# An existing policy-rc.d is left as it is (it already decides); ours is removed afterwards.
policy=/usr/sbin/policy-rc.d
policy_ours=
remove_policy() {
  if [ -n "$policy_ours" ]; then "${sudo[@]}" rm -f "$policy"; policy_ours=; fi
}
trap remove_policy EXIT
install_promtool() {
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# check-alerts.sh: no service starts while it installs prometheus\nexit 101\n' \
      | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    policy_ours=1
  fi
  apt_install prometheus
  remove_policy
  # Belt and braces: if a service start got through anyway, stop it through its own init system.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    "${sudo[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/prometheus ] && [ -f /run/prometheus/prometheus.pid ]; then
    "${sudo[@]}" /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
}

if ! command -v promtool >/dev/null 2>&1; then
  echo "check-alerts: promtool is not on PATH"
  install_promtool
  command -v promtool >/dev/null 2>&1 || { echo "check-alerts: promtool still not on PATH after install" >&2; exit 2; }
fi
if ! command -v python3 >/dev/null 2>&1; then
  apt_install python3
fi
echo "check-alerts: $(promtool --version 2>&1 | head -n1)"

# --- checks -------------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/check-alerts.XXXXXX")
trap 'remove_policy; rm -rf "$work"' EXIT
failed=0
pass() { echo "check-alerts: PASS $1"; }
fail() {
  echo "check-alerts: FAIL $1"
  if [ -s "$work/out" ]; then sed 's/^/    /' "$work/out"; fi
  failed=1
}
# run NAME COMMAND...: PASS when the command succeeds, else FAIL with its output.
run() {
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then pass "$name"; else fail "$name"; fi
}

cd "$root"
run "promtool check rules deploy/prometheus/mcpfleet-alerts.yml" promtool check rules "$rules"
run "promtool check config deploy/prometheus/prometheus.yml" promtool check config "$config"
run "promtool test rules deploy/prometheus/mcpfleet-alerts.test.yml" promtool test rules "$tests"

# The tests must be able to fail: the same tests with one expected label changed (the first
# expected severity) must not pass.
mkdir "$work/neg"
cp "$rules" "$tests" "$work/neg/" 2>"$work/out" || true
if [ -f "$work/neg/mcpfleet-alerts.test.yml" ]; then
  sed -i '0,/^\( *\)severity: warning$/s//\1severity: not-the-rule-s/' "$work/neg/mcpfleet-alerts.test.yml"
fi
if [ ! -f "$work/neg/mcpfleet-alerts.test.yml" ]; then
  fail "negative: a changed expected label makes promtool test rules fail (no test file)"
elif cmp -s "$tests" "$work/neg/mcpfleet-alerts.test.yml"; then
  echo "found no expected 'severity: warning' to change" >"$work/out"
  fail "negative: a changed expected label makes promtool test rules fail"
elif promtool test rules "$work/neg/mcpfleet-alerts.test.yml" >"$work/out" 2>&1; then
  fail "negative: a changed expected label makes promtool test rules fail (it passed)"
elif grep -q 'not-the-rule-s' "$work/out"; then
  pass "negative: a changed expected label makes promtool test rules fail"
else
  fail "negative: a changed expected label makes promtool test rules fail (failed, but not on the changed label)"
fi

# The dashboard: JSON, panels, and its PromQL written out as recording rules for promtool.
if python3 - "$dashboard" "$work/dashboard-rules.yml" >"$work/out" 2>&1 <<'PY'
import json, re, sys

path, rules_out = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as f:
    dash = json.load(f)
problems = []
if dash.get("schemaVersion") != 39:
    problems.append(f"schemaVersion is {dash.get('schemaVersion')!r}, not 39")
panels = []
def walk(ps):
    for p in ps:
        panels.append(p)
        walk(p.get("panels", []))
walk(dash.get("panels", []))
if not panels:
    problems.append("no panels")
ids = [p.get("id") for p in panels]
for i in sorted({i for i in ids if ids.count(i) > 1}, key=str):
    problems.append(f"panel id {i!r} used {ids.count(i)} times")
for p in panels:
    if not isinstance(p.get("id"), int):
        problems.append(f"panel {p.get('title')!r} has no integer id")
    g = p.get("gridPos", {})
    if not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")):
        problems.append(f"panel {p.get('title')!r} has no complete gridPos")
exprs = []
for p in panels:
    for t in p.get("targets", []):
        if t.get("expr"):
            exprs.append((p.get("id"), t.get("refId", "?"), t["expr"]))
for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    if isinstance(q, dict):
        q = q.get("query")
    if v.get("type") == "query" and isinstance(q, str):
        m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", q)
        exprs.append(("var", v.get("name"), m.group(1) if m else q))
if not exprs:
    problems.append("no PromQL expressions")
# Grafana's variables, filled in as Prometheus would see them after interpolation.
fill = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$group": ".*"}
with open(rules_out, "w", encoding="utf-8") as out:
    out.write("groups:\n  - name: grafana-dashboard\n    rules:\n")
    for n, (pid, ref, e) in enumerate(exprs):
        for k in sorted(fill, key=len, reverse=True):
            e = e.replace(k, fill[k])
        if "$" in e:
            problems.append(f"panel {pid} {ref}: unknown variable in {e!r}")
        out.write(f"      - record: grafana:panel_{n}\n        expr: {json.dumps(e)}\n")
names = sorted({m for _, _, e in exprs for m in re.findall(r"\bmcpfleet_[a-z0-9_]+", e)})
print(f"{len(panels)} panels, {len(exprs)} expressions, series: {' '.join(names)}")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY
then pass "grafana dashboard: JSON, schemaVersion 39, unique panel ids, gridPos ($(head -n1 "$work/out" | cut -d, -f1-2))"
  run "grafana dashboard: every expression parses (promtool check rules)" promtool check rules "$work/dashboard-rules.yml"
else
  fail "grafana dashboard: JSON, schemaVersion 39, unique panel ids, gridPos"
fi

# Optional: every series name used must be one a running fleet exports.
if [ -n "$metrics_file" ]; then
  grep -ohE '\bmcpfleet_[a-z0-9_]+' "$rules" "$dashboard" | sort -u >"$work/used"
  grep -oE '^mcpfleet_[a-z0-9_]+' "$metrics_file" | sort -u >"$work/exported"
  comm -23 "$work/used" "$work/exported" >"$work/out"
  if [ -s "$work/out" ]; then
    fail "every series name used is in $metrics_file (missing ones below)"
  else
    pass "every series name used ($(wc -l <"$work/used")) is in $metrics_file"
  fi
else
  echo "check-alerts: SKIP series names against a live /metrics (give --metrics FILE)"
fi

if [ "$failed" -ne 0 ]; then
  echo "check-alerts: FAILED"
  exit 1
fi
echo "check-alerts: all checks passed"
