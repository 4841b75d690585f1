//! What a job declares, beside its pipelines: the run mode and its parameters, stage hints,
//! error policies and connector options. Plain data shared by the checker (which produces it),
//! the planner, codegen, the runtime and the connectors (which obey it).

use crate::types::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What happens to a row that cannot be read or evaluated.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OnError {
    /// Stop the job with a diagnostic naming the place (the default).
    Fail,
    /// Count the row and drop it.
    Skip,
    /// Write the raw record, its location and the reason as a JSON line to this path.
    DeadLetter(String),
}

/// The limit after which rejected rows fail the job even under `skip` / `dead_letter`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum MaxErrors {
    Count(u64),
    /// A fraction of the rows read, 0.0..=1.0.
    Ratio(f64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorPolicy {
    pub on_error: OnError,
    pub max_errors: Option<MaxErrors>,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        ErrorPolicy {
            on_error: OnError::Fail,
            max_errors: None,
        }
    }
}

/// Connector options other than the path, already validated: `header`, `delimiter`, `format`…
pub type Options = BTreeMap<String, Value>;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Hints {
    /// `@parallel(n)` on a stage.
    pub parallel: Option<u32>,
    /// `@batch(n)` on a stage.
    pub batch: Option<u32>,
}

/// The declared run mode of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Mode {
    Single {
        readers: u32,
        processors: u32,
        batch: u32,
    },
    Multi {
        nodes: u32,
        threads: u32,
        batch: u32,
        /// `retries: N`: re-runs of the whole job after a worker process is lost
        /// (`flow run --retries` overrides it).
        #[serde(default)]
        retries: u32,
    },
    Auto {
        batch: u32,
    },
}

/// The most re-runs `retries: N` (or `flow run --retries`) asks for: every retry starts the whole
/// job again, so more than a few only repeats a failure that is not going away.
pub const MAX_RETRIES: u32 = 100;

/// Rows per source chunk when the mode does not say. 16384 rather than 4096: per-chunk costs
/// (dataflow progress, kernel calls) took 7–13% of the bench jobs' wall time at 4096, for
/// 3–4 MB more peak memory (bench/RESULTS.md).
pub const DEFAULT_BATCH: u32 = 16384;

impl Default for Mode {
    fn default() -> Self {
        Mode::Auto {
            batch: DEFAULT_BATCH,
        }
    }
}

/// The most worker threads a process runs. Each worker costs a stack and per-worker channels
/// and buffers in every operator (timely allocates channels for every pair of workers, so the
/// cost grows with the square of the count: `--threads 100000` tried to allocate 2.3 GB), and
/// more workers than cores only add scheduling overhead. 256 is far above the core count of
/// any machine this runs on and still cheap to set up.
pub const MAX_THREADS: usize = 256;

/// A URL (or any option value) with its password (in the authority or a `password=` parameter) replaced by `***`: how
/// option values are shown (explain, messages), so a password in a script is never printed.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let (a, b) = (scheme_end + 3 + colon + 1, scheme_end + 3 + at);
            out.replace_range(a..b, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let params: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k == "password" => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", params.join("&"));
    }
    out
}
