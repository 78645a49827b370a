#!/usr/bin/env bash
# What TLS costs a load generator: loadgen against oha on the same trivial JSON-RPC endpoint
# (echo-servers' `/rpc`, in its own process), once over plain HTTP and once over TLS (rustls,
# TLS 1.3, an ECDSA P-256 certificate from a CA made here), in one run, each for SECS seconds at
# CONNS keep-alive connections, closed loop: requests/s and the generator's CPU microseconds per
# request (user + system time over the requests it sent). The aim: over TLS, loadgen's maximum
# rate >= 80 % of oha's; over plain HTTP, the same figures as benches/run-loadgen.sh gives.
# loadgen trusts the CA with --cacert; oha is given the same CA file when it has --cacert,
# else --insecure (verification happens once per connection, not per request).
# loadgen warms up for 1 s first (its users start and connect then), which it does not record and
# the CPU figure includes; oha starts measuring at once.
# Usage: benches/run-tls.sh [SECS] [CONNS] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
repeats=${3:-3}
target=${CARGO_TARGET_DIR:-target}
tools="$target/bench-tools"
oha="$tools/bin/oha"
[[ -x $oha ]] || {
  echo "installing oha into $tools"
  cargo install -q --locked --root "$tools" --target-dir "$tools/build" oha
}
cargo build --release -q -p benches --bin echo-servers
cargo build --release -q -p loadgen
out=$(mktemp -d)

# A CA, and a certificate it signed for 127.0.0.1 (an end-entity one, as servers have).
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$out/ca.key" -out "$out/ca.pem" -days 2 \
  -subj /CN=run-tls-ca 2>/dev/null
openssl req "${ec[@]}" -keyout "$out/key.pem" -out "$out/req.csr" -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
  >"$out/ext"
openssl x509 -req -in "$out/req.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -CAcreateserial \
  -out "$out/cert.pem" -days 2 -extfile "$out/ext" 2>/dev/null

"$target/release/echo-servers" --seconds 3600 --tls-cert "$out/cert.pem" \
  --tls-key "$out/key.pem" >"$out/urls" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$out"' EXIT
for _ in $(seq 100); do grep -q '^rpcs' "$out/urls" 2>/dev/null && break; sleep 0.1; done
plain=$(awk '/^rpc /{print $2}' "$out/urls")
tls=$(awk '/^rpcs /{print $2}' "$out/urls")
body='{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
if "$oha" --help | grep -q -- '--cacert'; then oha_trust=(--cacert "$out/ca.pem"); else oha_trust=(--insecure); fi

# Runs a command; its CPU seconds (user + system) go to $out/cpu.
cpu() { /usr/bin/time -o "$out/cpu.raw" -f '%U %S' "$@"; awk '{print $1 + $2}' "$out/cpu.raw" >"$out/cpu"; }

run_oha() { # $1: url; prints "rps cpu_s requests"
  local trust=()
  [[ $1 == https://* ]] && trust=("${oha_trust[@]}")
  cpu "$oha" --no-tui --output-format json -z "${secs}s" -c "$conns" -m POST "${trust[@]}" \
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -d "$body" "$1" >"$out/oha.txt"
  python3 - "$out/oha.txt" "$out/cpu" <<'PY'
import json, sys
cpu = float(open(sys.argv[2]).read())
j = json.load(open(sys.argv[1]))
total = sum(j["statusCodeDistribution"].values())
# Requests in flight when -z ends are "aborted due to deadline", not failures.
errors = sum(n for e, n in j.get("errorDistribution", {}).items() if "deadline" not in e)
if errors:
    sys.exit(f"oha saw {errors} errors: {j['errorDistribution']}")
print(f'{j["summary"]["requestsPerSec"]:.0f} {cpu:.2f} {total}')
PY
}

run_loadgen() { # $1: url; prints "rps cpu_s requests"
  local trust=()
  [[ $1 == https://* ]] && trust=(--cacert "$out/ca.pem")
  rm -rf "$out/lg"
  cpu "$target/release/loadgen" --scenario latency --target "$1" --users "$conns" --warmup 1 \
    --run-time "$secs" --out "$out/lg" "${trust[@]}" >"$out/lg.txt" 2>"$out/lg.err" ||
    { cat "$out/lg.err" >&2; exit 1; }
  python3 - "$out/lg/run.json" "$out/cpu" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["latency"]
cpu = float(open(sys.argv[2]).read())
if r["ok"] != r["requests"]:
    sys.exit(f"loadgen saw errors: {r['errors']}")
print(f'{r["throughput_rps"]:.0f} {cpu:.2f} {r["engine"]["requests"]}')
PY
}

per() { awk -v c="$1" -v n="$2" 'BEGIN{printf "%.1f", c * 1e6 / n}'; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "endpoints: $plain and $tls ($(nproc) CPUs), $secs s per run, $conns connections, $repeats repeats"
echo "oha: $("$oha" --version), trusting the CA by ${oha_trust[0]}"
echo
printf '%-6s %-8s %10s %10s %12s\n' scheme tool req/s cpu-s "cpu-us/req"
: >"$out/figures"
for i in $(seq "$repeats"); do
  for url in "$plain" "$tls"; do
    scheme=${url%%://*}
    for tool in oha loadgen; do
      read -r rps c n < <("run_$tool" "$url")
      us=$(per "$c" "$n")
      printf '%-6s %-8s %10s %10s %12s\n' "$scheme" "$tool" "$rps" "$c" "$us"
      echo "$scheme $tool $rps $us" >>"$out/figures"
    done
  done
done
echo
echo "medians of $repeats:"
for scheme in http https; do
  for tool in oha loadgen; do
    rps=$(awk -v s="$scheme" -v t="$tool" '$1 == s && $2 == t {print $3}' "$out/figures" | median)
    us=$(awk -v s="$scheme" -v t="$tool" '$1 == s && $2 == t {print $4}' "$out/figures" | median)
    eval "${tool}_rps=$rps ${tool}_us=$us"
  done
  # shellcheck disable=SC2154 # set by the eval above
  awk -v s="$scheme" -v a="$oha_rps" -v b="$loadgen_rps" -v c="$oha_us" -v d="$loadgen_us" 'BEGIN {
    printf "%-6s oha %.0f req/s %.1f us/req; loadgen %.0f req/s %.1f us/req; loadgen/oha rate %.0f %%, cpu/req %.2fx\n",
      s, a, c, b, d, 100 * b / a, d / c }'
done
