//! The front door: one [`Session`] holds a job's script files and goes text → AST → HIR → plan
//! → run, each step returning diagnostics. Every surface (the CLI today; the REPL, the language
//! server and the SQL backends next) calls it instead of gluing the stages together.
//!
//! Cheap re-checks: each file keeps a stable `FileId` and its parse result until its text
//! changes, stdlib modules are parsed once per session, and the last compilation is kept until
//! a file or an option changes — so a REPL or an editor that changes one file re-parses only
//! that file.

use super::probe::FsProbe;
use super::{Compilation, plan_program};
use crate::catalog::Catalog;
use crate::check::{self, Input, StdModule};
use crate::connectors::Registry;
use crate::diagnostics::{Code, Diagnostic};
use crate::plan::{Plan, PlanOptions};
use crate::runtime::cluster::ClusterOptions;
use crate::runtime::{self, RunError, RunOptions, RunSummary};
use crate::span::{FileId, SourceMap};
use crate::syntax::{self, ast};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One script file of the session, parsed lazily.
struct File {
    name: String,
    id: FileId,
    parsed: Option<(ast::Module, Vec<Diagnostic>)>,
}

/// Why `Session::run` did not produce a summary.
#[derive(Debug)]
pub enum RunFailure {
    /// The scripts have errors (or could not be planned): nothing ran.
    Diagnostics(Vec<Diagnostic>),
    /// The job started and failed; no file output was committed. `diagnostic` is the failure as
    /// a diagnostic pointing into the script, when it has a place there (a row that failed to
    /// evaluate).
    Job {
        error: Box<RunError>,
        diagnostic: Option<Box<Diagnostic>>,
    },
}

pub struct Session {
    registry: Registry,
    catalog: Catalog,
    sources: SourceMap,
    files: Vec<File>,
    /// Parsed stdlib modules by path (`std.text`), parsed once.
    std_modules: BTreeMap<String, (FileId, ast::Module, Vec<Diagnostic>)>,
    plan_options: PlanOptions,
    /// Script files `load_paths` could not read: reported by every compilation, which then has
    /// no program.
    unreadable: Vec<Diagnostic>,
    /// The last compilation, valid until a file or an option changes.
    compiled: Option<Compilation>,
}

impl Default for Session {
    fn default() -> Self {
        Session::new(Registry::builtin())
    }
}

impl Session {
    /// A session whose connectors are those of `registry`.
    pub fn new(registry: Registry) -> Session {
        Session {
            catalog: registry.catalog(),
            registry,
            sources: SourceMap::default(),
            files: Vec::new(),
            std_modules: BTreeMap::new(),
            plan_options: PlanOptions::default(),
            unreadable: Vec::new(),
            compiled: None,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// What the registered connectors say about themselves.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The planner switches used by `compile` and `run` (default: every optimization on).
    pub fn set_plan_options(&mut self, opts: PlanOptions) {
        if opts != self.plan_options {
            self.plan_options = opts;
            self.compiled = None;
        }
    }

    /// Adds a script, or replaces the text of the one of that name; relative paths in it are
    /// resolved against the directory of `name`. Re-parses only this file at the next check.
    pub fn set_file(&mut self, name: &str, text: &str) {
        if let Some(f) = self.files.iter_mut().find(|f| f.name == name) {
            let stored = &mut self.sources.files[f.id.0 as usize].text;
            if stored != text {
                *stored = text.to_string();
                f.parsed = None;
                self.compiled = None;
            }
            return;
        }
        let id = self.sources.add(name.to_string(), text.to_string());
        self.files.push(File {
            name: name.to_string(),
            id,
            parsed: None,
        });
        self.compiled = None;
    }

    /// Removes a script from the session (its `FileId` is not reused).
    pub fn remove_file(&mut self, name: &str) {
        let before = self.files.len();
        self.files.retain(|f| f.name != name);
        if self.files.len() != before {
            self.compiled = None;
        }
    }

    /// Reads script files into the session; an unreadable or non-UTF-8 file is a diagnostic,
    /// returned and also reported by every later compilation (which then has no program).
    pub fn load_paths(&mut self, paths: &[impl AsRef<Path>]) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        for p in paths {
            let p = p.as_ref();
            match std::fs::read(p) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => self.set_file(&p.to_string_lossy(), &text),
                    Err(_) => problems.push(Diagnostic::error(
                        Code::UnexpectedChar,
                        format!("{} is not valid UTF-8 text", p.display()),
                    )),
                },
                Err(e) => problems.push(Diagnostic::error(
                    Code::InputNotFound,
                    format!("cannot read {}: {e}", p.display()),
                )),
            }
        }
        if !problems.is_empty() {
            self.unreadable.extend(problems.iter().cloned());
            self.compiled = None;
        }
        problems
    }

    /// Checks and plans all files together with the session's planner options (the files
    /// probed on disk). Returns the cached result when nothing changed.
    pub fn compile(&mut self) -> &Compilation {
        self.compile_with(None)
    }

    /// As [`Session::compile`], with another file probe (tests, in-memory inputs).
    pub fn compile_with_probe(&mut self, probe: &dyn check::Probe) -> &Compilation {
        self.compile_with(Some(probe))
    }

    fn compile_with(&mut self, probe: Option<&dyn check::Probe>) -> &Compilation {
        if self.compiled.is_none() || probe.is_some() {
            let fs;
            let probe = match probe {
                Some(p) => p,
                None => {
                    fs = FsProbe::new(self.registry.clone());
                    &fs
                }
            };
            let c = self.build(probe);
            self.compiled = Some(c);
        }
        self.compiled.get_or_insert_with(Compilation::default)
    }

    fn build(&mut self, probe: &dyn check::Probe) -> Compilation {
        let mut diagnostics = Vec::new();
        for f in &mut self.files {
            if f.parsed.is_none() {
                let text = &self.sources.get(f.id).text;
                f.parsed = Some(syntax::parse(text, f.id));
            }
            if let Some((_, d)) = &f.parsed {
                diagnostics.extend(d.iter().cloned());
            }
        }
        let wanted: BTreeSet<String> = self
            .files
            .iter()
            .filter_map(|f| f.parsed.as_ref())
            .flat_map(|(m, _)| uses(m))
            .collect();
        let mut order = Vec::new();
        let mut visiting = BTreeSet::new();
        for w in wanted {
            self.load_std(&w, &mut order, &mut visiting);
        }
        for path in &order {
            if let Some((_, _, d)) = self.std_modules.get(path) {
                diagnostics.extend(d.iter().cloned());
            }
        }
        let inputs: Vec<Input> = self
            .files
            .iter()
            .filter_map(|f| {
                let (module, _) = f.parsed.as_ref()?;
                Some(Input {
                    file: f.id,
                    name: display_name(&f.name),
                    module,
                    text: &self.sources.get(f.id).text,
                    base_dir: Path::new(&f.name)
                        .parent()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                })
            })
            .collect();
        let std_inputs: Vec<StdModule> = order
            .iter()
            .filter_map(|path| {
                let (id, module, _) = self.std_modules.get(path)?;
                Some(StdModule {
                    path: path.clone(),
                    file: *id,
                    module,
                })
            })
            .collect();
        let checked = check::check(&inputs, &std_inputs, probe, &self.catalog);
        let syntax_errors = diagnostics.iter().any(|d| d.is_error());
        diagnostics.extend(checked.diagnostics);
        let mut program = if syntax_errors { None } else { checked.program };
        super::paths::reject_overlaps(&mut program, &mut diagnostics);
        let mut plan = None;
        if let Some(p) = &program {
            match plan_program(p, self.plan_options, probe) {
                Ok(pl) => plan = Some(pl),
                Err(ds) => {
                    diagnostics.extend(ds);
                    program = None;
                }
            }
        }
        crate::diagnostics::sort(&mut diagnostics);
        if !self.unreadable.is_empty() {
            program = None;
            plan = None;
            let mut all = self.unreadable.clone();
            all.extend(diagnostics);
            diagnostics = all;
        }
        Compilation {
            sources: self.sources.clone(),
            diagnostics,
            program,
            types: checked.types,
            index: checked.index,
            plan,
            tests: checked.tests,
        }
    }

    /// Parses a stdlib module and the ones it uses (once per session), appending them to
    /// `order` in dependency order.
    fn load_std(&mut self, path: &str, order: &mut Vec<String>, visiting: &mut BTreeSet<String>) {
        if order.iter().any(|p| p == path) || !visiting.insert(path.to_string()) {
            return;
        }
        if !self.std_modules.contains_key(path) {
            let Some(text) = crate::stdlib::modules::find(path) else {
                return; // the checker reports the unknown module at the `use`
            };
            let short = path.trim_start_matches("std.");
            let id = self.sources.add(format!("<stdlib>/{short}.flow"), text);
            let (module, diags) = syntax::parse(text, id);
            self.std_modules
                .insert(path.to_string(), (id, module, diags));
        }
        let deps = self
            .std_modules
            .get(path)
            .map(|(_, m, _)| uses(m))
            .unwrap_or_default();
        for dep in deps {
            self.load_std(&dep, order, visiting);
        }
        order.push(path.to_string());
    }

    /// The plan of the checked files, or the diagnostics that prevent one.
    pub fn plan(&mut self) -> Result<&Plan, Vec<Diagnostic>> {
        let c = self.compile();
        match &c.plan {
            Some(p) if !c.has_errors() => Ok(p),
            _ => Err(c.diagnostics.clone()),
        }
    }

    /// Checks, plans and runs the job in this process with `opts` (kernels built by
    /// `opts.kernel_factory` on every worker). Outputs appear under their final names only if
    /// the job succeeds.
    pub fn run(&mut self, opts: &RunOptions) -> Result<RunSummary, RunFailure> {
        let plan = self.plan().map_err(RunFailure::Diagnostics)?;
        runtime::run(plan, opts).map_err(|error| RunFailure::Job {
            diagnostic: run_error_diagnostic(&error).map(Box::new),
            error: Box::new(error),
        })
    }
}

impl Session {
    /// Checks, plans and runs the job in the layout its mode declares: `mode multi(nodes: N)`
    /// with N ≥ 2 (or `nodes` from `flow run --nodes`) starts N local worker processes under a
    /// coordinator in this process ([`runtime::cluster`]); anything else runs here, as
    /// [`Session::run`]. The summary says which layout ran and why.
    pub fn run_in_layout(
        &mut self,
        opts: &RunOptions,
        nodes: Option<usize>,
        cluster: &ClusterOptions,
    ) -> Result<RunSummary, RunFailure> {
        let plan = self.plan().map_err(RunFailure::Diagnostics)?;
        run_plan_in_layout(plan, opts, nodes, cluster)
    }
}

/// [`Session::run_in_layout`] of a given plan (the placement's native part: `driver::place`).
pub(super) fn run_plan_in_layout(
    plan: &Plan,
    opts: &RunOptions,
    nodes: Option<usize>,
    cluster: &ClusterOptions,
) -> Result<RunSummary, RunFailure> {
    let failed = |error: RunError| RunFailure::Job {
        diagnostic: run_error_diagnostic(&error).map(Box::new),
        error: Box::new(error),
    };
    let layout = runtime::layout::decide(plan, opts, nodes, cluster.hosts.len());
    let why = &layout.why;
    if layout.multi {
        let mut c = cluster.clone();
        c.nodes = layout.processes;
        let mut s = runtime::cluster::run_multi(plan, opts, &c).map_err(failed)?;
        s.layout = format!(
            "multi-node: {} worker processes × {} thread{} {} ({why})",
            layout.processes,
            s.threads,
            if s.threads == 1 { "" } else { "s" },
            if c.hosts.is_empty() {
                "on this machine"
            } else {
                "on the worker daemons"
            }
        );
        return Ok(s);
    }
    let mut opts = opts.clone();
    opts.threads = opts.threads.or(layout.threads);
    let mut s = runtime::run(plan, &opts).map_err(failed)?;
    s.layout = format!(
        "single-node: {} thread{} ({why})",
        s.threads,
        if s.threads == 1 { "" } else { "s" }
    );
    Ok(s)
}

/// A job failure that has a place in the script (a row that failed to evaluate under
/// `on_error: fail`), as a diagnostic pointing there.
pub fn run_error_diagnostic(e: &RunError) -> Option<Diagnostic> {
    if let RunError::Worker {
        cause: Some(cause),
        index,
        host,
        pid,
        ..
    } = e
    {
        let pid = pid.map(|p| format!(", pid {p}")).unwrap_or_default();
        return run_error_diagnostic(cause)
            .map(|d| d.note(format!("in worker process {index} on {host}{pid}")));
    }
    let RunError::RowEval {
        at: Some(span),
        code,
        row,
        stage,
    } = e
    else {
        return None;
    };
    let what = if stage.ends_with("(filter)") {
        "filter"
    } else {
        "map"
    };
    Some(
        Diagnostic::error(
            Code::RowEvalFailed,
            format!("{} while evaluating a row", code.message()),
        )
        .label(*span, format!("this {what} failed"))
        .note(format!("the row: {row}"))
        .help("guard the expression, or set a policy on the stage: `@on_error(skip)` or `@on_error(dead_letter(\"bad.jsonl\"))`"),
    )
}

fn display_name(name: &str) -> String {
    Path::new(name)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string())
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
