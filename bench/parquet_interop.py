"""Parquet interop of flow with Polars and pyarrow (issue 15), a documented manual check, not
in CI (it needs polars and pyarrow: bench/.venv, or BENCH_VENV as for bench/run.sh):

    bench/.venv/bin/python bench/parquet_interop.py [path/to/flow]

1. Polars (zstd) and pyarrow (snappy, row groups of 1,000) write every type flow reads, with
   nulls; flow reads each (`flow check --types` shows the mapped types) and writes it back as
   Parquet; Polars reads flow's file and must find the same rows, with the types mapped as
   documented (int32 → int64, float32 → float64, date → timestamp UTC, timestamp → µs UTC).
2. pyarrow reads flow's schema: int64, double, bool, string, timestamp[us, tz=UTC], and a
   required column stays non-nullable through a flow round trip.
Prints one line per check and exits non-zero on any failure.
"""
import datetime as dt
import os
import subprocess
import sys
import tempfile

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOW = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/flow")
N = 5000
failures = 0


def check(name, ok, detail=""):
    global failures
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
    failures += not ok


def flow(d, *args):
    r = subprocess.run([FLOW, *args], cwd=d, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"flow {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


base = dt.datetime(2024, 3, 1, 12, 0, 0)
frame = pl.DataFrame({
    "i": pl.Series(range(N), dtype=pl.Int64),
    "ni": pl.Series([None if k % 4 == 0 else k * 7 for k in range(N)], dtype=pl.Int64),
    "i32": pl.Series([k % 1000 for k in range(N)], dtype=pl.Int32),
    "f": pl.Series([k * 0.25 - 3.5 for k in range(N)], dtype=pl.Float64),
    "nf": pl.Series([None if k % 5 == 0 else k / 3 for k in range(N)], dtype=pl.Float64),
    "f32": pl.Series([k / 8 for k in range(N)], dtype=pl.Float32),
    "b": pl.Series([k % 3 == 0 for k in range(N)], dtype=pl.Boolean),
    "nb": pl.Series([None if k % 6 == 0 else k % 2 == 0 for k in range(N)], dtype=pl.Boolean),
    "s": pl.Series([f"text {k} é" for k in range(N)], dtype=pl.String),
    "ns": pl.Series([None if k % 7 == 0 else f"n{k}" for k in range(N)], dtype=pl.String),
    "ts": pl.Series([base + dt.timedelta(seconds=37 * k) for k in range(N)],
                    dtype=pl.Datetime("us", "UTC")),
    "nts": pl.Series([None if k % 8 == 0 else base + dt.timedelta(days=k) for k in range(N)],
                     dtype=pl.Datetime("ms")),
    "d": pl.Series([dt.date(2020, 1, 1) + dt.timedelta(days=k % 500) for k in range(N)],
                   dtype=pl.Date),
})
# As flow reads it back: wider ints and floats, timestamps in µs UTC, dates as midnight UTC.
expected = frame.with_columns(
    pl.col("i32").cast(pl.Int64), pl.col("f32").cast(pl.Float64),
    pl.col("nts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
    pl.col("d").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
)

with tempfile.TemporaryDirectory() as d:
    frame.write_parquet(os.path.join(d, "polars.parquet"), compression="zstd")
    pq.write_table(frame.to_arrow(), os.path.join(d, "pyarrow.parquet"), compression="snappy",
                   row_group_size=1000)
    for writer in ["polars", "pyarrow"]:
        src = f"{writer}.parquet"
        with open(os.path.join(d, f"{writer}.flow"), "w") as f:
            f.write(f'source t = parquet("{src}")\nt | sink parquet("flow_{writer}.parquet")\n')
        types = flow(d, "check", "--types", f"{writer}.flow").splitlines()[0]
        want = ("source t: { i: int?, ni: int?, i32: int?, f: float?, nf: float?, f32: float?, "
                "b: bool?, nb: bool?, s: str?, ns: str?, ts: timestamp?, nts: timestamp?, "
                "d: timestamp? }")
        check(f"flow reads {writer}'s types", types.endswith(want), types)
        flow(d, "run", "-q", "--threads", "2", f"{writer}.flow")
        back = pl.read_parquet(os.path.join(d, f"flow_{writer}.parquet"))
        same = back.sort("i").equals(expected)
        check(f"Polars reads flow's copy of {writer}'s file: same rows and mapped types", same,
              f"{back.schema} vs {expected.schema}")
        groups = pq.ParquetFile(os.path.join(d, src)).metadata.num_row_groups
        if writer == "pyarrow":
            check("the pyarrow file has several row groups", groups >= 5, str(groups))

    # flow's own schema as pyarrow sees it, with a required column.
    with open(os.path.join(d, "in.csv"), "w") as f:
        f.write("a,b,c,d,e\n1,1.5,true,x,2024-01-01T00:00:00Z\n2,,false,,\n")
    with open(os.path.join(d, "w.flow"), "w") as f:
        f.write('schema R { a: int, b: float?, c: bool, d: str?, e: timestamp? }\n'
                'source t: R = csv("in.csv")\nt | sink parquet("w.parquet")\n')
    flow(d, "run", "-q", "w.flow")
    schema = pq.read_schema(os.path.join(d, "w.parquet"))
    want = pa.schema([pa.field("a", pa.int64(), nullable=False),
                      pa.field("b", pa.float64()),
                      pa.field("c", pa.bool_(), nullable=False),
                      pa.field("d", pa.string()),
                      pa.field("e", pa.timestamp("us", tz="UTC"))])
    check("pyarrow reads flow's schema and nullability", schema.equals(want), str(schema))
    rows = pq.read_table(os.path.join(d, "w.parquet")).to_pylist()
    check("pyarrow reads flow's rows", rows == [
        {"a": 1, "b": 1.5, "c": True, "d": "x",
         "e": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)},
        {"a": 2, "b": None, "c": False, "d": None, "e": None}], str(rows))

print(f"{failures} failed")
sys.exit(1 if failures else 0)
