//! The checker: AST → typed HIR (`hir::Program`) plus diagnostics.
//!
//! Invariants: checking never fails — it always returns diagnostics and, when there is no error,
//! a program; it does no I/O itself (files are probed through the `Probe` the driver passes in);
//! every diagnostic has a code from `diagnostics::Code` and a primary span.

pub mod hir;
pub mod index;

mod cx;
mod expr;
mod inline;
mod items;
mod share;
mod stream;
mod test_items;

use crate::catalog::{Catalog, Description, Refusal};
use crate::diagnostics::{Code, Diagnostic};
use crate::job::Options;
use crate::span::{FileId, Span};
use crate::syntax::ast;
use crate::types::RowType;

/// The checker's window on the file system (implemented by the driver, which asks the
/// connector named for the format-specific parts).
pub trait Probe {
    /// Whether the path (or, for a glob, at least one match) is a readable regular file.
    fn exists(&self, path: &str) -> bool;
    /// Why `exists` said no, completing "input file `PATH` …".
    fn why_missing(&self, _path: &str) -> String {
        "does not exist".into()
    }
    /// The column names the input declares itself (a CSV header line), if the connector reads
    /// such a thing with these options.
    fn header(
        &self,
        connector: &str,
        path: &str,
        options: &Options,
    ) -> Result<Option<Vec<String>>, String>;
    /// Infers a schema from the input (its header and a sample of its records).
    fn infer(&self, connector: &str, path: &str, options: &Options) -> Result<RowType, String>;
    /// What a connector that describes its input (`ConnectorInfo::describes`: a database
    /// table or query) says of it, given the call's validated options.
    fn describe(&self, connector: &str, _options: &Options) -> Result<Description, Refusal> {
        Err(Refusal::new(
            Code::SchemaInference,
            None,
            format!("`{connector}` cannot be described here"),
            "declare a schema",
        ))
    }
    /// Whether a sink connector that describes its target accepts `row`-typed rows with these
    /// options (a database table that exists, with compatible columns).
    fn accept_sink(
        &self,
        _connector: &str,
        _options: &Options,
        _row: &RowType,
    ) -> Result<(), Refusal> {
        Ok(())
    }
    /// An estimate of the rows of the input, for the planner's choice of join strategy
    /// (`plan::joins`); `None` when unknown.
    fn rows(&self, _connector: &str, _path: &str, _options: &Options) -> Option<u64> {
        None
    }
}

/// One user file to check.
pub struct Input<'a> {
    pub file: FileId,
    pub name: String,
    pub module: &'a ast::Module,
    pub text: &'a str,
    /// Directory that relative paths in this file are resolved against ("" = working dir).
    pub base_dir: String,
}

/// A stdlib module, parsed by the driver: `std.text` → ("text", …).
pub struct StdModule<'a> {
    pub path: String,
    pub file: FileId,
    pub module: &'a ast::Module,
}

/// The result of checking.
#[derive(Debug, Default)]
pub struct Checked {
    /// `None` when there are errors.
    pub program: Option<hir::Program>,
    pub diagnostics: Vec<Diagnostic>,
    /// Human-readable types of every source, let, fn and sink (for `flow check --types`).
    pub types: Vec<String>,
    /// Spans with their types, for editors (filled also when there are errors).
    pub index: index::Index,
    /// The `test` items, checked (empty when there are errors).
    pub tests: Vec<hir::Test>,
}

/// Checks the files together. Connector calls are validated against `catalog` (what the
/// registered connectors say about themselves); files are probed through `probe`.
pub fn check(
    files: &[Input],
    modules: &[StdModule],
    probe: &dyn Probe,
    catalog: &Catalog,
) -> Checked {
    let mut cx = cx::Checker::new(probe, catalog);
    for m in modules {
        cx.add_std_module(m);
    }
    let mut mode: Option<(crate::job::Mode, Span)> = None;
    for f in files {
        if let Some((m, span)) = cx.check_file(f) {
            match &mode {
                Some((prev, prev_span)) if *prev != m => {
                    cx.diags.push(
                        Diagnostic::error(
                            Code::ConflictingModes,
                            "files run together declare different modes",
                        )
                        .label(span, "this mode…")
                        .label(*prev_span, "…differs from this one")
                        .help("a job has one mode: declare it in one file, or the same in all"),
                    );
                }
                Some(_) => {}
                None => mode = Some((m, span)),
            }
        }
    }
    let (declared, mode_span) = match mode {
        Some((m, s)) => (m, Some(s)),
        None => (crate::job::Mode::default(), None),
    };
    let mut diagnostics = cx.diags;
    diagnostics.extend(items::hint_warnings(&declared, mode_span, &cx.hint_uses));
    crate::diagnostics::sort(&mut diagnostics);
    let has_errors = diagnostics.iter().any(|d| d.is_error());
    let program = hir::Program {
        mode: declared,
        sources: cx.sources,
        sinks: cx.sinks,
    };
    Checked {
        program: if has_errors { None } else { Some(program) },
        diagnostics,
        types: cx.types,
        index: cx.index,
        tests: if has_errors { Vec::new() } else { cx.tests },
    }
}
