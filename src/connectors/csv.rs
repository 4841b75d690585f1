//! CSV: reading with `csv-core` (RFC 4180 quoting, embedded delimiters, quotes and newlines,
//! optional header, configurable delimiter) and writing with the `csv` crate.
//!
//! The reader drives csv-core over its own buffer so that it knows the raw bytes of every record
//! (for dead letters and for a quoting check csv-core itself does not make: csv-core accepts
//! `"ab"c` or a stray quote inside an unquoted field, which we reject as bad quoting). Only the
//! columns the plan needs (`SourceSpec::columns`) are converted; every record's field count is
//! checked. A header, when present, maps schema columns to fields by name.

use super::split::{self, Framing};
use super::{
    ConnectorError, RowReject, RowWriter, SinkConnector, SinkTarget, SourceConnector, SourceReader,
    Split, opt_bool, opt_delimiter, push_text, set_from_text,
};
use crate::batch::Batch;
use crate::plan::ir::{SinkSpec, SourceSpec};
use crate::types::{RowType, Scalar, Type};
use csv_core::{ReadRecordResult, ReaderBuilder};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct CsvSource;

impl SourceConnector for CsvSource {
    fn name(&self) -> &'static str {
        "csv"
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
        if split.start > 0 {
            f.seek(SeekFrom::Start(split.start))
                .map_err(|e| ConnectorError::new(&name, e.to_string()))?;
        }
        Ok(Box::new(CsvReader::new(
            Box::new(f),
            name,
            Some(path.clone()),
            spec,
            split,
            delimiter,
        )))
    }
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
    let names: Vec<String> = rec
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim().to_string())
        .collect();
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
}

pub struct CsvReader {
    input: Box<dyn Read + Send>,
    file: String,
    path: Option<PathBuf>,
    start: u64,
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
    base_line: Option<u64>,
    skip_header: bool,
    /// Standard input: the header (if any) is only known when it is read.
    pub map_from_header: bool,
    /// An unknown column in a header read at run time.
    pub header_error: Option<ConnectorError>,
    needed: Vec<Needed>,
    expected_fields: usize,
    bytes: u64,
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
            })
            .collect();
        CsvReader {
            input,
            file,
            path,
            start: split.start,
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
            base_line: if split.start == 0 { Some(0) } else { None },
            skip_header: split.skip_header,
            map_from_header: false,
            header_error: None,
            needed,
            expected_fields: split.fields,
            bytes: 0,
        }
    }

    fn refill(&mut self) -> Result<(), ConnectorError> {
        if self.rec > 0 {
            self.buf.copy_within(self.rec..self.hi, 0);
            self.buf_offset += self.rec as u64;
            self.lo -= self.rec;
            self.hi -= self.rec;
            self.rec = 0;
        }
        if self.hi == self.buf.len() {
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        let n = self
            .input
            .read(&mut self.buf[self.hi..])
            .map_err(|e| ConnectorError::new(&self.file, format!("read error: {e}")))?;
        if n == 0 {
            self.eof = true;
        }
        self.hi += n;
        self.bytes += n as u64;
        Ok(())
    }

    fn line_of(&mut self, rel: u64) -> Option<u64> {
        if self.base_line.is_none()
            && let Some(p) = &self.path
        {
            self.base_line = split::count_newlines(p, self.start).ok();
        }
        self.base_line.map(|b| b + rel + 1)
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
            line: self.line_of(rel_line),
            column,
            reason,
            raw: String::from_utf8_lossy(raw).into_owned(),
        }
    }

    /// Handles one complete record in `buf[rec..lo]` with fields in `fields`/`ends`.
    fn record(&mut self, out: &mut Batch, rejects: &mut Vec<RowReject>) {
        let full = &self.buf[self.rec..self.lo];
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
        let rel = self.rel_line + lead_lines;
        self.rel_line += full.iter().filter(|&&b| b == b'\n').count() as u64;
        if self.skip_header {
            self.skip_header = false;
            if self.map_from_header {
                self.map_header();
            }
            return;
        }
        // The record's raw bytes, copied only when it is rejected.
        let (b0, b1) = (self.rec + lead, self.rec + lead + body.len());
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
        if self.buf[b0..b1].contains(&b'"')
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
            let s = if n.field == 0 {
                0
            } else {
                self.ends[n.field - 1]
            };
            let e = self.ends[n.field];
            if let Err(reason) = set_from_text(out, row, col, &self.fields[s..e], n.ty) {
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
        let names: Vec<String> = (0..self.nends)
            .map(|i| {
                let s = if i == 0 { 0 } else { self.ends[i - 1] };
                String::from_utf8_lossy(&self.fields[s..self.ends[i]])
                    .trim()
                    .to_string()
            })
            .collect();
        self.expected_fields = names.len();
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
            if self.rec == self.lo && self.nends == 0 && self.nfields == 0 {
                // At a record start: past the end of our split?
                if self.end != u64::MAX && self.buf_offset + self.rec as u64 >= self.end {
                    self.done = true;
                    break;
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
                    self.record(out, rejects);
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
        Ok(!self.done)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

// ---- sink -----------------------------------------------------------------------------------

pub struct CsvSink;

impl SinkConnector for CsvSink {
    fn name(&self) -> &'static str {
        "csv"
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

pub struct CsvWriter {
    w: csv::Writer<Box<dyn Write + Send>>,
    scalars: Vec<Scalar>,
    header: Option<Vec<String>>,
    scratch: Vec<u8>,
}

impl CsvWriter {
    pub fn new(out: Box<dyn Write + Send>, row: &RowType, delimiter: u8, header: bool) -> Self {
        let w = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .buffer_capacity(256 * 1024)
            .from_writer(out);
        CsvWriter {
            w,
            scalars: row.fields.iter().map(|f| f.ty.scalar).collect(),
            header: header.then(|| row.fields.iter().map(|f| f.name.clone()).collect()),
            scratch: Vec::new(),
        }
    }

    fn write_header(&mut self) -> io::Result<()> {
        if let Some(h) = self.header.take() {
            self.w.write_record(&h).map_err(io::Error::other)?;
        }
        Ok(())
    }
}

impl RowWriter for CsvWriter {
    fn write_batch(&mut self, b: &Batch) -> io::Result<()> {
        self.write_header()?;
        for row in 0..b.rows {
            for (col, &s) in self.scalars.iter().enumerate() {
                self.scratch.clear();
                push_text(&mut self.scratch, b, row, col, s);
                self.w
                    .write_field(&self.scratch)
                    .map_err(io::Error::other)?;
            }
            self.w
                .write_record(None::<&[u8]>)
                .map_err(io::Error::other)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.write_header()?;
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::hir::{ErrorPolicy, Options};
    use crate::types::{Field, Value};

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
        let spec = SourceSpec {
            name: "in".into(),
            connector: "stdin".into(),
            path: None,
            options: Options::new(),
            schema,
            columns: vec![1, 0],
            policy: ErrorPolicy::default(),
        };
        let split = Split {
            path: None,
            start: 0,
            end: u64::MAX,
            skip_header: true,
            field_of_column: vec![0, 1],
            fields: 2,
        };
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

    #[test]
    fn quoting_check() {
        assert_eq!(bad_quoting(b"a,\"b,c\",d", b','), None);
        assert_eq!(bad_quoting(b"a,\"b\"\"c\"", b','), None);
        assert_eq!(bad_quoting(b"a,b\"c", b','), Some(1));
        assert_eq!(bad_quoting(b"a,\"b\"c,d", b','), Some(1));
        assert_eq!(bad_quoting(b"\"abc", b','), Some(0));
        assert_eq!(bad_quoting(b"\"x\ny\",2", b','), None);
    }
}
