//! Runs a job's DuckDB statements with the DuckDB command-line program found on `PATH`
//! (`duckdb`, e.g. from the `duckdb-cli` PyPI package): the lightest honest way to drive it —
//! no C++ library compiled into flow, one process per job, the same SQL `flow compile` prints.
//!
//! Outputs stay atomic (`outputs`): every sink is first materialized into a temporary table,
//! copied to a temporary file beside its final name, and only when every statement succeeded
//! are the files renamed; on failure they are removed. Rows per sink come from the tables.

use super::dialect::{Dialect, DuckDb};
use super::outputs::Outputs;
pub use super::outputs::SinkRows;
use super::{Statement, StatementKind};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The `duckdb` program: `FLOW_DUCKDB` if set, else the first `duckdb` on `PATH`.
pub fn find_cli() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("FLOW_DUCKDB") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let c = dir.join("duckdb");
        if c.is_file() {
            return Ok(c);
        }
    }
    Err("the DuckDB command-line program `duckdb` was not found on PATH; install it with `pip install duckdb-cli` (or from https://duckdb.org/docs/installation), or set FLOW_DUCKDB to its path".into())
}

/// Runs `statements` (from `compile(plan, &DuckDb)`); standard-output sinks are written to
/// `stdout` after the job succeeded.
pub fn run(statements: &[Statement], stdout: &mut dyn Write) -> Result<Vec<SinkRows>, String> {
    let cli = find_cli()?;
    let d = DuckDb;
    let mut script = String::new();
    let mut outputs = Outputs::new("duckdb");
    for st in statements {
        match &st.kind {
            StatementKind::Insert { origin, .. } => {
                return Err(format!(
                    "sink {origin}: a PostgreSQL table cannot be loaded by DuckDB"
                ));
            }
            StatementKind::Setup | StatementKind::Load { .. } => {
                script.push_str(&st.sql);
                script.push_str(";\n");
            }
            StatementKind::Sink {
                origin,
                path,
                format,
                query,
                ..
            } => {
                let k = outputs.pending.len();
                let tmp = outputs
                    .add(origin, path.as_deref())
                    .inspect_err(|_| outputs.discard())?;
                let table = d.ident(&format!("flow_sink_{k}"));
                script.push_str(&format!("CREATE TEMPORARY TABLE {table} AS {query};\n"));
                let tmp_text = tmp.to_string_lossy().into_owned();
                let copy = d.write(&format!("SELECT * FROM {table}"), Some(&tmp_text), *format)?;
                script.push_str(&copy);
                script.push_str(";\n");
            }
        }
    }
    let counts: Vec<String> = (0..outputs.pending.len())
        .map(|k| {
            format!(
                "SELECT {k} AS k, count(*) AS n FROM {}",
                d.ident(&format!("flow_sink_{k}"))
            )
        })
        .collect();
    if !counts.is_empty() {
        script.push_str(&format!("{} ORDER BY k;\n", counts.join(" UNION ALL ")));
    }
    let mut child = match Command::new(&cli)
        .args(["-bail", "-batch", "-csv", "-noheader", ":memory:"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Err(format!(
                "cannot start {}: {e}; install DuckDB with `pip install duckdb-cli`",
                cli.display()
            ));
        }
    };
    if let Some(mut input) = child.stdin.take()
        && let Err(e) = input.write_all(script.as_bytes())
    {
        let _ = child.kill();
        let _ = child.wait();
        outputs.discard();
        return Err(format!("cannot send the job to duckdb: {e}"));
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => {
            outputs.discard();
            return Err(format!("duckdb did not finish: {e}"));
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stderr.trim().is_empty() {
        outputs.discard();
        return Err(format!(
            "the job failed in DuckDB ({}): {}",
            out.status,
            stderr.trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = vec![None; outputs.pending.len()];
    for line in text.lines() {
        if let Some((k, n)) = line.split_once(',')
            && let (Ok(k), Ok(n)) = (k.trim().parse::<usize>(), n.trim().parse::<u64>())
            && k < rows.len()
        {
            rows[k] = Some(n);
        }
    }
    if rows.iter().any(Option::is_none) {
        outputs.discard();
        return Err(format!(
            "duckdb did not report the row counts of the sinks; it printed: {}",
            text.trim()
        ));
    }
    let rows: Vec<u64> = rows.into_iter().map(|n| n.unwrap_or(0)).collect();
    outputs.commit(&rows, stdout)
}
