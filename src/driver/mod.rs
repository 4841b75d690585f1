//! The driver: the I/O shell around the pure compiler stages. It reads files, loads stdlib
//! modules, probes input files for the checker, and runs the stages in order. The CLI, the REPL
//! and the language server all go through here.

mod paths;
mod probe;

pub use probe::FsProbe;

use crate::check::{self, Input, StdModule, hir::Program};
use crate::diagnostics::{Code, Diagnostic};
use crate::plan::{self, Plan, PlanError, PlanOptions};
use crate::span::{FileId, SourceMap};
use crate::syntax::{self, ast};
use std::collections::BTreeSet;
use std::path::Path;

/// Everything one run of the front end produced.
#[derive(Debug, Default)]
pub struct Compilation {
    pub sources: SourceMap,
    pub diagnostics: Vec<Diagnostic>,
    /// The checked program, when there were no errors.
    pub program: Option<Program>,
    /// `flow check --types` lines.
    pub types: Vec<String>,
    /// The optimized plan of the program (default planner options), when there were no errors.
    pub plan: Option<Plan>,
}

impl Compilation {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.is_error())
    }
}

/// Checks one script given as text; relative paths in it are resolved against the directory of
/// `name`. Never panics, whatever the text.
pub fn check_text(name: &str, text: &str) -> Compilation {
    check_sources(vec![(name.to_string(), text.to_string())], &FsProbe)
}

/// Reads and checks the given script files together (one job).
pub fn check_paths(paths: &[impl AsRef<Path>]) -> Compilation {
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    for p in paths {
        let p = p.as_ref();
        match std::fs::read(p) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => files.push((p.to_string_lossy().into_owned(), text)),
                Err(_) => unreadable.push(Diagnostic::error(
                    Code::UnexpectedChar,
                    format!("{} is not valid UTF-8 text", p.display()),
                )),
            },
            Err(e) => unreadable.push(Diagnostic::error(
                Code::InputNotFound,
                format!("cannot read {}: {e}", p.display()),
            )),
        }
    }
    let mut c = check_sources(files, &FsProbe);
    if !unreadable.is_empty() {
        c.program = None;
        unreadable.extend(c.diagnostics);
        c.diagnostics = unreadable;
    }
    c
}

/// Checks scripts `(name, text)` with the given file probe.
pub fn check_sources(files: Vec<(String, String)>, probe: &dyn check::Probe) -> Compilation {
    let mut sources = SourceMap::default();
    let mut diagnostics = Vec::new();
    let mut parsed: Vec<(FileId, String, ast::Module)> = Vec::new();
    for (name, text) in files {
        let id = sources.add(name.clone(), text);
        let (module, diags) = syntax::parse(&sources.get(id).text, id);
        diagnostics.extend(diags);
        parsed.push((id, name, module));
    }
    let modules = load_std_modules(
        &mut sources,
        parsed.iter().map(|(_, _, m)| m),
        &mut diagnostics,
    );
    let inputs: Vec<Input> = parsed
        .iter()
        .map(|(id, name, module)| Input {
            file: *id,
            name: display_name(name),
            module,
            text: &sources.get(*id).text,
            base_dir: Path::new(name)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        })
        .collect();
    let std_inputs: Vec<StdModule> = modules
        .iter()
        .map(|(path, id, m)| StdModule {
            path: path.clone(),
            file: *id,
            module: m,
        })
        .collect();
    let checked = check::check(&inputs, &std_inputs, probe);
    let syntax_errors = diagnostics.iter().any(|d| d.is_error());
    diagnostics.extend(checked.diagnostics);
    let mut program = if syntax_errors { None } else { checked.program };
    paths::reject_overlaps(&mut program, &mut diagnostics);
    let mut plan = None;
    if let Some(p) = &program {
        match plan_program(p, PlanOptions::default()) {
            Ok(pl) => plan = Some(pl),
            Err(ds) => {
                diagnostics.extend(ds);
                program = None;
            }
        }
    }
    crate::diagnostics::sort(&mut diagnostics);
    Compilation {
        sources,
        diagnostics,
        program,
        types: checked.types,
        plan,
    }
}

fn display_name(name: &str) -> String {
    Path::new(name)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string())
}

/// Parses the stdlib modules that the files `use`, and the ones those use, in dependency order.
fn load_std_modules<'a>(
    sources: &mut SourceMap,
    user: impl Iterator<Item = &'a ast::Module>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(String, FileId, ast::Module)> {
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for m in user {
        wanted.extend(uses(m));
    }
    let mut loaded: Vec<(String, FileId, ast::Module)> = Vec::new();
    let mut visiting = BTreeSet::new();
    for w in wanted {
        load_one(&w, sources, diagnostics, &mut loaded, &mut visiting);
    }
    loaded
}

fn load_one(
    path: &str,
    sources: &mut SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
    loaded: &mut Vec<(String, FileId, ast::Module)>,
    visiting: &mut BTreeSet<String>,
) {
    if loaded.iter().any(|(p, _, _)| p == path) || !visiting.insert(path.to_string()) {
        return;
    }
    let Some(text) = crate::stdlib::modules::find(path) else {
        return; // the checker reports the unknown module at the `use`
    };
    let short = path.trim_start_matches("std.");
    let id = sources.add(format!("<stdlib>/{short}.flow"), text);
    let (module, diags) = syntax::parse(text, id);
    diagnostics.extend(diags);
    for dep in uses(&module) {
        load_one(&dep, sources, diagnostics, loaded, visiting);
    }
    loaded.push((path.to_string(), id, module));
}

fn uses(m: &ast::Module) -> Vec<String> {
    m.items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Use(u) => Some(
                u.path
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join("."),
            ),
            _ => None,
        })
        .collect()
}

/// Plans a checked program; planner errors become diagnostics.
pub fn plan_program(program: &Program, opts: PlanOptions) -> Result<Plan, Vec<Diagnostic>> {
    plan::build(program, opts).map_err(|errs| {
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
                PlanError::Internal(msg) => Diagnostic::error(Code::Internal, format!("internal planner error: {msg}")),
            })
            .collect()
    })
}
