#!/usr/bin/env bash
# Multi-node benchmark (issue 11): J1 and J2 on 2 worker processes x 1 thread, against
# 1 process x 1 thread (goal: >= 1.7x faster) and against single-node with 2 threads (goal: at
# most 10% slower). Each pair is timed with farm-bench (A and B in turn, ratio pair by pair).
# Usage: bench/multinode.sh [--rows 1m|10m] [--runs N]   (data: bench/data/trips_<rows>.csv)
#   cargo run --release --example gen_trips -- --rows 1m --out bench/data/trips_1m.csv
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROWS=1m
RUNS=7
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    *) sed -n '2,6p' "$0"; exit 2 ;;
  esac
done
FLOW="${FLOW_BIN:-$ROOT/target/release/flow}"
DATA="$ROOT/bench/data"
[[ -f "$DATA/trips_$ROWS.csv" ]] || { echo "missing $DATA/trips_$ROWS.csv (see the usage)" >&2; exit 2; }
ln -sf "trips_$ROWS.csv" "$DATA/trips.csv"
mkdir -p "$DATA/out/flow"
WORK="$(mktemp -d "$ROOT/bench/jobs/.multinode.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
for j in j1 j2; do
  # The job as written, with the mode taken off: the command line sets the layout.
  sed 's/^mode .*//' "$ROOT/bench/jobs/$j.flow" | sed 's#"\.\./data/#"../../data/#' > "$WORK/$j.flow"
  cd "$WORK"
  echo "== $j, $ROWS rows: A = 2 processes x 1 thread, B = 1 process x 1 thread (goal A/B wall <= 0.59)"
  farm-bench -n "$RUNS" --timeout 600 --vs "$FLOW run -q --threads 1 $j.flow" -- \
    "$FLOW" run -q --nodes 2 --threads 1 "$j.flow" | grep -E "exit|wall s|A/B wall"
  echo "== $j, $ROWS rows: A = 2 processes x 1 thread, B = 1 process x 2 threads (goal A/B wall <= 1.10)"
  farm-bench -n "$RUNS" --timeout 600 --vs "$FLOW run -q --threads 2 $j.flow" -- \
    "$FLOW" run -q --nodes 2 --threads 1 "$j.flow" | grep -E "exit|wall s|A/B wall"
  cd "$ROOT"
done
