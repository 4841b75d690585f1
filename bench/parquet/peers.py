"""J1 on Parquet for the peers: peers.py TOOL INPUT.parquet OUTDIR, TOOL = duckdb | polars |
datafusion. The same job as bench/parquet/j1.flow (and bench/peers/*_job.py j1 on CSV), two
threads each; output CSV with a header."""
import os
import sys

tool, inp, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
J1 = ("SELECT id, vendor, fare, coalesce(tip, 0.0) / fare * 100.0 AS tip_pct, upper(city) AS city "
      "FROM trips WHERE distance > 10.0 AND fare > 0.0")

if tool == "duckdb":
    import duckdb
    con = duckdb.connect()
    con.execute("SET threads=2")
    con.execute(f"CREATE VIEW trips AS SELECT * FROM read_parquet('{inp}')")
    con.execute(f"COPY ({J1}) TO '{out}/j1.csv' (FORMAT CSV, HEADER true)")
elif tool == "polars":
    os.environ.setdefault("POLARS_MAX_THREADS", "2")
    import polars as pl
    (pl.scan_parquet(inp)
     .filter((pl.col("distance") > 10.0) & (pl.col("fare") > 0.0))
     .select("id", "vendor", "fare",
             (pl.col("tip").fill_null(0.0) / pl.col("fare") * 100.0).alias("tip_pct"),
             pl.col("city").str.to_uppercase())
     .sink_csv(f"{out}/j1.csv"))
elif tool == "datafusion":
    from datafusion import SessionConfig, SessionContext
    ctx = SessionContext(SessionConfig().with_target_partitions(2))
    ctx.register_parquet("trips", inp)
    ctx.sql(J1).write_csv(f"{out}/j1.csv", with_header=True)
else:
    sys.exit(f"unknown tool {tool}")
