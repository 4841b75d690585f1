//! The probe the checker uses: file existence checks here; headers and schema inference asked
//! of the connector (each implements its own, e.g. `connectors::csv::infer`), and so are the
//! descriptions of inputs and targets that are not files (a database's catalog:
//! `connectors::postgres::describe`) — the checker itself does no I/O.
//!
//! A language server or a REPL re-checks on every change: there, [`cache_descriptions`] keeps
//! each database description and sink fit (keyed by connector and options: URL and table or
//! query) for a short time — [`CACHE_OK`] for an answer, [`CACHE_REFUSED`] for a refusal or an
//! unreachable server —, so that typing does not connect to the server on each keystroke, and
//! a dead server costs one connect timeout per [`CACHE_REFUSED`], not one per check. The
//! command line (one check per process) does not cache.

use crate::catalog::{Description, Refusal};
use crate::check::Probe;
use crate::connectors::{Registry, SourceConnector};
use crate::diagnostics::Code;
use crate::job::Options;
use crate::types::RowType;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a description or a sink's fit is reused once the cache is on.
pub const CACHE_OK: Duration = Duration::from_secs(30);
/// How long a refusal (an unknown table, an unreachable server) is reused.
pub const CACHE_REFUSED: Duration = Duration::from_secs(5);

type Entry<T> = (Instant, Result<T, Refusal>);

#[derive(Default)]
struct Cache {
    describe: HashMap<String, Entry<Description>>,
    accept: HashMap<String, Entry<()>>,
}

/// `None` until [`cache_descriptions`] turns the cache on for this process.
static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

fn cache() -> MutexGuard<'static, Option<Cache>> {
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Turns on the description cache for the rest of this process (the LSP, the REPL).
pub fn cache_descriptions() {
    cache().get_or_insert_with(Cache::default);
}

fn fresh<T: Clone>(e: &Entry<T>) -> Option<Result<T, Refusal>> {
    let ttl = if e.1.is_ok() { CACHE_OK } else { CACHE_REFUSED };
    (e.0.elapsed() < ttl).then(|| e.1.clone())
}

/// `ask()`, or its answer of less than a TTL ago under `key` of the `table` chosen by `pick`;
/// the lock is not held while asking (a connect can take its timeout).
fn cached<T: Clone>(
    pick: fn(&mut Cache) -> &mut HashMap<String, Entry<T>>,
    key: String,
    ask: impl FnOnce() -> Result<T, Refusal>,
) -> Result<T, Refusal> {
    match cache().as_mut() {
        None => return ask(),
        Some(c) => {
            let table = pick(c);
            table.retain(|_, e| fresh(e).is_some());
            if let Some(hit) = table.get(&key).and_then(fresh) {
                return hit;
            }
        }
    }
    let answer = ask();
    if let Some(c) = cache().as_mut() {
        pick(c).insert(key, (Instant::now(), answer.clone()));
    }
    answer
}

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
        cached(
            |c| &mut c.describe,
            format!("{connector}\0{options:?}"),
            || c.describe(options),
        )
    }

    fn accept_sink(
        &self,
        connector: &str,
        options: &Options,
        row: &RowType,
    ) -> Result<(), Refusal> {
        match self.registry.sink(connector) {
            Some(c) => cached(
                |c| &mut c.accept,
                format!("{connector}\0{options:?}\0{row:?}"),
                || c.accept(options, row),
            ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn answers_are_reused_once_the_cache_is_on() {
        static ASKED: AtomicUsize = AtomicUsize::new(0);
        let ask = || {
            ASKED.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Refusal::new(Code::UnknownConnector, None, "down", "here"))
        };
        let key = || "test\0cache".to_string();
        cache_descriptions();
        let first = cached(|c| &mut c.accept, key(), ask);
        let second = cached(|c| &mut c.accept, key(), ask);
        assert_eq!(first, second);
        assert_eq!(ASKED.load(Ordering::SeqCst), 1);
        // Another key is asked again.
        let _ = cached(|c| &mut c.accept, "other".into(), ask);
        assert_eq!(ASKED.load(Ordering::SeqCst), 2);
    }
}
