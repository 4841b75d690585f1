#!/usr/bin/env bash
# Compile time of `fn` chains (issue 17, item 3). Two shapes:
# - double (default): g1(x) = x + x, g_k(x) = g_{k-1}(x) + g_{k-1}(x), a map calling g_N. Unshared,
#   g_N would expand to ~2^N nodes; check::share binds the repeated call once, so each level adds a
#   constant number of nodes. The chain is limited by the depth of the inlined expression (E0007
#   past ~N = 530).
# - wide: f1(x) = x, f_k(x) = x * 1 + x * 2 + … + x * W + f_{k-1}(x) % 1000003 (W terms, W = 40 by
#   default): each level is a wide body calling the previous one once, so the script is long
#   (~W·N·8 bytes) while the inlined expression deepens by only a few levels per fn.
# Calls that cannot be shared still meet the inlining cap (check::expr::MAX_INLINED, E0028).
#
#     bench/compile_curve.sh [path/to/flow] [N …]     # default: target/release/flow, N = 5 … 500
#     SHAPE=wide W=40 bench/compile_curve.sh target/release/flow 40 80 160 320
#
# Prints one line per N: bytes of script; `flow check` wall and user CPU seconds and peak RSS;
# `flow run` (check + plan + JIT + 3 rows) wall and user seconds, peak RSS and exit code. For
# the double shape with N >= 62, 2^N · a overflows: `run` exits 1 with the E0070 row error (after
# compiling). Not a test (timings); run by hand. Uses a temporary directory, removed at the end.
set -euo pipefail
FLOW=${1:-$(dirname "$0")/../target/release/flow}
FLOW=$(realpath "$FLOW")
shift || true
SHAPE=${SHAPE:-double}
W=${W:-40}
sizes=${*:-5 10 12 14 15 16 20 25 30 40 60 100 150 200 300 400 500}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
printf 'a\n1\n2\n3\n' > in.csv
printf '%4s %7s | %7s %7s %8s %3s | %7s %7s %8s %3s\n' N bytes check_s user_s peak_kb rc run_s user_s peak_kb rc
measure() { # prints "wall user peak_kb rc" of running the arguments
  set +e
  /usr/bin/time -f '%e %U %M' -o t.txt timeout 300 "$@" >/dev/null 2>&1
  local rc=$?
  set -e
  echo "$(tail -1 t.txt) $rc"
}
wide_terms=$(for i in $(seq 1 "$W"); do printf 'x * %d + ' "$i"; done)
for n in $sizes; do
  {
    echo 'source t = csv("in.csv", header: true)'
    if [ "$SHAPE" = wide ]; then
      echo 'fn g1(x: int) -> int = x'
      for k in $(seq 2 "$n"); do echo "fn g$k(x: int) -> int = ${wide_terms}g$((k-1))(x) % 1000003"; done
    else
      echo 'fn g1(x: int) -> int = x + x'
      for k in $(seq 2 "$n"); do echo "fn g$k(x: int) -> int = g$((k-1))(x) + g$((k-1))(x)"; done
    fi
    echo "t | map { y: g$n(a) } | sink csv(\"out.csv\")"
  } > g.flow
  read -r cw cu cm cr < <(measure "$FLOW" check g.flow)
  read -r rw ru rm rr < <(measure "$FLOW" run -q g.flow)
  printf '%4s %7s | %7s %7s %8s %3s | %7s %7s %8s %3s\n' "$n" "$(wc -c < g.flow)" \
    "$cw" "$cu" "$cm" "$cr" "$rw" "$ru" "$rm" "$rr"
done
