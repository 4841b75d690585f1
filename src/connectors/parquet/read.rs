//! Reading: the footer on the coordinating thread (schema checked against the source's, row
//! groups pruned and dealt to workers), then each worker's row groups, only the columns the job
//! reads.

use super::prune;
use super::schema::{self, Column, Kind};
use crate::batch::Batch;
use crate::connectors::{ConnectorError, RowReject, SourceReader, Split, split};
use crate::plan::ir::SourceSpec;
use parquet::column::reader::ColumnReader;
use parquet::data_type::ByteArray;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use std::fs::File;
use std::path::Path;

/// Row groups are dealt to workers in pieces of at least this many compressed bytes (a piece
/// is a run of consecutive row groups of one file), so small row groups do not each cost a
/// footer read.
const MIN_PIECE_BYTES: u64 = 256 << 10;

fn open_file(path: &Path) -> Result<SerializedFileReader<File>, ConnectorError> {
    let place = path.display().to_string();
    let f = File::open(path)
        .map_err(|e| ConnectorError::new(&place, format!("cannot open input: {e}")))?;
    SerializedFileReader::new(f).map_err(|e| {
        ConnectorError::new(
            &place,
            format!("not a readable Parquet file (corrupt or truncated?): {e}"),
        )
    })
}

/// The file's column for each column of the source's schema (by name), checked: the same
/// flow type; a nullable file column for a non-nullable schema column is allowed (a null there
/// rejects the row).
fn match_schema(
    place: &str,
    meta: &ParquetMetaData,
    spec: &SourceSpec,
) -> Result<Vec<Column>, ConnectorError> {
    let cols = schema::columns(meta.file_metadata().schema_descr());
    let mut out = Vec::with_capacity(spec.schema.len());
    for f in &spec.schema.fields {
        let found = cols.iter().find(|c| match c {
            Ok(c) => c.name == f.name,
            Err(u) => u.name == f.name,
        });
        match found {
            None => {
                return Err(ConnectorError::new(
                    place,
                    format!("the file has no column `{}`", f.name),
                ));
            }
            Some(Err(u)) => {
                return Err(ConnectorError::new(
                    place,
                    format!(
                        "column `{}` has Parquet type {}, which flow cannot read",
                        u.name, u.what
                    ),
                ));
            }
            Some(Ok(c)) if c.kind.scalar() != f.ty.scalar => {
                return Err(ConnectorError::new(
                    place,
                    format!(
                        "column `{}` is {} in the file, but the schema says {}",
                        f.name,
                        c.kind.scalar().name(),
                        f.ty
                    ),
                ));
            }
            Some(Ok(c)) => out.push(c.clone()),
        }
    }
    Ok(out)
}

pub fn plan(spec: &SourceSpec, workers: usize) -> Result<Vec<Vec<Split>>, ConnectorError> {
    let pattern = spec
        .path
        .as_deref()
        .ok_or_else(|| ConnectorError::new(&spec.name, "parquet source needs a path"))?;
    let files = split::expand(pattern)?;
    let workers = workers.max(1);
    let mut pieces: Vec<Split> = Vec::new();
    for path in &files {
        let place = path.display().to_string();
        let reader = open_file(path)?;
        let meta = reader.metadata();
        let cols = match_schema(&place, meta, spec)?;
        let field_of_column: Vec<usize> = cols.iter().map(|c| c.leaf).collect();
        let column_of = |i: usize| {
            let c = cols.get(*spec.columns.get(i)?)?;
            Some((c.leaf, c.kind))
        };
        let groups = meta.row_groups();
        let total: u64 = groups
            .iter()
            .map(|g| g.compressed_size().max(0) as u64)
            .sum();
        let target = (total / (workers as u64 * 4)).max(MIN_PIECE_BYTES);
        let mut start: Option<(usize, u64)> = None;
        let close = |pieces: &mut Vec<Split>, from: usize, to: usize| {
            pieces.push(Split {
                path: Some(path.clone()),
                start: from as u64,
                end: to as u64,
                skip_header: false,
                field_of_column: field_of_column.clone(),
                fields: meta.file_metadata().schema_descr().num_columns(),
                align: false,
                end_guessed: false,
                snapshot: None,
            })
        };
        for (g, rg) in groups.iter().enumerate() {
            let skip = rg.num_rows() == 0
                || spec
                    .prune
                    .as_ref()
                    .is_some_and(|p| prune::skips(p, rg, &column_of));
            if skip {
                if let Some((from, _)) = start.take() {
                    close(&mut pieces, from, g);
                }
                continue;
            }
            let bytes = rg.compressed_size().max(0) as u64;
            let (from, acc) = start.unwrap_or((g, 0));
            if acc + bytes >= target {
                close(&mut pieces, from, g + 1);
                start = None;
            } else {
                start = Some((from, acc + bytes));
            }
        }
        if let Some((from, _)) = start {
            close(&mut pieces, from, groups.len());
        }
    }
    // Piece `k` to worker `k % workers`, as for every file source (the runtime's input order).
    let mut out: Vec<Vec<Split>> = vec![Vec::new(); workers];
    for (k, p) in pieces.into_iter().enumerate() {
        out[k % workers].push(p);
    }
    Ok(out)
}

/// A produced column: where it is in the file and how its values convert.
struct Col {
    leaf: usize,
    kind: Kind,
    /// The file column may hold nulls.
    max_def: i16,
    /// The schema column is nullable.
    nullable: bool,
    /// The job never reads it (`SourceSpec::unread`, only without projection pushdown): a
    /// value that does not convert is stored as null instead of rejecting the row.
    unread: bool,
    name: String,
    values: Values,
    defs: Vec<i16>,
    reader: Option<ColumnReader>,
}

enum Values {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<ByteArray>),
}

impl Values {
    fn clear(&mut self) {
        match self {
            Values::Bool(v) => v.clear(),
            Values::I32(v) => v.clear(),
            Values::I64(v) => v.clear(),
            Values::F32(v) => v.clear(),
            Values::F64(v) => v.clear(),
            Values::Bytes(v) => v.clear(),
        }
    }
}

pub struct ParquetReader {
    place: String,
    file: SerializedFileReader<File>,
    next_group: usize,
    end_group: usize,
    /// Rows left in the open row group.
    left: u64,
    cols: Vec<Col>,
    bytes: u64,
}

pub fn open(spec: &SourceSpec, split: &Split) -> Result<Box<dyn SourceReader>, ConnectorError> {
    let path = split
        .path
        .as_deref()
        .ok_or_else(|| ConnectorError::new(&spec.name, "parquet source needs a path"))?;
    let place = path.display().to_string();
    let file = open_file(path)?;
    // The file may have changed since it was planned: check again.
    let cols = match_schema(&place, file.metadata(), spec)?;
    let end_group = (split.end as usize).min(file.metadata().num_row_groups());
    let mut out = Vec::with_capacity(spec.columns.len());
    for &c in &spec.columns {
        let (col, field) = match (cols.get(c), spec.schema.fields.get(c)) {
            (Some(col), Some(field)) => (col, field),
            _ => {
                return Err(ConnectorError::new(
                    &place,
                    "internal: a produced column is outside the schema",
                ));
            }
        };
        let desc = file
            .metadata()
            .file_metadata()
            .schema_descr()
            .column(col.leaf);
        let values = match col.kind {
            Kind::Bool => Values::Bool(Vec::new()),
            Kind::I32 | Kind::U32 | Kind::Date => Values::I32(Vec::new()),
            Kind::I64 | Kind::TsMillis | Kind::TsMicros | Kind::TsNanos => Values::I64(Vec::new()),
            Kind::F32 => Values::F32(Vec::new()),
            Kind::F64 => Values::F64(Vec::new()),
            Kind::Str => Values::Bytes(Vec::new()),
        };
        out.push(Col {
            leaf: col.leaf,
            kind: col.kind,
            max_def: desc.max_def_level(),
            nullable: field.ty.nullable,
            unread: spec.unread.contains(&c),
            name: field.name.clone(),
            values,
            defs: Vec::new(),
            reader: None,
        });
    }
    Ok(Box::new(ParquetReader {
        place,
        file,
        next_group: split.start as usize,
        end_group,
        left: 0,
        cols: out,
        bytes: 0,
    }))
}

impl ParquetReader {
    fn error(&self, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::new(
            &self.place,
            format!("cannot read Parquet data (corrupt or truncated?): {e}"),
        )
    }

    /// Opens the next row group's column readers; false when there is none.
    fn next_group(&mut self) -> Result<bool, ConnectorError> {
        if self.next_group >= self.end_group {
            return Ok(false);
        }
        let g = self.next_group;
        self.next_group += 1;
        let rg = self.file.get_row_group(g).map_err(|e| self.error(e))?;
        let meta = rg.metadata();
        self.left = u64::try_from(meta.num_rows()).unwrap_or(0);
        for i in 0..self.cols.len() {
            let leaf = self.cols[i].leaf;
            self.bytes += meta
                .columns()
                .get(leaf)
                .map_or(0, |c| c.compressed_size().max(0) as u64);
            let r = rg.get_column_reader(leaf).map_err(|e| self.error(e))?;
            self.cols[i].reader = Some(r);
        }
        Ok(true)
    }
}

/// Reads up to `n` records of one column into its buffers; returns how many were read.
fn read_column(c: &mut Col, n: usize) -> parquet::errors::Result<usize> {
    c.values.clear();
    c.defs.clear();
    let defs = (c.max_def > 0).then_some(&mut c.defs);
    let Some(reader) = c.reader.as_mut() else {
        return Ok(0);
    };
    let (records, _, _) = match (reader, &mut c.values) {
        (ColumnReader::BoolColumnReader(r), Values::Bool(v)) => r.read_records(n, defs, None, v)?,
        (ColumnReader::Int32ColumnReader(r), Values::I32(v)) => r.read_records(n, defs, None, v)?,
        (ColumnReader::Int64ColumnReader(r), Values::I64(v)) => r.read_records(n, defs, None, v)?,
        (ColumnReader::FloatColumnReader(r), Values::F32(v)) => r.read_records(n, defs, None, v)?,
        (ColumnReader::DoubleColumnReader(r), Values::F64(v)) => {
            r.read_records(n, defs, None, v)?
        }
        (ColumnReader::ByteArrayColumnReader(r), Values::Bytes(v)) => {
            r.read_records(n, defs, None, v)?
        }
        _ => {
            return Err(parquet::errors::ParquetError::General(
                "column reader of an unexpected type".into(),
            ));
        }
    };
    Ok(records)
}

impl SourceReader for ParquetReader {
    fn read(
        &mut self,
        out: &mut Batch,
        max_rows: usize,
        rejects: &mut Vec<RowReject>,
    ) -> Result<bool, ConnectorError> {
        while self.left == 0 {
            if !self.next_group()? {
                return Ok(false);
            }
        }
        let n = (max_rows.max(1) as u64).min(self.left) as usize;
        let mut got = None;
        for i in 0..self.cols.len() {
            let r = read_column(&mut self.cols[i], n).map_err(|e| self.error(e))?;
            if r == 0 || got.is_some_and(|g| g != r) {
                return Err(self.error(format!(
                    "column `{}` ended early in a row group",
                    self.cols[i].name
                )));
            }
            got = Some(r);
        }
        // No produced column (only a count is needed): the rows still exist.
        let rows = got.unwrap_or(n);
        self.left -= rows as u64;
        let first = out.rows;
        for _ in 0..rows {
            out.push_row();
        }
        let mut bad: Vec<Option<(usize, String)>> = vec![None; rows];
        for (c, col) in self.cols.iter().enumerate() {
            let mut vi = 0usize;
            for (r, b) in bad.iter_mut().enumerate() {
                let present = col.max_def == 0 || col.defs.get(r) == Some(&col.max_def);
                if !present {
                    if !col.nullable && !col.unread && b.is_none() {
                        *b = Some((c, format!("null in non-nullable column `{}`", col.name)));
                    }
                    continue;
                }
                let ok = set(out, first + r, c, col, vi);
                vi += 1;
                if let Err(e) = ok {
                    if col.unread {
                        out.set_null(first + r, c);
                    } else if b.is_none() {
                        *b = Some((c, e));
                    }
                }
            }
        }
        if bad.iter().any(|b| b.is_some()) {
            // Move the good rows down over the rejected ones (row words only; their strings
            // stay in the arena until the batch is cleared).
            let stride = out.layout.stride;
            let mut keep = first;
            for (r, b) in bad.into_iter().enumerate() {
                match b {
                    None => {
                        let from = (first + r) * stride;
                        out.words.copy_within(from..from + stride, keep * stride);
                        keep += 1;
                    }
                    Some((c, reason)) => rejects.push(RowReject {
                        file: self.place.clone(),
                        line: None,
                        column: Some((c + 1, self.cols[c].name.clone())),
                        reason,
                        raw: String::new(),
                    }),
                }
            }
            while out.rows > keep {
                out.pop_row();
            }
        }
        Ok(true)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

/// Stores value `vi` of `col`'s buffer into `out[row][c]`.
fn set(out: &mut Batch, row: usize, c: usize, col: &Col, vi: usize) -> Result<(), String> {
    let missing = || "fewer values than rows in a column chunk".to_string();
    match (&col.values, col.kind) {
        (Values::Bool(v), _) => out.set_bool(row, c, *v.get(vi).ok_or_else(missing)?),
        (Values::I32(v), Kind::U32) => {
            out.set_int(row, c, i64::from(*v.get(vi).ok_or_else(missing)? as u32))
        }
        (Values::I32(v), Kind::Date) => out.set_int(
            row,
            c,
            Kind::Date.micros(i64::from(*v.get(vi).ok_or_else(missing)?)),
        ),
        (Values::I32(v), _) => out.set_int(row, c, i64::from(*v.get(vi).ok_or_else(missing)?)),
        (Values::I64(v), k) => out.set_int(row, c, k.micros(*v.get(vi).ok_or_else(missing)?)),
        (Values::F32(v), _) => out.set_float(row, c, f64::from(*v.get(vi).ok_or_else(missing)?)),
        (Values::F64(v), _) => out.set_float(row, c, *v.get(vi).ok_or_else(missing)?),
        (Values::Bytes(v), _) => {
            let b = v.get(vi).ok_or_else(missing)?.data();
            match std::str::from_utf8(b) {
                Ok(s) => out.set_str(row, c, s),
                Err(e) => {
                    return Err(format!(
                        "invalid UTF-8 in a str column (byte {})",
                        e.valid_up_to() + 1
                    ));
                }
            }
        }
    }
    Ok(())
}
