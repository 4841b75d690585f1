//! Tab-separated values: the CSV reader and writer with a tab delimiter (quoting as in CSV, so
//! a field holding a tab or a newline round-trips). `header` as for CSV; no `delimiter` option.
//!
//! This connector is also the proof that a connector is self-contained: it describes itself
//! here, and is registered with one line in `connectors::Registry::builtin` — nothing in the
//! checker knows it.

use super::csv::{CsvSink, CsvSource};
use super::{
    ConnectorError, RowWriter, SinkConnector, SinkTarget, SourceConnector, SourceReader, Split,
};
use crate::catalog::{Argument, ConnectorInfo, OptionSpec};
use crate::job::Options;
use crate::plan::ir::{SinkSpec, SourceSpec};
use crate::types::{RowType, Value};
use std::io::Write;

/// CSV's `header` option (the delimiter is fixed).
fn options() -> Vec<OptionSpec> {
    super::csv::describe::options()
        .into_iter()
        .filter(|o| o.name == "header")
        .collect()
}

/// The options with the delimiter fixed to a tab, for the CSV implementation underneath.
fn tabbed(options: &Options) -> Options {
    let mut o = options.clone();
    o.insert("delimiter".into(), Value::Str("\t".into()));
    o
}

fn tabbed_source(spec: &SourceSpec) -> SourceSpec {
    SourceSpec {
        options: tabbed(&spec.options),
        ..spec.clone()
    }
}

fn tabbed_sink(spec: &SinkSpec) -> SinkSpec {
    SinkSpec {
        options: tabbed(&spec.options),
        ..spec.clone()
    }
}

pub struct TsvSource;

impl SourceConnector for TsvSource {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            name: "tsv",
            argument: Argument::Path,
            reads: "a file",
            options: options(),
            one_of: Vec::new(),
            describes: false,
            doc: "reads tab-separated files (a path or a glob), split across workers",
        }
    }

    fn infer(&self, file: &str, options: &Options) -> Result<RowType, String> {
        CsvSource.infer(file, &tabbed(options))
    }

    fn header(&self, file: &str, options: &Options) -> Result<Option<Vec<String>>, String> {
        CsvSource.header(file, &tabbed(options))
    }

    fn plan(&self, spec: &SourceSpec, workers: usize) -> Result<Vec<Vec<Split>>, ConnectorError> {
        CsvSource.plan(&tabbed_source(spec), workers)
    }

    fn open(
        &self,
        spec: &SourceSpec,
        split: &Split,
    ) -> Result<Box<dyn SourceReader>, ConnectorError> {
        CsvSource.open(&tabbed_source(spec), split)
    }

    fn guess_holds(&self, spec: &SourceSpec, split: &Split) -> Result<bool, ConnectorError> {
        CsvSource.guess_holds(&tabbed_source(spec), split)
    }
}

pub struct TsvSink;

impl SinkConnector for TsvSink {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            name: "tsv",
            argument: Argument::Path,
            reads: "",
            options: options(),
            one_of: Vec::new(),
            describes: false,
            doc: "writes a tab-separated file atomically",
        }
    }

    fn target(&self, _spec: &SinkSpec) -> SinkTarget {
        SinkTarget::File
    }

    fn validate(&self, spec: &SinkSpec) -> Result<(), ConnectorError> {
        CsvSink.validate(&tabbed_sink(spec))
    }

    fn writer(
        &self,
        spec: &SinkSpec,
        row: &RowType,
        out: Box<dyn Write + Send>,
        first: bool,
    ) -> Result<Box<dyn RowWriter>, ConnectorError> {
        CsvSink.writer(&tabbed_sink(spec), row, out, first)
    }
}
