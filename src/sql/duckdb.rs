//! Runs a job's DuckDB statements with the DuckDB command-line program found on `PATH`
//! (`duckdb`, e.g. from the `duckdb-cli` PyPI package): the lightest honest way to drive it —
//! no C++ library compiled into flow, one process per job, the same SQL `flow compile` prints.
//!
//! Outputs stay atomic (`outputs`): every sink is first materialized into a temporary table,
//! copied to a temporary file beside its final name, and only when every statement succeeded
//! are the files renamed; on failure they are removed, with the directories created for them.
//! Rows per sink come from the tables.
//!
//! The CLI reads the script from a file in a work directory (also its spill directory, so
//! DuckDB leaves no `.tmp/` behind) and runs in its own process group with a deadline
//! (`FLOW_DUCKDB_TIMEOUT` seconds, default 3600); on the deadline or SIGINT/SIGTERM/SIGHUP the
//! group is killed and nothing is renamed (`interrupt`: exit 130/143/129).

use super::dialect::{Dialect, DuckDb};
use super::interrupt::{Interrupt, deadline, guarded, supervise};
use super::outputs::Outputs;
pub use super::outputs::SinkRows;
use super::{Statement, StatementKind};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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
/// `stdout` after the job succeeded. An interrupt stops DuckDB and exits (see the module doc).
pub fn run(statements: &[Statement], stdout: &mut dyn Write) -> Result<Vec<SinkRows>, String> {
    guarded("DuckDB", |stop| run_until(statements, stdout, stop))
}

fn run_until(
    statements: &[Statement],
    stdout: &mut dyn Write,
    stop: &Interrupt,
) -> Result<Vec<SinkRows>, String> {
    let cli = find_cli()?;
    let limit = deadline("FLOW_DUCKDB_TIMEOUT")?;
    let work = tempfile::Builder::new()
        .prefix("flow-duckdb-")
        .tempdir()
        .map_err(|e| format!("cannot create a work directory for DuckDB: {e}"))?;
    let d = DuckDb;
    let spill = work.path().join("spill").to_string_lossy().into_owned();
    let mut script = format!("SET temp_directory = {};\n", d.string(&spill));
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
                let tmp = outputs.add(origin, path.as_deref())?;
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
    let file = |name: &str| -> Result<(PathBuf, std::fs::File), String> {
        let p = work.path().join(name);
        let f =
            std::fs::File::create(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        Ok((p, f))
    };
    let (job, mut job_file) = file("job.sql")?;
    job_file
        .write_all(script.as_bytes())
        .and_then(|_| job_file.flush())
        .map_err(|e| format!("cannot write {}: {e}", job.display()))?;
    drop(job_file);
    let input =
        std::fs::File::open(&job).map_err(|e| format!("cannot read {}: {e}", job.display()))?;
    let (out_path, out_file) = file("stdout.txt")?;
    let (err_path, err_file) = file("stderr.txt")?;
    stop.check()?;
    let mut child = Command::new(&cli)
        .args(["-bail", "-batch", "-csv", "-noheader", ":memory:"])
        .stdin(input)
        .stdout(out_file)
        .stderr(err_file)
        .process_group(0)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {}: {e}; install DuckDB with `pip install duckdb-cli`",
                cli.display()
            )
        })?;
    let status = supervise(&mut child, "DuckDB", (limit, "FLOW_DUCKDB_TIMEOUT"), stop)?;
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let stderr = read(&err_path)?;
    if !status.success() || !stderr.trim().is_empty() {
        return Err(format!(
            "the job failed in DuckDB ({status}): {}",
            stderr.trim()
        ));
    }
    let text = read(&out_path)?;
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
        return Err(format!(
            "duckdb did not report the row counts of the sinks; it printed: {}",
            text.trim()
        ));
    }
    let rows: Vec<u64> = rows.into_iter().map(|n| n.unwrap_or(0)).collect();
    stop.check()?;
    outputs.commit(&rows, stdout)
}
