"""DataFusion version of the flow benchmark jobs: datafusion_job.py JOB INPUT OUTDIR (bench/README.md)."""
import os
import sys

import pyarrow as pa
from datafusion import SessionConfig, SessionContext, col, lit
from datafusion import functions as F
from h2o_sql import QUERIES, TYPES

job, inp, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)

ctx = SessionContext(SessionConfig().with_target_partitions(2))
schema = pa.schema([("id", pa.int64()), ("vendor", pa.string()), ("pickup_ts", pa.int64()),
                    ("distance", pa.float64()), ("fare", pa.float64()), ("tip", pa.float64()),
                    ("city", pa.string()), ("note", pa.string())])
if job in QUERIES:
    arrow_types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}
    ctx.register_csv("x", inp, schema=pa.schema([(c, arrow_types[t]) for c, t in TYPES]),
                     has_header=True)
else:
    ctx.register_csv("trips", inp, schema=schema, has_header=True)
J1 = ("SELECT id, vendor, fare, coalesce(tip, 0.0) / fare * 100.0 AS tip_pct, upper(city) AS city "
      "FROM trips WHERE distance > 10.0 AND fare > 0.0")

if job == "j1":
    ctx.sql(J1).write_csv(f"{out}/j1.csv", with_header=True)
elif job == "j2":
    ctx.sql("SELECT vendor, city, count(*) AS n, sum(fare) AS revenue, avg(distance) AS avg_distance "
            "FROM trips GROUP BY vendor, city").write_csv(f"{out}/j2.csv", with_header=True)
elif job == "j3":
    # Three outputs from one cached (in-memory) J1 result.
    long = ctx.sql(J1).cache()
    long.write_csv(f"{out}/j3_long.csv", with_header=True)
    long.filter(col("tip_pct") > lit(20.0)).write_json(f"{out}/j3_generous.jsonl")
    long.aggregate([col("vendor")], [F.count(lit(1)).alias("n")]).write_csv(
        f"{out}/j3_by_vendor.csv", with_header=True)
elif job in QUERIES:
    ctx.sql(QUERIES[job]).write_csv(f"{out}/{job}.csv", with_header=True)
else:
    sys.exit(f"unknown job {job}")
