#!/usr/bin/env bash
# Quick CPU-seconds comparison of flow binaries on the bench jobs (min of N runs):
#   bench/cpu.sh N BIN... ; uses bench/data/trips.csv as linked.
set -euo pipefail
cd "$(dirname "$0")"
n=$1; shift
mkdir -p data/out/flow
for job in j1 j2 j3; do
  for bin in "$@"; do
    best=""
    for _ in $(seq "$n"); do
      r=$(/usr/bin/time -f "%e %U %S %M" "$bin" run -q jobs/$job.flow 2>&1 >/dev/null | tail -1)
      cpu=$(echo "$r" | awk '{printf "%.2f", $2+$3}')
      if [ -z "$best" ] || awk "BEGIN{exit !($cpu < ${best%% *})}"; then best="$cpu cpu $(echo "$r" | awk '{print $1" wall "$4" KB"}')"; fi
    done
    echo "$job $(basename "$bin"): $best"
  done
done
