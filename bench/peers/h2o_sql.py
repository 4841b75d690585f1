"""The H2O.ai db-benchmark group-by questions (bench/h2o/*.flow) in SQL, shared by the DuckDB and
DataFusion peers; the table is `x` (bench/gen_h2o.rs)."""

IDS = "id1, id2, id3, id4, id5, id6"
QUERIES = {
    "q1": "SELECT id1, sum(v1) AS v1 FROM x GROUP BY id1",
    "q2": "SELECT id1, id2, sum(v1) AS v1 FROM x GROUP BY id1, id2",
    "q3": "SELECT id3, sum(v1) AS v1, avg(v3) AS v3 FROM x GROUP BY id3",
    "q4": "SELECT id4, avg(v1) AS v1, avg(v2) AS v2, avg(v3) AS v3 FROM x GROUP BY id4",
    "q5": "SELECT id6, sum(v1) AS v1, sum(v2) AS v2, sum(v3) AS v3 FROM x GROUP BY id6",
    "q7": "SELECT id3, max(v1) - min(v2) AS range_v1_v2 FROM x GROUP BY id3",
    "q10": f"SELECT {IDS}, sum(v3) AS v3, count(*) AS count FROM x GROUP BY {IDS}",
}
TYPES = [("id1", "str"), ("id2", "str"), ("id3", "str"), ("id4", "int"), ("id5", "int"),
         ("id6", "int"), ("v1", "int"), ("v2", "int"), ("v3", "float")]
