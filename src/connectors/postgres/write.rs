//! Loading: one connection, one transaction, from `prepare` to `commit`.
//!
//! [`begin`] (before any data moves, on the process of the sink's one writer: the coordinating
//! process, or multi-node the writer's worker process, see docs/MULTINODE.md) connects, opens the
//! transaction, creates the table (`create`) or empties it (`replace`: `TRUNCATE`, rolled back
//! with the rest), checks its columns, and parks the connection under a token. The sink's one
//! writer ([`load`], a worker thread of this process) takes the connection, runs
//! `COPY table (cols…) FROM STDIN` in text format (so the server converts to the table's own
//! column types, and refuses a value it cannot hold) from a thread of its own fed through a
//! bounded channel, and parks the connection again when the COPY is complete. The job's commit
//! then runs `COMMIT`; an abort, a failed COPY, a writer that stops half-way (the COPY is
//! cancelled) or a killed process (the server drops the session) leaves the table as it was.

use super::client::{connect_session, error_text, redact};
use super::describe::{self, ident, sql_type, url};
use crate::batch::Batch;
use crate::connectors::{ConnectorError, PendingOutput, RowWriter, opt_str, push_text};
use crate::plan::ir::SinkSpec;
use crate::types::{RowType, Scalar};
use postgres::Client;
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

/// Bytes of COPY text gathered before they are sent to the connection's thread.
const SEND_BYTES: usize = 256 * 1024;

/// A parked transaction: its connection (`None` while the writer holds it, or after it failed)
/// and whether the COPY completed.
struct Parked {
    client: Option<Client>,
    loaded: bool,
}

fn parked() -> &'static Mutex<HashMap<String, Parked>> {
    static P: OnceLock<Mutex<HashMap<String, Parked>>> = OnceLock::new();
    P.get_or_init(|| Mutex::new(HashMap::new()))
}

fn with_parked<T>(f: impl FnOnce(&mut HashMap<String, Parked>) -> T) -> T {
    let mut m = parked().lock().unwrap_or_else(|p| p.into_inner());
    f(&mut m)
}

/// The sink for messages: its table on its server (no password).
pub fn place(spec: &SinkSpec) -> String {
    format!(
        "table {} on {}",
        opt_str(&spec.options, "table").unwrap_or_default(),
        redact(url(&spec.options))
    )
}

/// `COPY table ("a", "b") FROM STDIN` for the sink's columns.
fn copy_sql(table: &str, row: &RowType) -> String {
    let cols: Vec<String> = row.fields.iter().map(|f| ident(&f.name)).collect();
    format!("COPY {table} ({}) FROM STDIN", cols.join(", "))
}

/// Opens the sink's transaction and prepares its table; see the module doc.
pub fn begin(spec: &SinkSpec, row: &RowType) -> Result<Box<dyn PendingOutput>, ConnectorError> {
    let place = place(spec);
    let fail = |e: String| ConnectorError::new(&place, e);
    let mut client = connect_session(url(&spec.options)).map_err(fail)?;
    let sql = |c: &mut Client, q: &str| c.batch_execute(q).map_err(|e| error_text(&e));
    sql(&mut client, "BEGIN").map_err(fail)?;
    let shown = describe::accept(&mut client, &spec.options, row).map_err(|r| fail(r.message))?;
    let mode = opt_str(&spec.options, "write").unwrap_or("append");
    let table = if mode == "create" {
        // The name as PostgreSQL reads it (case folding, `schema.name`), each part quoted.
        let parts: Vec<String> = client
            .query_one("SELECT parse_ident($1)", &[&shown])
            .and_then(|r| r.try_get(0))
            .map_err(|e| fail(format!("`{shown}` is not a table name: {}", error_text(&e))))?;
        let table = parts.iter().map(|p| ident(p)).collect::<Vec<_>>().join(".");
        let cols: Vec<String> = row
            .fields
            .iter()
            .map(|f| {
                let null = if f.ty.nullable { "" } else { " NOT NULL" };
                format!("{} {}{null}", ident(&f.name), sql_type(f.ty.scalar))
            })
            .collect();
        sql(
            &mut client,
            &format!("CREATE TABLE {table} ({})", cols.join(", ")),
        )
        .map_err(fail)?;
        table
    } else {
        shown
    };
    if mode == "replace" {
        sql(&mut client, &format!("TRUNCATE {table}")).map_err(fail)?;
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let token = format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    with_parked(|m| {
        m.insert(
            token.clone(),
            Parked {
                client: Some(client),
                loaded: false,
            },
        )
    });
    Ok(Box::new(Pending {
        token,
        table,
        place,
        done: false,
    }))
}

/// The coordinator's handle on a parked transaction.
struct Pending {
    token: String,
    /// The quoted table name the writer loads.
    table: String,
    place: String,
    done: bool,
}

impl PendingOutput for Pending {
    fn token(&self) -> String {
        format!("{}\n{}", self.token, self.table)
    }

    fn commit(&mut self) -> Result<(), ConnectorError> {
        self.done = true;
        let p = with_parked(|m| m.remove(&self.token));
        let fail = |r: &str| ConnectorError::new(&self.place, r);
        match p {
            Some(Parked {
                client: Some(mut c),
                loaded: true,
            }) => {
                let r = c.batch_execute("COMMIT");
                let _ = c.close();
                r.map_err(|e| fail(&format!("COMMIT failed: {}", error_text(&e))))
            }
            _ => Err(fail("the load did not complete, so nothing was committed")),
        }
    }

    fn describe(&self) -> String {
        self.place.clone()
    }

    fn abort(&mut self) {
        self.done = true;
        if let Some(Parked {
            client: Some(mut c),
            ..
        }) = with_parked(|m| m.remove(&self.token))
        {
            let _ = c.batch_execute("ROLLBACK");
            let _ = c.close();
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.abort();
        }
    }
}

enum Msg {
    Data(Vec<u8>),
    Done,
}

/// The sink's one writer: COPY text built here, sent by the connection's thread.
pub struct PgWriter {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<Result<u64, String>>>,
    buf: Vec<u8>,
    row: RowType,
    place: String,
}

/// Takes the parked connection of `token` and starts its COPY.
pub fn load(spec: &SinkSpec, row: &RowType, token: &str) -> Result<PgWriter, ConnectorError> {
    let place = place(spec);
    let (key, table) = token.split_once('\n').unwrap_or((token, ""));
    let key = key.to_string();
    let client =
        with_parked(|m| m.get_mut(&key).and_then(|p| p.client.take())).ok_or_else(|| {
            ConnectorError::new(&place, "its transaction is not open in this process")
        })?;
    let sql = copy_sql(table, row);
    let (tx, rx) = sync_channel::<Msg>(4);
    let thread = std::thread::Builder::new()
        .name("flow-pg-load".into())
        .spawn(move || {
            let mut client = client;
            let result = (|| {
                let mut w = client.copy_in(sql.as_str()).map_err(|e| error_text(&e))?;
                loop {
                    match rx.recv() {
                        Ok(Msg::Data(d)) => {
                            if let Err(e) = w.write_all(&d) {
                                // The server refused the data; `finish` has its message.
                                return Err(match w.finish() {
                                    Err(e) => error_text(&e),
                                    Ok(_) => format!("sending rows: {e}"),
                                });
                            }
                        }
                        Ok(Msg::Done) => return w.finish().map_err(|e| error_text(&e)),
                        // The writer stopped half-way: dropping `w` cancels the COPY.
                        Err(_) => return Err("the load was stopped".into()),
                    }
                }
            })();
            if result.is_ok() {
                with_parked(|m| {
                    if let Some(p) = m.get_mut(&key) {
                        p.client = Some(client);
                        p.loaded = true;
                    }
                });
            }
            result
        })
        .map_err(|e| ConnectorError::new(&place, format!("cannot start a thread: {e}")))?;
    Ok(PgWriter {
        tx: Some(tx),
        thread: Some(thread),
        buf: Vec::with_capacity(SEND_BYTES + 4096),
        row: row.clone(),
        place,
    })
}

/// Appends one value in COPY's text form: `\N` for null, backslash escapes for the bytes that
/// delimit fields and rows.
fn push_field(out: &mut Vec<u8>, tmp: &mut Vec<u8>, batch: &Batch, r: usize, c: usize, s: Scalar) {
    if batch.is_null(r, c) || s == Scalar::Null {
        out.extend_from_slice(b"\\N");
        return;
    }
    tmp.clear();
    push_text(tmp, batch, r, c, s);
    for &b in tmp.iter() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b => out.push(b),
        }
    }
}

impl PgWriter {
    fn send(&mut self, msg: Msg) -> io::Result<()> {
        let sent = self.tx.as_ref().map(|tx| tx.send(msg).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The connection's thread stopped: its error says why.
        Err(io::Error::other(self.stop()))
    }

    /// Joins the connection's thread: its error, if any.
    fn stop(&mut self) -> String {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(Err(e))) => format!("PostgreSQL refused the rows: {e}"),
            Some(Err(_)) => "the loading thread panicked".into(),
            _ => "the load ended early".into(),
        }
    }
}

impl RowWriter for PgWriter {
    fn write_batch(&mut self, batch: &Batch) -> io::Result<()> {
        let mut tmp = Vec::new();
        for r in 0..batch.rows {
            for (c, f) in self.row.fields.iter().enumerate() {
                if c > 0 {
                    self.buf.push(b'\t');
                }
                push_field(&mut self.buf, &mut tmp, batch, r, c, f.ty.scalar);
            }
            self.buf.push(b'\n');
            if self.buf.len() >= SEND_BYTES {
                let d = std::mem::replace(&mut self.buf, Vec::with_capacity(SEND_BYTES + 4096));
                self.send(Msg::Data(d))?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let d = std::mem::take(&mut self.buf);
            self.send(Msg::Data(d))?;
        }
        self.send(Msg::Done)?;
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(Ok(_))) => Ok(()),
            Some(Ok(Err(e))) => Err(io::Error::other(format!(
                "PostgreSQL refused the rows ({}): {e}",
                self.place
            ))),
            _ => Err(io::Error::other("the loading thread panicked")),
        }
    }
}
