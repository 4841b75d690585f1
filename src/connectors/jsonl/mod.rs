//! JSON lines: one JSON object per line (`serde_json`, floats correctly rounded; a UTF-8 BOM at
//! the start is skipped). Fields are matched by name; keys the schema does not know are ignored;
//! a missing key or `null` is null for a nullable column and an error otherwise; a number, bool,
//! object or array read into a `str` column is its JSON text (what inference infers for keys
//! whose values mix kinds or nest). Output: one object per row, keys in row order; non-finite floats and
//! nulls are written as `null`, timestamps as strings (`timestamp_to_str`).

pub mod describe;
pub mod infer;
use super::input::{self, LineBase};
use super::outbuf::{self, OutBuf};
use super::split::{self, Framing};
use super::{
    ConnectorError, RowReject, RowWriter, SinkConnector, SinkTarget, SourceConnector, SourceReader,
    Split,
};
use crate::batch::Batch;
use crate::plan::ir::{SinkSpec, SourceSpec};
use crate::stdlib::ops;
use crate::types::{RowType, Scalar, Type};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

/// The UTF-8 byte order mark, skipped at the start of an input.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

pub struct JsonlSource;

impl SourceConnector for JsonlSource {
    fn info(&self) -> crate::catalog::ConnectorInfo {
        describe::source()
    }

    fn infer(&self, file: &str, options: &crate::job::Options) -> Result<RowType, String> {
        infer::infer(file, options)
    }

    fn plan(&self, spec: &SourceSpec, workers: usize) -> Result<Vec<Vec<Split>>, ConnectorError> {
        let pattern = spec
            .path
            .as_deref()
            .ok_or_else(|| ConnectorError::new(&spec.name, "jsonl source needs a path"))?;
        let files = split::expand(pattern)?;
        let n = spec.schema.len();
        split::assign(&files, workers, Framing::Lines, |path, start, end| {
            Ok(Split {
                path: Some(path.to_path_buf()),
                start,
                end,
                skip_header: false,
                field_of_column: (0..n).collect(),
                fields: n,
                align: false,
                end_guessed: false,
                snapshot: None,
            })
        })
    }

    fn open(
        &self,
        spec: &SourceSpec,
        split: &Split,
    ) -> Result<Box<dyn SourceReader>, ConnectorError> {
        let Some(path) = &split.path else {
            return Err(ConnectorError::new(
                &spec.name,
                "jsonl split without a file",
            ));
        };
        let name = path.display().to_string();
        let mut f = File::open(path)
            .map_err(|e| ConnectorError::new(&name, format!("cannot open input: {e}")))?;
        if split.start > 0 {
            f.seek(SeekFrom::Start(split.start))
                .map_err(|e| ConnectorError::new(&name, e.to_string()))?;
        }
        Ok(Box::new(JsonlReader::new(
            Box::new(f),
            name,
            Some(path.clone()),
            spec,
            split,
        )))
    }
}

pub struct JsonlReader {
    input: Box<dyn Read + Send>,
    file: String,
    lines: LineBase,
    end: u64,
    buf: Vec<u8>,
    lo: usize,
    hi: usize,
    buf_offset: u64,
    eof: bool,
    done: bool,
    rel_line: u64,
    /// Name, type, and whether a value that does not convert rejects the row (`false`: a
    /// column the job never reads, `SourceSpec::unread`: it becomes null).
    needed: Vec<(String, Type, bool)>,
    bytes: u64,
    /// The next line is the first of the input: a UTF-8 byte order mark before it is skipped.
    first: bool,
}

impl JsonlReader {
    pub fn new(
        input: Box<dyn Read + Send>,
        file: String,
        path: Option<PathBuf>,
        spec: &SourceSpec,
        split: &Split,
    ) -> JsonlReader {
        JsonlReader {
            input,
            file,
            lines: LineBase::new(path, split.start),
            end: split.end,
            buf: vec![0; 256 * 1024],
            lo: 0,
            hi: 0,
            buf_offset: split.start,
            eof: false,
            done: false,
            rel_line: 0,
            needed: spec
                .columns
                .iter()
                .map(|&c| {
                    let f = &spec.schema.fields[c];
                    (f.name.clone(), f.ty, !spec.unread.contains(&c))
                })
                .collect(),
            bytes: 0,
            first: split.start == 0,
        }
    }

    /// Keeps the unread lines (`buf[lo..]`) and reads more input after them.
    fn refill(&mut self) -> Result<(), ConnectorError> {
        let (shift, n) = input::refill(
            &mut *self.input,
            &mut self.buf,
            self.lo,
            &mut self.hi,
            &self.file,
        )?;
        self.buf_offset += shift as u64;
        self.lo -= shift;
        self.eof |= n == 0;
        self.bytes += n as u64;
        Ok(())
    }

    fn line(&mut self) -> Option<u64> {
        let rel = self.rel_line;
        self.lines.line(rel)
    }

    fn parse_line(&mut self, line: &[u8], out: &mut Batch, rejects: &mut Vec<RowReject>) {
        let mut body = line;
        if std::mem::take(&mut self.first) {
            body = body.strip_prefix(BOM).unwrap_or(body);
        }
        while let [rest @ .., b'\n' | b'\r'] = body {
            body = rest;
        }
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        let res: Result<serde_json::Map<String, serde_json::Value>, _> =
            serde_json::from_slice(body);
        let mut fail = |this: &mut Self, column: Option<(usize, String)>, reason: String| {
            rejects.push(RowReject {
                file: this.file.clone(),
                line: this.line(),
                column,
                reason,
                raw: String::from_utf8_lossy(body).into_owned(),
            });
        };
        let obj = match res {
            Ok(o) => o,
            Err(e) => {
                let reason = if std::str::from_utf8(body).is_err() {
                    "invalid UTF-8".to_string()
                } else {
                    format!("invalid JSON object: {e}")
                };
                fail(self, None, reason);
                return;
            }
        };
        let row = out.push_row();
        for (col, (name, ty, strict)) in self.needed.iter().enumerate() {
            if let Err(reason) = set_from_json(out, row, col, obj.get(name), *ty) {
                if !strict {
                    out.set_null(row, col);
                    continue;
                }
                out.pop_row();
                let column = Some((col + 1, name.clone()));
                fail(self, column, reason);
                return;
            }
        }
    }
}

fn set_from_json(
    out: &mut Batch,
    row: usize,
    col: usize,
    v: Option<&serde_json::Value>,
    ty: Type,
) -> Result<(), String> {
    use serde_json::Value as J;
    match v {
        None | Some(J::Null) => {
            if ty.nullable {
                out.set_null(row, col);
                Ok(())
            } else {
                Err(format!("missing value for non-nullable {ty} column"))
            }
        }
        Some(v) => {
            match (ty.scalar, v) {
                (Scalar::Int, J::Number(n)) if n.as_i64().is_some() => {
                    out.set_int(row, col, n.as_i64().unwrap_or_default())
                }
                (Scalar::Float, J::Number(n)) if n.as_f64().is_some() => {
                    out.set_float(row, col, n.as_f64().unwrap_or_default())
                }
                (Scalar::Bool, J::Bool(b)) => out.set_bool(row, col, *b),
                (Scalar::Str, J::String(s)) => out.set_str(row, col, s),
                // Inference types a key `str` when its values mix kinds or nest: a number,
                // bool, object or array read into a `str` column is its JSON text.
                (Scalar::Str, v) => out.set_str(row, col, &v.to_string()),
                (Scalar::Timestamp, J::String(s)) => match ops::parse_timestamp(s) {
                    Some(t) => out.set_int(row, col, t),
                    None => return Err(format!("cannot parse {s:?} as timestamp")),
                },
                (Scalar::Timestamp, J::Number(n)) if n.as_i64().is_some() => {
                    out.set_int(row, col, n.as_i64().unwrap_or_default())
                }
                (s, v) => return Err(format!("expected {}, found {v}", s.name())),
            }
            Ok(())
        }
    }
}

impl SourceReader for JsonlReader {
    fn read(
        &mut self,
        out: &mut Batch,
        max_rows: usize,
        rejects: &mut Vec<RowReject>,
    ) -> Result<bool, ConnectorError> {
        let target = out.rows + max_rows;
        let mut handled = 0;
        while !self.done && out.rows < target && handled < max_rows * 2 {
            if self.end != u64::MAX && self.buf_offset + self.lo as u64 >= self.end {
                self.done = true;
                break;
            }
            let nl = self.buf[self.lo..self.hi].iter().position(|&b| b == b'\n');
            let line_end = match nl {
                Some(i) => self.lo + i + 1,
                None if self.eof => {
                    if self.lo == self.hi {
                        self.done = true;
                        break;
                    }
                    self.hi
                }
                None => {
                    self.refill()?;
                    continue;
                }
            };
            let line = self.buf[self.lo..line_end].to_vec();
            self.parse_line(&line, out, rejects);
            handled += 1;
            self.lo = line_end;
            self.rel_line += 1;
        }
        Ok(!self.done)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

// ---- sink -----------------------------------------------------------------------------------

pub struct JsonlSink;

impl SinkConnector for JsonlSink {
    fn info(&self) -> crate::catalog::ConnectorInfo {
        describe::sink()
    }

    fn target(&self, _spec: &SinkSpec) -> SinkTarget {
        SinkTarget::File
    }
    fn validate(&self, spec: &SinkSpec) -> Result<(), ConnectorError> {
        if spec.path.is_none() {
            return Err(ConnectorError::new(&spec.origin, "jsonl sink needs a path"));
        }
        Ok(())
    }
    fn writer(
        &self,
        _spec: &SinkSpec,
        row: &RowType,
        out: Box<dyn Write + Send>,
        _first: bool,
    ) -> Result<Box<dyn RowWriter>, ConnectorError> {
        Ok(Box::new(JsonlWriter::new(out, row)))
    }
}

/// Writes one JSON object per row into its own buffer (`OutBuf`), flushed to `out` in large writes.
/// The text is exactly what `serde_json` writes for the row's `value_to_json` values: ints with
/// `itoa`, finite floats with `zmij` (as `serde_json` does; values with the column's fixed number
/// of decimals with `cents_text` / `decimals_text`, the same text), strings escaped with
/// `serde_json`'s rules. Strings with nothing to escape (checked a word at a time, for the whole
/// batch's string bytes at once first) are copied as they are — batch str slots are valid UTF-8
/// already; others go through `serde_json`.
pub struct JsonlWriter {
    out: Box<dyn Write + Send>,
    buf: OutBuf,
    layout: crate::batch::Layout,
    cols: Vec<JCol>,
    /// The str columns (null word, bit, slot), to size a row.
    str_cols: Vec<(usize, u32, usize)>,
    /// Room for a row apart from its str values.
    fixed_room: usize,
    scratch: Vec<u8>,
}

/// How to write one column: its key and where its null bit and slot are in a row's words.
struct JCol {
    /// `"name":`, with `,` before all but the first column, JSON-escaped; `key_len` bytes of
    /// `key` when they fit (copied with one fixed-size move), else in `long_key`. A str
    /// column's `key` also holds the opening quote after them when it fits (`quoted`).
    key: [u8; outbuf::FIXED],
    quoted: bool,
    key_len: usize,
    long_key: Option<Vec<u8>>,
    scalar: Scalar,
    null_word: usize,
    bit: u32,
    slot: usize,
    /// How a float column's values are written (see [`super::DecimalsGuess`]).
    decimals: super::DecimalsGuess,
}

const BUF_SIZE: usize = 256 * 1024;

/// Room enough for an int, a float, `true`, `false` or `null`.
const VALUE_ROOM: usize = 32;

/// Whether a string needs escaping in JSON (`serde_json`'s table: control bytes, `"`, `\`).
#[inline]
fn needs_escape(s: &[u8]) -> bool {
    const QUOTE: u64 = outbuf::splat(b'"');
    const BACKSLASH: u64 = outbuf::splat(b'\\');
    outbuf::any_word(s, |w| {
        outbuf::has_below(w, 0x20) || outbuf::has_zero(w ^ QUOTE) || outbuf::has_zero(w ^ BACKSLASH)
    })
    .unwrap_or_else(|| s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\'))
}

impl JsonlWriter {
    pub fn new(out: Box<dyn Write + Send>, row: &RowType) -> JsonlWriter {
        let layout = crate::batch::Layout::new(row.fields.len());
        let cols: Vec<JCol> = row
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut k = if i > 0 { vec![b','] } else { Vec::new() };
                k.extend(serde_json::to_vec(&f.name).unwrap_or_else(|_| b"\"?\"".to_vec()));
                k.push(b':');
                let mut key = [0u8; outbuf::FIXED];
                let fits = k.len() <= key.len();
                if fits {
                    key[..k.len()].copy_from_slice(&k);
                }
                let quoted = f.ty.scalar == Scalar::Str && k.len() < key.len();
                if quoted {
                    key[k.len()] = b'"';
                }
                JCol {
                    key,
                    quoted,
                    key_len: k.len(),
                    long_key: (!fits).then_some(k),
                    scalar: f.ty.scalar,
                    null_word: i / 64,
                    bit: (i % 64) as u32,
                    slot: layout.slot(i),
                    decimals: super::DecimalsGuess::default(),
                }
            })
            .collect();
        let fixed_room = cols.iter().map(|c| c.key_len + VALUE_ROOM).sum::<usize>() + 3;
        JsonlWriter {
            out,
            buf: OutBuf::new(BUF_SIZE),
            layout,
            str_cols: cols
                .iter()
                .filter(|c| c.scalar == Scalar::Str)
                .map(|c| (c.null_word, c.bit, c.slot))
                .collect(),
            cols,
            fixed_room,
            scratch: Vec::new(),
        }
    }
}

impl RowWriter for JsonlWriter {
    fn write_batch(&mut self, b: &Batch) -> io::Result<()> {
        let JsonlWriter {
            out,
            buf,
            layout,
            cols,
            str_cols,
            fixed_room,
            scratch,
        } = self;
        if b.layout != *layout {
            return Err(io::Error::other("batch layout differs from the sink's row"));
        }
        let stride = b.layout.stride;
        let mut z = zmij::Buffer::new();
        let mut itoa = itoa::Buffer::new();
        let mut tmp = [0u8; 32];
        let arena: &[u8] = &b.arena;
        // One scan of the batch's string bytes: when none needs escaping, no string of the
        // batch does, and each is copied without its own check.
        let clean = !outbuf::any_json_escape(arena);
        for c in cols.iter_mut() {
            c.decimals.reset();
        }
        for (row, words) in b.words.chunks_exact(stride).take(b.rows).enumerate() {
            // SAFETY (word reads): every column's null word and slot are below the stride of
            // the layout checked above.
            let word = |i: usize| unsafe { *words.get_unchecked(i) };
            // Room for the row: its str values are copied as they are (2 quotes) or go
            // through `scratch` (which asks for its own room).
            let mut need = *fixed_room;
            for &(nw, bit, slot) in str_cols.iter() {
                if word(nw) >> bit & 1 == 0 {
                    need += (word(slot) & 0xffff_ffff) as usize + 2;
                }
            }
            buf.room(need, &mut **out)?;
            let mut w = buf.cursor();
            // SAFETY (every cursor write): the row's text fits in `need` bytes — each key, a
            // value of at most VALUE_ROOM bytes or a str value and its quotes, the braces and
            // the newline —, and a value written through `scratch` asks for its own room first.
            unsafe {
                w.byte(b'{');
                for (col, c) in cols.iter_mut().enumerate() {
                    let null = word(c.null_word) >> c.bit & 1 == 1;
                    if c.quoted && !null {
                        // The key and the opening quote in one move.
                        w.fixed(&c.key, c.key_len + 1);
                    } else {
                        match &c.long_key {
                            None => w.fixed(&c.key, c.key_len),
                            Some(k) => w.bytes(k),
                        }
                        if null {
                            w.bytes(b"null");
                            continue;
                        }
                    }
                    let x = word(c.slot);
                    match c.scalar {
                        Scalar::Int => w.bytes(itoa.format(x as i64).as_bytes()),
                        Scalar::Float => {
                            let x = f64::from_bits(x);
                            if let Some(r) = c.decimals.text(x, &mut tmp) {
                                w.bytes(&tmp[r]);
                            } else if x.is_finite() {
                                let t = z.format_finite(x).as_bytes();
                                c.decimals.learn(t);
                                w.bytes(t);
                            } else {
                                w.bytes(b"null");
                            }
                        }
                        Scalar::Bool => w.bytes(if x != 0 { b"true" } else { b"false" }),
                        Scalar::Str => {
                            let (off, len) = ((x >> 32) as usize, (x & 0xffff_ffff) as usize);
                            let t = arena.get(off..off + len).unwrap_or(&[]);
                            if !clean && needs_escape(t) {
                                scratch.clear();
                                serde_json::to_writer(&mut *scratch, b.get_str(row, col))
                                    .map_err(io::Error::other)?;
                                // Room for this value and, again, for the rest of the row;
                                // the opening quote is serde's.
                                buf.commit(w);
                                if c.quoted {
                                    buf.unwrite(1);
                                }
                                buf.grow(scratch.len() + need);
                                w = buf.cursor();
                                w.bytes(scratch);
                            } else {
                                if !c.quoted {
                                    w.byte(b'"');
                                }
                                w.bytes(t);
                                w.byte(b'"');
                            }
                        }
                        s => {
                            scratch.clear();
                            let v = super::value_to_json(b, row, col, s);
                            serde_json::to_writer(&mut *scratch, &v).map_err(io::Error::other)?;
                            buf.commit(w);
                            buf.grow(scratch.len() + need);
                            w = buf.cursor();
                            w.bytes(scratch);
                        }
                    }
                }
                w.byte(b'}');
                w.byte(b'\n');
            }
            buf.commit(w);
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.buf.flush_to(&mut *self.out)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads JSON lines text whole with one reader over `schema` (all columns).
    pub(crate) fn read_text(
        text: &[u8],
        schema: &RowType,
    ) -> (Vec<Vec<crate::types::Value>>, Vec<RowReject>) {
        let spec = SourceSpec {
            name: "in".into(),
            connector: "jsonl".into(),
            path: None,
            options: crate::job::Options::new(),
            schema: schema.clone(),
            columns: (0..schema.len()).collect(),
            unread: Vec::new(),
            policy: crate::job::ErrorPolicy::default(),
            prune: None,
        };
        let split = Split {
            path: None,
            start: 0,
            end: u64::MAX,
            skip_header: false,
            field_of_column: (0..schema.len()).collect(),
            fields: schema.len(),
            align: false,
            end_guessed: false,
            snapshot: None,
        };
        let mut r = JsonlReader::new(
            Box::new(std::io::Cursor::new(text.to_vec())),
            "in.jsonl".into(),
            None,
            &spec,
            &split,
        );
        let mut out = Batch::new(schema.len());
        let mut rejects = Vec::new();
        while r.read(&mut out, 1000, &mut rejects).unwrap() {}
        (out.to_values(schema), rejects)
    }

    /// Every float the reader takes is the correctly rounded value of its text, as
    /// `str::parse::<f64>` gives it: shortest representations of random doubles (subnormals
    /// included), long mantissas, halfway cases and the values of issue 16.
    #[test]
    fn floats_are_correctly_rounded() {
        let schema = RowType::new(vec![crate::types::Field {
            name: "x".into(),
            ty: Type::FLOAT,
        }]);
        let mut texts: Vec<String> = [
            "108104.81020651032",
            "9007199254740993.0",
            "9007199254740993",
            "2.4703282292062328e-324",
            "2.4703282292062327e-324",
            "4.9e-324",
            "1.7976931348623157e308",
            "2.2250738585072011e-308",
            "0.1",
            "-0.0",
            "123456789012345678901234567890",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut x = 0x243f_6a88_85a3_08d3u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let f = f64::from_bits(next());
            if f.is_finite() {
                texts.push(format!("{f:e}"));
                texts.push(format!("{f}"));
            }
        }
        for _ in 0..20_000 {
            // 17 to 40 significant digits with an exponent.
            let digits = 17 + next() % 24;
            let mut t = (1 + next() % 9).to_string();
            for _ in 1..digits {
                t.push(char::from(b'0' + (next() % 10) as u8));
            }
            t.insert(1, '.');
            t.push_str(&format!("e{}", (next() % 600) as i64 - 300));
            texts.push(t);
        }
        let mut text = String::new();
        for t in &texts {
            text.push_str(&format!("{{\"x\":{t}}}\n"));
        }
        let (rows, rejects) = read_text(text.as_bytes(), &schema);
        assert!(rejects.is_empty(), "{:?}", &rejects[..rejects.len().min(3)]);
        assert_eq!(rows.len(), texts.len());
        let wrong: Vec<String> = rows
            .iter()
            .zip(&texts)
            .filter_map(|(row, t)| {
                let want: f64 = t.parse().unwrap();
                match row[0] {
                    crate::types::Value::Float(got) if got.to_bits() == want.to_bits() => None,
                    ref got => Some(format!("{t}: read {got:?}, want {want:?}")),
                }
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "{} wrong: {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
    }

    /// Writes `rows` of `t` as one batch and returns the text.
    fn written(t: &RowType, rows: &[Vec<crate::types::Value>]) -> String {
        let got = super::super::outbuf::tests::Shared::default();
        let mut w = JsonlWriter::new(Box::new(got.clone()), t);
        w.write_batch(&Batch::from_values(t, rows)).unwrap();
        w.finish().unwrap();
        String::from_utf8(got.0.lock().unwrap().clone()).unwrap()
    }

    /// The escapes, byte for byte: quote, backslash, the short escapes, other control bytes as
    /// `\u00XX`, DEL, `/` and non-ASCII as they are; a key that needs escaping; a batch whose
    /// strings are all clean but one (the batch-wide check must not skip that one).
    #[test]
    fn writer_escapes_strings_and_keys() {
        use crate::types::{Field, Value};
        let t = RowType::new(vec![
            Field {
                name: "s".into(),
                ty: Type::nullable(Scalar::Str),
            },
            Field {
                name: "k\"e\\y\u{1}é".into(),
                ty: Type::nullable(Scalar::Str),
            },
        ]);
        let s = |x: &str| Value::Str(x.into());
        let rows = vec![
            vec![s("plain"), s("")],
            vec![
                s("q\"b\\s\u{1}\u{1f}\u{7f}é😀\t\n\r\u{8}\u{c}/"),
                Value::Null,
            ],
            vec![s("also plain"), s("x")],
        ];
        assert_eq!(
            written(&t, &rows),
            concat!(
                r#"{"s":"plain","k\"e\\y\u0001é":""}"#,
                "\n",
                r#"{"s":"q\"b\\s\u0001\u001f"#,
                "\u{7f}",
                r#"é😀\t\n\r\b\f/","k\"e\\y\u0001é":null}"#,
                "\n",
                r#"{"s":"also plain","k\"e\\y\u0001é":"x"}"#,
                "\n",
            )
        );
        // All clean: copied as they are.
        let clean = vec![vec![s("a b"), s("ÿé😀 ,;")]];
        assert_eq!(
            written(&t, &clean),
            "{\"s\":\"a b\",\"k\\\"e\\\\y\\u0001é\":\"ÿé😀 ,;\"}\n"
        );
    }

    /// Floats: non-finite ones are `null`, whole hundredths (the `cents_text` path) and others
    /// are `serde_json`'s text, ints at their extremes.
    #[test]
    fn writer_numbers_and_non_finite_floats() {
        use crate::types::{Field, Value};
        let t = RowType::new(vec![
            Field {
                name: "x".into(),
                ty: Type::nullable(Scalar::Float),
            },
            Field {
                name: "i".into(),
                ty: Type::nullable(Scalar::Int),
            },
        ]);
        let xs = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            12.5,
            12.0,
            -0.05,
            0.1 + 0.2,
            1e16,
            1e-7,
            123456789012.34,
        ];
        let ints = [i64::MIN, i64::MAX, 0, -1, 7, 1, 2, 3, 4, 5, 6, 8];
        let rows: Vec<Vec<Value>> = xs
            .iter()
            .zip(ints)
            .map(|(&x, i)| vec![Value::Float(x), Value::Int(i)])
            .collect();
        let got = written(&t, &rows);
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines[0], r#"{"x":null,"i":-9223372036854775808}"#);
        assert_eq!(lines[1], r#"{"x":null,"i":9223372036854775807}"#);
        assert_eq!(lines[2], r#"{"x":null,"i":0}"#);
        assert_eq!(lines[3], r#"{"x":-0.0,"i":-1}"#);
        assert_eq!(lines[4], r#"{"x":0.0,"i":7}"#);
        assert_eq!(lines[5], r#"{"x":12.5,"i":1}"#);
        assert_eq!(lines[6], r#"{"x":12.0,"i":2}"#);
        assert_eq!(lines[7], r#"{"x":-0.05,"i":3}"#);
        assert_eq!(lines[8], r#"{"x":0.30000000000000004,"i":4}"#);
        for (k, x) in xs.iter().enumerate().skip(9) {
            let want = format!(
                r#"{{"x":{},"i":{}}}"#,
                serde_json::to_string(x).unwrap(),
                ints[k]
            );
            assert_eq!(lines[k], want);
        }
        assert_eq!(lines[11], r#"{"x":123456789012.34,"i":8}"#);
    }

    /// `JsonlWriter` writes exactly what `serde_json` writes for each row's `row_to_json`
    /// object: escapes, non-ASCII, floats (`zmij` through `serde_json`), non-finite floats and
    /// nulls, timestamps, across many batches with strings that outgrow the buffer.
    /// A float column that starts with values that are not whole hundredths (past its tries,
    /// the rest of the batch goes straight to `zmij`), then hundredths, non-finite values and
    /// nulls, over two batches: the text `serde_json` writes.
    #[test]
    fn floats_past_the_hundredths_tries_are_written_the_same() {
        use crate::types::{Field, Type, Value};
        let t = RowType::new(vec![Field {
            name: "x".into(),
            ty: Type::nullable(Scalar::Float),
        }]);
        let mut vals: Vec<Value> = (1..20).map(|i| Value::Float(i as f64 / 3.0)).collect();
        vals.extend(
            [12.5, 0.0, -0.0, 1e21, 100.25, -3.1, f64::NAN, f64::INFINITY].map(Value::Float),
        );
        vals.extend((0..20).map(|i| Value::Float(i as f64 * 1.25)));
        vals.push(Value::Null);
        let rows: Vec<Vec<Value>> = vals.into_iter().map(|v| vec![v]).collect();
        let got = super::super::outbuf::tests::Shared::default();
        let mut w = JsonlWriter::new(Box::new(got.clone()), &t);
        let mut want = Vec::new();
        for part in [&rows[..30], &rows[30..]] {
            let b = Batch::from_values(&t, part);
            w.write_batch(&b).unwrap();
            for row in 0..b.rows {
                serde_json::to_writer(&mut want, &super::super::row_to_json(&b, row, &t)).unwrap();
                want.push(b'\n');
            }
        }
        w.finish().unwrap();
        let got = got.0.lock().unwrap().clone();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
        assert!(String::from_utf8_lossy(&got).contains("{\"x\":100.25}"));
    }

    #[test]
    fn writer_matches_serde_json() {
        for round in 0..400u64 {
            let (t, batches) = super::super::outbuf::tests::random_batches(
                round * 104729 + 3,
                1 + (round % 6) as usize,
            );
            let got = super::super::outbuf::tests::Shared::default();
            let mut w = JsonlWriter::new(Box::new(got.clone()), &t);
            let mut want = Vec::new();
            for b in &batches {
                w.write_batch(b).unwrap();
                for row in 0..b.rows {
                    serde_json::to_writer(&mut want, &super::super::row_to_json(b, row, &t))
                        .unwrap();
                    want.push(b'\n');
                }
            }
            w.finish().unwrap();
            let got = got.0.lock().unwrap().clone();
            assert!(
                got == want,
                "round {round}:\n{}\n---\n{}",
                String::from_utf8_lossy(&got[..got.len().min(2000)]),
                String::from_utf8_lossy(&want[..want.len().min(2000)])
            );
        }
    }
}
