//! Reading: `COPY (SELECT cols… FROM table) TO STDOUT (FORMAT binary)` over one connection,
//! only the columns the job reads (`SourceSpec::columns`), each cast on the server to the one
//! binary form flow decodes (int8, float8, bool, text, timestamptz). A thread owns the
//! connection and sends the COPY stream in chunks through a bounded channel (the `postgres`
//! crate's reader borrows its client, and the worker's reader must own what it reads); the
//! worker's [`PgReader`] decodes the tuples into batches. A null in a non-nullable column or an
//! infinite timestamp is a row error under the source's error policy.
//!
//! Parallel reads ([`plan_table`]): a table source read by several workers is split by block
//! ranges of its heap (`pg_relation_size / block_size`, one contiguous range per worker, the
//! first open below and the last open above), each worker copying `… WHERE ctid >= '(a,0)' AND
//! ctid < '(b,0)'` (a TID range scan). All of them read in one snapshot, so the rows are one
//! consistent set whatever commits meanwhile: the planner's connection exports it
//! (`pg_export_snapshot` in a REPEATABLE READ transaction) and stays open while the workers
//! import it (`SET TRANSACTION SNAPSHOT`); it is closed when every local split has imported it
//! (or with the process, for workers in other processes). A split carries the snapshot's name
//! in `Split::snapshot`. A `query:` source, a small
//! table, a view and a partitioned parent (no heap blocks of their own) stay on one worker.
use super::client::{connect_session, error_text, redact};
use super::describe::{bare_query, ident, url};
use crate::batch::Batch;
use crate::connectors::{ConnectorError, RowReject, SourceReader, Split, opt_str};
use crate::plan::ir::SourceSpec;
use crate::types::{Field, Scalar};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, MutexGuard};

/// Bytes per chunk sent from the connection's thread.
const CHUNK: usize = 256 * 1024;
/// Microseconds from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The server-side cast that gives a column of this flow type its binary form.
fn cast(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::Int => "int8",
        Scalar::Float => "float8",
        Scalar::Bool => "bool",
        Scalar::Str | Scalar::Null => "text",
        Scalar::Timestamp => "timestamptz",
    }
}

/// Where the rows come from, for messages (the URL without its password).
pub fn place(spec: &SourceSpec) -> String {
    let what = match opt_str(&spec.options, "table") {
        Some(t) => format!("table {t}"),
        None => "query".into(),
    };
    format!("{} {what}", redact(url(&spec.options)))
}

/// A table is split only when every worker gets at least this many blocks (8 kB each).
const MIN_BLOCKS_PER_WORKER: u64 = 8;

/// The exporting transactions of this process, by snapshot name: the connection and how many
/// local splits have not imported the snapshot yet.
static EXPORTERS: Mutex<BTreeMap<String, (postgres::Client, usize)>> = Mutex::new(BTreeMap::new());

fn exporters() -> MutexGuard<'static, BTreeMap<String, (postgres::Client, usize)>> {
    EXPORTERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// One split imported the snapshot `name`: the last one closes the exporting connection.
fn imported(name: &str) {
    let mut e = exporters();
    if let Some((_, left)) = e.get_mut(name) {
        *left = left.saturating_sub(1);
        if *left == 0 {
            e.remove(name);
        }
    }
}

/// One worker's part of a table: the name of the snapshot (`Split::snapshot`), the first block and
/// the block after the last (`u64::MAX`: to the end).
pub type BlockRange = (String, u64, u64);

/// The table's block ranges for `workers` workers, in one exported snapshot; `None` when the
/// table is too small to split (or has no heap of its own).
pub fn plan_table(
    spec: &SourceSpec,
    table: &str,
    workers: usize,
) -> Result<Option<Vec<BlockRange>>, String> {
    let mut client = connect_session(url(&spec.options))?;
    let err = |e: postgres::Error| error_text(&e);
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .map_err(err)?;
    let row = client
        .query_opt(
            "SELECT pg_export_snapshot(), \
             (pg_relation_size(c.oid) / current_setting('block_size')::bigint)::bigint \
             FROM pg_class c WHERE c.oid = to_regclass($1)",
            &[&table],
        )
        .map_err(err)?
        .ok_or_else(|| format!("table `{table}` no longer exists"))?;
    let name: String = row.try_get(0).map_err(err)?;
    let blocks: i64 = row.try_get(1).map_err(err)?;
    let blocks = u64::try_from(blocks).unwrap_or(0);
    let n = workers as u64;
    if workers < 2 || blocks < n * MIN_BLOCKS_PER_WORKER {
        return Ok(None);
    }
    let ranges = (0..n)
        .map(|k| {
            let start = if k == 0 { 0 } else { blocks * k / n };
            let end = if k + 1 == n {
                u64::MAX
            } else {
                blocks * (k + 1) / n
            };
            (name.clone(), start, end)
        })
        .collect();
    exporters().insert(name, (client, workers));
    Ok(Some(ranges))
}

/// The table's row filter of a split: its block range (`u64::MAX`: no upper bound).
fn ctid_range(split: &Split) -> Option<String> {
    let bound = |b: u64| format!("'({b},0)'::tid");
    match (split.start, split.end) {
        (0, u64::MAX) => None,
        (0, e) => Some(format!("ctid < {}", bound(e))),
        (s, u64::MAX) => Some(format!("ctid >= {}", bound(s))),
        (s, e) => Some(format!("ctid >= {} AND ctid < {}", bound(s), bound(e))),
    }
}

/// The COPY statement of a source: the produced columns, in order; `filter` a row condition
/// (a split's block range).
fn copy_sql_where(spec: &SourceSpec, table: Option<&str>, filter: Option<&str>) -> String {
    let cols: Vec<String> = spec
        .columns
        .iter()
        .filter_map(|&i| spec.schema.fields.get(i))
        .map(|f| format!("{}::{}", ident(&f.name), cast(f.ty.scalar)))
        .collect();
    let from = match table {
        Some(t) => t.to_string(),
        None => format!(
            "({}) AS flow_query",
            bare_query(opt_str(&spec.options, "query").unwrap_or_default())
        ),
    };
    let filter = filter.map(|f| format!(" WHERE {f}")).unwrap_or_default();
    format!(
        "COPY (SELECT {} FROM {from}{filter}) TO STDOUT (FORMAT binary)",
        cols.join(", ")
    )
}

/// The connection's thread: connects, resolves the table, streams the COPY in chunks. It ends
/// when the stream does, on an error (sent), or when the reader hangs up.
fn stream(spec: SourceSpec, split: Split, tx: SyncSender<Result<Vec<u8>, String>>) {
    let run = || -> Result<(), String> {
        let u = url(&spec.options);
        let mut client = connect_session(u)?;
        // A pushed chain's helper functions (`sql::place`), before any transaction: they live
        // in the session's `pg_temp`, and a snapshot's transaction is read-only.
        if let Some(setup) = opt_str(&spec.options, super::SETUP_OPTION) {
            client
                .batch_execute(setup)
                .map_err(|e| format!("{}: {}", redact(u), error_text(&e)))?;
        }
        if let Some(name) = &split.snapshot {
            let set = format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
                name.replace('\'', "''")
            );
            let done = client.batch_execute(&set);
            imported(name);
            done.map_err(|e| format!("cannot read in the job's snapshot: {}", error_text(&e)))?;
        }
        let table = match opt_str(&spec.options, "table") {
            Some(t) => {
                let row = client
                    .query_one("SELECT to_regclass($1)::text", &[&t])
                    .map_err(|e| error_text(&e))?;
                let name: Option<String> = row.try_get(0).map_err(|e| error_text(&e))?;
                Some(name.ok_or_else(|| format!("table `{t}` no longer exists"))?)
            }
            None => None,
        };
        let filter = split.snapshot.as_ref().and_then(|_| ctid_range(&split));
        let sql = copy_sql_where(&spec, table.as_deref(), filter.as_deref());
        let mut reader = client.copy_out(sql.as_str()).map_err(|e| error_text(&e))?;
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let mut n = 0;
            while n < CHUNK {
                match reader.read(&mut chunk[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) => {
                        // The server's error (a failing query) is inside the I/O error.
                        let why = match e
                            .get_ref()
                            .and_then(|x| x.downcast_ref::<postgres::Error>())
                        {
                            Some(pg) => error_text(pg),
                            None => e.to_string(),
                        };
                        return Err(format!("reading the COPY stream: {why}"));
                    }
                }
            }
            if n == 0 {
                return Ok(());
            }
            chunk.truncate(n);
            if tx.send(Ok(chunk)).is_err() {
                return Ok(()); // the reader is gone (a `limit` was reached, or the job failed)
            }
        }
    };
    if let Err(e) = run() {
        let _ = tx.send(Err(e));
    }
}

pub fn open(spec: &SourceSpec, split: &Split) -> Result<Box<dyn SourceReader>, ConnectorError> {
    let (tx, rx) = sync_channel(4);
    let (s, sp) = (spec.clone(), split.clone());
    std::thread::Builder::new()
        .name("flow-pg-read".into())
        .spawn(move || stream(s, sp, tx))
        .map_err(|e| ConnectorError::new(place(spec), format!("cannot start a thread: {e}")))?;
    let fields = spec
        .columns
        .iter()
        .filter_map(|&i| spec.schema.fields.get(i).cloned())
        .collect();
    Ok(Box::new(PgReader {
        rx,
        buf: Vec::new(),
        pos: 0,
        header: false,
        ended: false,
        fields,
        place: place(spec),
        rows: 0,
        bytes: 0,
    }))
}

pub struct PgReader {
    rx: Receiver<Result<Vec<u8>, String>>,
    buf: Vec<u8>,
    pos: usize,
    header: bool,
    ended: bool,
    fields: Vec<Field>,
    place: String,
    rows: u64,
    bytes: u64,
}

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}
fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

/// One tuple's fields in `b`: `Ok(None)` when `b` holds less than a whole tuple; `Ok(Some(
/// (None, 2)))` for the trailer.
type Fields = Vec<Option<(usize, usize)>>;
fn tuple(b: &[u8], want: usize) -> Result<Option<(Option<Fields>, usize)>, String> {
    if b.len() < 2 {
        return Ok(None);
    }
    let n = be_i16(b);
    if n == -1 {
        return Ok(Some((None, 2)));
    }
    if n < 0 || n as usize != want {
        return Err(format!(
            "the COPY stream has a tuple of {n} fields, {want} were asked for"
        ));
    }
    let mut at = 2;
    let mut fields = Vec::with_capacity(want);
    for _ in 0..want {
        if b.len() < at + 4 {
            return Ok(None);
        }
        let len = be_i32(&b[at..]);
        at += 4;
        if len < 0 {
            fields.push(None);
            continue;
        }
        let len = len as usize;
        if b.len() < at + len {
            return Ok(None);
        }
        fields.push(Some((at, len)));
        at += len;
    }
    Ok(Some((Some(fields), at)))
}

impl PgReader {
    fn fail(&self, reason: impl Into<String>) -> ConnectorError {
        ConnectorError::new(&self.place, reason)
    }

    /// More bytes from the connection's thread; `false` when the stream ended.
    fn fill(&mut self) -> Result<bool, ConnectorError> {
        match self.rx.recv() {
            Ok(Ok(chunk)) => {
                if self.pos > 0 {
                    self.buf.drain(..self.pos);
                    self.pos = 0;
                }
                self.bytes += chunk.len() as u64;
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            Ok(Err(e)) => Err(self.fail(e)),
            Err(_) => Ok(false),
        }
    }

    /// Decodes one tuple's field into `out[row][col]`; `Err` is the row error.
    fn set(&self, out: &mut Batch, row: usize, col: usize, v: Option<&[u8]>) -> Result<(), String> {
        let f = &self.fields[col];
        let Some(v) = v else {
            if f.ty.nullable {
                out.set_null(row, col);
                return Ok(());
            }
            return Err(format!("null in column `{}`, declared {}", f.name, f.ty));
        };
        let need = |n: usize| {
            if v.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "column `{}`: {} bytes where {n} were expected",
                    f.name,
                    v.len()
                ))
            }
        };
        match f.ty.scalar {
            Scalar::Int => {
                need(8)?;
                out.set_int(row, col, be_i64(v));
            }
            Scalar::Float => {
                need(8)?;
                out.set_float(row, col, f64::from_bits(be_i64(v) as u64));
            }
            Scalar::Bool => {
                need(1)?;
                out.set_bool(row, col, v[0] != 0);
            }
            Scalar::Timestamp => {
                need(8)?;
                let t = be_i64(v);
                let micros = (t != i64::MAX && t != i64::MIN)
                    .then(|| t.checked_add(PG_EPOCH_MICROS))
                    .flatten()
                    .ok_or_else(|| format!("column `{}`: an infinite timestamp", f.name))?;
                out.set_int(row, col, micros);
            }
            Scalar::Str => {
                std::str::from_utf8(v)
                    .map_err(|_| format!("column `{}`: invalid UTF-8", f.name))?;
                out.set_str_bytes(row, col, v);
            }
            Scalar::Null => out.set_null(row, col),
        }
        Ok(())
    }

    /// A tuple's fields as text, for a rejected row's record.
    fn raw(&self, b: &[u8], fields: &Fields) -> String {
        let mut parts = Vec::new();
        for (f, v) in self.fields.iter().zip(fields) {
            let Some((at, len)) = *v else {
                parts.push(format!("{}=null", f.name));
                continue;
            };
            let v = &b[at..at + len];
            let text = match (f.ty.scalar, len) {
                (Scalar::Int, 8) => be_i64(v).to_string(),
                (Scalar::Float, 8) => f64::from_bits(be_i64(v) as u64).to_string(),
                (Scalar::Bool, 1) => (v[0] != 0).to_string(),
                (Scalar::Timestamp, 8) => match be_i64(v) {
                    i64::MAX => "infinity".into(),
                    i64::MIN => "-infinity".into(),
                    t => crate::stdlib::ops::timestamp_to_str(t.saturating_add(PG_EPOCH_MICROS)),
                },
                _ => String::from_utf8_lossy(v).into_owned(),
            };
            parts.push(format!("{}={text}", f.name));
        }
        parts.join(", ")
    }
}

impl SourceReader for PgReader {
    fn read(
        &mut self,
        out: &mut Batch,
        max_rows: usize,
        rejects: &mut Vec<RowReject>,
    ) -> Result<bool, ConnectorError> {
        if self.ended {
            return Ok(false);
        }
        while !self.header {
            let b = &self.buf[self.pos..];
            if b.len() >= SIGNATURE.len() + 8 {
                if &b[..SIGNATURE.len()] != SIGNATURE {
                    return Err(self.fail("the server did not send a binary COPY stream"));
                }
                let ext = be_i32(&b[SIGNATURE.len() + 4..]);
                let len = SIGNATURE.len() + 8 + ext.max(0) as usize;
                if b.len() >= len {
                    self.pos += len;
                    self.header = true;
                    break;
                }
            }
            if !self.fill()? {
                return Err(self.fail("the COPY stream ended before its header"));
            }
        }
        let mut n = 0;
        while n < max_rows.max(1) {
            let b = &self.buf[self.pos..];
            let t = tuple(b, self.fields.len()).map_err(|e| self.fail(e))?;
            let Some((fields, len)) = t else {
                if !self.fill()? {
                    return Err(
                        self.fail("the COPY stream ended in the middle (the connection was lost?)")
                    );
                }
                continue;
            };
            let Some(fields) = fields else {
                self.pos += len;
                self.ended = true;
                return Ok(false);
            };
            self.rows += 1;
            let row = out.push_row();
            let mut bad = None;
            for (c, v) in fields.iter().enumerate() {
                let v = v.map(|(at, l)| &b[at..at + l]);
                if let Err(e) = self.set(out, row, c, v) {
                    bad = Some((c, e));
                    break;
                }
            }
            if let Some((c, reason)) = bad {
                out.pop_row();
                rejects.push(RowReject {
                    file: self.place.clone(),
                    line: Some(self.rows),
                    column: Some((c + 1, self.fields[c].name.clone())),
                    reason,
                    raw: self.raw(b, &fields),
                });
            } else {
                n += 1;
            }
            self.pos += len;
        }
        Ok(true)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}
