#!/usr/bin/env bash
# Peak-memory check of the streaming runtime: peak RSS at 10M input rows must be within 20% of
# the peak at 1M rows (memory is set by buffer sizes, not input size).
#
# usage: bench/mem/run.sh [THREADS]     (data and outputs go to $MEM_DIR, default /tmp/flow-mem)
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS="${1:-1}"
DIR="${MEM_DIR:-/tmp/flow-mem}"
mkdir -p "$DIR"

# Generator: N rows of `id,name,price,qty` (a quoted name with a comma every 7th row).
gen_rows() {
  awk -v n="$1" 'BEGIN {
    print "id,name,price,qty";
    for (i = 0; i < n; i++) {
      if (i % 7 == 0) name = "\"name " i % 1000 ", quoted\""; else name = "name" i % 1000;
      printf "%d,%s,%.2f,%d\n", i, name, (i * 37 % 10000) / 100.0, i % 13;
    }
  }'
}

for n in 1000000 10000000; do
  f="$DIR/rows_$n.csv"
  [ -s "$f" ] || { echo "generating $f"; gen_rows "$n" > "$f"; }
done

cargo build --release --example mem_probe
BIN=target/release/examples/mem_probe

declare -A PEAK
for n in 1000000 10000000; do
  log="$DIR/time_$n.txt"
  /usr/bin/time -v "$BIN" "$DIR/rows_$n.csv" "$DIR/out_$n.csv" "$THREADS" 2> "$log"
  PEAK[$n]=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  echo "rows=$n threads=$THREADS peak_rss_kb=${PEAK[$n]} output_rows=$(($(wc -l < "$DIR/out_$n.csv") - 1))"
done
awk -v a="${PEAK[1000000]}" -v b="${PEAK[10000000]}" 'BEGIN {
  r = b / a; printf "peak RSS 1M: %.1f MB, 10M: %.1f MB, ratio %.3f\n", a / 1024, b / 1024, r;
  if (r > 1.2) { print "FAIL: peak RSS grows with input size"; exit 1 } else print "OK: within 20%";
}'
