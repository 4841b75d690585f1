//! The SQL backend (issue 12): snapshots of the generated SQL per dialect
//! (`tests/snapshots/sql/<case>.snap`), the documented diagnostics for what does not translate,
//! and differential runs: the same script natively and on DuckDB (`flow run --target duckdb`,
//! the `duckdb` CLI from `pip install duckdb-cli`, which `.ci/run` installs) must give the same
//! output multiset, floats to 9 significant digits.

mod common;

use flow::driver::Session;
use flow::sql::{self, Dialect, DuckDb, Postgres};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `sql::compile` of the scripts as text, or the diagnostic codes and messages.
fn compile(files: &[&str], d: &dyn Dialect) -> Result<String, Vec<String>> {
    let mut s = Session::default();
    assert!(s.load_paths(files).is_empty(), "cannot read {files:?}");
    let plan = s
        .plan()
        .unwrap_or_else(|d| panic!("{files:?} do not check: {d:?}"));
    sql::compile(plan, d)
        .map(|st| sql::script(&st))
        .map_err(|errs| {
            errs.iter()
                .map(|e| format!("{}: {}", e.code.as_str(), e.message))
                .collect()
        })
}

fn snapshot(case: &str, file: &str) {
    let text = std::fs::read_to_string(file).expect("read script");
    let mut out = String::new();
    for d in [&DuckDb as &dyn Dialect, &Postgres] {
        out.push_str(&format!("-- {}\n", d.name()));
        match compile(&[file], d) {
            Ok(s) => out.push_str(&s),
            Err(errs) => {
                for e in errs {
                    out.push_str(&format!("error {e}\n"));
                }
            }
        }
    }
    if let Err(e) = common::check("sql", case, &[(file, &text)], &out) {
        panic!("{}", e.message().unwrap_or("snapshot differs"));
    }
}

#[test]
fn snapshot_enrich() {
    snapshot("enrich", "examples/enrich.flow");
}
#[test]
fn snapshot_sales() {
    snapshot("sales", "examples/sales.flow");
}
#[test]
fn snapshot_stdlib() {
    snapshot("stdlib", "examples/stdlib.flow");
}
#[test]
fn snapshot_tricky_expressions() {
    snapshot("tricky", "tests/sql_cases/tricky.flow");
}
#[test]
fn snapshot_divzero() {
    snapshot("divzero", "tests/sql_cases/divzero.flow");
}

/// The untranslatable examples give the documented codes (docs/SQL.md).
fn refused(file: &str, codes: &[&str]) {
    for d in [&DuckDb as &dyn Dialect, &Postgres] {
        let errs = compile(&[file], d).expect_err("must not translate");
        for c in codes {
            assert!(
                errs.iter().any(|e| e.starts_with(c)),
                "{file} on {}: expected {c}, got {errs:?}",
                d.name()
            );
        }
    }
}

#[test]
fn trips_dead_letter_is_refused() {
    refused("examples/trips.flow", &["E0081"]);
}
#[test]
fn fanout_skip_and_timestamps_are_refused() {
    refused("examples/fanout.flow", &["E0081", "E0080"]);
}
#[test]
fn logs_policies_jsonl_source_and_timestamps_are_refused() {
    refused("examples/logs.flow", &["E0081", "E0080"]);
}
#[test]
fn postgres_refuses_limit_without_input_order() {
    let errs = compile(&["examples/sales.flow"], &Postgres).expect_err("limit");
    assert!(errs.iter().any(|e| e.contains("`limit`")), "{errs:?}");
}

#[test]
fn identifiers_and_literals_are_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("q.csv"), "it's\nx\n").expect("write");
    let script = dir.path().join("q.flow");
    std::fs::write(
        &script,
        "schema Q { `it's`: str }\nsource q: Q = csv(\"q.csv\")\nq | filter `it's` != \"a'b\\\"c\" | sink csv(\"o'ut.csv\")\n",
    )
    .expect("write");
    // A schema field named with a quote may not be valid syntax; then use a plain name.
    let mut s = Session::default();
    s.load_paths(&[&script]);
    if s.plan().is_err() {
        std::fs::write(
            &script,
            "schema Q { s: str }\nsource q: Q = csv(\"q.csv\")\nq | filter s != \"a'b\\\"c\" | sink csv(\"o'ut.csv\")\n",
        )
        .expect("write");
    }
    let path = script.to_string_lossy().into_owned();
    let out = compile(&[&path], &DuckDb).expect("translates");
    assert!(out.contains("'a''b\"c'"), "{out}");
    assert!(out.contains("o''ut.csv'"), "{out}");
}

// ---- differential runs ----

fn duckdb_on_path() -> String {
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        let venv = Path::new(&home).join(".cache/flow-duckdb/venv/bin");
        let mut parts: Vec<PathBuf> = std::env::split_paths(&path).collect();
        parts.push(venv);
        path = std::env::join_paths(parts).unwrap_or(path);
    }
    let found = std::env::split_paths(&path).any(|d| d.join("duckdb").is_file());
    assert!(
        found,
        "the differential SQL tests need the DuckDB CLI: `pip install duckdb-cli` (.ci/run installs it into ~/.cache/flow-duckdb/venv)"
    );
    path.to_string_lossy().into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        if e.file_name() == "out" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

/// One value for comparison: ints as ints, other numbers to 9 significant digits.
fn norm(s: &str) -> String {
    if let Ok(i) = s.parse::<i64>() {
        return i.to_string();
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_nan() => "NaN".into(),
        Ok(x) => format!("{x:.8e}"),
        Err(_) => s.to_string(),
    }
}

fn rows(text: &str, json: bool) -> Vec<String> {
    let mut v: Vec<String> = if json {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let obj: BTreeMap<String, serde_json::Value> =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}"));
                obj.iter()
                    .map(|(k, v)| {
                        let s = match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        format!("{k}={}", norm(&s))
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    } else {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        r.records()
            .map(|rec| {
                let rec = rec.expect("CSV output");
                rec.iter().map(norm).collect::<Vec<_>>().join("|")
            })
            .collect()
    };
    v.sort();
    v
}

/// Runs `script` (relative to `dir`, copied) with extra args; exit success and the outputs.
fn run(
    dir: &Path,
    script: &str,
    args: &[&str],
    path: &str,
) -> (bool, String, BTreeMap<String, Vec<String>>) {
    let work = tempfile::tempdir().expect("tempdir");
    copy_dir(dir, work.path());
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .arg("run")
        .args(args)
        .arg(work.path().join(script))
        .env("PATH", path)
        .output()
        .expect("run flow");
    let mut outputs = BTreeMap::new();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = stdout.trim_start().starts_with('{');
    outputs.insert("<stdout>".to_string(), rows(&stdout, json));
    let od = work.path().join("out");
    if let Ok(entries) = std::fs::read_dir(&od) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(e.path()).expect("read output");
            outputs.insert(name.clone(), rows(&text, name.ends_with(".jsonl")));
        }
    }
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs,
    )
}

fn differential(dir: &str, script: &str) {
    let path = duckdb_on_path();
    let (ok_n, err_n, native) = run(Path::new(dir), script, &["-q"], &path);
    let (ok_d, err_d, duck) = run(Path::new(dir), script, &["-q", "--target", "duckdb"], &path);
    assert!(ok_n, "native run of {script} failed: {err_n}");
    assert!(ok_d, "DuckDB run of {script} failed: {err_d}");
    assert_eq!(
        native.keys().collect::<Vec<_>>(),
        duck.keys().collect::<Vec<_>>()
    );
    for (k, rows) in &native {
        assert_eq!(rows, &duck[k], "{script}: output {k} differs");
    }
    assert!(native.values().map(Vec::len).sum::<usize>() > 0);
}

#[test]
fn duckdb_matches_native_enrich() {
    differential("examples", "enrich.flow");
}
#[test]
fn duckdb_matches_native_sales() {
    differential("examples", "sales.flow");
}
#[test]
fn duckdb_matches_native_stdlib() {
    differential("examples", "stdlib.flow");
}
#[test]
fn duckdb_matches_native_tricky_expressions() {
    differential("tests/sql_cases", "tricky.flow");
}

#[test]
fn division_by_zero_fails_on_duckdb_as_natively() {
    let path = duckdb_on_path();
    let (ok_n, _, native) = run(Path::new("tests/sql_cases"), "divzero.flow", &["-q"], &path);
    let (ok_d, err, duck) = run(
        Path::new("tests/sql_cases"),
        "divzero.flow",
        &["-q", "--target", "duckdb"],
        &path,
    );
    assert!(!ok_n && !ok_d);
    assert!(err.contains("division by zero"), "{err}");
    // Atomic: nothing under the final name, no temporary file left.
    assert_eq!(native.len(), 1, "{native:?}");
    assert_eq!(duck.len(), 1, "{duck:?}");
}

#[test]
fn upper_of_non_ascii_stops_the_duckdb_job_instead_of_differing() {
    let path = duckdb_on_path();
    let (ok, err, _) = run(
        Path::new("tests/sql_cases"),
        "upper_non_ascii.flow",
        &["-q", "--target", "duckdb"],
        &path,
    );
    assert!(!ok);
    assert!(
        err.contains("upper of non-ASCII text is not translated"),
        "{err}"
    );
}

#[test]
fn missing_duckdb_names_what_to_install() {
    let (ok, err, _) = run(
        Path::new("tests/sql_cases"),
        "divzero.flow",
        &["--target", "duckdb"],
        "/nonexistent",
    );
    assert!(!ok);
    assert!(err.contains("pip install duckdb-cli"), "{err}");
}
