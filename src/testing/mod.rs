//! `flow test`: runs the `test "name" { … }` items of scripts. Each test runs the file's job on
//! the real runtime (plan, JIT kernels, workers) with its plan rewritten so that the sources the
//! test gives rows for read those rows (`__rows`) and every sink collects its rows in memory
//! (`__collect`: no file is written); an expected `let` (or source) gets a collecting sink of its
//! own, added as one statement at the end of the file's text. The collected rows are compared
//! with the expected ones, as multisets or, with `ordered`, in order.

use crate::check::hir::{ExpectTarget, Test};
use crate::connectors::memory::{self, Store};
use crate::diagnostics;
use crate::driver::{Session, run_error_diagnostic};
use crate::job::OnError;
use crate::plan::ir::Op;
use crate::runtime::RunOptions;
use crate::types::{RowType, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The result of one test.
#[derive(Clone, Debug, PartialEq)]
pub struct TestResult {
    pub file: String,
    pub name: String,
    /// Empty: passed.
    pub failures: Vec<Failure>,
}

impl TestResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// The rows at `place` differ.
    Rows {
        place: String,
        ordered: bool,
        /// Expected rows that did not come (each as `{ a: 1, … }`).
        missing: Vec<String>,
        /// Rows that came and were not expected.
        unexpected: Vec<String>,
        /// `ordered` only: the same rows came, in another order.
        order: Option<(Vec<String>, Vec<String>)>,
    },
    /// The job failed (a row error under `on_error: fail`, …).
    Job(String),
}

/// Runs every test of the script at `path`. `Err` is the rendered diagnostics when the script
/// does not check (then no test runs).
pub fn run_file(path: &Path, color: bool) -> Result<Vec<TestResult>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("error: cannot read {}: {e}\n", path.display()))?;
    let name = path.to_string_lossy().into_owned();
    let store = Store::default();
    let mut session = Session::new(memory::memory_registry(&store));
    session.set_file(&name, &text);
    let c = session.compile();
    if c.has_errors() || c.plan.is_none() {
        return Err(diagnostics::render(&c.sources, &c.diagnostics, color));
    }
    let tests = c.tests.clone();
    if tests.is_empty() {
        return Ok(Vec::new());
    }
    // A collecting sink for every expected source or let, at the end of the file.
    let mut streams: Vec<&str> = tests
        .iter()
        .flat_map(|t| &t.expect)
        .filter_map(|e| match &e.target {
            ExpectTarget::Stream(s) => Some(s.as_str()),
            ExpectTarget::Sink(_) => None,
        })
        .collect();
    streams.sort();
    streams.dedup();
    if !streams.is_empty() {
        let mut with = text.clone();
        with.push('\n');
        for s in &streams {
            with.push_str(&format!(
                "{s} | sink {}(\"{}\")\n",
                memory::COLLECT,
                let_key(s)
            ));
        }
        session.set_file(&name, &with);
        let c = session.compile();
        if c.has_errors() || c.plan.is_none() {
            return Err(diagnostics::render(&c.sources, &c.diagnostics, color));
        }
    }
    let mut results = Vec::new();
    for t in &tests {
        let mut r = run_test(&mut session, &store, t, color);
        r.file = name.clone();
        results.push(r);
    }
    Ok(results)
}

fn let_key(name: &str) -> String {
    format!("let:{name}")
}

fn run_test(session: &mut Session, store: &Store, t: &Test, color: bool) -> TestResult {
    let result = |failures| TestResult {
        file: t.file.clone(),
        name: t.name.clone(),
        failures,
    };
    let mut plan = match session.plan() {
        Ok(p) => p.clone(),
        Err(ds) => {
            let c = session.compile();
            return result(vec![Failure::Job(diagnostics::render(
                &c.sources, &ds, color,
            ))]);
        }
    };
    store.clear();
    for w in plan.graph.node_weights_mut() {
        if let Op::Source(spec) = &mut w.op
            && let Some((_, rows)) = t.given.iter().find(|(n, _)| *n == spec.name)
        {
            store.set_input(&spec.name, rows.clone());
            spec.connector = memory::ROWS.to_string();
            spec.path = None;
            spec.options.clear();
        }
    }
    in_memory(&mut plan);
    let mut opts = RunOptions::for_engine(crate::codegen::Engine::Jit);
    opts.registry = session.registry().clone();
    opts.threads = Some(1);
    if let Err(e) = crate::runtime::run(&plan, &opts) {
        let text = match run_error_diagnostic(&e) {
            Some(d) => {
                let c = session.compile();
                diagnostics::render(&c.sources, &[d], color)
            }
            None => format!("the job failed: {e}\n"),
        };
        return result(vec![Failure::Job(text)]);
    }
    let mut failures = Vec::new();
    for e in &t.expect {
        let (key, place) = match &e.target {
            ExpectTarget::Stream(s) => (let_key(s), format!("`{s}`")),
            ExpectTarget::Sink(p) => (format!("sink:{p}"), format!("sink {p:?}")),
        };
        let (row, rows) = store
            .take_output(&key)
            .unwrap_or_else(|| (e.row.clone(), Vec::new()));
        let actual = reorder(&row, rows, &e.row);
        let expected: Vec<String> = e.rows.iter().map(|r| show_row(&e.row, r)).collect();
        let actual: Vec<String> = actual.iter().map(|r| show_row(&e.row, r)).collect();
        if let Some(f) = compare(place, e.ordered, expected, actual) {
            failures.push(f);
        }
    }
    result(failures)
}

/// Rewrites a plan so that running it writes no file: every sink collects its rows in memory
/// (`__collect`, keyed `sink:PATH`; a `__collect` sink already there keeps the last part of its
/// path as key), and rows that would be dead-lettered are skipped instead.
pub fn in_memory(plan: &mut crate::plan::Plan) {
    let no_dead_letter = |p: &mut crate::job::ErrorPolicy| {
        if matches!(p.on_error, OnError::DeadLetter(_)) {
            p.on_error = OnError::Skip;
        }
    };
    for w in plan.graph.node_weights_mut() {
        match &mut w.op {
            Op::Source(spec) => no_dead_letter(&mut spec.policy),
            Op::Filter { policy, .. } | Op::Map { policy, .. } => no_dead_letter(policy),
            Op::Fused { steps } => steps.iter_mut().for_each(|s| no_dead_letter(&mut s.policy)),
            Op::Sink(spec) if spec.connector == memory::COLLECT => {
                let key = spec
                    .path
                    .as_deref()
                    .and_then(|p| Path::new(p).file_name())
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                spec.path = Some(key);
            }
            Op::Sink(spec) => {
                let key = format!(
                    "sink:{}",
                    spec.path.clone().unwrap_or_else(|| spec.connector.clone())
                );
                spec.connector = memory::COLLECT.to_string();
                spec.path = Some(key);
                spec.options.clear();
            }
            _ => {}
        }
    }
}

/// `rows` (of type `from`) with their columns in the order of `to` (matched by name).
fn reorder(from: &RowType, rows: Vec<Vec<Value>>, to: &RowType) -> Vec<Vec<Value>> {
    if from == to {
        return rows;
    }
    let idx: Vec<Option<usize>> = to.fields.iter().map(|f| from.index_of(&f.name)).collect();
    rows.into_iter()
        .map(|r| {
            idx.iter()
                .map(|i| i.and_then(|i| r.get(i).cloned()).unwrap_or(Value::Null))
                .collect()
        })
        .collect()
}

/// `{ id: 1, name: "a" }`.
pub fn show_row(row: &RowType, values: &[Value]) -> String {
    let fields: Vec<String> = row
        .fields
        .iter()
        .zip(values)
        .map(|(f, v)| match v {
            Value::Timestamp(t) => format!("{}: {}", f.name, t),
            v => format!("{}: {v}", f.name),
        })
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

fn compare(
    place: String,
    ordered: bool,
    expected: Vec<String>,
    actual: Vec<String>,
) -> Option<Failure> {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for e in &expected {
        *counts.entry(e).or_default() += 1;
    }
    for a in &actual {
        *counts.entry(a).or_default() -= 1;
    }
    let mut missing = Vec::new();
    let mut unexpected = Vec::new();
    // In the order the rows were written / came.
    let mut left = counts.clone();
    for e in &expected {
        if let Some(n) = left.get_mut(e.as_str())
            && *n > 0
        {
            *n -= 1;
            missing.push(e.clone());
        }
    }
    for a in &actual {
        if let Some(n) = left.get_mut(a.as_str())
            && *n < 0
        {
            *n += 1;
            unexpected.push(a.clone());
        }
    }
    let order = (ordered && missing.is_empty() && unexpected.is_empty() && expected != actual)
        .then(|| (expected.clone(), actual.clone()));
    if missing.is_empty() && unexpected.is_empty() && order.is_none() {
        return None;
    }
    Some(Failure::Rows {
        place,
        ordered,
        missing,
        unexpected,
        order,
    })
}

/// The readable report of one failed test's failures, indented by four spaces.
pub fn describe(failures: &[Failure]) -> String {
    let mut s = String::new();
    for f in failures {
        match f {
            Failure::Job(text) => {
                s.push_str("    the job failed:\n");
                for l in text.lines() {
                    s.push_str(&format!("      {l}\n"));
                }
            }
            Failure::Rows {
                place,
                missing,
                unexpected,
                order,
                ..
            } => {
                s.push_str(&format!("    at {place}:\n"));
                for m in missing {
                    s.push_str(&format!("      - {m}    (expected, missing)\n"));
                }
                for u in unexpected {
                    s.push_str(&format!("      + {u}    (not expected)\n"));
                }
                if let Some((want, got)) = order {
                    s.push_str("      the rows came in another order; expected:\n");
                    for w in want {
                        s.push_str(&format!("        {w}\n"));
                    }
                    s.push_str("      came:\n");
                    for g in got {
                        s.push_str(&format!("        {g}\n"));
                    }
                }
            }
        }
    }
    s
}

/// One result as JSON (for `flow test --format json`).
pub fn to_json(r: &TestResult) -> serde_json::Value {
    let failures: Vec<serde_json::Value> = r
        .failures
        .iter()
        .map(|f| match f {
            Failure::Job(text) => serde_json::json!({ "kind": "job", "message": text }),
            Failure::Rows {
                place,
                ordered,
                missing,
                unexpected,
                order,
            } => serde_json::json!({
                "kind": "rows",
                "place": place,
                "ordered": ordered,
                "missing": missing,
                "unexpected": unexpected,
                "order_differs": order.is_some(),
            }),
        })
        .collect();
    serde_json::json!({
        "file": r.file,
        "name": r.name,
        "passed": r.passed(),
        "failures": failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn multisets_report_missing_and_unexpected_rows() {
        assert_eq!(
            compare("x".into(), false, s(&["a", "b", "b"]), s(&["b", "a", "b"])),
            None
        );
        let Some(Failure::Rows {
            missing,
            unexpected,
            ..
        }) = compare("x".into(), false, s(&["a", "b", "b"]), s(&["b", "c"]))
        else {
            panic!("differs");
        };
        assert_eq!(missing, s(&["a", "b"]));
        assert_eq!(unexpected, s(&["c"]));
    }

    #[test]
    fn ordered_comparison_reports_another_order() {
        let f = compare("x".into(), true, s(&["a", "b"]), s(&["b", "a"]));
        assert!(matches!(f, Some(Failure::Rows { order: Some(_), .. })));
        assert_eq!(
            compare("x".into(), true, s(&["a", "b"]), s(&["a", "b"])),
            None
        );
    }
}
