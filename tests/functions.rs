//! End-to-end cases for the regular-expression and date/time builtins, with DuckDB as the
//! oracle: the `flow` binary runs a script over generated inputs, the DuckDB CLI runs an
//! equivalent query over the same files, and the rows (as a multiset) must be equal. Each case
//! runs at 1, 2 and 4 workers and on the interpreter, each its own test (`CASE::2_workers`).
//!
//! Timestamps are compared as text formatted on both sides, and the inputs keep to what both
//! engines define alike: ASCII patterns (Rust's `\d` is Unicode, RE2's ASCII), whole seconds,
//! wall-clock times away from the night hours when clocks change.
//!
//! The DuckDB CLI comes from `pip install duckdb-cli` (.ci/setup/20-duckdb.sh):
//! `export PATH=$PATH:$HOME/.cache/flow-duckdb/venv/bin`. Run one case:
//! `cargo test --release --test functions time_zones`.

mod common;

use libtest_mimic::{Arguments, Failed, Trial};
use std::path::Path;
use std::process::Command;

/// How many rows each generated input has (several read splits at 4 workers).
const ROWS: usize = 3000;

/// The text format both sides print timestamps in.
const F: &str = "%Y-%m-%d %H:%M:%S";

struct Case {
    name: &'static str,
    /// The pipeline after `source e: E = csv("in.csv", …)` (`schema E` declared), ending before
    /// the sink: `e | …`.
    flow: String,
    /// A DuckDB query over the table `e`.
    sql: String,
    /// Read the input without a schema (inference) instead of with `schema E`.
    inferred: bool,
    /// The input file: `in.csv` (good rows) or `bad.csv` (with unreadable timestamps).
    input: &'static str,
    /// Source options beyond the path and the header.
    options: &'static str,
}

fn case(name: &'static str, flow: &str, sql: &str) -> Case {
    Case {
        name,
        flow: flow.replace("{F}", F),
        sql: sql.replace("{F}", F),
        inferred: false,
        input: "in.csv",
        options: "",
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "regex_matches",
            r#"e | filter matches(s, "^[a-z]+-[0-9]{2,}$") | map { id, s }"#,
            r"SELECT id, s FROM e WHERE regexp_matches(s, '^[a-z]+-[0-9]{2,}$')",
        ),
        case(
            "regex_extract",
            r#"e | map { id, w: extract(s, "([a-z]+)-([0-9]+)", 2) ?? "none", v: extract(s, "[a-z]+", 0) ?? "none" }"#,
            r"SELECT id,
                CASE WHEN regexp_matches(s, '([a-z]+)-([0-9]+)') THEN regexp_extract(s, '([a-z]+)-([0-9]+)', 2) ELSE 'none' END,
                CASE WHEN regexp_matches(s, '[a-z]+') THEN regexp_extract(s, '[a-z]+', 0) ELSE 'none' END
              FROM e",
        ),
        case(
            "regex_replace_all",
            r#"e | map { id, r: replace_all(s, "([0-9])([0-9])", "${2}${1}"), q: replace_all(s, "[aeiou]+", "_") }"#,
            r"SELECT id, regexp_replace(s, '([0-9])([0-9])', '\2\1', 'g'), regexp_replace(s, '[aeiou]+', '_', 'g') FROM e",
        ),
        case(
            "calendar_fields",
            "e | map { id, y: year(t), mo: month(t), d: day(t), h: hour(t), mi: minute(t), s: second(t), w: day_of_week(t) }",
            "SELECT id, year(t), month(t), day(t), hour(t), minute(t), second(t), isodow(t) FROM e",
        ),
        case(
            "date_trunc_units",
            r#"e | map { id,
                w: format_timestamp(date_trunc("week", t), "{F}"),
                m: format_timestamp(date_trunc("month", t), "{F}"),
                q: format_timestamp(date_trunc("quarter", t), "{F}"),
                y: format_timestamp(date_trunc("year", t), "{F}"),
                d: format_timestamp(date_trunc("day", t), "{F}"),
                h: format_timestamp(date_trunc("hour", t), "{F}"),
                mi: format_timestamp(date_trunc("minute", t), "{F}") }"#,
            "SELECT id,
                strftime(date_trunc('week', t), '{F}'), strftime(date_trunc('month', t), '{F}'),
                strftime(date_trunc('quarter', t), '{F}'), strftime(date_trunc('year', t), '{F}'),
                strftime(date_trunc('day', t), '{F}'), strftime(date_trunc('hour', t), '{F}'),
                strftime(date_trunc('minute', t), '{F}')
              FROM e",
        ),
        case(
            "parse_and_format",
            r#"e | map { id, p: parse_timestamp(u, "%d/%m/%Y %H:%M") }
                 | map { id, txt: if p != null { format_timestamp(p, "{F} %A %j") } else { "none" } }"#,
            r"SELECT id, coalesce(strftime(try_strptime(u, '%d/%m/%Y %H:%M'), '{F} %A %j'), 'none') FROM e",
        ),
        case(
            "add_and_diff",
            r#"e | map { id,
                a: format_timestamp(add_seconds(t, n), "{F}"),
                d: format_timestamp(add_days(t, n), "{F}"),
                diff: diff_seconds(add_seconds(t, n * 37), t),
                back: diff_seconds(t, add_days(t, n)) }"#,
            "SELECT id, strftime(t + to_seconds(n), '{F}'), strftime(t + to_days(n), '{F}'),
                date_diff('second', t, t + to_seconds(n * 37)), date_diff('second', t + to_days(n), t)
              FROM e",
        ),
        case(
            "time_zones",
            r#"e | map { id,
                ny: format_timestamp(utc_to_local(t, "America/New_York"), "{F}"),
                oslo: format_timestamp(local_to_utc(t, "Europe/Oslo"), "{F}"),
                kolkata: hour(utc_to_local(t, "Asia/Kolkata")),
                tokyo: minute(utc_to_local(t, "Asia/Tokyo")) }"#,
            "SELECT id, strftime(timezone('America/New_York', t::TIMESTAMPTZ), '{F}'),
                strftime(timezone('Europe/Oslo', t), '{F}'),
                hour(timezone('Asia/Kolkata', t::TIMESTAMPTZ)),
                minute(timezone('Asia/Tokyo', t::TIMESTAMPTZ))
              FROM e",
        ),
        Case {
            inferred: true,
            ..case(
                "inferred_timestamps_written_iso",
                "e | map { id, t, y: year(t), later: add_days(t, 1) }",
                "SELECT id, strftime(t, '%Y-%m-%dT%H:%M:%SZ'), year(t), strftime(t + INTERVAL 1 DAY, '%Y-%m-%dT%H:%M:%SZ') FROM e",
            )
        },
        Case {
            input: "bad.csv",
            options: ", on_error: skip",
            ..case(
                "bad_timestamps_skipped",
                r#"e | map { id, txt: format_timestamp(t, "{F}") }"#,
                "SELECT id, strftime(t, '{F}') FROM e",
            )
        },
    ]
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time.
fn civil(secs: i64) -> String {
    flow::stdlib::ops::timestamp_to_str(secs * 1_000_000)
        .trim_end_matches('Z')
        .replace('T', " ")
}

/// Writes `in.csv` (id, s, t, n, u) and `bad.csv` (id, t with some unreadable values).
fn write_inputs(dir: &Path) {
    let mut r = Rng(15);
    let words = ["abc", "order", "x", "zz", "id", "aeiou", "q"];
    let mut good = String::from("id,s,t,n,u\n");
    let mut bad = String::from("id,t\n");
    for id in 0..ROWS {
        let w = words[r.below(words.len() as u64) as usize];
        let s = match r.below(5) {
            0 => format!("{w}-{}", r.below(100_000)),
            1 => format!("{w}{}", r.below(1000)),
            2 => format!("{}-{w}-{}", r.below(10), r.below(100)),
            3 => w.to_string(),
            _ => format!("{w} {w}-{}", r.below(10)),
        };
        // 1990–2040, 12:00–20:59 UTC: away from the night hours when clocks change, in Oslo and
        // New York alike.
        let day = 7305 + r.below(18_262) as i64;
        let secs = day * 86_400 + 12 * 3600 + r.below(9 * 3600) as i64;
        let n = r.below(2001) as i64 - 1000;
        // d/m/Y H:M, one in ten an impossible date.
        let (d, m, y) = (1 + r.below(31), 1 + r.below(12), 1990 + r.below(50));
        let u = format!("{d:02}/{m:02}/{y} {:02}:{:02}", r.below(24), r.below(60));
        good.push_str(&format!("{id},{s},{},{n},{u}\n", civil(secs)));
        let t = match r.below(10) {
            0 => "2024-02-30 10:00:00".to_string(),
            1 => "yesterday".to_string(),
            _ => civil(secs),
        };
        bad.push_str(&format!("{id},{t}\n"));
    }
    std::fs::write(dir.join("in.csv"), good).expect("write in.csv");
    std::fs::write(dir.join("bad.csv"), bad).expect("write bad.csv");
}

fn duckdb_path() -> Result<String, Failed> {
    common::duckdb_path().map_err(Failed::from)
}

/// The rows of a header-less CSV file, sorted.
fn rows(path: &Path) -> Result<Vec<Vec<String>>, Failed> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut v = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        v.push(rec.iter().map(str::to_string).collect::<Vec<_>>());
    }
    v.sort();
    Ok(v)
}

fn run_case(c: &Case, args: &[&str]) -> Result<(), Failed> {
    let path = duckdb_path()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    write_inputs(dir.path());
    let schema = if c.input == "bad.csv" {
        "schema E { id: int, t: timestamp }\nsource e: E"
    } else if c.inferred {
        "source e"
    } else {
        "schema E { id: int, s: str, t: timestamp, n: int, u: str }\nsource e: E"
    };
    let script = format!(
        "{schema} = csv(\"{}\", header: true{})\n{} | sink csv(\"flow.csv\", header: false)\n",
        c.input, c.options, c.flow
    );
    std::fs::write(dir.path().join("job.flow"), &script).map_err(|e| e.to_string())?;
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .current_dir(dir.path())
        .args(["run", "-q", "job.flow"])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "flow failed:\n{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let columns = if c.input == "bad.csv" {
        "{'id': 'BIGINT', 't': 'VARCHAR'}"
    } else {
        "{'id': 'BIGINT', 's': 'VARCHAR', 't': 'TIMESTAMP', 'n': 'BIGINT', 'u': 'VARCHAR'}"
    };
    // The bad file: rows whose `t` DuckDB cannot read are the rows flow skips.
    let table = if c.input == "bad.csv" {
        format!(
            "SELECT id, t::TIMESTAMP AS t FROM read_csv('bad.csv', header = true, columns = {columns}) WHERE try_cast(t AS TIMESTAMP) IS NOT NULL"
        )
    } else {
        format!(
            "SELECT * FROM read_csv('{}', header = true, columns = {columns})",
            c.input
        )
    };
    let sql = format!(
        "SET TimeZone = 'UTC';\nCREATE TABLE e AS {table};\nCOPY ({}) TO 'duck.csv' (HEADER false);\n",
        c.sql
    );
    let duck = Command::new("duckdb")
        .current_dir(dir.path())
        .env("PATH", &path)
        .args(["-batch", "-bail", "-c", &sql])
        .output()
        .map_err(|e| format!("duckdb: {e}"))?;
    if !duck.status.success() {
        return Err(format!(
            "duckdb failed:\n{sql}\n{}",
            String::from_utf8_lossy(&duck.stderr)
        )
        .into());
    }
    let (ours, theirs) = (
        rows(&dir.path().join("flow.csv"))?,
        rows(&dir.path().join("duck.csv"))?,
    );
    if ours.len() < ROWS / 20 {
        return Err(format!("only {} rows: the case tests too little", ours.len()).into());
    }
    if ours != theirs {
        let diff: Vec<String> = ours
            .iter()
            .zip(&theirs)
            .filter(|(a, b)| a != b)
            .take(5)
            .map(|(a, b)| format!("  flow   {a:?}\n  duckdb {b:?}"))
            .collect();
        return Err(format!(
            "{} rows from flow, {} from DuckDB; first differences:\n{}",
            ours.len(),
            theirs.len(),
            diff.join("\n")
        )
        .into());
    }
    Ok(())
}

fn main() {
    let mut trials = Vec::new();
    for c in cases() {
        let c = std::sync::Arc::new(c);
        for (label, args) in [
            ("1_worker", &["--threads", "1"][..]),
            ("2_workers", &["--threads", "2"][..]),
            ("4_workers", &["--threads", "4"][..]),
            (
                "interpreter_2_workers",
                &["--threads", "2", "--engine", "interpreter"][..],
            ),
        ] {
            let c = c.clone();
            trials.push(Trial::test(format!("{}::{label}", c.name), move || {
                run_case(&c, args)
            }));
        }
    }
    libtest_mimic::run(&Arguments::from_args(), trials).exit()
}
