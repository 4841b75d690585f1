//! Standard input and standard output. Standard input is one split, read by worker 0, as CSV
//! (`format: "csv"`, the default; `header`, `delimiter`) or JSON lines (`format: "jsonl"`).
//! Standard output is written by worker 0 only (every row is routed there); it is a stream, so
//! it is not atomic: a failing job may have printed some rows already.

mod describe;

use super::csv::{CsvReader, CsvWriter};
use super::jsonl::{JsonlReader, JsonlWriter};
use super::{
    ConnectorError, RowWriter, SinkConnector, SinkTarget, SourceConnector, SourceReader, Split,
    opt_bool, opt_delimiter, opt_str,
};
use crate::job::Options;
use crate::plan::ir::{SinkSpec, SourceSpec};
use crate::types::RowType;
use std::io::Write;

fn format(opts: &Options, place: &str) -> Result<&'static str, ConnectorError> {
    match opt_str(opts, "format") {
        None | Some("csv") => Ok("csv"),
        Some("jsonl") => Ok("jsonl"),
        Some(f) => Err(ConnectorError::new(
            place,
            format!("unknown format {f:?} (expected \"csv\" or \"jsonl\")"),
        )),
    }
}

pub struct StdinSource;

impl SourceConnector for StdinSource {
    fn info(&self) -> crate::catalog::ConnectorInfo {
        describe::source()
    }

    fn plan(&self, spec: &SourceSpec, workers: usize) -> Result<Vec<Vec<Split>>, ConnectorError> {
        format(&spec.options, "<stdin>")?;
        opt_delimiter(&spec.options).map_err(|e| ConnectorError::new("<stdin>", e))?;
        let mut out = vec![Vec::new(); workers.max(1)];
        let n = spec.schema.len();
        out[0].push(Split {
            path: None,
            start: 0,
            end: u64::MAX,
            skip_header: format(&spec.options, "<stdin>")? == "csv"
                && opt_bool(&spec.options, "header", true),
            field_of_column: (0..n).collect(),
            fields: n,
            align: false,
            end_guessed: false,
            snapshot: None,
        });
        Ok(out)
    }

    fn open(
        &self,
        spec: &SourceSpec,
        split: &Split,
    ) -> Result<Box<dyn SourceReader>, ConnectorError> {
        let input = Box::new(std::io::stdin());
        if format(&spec.options, "<stdin>")? == "jsonl" {
            return Ok(Box::new(JsonlReader::new(
                input,
                "<stdin>".into(),
                None,
                spec,
                split,
            )));
        }
        let delimiter =
            opt_delimiter(&spec.options).map_err(|e| ConnectorError::new("<stdin>", e))?;
        let mut r = CsvReader::new(input, "<stdin>".into(), None, spec, split, delimiter);
        r.map_from_header = split.skip_header;
        Ok(Box::new(r))
    }
}

pub struct StdoutSink;

impl SinkConnector for StdoutSink {
    fn info(&self) -> crate::catalog::ConnectorInfo {
        describe::sink()
    }

    fn target(&self, _spec: &SinkSpec) -> SinkTarget {
        SinkTarget::Stdout
    }
    fn validate(&self, spec: &SinkSpec) -> Result<(), ConnectorError> {
        format(&spec.options, &spec.origin)?;
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
        if format(&spec.options, &spec.origin)? == "jsonl" {
            return Ok(Box::new(JsonlWriter::new(out, row)));
        }
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
