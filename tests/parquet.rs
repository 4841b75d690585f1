//! The `parquet` source and sink (issue 15), run by the real binary on real files, with the
//! DuckDB CLI (`pip install duckdb-cli`; `.ci/setup/20-duckdb.sh` installs it) as the other
//! side: it writes the files flow reads and reads the files flow writes, and compares rows
//! inside DuckDB (`EXCEPT ALL` both ways, so equal multisets with exact values).

mod common;

use std::path::Path;
use std::process::Command;

fn flow(dir: &Path, args: &[&str]) -> (i32, String, String) {
    common::flow_in(dir, args)
}

/// Runs `flow run -q --summary json ARGS` and returns the summary.
fn run(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["run", "-q", "--summary", "json"];
    all.extend(args);
    let (code, _, err) = flow(dir, &all);
    assert_eq!(code, 0, "flow {all:?} failed: {err}");
    let at = err
        .find("{\n")
        .unwrap_or_else(|| panic!("no JSON summary in {err}"));
    serde_json::from_str(&err[at..]).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {err}"))
}

fn source_stage(summary: &serde_json::Value) -> &serde_json::Value {
    summary["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["kind"] == "source"))
        .expect("a source stage")
}

fn duckdb_path() -> String {
    common::duckdb_path().unwrap_or_else(|e| panic!("{e}"))
}

/// Runs SQL in DuckDB (in memory) in `dir`; its output as CSV without a header.
fn duckdb(dir: &Path, sql: &str) -> String {
    let out = Command::new("duckdb")
        .env("PATH", duckdb_path())
        .args(["-noheader", "-csv", "-c", sql])
        .current_dir(dir)
        .output()
        .expect("duckdb runs");
    assert!(
        out.status.success(),
        "duckdb failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Rows of `a` not in `b` plus rows of `b` not in `a` (multisets), counted by DuckDB.
fn differences(dir: &Path, a: &str, b: &str) -> String {
    duckdb(
        dir,
        &format!(
            "SELECT (SELECT count(*) FROM (({a}) EXCEPT ALL ({b}))) || ' ' || \
             (SELECT count(*) FROM (({b}) EXCEPT ALL ({a})))"
        ),
    )
}

/// Every flow type, nullable and not, with nulls, NaN-free floats, non-empty strings (CSV
/// cannot tell an empty string from a null).
const EVERY_TYPE: &str = "i::BIGINT AS i, (i * 0.25 - 3.5)::DOUBLE AS f, (i % 3 = 0) AS b, \
    'text ' || i || ' é' AS s, TIMESTAMP '2024-03-01 12:00:00' + INTERVAL (i * 37) SECOND AS ts, \
    CASE WHEN i % 4 = 0 THEN NULL ELSE i * 7 END::BIGINT AS ni, \
    CASE WHEN i % 5 = 0 THEN NULL ELSE i / 3.0 END::DOUBLE AS nf, \
    CASE WHEN i % 6 = 0 THEN NULL ELSE i % 2 = 0 END AS nb, \
    CASE WHEN i % 7 = 0 THEN NULL ELSE 'n' || i END AS ns, \
    CASE WHEN i % 8 = 0 THEN NULL ELSE TIMESTAMP '2000-01-01' + INTERVAL (i) DAY END AS nts, \
    (i % 1000)::INTEGER AS i32, (i / 8.0)::REAL AS f32, DATE '2020-01-01' + (i % 500)::INTEGER AS d";

/// DuckDB writes `rows` rows of `EVERY_TYPE` to `file` with `codec`, in row groups of 2,048.
fn duckdb_writes(dir: &Path, file: &str, rows: usize, codec: &str) {
    duckdb(
        dir,
        &format!(
            "COPY (SELECT {EVERY_TYPE} FROM range({rows}) t(i)) TO '{file}' \
             (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE 2048)"
        ),
    );
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write file");
}

/// The checked source types (`flow check --types`).
fn types(dir: &Path, script: &str) -> String {
    let (code, out, err) = flow(dir, &["check", "--types", script]);
    assert_eq!(code, 0, "{err}");
    out
}

/// DuckDB's view of flow's CSV output of EVERY_TYPE (timestamps as flow writes them: UTC).
const FLOW_CSV_COLUMNS: &str = "{'i': 'BIGINT', 'f': 'DOUBLE', 'b': 'BOOLEAN', 's': 'VARCHAR', \
    'ts': 'TIMESTAMPTZ', 'ni': 'BIGINT', 'nf': 'DOUBLE', 'nb': 'BOOLEAN', 'ns': 'VARCHAR', \
    'nts': 'TIMESTAMPTZ', 'i32': 'BIGINT', 'f32': 'DOUBLE', 'd': 'TIMESTAMPTZ'}";

/// DuckDB's rows of its own file, typed as flow reads them.
fn as_flow_types(file: &str) -> String {
    format!(
        "SELECT i, f, b, s, timezone('UTC', ts), ni, nf, nb, ns, timezone('UTC', nts), \
         i32::BIGINT, f32::DOUBLE, timezone('UTC', d::TIMESTAMP) FROM '{file}'"
    )
}

fn flow_reads_duckdb(codec: &str) {
    let dir = tempdir();
    let d = dir.path();
    duckdb_writes(d, "in.parquet", 10_000, codec);
    write(
        d,
        "job.flow",
        "source t = parquet(\"in.parquet\")\nt | sink csv(\"out.csv\")\n",
    );
    assert_eq!(
        types(d, "job.flow").lines().next().unwrap(),
        "job.flow: source t: { i: int?, f: float?, b: bool?, s: str?, ts: timestamp?, \
         ni: int?, nf: float?, nb: bool?, ns: str?, nts: timestamp?, i32: int?, f32: float?, \
         d: timestamp? }"
    );
    let s = run(d, &["job.flow"]);
    assert_eq!(source_stage(&s)["rows_out"], 10_000);
    let groups = duckdb(
        d,
        "SELECT count(DISTINCT row_group_id) FROM parquet_metadata('in.parquet')",
    );
    assert!(groups.parse::<u32>().unwrap() >= 4, "{groups} row groups");
    let flows =
        format!("SELECT * FROM read_csv('out.csv', header = true, columns = {FLOW_CSV_COLUMNS})");
    assert_eq!(differences(d, &flows, &as_flow_types("in.parquet")), "0 0");
    assert_eq!(
        duckdb(d, &format!("SELECT count(*) FROM ({flows})")),
        "10000"
    );
}

#[test]
fn flow_reads_snappy_parquet_written_by_duckdb() {
    flow_reads_duckdb("snappy");
}

#[test]
fn flow_reads_zstd_parquet_written_by_duckdb() {
    flow_reads_duckdb("zstd");
}

#[test]
fn flow_reads_uncompressed_parquet_written_by_duckdb() {
    flow_reads_duckdb("uncompressed");
}

/// flow reads a CSV with every type (nullable and not) and writes Parquet; DuckDB reads it.
fn duckdb_reads_flow(codec: &str, threads: &str) {
    let dir = tempdir();
    let d = dir.path();
    duckdb(
        d,
        "COPY (SELECT i::BIGINT AS i, (i * 0.25 - 3.5)::DOUBLE AS f, (i % 3 = 0) AS b, \
         'text ' || i AS s, TIMESTAMPTZ '2024-03-01 12:00:00+00' + INTERVAL (i * 37) SECOND AS ts, \
         CASE WHEN i % 4 = 0 THEN NULL ELSE i * 7 END::BIGINT AS ni, \
         CASE WHEN i % 5 = 0 THEN NULL ELSE i / 3.0 END::DOUBLE AS nf, \
         CASE WHEN i % 6 = 0 THEN NULL ELSE i % 2 = 0 END AS nb, \
         CASE WHEN i % 7 = 0 THEN NULL ELSE 'n' || i END AS ns, \
         CASE WHEN i % 8 = 0 THEN NULL ELSE TIMESTAMPTZ '2000-01-01 00:00:00+00' + INTERVAL (i) DAY END AS nts \
         FROM range(5000) t(i)) TO 'in.csv' (HEADER, DATEFORMAT '%Y-%m-%d', TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%SZ')",
    );
    write(
        d,
        "job.flow",
        &format!(
            "schema Row {{ i: int, f: float, b: bool, s: str, ts: timestamp, ni: int?, nf: float?, \
             nb: bool?, ns: str?, nts: timestamp? }}\n\
             source t: Row = csv(\"in.csv\")\n\
             t | sink parquet(\"out.parquet\", compression: \"{codec}\")\n"
        ),
    );
    let s = run(d, &["--threads", threads, "job.flow"]);
    assert_eq!(s["sinks"][0]["rows_written"], 5000);
    // Types and nullability as DuckDB sees them.
    assert_eq!(
        duckdb(
            d,
            "SELECT string_agg(name || ' ' || type || ' ' || repetition_type || ' ' || \
             coalesce(logical_type, ''), '; ') FROM parquet_schema('out.parquet') WHERE name <> 'schema'"
        ),
        "\"i INT64 REQUIRED ; f DOUBLE REQUIRED ; b BOOLEAN REQUIRED ; s BYTE_ARRAY REQUIRED StringType(); \
         ts INT64 REQUIRED TimestampType(isAdjustedToUTC=1, unit=TimeUnit(MILLIS=<null>, MICROS=MicroSeconds(), NANOS=<null>)); \
         ni INT64 OPTIONAL ; nf DOUBLE OPTIONAL ; nb BOOLEAN OPTIONAL ; ns BYTE_ARRAY OPTIONAL StringType(); \
         nts INT64 OPTIONAL TimestampType(isAdjustedToUTC=1, unit=TimeUnit(MILLIS=<null>, MICROS=MicroSeconds(), NANOS=<null>))\""
    );
    assert_eq!(
        duckdb(
            d,
            "SELECT string_agg(column_name || ' ' || column_type, ', ') FROM (DESCRIBE SELECT * FROM 'out.parquet')"
        ),
        "\"i BIGINT, f DOUBLE, b BOOLEAN, s VARCHAR, ts TIMESTAMP WITH TIME ZONE, ni BIGINT, \
         nf DOUBLE, nb BOOLEAN, ns VARCHAR, nts TIMESTAMP WITH TIME ZONE\""
    );
    let csv = "SELECT * FROM read_csv('in.csv', header = true, columns = {'i': 'BIGINT', \
        'f': 'DOUBLE', 'b': 'BOOLEAN', 's': 'VARCHAR', 'ts': 'TIMESTAMPTZ', 'ni': 'BIGINT', \
        'nf': 'DOUBLE', 'nb': 'BOOLEAN', 'ns': 'VARCHAR', 'nts': 'TIMESTAMPTZ'})";
    assert_eq!(differences(d, csv, "SELECT * FROM 'out.parquet'"), "0 0");
    let codec_name = match codec {
        "none" => "UNCOMPRESSED",
        c => &c.to_uppercase(),
    };
    assert_eq!(
        duckdb(
            d,
            "SELECT string_agg(DISTINCT compression, ',') FROM parquet_metadata('out.parquet')"
        ),
        codec_name
    );
    // Nothing but the output is left in the directory (no temporary parts).
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["in.csv", "job.flow", "out.parquet"]);
}

#[test]
fn duckdb_reads_snappy_parquet_written_by_flow() {
    duckdb_reads_flow("snappy", "1");
}

#[test]
fn duckdb_reads_zstd_parquet_written_by_flow() {
    duckdb_reads_flow("zstd", "1");
}

#[test]
fn duckdb_reads_uncompressed_parquet_written_by_flow() {
    duckdb_reads_flow("none", "1");
}

#[test]
fn four_workers_write_one_parquet_file() {
    duckdb_reads_flow("snappy", "4");
}

#[test]
fn flow_round_trip_keeps_types_and_nullability() {
    let dir = tempdir();
    let d = dir.path();
    write(
        d,
        "in.csv",
        "a,b,c,d,e\n1,1.5,true,x,2024-01-01T00:00:00Z\n2,,false,,\n",
    );
    write(
        d,
        "w.flow",
        "schema R { a: int, b: float?, c: bool, d: str?, e: timestamp? }\n\
         source t: R = csv(\"in.csv\")\nt | sink parquet(\"out.parquet\")\n",
    );
    run(d, &["w.flow"]);
    write(
        d,
        "r.flow",
        "source t = parquet(\"out.parquet\")\nt | sink csv(\"back.csv\")\n",
    );
    assert_eq!(
        types(d, "r.flow").lines().next().unwrap(),
        "r.flow: source t: { a: int, b: float?, c: bool, d: str?, e: timestamp? }"
    );
    run(d, &["r.flow"]);
    assert_eq!(
        std::fs::read_to_string(d.join("back.csv")).unwrap(),
        "a,b,c,d,e\n1,1.5,true,x,2024-01-01T00:00:00Z\n2,,false,,\n"
    );
}

#[test]
fn flow_writes_several_row_groups_of_bounded_size() {
    let dir = tempdir();
    let d = dir.path();
    let rows = flow::connectors::parquet::ROW_GROUP_ROWS * 2 + 1000;
    let mut csv = String::from("id,name\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},name{}\n", i % 97));
    }
    write(d, "in.csv", &csv);
    write(
        d,
        "w.flow",
        "source t = csv(\"in.csv\")\nt | sink parquet(\"out.parquet\", compression: \"zstd\")\n",
    );
    run(d, &["--threads", "2", "w.flow"]);
    assert_eq!(
        duckdb(
            d,
            "SELECT count(DISTINCT row_group_id) || ' ' || max(row_group_num_rows) || ' ' || \
             sum(row_group_num_rows) // 2 FROM parquet_metadata('out.parquet')"
        ),
        format!("3 {} {rows}", flow::connectors::parquet::ROW_GROUP_ROWS)
    );
    assert_eq!(
        duckdb(d, "SELECT count(*), sum(id) FROM 'out.parquet'"),
        format!("{rows},{}", rows * (rows - 1) / 2)
    );
}

/// A sorted `id` in row groups of 2,048: most groups cannot hold `id >= 9000`.
fn pruning_case(filter: &str) -> (tempfile::TempDir, String) {
    let dir = tempdir();
    let d = dir.path();
    duckdb_writes(d, "in.parquet", 10_000, "snappy");
    write(
        d,
        "job.flow",
        &format!(
            "source t = parquet(\"in.parquet\")\nt | filter {filter} | map {{ i, s }} | sink csv(\"out.csv\")\n"
        ),
    );
    (dir, filter.to_string())
}

fn pruned(filter: &str, sql_filter: &str, expect_rows_read: u64) {
    let (dir, _) = pruning_case(filter);
    let d = dir.path();
    let want = duckdb(
        d,
        &format!("SELECT count(*) FROM 'in.parquet' WHERE {sql_filter}"),
    );
    let s = run(d, &["job.flow"]);
    assert_eq!(source_stage(&s)["rows_out"], expect_rows_read, "{s}");
    let got = duckdb(d, "SELECT count(*) FROM read_csv('out.csv', header = true)");
    assert_eq!(got, want);
    assert_eq!(
        differences(
            d,
            "SELECT i, s FROM read_csv('out.csv', header = true, columns = {'i': 'BIGINT', 's': 'VARCHAR'})",
            &format!("SELECT i, s FROM 'in.parquet' WHERE {sql_filter}")
        ),
        "0 0"
    );
    // Without pushdown every row group is read, and the rows are the same.
    let s = run(d, &["--no-pushdown", "job.flow"]);
    assert_eq!(source_stage(&s)["rows_out"], 10_000);
    assert_eq!(
        duckdb(d, "SELECT count(*) FROM read_csv('out.csv', header = true)"),
        want
    );
}

#[test]
fn row_groups_are_pruned_by_statistics() {
    // Groups of 2,048 rows: only the last one (8,192..9,999) can hold i >= 9000.
    pruned("i != null && i >= 9000", "i >= 9000", 10_000 - 8192);
}

#[test]
fn pruning_understands_or_defaults_and_literals_on_the_left() {
    pruned(
        "(i ?? 0) < 100 || 9990 < i ?? 0",
        "i < 100 OR i > 9990",
        2048 + 1808,
    );
}

#[test]
fn pruning_on_a_string_column() {
    // s is 'text <i> é': "nope" sorts after every group's maximum.
    pruned("s != null && s == \"nope\"", "s = 'nope'", 0);
}

#[test]
fn a_filter_that_keeps_every_group_prunes_nothing() {
    pruned("f != null && f > -100.0", "f > -100.0", 10_000);
}

#[test]
fn the_same_rows_at_1_2_and_4_workers() {
    let dir = tempdir();
    let d = dir.path();
    // ~300,000 rows in row groups of 2,048: several pieces per worker.
    duckdb_writes(d, "in.parquet", 300_000, "zstd");
    write(
        d,
        "job.flow",
        "source t = parquet(\"in.parquet\")\nt | filter i != null && i % 3 == 1 | sink csv(\"out.csv\")\n",
    );
    let mut outs = Vec::new();
    for threads in ["1", "2", "4"] {
        let s = run(d, &["--threads", threads, "job.flow"]);
        assert_eq!(source_stage(&s)["rows_out"], 300_000);
        let mut lines: Vec<String> = std::fs::read_to_string(d.join("out.csv"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(lines.len(), 100_001);
        lines.sort();
        outs.push(lines);
    }
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[0], outs[2]);
}

#[test]
fn only_the_needed_columns_are_read() {
    let dir = tempdir();
    let d = dir.path();
    duckdb_writes(d, "in.parquet", 50_000, "snappy");
    write(
        d,
        "one.flow",
        "source t = parquet(\"in.parquet\")\nt | map { i } | sink csv(\"one.csv\")\n",
    );
    write(
        d,
        "all.flow",
        "source t = parquet(\"in.parquet\")\nt | sink csv(\"all.csv\")\n",
    );
    let one = source_stage(&run(d, &["one.flow"]))["bytes_read"]
        .as_u64()
        .unwrap();
    let all = source_stage(&run(d, &["all.flow"]))["bytes_read"]
        .as_u64()
        .unwrap();
    let col_i: u64 = duckdb(
        d,
        "SELECT sum(total_compressed_size) FROM parquet_metadata('in.parquet') WHERE path_in_schema = 'i'",
    )
    .parse()
    .unwrap();
    assert_eq!(one, col_i, "one column: {one} bytes, all: {all}");
    assert!(all > one * 5, "one column: {one} bytes, all: {all}");
}

#[test]
fn globs_read_every_matching_file() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::create_dir(d.join("parts")).unwrap();
    for k in 0..3 {
        duckdb(
            d,
            &format!(
                "COPY (SELECT i + {k} * 1000 AS id FROM range(1000) t(i)) TO 'parts/p{k}.parquet' (FORMAT parquet)"
            ),
        );
    }
    write(
        d,
        "job.flow",
        "source t = parquet(\"parts/*.parquet\")\nt | sink csv(\"out.csv\")\n",
    );
    let s = run(d, &["--threads", "2", "job.flow"]);
    assert_eq!(source_stage(&s)["rows_out"], 3000);
    assert_eq!(
        duckdb(
            d,
            "SELECT count(DISTINCT id), min(id), max(id) FROM read_csv('out.csv')"
        ),
        "3000,0,2999"
    );
}

fn failing(file_bytes: impl FnOnce(Vec<u8>) -> Vec<u8>, declared: bool) -> String {
    let dir = tempdir();
    let d = dir.path();
    duckdb_writes(d, "good.parquet", 10_000, "snappy");
    let bytes = std::fs::read(d.join("good.parquet")).unwrap();
    std::fs::write(d.join("bad.parquet"), file_bytes(bytes)).unwrap();
    let script = if declared {
        "schema S { i: int?, s: str?, ts: timestamp? }\nsource t: S = parquet(\"bad.parquet\")\nt | sink csv(\"out.csv\")\n"
    } else {
        "source t = parquet(\"bad.parquet\")\nt | sink csv(\"out.csv\")\n"
    };
    write(d, "job.flow", script);
    let (code, _, err) = flow(d, &["run", "-q", "job.flow"]);
    assert_ne!(code, 0, "{err}");
    assert!(!err.contains("panick"), "{err}");
    assert!(!d.join("out.csv").exists(), "a failed job left its output");
    err
}

#[test]
fn a_truncated_file_is_a_check_time_error_naming_it() {
    let err = failing(|b| b[..b.len() / 2].to_vec(), false);
    assert!(err.contains("E0034"), "{err}");
    assert!(err.contains("bad.parquet"), "{err}");
    assert!(err.contains("not a readable Parquet file"), "{err}");
}

#[test]
fn a_file_that_is_not_parquet_is_a_clear_error() {
    let err = failing(|_| b"id,name\n1,x\n".to_vec(), true);
    assert!(err.contains("bad.parquet"), "{err}");
    assert!(err.contains("not a readable Parquet file"), "{err}");
}

#[test]
fn corrupt_data_pages_are_a_run_error_naming_the_file() {
    // The footer is intact, the column chunks are not.
    let err = failing(
        |mut b| {
            let n = b.len();
            for i in (64..n / 2).step_by(11) {
                b[i] ^= 0x5a;
            }
            b
        },
        true,
    );
    assert!(err.contains("bad.parquet"), "{err}");
    assert!(err.contains("cannot read Parquet data"), "{err}");
}

#[test]
fn an_unsupported_column_type_is_a_check_time_diagnostic_naming_it() {
    let dir = tempdir();
    let d = dir.path();
    duckdb(
        d,
        "COPY (SELECT 1::BIGINT AS id, [1, 2] AS tags, 1.25::DECIMAL(9, 2) AS price) TO 'in.parquet' (FORMAT parquet)",
    );
    write(
        d,
        "job.flow",
        "source t = parquet(\"in.parquet\")\nt | sink csv(\"out.csv\")\n",
    );
    let (code, _, err) = flow(d, &["check", "job.flow"]);
    assert_ne!(code, 0);
    assert!(err.contains("E0034"), "{err}");
    assert!(err.contains("column `tags`"), "{err}");
    assert!(err.contains("job.flow:1:20"), "{err}");
    // A declared schema without the unsupported columns reads the others.
    write(
        d,
        "ok.flow",
        "schema S { id: int? }\nsource t: S = parquet(\"in.parquet\")\nt | sink csv(\"out.csv\")\n",
    );
    run(d, &["ok.flow"]);
    assert_eq!(
        std::fs::read_to_string(d.join("out.csv")).unwrap(),
        "id\n1\n"
    );
    // Declaring the unsupported column is an error naming it and its Parquet type.
    write(
        d,
        "bad.flow",
        "schema S { id: int?, price: float? }\nsource t: S = parquet(\"in.parquet\")\nt | sink csv(\"out2.csv\")\n",
    );
    let (code, _, err) = flow(d, &["run", "-q", "bad.flow"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("column `price`") && err.contains("DECIMAL(9, 2)"),
        "{err}"
    );
}

#[test]
fn a_declared_schema_is_checked_against_the_file() {
    let dir = tempdir();
    let d = dir.path();
    duckdb_writes(d, "in.parquet", 100, "snappy");
    // A missing column: at check time, as for a CSV header.
    write(
        d,
        "missing.flow",
        "schema S { i: int?, nope: str? }\nsource t: S = parquet(\"in.parquet\")\nt | sink csv(\"o.csv\")\n",
    );
    let (code, _, err) = flow(d, &["check", "missing.flow"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("`nope`") && err.contains("not in the header"),
        "{err}"
    );
    // A type that differs: before any data moves, naming the file and the column.
    write(
        d,
        "wrong.flow",
        "schema S { i: str? }\nsource t: S = parquet(\"in.parquet\")\nt | sink csv(\"o.csv\")\n",
    );
    let (code, _, err) = flow(d, &["run", "-q", "wrong.flow"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("in.parquet") && err.contains("column `i` is int in the file"),
        "{err}"
    );
    // A non-nullable declared column: a null there is a row error (the source's policy).
    write(
        d,
        "strict.flow",
        "schema S { ni: int }\nsource t: S = parquet(\"in.parquet\", on_error: skip)\nt | sink csv(\"o.csv\")\n",
    );
    let s = run(d, &["strict.flow"]);
    assert_eq!(source_stage(&s)["errored"], 25);
    assert_eq!(s["sinks"][0]["rows_written"], 75);
}

#[test]
fn a_filter_that_can_fail_is_not_used_for_pruning() {
    // `100 / (i - 5)` fails on i = 5, in the first row group, which `i >= 9000` alone would
    // skip: the row error must still be counted, so nothing is pruned.
    let dir = tempdir();
    let d = dir.path();
    duckdb_writes(d, "in.parquet", 10_000, "snappy");
    write(
        d,
        "job.flow",
        "source t = parquet(\"in.parquet\")\n\
         t | filter i != null && 100 / (i - 5) != 1000 && i >= 9000 @on_error(skip) | sink csv(\"out.csv\")\n",
    );
    let s = run(d, &["job.flow"]);
    assert_eq!(source_stage(&s)["rows_out"], 10_000);
    assert_eq!(s["sinks"][0]["rows_written"], 1000);
    let errored: u64 = s["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["errored"].as_u64().unwrap())
        .sum();
    assert_eq!(errored, 1, "{s}");
}

#[test]
fn limit_gives_the_first_rows_in_file_order_at_any_worker_count() {
    let dir = tempdir();
    let d = dir.path();
    duckdb_writes(d, "in.parquet", 100_000, "snappy");
    write(
        d,
        "job.flow",
        "source t = parquet(\"in.parquet\")\nt | map { i } | limit 30000 | sink csv(\"out.csv\")\n",
    );
    let want: String = std::iter::once("i".to_string())
        .chain((0..30_000).map(|i| i.to_string()))
        .map(|l| l + "\n")
        .collect();
    for threads in ["1", "2", "4"] {
        run(d, &["--threads", threads, "job.flow"]);
        let got = std::fs::read_to_string(d.join("out.csv")).unwrap();
        assert!(
            got == want,
            "{threads} threads: not the first 30,000 rows in order"
        );
    }
}

#[test]
fn an_empty_result_is_a_valid_empty_parquet_file() {
    let dir = tempdir();
    let d = dir.path();
    duckdb_writes(d, "in.parquet", 1000, "snappy");
    write(
        d,
        "w.flow",
        "source t = parquet(\"in.parquet\")\nt | filter i != null && i < 0 | sink parquet(\"empty.parquet\")\n",
    );
    let s = run(d, &["--threads", "2", "w.flow"]);
    assert_eq!(source_stage(&s)["rows_out"], 0, "every row group is pruned");
    assert_eq!(duckdb(d, "SELECT count(*) FROM 'empty.parquet'"), "0");
    // flow reads it back: the schema from the footer, no rows.
    write(
        d,
        "r.flow",
        "source t = parquet(\"empty.parquet\")\nt | map { i, s } | sink csv(\"out.csv\")\n",
    );
    run(d, &["r.flow"]);
    assert_eq!(std::fs::read_to_string(d.join("out.csv")).unwrap(), "i,s\n");
}

#[test]
fn two_worker_processes_write_one_parquet_file() {
    let dir = tempdir();
    let d = dir.path();
    duckdb_writes(d, "in.parquet", 20_000, "zstd");
    write(
        d,
        "job.flow",
        "source t = parquet(\"in.parquet\")\nt | filter i != null && i % 2 == 0 | sink parquet(\"out.parquet\")\n",
    );
    let (code, _, err) = flow(d, &["run", "-q", "--nodes", "2", "job.flow"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        differences(
            d,
            "SELECT * FROM 'out.parquet'",
            &format!("{} WHERE i % 2 = 0", as_flow_types("in.parquet")),
        ),
        "0 0"
    );
}

#[test]
fn a_null_in_a_column_the_job_never_reads_rejects_nothing_whatever_the_flags() {
    let dir = tempdir();
    let d = dir.path();
    duckdb_writes(d, "in.parquet", 100, "snappy");
    write(
        d,
        "job.flow",
        "schema S { i: int, ni: int }\nsource t: S = parquet(\"in.parquet\")\nt | map { i } | sink csv(\"o.csv\")\n",
    );
    for flags in [&[][..], &["--no-pushdown"][..]] {
        let mut args = flags.to_vec();
        args.push("job.flow");
        let s = run(d, &args);
        assert_eq!(source_stage(&s)["errored"], 0, "{flags:?}");
        assert_eq!(s["sinks"][0]["rows_written"], 100, "{flags:?}");
    }
}

#[test]
fn pruning_on_a_float_column() {
    // f = i / 4 - 3.5: the groups from 6,144 on hold f > 2000.0 (i > 8014).
    pruned("f != null && f > 2000.0", "f > 2000.0", 2048 + 1808);
}

#[test]
fn a_failed_job_leaves_no_parquet_file() {
    let dir = tempdir();
    let d = dir.path();
    let mut csv = String::from("id,x\n");
    for i in 0..200_000 {
        csv.push_str(&format!("{i},{}\n", i % 10));
    }
    csv.push_str("200000,not a number\n");
    write(d, "in.csv", &csv);
    write(
        d,
        "job.flow",
        "schema S { id: int, x: int }\nsource t: S = csv(\"in.csv\")\nt | sink parquet(\"out.parquet\")\n",
    );
    let (code, _, err) = flow(d, &["run", "-q", "--threads", "2", "job.flow"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("not a number"), "{err}");
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["in.csv", "job.flow"]);
}
