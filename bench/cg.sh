#!/usr/bin/env bash
# Instruction counts (callgrind, all threads) of flow binaries on the bench jobs over the
# 200k-row slice bench/data/trips_200k.csv: bench/cg.sh BIN...  (restores the trips.csv link).
set -euo pipefail
cd "$(dirname "$0")"
old=$(readlink data/trips.csv)
[ -f data/trips_200k.csv ] || head -200001 data/trips_1m.csv > data/trips_200k.csv
ln -sfn trips_200k.csv data/trips.csv
trap 'ln -sfn "$old" data/trips.csv' EXIT
mkdir -p data/out/flow
for job in j1 j2 j3; do
  for bin in "$@"; do
    ir=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" run -q jobs/$job.flow 2>&1 \
      | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
    echo "$job $(basename "$bin"): $ir Ir"
  done
done
