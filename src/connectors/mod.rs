//! Sources and sinks behind one registry: CSV, JSON lines, standard input/output.
//!
//! The runtime never names a connector: it looks `SourceSpec::connector` / `SinkSpec::connector`
//! up in a [`Registry`]. A source connector plans *splits* on the coordinating thread (this is
//! where missing inputs are reported, before any data moves) and opens a [`SourceReader`] per
//! split on the worker that owns it. A sink connector formats rows onto a byte stream that the
//! runtime provides (a temporary part file, or standard output); atomicity (temp file + rename)
//! lives in [`sink`], not in the formats.

pub mod csv;
pub mod dead_letter;
pub mod input;
pub mod jsonl;
pub mod memory;
pub mod outbuf;
pub mod parquet;
pub mod postgres;
pub mod sink;
pub mod split;
pub mod stdio;
pub mod tsv;

use crate::batch::Batch;
use crate::catalog::{Catalog, ConnectorInfo, Description, Refusal};
use crate::diagnostics::Code;
use crate::job::Options;
use crate::plan::ir::{SinkSpec, SourceSpec};
use crate::stdlib::ops;
use crate::types::{RowType, Scalar, Type, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// A piece of one input that one worker reads: a byte range of a file aligned to record
/// boundaries (records *starting* in `start..end` belong to the split), standard input, or a
/// block range of a PostgreSQL table (`snapshot`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// `None`: standard input.
    pub path: Option<PathBuf>,
    pub start: u64,
    /// Records starting at or after `end` belong to the next split (`u64::MAX`: to the end).
    pub end: u64,
    /// The first record of this split is a header line to skip.
    pub skip_header: bool,
    /// For each column of the source schema, the position of its field in a record (from the
    /// header when there is one, else the schema order).
    pub field_of_column: Vec<usize>,
    /// The number of fields every record must have (CSV).
    pub fields: usize,
    /// `start` is only a target: the reader first moves it to the first record start after it
    /// (CSV: found by its own quote-aware scan from the beginning of the file, so that the
    /// workers do this in parallel instead of the planner doing it serially before any reading).
    #[serde(default)]
    pub align: bool,
    /// `end` is a guess (CSV: the first line end after a target with no quote in the 64 KiB
    /// after it, which is a record start unless the target is inside a quoted field): the reader
    /// checks, when it reaches `end`, that no record it read runs past it, and fails the job if
    /// one does (`split::SPLIT_GUESS_WRONG`); the next split starts there.
    #[serde(default)]
    pub end_guessed: bool,
    /// A block range of a PostgreSQL table: the exported snapshot (`pg_export_snapshot`) every
    /// split of that table reads in. `None` for every other input.
    #[serde(default)]
    pub snapshot: Option<String>,
}

impl Split {
    /// The whole of an input that is not a file (a table, rows in memory), read by the first
    /// of `workers`: `result[0]` holds it, the others nothing. `columns`: `field_of_column`.
    pub fn whole_on_first(workers: usize, columns: Vec<usize>) -> Vec<Vec<Split>> {
        let mut out = vec![Vec::new(); workers.max(1)];
        out[0].push(Split {
            path: None,
            start: 0,
            end: u64::MAX,
            skip_header: false,
            fields: columns.len(),
            field_of_column: columns,
            align: false,
            end_guessed: false,
            snapshot: None,
        });
        out
    }
}

/// A malformed input row: where it is and why it was rejected.
#[derive(Clone, Debug, PartialEq)]
pub struct RowReject {
    pub file: String,
    /// 1-based physical line where the record starts.
    pub line: Option<u64>,
    /// 1-based field number and column name.
    pub column: Option<(usize, String)>,
    pub reason: String,
    /// The raw record, lossily decoded.
    pub raw: String,
}

/// Errors that stop a job, raised by connectors (an input that cannot be opened, an I/O error).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorError {
    pub place: String,
    pub reason: String,
}

impl ConnectorError {
    pub fn new(place: impl Into<String>, reason: impl Into<String>) -> ConnectorError {
        ConnectorError {
            place: place.into(),
            reason: reason.into(),
        }
    }
}

/// Reads one split.
pub trait SourceReader {
    /// Appends up to `max_rows` good rows to `out` (its layout: the spec's `columns`), and every
    /// rejected row to `rejects`. Returns `Ok(false)` once the split is exhausted.
    fn read(
        &mut self,
        out: &mut Batch,
        max_rows: usize,
        rejects: &mut Vec<RowReject>,
    ) -> Result<bool, ConnectorError>;
    /// Bytes consumed so far (for progress).
    fn bytes_read(&self) -> u64;
}

pub trait SourceConnector: Send + Sync {
    /// The connector's description of itself: what the checker validates a call against.
    fn info(&self) -> ConnectorInfo;
    /// The name it is registered and called by (its description's).
    fn name(&self) -> &'static str {
        self.info().name
    }
    /// Infers a schema from `file` (the first file of the source's path or glob) and the
    /// validated options, for a source declared without one. Runs at check time.
    fn infer(&self, _file: &str, _options: &Options) -> Result<RowType, String> {
        Err(format!(
            "`{}` cannot infer a schema; declare one",
            self.name()
        ))
    }
    /// The column names `file` declares itself (a header line), if the connector reads such a
    /// thing: the checker verifies a declared schema against them.
    fn header(&self, _file: &str, _options: &Options) -> Result<Option<Vec<String>>, String> {
        Ok(None)
    }
    /// For a connector whose description says `describes`: the columns of its input (a
    /// database table or query), asked of the server with the validated options. Runs at check
    /// time, in the driver's probe.
    fn describe(&self, _options: &Options) -> Result<Description, Refusal> {
        Err(Refusal::new(
            Code::SchemaInference,
            None,
            format!("`{}` does not describe its input", self.name()),
            "declare a schema",
        ))
    }
    /// An estimate of the rows in `files` (the source's path or glob, expanded), for the
    /// planner's join strategy; runs at check time. The default suits line-based formats: the
    /// files' bytes times the lines per byte of a sample of the first file.
    fn estimate_rows(&self, files: &[std::path::PathBuf], _options: &Options) -> Option<u64> {
        estimate_lines(files)
    }
    /// Runs on the coordinating thread: checks that the inputs exist and assigns splits to
    /// `workers` workers (`result[w]` = splits of worker `w`, read in order).
    fn plan(&self, spec: &SourceSpec, workers: usize) -> Result<Vec<Vec<Split>>, ConnectorError>;
    /// Runs on the worker that owns `split`.
    fn open(
        &self,
        spec: &SourceSpec,
        split: &Split,
    ) -> Result<Box<dyn SourceReader>, ConnectorError>;
    /// Whether the guessed `end` of `split` (`Split::end_guessed`) is a record start, found
    /// exactly (CSV: a quote-aware scan from the start of the file). Runs on the coordinating
    /// thread, only after a job with guessed ends failed.
    fn guess_holds(&self, _spec: &SourceSpec, _split: &Split) -> Result<bool, ConnectorError> {
        Ok(true)
    }
}

/// The lines in `files`, estimated from the line density of the first one, sampled in up to
/// three 32 KiB windows (its start, middle and end: the lines of a file often grow longer
/// towards its end, with its ids). Exact for a file shorter than 96 KiB.
pub fn estimate_lines(files: &[std::path::PathBuf]) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    const WINDOW: u64 = 32 << 10;
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).ok().map(|m| m.len()))
        .sum::<Option<u64>>()?;
    let first = files.first()?;
    let len = std::fs::metadata(first).ok()?.len();
    let mut file = std::fs::File::open(first).ok()?;
    let starts: Vec<u64> = if len <= 3 * WINDOW {
        vec![0]
    } else {
        vec![0, len / 2 - WINDOW / 2, len - WINDOW]
    };
    let (mut lines, mut sampled) = (0u64, 0u64);
    let mut buf = Vec::new();
    for at in starts {
        buf.clear();
        file.seek(SeekFrom::Start(at)).ok()?;
        (&mut file).take(3 * WINDOW).read_to_end(&mut buf).ok()?;
        let take = if len <= 3 * WINDOW {
            buf.len()
        } else {
            buf.len().min(WINDOW as usize)
        };
        lines += buf[..take].iter().filter(|&&b| b == b'\n').count() as u64;
        sampled += take as u64;
    }
    if sampled == 0 {
        return Some(0);
    }
    if len <= 3 * WINDOW && buf.last() != Some(&b'\n') {
        lines += 1;
    }
    Some((bytes as f64 * lines as f64 / sampled as f64).round() as u64)
}

/// Formats rows onto a byte stream.
pub trait RowWriter {
    fn write_batch(&mut self, batch: &Batch) -> io::Result<()>;
    /// Flushes everything; called once at the end of a successful stream.
    fn finish(&mut self) -> io::Result<()>;
}

/// Where a sink writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkTarget {
    /// A file (`SinkSpec::path`), written atomically by the runtime.
    File,
    /// Standard output: one writer (worker 0), not atomic.
    Stdout,
    /// A file (`SinkSpec::path`), written atomically by one writer (worker 0) that gets every
    /// row and writes the whole file: for formats whose footer indexes the data (Parquet).
    OneFile,
    /// Somewhere the connector writes itself, in a transaction (a database table): opened on
    /// the coordinating process before data moves ([`SinkConnector::begin`]), written by one
    /// writer ([`SinkConnector::load`]) and committed or rolled back with the job's outputs.
    Transaction,
}

/// A sink's open transaction, held from before any data moves to the job's commit by the process
/// of the sink's one writer (the coordinating process; multi-node, the writer's worker process).
pub trait PendingOutput: Send {
    /// The key the job's writer finds the transaction under ([`SinkConnector::load`]).
    fn token(&self) -> String;
    /// Makes everything the writer loaded visible, at once.
    fn commit(&mut self) -> Result<(), ConnectorError>;
    /// Leaves the target as it was before the job.
    fn abort(&mut self);
    /// Where the rows went, for the run's summary ("table t on postgres://…", no password).
    fn describe(&self) -> String;
}

pub trait SinkConnector: Send + Sync {
    /// The connector's description of itself: what the checker validates a call against.
    fn info(&self) -> ConnectorInfo;
    /// The name it is registered and called by (its description's).
    fn name(&self) -> &'static str {
        self.info().name
    }
    fn target(&self, spec: &SinkSpec) -> SinkTarget;
    /// Checks the options before any data moves.
    fn validate(&self, spec: &SinkSpec) -> Result<(), ConnectorError>;
    /// A writer for `row`-typed rows onto `out`; `first` = this writer's output comes first in
    /// the final file (it writes the header, if the format has one).
    fn writer(
        &self,
        spec: &SinkSpec,
        row: &RowType,
        out: Box<dyn Write + Send>,
        first: bool,
    ) -> Result<Box<dyn RowWriter>, ConnectorError>;
    /// For a connector whose description says `describes`: whether its target accepts
    /// `row`-typed rows with these options. Runs at check time, in the driver's probe.
    fn accept(&self, _options: &Options, _row: &RowType) -> Result<(), Refusal> {
        Ok(())
    }
    /// `SinkTarget::Transaction`: opens the transaction, on the process of the sink's one
    /// writer, before any data moves.
    fn begin(
        &self,
        spec: &SinkSpec,
        _row: &RowType,
    ) -> Result<Box<dyn PendingOutput>, ConnectorError> {
        Err(ConnectorError::new(
            &spec.origin,
            format!("`{}` writes no transactions", self.name()),
        ))
    }
    /// `SinkTarget::Transaction`: the one writer, loading rows into the transaction `token`
    /// (of [`SinkConnector::begin`], in this process).
    fn load(
        &self,
        spec: &SinkSpec,
        _row: &RowType,
        _token: &str,
    ) -> Result<Box<dyn RowWriter>, ConnectorError> {
        Err(ConnectorError::new(
            &spec.origin,
            format!("`{}` writes no transactions", self.name()),
        ))
    }
}

/// Connectors by name.
#[derive(Clone)]
pub struct Registry {
    sources: BTreeMap<String, Arc<dyn SourceConnector>>,
    sinks: BTreeMap<String, Arc<dyn SinkConnector>>,
}

impl Registry {
    pub fn empty() -> Registry {
        Registry {
            sources: BTreeMap::new(),
            sinks: BTreeMap::new(),
        }
    }

    /// `csv`, `jsonl`, `parquet`, `postgres`, `stdin`, `tsv` sources; `csv`, `jsonl`, `parquet`,
    /// `postgres`, `stdout`, `tsv` sinks.
    pub fn builtin() -> Registry {
        let mut r = Registry::empty();
        r.add_source(Arc::new(csv::CsvSource));
        r.add_source(Arc::new(jsonl::JsonlSource));
        r.add_source(Arc::new(parquet::ParquetSource));
        r.add_source(Arc::new(postgres::PostgresSource));
        r.add_source(Arc::new(stdio::StdinSource));
        r.add_source(Arc::new(tsv::TsvSource));
        r.add_sink(Arc::new(csv::CsvSink));
        r.add_sink(Arc::new(jsonl::JsonlSink));
        r.add_sink(Arc::new(parquet::ParquetSink));
        r.add_sink(Arc::new(postgres::PostgresSink));
        r.add_sink(Arc::new(stdio::StdoutSink));
        r.add_sink(Arc::new(tsv::TsvSink));
        r
    }

    pub fn add_source(&mut self, c: Arc<dyn SourceConnector>) {
        self.sources.insert(c.name().to_string(), c);
    }
    pub fn add_sink(&mut self, c: Arc<dyn SinkConnector>) {
        self.sinks.insert(c.name().to_string(), c);
    }
    pub fn source(&self, name: &str) -> Option<Arc<dyn SourceConnector>> {
        self.sources.get(name).cloned()
    }
    pub fn sink(&self, name: &str) -> Option<Arc<dyn SinkConnector>> {
        self.sinks.get(name).cloned()
    }
    /// Every connector's description, for the checker.
    pub fn catalog(&self) -> Catalog {
        Catalog {
            sources: self.sources.values().map(|c| c.info()).collect(),
            sinks: self.sinks.values().map(|c| c.info()).collect(),
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

// ---- option helpers -------------------------------------------------------------------------

pub fn opt_bool(opts: &crate::job::Options, key: &str, default: bool) -> bool {
    match opts.get(key) {
        Some(Value::Bool(b)) => *b,
        _ => default,
    }
}

pub fn opt_str<'a>(opts: &'a crate::job::Options, key: &str) -> Option<&'a str> {
    match opts.get(key) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}

/// The `delimiter` option: one ASCII byte (default `,`).
pub fn opt_delimiter(opts: &crate::job::Options) -> Result<u8, String> {
    match opt_str(opts, "delimiter") {
        None => Ok(b','),
        Some("\\t") => Ok(b'\t'),
        Some(s) if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        Some(s) => Err(format!(
            "delimiter must be one ASCII character, found {s:?}"
        )),
    }
}

// ---- values from text -----------------------------------------------------------------------

/// The rule for an empty field of a nullable column, whatever its type: null. Sets it and says
/// true for such a field; false (nothing set) for any other. [`set_from_text`] applies it first;
/// the CSV reader's fast path applies it before falling back to that call.
#[inline(always)]
pub fn set_empty_as_null(out: &mut Batch, row: usize, col: usize, text: &[u8], ty: Type) -> bool {
    if text.is_empty() && ty.nullable {
        out.set_null(row, col);
        return true;
    }
    false
}

/// Stores the text of one field into `out[row][col]` as type `ty`. An empty field is null for a
/// nullable column ([`set_empty_as_null`]), the empty string for a `str` column, and an error
/// otherwise.
pub fn set_from_text(
    out: &mut Batch,
    row: usize,
    col: usize,
    text: &[u8],
    ty: Type,
) -> Result<(), String> {
    if set_empty_as_null(out, row, col, text, ty) {
        return Ok(());
    }
    // Fast paths for the common plain forms (ASCII digits only, so no UTF-8 check is needed);
    // anything else takes the general path below, with the same results and messages.
    match ty.scalar {
        Scalar::Int => {
            if let Some(v) = fast_int(text) {
                out.set_int(row, col, v);
                return Ok(());
            }
        }
        Scalar::Float => {
            if let Some(v) = fast_float(text) {
                out.set_float(row, col, v);
                return Ok(());
            }
        }
        // ASCII is UTF-8: skip the general check for the common case.
        Scalar::Str if !text.is_empty() && text.is_ascii() => {
            out.set_str_bytes(row, col, text);
            return Ok(());
        }
        _ => {}
    }
    let s = std::str::from_utf8(text)
        .map_err(|e| format!("invalid UTF-8 (byte {} of the field)", e.valid_up_to() + 1))?;
    if s.is_empty() {
        if ty.scalar == Scalar::Str {
            out.set_str(row, col, "");
            return Ok(());
        }
        return Err(format!("missing value for non-nullable {ty} column"));
    }
    match ty.scalar {
        Scalar::Str => out.set_str(row, col, s),
        Scalar::Int => match ops::parse_int(s) {
            Some(v) => out.set_int(row, col, v),
            None => return Err(format!("cannot parse {s:?} as int")),
        },
        Scalar::Float => match ops::parse_float(s) {
            Some(v) => out.set_float(row, col, v),
            None if ops::float_out_of_range(s) => {
                return Err(format!("{s:?} is out of range for a float"));
            }
            None => return Err(format!("cannot parse {s:?} as float")),
        },
        Scalar::Bool => {
            let t = s.trim();
            if t.eq_ignore_ascii_case("true") {
                out.set_bool(row, col, true)
            } else if t.eq_ignore_ascii_case("false") {
                out.set_bool(row, col, false)
            } else {
                return Err(format!("cannot parse {s:?} as bool"));
            }
        }
        Scalar::Timestamp => match ops::parse_timestamp(s) {
            Some(v) => out.set_int(row, col, v),
            None => return Err(format!("cannot parse {s:?} as timestamp")),
        },
        Scalar::Null => out.set_null(row, col),
    }
    Ok(())
}

/// `-?[0-9]{1,18}` exactly (no sign `+`, no spaces): the value, else `None` (then the general
/// parser decides). 18 digits always fit an `i64`.
#[inline]
pub fn fast_int(t: &[u8]) -> Option<i64> {
    let (neg, d) = match t {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, t),
    };
    if d.is_empty() || d.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in d {
        let x = c.wrapping_sub(b'0');
        if x > 9 {
            return None;
        }
        v = v * 10 + x as i64;
    }
    Some(if neg { -v } else { v })
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `-?[0-9]+(\.[0-9]+)?` with at most 15 significant digits in all: the correctly rounded value
/// (Clinger's fast path: the digits as an integer are exact in an `f64`, as is `10^k` for
/// `k <= 22`, and one IEEE division rounds correctly), equal to what `str::parse` returns.
/// Anything else gives `None` and the general parser decides.
#[inline]
pub fn fast_float(t: &[u8]) -> Option<f64> {
    let (neg, d) = match t {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, t),
    };
    let mut m: u64 = 0;
    let mut digits = 0usize;
    let mut i = 0;
    while i < d.len() {
        let x = d[i].wrapping_sub(b'0');
        if x > 9 {
            break;
        }
        m = m * 10 + x as u64;
        digits += 1;
        i += 1;
        if digits > 15 {
            return None;
        }
    }
    if digits == 0 {
        return None;
    }
    let mut frac = 0usize;
    if i < d.len() {
        if d[i] != b'.' {
            return None;
        }
        i += 1;
        let s = i;
        while i < d.len() {
            let x = d[i].wrapping_sub(b'0');
            if x > 9 {
                return None;
            }
            m = m * 10 + x as u64;
            digits += 1;
            i += 1;
            if digits > 15 {
                return None;
            }
        }
        frac = i - s;
        if frac == 0 {
            return None;
        }
    }
    // `m < 10^15 < 2^63`: the signed conversion (one instruction; the unsigned one is four)
    // gives the same exact value.
    let v = m as i64 as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

/// `10^0` to `10^9`.
const POW10_INT: [u64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// [`fast_float`] of the field `input[s..e]`, the same result, without a per-digit loop for the
/// common shape `-?D.F` (1 to 7 digits `D`, 1 to 8 digits `F`) when `input` holds 16 bytes from
/// its first digit on (the bytes after the field — its delimiter, the next fields — are loaded
/// too, then shifted out): `D` and `F` are each read as one word, checked and converted
/// (`D * 10^|F| + F` has at most 15 digits, so this is the value `fast_float` divides). Any
/// other field is [`fast_float`]'s to decide.
#[inline(always)]
pub fn fast_float_at(input: &[u8], s: usize, e: usize) -> Option<f64> {
    let t = &input[s..e];
    let neg = t.first() == Some(&b'-');
    let b = s + neg as usize;
    if let Some(w) = input.get(b..b + 16) {
        let d = digit_values(&w[..8]);
        // The first byte that is not a digit (8 when there is none).
        let p = (nondigits(d).trailing_zeros() / 8) as usize;
        let f = (e - b).wrapping_sub(p + 1);
        if (1..8).contains(&p) && (1..=8).contains(&f) && w[p] == b'.' {
            // The `f` fraction digits, right-aligned (the bytes after them shifted out).
            let x = digit_values(&w[p + 1..p + 9]) << (64 - 8 * f);
            if nondigits(x) == 0 {
                let m = eight_digits(d << (64 - 8 * p)) * POW10_INT[f] + eight_digits(x);
                // Exact as a signed conversion too (`m < 10^15`), and cheaper.
                let v = m as i64 as f64 / POW10[f];
                return Some(if neg { -v } else { v });
            }
        }
    }
    fast_float(t)
}

/// [`fast_int`] of the field `input[s..e]`, the same result, read without a per-digit loop when
/// it has at most 8 digits and `input` holds 8 bytes from its first digit on; else [`fast_int`]
/// itself.
#[inline(always)]
pub fn fast_int_at(input: &[u8], s: usize, e: usize) -> Option<i64> {
    let t = &input[s..e];
    let neg = t.first() == Some(&b'-');
    let b = s + neg as usize;
    let len = e - b;
    match input.get(b..b + 8) {
        Some(w) if (1..=8).contains(&len) => {
            // The field's digit values, right-aligned (the bytes after it shifted out).
            let x = digit_values(w) << (64 - 8 * len);
            if nondigits(x) != 0 {
                return None;
            }
            let v = eight_digits(x) as i64;
            Some(if neg { -v } else { v })
        }
        _ => fast_int(t),
    }
}

const BYTES_01: u64 = u64::from_le_bytes([1; 8]);

/// The 8 bytes of `w` minus `b'0'` each (an ASCII digit becomes its value), the first in the
/// lowest byte.
#[inline(always)]
fn digit_values(w: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&w[..8]);
    u64::from_le_bytes(a) ^ (BYTES_01 * 0x30)
}

/// The high bit of each byte of `x` (a [`digit_values`] word) that is not a digit value (0 to
/// 9). Per byte, no borrow between bytes (each is at least 0x80 before the subtraction): the
/// high bit stays set when the low seven bits are 10 or more; a zero byte is a digit.
#[inline(always)]
fn nondigits(x: u64) -> u64 {
    (((x | (BYTES_01 * 0x80)) - BYTES_01 * 10) | x) & (BYTES_01 * 0x80)
}

/// The value of 8 digit values, the first in the lowest byte: pairs, then two multiplies that
/// weight the four pairs by 10^6, 10^4, 10^2, 1 and sum them in the high half.
#[inline(always)]
fn eight_digits(v: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    // Byte i becomes 10 * digit i + digit i+1 (at most 99: no carry).
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    (MASK & v)
        .wrapping_mul(MUL1)
        .wrapping_add((MASK & (v >> 16)).wrapping_mul(MUL2))
        >> 32
}

/// The shortest round-trip text of `x` when it is a whole number of hundredths below 10^13 in
/// magnitude (`x == n / 100.0`, the common case of data with two decimals): [`decimals_text`]
/// with two decimals — `12.5`, `12.0`, `-0.05`, `-0.0`, as `ryu` and `zmij` write them. `None`
/// for any other `x` (then the caller formats it in full).
#[inline(always)]
pub fn cents_text(x: f64, out: &mut [u8; 32]) -> Option<std::ops::Range<usize>> {
    decimals_text::<2>(x, out)
}

/// Writes the whole number `q` (and a `-` if `negative`) to end before `out[p]`, two digits at
/// a time (most values have at most two before the point); returns where it starts.
#[inline(always)]
fn whole_part(mut q: u64, negative: bool, out: &mut [u8; 32], mut p: usize) -> usize {
    while q >= 100 {
        let d = (q % 100) as u8;
        q /= 100;
        out[p - 2] = b'0' + d / 10;
        out[p - 1] = b'0' + d % 10;
        p -= 2;
    }
    if q >= 10 {
        let d = q as u8;
        out[p - 2] = b'0' + d / 10;
        out[p - 1] = b'0' + d % 10;
        p -= 2;
    } else {
        out[p - 1] = b'0' + q as u8;
        p -= 1;
    }
    if negative {
        p -= 1;
        out[p] = b'-';
    }
    p
}

/// The shortest round-trip text of `x` when it is a whole number of `10^-D` below `10^15` in units
/// of `10^-D` (`x == n / 10^D`: data with `D` decimals, `1 <= D <= 9`): the decimal `n / 10^D` has
/// at most 15 significant digits and reads back as `x` (`n as f64 / 10^D` is the double nearest to
/// it, `10^D` being exact), so no other decimal of at most 15 digits does, and its trailing zeros
/// cut (one fraction digit kept) make the text `ryu` and `zmij` write. Declined below `10^-5` in
/// magnitude (not zero), which they write with an exponent. Writes it into the end of `out` (digits
/// right to left, no `memcpy`) and returns where it is; `None` for any other `x`.
#[inline(always)]
pub fn decimals_text<const D: usize>(x: f64, out: &mut [u8; 32]) -> Option<std::ops::Range<usize>> {
    const SCALE: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
    let scale = SCALE[D];
    let y = x * scale;
    // Also false for NaN.
    let small = y.abs() < 1e15;
    if !small {
        return None;
    }
    // SAFETY: `|y| < 1e15`, so `y ± 0.5` is finite and its integer part fits an `i64`.
    let n: i64 = unsafe { (y + 0.5f64.copysign(y)).to_int_unchecked() };
    if n as f64 / scale != x || (D > 5 && n != 0 && x.abs() < 1e-5) {
        return None;
    }
    let u = n.unsigned_abs();
    let (q, mut f) = (u / POW10_INT[D], u % POW10_INT[D]);
    let dot = 31 - D;
    // The fraction's digits two at a time from the right (`D` is a constant: unrolled).
    let mut i = 32;
    while i >= dot + 3 {
        let pair = (f % 100) as usize;
        f /= 100;
        out[i - 2..i].copy_from_slice(&DIGIT_PAIRS[2 * pair..2 * pair + 2]);
        i -= 2;
    }
    if i > dot + 1 {
        out[i - 1] = b'0' + f as u8;
    }
    let mut end = 32;
    while end > dot + 2 && out[end - 1] == b'0' {
        end -= 1;
    }
    out[dot] = b'.';
    Some(whole_part(q, x.is_sign_negative(), out, dot)..end)
}

/// `00` to `99`, two bytes each.
static DIGIT_PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// [`decimals_text`] for `d` decimals other than two (out of line: the two-decimal path stays
/// small in the writers' loops).
#[inline(never)]
fn other_decimals_text(d: u8, x: f64, out: &mut [u8; 32]) -> Option<std::ops::Range<usize>> {
    match d {
        1 => decimals_text::<1>(x, out),
        3 => decimals_text::<3>(x, out),
        4 => decimals_text::<4>(x, out),
        5 => decimals_text::<5>(x, out),
        6 => decimals_text::<6>(x, out),
        7 => decimals_text::<7>(x, out),
        8 => decimals_text::<8>(x, out),
        _ => decimals_text::<9>(x, out),
    }
}

/// How a float column's values of one batch are written: with [`cents_text`] /
/// [`decimals_text`] for the column's number of decimals (two to start with, learnt from the
/// text `zmij` writes for a value they declined: up to 9), or straight with `zmij` once
/// `misses > hits + 4` (for the rest of the batch). So a computed full-precision float (a
/// ratio, a mean) pays for a few tries a batch only, and data with a fixed number of
/// decimals (prices, coordinates, the H2O benchmark's `v3` with six) keeps its fast path. The
/// text is the same either way.
#[derive(Clone, Copy, Debug)]
pub struct DecimalsGuess {
    decimals: u8,
    hits: u32,
    misses: u32,
}

impl Default for DecimalsGuess {
    fn default() -> DecimalsGuess {
        DecimalsGuess {
            decimals: 2,
            hits: 0,
            misses: 0,
        }
    }
}

impl DecimalsGuess {
    /// Forgets the counts (at the start of a batch). The decimals learnt stay, unless the
    /// batch gave up on them: then the next one starts again from two, so that one long
    /// fraction in a column of large two-decimal values does not keep the column off its path.
    pub fn reset(&mut self) {
        if self.misses > self.hits + 4 {
            self.decimals = 2;
        }
        self.hits = 0;
        self.misses = 0;
    }

    /// The text of `x` with the column's decimals while its values keep fitting them; `None`
    /// (the caller formats `x` in full, then may [`DecimalsGuess::learn`] from it) otherwise.
    #[inline(always)]
    pub fn text(&mut self, x: f64, out: &mut [u8; 32]) -> Option<std::ops::Range<usize>> {
        if self.misses > self.hits + 4 {
            return None;
        }
        let r = match self.decimals {
            2 => cents_text(x, out),
            d => other_decimals_text(d, x, out),
        };
        if r.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        r
    }

    /// Learns from the full text `t` of a value that [`DecimalsGuess::text`] declined: its
    /// fraction digits become the column's decimals if more than now and at most 9 (values
    /// with fewer decimals fit as well: `12.5` is a whole number of millionths too).
    #[inline]
    pub fn learn(&mut self, t: &[u8]) {
        if self.misses > self.hits + 4 || t.len() > 20 || t.contains(&b'e') {
            return;
        }
        if let Some(dot) = t.iter().position(|&c| c == b'.') {
            let d = t.len() - dot - 1;
            if d > self.decimals as usize && d <= 9 {
                self.decimals = d as u8;
            }
        }
    }
}

/// Appends the shortest round-trip text of a finite float, byte for byte as `ryu` writes it
/// (the form flow has always used), computed with `zmij` (faster). See [`float_text`].
#[inline]
pub fn push_float_finite(buf: &mut Vec<u8>, x: f64) {
    let mut z = zmij::Buffer::new();
    let mut tmp = [0u8; 32];
    buf.extend_from_slice(float_text(&mut z, &mut tmp, x));
}

/// The shortest round-trip text of a finite float, byte for byte as `ryu` writes it. `zmij`
/// agrees with `ryu` on every double except that it writes positive exponents as `e+NN` where
/// `ryu` writes `eNN` (see the differential test below), so the `+` is dropped. `zmij` uses an
/// exponent only outside `1e-5 <= |x| < 1e16`, so below `1e15` there is nothing to look for.
/// Whole hundredths (two-decimal data) take [`cents_text`], without `zmij`. Always inlined:
/// as a call of its own it costs its writers more than `cents_text` saves.
#[inline(always)]
pub fn float_text<'a>(z: &'a mut zmij::Buffer, tmp: &'a mut [u8; 32], x: f64) -> &'a [u8] {
    if let Some(r) = cents_text(x, tmp) {
        return &tmp[r];
    }
    float_text_full(z, tmp, x)
}

/// [`float_text`] without the [`cents_text`] try: for writers that tried it already (or
/// know it would fail, [`DecimalsGuess`]).
#[inline(always)]
pub fn float_text_full<'a>(z: &'a mut zmij::Buffer, tmp: &'a mut [u8; 32], x: f64) -> &'a [u8] {
    let t = z.format_finite(x).as_bytes();
    if x.abs() < 1e15 {
        return t;
    }
    match t.iter().position(|&c| c == b'+') {
        Some(p) if t.len() <= tmp.len() => {
            tmp[..p].copy_from_slice(&t[..p]);
            tmp[p..t.len() - 1].copy_from_slice(&t[p + 1..]);
            &tmp[..t.len() - 1]
        }
        _ => t,
    }
}

// ---- values to text -------------------------------------------------------------------------

/// Appends the text form of `batch[row][col]` (nothing for null) to `buf`: the form both CSV
/// output and messages use (`float_to_str`, `timestamp_to_str`).
pub fn push_text(buf: &mut Vec<u8>, batch: &Batch, row: usize, col: usize, scalar: Scalar) {
    if batch.is_null(row, col) {
        return;
    }
    match scalar {
        Scalar::Int => {
            let mut b = itoa::Buffer::new();
            buf.extend_from_slice(b.format(batch.get_int(row, col)).as_bytes());
        }
        Scalar::Float => {
            let x = batch.get_float(row, col);
            if x.is_finite() {
                push_float_finite(buf, x);
            } else {
                buf.extend_from_slice(ops::float_to_str(x).as_bytes());
            }
        }
        Scalar::Bool => buf.extend_from_slice(if batch.get_bool(row, col) {
            b"true"
        } else {
            b"false"
        }),
        Scalar::Str => buf.extend_from_slice(batch.get_str_bytes(row, col)),
        Scalar::Timestamp => {
            buf.extend_from_slice(ops::timestamp_to_str(batch.get_int(row, col)).as_bytes())
        }
        Scalar::Null => {}
    }
}

/// One row as a JSON object (dead letters, JSONL output). Non-finite floats become `null`.
pub fn row_to_json(batch: &Batch, row: usize, types: &RowType) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (c, f) in types.fields.iter().enumerate() {
        m.insert(f.name.clone(), value_to_json(batch, row, c, f.ty.scalar));
    }
    serde_json::Value::Object(m)
}

pub fn value_to_json(batch: &Batch, row: usize, col: usize, scalar: Scalar) -> serde_json::Value {
    use serde_json::Value as J;
    if batch.is_null(row, col) {
        return J::Null;
    }
    match scalar {
        Scalar::Int => J::from(batch.get_int(row, col)),
        Scalar::Float => serde_json::Number::from_f64(batch.get_float(row, col))
            .map(J::Number)
            .unwrap_or(J::Null),
        Scalar::Bool => J::Bool(batch.get_bool(row, col)),
        Scalar::Str => J::String(batch.get_str(row, col).to_string()),
        Scalar::Timestamp => J::String(ops::timestamp_to_str(batch.get_int(row, col))),
        Scalar::Null => J::Null,
    }
}

/// One step of the xorshift64 generator the connectors' randomized tests draw from (seeded,
/// so every run sees the same cases): advances `seed` and returns it.
#[cfg(test)]
pub(crate) fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[cfg(test)]
mod fast_parse_tests {
    use super::*;

    #[test]
    fn fast_paths_agree_with_the_general_parsers() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "1",
            "-1",
            "12.5",
            "007",
            "1.",
            ".5",
            "+1",
            " 1",
            "1e5",
            "inf",
            "-",
            "",
            "999999999999999",
            "9999999999999999",
            "123456789012345678",
            "1234567890123456789",
            "-9223372036854775808",
            "0.1",
            "0.30000000000000004",
            "49.99",
            "1.2.3",
            "1-2",
            "--1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..20000 {
            crate::connectors::xorshift(&mut seed);
            let int = seed % 10_000_000_000_000;
            let frac = (seed >> 40) % 1000;
            let neg = if seed & 1 == 1 { "-" } else { "" };
            cases.push(format!("{neg}{int}.{frac:02}"));
            cases.push(format!("{neg}{}.{frac}", int % 100));
            cases.push(format!("{neg}{int}"));
        }
        for c in &cases {
            if let Some(v) = fast_float(c.as_bytes()) {
                let want = ops::parse_float(c).unwrap();
                assert_eq!(v.to_bits(), want.to_bits(), "{c}");
            }
            if let Some(v) = fast_int(c.as_bytes()) {
                assert_eq!(Some(v), ops::parse_int(c), "{c}");
            }
        }
        assert_eq!(fast_float(b"12.25"), Some(12.25));
    }

    #[test]
    fn float_text_is_ryus() {
        let mut seed = 0x0123_4567_89ab_cdefu64;
        let mut xs: Vec<f64> = vec![
            0.0,
            -0.0,
            1.0,
            0.1,
            1e15,
            1e16,
            1e17,
            1.5e300,
            -2.5e-300,
            5e-324,
            123456.789,
            f64::MAX,
            f64::MIN_POSITIVE,
            9007199254740993.0,
            1e21,
            1e22,
            1e23,
            -1e16,
            9999999999999998.0,
            999999999999999.9,
            1e15 - 0.125,
            -1e15,
            1.7976931348623157e300,
            0.00001,
            0.000009999999999999999,
        ];
        for k in -30..=30 {
            let p = 10f64.powi(k);
            for x in [p, -p, p * 0.999_999_999_999, p * 1.000_000_000_01] {
                xs.push(x);
                xs.push(f64::from_bits(x.to_bits() + 1));
                xs.push(f64::from_bits(x.to_bits() - 1));
            }
        }
        for _ in 0..200_000 {
            crate::connectors::xorshift(&mut seed);
            xs.push(f64::from_bits(seed));
            xs.push((seed % 10_000_000) as f64 / 100.0);
            xs.push((seed % 1000) as f64 * 10f64.powi((seed >> 50) as i32 % 40 - 20));
        }
        for x in xs {
            if !x.is_finite() {
                continue;
            }
            let mut got = Vec::new();
            push_float_finite(&mut got, x);
            let mut r = ryu::Buffer::new();
            assert_eq!(
                std::str::from_utf8(&got).unwrap(),
                r.format_finite(x),
                "{x:e}"
            );
        }
        assert_eq!(fast_int(b"-42"), Some(-42));
    }

    /// `cents_text` writes what `ryu` and `zmij` write for every whole number of hundredths it
    /// takes (both signs, zeros, up to its bound), takes every such value below the bound, and
    /// declines the rest (or, if it takes one, still writes `ryu`'s text).
    #[test]
    fn cents_guess_gives_up_after_misses_and_resets() {
        let mut g = DecimalsGuess::default();
        let mut tmp = [0u8; 32];
        // Hits keep it trying; five misses more than hits are tried, the sixth is not.
        assert_eq!(g.text(12.5, &mut tmp).map(|r| &tmp[r]), Some(&b"12.5"[..]));
        for _ in 0..6 {
            assert_eq!(g.text(1.0 / 3.0, &mut tmp), None);
        }
        assert_eq!(g.text(12.5, &mut tmp), None);
        g.reset();
        assert_eq!(
            g.text(-0.05, &mut tmp).map(|r| &tmp[r]),
            Some(&b"-0.05"[..])
        );
    }

    /// A column of six-decimal values: declined with two decimals, learnt from the full text,
    /// then written by `decimals_text::<6>` (shorter ones too); exponent forms and longer
    /// fractions teach nothing; the decimals learnt outlive a batch's reset.
    #[test]
    fn decimals_guess_learns_a_columns_decimals() {
        let mut g = DecimalsGuess::default();
        let mut tmp = [0u8; 32];
        let mut r = ryu::Buffer::new();
        assert_eq!(g.text(45.123456, &mut tmp), None);
        g.learn(b"1e-7");
        g.learn(b"0.30000000000000004");
        g.learn(b"45.123456");
        g.reset();
        for x in [45.123456, 12.5, -0.000012, 100.0, 0.000123, 99.99999] {
            let t = g
                .text(x, &mut tmp)
                .unwrap_or_else(|| panic!("{x} declined"));
            assert_eq!(&tmp[t], r.format_finite(x).as_bytes());
        }
        // Below 1e-5 `ryu` writes an exponent: declined.
        assert_eq!(g.text(0.000001, &mut tmp), None);
        assert_eq!(g.text(1.0 / 3.0, &mut tmp), None);
        // Nine decimals learnt from one value; large two-decimal values do not fit them, the
        // batch gives up, and the next batch starts from two decimals again.
        g.reset();
        assert_eq!(g.text(0.123456789, &mut tmp), None);
        g.learn(b"0.123456789");
        for _ in 0..6 {
            assert_eq!(g.text(12345678.25, &mut tmp), None);
        }
        g.reset();
        let t = g.text(12345678.25, &mut tmp).expect("two decimals again");
        assert_eq!(&tmp[t], b"12345678.25");
    }

    /// `decimals_text::<D>` writes what `ryu` and `zmij` write for every whole number of
    /// `10^-D` it takes (both signs, zero, trailing zeros, up to its bound), takes every such
    /// value of at most 15 digits and at least `1e-5`, and never writes other text for others.
    #[test]
    fn decimals_text_is_ryus_and_zmijs() {
        fn check<const D: usize>(next: &mut impl FnMut() -> u64) {
            let (mut r, mut z, mut tmp) = (ryu::Buffer::new(), zmij::Buffer::new(), [0u8; 32]);
            let ten = 10i64.pow(D as u32);
            let mut ns: Vec<i64> = vec![0, 1, -1, 10, ten, ten + 1, 999_999_999_999_999];
            for _ in 0..50_000 {
                let b = next();
                let n = match b % 4 {
                    0 => (b >> 8) as i64 % 1_000_000_000_000_000,
                    1 => (b >> 8) as i64 % (1000 * ten),
                    2 => (b >> 8) as i64 % 1000 * ten / 10,
                    _ => (b >> 8) as i64 % 100,
                };
                ns.push(if b & 1 == 1 { -n } else { n });
            }
            for n in ns {
                let x = n as f64 / 10f64.powi(D as i32);
                let want = r.format_finite(x);
                match decimals_text::<D>(x, &mut tmp) {
                    Some(t) => {
                        assert_eq!(&tmp[t.clone()], want.as_bytes(), "{n} / 10^{D}");
                        assert_eq!(&tmp[t], z.format_finite(x).as_bytes(), "{n} / 10^{D}");
                    }
                    None => assert!(n != 0 && x.abs() < 1e-5, "{n} / 10^{D} declined"),
                }
            }
            for _ in 0..50_000 {
                let b = next();
                for x in [
                    f64::from_bits(b),
                    (b % 1_000_000) as f64 / 7.0,
                    1.0 / (b | 1) as f64,
                ] {
                    if let Some(t) = decimals_text::<D>(x, &mut tmp) {
                        assert_eq!(&tmp[t], r.format_finite(x).as_bytes(), "{x:e}");
                    }
                }
            }
            for x in [f64::NAN, f64::INFINITY, 1e15, -1e300] {
                assert_eq!(decimals_text::<D>(x, &mut tmp), None);
            }
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            crate::connectors::xorshift(&mut seed);
            seed
        };
        check::<1>(&mut next);
        check::<2>(&mut next);
        check::<3>(&mut next);
        check::<4>(&mut next);
        check::<5>(&mut next);
        check::<6>(&mut next);
        check::<7>(&mut next);
        check::<8>(&mut next);
        check::<9>(&mut next);
    }

    #[test]
    fn cents_text_is_ryus_and_zmijs() {
        let mut seed = 0x5851_f42d_4c95_7f2du64;
        let mut next = move || {
            crate::connectors::xorshift(&mut seed);
            seed
        };
        let mut cents: Vec<i64> = vec![0, 1, -1, 5, 10, 99, 100, 101, 12345, 999_999_999_999_999];
        cents.extend([
            -999_999_999_999_999,
            100_000_000_000_000,
            999_999_999_999_990,
        ]);
        for _ in 0..200_000 {
            let r = next();
            let n = match r % 4 {
                0 => (r >> 8) as i64 % 1_000_000_000_000_000,
                1 => (r >> 8) as i64 % 1_000_000,
                2 => (r >> 8) as i64 % 100_000 * 100,
                _ => (r >> 8) as i64 % 100_000 * 10,
            };
            cents.push(if r & 1 == 1 { -n } else { n });
        }
        let (mut r, mut z, mut tmp) = (ryu::Buffer::new(), zmij::Buffer::new(), [0u8; 32]);
        for n in cents {
            let x = n as f64 / 100.0;
            let t = cents_text(x, &mut tmp).unwrap_or_else(|| panic!("{n} declined"));
            let got = std::str::from_utf8(&tmp[t]).unwrap().to_string();
            assert_eq!(got, r.format_finite(x), "{n}");
            assert_eq!(got, z.format_finite(x), "{n}");
        }
        let zero = cents_text(-0.0, &mut tmp);
        assert_eq!(zero.map(|at| &tmp[at]), Some(&b"-0.0"[..]));
        let mut others: Vec<f64> = vec![0.001, 0.125, 1e13, -1e13, 1e-300, f64::NAN, f64::INFINITY];
        others.extend([f64::NEG_INFINITY, 0.1 + 0.2, 1.0 / 3.0, 5e-324, 1e300]);
        for _ in 0..200_000 {
            let b = next();
            others.push(f64::from_bits(b));
            others.push((b % 1_000_000_000) as f64 / 1000.0);
            others.push((b % 1_000_000) as f64 / 100.0 + 1e-9);
        }
        for x in others {
            if let Some(t) = cents_text(x, &mut tmp) {
                assert_eq!(
                    std::str::from_utf8(&tmp[t]).unwrap(),
                    r.format_finite(x),
                    "{x:e}"
                );
            }
        }
        assert_eq!(cents_text(0.125, &mut tmp), None);
        assert_eq!(cents_text(1e13, &mut tmp), None);
    }

    /// Random decimal strings (0–12 integer and fraction digits, signs, a stray byte now and
    /// then): whenever `fast_float` takes one it gives the bits `str::parse::<f64>` gives, and it
    /// takes every plain form of at most 15 digits.
    #[test]
    fn fast_float_is_str_parse_on_random_decimals() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            crate::connectors::xorshift(&mut seed);
            seed % n
        };
        let junk = b"0123456789.-e+, \n\"x";
        let mut fields: Vec<Vec<u8>> = ["", "-", ".", "-.", "1.", ".5", "-0", "-0.0", "0.000000"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        fields.extend(
            [
                "12345678",
                "1234567.12345678",
                "1234567.123456789",
                "9999999.99999999",
                // Digit counts around the 15-digit bound, with and without a point.
                "999999999999999",
                "-999999999999999",
                "1234567890123456",
                "12345678901234.5",
                "1234567890123.45",
                "123456789012345.6",
                "123456789012345.",
                "0.00000000000001",
                "0.000000000000001",
                "00000000000000000",
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec()),
        );
        for _ in 0..300_000 {
            let mut f = Vec::new();
            if next(3) == 0 {
                f.push(b'-');
            }
            for _ in 0..next(12) {
                f.push(b'0' + next(10) as u8);
            }
            if next(5) != 0 {
                f.push(b'.');
                for _ in 0..next(12) {
                    f.push(b'0' + next(10) as u8);
                }
            }
            if next(20) == 0 {
                let at = next(f.len() as u64 + 1) as usize;
                f.insert(at, junk[next(junk.len() as u64) as usize]);
            }
            fields.push(f);
        }
        let mut taken = 0;
        for f in &fields {
            let t = std::str::from_utf8(f).unwrap();
            let plain = {
                let d = t.strip_prefix('-').unwrap_or(t);
                let (i, fr) = d.split_once('.').unwrap_or((d, "1"));
                let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
                digits(i) && digits(fr) && d.bytes().filter(|b| b.is_ascii_digit()).count() <= 15
            };
            // In a buffer with bytes after the field, as the CSV reader has it.
            let buf = [f.as_slice(), b",0123456789012345"].concat();
            assert_eq!(
                fast_float_at(&buf, 0, f.len()).map(f64::to_bits),
                fast_float(f).map(f64::to_bits),
                "{t}"
            );
            match fast_float(f) {
                Some(v) => {
                    assert_eq!(v.to_bits(), t.parse::<f64>().unwrap().to_bits(), "{t}");
                    taken += 1;
                }
                None => assert!(!plain, "{t} declined"),
            }
        }
        assert!(taken > 150_000, "{taken}");
    }

    /// Every field shape around the 16-byte window — lengths 0..=18, a point at every position,
    /// leading zeros, a sign, a stray byte at every position — placed at several offsets with
    /// digits, a delimiter or nothing after it: `fast_float_at` and `fast_int_at` give exactly
    /// what `fast_float` and `fast_int` give on the field alone (also at the end of the buffer,
    /// where they fall back), and every float taken is `str::parse`'s.
    #[test]
    fn fast_at_is_fast_on_every_shape() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            crate::connectors::xorshift(&mut seed);
            seed % n
        };
        let junk = b".-+e ,\n\"x/:\x80\xff";
        let mut fields: Vec<Vec<u8>> = Vec::new();
        for len in 0..=18usize {
            for _ in 0..40 {
                let digits: Vec<u8> = (0..len)
                    .map(|i| match next(4) {
                        0 if i < 3 => b'0',
                        _ => b'0' + next(10) as u8,
                    })
                    .collect();
                fields.push(digits.clone());
                for at in 0..=len {
                    let mut f = digits.clone();
                    f.insert(at, b'.');
                    fields.push(f.clone());
                    // A stray byte at every position, with and without the point.
                    let j = junk[next(junk.len() as u64) as usize];
                    let mut g = digits.clone();
                    g.insert(at, j);
                    fields.push(g);
                    let mut h = f;
                    h.insert(next(len as u64 + 2) as usize, j);
                    fields.push(h);
                }
            }
        }
        let signed: Vec<Vec<u8>> = fields
            .iter()
            .map(|f| [b"-".as_slice(), f].concat())
            .collect();
        fields.extend(signed);
        let mut taken = (0, 0);
        for f in &fields {
            for tail in [
                &b""[..],
                b",",
                b",9",
                b"\n0123456789012345678",
                b"9999999999999999999",
            ] {
                for pre in 0..3 {
                    let mut buf = vec![b'7'; pre];
                    buf.extend_from_slice(f);
                    buf.extend_from_slice(tail);
                    let (s, e) = (pre, pre + f.len());
                    let want = fast_float(f);
                    let got = fast_float_at(&buf, s, e);
                    assert_eq!(
                        got.map(f64::to_bits),
                        want.map(f64::to_bits),
                        "{f:?} {tail:?}"
                    );
                    if let Some(v) = got {
                        let t = std::str::from_utf8(f).unwrap();
                        assert_eq!(v.to_bits(), t.parse::<f64>().unwrap().to_bits(), "{t}");
                        taken.0 += 1;
                    }
                    let want = fast_int(f);
                    assert_eq!(fast_int_at(&buf, s, e), want, "{f:?} {tail:?}");
                    taken.1 += want.is_some() as usize;
                }
            }
        }
        assert!(taken.0 > 50_000 && taken.1 > 5_000, "{taken:?}");
    }

    #[test]
    fn fast_float_at_reads_the_bench_forms() {
        let buf = b"3.88,22.12,0.97,6.273856,42.224418,-0.5,100,1704067201,8683\n";
        let fields: Vec<(usize, usize)> = {
            let mut v = Vec::new();
            let mut s = 0;
            for (i, &c) in buf.iter().enumerate() {
                if c == b',' || c == b'\n' {
                    v.push((s, i));
                    s = i + 1;
                }
            }
            v
        };
        let floats: Vec<Option<f64>> = fields
            .iter()
            .map(|&(s, e)| fast_float_at(buf, s, e))
            .collect();
        assert_eq!(
            floats,
            [
                3.88,
                22.12,
                0.97,
                6.273856,
                42.224418,
                -0.5,
                100.0,
                1704067201.0,
                8683.0
            ]
            .map(Some)
        );
        let (s, e) = fields[7];
        assert_eq!(fast_int_at(buf, s, e), Some(1704067201));
        let (s, e) = fields[8];
        assert_eq!(fast_int_at(buf, s, e), Some(8683));
        let (s, e) = fields[0];
        assert_eq!(fast_int_at(buf, s, e), None);
    }

    #[test]
    fn fast_int_at_takes_eight_digits_and_falls_back_beyond() {
        let buf = b"-12345678,123456789012345678,1234567890123456789,00000001,9";
        assert_eq!(fast_int_at(buf, 0, 9), Some(-12345678));
        assert_eq!(fast_int_at(buf, 10, 28), Some(123456789012345678));
        assert_eq!(fast_int_at(buf, 29, 48), None);
        assert_eq!(fast_int_at(buf, 49, 57), Some(1));
        // At the end of the buffer: the loop.
        assert_eq!(fast_int_at(buf, 58, 59), Some(9));
    }

    #[test]
    fn eight_digits_is_the_decimal_value() {
        for n in [
            0u64, 1, 9, 10, 99_999_999, 12_345_678, 87_654_321, 10_000_000, 90_909_090,
        ] {
            let digits = format!("{n:08}");
            let mut v = [0u8; 8];
            for (d, c) in v.iter_mut().zip(digits.bytes()) {
                *d = c - b'0';
            }
            assert_eq!(eight_digits(u64::from_le_bytes(v)), n, "{n}");
        }
    }
}
