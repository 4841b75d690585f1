#!/usr/bin/env bash
# Benchmark flow against DuckDB, Polars and DataFusion on the trips jobs J1-J3 and the H2O group-by questions.
# Usage: bench/run.sh [--suite trips|h2o|all] [--rows 1m|10m|both] [--na 0|5|both] [--repeat N] [--jobs j1,q3,...] [--tools flow,duckdb,polars,datafusion]
# See bench/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ROWS="1m"
REPEAT=5
SUITE="trips"
NA="0"
JOBS=""
TOOLS="flow,duckdb,polars,datafusion"
TIMEOUT="${BENCH_TIMEOUT:-1200}"   # seconds per single run

usage() {
  sed -n '3,4p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) ROWS="${2:?--rows needs a value}"; shift 2 ;;
    --repeat) REPEAT="${2:?--repeat needs a value}"; shift 2 ;;
    --suite) SUITE="${2:?--suite needs a value}"; shift 2 ;;
    --na) NA="${2:?--na needs a value}"; shift 2 ;;
    --jobs) JOBS="${2:?--jobs needs a value}"; shift 2 ;;
    --tools) TOOLS="${2:?--tools needs a value}"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage 2 ;;
  esac
done

case "$ROWS" in
  1m) SIZES=(1m) ;;
  10m) SIZES=(10m) ;;
  both) SIZES=(1m 10m) ;;
  *) echo "run.sh: --rows must be 1m, 10m or both" >&2; exit 2 ;;
esac
if ! [[ "$REPEAT" =~ ^[1-9][0-9]*$ ]]; then
  echo "run.sh: --repeat must be a positive integer" >&2; exit 2
fi
TRIPS_JOBS="j1,j2,j3"
H2O_JOBS="q1,q2,q3,q4,q5,q7,q10"
case "$SUITE" in
  trips) DEFAULT_JOBS="$TRIPS_JOBS" ;;
  h2o) DEFAULT_JOBS="$H2O_JOBS" ;;
  all) DEFAULT_JOBS="$TRIPS_JOBS,$H2O_JOBS" ;;
  *) echo "run.sh: --suite must be trips, h2o or all" >&2; exit 2 ;;
esac
JOBS="${JOBS:-$DEFAULT_JOBS}"
case "$NA" in
  0) NAS=(0) ;;
  5) NAS=(5) ;;
  both) NAS=(0 5) ;;
  *) echo "run.sh: --na must be 0, 5 or both" >&2; exit 2 ;;
esac
IFS=',' read -r -a JOB_LIST <<< "$JOBS"
IFS=',' read -r -a TOOL_LIST <<< "$TOOLS"
for j in "${JOB_LIST[@]}"; do
  case "$j" in j1|j2|j3|q1|q2|q3|q4|q5|q7|q10) ;; *) echo "run.sh: unknown job: $j" >&2; exit 2 ;; esac
done
want_peers=0
want_flow=0
for t in "${TOOL_LIST[@]}"; do
  case "$t" in
    flow) want_flow=1 ;;
    duckdb|polars|datafusion) want_peers=1 ;;
    *) echo "run.sh: unknown tool: $t" >&2; exit 2 ;;
  esac
done

say() { printf '\n== %s\n' "$*"; }

DATA="$ROOT/bench/data"
VENV="${BENCH_VENV:-$ROOT/bench/.venv}"   # BENCH_VENV: use another venv
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RUNDIR="$DATA/results/$STAMP"
mkdir -p "$RUNDIR" "$DATA/out"

# --- /usr/bin/time --------------------------------------------------------------------------
if [[ ! -x /usr/bin/time ]]; then
  say "installing GNU time (/usr/bin/time is missing)"
  if [[ "$(id -u)" -eq 0 ]]; then
    apt-get update && apt-get install -y time
  else
    sudo apt-get update && sudo apt-get install -y time
  fi
fi

# --- Python peers ---------------------------------------------------------------------------
if [[ "$want_peers" -eq 1 ]]; then
  if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c 'import duckdb, polars, datafusion, pyarrow' 2>/dev/null; then
    say "installing duckdb, polars, datafusion into $VENV"
    "$VENV/bin/pip" install --upgrade pip
    "$VENV/bin/pip" install duckdb polars datafusion
  fi
fi

# --- flow -----------------------------------------------------------------------------------
FLOW="${FLOW_BIN:-$ROOT/target/release/flow}"   # FLOW_BIN: use another flow binary, skip the build
flow_ok=0
if [[ "$want_flow" -eq 1 && -n "${FLOW_BIN:-}" ]]; then
  if "$FLOW" run --help > "$RUNDIR/flow_run_help.log" 2>&1; then
    flow_ok=1
  else
    echo "FLOW NOT AVAILABLE: '$FLOW run --help' failed; flow is skipped, peers still run."
  fi
elif [[ "$want_flow" -eq 1 ]]; then
  say "building flow (cargo build --release)"
  if cargo build --release > "$RUNDIR/cargo_build.log" 2>&1; then
    if [[ ! -x "$FLOW" ]]; then
      echo "FLOW NOT AVAILABLE: the build succeeded but produced no $FLOW binary; flow is skipped, peers still run."
    elif ! "$FLOW" run --help > "$RUNDIR/flow_run_help.log" 2>&1; then
      echo "FLOW NOT AVAILABLE: '$FLOW run' does not exist yet (flow run not merged on this branch?); flow is skipped, peers still run."
      sed 's/^/    /' "$RUNDIR/flow_run_help.log" | head -n 5
    else
      flow_ok=1
    fi
  else
    echo "FLOW NOT AVAILABLE: cargo build --release failed (full log: $RUNDIR/cargo_build.log); flow is skipped, peers still run."
    tail -n 15 "$RUNDIR/cargo_build.log" | sed 's/^/    /'
  fi
fi

# --- data -----------------------------------------------------------------------------------
trips_jobs=()
h2o_jobs=()
for j in "${JOB_LIST[@]}"; do
  case "$j" in j*) trips_jobs+=("$j") ;; q*) h2o_jobs+=("$j") ;; esac
done
h2o_file() {   # size na -> file name in bench/data
  if [[ "$2" == 0 ]]; then echo "h2o_$1.csv"; else echo "h2o_$1_na$2.csv"; fi
}
if [[ "${#h2o_jobs[@]}" -gt 0 ]]; then
  for size in "${SIZES[@]}"; do
    for na in "${NAS[@]}"; do
      f="$DATA/$(h2o_file "$size" "$na")"
      if [[ ! -s "$f" ]]; then
        say "generating $f (K=100, $na% NA)"
        [[ -x "$ROOT/target/release/examples/gen_h2o" && -z "${h2o_built:-}" ]] || cargo build --release --example gen_h2o
        h2o_built=1
        "$ROOT/target/release/examples/gen_h2o" --rows "$size" --k 100 --na "$na" --out "$f"
      fi
    done
  done
fi
gen_bin=""
build_generator() {
  [[ -n "$gen_bin" ]] && return 0
  say "building the data generator"
  if cargo build --release --example gen_trips; then
    gen_bin="$ROOT/target/release/examples/gen_trips"
  else
    # The generator has no dependencies: build it on its own if the crate does not compile.
    echo "cargo could not build the gen_trips example; compiling bench/gen_trips.rs with rustc"
    mkdir -p "$ROOT/target/release"
    rustc -O --edition 2021 "$ROOT/bench/gen_trips.rs" -o "$ROOT/target/release/gen_trips_standalone"
    gen_bin="$ROOT/target/release/gen_trips_standalone"
  fi
}
for size in "${SIZES[@]}"; do
  if [[ "${#trips_jobs[@]}" -gt 0 && ! -s "$DATA/trips_$size.csv" ]]; then
    build_generator
    say "generating $DATA/trips_$size.csv"
    "$gen_bin" --rows "$size" --out "$DATA/trips_$size.csv"
  fi
done

# --- versions and machine -------------------------------------------------------------------
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
  echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "repeat=$REPEAT"
  echo "tools=$TOOLS"
  if [[ "$want_peers" -eq 1 ]]; then
    "$VENV/bin/python" -c 'import duckdb, polars, datafusion, sys; print("versions=python %s, duckdb %s, polars %s, datafusion %s" % (sys.version.split()[0], duckdb.__version__, polars.__version__, datafusion.__version__))'
  fi
  if [[ "$want_flow" -eq 1 && "$flow_ok" -eq 0 ]]; then
    echo "flow=NOT AVAILABLE (no working target/release/flow run)"
  fi
} > "$RUNDIR/meta.txt"

# --- runs -----------------------------------------------------------------------------------
MEAS="$RUNDIR/measurements.csv"
COUNTS="$RUNDIR/counts.csv"
echo "rows,job,tool,rep,status,wall_s,rss_kb,cpu_s" > "$MEAS"
echo "rows,job,tool,rep,output,count" > "$COUNTS"

outputs_of() {
  case "$1" in
    j1) echo "j1.csv" ;;
    j2) echo "j2.csv" ;;
    j3) echo "j3_long.csv j3_generous.jsonl j3_by_vendor.csv" ;;
    q*) echo "$1.csv" ;;
  esac
}

export POLARS_MAX_THREADS=2
any_flow_failed=0

run_one() {   # series job tool rep (series: a trips size, or h2o-SIZE[-naP])
  local size="$1" job="$2" tool="$3" rep="$4"
  local out="$DATA/out/$tool"
  local log="$RUNDIR/${size}_${job}_${tool}_${rep}.log"
  local tf="$RUNDIR/time.tmp"
  rm -rf "$out"
  mkdir -p "$out"
  local -a cmd
  if [[ "$tool" == flow ]]; then
    case "$job" in
      q*) cmd=("$FLOW" run "$ROOT/bench/h2o/$job.flow") ;;
      *) cmd=("$FLOW" run "$ROOT/bench/jobs/$job.flow") ;;
    esac
  else
    local input="$DATA/trips.csv"
    [[ "$job" == q* ]] && input="$DATA/h2o.csv"
    cmd=("$VENV/bin/python" "$ROOT/bench/peers/${tool}_job.py" "$job" "$input" "$out")
  fi
  local status=ok
  rm -f "$tf"
  if ! /usr/bin/time -f "%e %M %U %S" -o "$tf" timeout "$TIMEOUT" "${cmd[@]}" > "$log" 2>&1; then
    status=error
  fi
  local wall="" rss="" usr="" sys="" cpu=""
  if [[ -s "$tf" ]]; then
    read -r wall rss usr sys < <(tail -n 1 "$tf")
    cpu="$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
  fi
  if [[ "$status" == ok ]]; then
    for o in $(outputs_of "$job"); do
      local n
      if [[ "$job" == q* ]]; then   # H2O: rows and the sum of the value columns
        n="$(python3 "$ROOT/bench/report.py" count --sums "$out/$o")" || n=missing
      else
        n="$(python3 "$ROOT/bench/report.py" count "$out/$o")" || n=missing
      fi
      echo "$size,$job,$tool,$rep,$o,$n" >> "$COUNTS"
    done
  else
    [[ "$tool" == flow ]] && any_flow_failed=1
    echo "   $tool $job FAILED (log: $log):"
    tail -n 5 "$log" | sed 's/^/      /'
  fi
  echo "$size,$job,$tool,$rep,$status,$wall,$rss,$cpu" >> "$MEAS"
  printf '   %-4s %-3s %-10s rep %d: %-5s %6s s wall %6s s cpu %8s KB\n' "$size" "$job" "$tool" "$rep" "$status" "${wall:--}" "${cpu:--}" "${rss:--}"
}

RUN_TOOLS=()
for t in "${TOOL_LIST[@]}"; do
  if [[ "$t" == flow && "$flow_ok" -eq 0 ]]; then continue; fi
  RUN_TOOLS+=("$t")
done

series() {   # label link target jobs...
  local label="$1" link="$2" target="$3"
  shift 3
  say "series $label: bench/data/$link -> $target; jobs $*; tools ${RUN_TOOLS[*]:-none}; $REPEAT rounds"
  ln -sfn "$target" "$DATA/$link"
  cat "$DATA/$target" > /dev/null   # warm the page cache so no tool pays the first read
  for rep in $(seq 1 "$REPEAT"); do
    for job in "$@"; do
      for tool in "${RUN_TOOLS[@]}"; do   # alternate tools: A B C A B C ... so drift cancels
        run_one "$label" "$job" "$tool" "$rep"
      done
    done
  done
}
for size in "${SIZES[@]}"; do
  if [[ "${#trips_jobs[@]}" -gt 0 ]]; then
    series "$size" trips.csv "trips_$size.csv" "${trips_jobs[@]}"
  fi
  if [[ "${#h2o_jobs[@]}" -gt 0 ]]; then
    for na in "${NAS[@]}"; do
      label="h2o-$size"
      [[ "$na" != 0 ]] && label="$label-na$na"
      series "$label" h2o.csv "$(h2o_file "$size" "$na")" "${h2o_jobs[@]}"
    done
  fi
done
rm -f "$RUNDIR/time.tmp"
echo "load_at_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RUNDIR/meta.txt"

# --- report ---------------------------------------------------------------------------------
say "results (raw data in $RUNDIR)"
python3 "$ROOT/bench/report.py" table --meas "$MEAS" --counts "$COUNTS" --meta "$RUNDIR/meta.txt" \
  --append "$ROOT/bench/RESULTS.md"
