#!/usr/bin/env bash
# Peak memory of `group` and of wide rows, flow vs DuckDB and Polars (not in CI).
#
#   bench/mem_group.sh [THREADS]    data in $MEM_DIR (default /tmp/flow-memgroup), ~330 MB
#   LONG_KEYS=100000 MEM_JOBS=long bench/mem_group.sh   the 100k x 10 KB case of issue 17 (1 GB)
#
# Jobs (same input, same result for every engine; MEM_JOBS picks some, default "ints long wide"):
#   ints:  2,000,000 distinct int keys    `group k { n: count(), s: sum(v) }`
#   long:  LONG_KEYS (default 20,000) distinct 10 KB str keys `group k { n: count(), s: sum(v) }`
#          (200 MB input; the file is long_N.csv for another N)
#   wide:  500 rows of 200 KB strings      `filter v >= 0 | sink` (the byte-bounded batches)
# FLOW_BIN=/path/to/flow uses that binary instead of building one.
# Prints peak RSS (MB, /usr/bin/time -v) and bytes per distinct key over the input-only
# baseline. DuckDB and Polars come from a venv: python3 -m venv /tmp/benv &&
# /tmp/benv/bin/pip install duckdb polars (skipped if absent).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${1:-2}"
LONG_KEYS="${LONG_KEYS:-20000}"
MEM_JOBS="${MEM_JOBS:-ints long wide}"
LONG=long; [ "$LONG_KEYS" = 20000 ] || LONG="long_$LONG_KEYS"
want() { case " $MEM_JOBS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
DIR="${MEM_DIR:-/tmp/flow-memgroup}"
PY="${BENCH_PY:-/tmp/benv/bin/python}"
mkdir -p "$DIR"
! want ints || [ -s "$DIR/ints.csv" ] || awk 'BEGIN { print "k,v"; for (i = 0; i < 2000000; i++) printf "%d,%d\n", i * 7919 % 2000003, i % 100 }' > "$DIR/ints.csv"
! want long || [ -s "$DIR/$LONG.csv" ] || python3 -c '
import sys; w = sys.stdout.write; w("k,v\n"); pad = "x" * 9992
for i in range(int(sys.argv[1])): w("%s%08d,%d\n" % (pad, i, i % 10))' "$LONG_KEYS" > "$DIR/$LONG.csv"
! want wide || [ -s "$DIR/wide.csv" ] || python3 -c '
import sys; w = sys.stdout.write; w("id,v,s\n"); pad = "y" * 200000
for i in range(500): w("%d,%d,%s\n" % (i, i % 10, pad))' > "$DIR/wide.csv"
if [ -n "${FLOW_BIN:-}" ]; then BIN="$FLOW_BIN"; else
  cargo build --release --quiet
  BIN="$PWD/target/release/flow"
fi

peak() { # command… → peak RSS in KB
  /usr/bin/time -v "$@" 2> "$DIR/time.txt" > /dev/null || { cat "$DIR/time.txt" >&2; return 1; }
  awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/time.txt"
}
row() { printf "%-8s %-8s %10.1f MB %10s\n" "$1" "$2" "$(echo "$3 / 1024" | bc -l)" "$4"; }
per_key() { echo "($1 - $2) * 1024 / $3" | bc; }

cat > "$DIR/ints.flow" <<F
schema R { k: int, v: int }
source r: R = csv("ints.csv")
r | group k { n: count(), s: sum(v) } | sink csv("ints.out.csv")
F
cat > "$DIR/long.flow" <<F
schema R { k: str, v: int }
source r: R = csv("$LONG.csv")
r | group k { n: count(), s: sum(v) } | sink csv("long.out.csv")
F
cat > "$DIR/base.flow" <<F
schema R { k: int, v: int }
source r: R = csv("ints.csv")
r | group v { n: count() } | sink csv("base.out.csv")
F
cat > "$DIR/longbase.flow" <<F
schema R { k: str, v: int }
source r: R = csv("$LONG.csv")
r | group v { n: count() } | sink csv("longbase.out.csv")
F
cat > "$DIR/wide.flow" <<F
schema R { id: int, v: int, s: str }
source r: R = csv("wide.csv")
r | filter v >= 0 | sink csv("wide.out.csv")
F
cd "$DIR"
echo "engine   job        peak RSS     bytes/key (over a 10-key group of the same input)"
if want ints; then
  b=$(peak "$BIN" run -q --threads "$THREADS" base.flow); row flow base "$b" ""
  p=$(peak "$BIN" run -q --threads "$THREADS" ints.flow); row flow ints "$p" "$(per_key "$p" "$b" 2000000)"
fi
if want long; then
  lb=$(peak "$BIN" run -q --threads "$THREADS" longbase.flow); row flow longbase "$lb" ""
  p=$(peak "$BIN" run -q --threads "$THREADS" long.flow); row flow long "$p" "$(per_key "$p" "$lb" "$LONG_KEYS")"
fi
if want wide; then
  p=$(peak "$BIN" run -q --threads "$THREADS" wide.flow); row flow wide "$p" ""
fi
if [ -x "$PY" ]; then
  for eng in duckdb polars; do
    for job in ints long; do
      want "$job" || continue
      file=$job; [ "$job" = long ] && file=$LONG
      for what in base group; do
        key=k; [ "$what" = base ] && key=v
        if [ "$eng" = duckdb ]; then
          code="import duckdb; c=duckdb.connect(); c.execute('SET threads=$THREADS'); c.execute(\"COPY (SELECT $key, count(*) n, sum(v) s FROM read_csv('$file.csv', header=true) GROUP BY $key) TO '$job.$eng.csv'\")"
        else
          code="import os; os.environ['POLARS_MAX_THREADS']='$THREADS'; import polars as pl; pl.scan_csv('$file.csv').group_by('$key').agg(pl.len().alias('n'), pl.col('v').sum().alias('s')).collect().write_csv('$job.$eng.csv')"
        fi
        r=$(peak "$PY" -c "$code")
        if [ "$what" = base ]; then base=$r; row "$eng" "${job}base" "$r" ""; else
          n=2000000; [ "$job" = long ] && n=$LONG_KEYS
          row "$eng" "$job" "$r" "$(per_key "$r" "$base" $n)"; fi
      done
    done
  done
fi
