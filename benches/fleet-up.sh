# Sourced by the bench scripts that measure a `fleet up` of their own: builds loadgen and fleet
# (release), makes a scratch folder `$out` (removed at exit, with the fleet stopped) and starts
# `fleet up --servers N` without memory or gateway on ephemeral ports, setting `$admin` to its
# admin API's URL (loadgen takes it as a target: it lists the servers) once all are healthy.
# Usage (after `cd` to the repository): source benches/fleet-up.sh; fleet_up N
cargo build --release -q -p loadgen -p fleet
out=$(mktemp -d)
fleet_pid=
cleanup() {
  # The trap's status is the script's: a stopped fleet's exit status must not become it.
  if [[ -n "$fleet_pid" ]]; then kill "$fleet_pid" 2>/dev/null; wait "$fleet_pid" 2>/dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT
fleet_up() {
  target/release/fleet up --servers "$1" --no-memory --no-gateway --ephemeral-ports \
    --admin-port 0 >"$out/up" 2>&1 &
  fleet_pid=$!
  for _ in $(seq 300); do grep -q 'healthy in' "$out/up" 2>/dev/null && break; sleep 0.1; done
  admin=$(grep -o 'admin *http://[0-9.]*:[0-9]*' "$out/up" | grep -o 'http://.*' | head -1)
  [[ -n "$admin" ]] || { cat "$out/up" >&2; exit 1; }
}
# Stops the fleet now (the exit trap then has nothing left to stop).
fleet_down() {
  kill "$fleet_pid" && wait "$fleet_pid" 2>/dev/null || true
  fleet_pid=
}
