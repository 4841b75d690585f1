//! CSV: reading with `csv-core` (RFC 4180 quoting, embedded delimiters, quotes and newlines,
//! optional header, configurable delimiter) and writing with the `csv` crate.
//!
//! The reader drives csv-core over its own buffer so that it knows the raw bytes of every record
//! (for dead letters and for a quoting check csv-core itself does not make: csv-core accepts
//! `"ab"c` or a stray quote inside an unquoted field, which we reject as bad quoting). Only the
//! columns the plan needs (`SourceSpec::columns`) are converted; every record's field count is
//! checked. A header, when present, maps schema columns to fields by name.

pub mod describe;
pub mod infer;
mod plain;
use super::input::{self, LineBase};
use super::split::{self, Framing};
use super::{
    ConnectorError, RowReject, RowWriter, SinkConnector, SinkTarget, SourceConnector, SourceReader,
    Split, opt_bool, opt_delimiter, push_float_finite, push_text, set_from_text,
};
use crate::batch::Batch;
use crate::plan::ir::{SinkSpec, SourceSpec};
use crate::types::{RowType, Scalar, Type};
use csv_core::{ReadRecordResult, ReaderBuilder};
use plain::{Plain, Stop};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct CsvSource;

impl SourceConnector for CsvSource {
    fn info(&self) -> crate::catalog::ConnectorInfo {
        describe::source()
    }

    fn infer(&self, file: &str, options: &crate::job::Options) -> Result<RowType, String> {
        infer::infer(file, options)
    }

    fn header(
        &self,
        file: &str,
        options: &crate::job::Options,
    ) -> Result<Option<Vec<String>>, String> {
        describe::header(file, options)
    }

    fn plan(&self, spec: &SourceSpec, workers: usize) -> Result<Vec<Vec<Split>>, ConnectorError> {
        let pattern = spec
            .path
            .as_deref()
            .ok_or_else(|| ConnectorError::new(&spec.name, "csv source needs a path"))?;
        let delimiter =
            opt_delimiter(&spec.options).map_err(|e| ConnectorError::new(pattern, e))?;
        let header = opt_bool(&spec.options, "header", true);
        let files = split::expand(pattern)?;
        split::assign(
            &files,
            workers,
            Framing::Csv { delimiter },
            |path, start, end| {
                let (field_of_column, fields) = if header {
                    header_map(path, delimiter, &spec.schema)?
                } else {
                    ((0..spec.schema.len()).collect(), spec.schema.len())
                };
                Ok(Split {
                    path: Some(path.to_path_buf()),
                    start,
                    end,
                    skip_header: header && start == 0,
                    field_of_column,
                    fields,
                    align: false,
                    end_guessed: false,
                    snapshot: None,
                })
            },
        )
    }

    fn open(
        &self,
        spec: &SourceSpec,
        split: &Split,
    ) -> Result<Box<dyn SourceReader>, ConnectorError> {
        let delimiter =
            opt_delimiter(&spec.options).map_err(|e| ConnectorError::new(spec.name.clone(), e))?;
        let Some(path) = &split.path else {
            return Err(ConnectorError::new(&spec.name, "csv split without a file"));
        };
        let name = path.display().to_string();
        let mut f = File::open(path)
            .map_err(|e| ConnectorError::new(&name, format!("cannot open input: {e}")))?;
        let mut split = split.clone();
        if split.align {
            // The first record start after the target (see `split`): records starting at or
            // before the target belong to the previous split, whose `end` is `target + 1`.
            let b = split::csv_boundaries(path, &[split.start], delimiter)
                .map_err(|e| ConnectorError::new(&name, e.to_string()))?;
            split.start = match b.first() {
                Some(&b) => b,
                None => f
                    .metadata()
                    .map_err(|e| ConnectorError::new(&name, e.to_string()))?
                    .len(),
            };
            split.align = false;
        }
        if split.start > 0 {
            f.seek(SeekFrom::Start(split.start))
                .map_err(|e| ConnectorError::new(&name, e.to_string()))?;
        }
        Ok(Box::new(CsvReader::new(
            Box::new(f),
            name,
            Some(path.clone()),
            spec,
            &split,
            delimiter,
        )))
    }

    fn guess_holds(&self, spec: &SourceSpec, split: &Split) -> Result<bool, ConnectorError> {
        let (Some(path), true) = (&split.path, split.end_guessed) else {
            return Ok(true);
        };
        let name = path.display().to_string();
        let delimiter = opt_delimiter(&spec.options).map_err(|e| ConnectorError::new(&name, e))?;
        split::csv_guess_holds(path, split.end, delimiter)
            .map_err(|e| ConnectorError::new(&name, e.to_string()))
    }
}

/// What a CSV file without even a header line is told.
pub const EMPTY: &str = "the file is empty (no header line)";

/// The column names of a header record (trimmed; invalid UTF-8 replaced). A name given twice is
/// an error naming both positions: two fields must never map to one column.
pub fn header_names(rec: &csv::ByteRecord) -> Result<Vec<String>, String> {
    let names: Vec<String> = rec
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim().to_string())
        .collect();
    if names.iter().all(|n| n.is_empty()) {
        return Err("the header line is blank".into());
    }
    for (j, n) in names.iter().enumerate() {
        if let Some(i) = names[..j].iter().position(|m| m == n) {
            return Err(format!(
                "the header names column `{n}` twice (fields {} and {}); rename one of them",
                i + 1,
                j + 1
            ));
        }
    }
    Ok(names)
}

/// Reads the header line of `path` and maps each schema column to its field position.
fn header_map(
    path: &Path,
    delimiter: u8,
    schema: &RowType,
) -> Result<(Vec<usize>, usize), ConnectorError> {
    let name = path.display().to_string();
    let f = File::open(path)
        .map_err(|e| ConnectorError::new(&name, format!("cannot open input: {e}")))?;
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(f);
    let mut rec = csv::ByteRecord::new();
    match r.read_byte_record(&mut rec) {
        Ok(true) => {}
        Ok(false) => return Ok(((0..schema.len()).collect(), schema.len())),
        Err(e) => return Err(ConnectorError::new(format!("{name}:1"), e.to_string())),
    }
    let names = header_names(&rec).map_err(|e| ConnectorError::new(format!("{name}:1"), e))?;
    let mut map = Vec::with_capacity(schema.len());
    for field in &schema.fields {
        match names.iter().position(|n| *n == field.name) {
            Some(i) => map.push(i),
            None => {
                return Err(ConnectorError::new(
                    format!("{name}:1"),
                    format!(
                        "the header has no column `{}` (it has: {})",
                        field.name,
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    Ok((map, names.len()))
}

/// One needed column: where its field is, its type, and its name.
struct Needed {
    field: usize,
    ty: Type,
    name: String,
    /// A value that does not convert rejects the row (`false`: a column the job never reads,
    /// `SourceSpec::unread`: it becomes null).
    strict: bool,
}

pub struct CsvReader {
    input: Box<dyn Read + Send>,
    file: String,
    lines: LineBase,
    end: u64,
    core: csv_core::Reader,
    delimiter: u8,
    buf: Vec<u8>,
    /// `buf[lo..hi]` is not yet given to csv-core; `buf[rec..lo]` is the current record so far.
    lo: usize,
    hi: usize,
    rec: usize,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    eof: bool,
    done: bool,
    fields: Vec<u8>,
    nfields: usize,
    ends: Vec<usize>,
    nends: usize,
    /// Newlines before the current record, counted from `start`.
    rel_line: u64,
    skip_header: bool,
    /// Standard input: the header (if any) is only known when it is read.
    pub map_from_header: bool,
    /// An unknown column in a header read at run time.
    pub header_error: Option<ConnectorError>,
    needed: Vec<Needed>,
    expected_fields: usize,
    bytes: u64,
    /// The current record is read by csv-core (see [`fast_record`]).
    slow: bool,
    /// Field starts of a record split by [`fast_record`] (relative to `rec`).
    starts: Vec<usize>,
    special: [bool; 256],
    /// The one-pass plan for plain records ([`plain`]): `None` until first needed (and
    /// again when a header read at run time changes the layout), `Some(None)` when this layout
    /// cannot take the fast path.
    plain: Option<Option<Plain>>,
    /// The next record is read by the general path (the fast path stopped before it).
    plain_off: bool,
    /// The fast path may be used at all (tests compare it with the general path).
    pub plain_enabled: bool,
    /// `end` is a guess (`Split::end_guessed`) still to be checked when the split is read.
    check_end: bool,
    /// File offset just past the last byte (line ends not counted) of the last record read.
    body_end: u64,
}

impl CsvReader {
    pub fn new(
        input: Box<dyn Read + Send>,
        file: String,
        path: Option<PathBuf>,
        spec: &SourceSpec,
        split: &Split,
        delimiter: u8,
    ) -> CsvReader {
        let needed = spec
            .columns
            .iter()
            .map(|&c| Needed {
                field: split.field_of_column.get(c).copied().unwrap_or(c),
                ty: spec.schema.fields[c].ty,
                name: spec.schema.fields[c].name.clone(),
                strict: !spec.unread.contains(&c),
            })
            .collect();
        CsvReader {
            input,
            file,
            lines: LineBase::new(path, split.start),
            end: split.end,
            core: ReaderBuilder::new().delimiter(delimiter).build(),
            delimiter,
            buf: vec![0; 256 * 1024],
            lo: 0,
            hi: 0,
            rec: 0,
            buf_offset: split.start,
            eof: false,
            done: false,
            fields: vec![0; 4096],
            nfields: 0,
            ends: vec![0; 64],
            nends: 0,
            rel_line: 0,
            skip_header: split.skip_header,
            map_from_header: false,
            header_error: None,
            needed,
            expected_fields: split.fields,
            bytes: 0,
            slow: false,
            starts: vec![0; 64],
            special: special_bytes(delimiter),
            plain: None,
            plain_off: false,
            plain_enabled: true,
            check_end: split.end_guessed && split.end != u64::MAX,
            body_end: split.start,
        }
    }

    fn plain_plan(&self) -> Option<Plain> {
        let needed: Vec<_> = self
            .needed
            .iter()
            .enumerate()
            .map(|(col, n)| (n.field, col, n.ty))
            .collect();
        Plain::new(self.delimiter, self.expected_fields, &needed)
    }

    /// Keeps the current record (`buf[rec..]`) and reads more input after it.
    fn refill(&mut self) -> Result<(), ConnectorError> {
        let (shift, n) = input::refill(
            &mut *self.input,
            &mut self.buf,
            self.rec,
            &mut self.hi,
            &self.file,
        )?;
        self.buf_offset += shift as u64;
        self.lo -= shift;
        self.rec -= shift;
        self.eof |= n == 0;
        self.bytes += n as u64;
        Ok(())
    }

    fn reject(
        &mut self,
        rel_line: u64,
        column: Option<(usize, String)>,
        reason: String,
        raw: &[u8],
    ) -> RowReject {
        RowReject {
            file: self.file.clone(),
            line: self.lines.line(rel_line),
            column,
            reason,
            raw: String::from_utf8_lossy(raw).into_owned(),
        }
    }

    /// Handles one complete record in `buf[rec..lo]` with fields in `fields`/`ends`.
    ///
    /// `fast = Some(newlines)`: the record was split by [`fast_record`], so it has no leading
    /// blank lines, ends with exactly one `\n`, holds `newlines` newlines in all, and its quoting
    /// is already known to be RFC 4180.
    fn record(&mut self, out: &mut Batch, rejects: &mut Vec<RowReject>, fast: Option<u64>) {
        let full = &self.buf[self.rec..self.lo];
        let (lead, lead_lines, body_len, lines) = match fast {
            Some(lines) => (0, 0, full.len() - 1, lines),
            None => {
                // csv-core silently skips blank lines before a record; they are part of `full`.
                let lead = full
                    .iter()
                    .take_while(|&&b| b == b'\n' || b == b'\r')
                    .count();
                let lead_lines = full[..lead].iter().filter(|&&b| b == b'\n').count() as u64;
                let mut body = &full[lead..];
                while let [rest @ .., b'\n' | b'\r'] = body {
                    body = rest;
                }
                let lines = memchr::memchr_iter(b'\n', full).count() as u64;
                (lead, lead_lines, body.len(), lines)
            }
        };
        let rel = self.rel_line + lead_lines;
        self.rel_line += lines;
        self.body_end = self.buf_offset + (self.rec + lead + body_len) as u64;
        if self.skip_header {
            self.skip_header = false;
            if self.map_from_header {
                self.map_header();
            }
            return;
        }
        // The record's raw bytes, copied only when it is rejected.
        let (b0, b1) = (self.rec + lead, self.rec + lead + body_len);
        if self.nends != self.expected_fields {
            let reason = format!(
                "expected {} fields, found {}",
                self.expected_fields, self.nends
            );
            let raw = self.buf[b0..b1].to_vec();
            let r = self.reject(rel, None, reason, &raw);
            rejects.push(r);
            return;
        }
        if fast.is_none()
            && memchr::memchr(b'"', &self.buf[b0..b1]).is_some()
            && let Some(field) = bad_quoting(&self.buf[b0..b1], self.delimiter)
        {
            let raw = self.buf[b0..b1].to_vec();
            let column = Some((field + 1, self.column_name(field)));
            let reason = "bad quoting: a quote inside an unquoted field, text after a closing \
                          quote, or an unclosed quote";
            let r = self.reject(rel, column, reason.into(), &raw);
            rejects.push(r);
            return;
        }
        let row = out.push_row();
        let mut failed = None;
        for (col, n) in self.needed.iter().enumerate() {
            let text = if fast.is_some() {
                &self.buf[self.rec + self.starts[n.field]..self.rec + self.ends[n.field]]
            } else {
                let s = if n.field == 0 {
                    0
                } else {
                    self.ends[n.field - 1]
                };
                &self.fields[s..self.ends[n.field]]
            };
            if let Err(reason) = set_from_text(out, row, col, text, n.ty) {
                if !n.strict {
                    out.set_null(row, col);
                    continue;
                }
                failed = Some((Some((n.field + 1, n.name.clone())), reason));
                break;
            }
        }
        if let Some((column, reason)) = failed {
            out.pop_row();
            let raw = self.buf[b0..b1].to_vec();
            let r = self.reject(rel, column, reason, &raw);
            rejects.push(r);
        }
    }

    fn map_header(&mut self) {
        let mut rec = csv::ByteRecord::new();
        for i in 0..self.nends {
            let s = if i == 0 { 0 } else { self.ends[i - 1] };
            rec.push_field(&self.fields[s..self.ends[i]]);
        }
        let names = match header_names(&rec) {
            Ok(names) => names,
            Err(e) => {
                self.header_error = Some(ConnectorError::new(format!("{}:1", self.file), e));
                self.done = true;
                return;
            }
        };
        self.expected_fields = names.len();
        self.plain = None;
        for n in &mut self.needed {
            match names.iter().position(|h| *h == n.name) {
                Some(i) => n.field = i,
                None => {
                    self.header_error = Some(ConnectorError::new(
                        format!("{}:1", self.file),
                        format!(
                            "the header has no column `{}` (it has: {})",
                            n.name,
                            names.join(", ")
                        ),
                    ));
                    self.done = true;
                }
            }
        }
    }

    fn column_name(&self, field: usize) -> String {
        self.needed
            .iter()
            .find(|n| n.field == field)
            .map(|n| n.name.clone())
            .unwrap_or_else(|| format!("field {}", field + 1))
    }
}

/// What [`fast_record`] found at the start of its input.
enum Fast {
    /// A whole record: bytes consumed (through its `\n`), its field count and the newlines it
    /// holds.
    Record {
        nin: usize,
        nends: usize,
        lines: u64,
    },
    /// The input ends inside the record.
    NeedMore,
    /// Anything unusual (a blank line, `\r`, a BOM, quoting that is not RFC 4180): let csv-core
    /// read this record, as it always did.
    Slow,
}

/// Byte classes for unquoted fields: 1 = ends the field or needs the slow path.
fn special_bytes(delim: u8) -> [bool; 256] {
    let mut t = [false; 256];
    for b in [delim, b'\n', b'\r', b'"'] {
        t[b as usize] = true;
    }
    t
}

/// Splits one strictly RFC 4180 record terminated by `\n` at the start of `input` into fields,
/// exactly as csv-core would, without copying: field `k` is `input[starts[k]..ends[k]]` (a quoted
/// field without its quotes; both vectors grown as needed). Returns [`Fast::Slow`] for anything
/// else (including a doubled `""` inside quotes, which needs unescaping), which csv-core reads.
#[inline]
fn fast_record(
    input: &[u8],
    special: &[bool; 256],
    delim: u8,
    starts: &mut Vec<usize>,
    ends: &mut Vec<usize>,
) -> Fast {
    let n = input.len();
    if n == 0 {
        return Fast::NeedMore;
    }
    if matches!(input[0], b'\n' | b'\r' | 0xEF) {
        return Fast::Slow;
    }
    let mut i = 0;
    let mut nends = 0;
    let mut lines = 1;
    loop {
        // One field starting at `i`.
        let (s, e);
        if input[i] == b'"' {
            s = i + 1;
            let Some(k) = memchr::memchr(b'"', &input[s..]) else {
                return Fast::NeedMore;
            };
            e = s + k;
            lines += memchr::memchr_iter(b'\n', &input[s..e]).count() as u64;
            i = e + 1;
            // After the closing quote: a delimiter or the record's `\n`; a second quote (an
            // escaped one) or anything else goes to csv-core.
            match input.get(i) {
                None => return Fast::NeedMore,
                Some(&b) if b != delim && b != b'\n' => return Fast::Slow,
                Some(_) => {}
            }
        } else {
            s = i;
            while i < n && !special[input[i] as usize] {
                i += 1;
            }
            if i == n {
                return Fast::NeedMore;
            }
            if matches!(input[i], b'"' | b'\r') {
                return Fast::Slow;
            }
            e = i;
        }
        if nends == ends.len() {
            ends.resize(ends.len() * 2 + 8, 0);
        }
        if nends == starts.len() {
            starts.resize(starts.len() * 2 + 8, 0);
        }
        starts[nends] = s;
        ends[nends] = e;
        nends += 1;
        // `input[i]` is the delimiter or `\n`; a record ending in a delimiter then `\n`... is
        // handled by the next iteration (an empty unquoted field).
        if input[i] == b'\n' {
            return Fast::Record {
                nin: i + 1,
                nends,
                lines,
            };
        }
        i += 1;
        if i == n {
            return Fast::NeedMore;
        }
    }
}

/// The first field (0-based) whose quoting is not RFC 4180, if any.
fn bad_quoting(rec: &[u8], delim: u8) -> Option<usize> {
    let n = rec.len();
    let mut i = 0;
    let mut field = 0;
    loop {
        if i < n && rec[i] == b'"' {
            i += 1;
            loop {
                if i >= n {
                    return Some(field);
                }
                if rec[i] == b'"' {
                    if i + 1 < n && rec[i + 1] == b'"' {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            if i == n {
                return None;
            }
            if rec[i] != delim {
                return Some(field);
            }
            i += 1;
            field += 1;
        } else {
            while i < n && rec[i] != delim {
                if rec[i] == b'"' {
                    return Some(field);
                }
                i += 1;
            }
            if i == n {
                return None;
            }
            i += 1;
            field += 1;
        }
    }
}

impl SourceReader for CsvReader {
    fn read(
        &mut self,
        out: &mut Batch,
        max_rows: usize,
        rejects: &mut Vec<RowReject>,
    ) -> Result<bool, ConnectorError> {
        let target = out.rows + max_rows;
        let mut handled = 0;
        while !self.done && out.rows < target && handled < max_rows * 2 {
            if self.rec == self.lo && self.nends == 0 && self.nfields == 0 && self.end != u64::MAX {
                // At a record start: past the end of our split? A record's position is that of
                // its first byte after any blank lines and the `\n` of a `\r\n` (csv-core ends
                // a record at the `\r` and skips such bytes before the next one), because a
                // split boundary is placed after a newline.
                let mut p = self.lo;
                while p < self.hi && matches!(self.buf[p], b'\r' | b'\n') {
                    p += 1;
                }
                if p == self.hi && !self.eof {
                    self.refill()?;
                    continue;
                }
                if self.buf_offset + p as u64 >= self.end {
                    self.done = true;
                    break;
                }
            }
            // At the start of a record that the fast paths may take (the plain path below
            // either takes a run of records or hands one record to `fast_record`/csv-core).
            let fresh = self.rec == self.lo
                && self.nends == 0
                && self.nfields == 0
                && !self.slow
                && !self.skip_header;
            if fresh && !self.plain_off && self.plain_enabled {
                if self.plain.is_none() {
                    self.plain = Some(self.plain_plan());
                }
                if let Some(Some(plain)) = &self.plain {
                    let limit = if self.end == u64::MAX {
                        usize::MAX
                    } else {
                        self.end.saturating_sub(self.buf_offset + self.lo as u64) as usize
                    };
                    let want = (target - out.rows).min(max_rows * 2 - handled);
                    let run =
                        plain::parse_plain(&self.buf[self.lo..self.hi], limit, plain, out, want);
                    self.lo += run.consumed;
                    self.rec = self.lo;
                    self.rel_line += run.lines;
                    handled += run.rows;
                    if run.rows > 0 {
                        // A plain record ends with its one `\n`.
                        self.body_end = self.buf_offset + self.lo as u64 - 1;
                    }
                    match run.stop {
                        Stop::Full => continue,
                        Stop::Limit => {
                            self.done = true;
                            break;
                        }
                        Stop::NeedMore if !self.eof => {
                            self.refill()?;
                            continue;
                        }
                        Stop::NeedMore | Stop::Unusual => {
                            self.plain_off = true;
                            continue;
                        }
                    }
                }
            }
            if fresh {
                match fast_record(
                    &self.buf[self.lo..self.hi],
                    &self.special,
                    self.delimiter,
                    &mut self.starts,
                    &mut self.ends,
                ) {
                    Fast::Record { nin, nends, lines } => {
                        self.lo += nin;
                        self.nends = nends;
                        self.record(out, rejects, Some(lines));
                        handled += 1;
                        self.rec = self.lo;
                        self.nends = 0;
                        self.plain_off = false;
                        continue;
                    }
                    Fast::NeedMore if !self.eof => {
                        self.refill()?;
                        continue;
                    }
                    // At the end of the input csv-core reads the last record (which may lack
                    // its newline) and sees the end.
                    Fast::NeedMore | Fast::Slow => self.slow = true,
                }
            }
            if self.lo == self.hi && !self.eof {
                self.refill()?;
                continue;
            }
            let input = &self.buf[self.lo..self.hi];
            let (res, nin, nout, nend) = self.core.read_record(
                input,
                &mut self.fields[self.nfields..],
                &mut self.ends[self.nends..],
            );
            // csv-core reports field ends as positions in the whole record's output, even
            // when the record spans several calls.
            self.lo += nin;
            self.nfields += nout;
            self.nends += nend;
            match res {
                ReadRecordResult::InputEmpty => {
                    if !self.eof {
                        self.refill()?;
                    } else if nin == 0 {
                        self.done = true;
                    }
                }
                ReadRecordResult::OutputFull => {
                    let n = self.fields.len() * 2;
                    self.fields.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                ReadRecordResult::Record => {
                    self.slow = false;
                    self.plain_off = false;
                    self.record(out, rejects, None);
                    handled += 1;
                    self.rec = self.lo;
                    self.nfields = 0;
                    self.nends = 0;
                }
                ReadRecordResult::End => {
                    self.done = true;
                }
            }
        }
        if let Some(e) = self.header_error.take() {
            return Err(e);
        }
        if self.done && self.check_end {
            // Every record starting before the guessed end is read, with the exact quote state
            // (this split starts at a record start, or the split before fails here too): the
            // guess is a record start exactly when no record's text reaches it (the bytes
            // between are line ends, which the next split's reader skips).
            self.check_end = false;
            if self.body_end >= self.end {
                return Err(ConnectorError::new(
                    &self.file,
                    format!(
                        "{} at byte {} (a quoted field spans it)",
                        split::SPLIT_GUESS_WRONG,
                        self.end
                    ),
                ));
            }
        }
        Ok(!self.done)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

// ---- sink -----------------------------------------------------------------------------------

use super::outbuf::{self, OutBuf};
use super::{DecimalsGuess, float_text_full};

pub struct CsvSink;

impl SinkConnector for CsvSink {
    fn info(&self) -> crate::catalog::ConnectorInfo {
        describe::sink()
    }

    fn target(&self, _spec: &SinkSpec) -> SinkTarget {
        SinkTarget::File
    }
    fn validate(&self, spec: &SinkSpec) -> Result<(), ConnectorError> {
        if spec.path.is_none() {
            return Err(ConnectorError::new(&spec.origin, "csv sink needs a path"));
        }
        opt_delimiter(&spec.options).map_err(|e| ConnectorError::new(&spec.origin, e))?;
        Ok(())
    }
    fn writer(
        &self,
        spec: &SinkSpec,
        row: &RowType,
        out: Box<dyn Write + Send>,
        first: bool,
    ) -> Result<Box<dyn RowWriter>, ConnectorError> {
        let delimiter =
            opt_delimiter(&spec.options).map_err(|e| ConnectorError::new(&spec.origin, e))?;
        let header = opt_bool(&spec.options, "header", true);
        Ok(Box::new(CsvWriter::new(
            out,
            row,
            delimiter,
            header && first,
        )))
    }
}

/// Writes RFC 4180 CSV straight into its own buffer, flushed to `out` in large writes. Quoting
/// follows the `csv` crate's `QuoteStyle::Necessary` exactly (a field is quoted when it contains
/// the delimiter, a quote, `\r` or `\n`; quotes are doubled; a record that would be empty is
/// written as `""`), so the output bytes are those the `csv` crate would write.
///
/// Room for a whole record is asked for once (numbers take at most `NUMBER_ROOM` bytes, a str
/// at most twice its length plus quotes), then its fields are written without further checks.
/// The batch's string bytes are checked for quoting once; when none needs quotes, strings are
/// copied without a check of their own.
pub struct CsvWriter {
    out: Box<dyn Write + Send>,
    buf: OutBuf,
    layout: crate::batch::Layout,
    cols: Vec<Col>,
    /// The str columns: (null word, bit, slot), to size a record.
    str_cols: Vec<(usize, u32, usize)>,
    /// Room for a record apart from its str fields.
    fixed_room: usize,
    header: Option<Vec<String>>,
    delimiter: u8,
    quoting: Quoting,
    scratch: Vec<u8>,
}

/// How to write one column: where its null bit and slot are in a row's words.
#[derive(Clone, Copy)]
struct Col {
    kind: ColKind,
    scalar: Scalar,
    null_word: usize,
    bit: u32,
    slot: usize,
    /// How a float column's values are written (see [`DecimalsGuess`]).
    decimals: DecimalsGuess,
}

#[derive(Clone, Copy, PartialEq)]
enum ColKind {
    Str,
    /// An int or float whose text needs no quotes with this delimiter.
    Int,
    Float,
    /// Anything else, through `push_text` and the quoting check.
    Text,
}

const BUF_SIZE: usize = 256 * 1024;

/// Room enough for an int's or a finite float's text.
const NUMBER_ROOM: usize = 32;

/// Which bytes make a field need quotes: the delimiter, `"`, `\r`, `\n`.
struct Quoting {
    table: [bool; 256],
    specials: [u64; 4],
    bytes: [u8; 4],
}

impl Quoting {
    fn new(delimiter: u8) -> Quoting {
        let bytes = [delimiter, b'"', b'\r', b'\n'];
        let mut table = [false; 256];
        for b in bytes {
            table[b as usize] = true;
        }
        Quoting {
            table,
            specials: bytes.map(outbuf::splat),
            bytes,
        }
    }

    #[inline]
    fn needed(&self, f: &[u8]) -> bool {
        let [a, b, c, d] = self.specials;
        outbuf::any_word(f, |w| {
            outbuf::has_zero(w ^ a)
                || outbuf::has_zero(w ^ b)
                || outbuf::has_zero(w ^ c)
                || outbuf::has_zero(w ^ d)
        })
        .unwrap_or_else(|| f.iter().any(|&b| self.table[b as usize]))
    }

    /// Appends one field, quoted if needed; the room (`2 * len + 2`) was asked for.
    fn field(&self, buf: &mut OutBuf, f: &[u8]) {
        let mut w = buf.cursor();
        // SAFETY: the caller asked for the room the field can take.
        unsafe { self.field_at(&mut w, f) };
        buf.commit(w);
    }

    /// Appends one field through a cursor, quoted if needed.
    ///
    /// # Safety
    /// Room for `2 * f.len() + 2` bytes was asked for.
    #[inline]
    unsafe fn field_at(&self, w: &mut outbuf::Cursor, f: &[u8]) {
        // SAFETY: at most `2 * len + 2` bytes, as the caller asked for.
        unsafe {
            if self.needed(f) {
                w.byte(b'"');
                for &b in f {
                    if b == b'"' {
                        w.byte(b'"');
                    }
                    w.byte(b);
                }
                w.byte(b'"');
            } else {
                w.bytes(f);
            }
        }
    }
}

impl CsvWriter {
    pub fn new(out: Box<dyn Write + Send>, row: &RowType, delimiter: u8, header: bool) -> Self {
        // Digits, '.', '-' and 'e' need quotes only with such a delimiter.
        let plain_numbers = !b"0123456789.-e".contains(&delimiter);
        let layout = crate::batch::Layout::new(row.fields.len());
        let cols: Vec<Col> = row
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| Col {
                kind: match f.ty.scalar {
                    Scalar::Str => ColKind::Str,
                    Scalar::Int if plain_numbers => ColKind::Int,
                    Scalar::Float if plain_numbers => ColKind::Float,
                    _ => ColKind::Text,
                },
                scalar: f.ty.scalar,
                null_word: i / 64,
                bit: (i % 64) as u32,
                slot: layout.slot(i),
                decimals: DecimalsGuess::default(),
            })
            .collect();
        let str_cols = cols
            .iter()
            .filter(|c| c.kind == ColKind::Str)
            .map(|c| (c.null_word, c.bit, c.slot))
            .collect();
        let fixed_room = cols
            .iter()
            .map(|c| match c.kind {
                ColKind::Str => 1,
                _ => 1 + NUMBER_ROOM,
            })
            .sum::<usize>()
            + 3;
        CsvWriter {
            out,
            buf: OutBuf::new(BUF_SIZE),
            layout,
            cols,
            str_cols,
            fixed_room,
            header: header.then(|| row.fields.iter().map(|f| f.name.clone()).collect()),
            delimiter,
            quoting: Quoting::new(delimiter),
            scratch: Vec::new(),
        }
    }

    fn write_header(&mut self) -> io::Result<()> {
        if let Some(h) = self.header.take() {
            let start = self.buf.written();
            for (i, name) in h.iter().enumerate() {
                self.buf
                    .room(2 * name.len() + 3 + h.len(), &mut *self.out)?;
                if i > 0 {
                    self.buf.byte(self.delimiter);
                }
                self.quoting.field(&mut self.buf, name.as_bytes());
            }
            self.buf.room(3, &mut *self.out)?;
            end_record(&mut self.buf, start);
        }
        Ok(())
    }
}

/// Ends a record that started at `start` (`written()`): `""` if it is empty, then `\n`. Room
/// for 3 bytes was asked for.
#[inline]
fn end_record(buf: &mut OutBuf, start: u64) {
    if buf.written() == start {
        buf.bytes(b"\"\"");
    }
    buf.byte(b'\n');
}

impl RowWriter for CsvWriter {
    fn write_batch(&mut self, b: &Batch) -> io::Result<()> {
        self.write_header()?;
        let CsvWriter {
            out,
            buf,
            layout,
            cols,
            str_cols,
            fixed_room,
            delimiter,
            quoting,
            scratch,
            ..
        } = self;
        if b.layout != *layout {
            return Err(io::Error::other("batch layout differs from the sink's row"));
        }
        let stride = b.layout.stride;
        let mut z = zmij::Buffer::new();
        let mut tmp = [0u8; 32];
        let mut itoa = itoa::Buffer::new();
        let arena: &[u8] = &b.arena;
        // One scan of the batch's string bytes: when none needs quotes, no string of the batch
        // does, and each is copied without its own check.
        let clean = !outbuf::any_of4(arena, quoting.bytes);
        for c in cols.iter_mut() {
            c.decimals.reset();
        }
        for (row, words) in b.words.chunks_exact(stride).take(b.rows).enumerate() {
            // SAFETY (word reads): every column's null word and slot are below the stride of
            // the layout checked above.
            let word = |i: usize| unsafe { *words.get_unchecked(i) };
            let mut need = *fixed_room;
            for &(nw, bit, slot) in str_cols.iter() {
                if word(nw) >> bit & 1 == 0 {
                    need += 2 * (word(slot) & 0xffff_ffff) as usize + 2;
                }
            }
            buf.room(need, &mut **out)?;
            let start = buf.written();
            let mut w = buf.cursor();
            // SAFETY (every cursor write): the record fits in `need` bytes — a delimiter after
            // each field, numbers of at most NUMBER_ROOM bytes, str fields of at most twice
            // their length plus quotes —, and a field written through `scratch` asks for its
            // own room first.
            unsafe {
                for (i, c) in cols.iter_mut().enumerate() {
                    if word(c.null_word) >> c.bit & 1 == 0 {
                        let x = word(c.slot);
                        match c.kind {
                            ColKind::Str => {
                                let (off, len) = ((x >> 32) as usize, (x & 0xffff_ffff) as usize);
                                let t = arena.get(off..off + len).unwrap_or(&[]);
                                if clean {
                                    w.bytes(t);
                                } else {
                                    quoting.field_at(&mut w, t);
                                }
                            }
                            ColKind::Int => w.bytes(itoa.format(x as i64).as_bytes()),
                            ColKind::Float if f64::from_bits(x).is_finite() => {
                                let x = f64::from_bits(x);
                                w.bytes(match c.decimals.text(x, &mut tmp) {
                                    Some(r) => &tmp[r],
                                    None => {
                                        let t = float_text_full(&mut z, &mut tmp, x);
                                        c.decimals.learn(t);
                                        t
                                    }
                                })
                            }
                            _ => {
                                scratch.clear();
                                match c.scalar {
                                    // A float with a delimiter that its text may contain.
                                    Scalar::Float if f64::from_bits(x).is_finite() => {
                                        push_float_finite(scratch, f64::from_bits(x))
                                    }
                                    _ => push_text(scratch, b, row, i, c.scalar),
                                }
                                // Room for this field and, again, for the rest of the record.
                                buf.commit(w);
                                buf.grow(2 * scratch.len() + 2 + need);
                                w = buf.cursor();
                                quoting.field_at(&mut w, scratch);
                            }
                        }
                    }
                    w.byte(*delimiter);
                }
            }
            buf.commit(w);
            // The last delimiter gives way to the end of the record.
            if !cols.is_empty() {
                buf.unwrite(1);
            }
            end_record(buf, start);
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.write_header()?;
        self.buf.flush_to(&mut *self.out)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{ErrorPolicy, Options};
    use crate::types::{Field, Value};

    /// A source reading `columns` of `schema` from one in-memory input with a header line, and
    /// its single split (fields in schema order).
    fn unsplit(connector: &str, schema: RowType, columns: Vec<usize>) -> (SourceSpec, Split) {
        let fields = schema.len();
        let spec = SourceSpec {
            name: "in".into(),
            connector: connector.into(),
            path: None,
            options: Options::new(),
            schema,
            columns,
            unread: Vec::new(),
            policy: ErrorPolicy::default(),
            prune: None,
        };
        let split = Split {
            path: None,
            start: 0,
            end: u64::MAX,
            skip_header: true,
            field_of_column: (0..fields).collect(),
            fields,
            align: false,
            end_guessed: false,
            snapshot: None,
        };
        (spec, split)
    }

    /// The standard-input path: the header is only known at run time and maps columns by name.
    #[test]
    fn reader_maps_a_runtime_header_and_reports_lines() {
        let schema = RowType::new(vec![
            Field {
                name: "a".into(),
                ty: Type::INT,
            },
            Field {
                name: "b".into(),
                ty: Type::STR,
            },
        ]);
        let (spec, split) = unsplit("stdin", schema, vec![1, 0]);
        let text = "b,a\r\nx,1\r\n\r\n\"y\ny\",2\r\nz,oops\r\n";
        let mut r = CsvReader::new(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            "<stdin>".into(),
            None,
            &spec,
            &split,
            b',',
        );
        r.map_from_header = true;
        let mut out = Batch::new(2);
        let mut rejects = Vec::new();
        while r.read(&mut out, 2, &mut rejects).unwrap() {}
        let t = RowType::new(vec![
            spec.schema.fields[1].clone(),
            spec.schema.fields[0].clone(),
        ]);
        assert_eq!(
            out.to_values(&t),
            vec![
                vec![Value::Str("x".into()), Value::Int(1)],
                vec![Value::Str("y\ny".into()), Value::Int(2)],
            ]
        );
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].line, Some(6));
        assert_eq!(rejects[0].column, Some((2, "a".into())));
        assert_eq!(rejects[0].raw, "z,oops");
    }

    /// The row type `id: int, note: str`.
    fn id_note() -> RowType {
        RowType::new(vec![
            Field {
                name: "id".into(),
                ty: Type::INT,
            },
            Field {
                name: "note".into(),
                ty: Type::STR,
            },
        ])
    }

    /// A CSV source reading every column of `schema` from the file `p`.
    fn file_spec(p: &Path, schema: &RowType) -> SourceSpec {
        SourceSpec {
            name: "t".into(),
            connector: "csv".into(),
            path: Some(p.display().to_string()),
            options: Options::new(),
            schema: schema.clone(),
            columns: (0..schema.len()).collect(),
            unread: Vec::new(),
            policy: ErrorPolicy::default(),
            prune: None,
        }
    }

    /// The rows of every split of `plan`, in order (no row may be rejected).
    fn read_plan(spec: &SourceSpec, schema: &RowType, plan: &[Vec<Split>]) -> Vec<Vec<Value>> {
        let mut rows = Vec::new();
        for sp in plan.iter().flatten() {
            let mut r = CsvSource.open(spec, sp).unwrap();
            let mut out = Batch::new(schema.len());
            let mut rejects = Vec::new();
            while r.read(&mut out, 1000, &mut rejects).unwrap() {}
            assert!(rejects.is_empty(), "{rejects:?}");
            rows.extend(out.to_values(schema));
        }
        rows
    }

    /// Pieces as the planner cuts them (boundaries found at plan time) give exactly the rows of
    /// one reader, in order, for files with quoted newlines, CRLF line ends and blank lines.
    #[test]
    fn pieces_together_read_every_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let schema = id_note();
        for (k, eol) in ["\n", "\r\n", "\n\n"].iter().enumerate() {
            let p = dir.path().join(format!("t{k}.csv"));
            let mut text = format!("id,note{eol}");
            for i in 0..12000 {
                match i % 5 {
                    0 => text.push_str(&format!("{i},\"two\nlines, \"\"q\"\"\"{eol}")),
                    1 => text.push_str(&format!("{i},\"\n{eol}\n\"{eol}")),
                    _ => text.push_str(&format!("{i},plain {i}{eol}")),
                }
            }
            std::fs::write(&p, &text).unwrap();
            let spec = file_spec(&p, &schema);
            let read_all = |workers: usize| {
                let plan = CsvSource.plan(&spec, workers).unwrap();
                // The planner found every boundary itself (no reader scans from the start).
                assert!(plan.iter().flatten().all(|s| !s.align), "{plan:?}");
                read_plan(&spec, &schema, &plan)
            };
            let one = read_all(1);
            assert_eq!(one.len(), 12000);
            for w in [2, 3, 4, 7] {
                let mut many = read_all(w);
                many.sort_by_key(|r| match r[0] {
                    Value::Int(i) => i,
                    _ => -1,
                });
                assert_eq!(many, one, "eol {eol:?}, {w} pieces");
            }
        }
    }

    /// A file whose quoting keeps the planner from knowing the quote state after a target
    /// (`1,","`: a run that starts inside quotes never meets the true one): the boundaries are
    /// left to the readers, which scan from the start, and the pieces still read every record
    /// once, also with more pieces than the file has boundaries to spare.
    #[test]
    fn pieces_aligned_by_their_readers_read_every_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let schema = id_note();
        let p = dir.path().join("q.csv");
        let mut text = String::from("id,note\r\n");
        for i in 0..40_000 {
            text.push_str(&format!("{i},\",\"\r\n"));
        }
        std::fs::write(&p, &text).unwrap();
        let spec = file_spec(&p, &schema);
        let read_all = |workers: usize| {
            let plan = CsvSource.plan(&spec, workers).unwrap();
            assert!(workers == 1 || plan.iter().flatten().any(|s| s.align));
            let mut rows = read_plan(&spec, &schema, &plan);
            rows.sort_by_key(|r| match r[0] {
                Value::Int(i) => i,
                _ => -1,
            });
            rows
        };
        let one = read_all(1);
        assert_eq!(one.len(), 40_000);
        assert_eq!(one[7], vec![Value::Int(7), Value::Str(",".into())]);
        for w in [2, 3, 5] {
            assert_eq!(read_all(w), one, "{w} pieces");
        }
    }

    /// A random CSV file: a header, then records ending in random line ends (`\n`, `\r\n`, a
    /// lone `\r`, blank lines), with quoted fields holding delimiters, quotes and line ends, some
    /// with a wrong field count or a bad value (rejects), the last one maybe unterminated.
    fn random_csv(seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let ends = ["\n", "\r\n", "\r", "\n\n", "\r\r", "\r\n\r\n"];
        // Mostly one kind of line end per file (as real files are), sometimes mixed.
        let file_end = next(ends.len() as u64) as usize;
        let mixed = next(4) == 0;
        let mut text = String::from("id,note");
        text.push_str(ends[file_end]);
        let records = 1 + next(300);
        for i in 0..records {
            let id = if next(20) == 0 {
                "x".to_string()
            } else if next(5) == 0 {
                format!("\"{i}\"")
            } else {
                i.to_string()
            };
            let note = match next(4) {
                0 => {
                    let mut q = String::from("\"");
                    for _ in 0..next(12) {
                        q.push_str(["a", ",", "\"\"", "\n", "\r", "\r\n", " "][next(7) as usize]);
                    }
                    q.push('"');
                    q
                }
                1 => String::new(),
                _ => format!("n{}", next(1000)),
            };
            text.push_str(&id);
            text.push(',');
            text.push_str(&note);
            if next(25) == 0 {
                text.push_str(",extra");
            }
            if i + 1 < records || next(2) == 0 {
                let e = if mixed {
                    next(ends.len() as u64) as usize
                } else {
                    file_end
                };
                text.push_str(ends[e]);
            }
        }
        text.into_bytes()
    }

    /// Reads a file whole, and in pieces cut at arbitrary byte offsets (each aligned by its own
    /// reader, as `split::ranges` plans them); the pieces' rows and rejects, in order, are
    /// exactly the whole file's: no record dropped, duplicated or cut, whatever the line ends.
    #[test]
    fn split_union_equals_whole_read_for_every_line_end() {
        let dir = tempfile::tempdir().unwrap();
        let schema = id_note();
        for round in 0..400u64 {
            let data = random_csv(0x9e37_79b9_7f4a_7c15 ^ (round * 0x1000_0001));
            let p = dir.path().join(format!("r{round}.csv"));
            std::fs::write(&p, &data).unwrap();
            let spec = file_spec(&p, &schema);
            let whole = CsvSource.plan(&spec, 1).unwrap().remove(0).remove(0);
            let read = |sp: &Split| {
                let mut r = CsvSource.open(&spec, sp).unwrap();
                let mut out = Batch::new(2);
                let mut rejects = Vec::new();
                while r.read(&mut out, 7, &mut rejects).unwrap() {}
                let rejects: Vec<_> = rejects.into_iter().map(|r| (r.line, r.raw)).collect();
                (out.to_values(&schema), rejects)
            };
            let want = read(&whole);
            let mut seed = round.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
            for cut in 0..8 {
                let mut targets: Vec<u64> = (0..1 + cut % 5)
                    .map(|_| {
                        crate::connectors::xorshift(&mut seed);
                        seed % data.len() as u64
                    })
                    .collect();
                targets.sort();
                targets.dedup();
                // Every boundary left to the readers, and as the planner places them.
                let mut lazy = Vec::new();
                let mut start = 0;
                for &t in &targets {
                    lazy.push(split::Piece {
                        start,
                        end: t + 1,
                        align: start > 0,
                        end_guessed: false,
                    });
                    start = t;
                }
                lazy.push(split::Piece {
                    start,
                    end: u64::MAX,
                    align: true,
                    end_guessed: false,
                });
                let planned =
                    split::csv_pieces(&p, data.len() as u64, &targets, b',', |t| t).unwrap();
                for pieces in [lazy, planned] {
                    let mut got = (Vec::new(), Vec::new());
                    for pc in &pieces {
                        let sp = Split {
                            start: pc.start,
                            end: pc.end,
                            align: pc.align,
                            end_guessed: pc.end_guessed,
                            skip_header: pc.start == 0 && !pc.align,
                            ..whole.clone()
                        };
                        let (rows, rejects) = read(&sp);
                        got.0.extend(rows);
                        got.1.extend(rejects);
                    }
                    assert_eq!(
                        got,
                        want,
                        "round {round}, cuts {targets:?}, pieces {pieces:?}, file {:?}",
                        String::from_utf8_lossy(&data)
                    );
                }
            }
        }
    }

    /// Reads `data` (handed out in small random chunks) with the given reader settings.
    fn read_chunked(
        data: &[u8],
        spec: &SourceSpec,
        split: &Split,
        plain: bool,
        max_rows: usize,
        seed: u64,
    ) -> (Vec<Vec<Value>>, Vec<RowReject>) {
        struct Chunks {
            data: Vec<u8>,
            at: usize,
            seed: u64,
        }
        impl Read for Chunks {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let n = (1 + (self.seed >> 33) as usize % 97)
                    .min(buf.len())
                    .min(self.data.len() - self.at);
                buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
                self.at += n;
                Ok(n)
            }
        }
        let input = Chunks {
            data: data.to_vec(),
            at: 0,
            seed,
        };
        let mut r = CsvReader::new(Box::new(input), "in.csv".into(), None, spec, split, b',');
        r.plain_enabled = plain;
        let mut out = Batch::new(spec.columns.len());
        let mut rejects = Vec::new();
        while r.read(&mut out, max_rows, &mut rejects).unwrap() {}
        let t = RowType::new(
            spec.columns
                .iter()
                .map(|&c| spec.schema.fields[c].clone())
                .collect(),
        );
        (out.to_values(&t), rejects)
    }

    /// The one-pass plain-record path gives exactly the rows, rejects, lines and messages of the
    /// general path, on random files full of quoting, CRLF, blank lines, bad values and wrong
    /// field counts, read in random small chunks.
    #[test]
    fn plain_path_agrees_with_the_general_path() {
        let f = |name: &str, ty: Type| Field {
            name: name.into(),
            ty,
        };
        let schema = RowType::new(vec![
            f("id", Type::INT),
            f("name", Type::STR),
            f("x", Type::nullable(Scalar::Float)),
            f("skip", Type::STR),
            f("y", Type::nullable(Scalar::Int)),
            f("s", Type::nullable(Scalar::Str)),
            f("b", Type::nullable(Scalar::Bool)),
        ]);
        let values: [&[&str]; 7] = [
            &["1", "-42", "007", "x1", "", "99999999999999999999", " 3"],
            &[
                "ab",
                "abcdefghijklmnop",
                "",
                "\"a,b\"",
                "\"q\"\"q\"",
                "é",
                "\"l1\nl2\"",
                "a\"b",
                "abcdefghijklmnopqrstu",
                "aaaaaaaaaaaaaaé",
            ],
            &[
                "1.5",
                "",
                "-0.25",
                "1e3",
                "nan",
                "2.",
                "1.2.3",
                "12345678901234567",
            ],
            &["z", "\"z,z\"", "", "\"\""],
            &["5", "", "-1", "1.0"],
            &["s", "", "\"\"", "<ff>"],
            &["true", "", "FALSE", "maybe"],
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            crate::connectors::xorshift(&mut seed);
            (seed % n as u64) as usize
        };
        for round in 0..300 {
            let mut data: Vec<u8> = b"id,name,x,skip,y,s,b\n".to_vec();
            for _ in 0..(round % 60) {
                let eol: &[u8] = match next(20) {
                    0 => b"\r\n",
                    1 => b"\n\n",
                    _ => b"\n",
                };
                let fields = match next(25) {
                    0 => 6,
                    1 => 8,
                    _ => 7,
                };
                for k in 0..fields {
                    if k > 0 {
                        data.push(b',');
                    }
                    let choices = values[k.min(6)];
                    // Mostly the first (plain) choices, sometimes the odd ones.
                    let i = if next(4) == 0 {
                        next(choices.len())
                    } else {
                        next(2)
                    };
                    if choices[i] == "<ff>" {
                        data.push(0xff);
                    } else {
                        data.extend_from_slice(choices[i].as_bytes());
                    }
                }
                data.extend_from_slice(eol);
            }
            if next(3) == 0 {
                // The last record without its newline.
                while data.last() == Some(&b'\n') {
                    data.pop();
                }
            }
            let columns = if round % 2 == 0 {
                vec![0, 1, 2, 4, 5, 6]
            } else {
                vec![5, 2, 0]
            };
            let (spec, split) = unsplit("csv", schema.clone(), columns);
            let max_rows = 1 + next(9);
            let s = next(1000) as u64;
            let general = read_chunked(&data, &spec, &split, false, max_rows, s);
            let plain = read_chunked(&data, &spec, &split, true, max_rows, s + 1);
            // Compared as text: NaN is a value here.
            assert_eq!(
                format!("{plain:?}"),
                format!("{general:?}"),
                "round {round}: {}",
                String::from_utf8_lossy(&data)
            );
        }
    }

    /// Whenever the fast splitter accepts a record, csv-core reads the same record the same way.
    #[test]
    fn fast_record_agrees_with_csv_core() {
        let alphabet = b"a,\"\r\n1;b,,\"\n";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let special = special_bytes(b',');
        let mut accepted = 0;
        for round in 0..20000 {
            let len = 1 + round % 40;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    crate::connectors::xorshift(&mut seed);
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let (mut starts, mut ends) = (Vec::new(), Vec::new());
            if let Fast::Record { nin, nends, lines } =
                fast_record(&data, &special, b',', &mut starts, &mut ends)
            {
                accepted += 1;
                let mut core = ReaderBuilder::new().build();
                let (mut out, mut cends) = (vec![0u8; 256], vec![0usize; 64]);
                let (res, cin, _, cn) = core.read_record(&data, &mut out, &mut cends);
                assert!(matches!(res, ReadRecordResult::Record), "{data:?}");
                assert_eq!(cin, nin, "{data:?}");
                assert_eq!(cn, nends, "{data:?}");
                for k in 0..cn {
                    let cs = if k == 0 { 0 } else { cends[k - 1] };
                    assert_eq!(&out[cs..cends[k]], &data[starts[k]..ends[k]], "{data:?}");
                }
                assert_eq!(bad_quoting(&data[..nin - 1], b','), None, "{data:?}");
                let nl = data[..nin].iter().filter(|&&b| b == b'\n').count() as u64;
                assert_eq!(lines, nl, "{data:?}");
            }
        }
        assert!(accepted > 1000, "{accepted}");
    }

    #[test]
    fn quoting_check() {
        assert_eq!(bad_quoting(b"a,\"b,c\",d", b','), None);
        assert_eq!(bad_quoting(b"a,\"b\"\"c\"", b','), None);
        assert_eq!(bad_quoting(b"a,b\"c", b','), Some(1));
        assert_eq!(bad_quoting(b"a,\"b\"c,d", b','), Some(1));
        assert_eq!(bad_quoting(b"\"abc", b','), Some(0));
        assert_eq!(bad_quoting(b"\"x\ny\",2", b','), None);
    }

    /// `CsvWriter` writes exactly what the `csv` crate writes for the same text fields
    /// (`QuoteStyle::Necessary`), with any delimiter, header or not, across many batches.
    /// A float column that starts with values that are not whole hundredths (past its
    /// `cents_text` tries, the rest of the batch goes straight to `zmij`), then hundredths,
    /// non-finite values, six-decimal values and nulls, next to a two-decimal column that keeps
    /// its tries, over two batches and with a delimiter that floats contain: the text the `csv`
    /// crate writes.
    #[test]
    fn floats_past_the_hundredths_tries_are_written_the_same() {
        let t = RowType::new(vec![
            Field {
                name: "x".into(),
                ty: Type::nullable(Scalar::Float),
            },
            Field {
                name: "fare".into(),
                ty: Type::nullable(Scalar::Float),
            },
        ]);
        let mut xs: Vec<Value> = (1..20).map(|i| Value::Float(i as f64 / 3.0)).collect();
        xs.extend([12.5, 0.0, -0.0, 1e21, 100.25, -3.1, f64::NAN, f64::INFINITY].map(Value::Float));
        xs.extend((0..20).map(|i| Value::Float(i as f64 * 1.25)));
        // Six decimals: learnt from the first one's full text, then written by their own path.
        xs.extend((0..20).map(|i| Value::Float((i * 7_654_321 % 100_000_000) as f64 / 1e6)));
        xs.push(Value::Null);
        let rows: Vec<Vec<Value>> = xs
            .into_iter()
            .enumerate()
            .map(|(i, x)| vec![x, Value::Float(i as f64 * 10.01 - 7.0)])
            .collect();
        for delimiter in [b',', b'.'] {
            let got = outbuf::tests::Shared::default();
            let mut w = CsvWriter::new(Box::new(got.clone()), &t, delimiter, false);
            let mut want = csv::WriterBuilder::new()
                .delimiter(delimiter)
                .from_writer(Vec::new());
            for part in [&rows[..30], &rows[30..]] {
                let b = Batch::from_values(&t, part);
                w.write_batch(&b).unwrap();
                for row in 0..b.rows {
                    let rec: Vec<Vec<u8>> = (0..t.len())
                        .map(|c| {
                            let mut v = Vec::new();
                            push_text(&mut v, &b, row, c, Scalar::Float);
                            v
                        })
                        .collect();
                    want.write_record(&rec).unwrap();
                }
            }
            w.finish().unwrap();
            let want = want.into_inner().unwrap();
            let got = got.0.lock().unwrap().clone();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
            if delimiter == b',' {
                assert!(String::from_utf8_lossy(&got).contains("\n100.25,"));
            }
        }
    }

    #[test]
    fn writer_matches_the_csv_crate() {
        for round in 0..400u64 {
            let delimiter = b",;\t.1e-|"[(round % 8) as usize];
            let (t, batches) =
                outbuf::tests::random_batches(round * 7919 + 1, 1 + (round % 5) as usize);
            let header = round % 3 != 0;
            let got = outbuf::tests::Shared::default();
            let mut w = CsvWriter::new(Box::new(got.clone()), &t, delimiter, header);
            for b in &batches {
                w.write_batch(b).unwrap();
            }
            w.finish().unwrap();
            let mut want = csv::WriterBuilder::new()
                .delimiter(delimiter)
                .from_writer(Vec::new());
            if header {
                want.write_record(t.fields.iter().map(|f| f.name.as_bytes()))
                    .unwrap();
            }
            for b in &batches {
                for row in 0..b.rows {
                    let rec: Vec<Vec<u8>> = (0..t.len())
                        .map(|c| {
                            let mut v = Vec::new();
                            push_text(&mut v, b, row, c, t.fields[c].ty.scalar);
                            v
                        })
                        .collect();
                    want.write_record(&rec).unwrap();
                }
            }
            let want = want.into_inner().unwrap();
            let got = got.0.lock().unwrap().clone();
            assert!(
                got == want,
                "round {round}, delimiter {:?}:\n{}\n---\n{}",
                delimiter as char,
                String::from_utf8_lossy(&got[..got.len().min(2000)]),
                String::from_utf8_lossy(&want[..want.len().min(2000)])
            );
        }
    }
}
