//! The SQL backend (issue 12): snapshots of the generated SQL per dialect, one test per
//! example and per `tests/sql_cases/*.flow` (`snapshot::<case>`, `tests/snapshots/sql/<case>.snap`;
//! `UPDATE_SNAPSHOTS=1` rewrites them), and the documented diagnostics for what does not
//! translate. The runs on the engines (native vs DuckDB vs PostgreSQL) are in tests/postgres.rs.

mod common;

use flow::driver::Session;
use flow::sql::{self, Dialect, DuckDb, Postgres, Spark};
use libtest_mimic::{Failed, Trial};

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

fn snapshot(case: &str, file: &str) -> Result<(), Failed> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let mut out = String::new();
    for d in [&DuckDb as &dyn Dialect, &Postgres, &Spark] {
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
    common::check("sql", case, &[(file, &text)], &out)
}

/// The untranslatable examples give the documented codes (docs/SQL.md).
fn refused(file: &str, codes: &[&str]) {
    for d in [&DuckDb as &dyn Dialect, &Postgres, &Spark] {
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

fn trips_dead_letter_is_refused() {
    refused("examples/trips.flow", &["E0081"]);
}
fn fanout_skip_and_timestamps_are_refused() {
    refused("examples/fanout.flow", &["E0081", "E0080"]);
}
fn logs_policies_jsonl_source_and_timestamps_are_refused() {
    refused("examples/logs.flow", &["E0081", "E0080"]);
}
fn postgres_refuses_limit_without_input_order() {
    let errs = compile(&["examples/sales.flow"], &Postgres).expect_err("limit");
    assert!(errs.iter().any(|e| e.contains("`limit`")), "{errs:?}");
}
fn spark_refuses_limit_without_input_order() {
    let errs = compile(&["examples/sales.flow"], &Spark).expect_err("limit");
    assert!(errs.iter().any(|e| e.contains("`limit`")), "{errs:?}");
}

/// Spark string literals take backslash escapes; identifiers are back-quoted.
fn spark_escapes_backslashes_and_backquotes() {
    let d = Spark;
    assert_eq!(d.string("a'b\\c"), "'a\\'b\\\\c'");
    assert_eq!(d.ident("we`ird"), "`we``ird`");
}

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

/// The snapshot cases: every example and every `tests/sql_cases/*.flow`, by file stem.
fn cases() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for dir in ["examples", "tests/sql_cases"] {
        for c in common::cases(dir) {
            v.push((c.name.clone(), c.path.clone()));
        }
    }
    v.sort();
    v
}

fn main() {
    let cases = cases();
    let names: Vec<String> = cases.iter().map(|(n, _)| n.clone()).collect();
    let mut trials: Vec<Trial> = cases
        .into_iter()
        .map(|(name, path)| {
            Trial::test(format!("snapshot::{name}"), move || snapshot(&name, &path))
        })
        .collect();
    trials.push(common::no_stale_snapshots("sql", names));
    trials.push(Trial::test("trips_dead_letter_is_refused", || {
        trips_dead_letter_is_refused();
        Ok(())
    }));
    trials.push(Trial::test(
        "fanout_skip_and_timestamps_are_refused",
        || {
            fanout_skip_and_timestamps_are_refused();
            Ok(())
        },
    ));
    trials.push(Trial::test(
        "logs_policies_jsonl_source_and_timestamps_are_refused",
        || {
            logs_policies_jsonl_source_and_timestamps_are_refused();
            Ok(())
        },
    ));
    trials.push(Trial::test(
        "postgres_refuses_limit_without_input_order",
        || {
            postgres_refuses_limit_without_input_order();
            Ok(())
        },
    ));
    trials.push(Trial::test(
        "spark_refuses_limit_without_input_order",
        || {
            spark_refuses_limit_without_input_order();
            Ok(())
        },
    ));
    trials.push(Trial::test(
        "spark_escapes_backslashes_and_backquotes",
        || {
            spark_escapes_backslashes_and_backquotes();
            Ok(())
        },
    ));
    trials.push(Trial::test("identifiers_and_literals_are_escaped", || {
        identifiers_and_literals_are_escaped();
        Ok(())
    }));
    common::run(trials);
}
