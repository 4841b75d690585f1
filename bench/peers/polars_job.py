"""Polars version of the flow benchmark jobs: polars_job.py JOB INPUT OUTDIR (bench/README.md)."""
import os
import sys

os.environ.setdefault("POLARS_MAX_THREADS", "2")  # must be set before polars is imported
import polars as pl  # noqa: E402
from h2o_sql import TYPES  # noqa: E402

job, inp, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)

SCHEMA = {"id": pl.Int64, "vendor": pl.String, "pickup_ts": pl.Int64, "distance": pl.Float64,
          "fare": pl.Float64, "tip": pl.Float64, "city": pl.String, "note": pl.String}
trips = pl.scan_csv(inp, has_header=True, schema=SCHEMA)
x = pl.scan_csv(inp, has_header=True,
                schema={c: {"str": pl.String, "int": pl.Int64, "float": pl.Float64}[t] for c, t in TYPES})
v1, v2, v3 = pl.col("v1"), pl.col("v2"), pl.col("v3")
H2O = {
    "q1": (["id1"], [v1.sum()]),
    "q2": (["id1", "id2"], [v1.sum()]),
    "q3": (["id3"], [v1.sum(), v3.mean()]),
    "q4": (["id4"], [v1.mean(), v2.mean(), v3.mean()]),
    "q5": (["id6"], [v1.sum(), v2.sum(), v3.sum()]),
    "q7": (["id3"], [(v1.max() - v2.min()).alias("range_v1_v2")]),
    "q10": (["id1", "id2", "id3", "id4", "id5", "id6"], [v3.sum(), pl.len().alias("count")]),
}
j1 = (trips.filter((pl.col("distance") > 10.0) & (pl.col("fare") > 0.0))
      .select("id", "vendor", "fare",
              (pl.col("tip").fill_null(0.0) / pl.col("fare") * 100.0).alias("tip_pct"),
              pl.col("city").str.to_uppercase()))

if job == "j1":
    j1.sink_csv(f"{out}/j1.csv")
elif job == "j2":
    (trips.group_by("vendor", "city")
     .agg(pl.len().alias("n"), pl.col("fare").sum().alias("revenue"),
          pl.col("distance").mean().alias("avg_distance"))
     .sink_csv(f"{out}/j2.csv"))
elif job == "j3":
    # Three lazy sinks collected together: Polars shares the common J1 sub-plan.
    pl.collect_all([
        j1.sink_csv(f"{out}/j3_long.csv", lazy=True),
        j1.filter(pl.col("tip_pct") > 20.0).sink_ndjson(f"{out}/j3_generous.jsonl", lazy=True),
        j1.group_by("vendor").agg(pl.len().alias("n")).sink_csv(f"{out}/j3_by_vendor.csv", lazy=True),
    ])
elif job in H2O:
    keys, aggs = H2O[job]
    x.group_by(keys).agg(aggs).sink_csv(f"{out}/{job}.csv")
else:
    sys.exit(f"unknown job {job}")
