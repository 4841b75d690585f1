//! Runs a job's PostgreSQL statements over one connection (the `postgres` crate, synchronous:
//! no server-side program to install, no `psql` process, the same SQL `flow compile` prints).
//!
//! File inputs are sent with `COPY … FROM STDIN` into temporary tables; every sink is
//! materialized into a temporary table (its row count), then `COPY (…) TO STDOUT` streams it
//! into a temporary file that is renamed into place only when the whole job succeeded
//! (`outputs`): complete or absent.
//!
//! The connection (deadlines, password sources, redaction) is the connector's:
//! `connectors::postgres::client`.

use super::dialect::Dialect;
use super::interrupt::{Interrupt, PgWatch, guarded};
use super::outputs::{Outputs, SinkRows};
use super::{Statement, StatementKind};
pub use crate::connectors::postgres::client::{
    connect, connect_with, error_text, is_url, pgpass_lookup, redact,
};
use postgres::Client;
use std::io::Write;

/// The files of a source path: a glob's matches in order, or the path itself.
fn input_files(path: &str) -> Result<Vec<String>, String> {
    if !path.contains(['*', '?', '[']) {
        return Ok(vec![path.to_string()]);
    }
    let paths = glob::glob(path).map_err(|e| format!("bad pattern {path}: {e}"))?;
    let mut v: Vec<String> = paths
        .filter_map(Result::ok)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(format!("no input file matches {path}"));
    }
    Ok(v)
}

/// Sends the file `path` to a `COPY … FROM STDIN` statement.
fn copy_file(client: &mut Client, sql: &str, path: &str) -> Result<u64, String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot read input {path}: {e}"))?;
    let mut writer = client
        .copy_in(sql)
        .map_err(|e| format!("loading {path} failed in PostgreSQL: {}", error_text(&e)))?;
    // An I/O error while sending (the server aborted the COPY) surfaces at `finish`.
    let sent = std::io::copy(&mut file, &mut writer);
    let done = writer
        .finish()
        .map_err(|e| format!("loading {path} failed in PostgreSQL: {}", error_text(&e)))?;
    sent.map_err(|e| format!("cannot send {path} to PostgreSQL: {e}"))?;
    Ok(done)
}

/// Runs `statements` (from `compile(plan, &Postgres)`) on the server at `url`; standard-output
/// sinks are written to `stdout` after the job succeeded. SIGINT/SIGTERM/SIGHUP cancel the
/// running statement, roll the transaction back, remove the temporary outputs and exit
/// 130/143/129 (`interrupt`).
pub fn run(
    url: &str,
    statements: &[Statement],
    stdout: &mut dyn Write,
) -> Result<Vec<SinkRows>, String> {
    guarded("PostgreSQL", |stop| {
        run_until(url, statements, stdout, stop)
    })
}

fn run_until(
    url: &str,
    statements: &[Statement],
    stdout: &mut dyn Write,
    stop: &Interrupt,
) -> Result<Vec<SinkRows>, String> {
    let mut client = connect(url)?;
    let mut outputs = Outputs::new("postgres");
    let watch = PgWatch::start(stop, client.cancel_token());
    // One transaction: the tables a job loads in place change only if it all succeeds.
    let result = client
        .batch_execute("BEGIN")
        .map_err(|e| format!("{}: {}", redact(url), error_text(&e)))
        .and_then(|_| run_on(&mut client, statements, &mut outputs, stop))
        .and_then(|r| {
            stop.check()?;
            client
                .batch_execute("COMMIT")
                .map_err(|e| format!("COMMIT failed in PostgreSQL: {}", error_text(&e)))
                .map(|_| r)
        });
    drop(watch);
    // Temporary tables and functions go with the session (and an open transaction with it).
    let _ = client.close();
    // On an error, dropping `outputs` removes the temporary files.
    let (rows, inserted) = result?;
    outputs.commit(&rows, stdout).map(|mut v| {
        v.extend(inserted);
        v
    })
}

/// Rows per file sink (in `outputs` order), and the tables loaded in place.
fn run_on(
    client: &mut Client,
    statements: &[Statement],
    outputs: &mut Outputs,
    stop: &Interrupt,
) -> Result<(Vec<u64>, Vec<SinkRows>), String> {
    let failed = |e: postgres::Error| format!("the job failed in PostgreSQL: {}", error_text(&e));
    let mut rows = Vec::new();
    let mut inserted = Vec::new();
    for st in statements {
        stop.check()?;
        match &st.kind {
            StatementKind::Insert { origin, table } => {
                let n = client.execute(st.sql.as_str(), &[]).map_err(failed)?;
                inserted.push(SinkRows {
                    origin: origin.clone(),
                    path: Some(table.clone()),
                    rows: n,
                });
            }
            StatementKind::Setup => client.batch_execute(&st.sql).map_err(failed)?,
            StatementKind::Load { path, .. } => {
                if st.sql.starts_with("COPY ") {
                    for f in input_files(path)? {
                        copy_file(client, &st.sql, &f)?;
                    }
                } else {
                    client.batch_execute(&st.sql).map_err(failed)?;
                }
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
                let table = format!("\"flow_sink_{k}\"");
                client
                    .batch_execute(&format!("CREATE TEMPORARY TABLE {table} AS {query}"))
                    .map_err(failed)?;
                let n = client
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .and_then(|r| r.try_get::<_, i64>(0))
                    .map_err(failed)?;
                rows.push(u64::try_from(n).unwrap_or(0));
                let copy = super::Postgres
                    .write(&format!("SELECT * FROM {table}"), None, *format)
                    .map_err(|e| format!("sink {origin}: {e}"))?;
                let mut file = std::fs::File::create(&tmp)
                    .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
                let mut reader = client.copy_out(copy.as_str()).map_err(failed)?;
                std::io::copy(&mut reader, &mut file)
                    .and_then(|_| file.flush())
                    .map_err(|e| format!("writing {} failed: {e}", tmp.display()))?;
            }
        }
    }
    Ok((rows, inserted))
}
