"""DuckDB version of the flow benchmark jobs: duckdb_job.py JOB INPUT OUTDIR (bench/README.md)."""
import os
import sys

import duckdb

from h2o_sql import QUERIES, TYPES

job, inp, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
con = duckdb.connect()
con.execute("SET threads=2")

COLUMNS = ("{'id': 'BIGINT', 'vendor': 'VARCHAR', 'pickup_ts': 'BIGINT', 'distance': 'DOUBLE', "
           "'fare': 'DOUBLE', 'tip': 'DOUBLE', 'city': 'VARCHAR', 'note': 'VARCHAR'}")
TRIPS = f"read_csv('{inp}', header = true, columns = {COLUMNS}, quote = '\"', escape = '\"')"
J1 = (f"SELECT id, vendor, fare, coalesce(tip, 0.0) / fare * 100.0 AS tip_pct, upper(city) AS city "
      f"FROM {TRIPS} WHERE distance > 10.0 AND fare > 0.0")


def copy_csv(query, path):
    con.execute(f"COPY ({query}) TO '{path}' (FORMAT CSV, HEADER true)")


if job == "j1":
    copy_csv(J1, f"{out}/j1.csv")
elif job == "j2":
    copy_csv(f"SELECT vendor, city, count(*) AS n, sum(fare) AS revenue, avg(distance) AS avg_distance "
             f"FROM {TRIPS} GROUP BY vendor, city", f"{out}/j2.csv")
elif job == "j3":
    # Three queries over one materialized J1 result (a plain view would scan the CSV three times).
    con.execute(f"CREATE TEMP TABLE long AS {J1}")
    copy_csv("SELECT * FROM long", f"{out}/j3_long.csv")
    con.execute(f"COPY (SELECT * FROM long WHERE tip_pct > 20.0) TO '{out}/j3_generous.jsonl' (FORMAT JSON)")
    copy_csv("SELECT vendor, count(*) AS n FROM long GROUP BY vendor", f"{out}/j3_by_vendor.csv")
elif job in QUERIES:
    sql_types = {"str": "VARCHAR", "int": "BIGINT", "float": "DOUBLE"}
    cols = ", ".join(f"'{c}': '{sql_types[t]}'" for c, t in TYPES)
    con.execute(f"CREATE VIEW x AS SELECT * FROM read_csv('{inp}', header = true, columns = {{{cols}}})")
    copy_csv(QUERIES[job], f"{out}/{job}.csv")
else:
    sys.exit(f"unknown job {job}")
