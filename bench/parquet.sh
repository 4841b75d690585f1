#!/usr/bin/env bash
# J1 reading Parquet instead of CSV: flow vs DuckDB, Polars and DataFusion, 1M rows.
# Usage: bench/parquet.sh [--repeat N] [--tools flow,duckdb,polars,datafusion]
# Data: bench/data/trips_1m.csv (made by gen_trips if missing), converted once to
# bench/data/trips_1m.parquet by DuckDB (snappy, DuckDB's default row groups). Also timed:
# flow's J1 on the CSV (bench/jobs/j1.flow) and flow writing the CSV as Parquet (W1).
# Peers from $BENCH_VENV (default bench/.venv, as bench/run.sh); flow from $FLOW_BIN or
# target/release/flow. Prints a table of medians (wall, CPU, peak RSS) and the output rows.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REPEAT=3
TOOLS="flow,duckdb,polars,datafusion"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --repeat) REPEAT="${2:?}"; shift 2 ;;
    --tools) TOOLS="${2:?}"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "parquet.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
IFS=',' read -r -a TOOL_LIST <<< "$TOOLS"

DATA="$ROOT/bench/data"
VENV="${BENCH_VENV:-$ROOT/bench/.venv}"
FLOW="${FLOW_BIN:-$ROOT/target/release/flow}"
PY="$VENV/bin/python"
mkdir -p "$DATA/out"
[[ -x "$FLOW" ]] || cargo build --release
"$PY" -c 'import duckdb, polars, datafusion' || {
  echo "parquet.sh: $VENV needs duckdb, polars and datafusion (bench/run.sh installs them)" >&2
  exit 2
}
if [[ ! -s "$DATA/trips_1m.csv" ]]; then
  cargo build --release --example gen_trips
  "$ROOT/target/release/examples/gen_trips" --rows 1m --out "$DATA/trips_1m.csv"
fi
if [[ ! -s "$DATA/trips_1m.parquet" ]]; then
  "$PY" - "$DATA/trips_1m.csv" "$DATA/trips_1m.parquet" <<'PY'
import sys, duckdb
cols = ("{'id': 'BIGINT', 'vendor': 'VARCHAR', 'pickup_ts': 'BIGINT', 'distance': 'DOUBLE', "
        "'fare': 'DOUBLE', 'tip': 'DOUBLE', 'city': 'VARCHAR', 'note': 'VARCHAR'}")
duckdb.execute(f"COPY (SELECT * FROM read_csv('{sys.argv[1]}', header = true, columns = {cols}, "
               f"quote = '\"', escape = '\"')) TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION snappy)")
PY
fi
ln -sfn trips_1m.csv "$DATA/trips.csv"
ln -sfn trips_1m.parquet "$DATA/trips.parquet"
cat "$DATA/trips_1m.parquet" "$DATA/trips_1m.csv" > /dev/null   # warm the page cache

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "job,tool,rep,wall_s,cpu_s,rss_kb,rows" > "$TMP/m.csv"
run_one() {   # job tool rep
  local job="$1" tool="$2" rep="$3" out="$DATA/out/$2" cmd
  rm -rf "$out"; mkdir -p "$out"
  case "$job/$tool" in
    j1-parquet/flow) cmd=("$FLOW" run -q "$ROOT/bench/parquet/j1.flow") ;;
    j1-csv/flow) cmd=("$FLOW" run -q "$ROOT/bench/jobs/j1.flow") ;;
    w1-parquet/flow) cmd=("$FLOW" run -q "$ROOT/bench/parquet/w1.flow") ;;
    j1-parquet/*) cmd=("$PY" "$ROOT/bench/parquet/peers.py" "$tool" "$DATA/trips.parquet" "$out") ;;
  esac
  /usr/bin/time -f "%e %U %S %M" -o "$TMP/t" "${cmd[@]}" > "$TMP/log" 2>&1 || {
    echo "$job $tool failed:"; tail -n 5 "$TMP/log"; return 0; }
  read -r wall usr sys rss < "$TMP/t"
  local rows=-
  if [[ -f "$out/j1.csv" ]]; then rows=$(( $(wc -l < "$out/j1.csv") - 1 )); fi
  if [[ -f "$out/w1.parquet" ]]; then
    rows=$("$PY" -c "import duckdb,sys; print(duckdb.execute(\"SELECT count(*) FROM '$out/w1.parquet'\").fetchone()[0])")
  fi
  local cpu; cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
  echo "$job,$tool,$rep,$wall,$cpu,$rss,$rows" >> "$TMP/m.csv"
  printf '  %-11s %-10s rep %d: %6ss wall %6ss cpu %8s KB  %s rows\n' "$job" "$tool" "$rep" "$wall" "$cpu" "$rss" "$rows"
}
for rep in $(seq 1 "$REPEAT"); do
  for tool in "${TOOL_LIST[@]}"; do
    run_one j1-parquet "$tool" "$rep"
    if [[ "$tool" == flow ]]; then run_one j1-csv flow "$rep"; run_one w1-parquet flow "$rep"; fi
  done
done
echo
echo "medians over $REPEAT runs, 1M rows ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)):"
"$PY" - "$TMP/m.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
keys = sorted({(r["job"], r["tool"]) for r in rows})
print(f"| job | tool | wall s | cpu s | peak RSS MB | output rows |\n|---|---|---|---|---|---|")
for job, tool in keys:
    rs = [r for r in rows if (r["job"], r["tool"]) == (job, tool)]
    med = lambda k: statistics.median(float(r[k]) for r in rs)
    print(f"| {job} | {tool} | {med('wall_s'):.2f} | {med('cpu_s'):.2f} | {med('rss_kb') / 1024:.0f} | {rs[0]['rows']} |")
PY
