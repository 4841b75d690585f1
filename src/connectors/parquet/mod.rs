//! Parquet files, on the `parquet` crate's column API (no Arrow; snappy and zstd codecs).
//!
//! Source: `parquet("data/*.parquet")`. The schema comes from the first file's footer at check
//! time (`schema.rs` maps the types; an unsupported column is reported there, naming it); a
//! declared schema picks columns by name. Only the columns the job reads are decoded
//! (`SourceSpec::columns`). Row groups are the splits: runs of consecutive row groups are dealt
//! to workers in order, and a row group whose min/max statistics show that the pushed-down
//! filter (`SourceSpec::prune`) drops every row is not read at all (`prune.rs`).
//!
//! Sink: `sink parquet("out.parquet", compression: "zstd")`. One file, written atomically by a
//! single writer (worker 0, which receives every row: `SinkTarget::OneFile`), in row groups of
//! bounded size (`write.rs`).

mod prune;
mod read;
pub mod schema;
mod write;

use super::{
    ConnectorError, RowWriter, SinkConnector, SinkTarget, SourceConnector, SourceReader, Split,
    opt_str,
};
use crate::catalog::{Argument, ConnectorInfo, OptionKind, OptionSpec};
use crate::job::Options;
use crate::plan::ir::{SinkSpec, SourceSpec};
use crate::types::{RowType, Value};
use parquet::file::reader::{FileReader, SerializedFileReader};
use std::io::Write;

pub use write::{ROW_GROUP_BYTES, ROW_GROUP_ROWS};

/// The footer of `file`, as the checker's error text on failure.
fn footer(file: &str) -> Result<SerializedFileReader<std::fs::File>, String> {
    let f = std::fs::File::open(file).map_err(|e| e.to_string())?;
    SerializedFileReader::new(f)
        .map_err(|e| format!("not a readable Parquet file (corrupt or truncated?): {e}"))
}

pub struct ParquetSource;

impl SourceConnector for ParquetSource {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            name: "parquet",
            argument: Argument::Path,
            reads: "a file",
            options: vec![],
            one_of: Vec::new(),
            describes: false,
            doc: "reads Parquet files (a path or a glob): only the columns used; row groups split \
                  across workers and skipped by their statistics when a filter allows",
        }
    }

    fn infer(&self, file: &str, _options: &Options) -> Result<RowType, String> {
        let r = footer(file)?;
        schema::row_type(r.metadata().file_metadata().schema_descr()).map_err(|u| {
            format!(
                "column `{}` has Parquet type {}, which flow cannot read (declare a schema \
                 without it to read the other columns)",
                u.name, u.what
            )
        })
    }

    fn header(&self, file: &str, _options: &Options) -> Result<Option<Vec<String>>, String> {
        let r = footer(file)?;
        Ok(Some(
            schema::columns(r.metadata().file_metadata().schema_descr())
                .into_iter()
                .map(|c| match c {
                    Ok(c) => c.name,
                    Err(u) => u.name,
                })
                .collect(),
        ))
    }

    fn estimate_rows(&self, files: &[std::path::PathBuf], _options: &Options) -> Option<u64> {
        // Exact: the row counts in the footers.
        files
            .iter()
            .map(|f| {
                let r = footer(&f.to_string_lossy()).ok()?;
                u64::try_from(r.metadata().file_metadata().num_rows()).ok()
            })
            .sum()
    }

    fn plan(&self, spec: &SourceSpec, workers: usize) -> Result<Vec<Vec<Split>>, ConnectorError> {
        read::plan(spec, workers)
    }

    fn open(
        &self,
        spec: &SourceSpec,
        split: &Split,
    ) -> Result<Box<dyn SourceReader>, ConnectorError> {
        read::open(spec, split)
    }
}

pub struct ParquetSink;

impl SinkConnector for ParquetSink {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            name: "parquet",
            argument: Argument::Path,
            reads: "",
            options: vec![
                OptionSpec::new(
                    "compression",
                    OptionKind::OneOf(&["snappy", "zstd", "none"]),
                    "the codec of the column chunks (default \"snappy\")",
                )
                .default(Value::Str("snappy".into())),
            ],
            one_of: Vec::new(),
            describes: false,
            doc: "writes one Parquet file atomically, in row groups of bounded size",
        }
    }

    fn target(&self, _spec: &SinkSpec) -> SinkTarget {
        SinkTarget::OneFile
    }

    fn validate(&self, spec: &SinkSpec) -> Result<(), ConnectorError> {
        let place = spec.path.clone().unwrap_or_default();
        write::compression(opt_str(&spec.options, "compression"))
            .map(|_| ())
            .map_err(|e| ConnectorError::new(place, e))
    }

    fn writer(
        &self,
        spec: &SinkSpec,
        row: &RowType,
        out: Box<dyn Write + Send>,
        _first: bool,
    ) -> Result<Box<dyn RowWriter>, ConnectorError> {
        let place = spec.path.clone().unwrap_or_default();
        let codec = write::compression(opt_str(&spec.options, "compression"))
            .map_err(|e| ConnectorError::new(&place, e))?;
        write::ParquetWriter::new(out, row, codec)
            .map(|w| Box::new(w) as Box<dyn RowWriter>)
            .map_err(|e| ConnectorError::new(&place, e))
    }
}
