#!/usr/bin/env bash
# Times `fleet memory verify` against `git fsck --full` on the same memory repositories, at
# history lengths of ~2k, ~10k and ~30k ops and at 1 and ~100 ops per commit (a store at a low
# write rate, and the sync scenario's 1000 writes/s at the 100 ms commit interval), to show
# whether verify's cost grows with the history alone, as fsck's does, or with history x graph.
# Repositories are built by `memory-history` (the store's own commit path, a fixed-seed op mix
# whose entity count grows with the history); one-op-per-commit histories cap the live
# entities (ONE_PER_COMMIT_MAX_ENTITIES): in format 1 each of their commits stored a new copy of
# the flat entities/ tree, which would have reached tens of GB at 30k commits (format 2's buckets
# no longer need the cap; it is kept so that figures compare with earlier runs).
# Repositories live in /dev/shm when it exists (tmpfs: the builder's thousands of fsyncs are
# free, and both tools read from memory, as they would from a page-cached repository).
# BEFORE=<fleet binary> times a second build on the same repositories in the same run (old vs
# new side by side). Wall and CPU (user+sys) seconds; the ratio is verify CPU / fsck CPU.
#
# Usage: [SHAPES="100:2000 100:10000 ..."] [BEFORE=path/to/fleet] [KEEP=dir]
#        [TIMEOUT=seconds per command] benches/run-verify-scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shapes=${SHAPES:-"100:2000 100:10000 100:30000 1:2000 1:10000 1:30000"}
cap=${ONE_PER_COMMIT_MAX_ENTITIES:-1000}
limit=${TIMEOUT:-1200}
before=${BEFORE:-}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p fleet --bin fleet -p benches --bin memory-history
fleet_bin=$target/release/fleet
history_bin=$target/release/memory-history
root=/tmp
if [ -d /dev/shm ] && [ -w /dev/shm ]; then root=/dev/shm; fi
work=${KEEP:-$(mktemp -d "$root/verify-scale.XXXXXX")}
mkdir -p "$work"
cleanup() {
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

# Runs a command under `timeout`; prints "wall cpu" in seconds, or "timeout timeout". CPU is
# this (sub)shell's children's user+sys time, which includes every thread and process of the
# command once it has been waited for.
timed() {
  local start end ok=0 t0 t1 me=$BASHPID
  t0=$(awk '{print $14+$15+$16+$17}' "/proc/$me/stat")
  start=$(date +%s.%N)
  timeout "$limit" "$@" >"$work/last.out" 2>&1 || ok=$?
  end=$(date +%s.%N)
  t1=$(awk '{print $14+$15+$16+$17}' "/proc/$me/stat")
  if [ "$ok" -eq 124 ]; then echo "timeout timeout"; return; fi
  if [ "$ok" -ne 0 ]; then
    echo "FAILED: $* (exit $ok)" >&2
    tail -5 "$work/last.out" >&2
    echo "failed failed"
    return
  fi
  awk -v s="$start" -v e="$end" -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.2f %.2f\n", e - s, (b - a) / hz }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1fx", a / b; else print "-" }'; }

printf '%s\n' "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
header="| ops/commit | ops | commits | live entities | repo MB | git fsck --full s (cpu) | verify s (cpu) | verify/fsck cpu |"
rule="|---|---|---|---|---|---|---|---|"
if [ -n "$before" ]; then
  header="$header before s (cpu) | before/fsck cpu |"
  rule="$rule---|---|"
fi
rows=()
for shape in $shapes; do
  per=${shape%%:*}
  ops=${shape##*:}
  repo=$work/h-$per-$ops
  extra=()
  if [ "$per" -eq 1 ]; then extra=(--max-entities "$cap"); fi
  if [ ! -d "$repo" ]; then
    "$history_bin" --path "$repo" --ops "$ops" --per-commit "$per" "${extra[@]}" >"$work/build.out"
  fi
  commits=$(git -C "$repo" rev-list --count refs/heads/main)
  mb=$(du -sm "$repo" | cut -f1)
  read -r fsck_wall fsck_cpu < <(timed git -C "$repo" fsck --full --no-progress)
  read -r v_wall v_cpu < <(timed "$fleet_bin" memory verify --memory-repo "$repo")
  live=$(awk '/entities,/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "entities,") print $i }' "$work/last.out")
  row="| $per | $ops | $commits | ${live:-?} | $mb | $fsck_wall ($fsck_cpu) | $v_wall ($v_cpu) | $(ratio "$v_cpu" "$fsck_cpu") |"
  if [ -n "$before" ]; then
    read -r b_wall b_cpu < <(timed "$before" memory verify --memory-repo "$repo")
    row="$row $b_wall ($b_cpu) | $(ratio "$b_cpu" "$fsck_cpu") |"
  fi
  echo "$row"
  rows+=("$row")
done
echo
echo "$header"
echo "$rule"
printf '%s\n' "${rows[@]}"
printf '%s\n' "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
