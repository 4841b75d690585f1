//! In-memory connectors for the REPL and `flow test`: `__rows()`, a source whose rows the caller
//! gives (by the source's name), and `__collect("key")`, a sink that keeps the rows it receives
//! (by key). They are registered only in the registries of `memory_registry` (never in
//! `Registry::builtin`, so scripts run by `flow run` cannot name them); the rows go through the
//! real runtime like any file's.

use super::{
    ConnectorError, Registry, RowReject, RowWriter, SinkConnector, SinkTarget, SourceConnector,
    SourceReader, Split,
};
use crate::batch::Batch;
use crate::catalog::{Argument, ConnectorInfo};
use crate::plan::ir::{SinkSpec, SourceSpec};
use crate::types::{RowType, Value};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The name of the in-memory source connector.
pub const ROWS: &str = "__rows";
/// The name of the collecting sink connector.
pub const COLLECT: &str = "__collect";

/// Rows with their row type.
pub type Rows = (RowType, Vec<Vec<Value>>);

/// Rows in and out of in-memory runs, shared by the connectors and their caller.
#[derive(Clone, Default)]
pub struct Store {
    /// Input rows by source name, in the source schema's column order.
    pub inputs: Arc<Mutex<BTreeMap<String, Vec<Vec<Value>>>>>,
    /// Collected rows by sink key (the `__collect` path), with their row type.
    pub outputs: Arc<Mutex<BTreeMap<String, Rows>>>,
    /// Set (by a Ctrl-C handler) to stop a running job: the next batch fails it.
    pub cancel: Arc<AtomicBool>,
}

impl Store {
    pub fn set_input(&self, source: &str, rows: Vec<Vec<Value>>) {
        if let Ok(mut m) = self.inputs.lock() {
            m.insert(source.to_string(), rows);
        }
    }
    /// Removes and returns what the sink `key` collected.
    pub fn take_output(&self, key: &str) -> Option<Rows> {
        self.outputs.lock().ok()?.remove(key)
    }
    pub fn clear(&self) {
        if let Ok(mut m) = self.inputs.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.outputs.lock() {
            m.clear();
        }
        self.cancel.store(false, Ordering::SeqCst);
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// The builtin connectors plus `__rows` and `__collect` on `store`.
pub fn memory_registry(store: &Store) -> Registry {
    let mut r = Registry::builtin();
    r.add_source(Arc::new(RowsSource {
        store: store.clone(),
    }));
    r.add_sink(Arc::new(CollectSink {
        store: store.clone(),
    }));
    r
}

struct RowsSource {
    store: Store,
}

impl SourceConnector for RowsSource {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            name: ROWS,
            argument: Argument::None,
            reads: "rows given in memory",
            options: Vec::new(),
            one_of: Vec::new(),
            describes: false,
            doc: "rows given by the REPL or a test (internal)",
        }
    }
    fn plan(&self, spec: &SourceSpec, workers: usize) -> Result<Vec<Vec<Split>>, ConnectorError> {
        Ok(Split::whole_on_first(
            workers,
            (0..spec.schema.len()).collect(),
        ))
    }
    fn open(
        &self,
        spec: &SourceSpec,
        _split: &Split,
    ) -> Result<Box<dyn SourceReader>, ConnectorError> {
        let rows = self
            .store
            .inputs
            .lock()
            .ok()
            .and_then(|m| m.get(&spec.name).cloned())
            .unwrap_or_default();
        Ok(Box::new(RowsReader {
            rows,
            next: 0,
            columns: spec.columns.clone(),
            store: self.store.clone(),
        }))
    }
}

struct RowsReader {
    rows: Vec<Vec<Value>>,
    next: usize,
    columns: Vec<usize>,
    store: Store,
}

impl SourceReader for RowsReader {
    fn read(
        &mut self,
        out: &mut Batch,
        max_rows: usize,
        _rejects: &mut Vec<RowReject>,
    ) -> Result<bool, ConnectorError> {
        if self.store.cancelled() {
            return Err(ConnectorError::new("<rows>", "cancelled"));
        }
        let mut n = 0;
        while n < max_rows.max(1) && self.next < self.rows.len() {
            let row = &self.rows[self.next];
            let r = out.push_row();
            for (c, &col) in self.columns.iter().enumerate() {
                out.set_value(r, c, row.get(col).unwrap_or(&Value::Null));
            }
            self.next += 1;
            n += 1;
        }
        Ok(self.next < self.rows.len())
    }
    fn bytes_read(&self) -> u64 {
        0
    }
}

struct CollectSink {
    store: Store,
}

impl SinkConnector for CollectSink {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            name: COLLECT,
            argument: Argument::Path,
            reads: "",
            options: Vec::new(),
            one_of: Vec::new(),
            describes: false,
            doc: "keeps the rows in memory under a key (internal: REPL previews and tests)",
        }
    }
    fn target(&self, _spec: &SinkSpec) -> SinkTarget {
        // One writer (worker 0) that every row is routed to; nothing is written to a file.
        SinkTarget::Stdout
    }
    fn validate(&self, _spec: &SinkSpec) -> Result<(), ConnectorError> {
        Ok(())
    }
    fn writer(
        &self,
        spec: &SinkSpec,
        row: &RowType,
        _out: Box<dyn Write + Send>,
        _first: bool,
    ) -> Result<Box<dyn RowWriter>, ConnectorError> {
        let key = spec.path.clone().unwrap_or_default();
        if let Ok(mut m) = self.store.outputs.lock() {
            m.insert(key.clone(), (row.clone(), Vec::new()));
        }
        Ok(Box::new(Collector {
            key,
            row: row.clone(),
            store: self.store.clone(),
        }))
    }
}

struct Collector {
    key: String,
    row: RowType,
    store: Store,
}

impl RowWriter for Collector {
    fn write_batch(&mut self, batch: &Batch) -> io::Result<()> {
        if self.store.cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        let rows = batch.to_values(&self.row);
        let mut m = self
            .store
            .outputs
            .lock()
            .map_err(|_| io::Error::other("collector poisoned"))?;
        m.entry(self.key.clone())
            .or_insert_with(|| (self.row.clone(), Vec::new()))
            .1
            .extend(rows);
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}
