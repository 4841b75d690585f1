#!/usr/bin/env bash
# Compile time of doubling `fn`s: g1(x) = x + x, g_k(x) = g_{k-1}(x) + g_{k-1}(x), a map calling
# g_N, for N = 5 … 40. Each call is inlined, so g_N expands to ~2^N nodes; past the inlining cap
# (check::expr::MAX_INLINED) the check reports E0028 instead of expanding further.
#
#     bench/compile_curve.sh [path/to/flow]      # default: target/release/flow
#
# Prints one line per N: bytes of script, `flow check` and `flow run` wall time, exit codes.
# Not a test (timings); run by hand. Uses a temporary directory, removed at the end.
set -euo pipefail
FLOW=${1:-$(dirname "$0")/../target/release/flow}
FLOW=$(realpath "$FLOW")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
printf 'a\n1\n2\n3\n' > in.csv
printf '%4s %7s %9s %5s %9s %5s\n' N bytes check_s rc run_s rc
for n in 5 10 12 14 15 16 17 20 25 30 40; do
  {
    echo 'source t = csv("in.csv", header: true)'
    echo 'fn g1(x: int) -> int = x + x'
    for k in $(seq 2 "$n"); do echo "fn g$k(x: int) -> int = g$((k-1))(x) + g$((k-1))(x)"; done
    echo "t | map { y: g$n(a) } | sink csv(\"out.csv\")"
  } > g.flow
  t0=$(date +%s.%N); set +e; timeout 300 "$FLOW" check g.flow >/dev/null 2>&1; c=$?; set -e
  t1=$(date +%s.%N); set +e; timeout 300 "$FLOW" run -q g.flow >/dev/null 2>&1; r=$?; set -e
  t2=$(date +%s.%N)
  printf '%4s %7s %9.3f %5s %9.3f %5s\n' "$n" "$(wc -c < g.flow)" \
    "$(echo "$t1 - $t0" | bc)" "$c" "$(echo "$t2 - $t1" | bc)" "$r"
done
