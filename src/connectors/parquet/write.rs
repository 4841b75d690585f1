//! Writing: rows are buffered per column up to a row group's bound (rows or bytes, whichever
//! comes first), then encoded as one row group; the footer is written by `finish`. Memory is
//! bounded by one row group's buffers plus the encoder's current page.

use super::schema;
use crate::batch::Batch;
use crate::connectors::RowWriter;
use crate::types::{RowType, Scalar};
use bytes::Bytes;
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use std::io::{self, Write};
use std::sync::Arc;

/// A row group ends after this many rows…
pub const ROW_GROUP_ROWS: usize = 1 << 17;
/// …or once its buffered values hold this many bytes.
pub const ROW_GROUP_BYTES: usize = 64 << 20;

enum Buf {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Bool(Vec<bool>),
    /// The bytes of every string of the row group, and where each ends.
    Str(Vec<u8>, Vec<usize>),
}

struct Column {
    nullable: bool,
    scalar: Scalar,
    values: Buf,
    defs: Vec<i16>,
}

pub struct ParquetWriter {
    file: Option<SerializedFileWriter<Box<dyn Write + Send>>>,
    cols: Vec<Column>,
    rows: usize,
    bytes: usize,
}

fn pq(e: parquet::errors::ParquetError) -> io::Error {
    io::Error::other(e.to_string())
}

/// The codec named by the `compression` option.
pub fn compression(name: Option<&str>) -> Result<Compression, String> {
    match name.unwrap_or("snappy") {
        "snappy" => Ok(Compression::SNAPPY),
        "zstd" => Ok(Compression::ZSTD(ZstdLevel::default())),
        "none" => Ok(Compression::UNCOMPRESSED),
        other => Err(format!(
            "unknown compression {other:?}: expected \"snappy\", \"zstd\" or \"none\""
        )),
    }
}

impl ParquetWriter {
    pub fn new(
        out: Box<dyn Write + Send>,
        row: &RowType,
        codec: Compression,
    ) -> Result<ParquetWriter, String> {
        let schema = schema::write_schema(row).map_err(|e| e.to_string())?;
        let props = WriterProperties::builder()
            .set_compression(codec)
            .set_created_by(format!("flow {}", env!("CARGO_PKG_VERSION")))
            .build();
        let file =
            SerializedFileWriter::new(out, schema, Arc::new(props)).map_err(|e| e.to_string())?;
        let cols = row
            .fields
            .iter()
            .map(|f| Column {
                nullable: f.ty.nullable,
                scalar: f.ty.scalar,
                values: match f.ty.scalar {
                    Scalar::Int | Scalar::Timestamp => Buf::Int(Vec::new()),
                    Scalar::Float => Buf::Float(Vec::new()),
                    Scalar::Bool => Buf::Bool(Vec::new()),
                    Scalar::Str | Scalar::Null => Buf::Str(Vec::new(), Vec::new()),
                },
                defs: Vec::new(),
            })
            .collect();
        Ok(ParquetWriter {
            file: Some(file),
            cols,
            rows: 0,
            bytes: 0,
        })
    }

    fn flush_group(&mut self) -> io::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("the Parquet writer is closed"));
        };
        let mut rg = file.next_row_group().map_err(pq)?;
        for c in &mut self.cols {
            let mut w = rg
                .next_column()
                .map_err(pq)?
                .ok_or_else(|| io::Error::other("more columns than the schema"))?;
            let defs = c.nullable.then_some(&c.defs[..]);
            match &mut c.values {
                Buf::Int(v) => w.typed::<Int64Type>().write_batch(v, defs, None),
                Buf::Float(v) => w.typed::<DoubleType>().write_batch(v, defs, None),
                Buf::Bool(v) => w.typed::<BoolType>().write_batch(v, defs, None),
                Buf::Str(arena, ends) => {
                    // One shared buffer; each value is a slice of it (no copy per string).
                    let all = Bytes::from(std::mem::take(arena));
                    let mut start = 0;
                    let values: Vec<ByteArray> = ends
                        .iter()
                        .map(|&end| {
                            let v = ByteArray::from(all.slice(start..end));
                            start = end;
                            v
                        })
                        .collect();
                    w.typed::<ByteArrayType>().write_batch(&values, defs, None)
                }
            }
            .map_err(pq)?;
            w.close().map_err(pq)?;
            match &mut c.values {
                Buf::Int(v) => v.clear(),
                Buf::Float(v) => v.clear(),
                Buf::Bool(v) => v.clear(),
                Buf::Str(arena, ends) => {
                    arena.clear();
                    ends.clear();
                }
            }
            c.defs.clear();
        }
        rg.close().map_err(pq)?;
        self.rows = 0;
        self.bytes = 0;
        Ok(())
    }
}

impl RowWriter for ParquetWriter {
    fn write_batch(&mut self, batch: &Batch) -> io::Result<()> {
        for r in 0..batch.rows {
            for (i, c) in self.cols.iter_mut().enumerate() {
                let null = batch.is_null(r, i);
                if c.nullable {
                    c.defs.push(if null { 0 } else { 1 });
                }
                if null {
                    if !c.nullable {
                        return Err(io::Error::other(format!(
                            "a null in non-nullable column {}",
                            i + 1
                        )));
                    }
                    continue;
                }
                match (&mut c.values, c.scalar) {
                    (Buf::Int(v), _) => v.push(batch.get_int(r, i)),
                    (Buf::Float(v), _) => v.push(batch.get_float(r, i)),
                    (Buf::Bool(v), _) => v.push(batch.get_bool(r, i)),
                    (Buf::Str(arena, ends), _) => {
                        let s = batch.get_str_bytes(r, i);
                        self.bytes += s.len();
                        arena.extend_from_slice(s);
                        ends.push(arena.len());
                    }
                }
                self.bytes += 8;
            }
            self.rows += 1;
            if self.rows >= ROW_GROUP_ROWS || self.bytes >= ROW_GROUP_BYTES {
                self.flush_group()?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.flush_group()?;
        match self.file.take() {
            Some(f) => f.close().map(|_| ()).map_err(pq),
            None => Ok(()),
        }
    }
}
