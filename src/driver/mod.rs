//! The driver: the I/O shell around the pure compiler stages, and their one front door,
//! [`Session`]. It reads files, loads stdlib modules, probes input files for the checker
//! (asking the connectors), and runs the stages in order. The CLI, the REPL and the language
//! server all go through a `Session`.

mod paths;
mod place;
mod probe;
mod session;

pub use probe::{FsProbe, cache_descriptions};
pub use session::{RunFailure, Session, run_error_diagnostic};

use crate::check::{self, hir::Program};
use crate::diagnostics::{Code, Diagnostic};
use crate::plan::{self, Plan, PlanError, PlanOptions};
use crate::span::SourceMap;
use std::path::Path;

/// Everything one run of the front end produced.
#[derive(Clone, Debug, Default)]
pub struct Compilation {
    pub sources: SourceMap,
    pub diagnostics: Vec<Diagnostic>,
    /// The checked program, when there were no errors.
    pub program: Option<Program>,
    /// `flow check --types` lines.
    pub types: Vec<String>,
    /// Spans with their types (also for scripts with errors), for editors.
    pub index: crate::check::index::Index,
    /// The optimized plan of the program (default planner options), when there were no errors.
    pub plan: Option<Plan>,
    /// The checked `test` items (`flow test`), when there were no errors.
    pub tests: Vec<crate::check::hir::Test>,
}

impl Compilation {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.is_error())
    }
}

/// Checks one script given as text; relative paths in it are resolved against the directory of
/// `name`. Never panics, whatever the text.
pub fn check_text(name: &str, text: &str) -> Compilation {
    let mut s = Session::default();
    s.set_file(name, text);
    s.compile().clone()
}

/// Reads and checks the given script files together (one job).
pub fn check_paths(paths: &[impl AsRef<Path>]) -> Compilation {
    let mut s = Session::default();
    s.load_paths(paths);
    s.compile().clone()
}

/// Checks scripts `(name, text)` with the given file probe.
pub fn check_sources(files: Vec<(String, String)>, probe: &dyn check::Probe) -> Compilation {
    let mut s = Session::default();
    for (name, text) in &files {
        s.set_file(name, text);
    }
    s.compile_with_probe(probe).clone()
}

/// The environment variable that sets the broadcast limit of joins (rows; `plan::joins`).
pub const BROADCAST_ROWS_VAR: &str = "FLOW_BROADCAST_ROWS";

/// Plans a checked program, the inputs' sizes asked of `probe` for the joins' strategies;
/// planner errors become diagnostics.
pub fn plan_program(
    program: &Program,
    opts: PlanOptions,
    probe: &dyn check::Probe,
) -> Result<Plan, Vec<Diagnostic>> {
    let rows = |s: &plan::SourceSpec| {
        s.path
            .as_deref()
            .and_then(|p| probe.rows(&s.connector, p, &s.options))
    };
    let sizes = plan::Sizes {
        rows: &rows,
        broadcast_rows: std::env::var(BROADCAST_ROWS_VAR)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(plan::BROADCAST_ROWS),
    };
    plan::build_sized(program, opts, &sizes).map_err(|errs| {
        errs.into_iter()
            .map(|e| match e {
                PlanError::DuplicateSink { path, first, second } => {
                    Diagnostic::error(Code::DuplicateSink, format!("two sinks write to the same destination `{path}`"))
                        .label(second, "this sink…")
                        .label(first, "…writes where this one already writes")
                        .help(if path == "stdout" {
                            "only one sink of a job can write standard output; send the others to files"
                        } else {
                            "give each sink its own path; to write the same rows twice, use two different files"
                        })
                }
                PlanError::Internal(msg) => {
                    // A bug, not the script's fault; it still points at the job it happened in
                    // (the first sink), so every diagnostic has a place.
                    let d = Diagnostic::error(Code::Internal, format!("internal planner error: {msg}"))
                        .note("this is a bug in flow; please report it with the script");
                    match program.sinks.first() {
                        Some(s) => d.label(s.span, "while planning the job this sink belongs to"),
                        None => d,
                    }
                }
            })
            .collect()
    })
}
