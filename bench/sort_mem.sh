#!/usr/bin/env bash
# Peak memory of an external `sort` under a small budget (not in CI).
#
#   bench/sort_mem.sh [ROWS] [BUDGET] [THREADS]   default 10000000 rows, 32M, 2 threads
#
# Generates ROWS rows `id,k,s` (k a pseudo-random int, s a short string) in $SORT_DIR (default
# /tmp/flow-sortmem), sorts them with `sort k desc, s` under FLOW_SORT_BUDGET=BUDGET, with TMPDIR
# pointed at an empty directory, and prints the wall time, peak RSS (/usr/bin/time -v), and
# checks that the output is complete (ROWS rows), sorted (by `sort -c` on the same keys, ties in
# input order) and that no temporary file is left. The input-only baseline (a filter that
# passes every row) is printed beside it, so the sort's own share can be read off.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-10000000}"
BUDGET="${2:-32M}"
THREADS="${3:-2}"
DIR="${SORT_DIR:-/tmp/flow-sortmem}"
mkdir -p "$DIR"
IN="$DIR/in_$ROWS.csv"
[ -s "$IN" ] || awk -v n="$ROWS" 'BEGIN { print "id,k,s"; x = 12345;
  for (i = 0; i < n; i++) { x = (x * 1103515245 + 12345) % 2147483648;
    printf "%d,%d,s%d\n", i, x % 1000003, x % 977 } }' > "$IN"
cargo build --release --quiet
BIN="$PWD/target/release/flow"
TMP="$DIR/tmp"
rm -rf "$TMP" && mkdir -p "$TMP"

cat > "$DIR/sort.flow" <<F
schema R { id: int, k: int, s: str }
source r: R = csv("$(basename "$IN")", header: true)
r | sort k desc, s | sink csv("sorted.csv", header: true)
F
cat > "$DIR/base.flow" <<F
schema R { id: int, k: int, s: str }
source r: R = csv("$(basename "$IN")", header: true)
r | filter k >= 0 | sink csv("base.csv", header: true)
F

run() { # label script
  /usr/bin/time -v env FLOW_SORT_BUDGET="$BUDGET" TMPDIR="$TMP" "$BIN" run -q --threads "$THREADS" "$DIR/$2" \
    2> "$DIR/time.txt" > /dev/null || { cat "$DIR/time.txt" >&2; exit 1; }
  local rss wall
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$DIR/time.txt")
  printf "%-10s rows=%-9s budget=%-5s threads=%s  wall %-8s peak RSS %6.1f MB\n" \
    "$1" "$ROWS" "$BUDGET" "$THREADS" "$wall" "$(echo "$rss / 1024" | bc -l)"
}
run baseline base.flow
run sort sort.flow

lines=$(($(wc -l < "$DIR/sorted.csv") - 1))
[ "$lines" -eq "$ROWS" ] || { echo "FAIL: $lines rows out of $ROWS" >&2; exit 1; }
# Sorted by k descending, then s ascending (bytewise), then id ascending (stability).
tail -n +2 "$DIR/sorted.csv" | LC_ALL=C sort -c -t, -k2,2nr -k3,3 -k1,1n \
  || { echo "FAIL: output not sorted" >&2; exit 1; }
left=$(find "$TMP" -mindepth 1 | wc -l)
[ "$left" -eq 0 ] || { echo "FAIL: $left temporary files left in $TMP" >&2; exit 1; }
echo "ok: $ROWS rows, sorted, no temporary file left"
rm -f "$DIR/sorted.csv" "$DIR/base.csv"
