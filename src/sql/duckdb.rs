//! Runs a job's DuckDB statements with the DuckDB command-line program found on `PATH`
//! (`duckdb`, e.g. from the `duckdb-cli` PyPI package): the lightest honest way to drive it —
//! no C++ library compiled into flow, one process per job, the same SQL `flow compile` prints.
//!
//! Outputs stay atomic: every sink is first materialized into a temporary table, copied to a
//! temporary file beside its final name, and only when every statement succeeded are the files
//! renamed; on failure they are removed. Rows per sink come from the temporary tables.

use super::dialect::{Dialect, DuckDb};
use super::{Statement, StatementKind};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One sink's result.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkRows {
    pub origin: String,
    /// `None`: standard output.
    pub path: Option<String>,
    pub rows: u64,
}

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

struct Pending {
    origin: String,
    path: Option<String>,
    tmp: PathBuf,
}

fn temp_beside(path: &Path, k: usize) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = format!(".{name}.flow-duckdb-{}-{k}.tmp", std::process::id());
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(tmp),
        _ => PathBuf::from(tmp),
    }
}

fn cleanup(pending: &[Pending]) {
    for p in pending {
        let _ = std::fs::remove_file(&p.tmp);
    }
}

/// Runs `statements` (from `compile(plan, &DuckDb)`); standard-output sinks are written to
/// `stdout` after the job succeeded.
pub fn run(statements: &[Statement], stdout: &mut dyn Write) -> Result<Vec<SinkRows>, String> {
    let cli = find_cli()?;
    let d = DuckDb;
    let mut script = String::new();
    let mut pending: Vec<Pending> = Vec::new();
    for st in statements {
        match &st.kind {
            StatementKind::Setup | StatementKind::Load { .. } => {
                script.push_str(&st.sql);
                script.push_str(";\n");
            }
            StatementKind::Sink {
                origin,
                path,
                format,
                query,
            } => {
                let k = pending.len();
                let tmp = match path {
                    Some(p) => {
                        let p = Path::new(p);
                        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty())
                            && let Err(e) = std::fs::create_dir_all(dir)
                        {
                            cleanup(&pending);
                            return Err(format!("cannot create {}: {e}", dir.display()));
                        }
                        temp_beside(p, k)
                    }
                    None => std::env::temp_dir()
                        .join(format!("flow-duckdb-stdout-{}-{k}.tmp", std::process::id())),
                };
                let table = d.ident(&format!("flow_sink_{k}"));
                script.push_str(&format!("CREATE TEMPORARY TABLE {table} AS {query};\n"));
                let tmp_text = tmp.to_string_lossy().into_owned();
                let copy = d.write(&format!("SELECT * FROM {table}"), Some(&tmp_text), *format)?;
                script.push_str(&copy);
                script.push_str(";\n");
                pending.push(Pending {
                    origin: origin.clone(),
                    path: path.clone(),
                    tmp,
                });
            }
        }
    }
    let counts: Vec<String> = (0..pending.len())
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
        cleanup(&pending);
        return Err(format!("cannot send the job to duckdb: {e}"));
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => {
            cleanup(&pending);
            return Err(format!("duckdb did not finish: {e}"));
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stderr.trim().is_empty() {
        cleanup(&pending);
        return Err(format!(
            "the job failed in DuckDB ({}): {}",
            out.status,
            stderr.trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = vec![None; pending.len()];
    for line in text.lines() {
        if let Some((k, n)) = line.split_once(',')
            && let (Ok(k), Ok(n)) = (k.trim().parse::<usize>(), n.trim().parse::<u64>())
            && k < rows.len()
        {
            rows[k] = Some(n);
        }
    }
    if rows.iter().any(Option::is_none) {
        cleanup(&pending);
        return Err(format!(
            "duckdb did not report the row counts of the sinks; it printed: {}",
            text.trim()
        ));
    }
    let mut result = Vec::new();
    let mut failed = None;
    for (p, n) in pending.iter().zip(rows) {
        if failed.is_some() {
            break;
        }
        match &p.path {
            Some(path) => {
                if let Err(e) = std::fs::rename(&p.tmp, path) {
                    failed = Some(format!("cannot rename {} to {path}: {e}", p.tmp.display()));
                }
            }
            None => match std::fs::read(&p.tmp) {
                Ok(bytes) => {
                    if let Err(e) = stdout.write_all(&bytes).and_then(|_| stdout.flush()) {
                        failed = Some(format!("cannot write standard output: {e}"));
                    }
                    let _ = std::fs::remove_file(&p.tmp);
                }
                Err(e) => failed = Some(format!("cannot read {}: {e}", p.tmp.display())),
            },
        }
        result.push(SinkRows {
            origin: p.origin.clone(),
            path: p.path.clone(),
            rows: n.unwrap_or(0),
        });
    }
    if let Some(f) = failed {
        cleanup(&pending);
        return Err(f);
    }
    Ok(result)
}
