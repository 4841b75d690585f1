#!/usr/bin/env bash
# Check time against the number of statements (issue 17, item 4). Two shapes per size S:
# - pipes: one source and S pipelines `t | filter a > i | sink csv("out/o<i>.csv")`;
# - mixed: tests/gen_big_script.py's units (schema, source, two fns, a let, four sinks: 9
#   statements in 40 lines each), S/9 units.
#
#     bench/statement_curve.sh [path/to/flow] [S …]    # default: target/release/flow, S = 5k … 40k
#
# Prints per shape and S: bytes; `flow check` wall and user CPU seconds, peak RSS, exit code.
# Not a test (timings); run by hand. Uses a temporary directory, removed at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FLOW=${1:-$here/../target/release/flow}
FLOW=$(realpath "$FLOW")
shift || true
sizes=${*:-5000 10000 20000 40000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
printf 'a\n1\n2\n3\n' > in.csv
measure() { # prints "wall user peak_kb rc" of running the arguments
  set +e
  /usr/bin/time -f '%e %U %M' -o t.txt timeout 600 "$@" >/dev/null 2>&1
  local rc=$?
  set -e
  echo "$(tail -1 t.txt) $rc"
}
printf '%6s %6s %9s | %7s %7s %8s %3s\n' shape S bytes check_s user_s peak_kb rc
for s in $sizes; do
  {
    echo 'source t = csv("in.csv", header: true)'
    for i in $(seq 1 "$s"); do echo "t | filter a > $i | sink csv(\"out/o$i.csv\")"; done
  } > pipes.flow
  read -r w u m r < <(measure "$FLOW" check pipes.flow)
  printf '%6s %6s %9s | %7s %7s %8s %3s\n' pipes "$s" "$(wc -c < pipes.flow)" "$w" "$u" "$m" "$r"
  python3 "$here/../tests/gen_big_script.py" mixed.flow $((s * 40 / 9 + 3)) > /dev/null
  read -r w u m r < <(measure "$FLOW" check mixed.flow)
  printf '%6s %6s %9s | %7s %7s %8s %3s\n' mixed "$s" "$(wc -c < mixed.flow)" "$w" "$u" "$m" "$r"
done
