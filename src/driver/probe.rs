//! The probe the checker uses: file existence checks here; headers and schema inference asked
//! of the connector (each implements its own, e.g. `connectors::csv::infer`), and so are the
//! descriptions of inputs and targets that are not files (a database's catalog:
//! `connectors::postgres::describe`) — the checker itself does no I/O.

use crate::catalog::{Description, Refusal};
use crate::check::Probe;
use crate::connectors::{Registry, SourceConnector};
use crate::diagnostics::Code;
use crate::job::Options;
use crate::types::RowType;
use std::sync::Arc;

/// Probes real files; the format-specific parts (header, inference) are asked of the connector
/// registered under the source's name.
pub struct FsProbe {
    pub registry: Registry,
}

impl FsProbe {
    pub fn new(registry: Registry) -> FsProbe {
        FsProbe { registry }
    }

    fn connector(&self, name: &str) -> Result<Arc<dyn SourceConnector>, String> {
        self.registry
            .source(name)
            .ok_or_else(|| format!("no source connector `{name}` is registered"))
    }
}

fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// The first existing file of a path or glob.
fn first_file(path: &str) -> Option<String> {
    if !is_glob(path) {
        return std::path::Path::new(path)
            .is_file()
            .then(|| path.to_string());
    }
    let mut matches: Vec<String> = glob::glob(path)
        .ok()?
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    matches.sort();
    matches.into_iter().next()
}

impl Probe for FsProbe {
    fn exists(&self, path: &str) -> bool {
        first_file(path).is_some()
    }

    fn why_missing(&self, path: &str) -> String {
        if is_glob(path) {
            return "matches no file".into();
        }
        match std::fs::metadata(path) {
            Err(_) => "does not exist".into(),
            Ok(m) if m.is_dir() => "is a directory, not a file".into(),
            Ok(_) => "is not a regular file (a FIFO, socket or device); flow reads regular files, or standard input with `stdin()`".into(),
        }
    }

    fn header(
        &self,
        connector: &str,
        path: &str,
        options: &Options,
    ) -> Result<Option<Vec<String>>, String> {
        let file = first_file(path).ok_or_else(|| "no such file".to_string())?;
        self.connector(connector)?.header(&file, options)
    }

    fn infer(&self, connector: &str, path: &str, options: &Options) -> Result<RowType, String> {
        let file = first_file(path).ok_or_else(|| "no such file".to_string())?;
        self.connector(connector)?.infer(&file, options)
    }

    fn describe(&self, connector: &str, options: &Options) -> Result<Description, Refusal> {
        let c = self
            .connector(connector)
            .map_err(|e| Refusal::new(Code::UnknownConnector, None, e, "not registered"))?;
        c.describe(options)
    }

    fn accept_sink(
        &self,
        connector: &str,
        options: &Options,
        row: &RowType,
    ) -> Result<(), Refusal> {
        match self.registry.sink(connector) {
            Some(c) => c.accept(options, row),
            None => Err(Refusal::new(
                Code::UnknownConnector,
                None,
                format!("no sink connector `{connector}` is registered"),
                "not registered",
            )),
        }
    }

    fn rows(&self, connector: &str, path: &str, options: &Options) -> Option<u64> {
        let files = crate::connectors::split::expand(path).ok()?;
        self.connector(connector)
            .ok()?
            .estimate_rows(&files, options)
    }
}
