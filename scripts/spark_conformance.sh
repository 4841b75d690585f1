#!/usr/bin/env bash
# Spark conformance (issue 12; heavy, not in CI: Spark starts in 10-60 s per job).
#
# Every example (examples/*.flow) and every SQL case (tests/sql_cases/*.flow) runs natively and
# with `flow run --target spark` in a fresh copy of its directory; the outputs (files under out/
# and standard output) must be the same multiset of rows: CSV fields and JSON values by value,
# ints exactly, floats to 9 significant digits (as tests/postgres.rs compares). A script that
# does not translate must fail on Spark with exactly the codes `flow compile --target sql:spark`
# gives and write nothing; one that fails natively must fail on Spark too, writing nothing;
# `upper_non_ascii` must stop with its message. Then the deadline: FLOW_SPARK_TIMEOUT=1 must stop
# the job quickly, leave no output and no Spark process. Prints a pass/fail table and a total;
# exit 1 if anything failed.
#
# Spark: FLOW_SPARK_HOME / SPARK_HOME / spark-sql on PATH if set, else the `pyspark` package in
# ~/.cache/flow-spark/venv, installed here on first use (`pip install pyspark`, ~500 MB). Java 17+
# must be installed (`apt-get install openjdk-17-jre-headless`). The flow binary: $FLOW_BIN, else
# target/release/flow (built with `cargo build --release` if missing).
#
#   scripts/spark_conformance.sh            # all cases
#   scripts/spark_conformance.sh tricky     # the cases whose name contains "tricky"
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
filter=${1:-}

venv="$HOME/.cache/flow-spark/venv"
if [ -z "${FLOW_SPARK_HOME:-}" ] && [ -z "${SPARK_HOME:-}" ] && ! command -v spark-sql >/dev/null \
  && ! ls "$venv"/lib/python3*/site-packages/pyspark/bin/spark-sql >/dev/null 2>&1; then
  echo "installing pyspark into $venv ..." >&2
  python3 -m venv "$venv" && "$venv/bin/pip" install -q pyspark || {
    echo "cannot install pyspark" >&2
    exit 1
  }
fi

flow=${FLOW_BIN:-$root/target/release/flow}
if [ ! -x "$flow" ]; then
  cargo build --release || exit 1
fi

work=$(mktemp -d /tmp/flow-spark-conf.XXXXXX)
trap 'rm -rf "$work"' EXIT

# compare.py NATIVE_DIR SPARK_DIR: exit 0 when the outputs are the same multisets.
cat >"$work/compare.py" <<'PY'
import csv, io, json, math, os, sys

def norm(s):
    try:
        return str(int(s))
    except ValueError:
        pass
    try:
        x = float(s)
    except ValueError:
        return s
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return "%.8e" % x

def value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and v.is_integer() and abs(v) < 9e15:
            return norm(str(int(v)))
        return norm(repr(v))
    return norm(str(v))

def rows(text, is_json):
    out = []
    if is_json:
        for line in text.splitlines():
            if line.strip():
                obj = json.loads(line)
                out.append(",".join("%s=%s" % (k, value(obj[k])) for k in sorted(obj)))
    else:
        for rec in csv.reader(io.StringIO(text, newline="")):
            out.append("|".join(norm(f) for f in rec))
    return sorted(out)

def outputs(d):
    res = {"<stdout>": None}
    with open(os.path.join(d, "stdout.txt"), encoding="utf-8") as f:
        t = f.read()
    res["<stdout>"] = rows(t, t.lstrip().startswith("{"))
    out = os.path.join(d, "case", "out")
    left = []
    if os.path.isdir(out):
        for name in sorted(os.listdir(out)):
            if name.startswith("."):
                left.append(name)
                continue
            with open(os.path.join(out, name), encoding="utf-8") as f:
                res[name] = rows(f.read(), name.endswith(".jsonl"))
    return res, left

native, _ = outputs(sys.argv[1])
spark, left = outputs(sys.argv[2])
if left:
    print("temporary files left: %s" % left)
    sys.exit(1)
if sorted(native) != sorted(spark):
    print("outputs %s, natively %s" % (sorted(spark), sorted(native)))
    sys.exit(1)
for k in sorted(native):
    if native[k] != spark[k]:
        a, b = set(native[k]), set(spark[k])
        print("%s differs: %d rows natively, %d on Spark; only native: %s; only Spark: %s"
              % (k, len(native[k]), len(spark[k]), sorted(a - b)[:3], sorted(b - a)[:3]))
        sys.exit(1)
print("%d outputs, %d rows" % (len(native), sum(len(v) for v in native.values())))
PY

# run DIR SCRIPT OUTDIR [ARGS…]: runs flow on a fresh copy of DIR into OUTDIR.
run() {
  local dir=$1 script=$2 out=$3
  shift 3
  mkdir -p "$out/case"
  (cd "$dir" && tar --exclude=./out -cf - .) | (cd "$out/case" && tar -xf -)
  (cd "$out/case" && "$flow" run -q "$@" "$script" >"$out/stdout.txt" 2>"$out/stderr.txt")
  echo $? >"$out/rc"
}

declare -a names results
pass=0
fail=0
report() {
  names+=("$1")
  results+=("$2")
  case $2 in PASS*) pass=$((pass + 1)) ;; *) fail=$((fail + 1)) ;; esac
  printf '%-28s %s\n' "$1" "$2" >&2
}

for f in examples/*.flow tests/sql_cases/*.flow; do
  dir=$(dirname "$f")
  script=$(basename "$f")
  case=${script%.flow}
  [ -n "$filter" ] && [[ $case != *"$filter"* ]] && continue
  n="$work/$case/native"
  s="$work/$case/spark"
  codes=$(cd "$dir" && "$flow" compile --target sql:spark "$script" 2>&1 >/dev/null |
    grep -o '^\[E[0-9]*\]' | sort -u | tr '\n' ' ')
  start=$(date +%s)
  run "$dir" "$script" "$s" --target spark
  took=$(($(date +%s) - start))
  src=$(cat "$s/rc")
  written=$(find "$s/case/out" -type f 2>/dev/null | wc -l)
  if [ -n "$codes" ]; then
    missing=""
    for c in $codes; do grep -qF "$c" "$s/stderr.txt" || missing="$missing $c"; done
    if [ "$src" = 0 ] || [ -n "$missing" ] || [ "$written" != 0 ]; then
      report "$case" "FAIL refused with ${codes}but exit $src, missing${missing:- none}, $written files"
    else
      report "$case" "PASS refused: ${codes}(no output)"
    fi
    continue
  fi
  run "$dir" "$script" "$n"
  nrc=$(cat "$n/rc")
  if [ "$case" = upper_non_ascii ]; then
    if [ "$src" != 0 ] && grep -q "upper of non-ASCII text is not translated" "$s/stderr.txt" \
      && [ "$written" = 0 ]; then
      report "$case" "PASS stops on Spark as documented (${took}s)"
    else
      report "$case" "FAIL expected the documented stop; exit $src: $(head -c 300 "$s/stderr.txt")"
    fi
  elif [ "$nrc" != 0 ]; then
    if [ "$src" != 0 ] && [ "$written" = 0 ]; then
      report "$case" "PASS fails natively and on Spark, no output (${took}s)"
    else
      report "$case" "FAIL fails natively but Spark: exit $src, $written files"
    fi
  elif [ "$src" != 0 ]; then
    report "$case" "FAIL on Spark: $(tr '\n' ' ' <"$s/stderr.txt" | head -c 400)"
  elif msg=$(python3 "$work/compare.py" "$n" "$s"); then
    report "$case" "PASS same multisets: $msg (${took}s)"
  else
    report "$case" "FAIL $msg"
  fi
done

# The deadline: a 1 s FLOW_SPARK_TIMEOUT stops Spark (its whole process group) at once.
if [ -z "$filter" ] || [[ timeout == *"$filter"* ]]; then
  t="$work/timeout"
  start=$(date +%s)
  mkdir -p "$t/tmp" # flow's work directory for Spark (named in Spark's command line) goes here
  TMPDIR="$t/tmp" FLOW_SPARK_TIMEOUT=1 run tests/sql_cases tricky.flow "$t" --target spark
  took=$(($(date +%s) - start))
  sleep 1
  alive=$(pgrep -f "$t/tmp/" | wc -l)
  written=$(find "$t/case/out" -type f 2>/dev/null | wc -l)
  if [ "$(cat "$t/rc")" = 1 ] && grep -q "did not finish within" "$t/stderr.txt" \
    && [ "$took" -le 10 ] && [ "$written" = 0 ] && [ "$alive" = 0 ]; then
    report "timeout" "PASS stopped after ${took}s, no output, no Spark process left"
  else
    report "timeout" "FAIL exit $(cat "$t/rc") after ${took}s, $written files, $alive processes: $(head -c 300 "$t/stderr.txt")"
  fi
fi

echo
printf '%-28s %s\n' case result
for i in "${!names[@]}"; do printf '%-28s %s\n' "${names[$i]}" "${results[$i]}"; done
echo
echo "spark: $pass passed, $fail failed"
[ "$fail" = 0 ]
