//! PostgreSQL tables and queries (the `postgres` crate, synchronous, no TLS).
//!
//! Source: `postgres(url, table: "t")` or `postgres(url, query: "select …")`. The schema comes
//! from the server's catalog when the script is checked (`describe.rs`, asked through the
//! driver's probe: columns, types, NOT NULL; a query is prepared and its result described); a
//! declared schema picks columns by name and must agree with it. At run time the needed
//! columns are read with `COPY (SELECT …) TO STDOUT (FORMAT binary)` (`read.rs`): a table by
//! every worker of the source, each a range of its blocks in one exported snapshot; a query
//! (or a small table) by one worker.
//!
//! (`write:`, since `mode` is a keyword.) Sink: `sink postgres(url, table: "t", write: "append" | "replace" | "create")`, loaded with
//! `COPY … FROM STDIN` in one transaction committed only when the whole job succeeded
//! (`write.rs`, `SinkTarget::Transaction`).
//!
//! The connection (`client.rs`) has deadlines on connecting, on the socket and on every
//! statement, and never shows the password.

pub mod client;
pub mod describe;
mod read;
mod write;

use super::{
    ConnectorError, PendingOutput, RowWriter, SinkConnector, SinkTarget, SourceConnector,
    SourceReader, Split,
};
use crate::catalog::{ConnectorInfo, Description, Refusal};
use crate::job::Options;
use crate::plan::ir::{SinkSpec, SourceSpec};
use crate::types::RowType;
use std::io::Write;

/// An option only the placement sets (`sql::place`, a stage chain pushed into the query): SQL
/// statements run on the reader's connection before its `COPY` (the SQL dialect's helper
/// functions in `pg_temp`). Not in the connector's description, so no script can set it.
pub const SETUP_OPTION: &str = "__setup";

pub struct PostgresSource;

impl SourceConnector for PostgresSource {
    fn info(&self) -> ConnectorInfo {
        describe::source()
    }

    fn describe(&self, options: &Options) -> Result<Description, Refusal> {
        describe::describe(options)
    }

    /// A table big enough: one block range per worker, all in one snapshot (`read.rs`);
    /// otherwise (a query, a small table) one split, read by the first worker of the source.
    fn plan(&self, spec: &SourceSpec, workers: usize) -> Result<Vec<Vec<Split>>, ConnectorError> {
        let whole = || Ok(Split::whole_on_first(workers, spec.columns.clone()));
        let Some(table) = crate::connectors::opt_str(&spec.options, "table") else {
            return whole();
        };
        if workers < 2 {
            return whole();
        }
        let ranges = read::plan_table(spec, table, workers)
            .map_err(|e| ConnectorError::new(read::place(spec), e))?;
        let Some(ranges) = ranges else {
            return whole();
        };
        Ok(ranges
            .into_iter()
            .map(|(snapshot, start, end)| {
                vec![Split {
                    path: None,
                    start,
                    end,
                    skip_header: false,
                    fields: spec.columns.len(),
                    field_of_column: spec.columns.clone(),
                    align: false,
                    end_guessed: false,
                    snapshot: Some(snapshot),
                }]
            })
            .collect())
    }

    fn open(
        &self,
        spec: &SourceSpec,
        split: &Split,
    ) -> Result<Box<dyn SourceReader>, ConnectorError> {
        read::open(spec, split)
    }
}

pub struct PostgresSink;

impl SinkConnector for PostgresSink {
    fn info(&self) -> ConnectorInfo {
        describe::sink()
    }

    fn target(&self, _spec: &SinkSpec) -> SinkTarget {
        SinkTarget::Transaction
    }

    fn validate(&self, _spec: &SinkSpec) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn accept(&self, options: &Options, row: &RowType) -> Result<(), Refusal> {
        let mut client = describe::connect_checked(options)?;
        describe::accept(&mut client, options, row).map(|_| ())
    }

    fn begin(
        &self,
        spec: &SinkSpec,
        row: &RowType,
    ) -> Result<Box<dyn PendingOutput>, ConnectorError> {
        write::begin(spec, row)
    }

    fn load(
        &self,
        spec: &SinkSpec,
        row: &RowType,
        token: &str,
    ) -> Result<Box<dyn RowWriter>, ConnectorError> {
        write::load(spec, row, token).map(|w| Box::new(w) as Box<dyn RowWriter>)
    }

    fn writer(
        &self,
        spec: &SinkSpec,
        _row: &RowType,
        _out: Box<dyn Write + Send>,
        _first: bool,
    ) -> Result<Box<dyn RowWriter>, ConnectorError> {
        Err(ConnectorError::new(
            write::place(spec),
            "a PostgreSQL table is loaded in a transaction, not written as a file",
        ))
    }
}
