//! `flow repl`: declarations accumulate in one [`Session`] (each declaration is its own script
//! file of the session, so a redefinition replaces exactly that file and diagnostics point into
//! the line typed); a pipeline without a sink is previewed by running it on the real runtime
//! (plan, JIT kernels, timely workers) into the in-memory `__collect` sink; a bare expression is
//! evaluated the same way, as a `map` over one row of the internal `__unit` source.
//!
//! [`Repl::eval`] takes one complete statement (or a `:command`) and returns the text to print;
//! `editor.rs` wraps it in a line editor (rustyline), and `--no-tty` feeds it from stdin.

pub mod complete;
pub mod editor;
pub mod table;

use crate::connectors::memory::{self, Store};
use crate::diagnostics::{self, Diagnostic, Severity};
use crate::driver::{RunFailure, Session};
use crate::plan::ir::Op;
use crate::runtime::RunOptions;
use crate::syntax::lexer::{self, Tok, Token};
use crate::syntax::{self, ast};
use crate::types::{RowType, Value};
use std::fmt::Write as _;

/// The name diagnostics give the statement being evaluated.
const INPUT: &str = "<input>";
/// The session's one script: the prelude, every declaration, then the input (the checker
/// resolves names within one file).
const SCRIPT: &str = "<repl>";
/// Declarations the REPL itself needs: one row to evaluate bare expressions over.
const PRELUDE: &str = "schema __Unit { __u: int }\nsource __unit: __Unit = __rows()\n";
/// The key the preview sink collects under.
const PREVIEW: &str = "preview";

/// One declaration of the session.
#[derive(Clone, Debug)]
struct Decl {
    /// `schema Trip`, `stream trips` (sources and lets share one namespace), `fn f`, `use std.text`, `mode`.
    key: String,
    /// The name its diagnostics show (`<repl:3>`, or the file it was loaded from).
    name: String,
    /// Its text as typed (or as in the loaded file, relative paths made relative to the
    /// working directory).
    text: String,
    /// Lines before it in the file it was loaded from (so diagnostics show that file's lines).
    line: usize,
}

/// Where one declaration (or the input) sits in the session's one script file.
struct Segment {
    start: usize,
    end: usize,
    /// The part of `start..end` that is the text shown (the rest is the REPL's own wrapper
    /// around the input typed: spans there are clamped onto the text).
    shown: std::ops::Range<usize>,
    name: String,
    text: String,
    line: usize,
}

/// What `eval` asks of its caller besides printing.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    Quit,
}

/// What one `eval` produced.
#[derive(Debug)]
pub struct Reply {
    /// The text to print.
    pub text: String,
    pub action: Action,
    /// Whether the input failed: a diagnostic of severity error, a failed run, or a command's
    /// own error. Never decided from the text (a value may well contain the word "error").
    pub failed: bool,
}

pub struct Repl {
    session: Session,
    /// The segments of the script last compiled.
    segments: Vec<Segment>,
    store: Store,
    decls: Vec<Decl>,
    /// A pipeline with a sink that was typed last: `:run` runs it.
    pending: Option<String>,
    counter: usize,
    /// Rows shown by a preview.
    pub limit: usize,
    pub color: bool,
    /// Set while evaluating an input when it fails (see [`Reply::failed`]).
    failed: bool,
}

impl Default for Repl {
    fn default() -> Self {
        Repl::new()
    }
}

impl Repl {
    pub fn new() -> Repl {
        let store = Store::default();
        let mut session = Session::new(memory::memory_registry(&store));
        session.set_file(SCRIPT, PRELUDE);
        Repl {
            session,
            segments: Vec::new(),
            store,
            decls: Vec::new(),
            pending: None,
            counter: 0,
            limit: 20,
            color: false,
            failed: false,
        }
    }

    /// The flag a Ctrl-C handler sets to stop a running preview.
    pub fn cancel_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.store.cancel.clone()
    }

    /// Evaluates one complete input (a statement, several, or a `:command`); returns the text to
    /// print, whether to go on and whether it failed. A mistake is printed, never fatal.
    pub fn eval(&mut self, input: &str) -> Reply {
        self.failed = false;
        let (text, action) = self.eval_text(input);
        Reply {
            text,
            action,
            failed: std::mem::take(&mut self.failed),
        }
    }

    /// A command's own error: marks the input as failed and returns the message.
    fn fail(&mut self, message: impl std::fmt::Display) -> String {
        self.failed = true;
        format!("error: {message}\n")
    }

    fn eval_text(&mut self, input: &str) -> (String, Action) {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return (String::new(), Action::Continue);
        }
        if let Some(cmd) = trimmed.strip_prefix(':') {
            return self.command(cmd);
        }
        let mut lex_diags = Vec::new();
        if lexer::lex(input, crate::span::FileId(0), &mut lex_diags).is_empty()
            && lex_diags.is_empty()
        {
            return (String::new(), Action::Continue); // only comments
        }
        (self.statement(input), Action::Continue)
    }

    /// Declarations, pipelines or one bare expression.
    fn statement(&mut self, input: &str) -> String {
        match classify(input) {
            Kind::Expr => self.expression(input),
            Kind::Items => {
                let (module, diags) = syntax::parse(input, crate::span::FileId(0));
                if diags.iter().any(|d| d.is_error()) {
                    // Checked for real (with the session's file ids) so the rendering points
                    // into the text typed.
                    return self.check_input(input).unwrap_err();
                }
                let mut out = String::new();
                for item in &module.items {
                    let span = item_span(item);
                    let text = &input[span.start as usize..span.end as usize];
                    let r = match item {
                        ast::Item::Pipeline(p) if has_sink(p) => {
                            self.pending = Some(text.to_string());
                            "this pipeline writes to a sink: `:run` runs it\n".to_string()
                        }
                        ast::Item::Pipeline(_) => self.preview(text),
                        ast::Item::Test(_) => {
                            "a test runs with `flow test FILE` (write it in a script next to its pipelines)\n".to_string()
                        }
                        _ => self.declare(item, text, None),
                    };
                    out.push_str(&r);
                }
                out
            }
        }
    }

    /// Compiles the declarations with `text` as the input; `Err` is the rendered diagnostics
    /// when there are errors. Warnings in the input are returned with `Ok`.
    fn check_input(&mut self, text: &str) -> Result<String, String> {
        self.check_wrapped(text, 0..text.len())
    }

    /// [`Repl::check_input`] of a wrapper around the input: `typed` is where in `text` the
    /// input typed sits, and diagnostics point into that only (line 1 is its first line).
    fn check_wrapped(
        &mut self,
        text: &str,
        typed: std::ops::Range<usize>,
    ) -> Result<String, String> {
        let mut script = PRELUDE.to_string();
        self.segments.clear();
        for d in &self.decls {
            let start = script.len();
            script.push_str(&d.text);
            self.segments.push(Segment {
                start,
                end: script.len(),
                shown: start..script.len(),
                name: d.name.clone(),
                text: d.text.clone(),
                line: d.line,
            });
            script.push_str("\n\n");
        }
        let start = script.len();
        script.push_str(text);
        self.segments.push(Segment {
            start,
            end: script.len(),
            shown: start + typed.start..start + typed.end,
            name: INPUT.to_string(),
            text: text[typed].to_string(),
            line: 0,
        });
        self.session.set_file(SCRIPT, &script);
        let c = self.session.compile();
        let failed = c.has_errors() || c.plan.is_none();
        let diags = c.diagnostics.clone();
        let shown: Vec<Diagnostic> = diags
            .into_iter()
            .filter(|d| {
                d.severity == Severity::Error
                    || d.primary_span().is_some_and(|s| s.start as usize >= start)
            })
            .filter(|d| !is_repl_noise(d))
            .collect();
        let rendered = self.render(&shown);
        if failed { Err(rendered) } else { Ok(rendered) }
    }

    /// Runs the compiled job into the memory sink; returns the collected rows.
    fn run_collect(&mut self) -> Result<(RowType, Vec<Vec<Value>>), String> {
        self.store.clear();
        self.store.set_input("__unit", vec![vec![Value::Int(0)]]);
        let mut opts = RunOptions::for_engine(crate::codegen::Engine::Jit);
        opts.registry = self.session.registry().clone();
        opts.threads = Some(1);
        // A preview writes no file: dead letters are skipped (the rows shown are the same).
        let result = match self.session.plan() {
            Ok(p) => {
                let mut plan = p.clone();
                crate::testing::in_memory(&mut plan);
                crate::runtime::run(&plan, &opts).map_err(|error| RunFailure::Job {
                    diagnostic: crate::driver::run_error_diagnostic(&error).map(Box::new),
                    error: Box::new(error),
                })
            }
            Err(ds) => Err(RunFailure::Diagnostics(ds)),
        };
        let out = self.store.take_output(PREVIEW);
        let cancelled = self
            .store
            .cancel
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        match result {
            Ok(_) => Ok(out.unwrap_or_default()),
            Err(_) if cancelled => Err("cancelled\n".to_string()),
            Err(RunFailure::Diagnostics(ds)) => Err(self.render(&ds)),
            Err(RunFailure::Job { error, diagnostic }) => Err(match diagnostic {
                Some(d) => self.render(&[*d]),
                None => self.fail(format_args!("the preview failed: {error}")),
            }),
        }
    }

    /// Renders diagnostics with their spans in the script moved to the declaration or input
    /// they fall in, so each shows the text as typed (or as in its file).
    fn render(&mut self, ds: &[Diagnostic]) -> String {
        if ds.is_empty() {
            return String::new();
        }
        if ds.iter().any(|d| d.severity == Severity::Error) {
            self.failed = true;
        }
        let color = self.color;
        let c = self.session.compile();
        let mut sources = c.sources.clone();
        let script = file_id(&sources, SCRIPT);
        let mut ids = Vec::new();
        for seg in &self.segments {
            let pad = "\n".repeat(seg.line);
            ids.push((
                sources.add(seg.name.clone(), format!("{pad}{}", seg.text)),
                pad.len(),
            ));
        }
        let prelude = sources.add("<repl prelude>", PRELUDE);
        let remap = |sp: crate::span::Span| -> crate::span::Span {
            if Some(sp.file) != script {
                return sp;
            }
            let (s, e) = (sp.start as usize, sp.end as usize);
            for (seg, (id, pad)) in self.segments.iter().zip(&ids) {
                if s >= seg.start && s <= seg.end {
                    let (lo, hi) = (seg.shown.start, seg.shown.end);
                    let s = s.clamp(lo, hi);
                    let e = e.clamp(s, hi);
                    return crate::span::Span::new(*id, s - lo + pad, e - lo + pad);
                }
            }
            if e <= PRELUDE.len() {
                return crate::span::Span::new(prelude, s, e);
            }
            sp
        };
        let moved: Vec<Diagnostic> = ds
            .iter()
            .cloned()
            .map(|mut d| {
                for l in &mut d.labels {
                    l.span = remap(l.span);
                }
                // The one-row source of bare expressions is the REPL's, not the user's.
                d.notes.retain(|n| !n.contains("__u"));
                d
            })
            .collect();
        diagnostics::render(&sources, &moved, color)
    }

    /// A pipeline without a sink: its first rows as a table.
    fn preview(&mut self, pipeline: &str) -> String {
        let text = format!(
            "{pipeline}\n| limit {}\n| sink {}(\"{PREVIEW}\")",
            self.limit,
            memory::COLLECT
        );
        let warnings = match self.check_wrapped(&text, 0..pipeline.len()) {
            Ok(w) => w,
            Err(e) => return e,
        };
        match self.run_collect() {
            Ok((row, rows)) => {
                let mut out = warnings;
                out.push_str(&table::render(&row, &rows, self.limit));
                out
            }
            Err(e) => warnings + &e,
        }
    }

    /// A bare expression: evaluated over one row, printed with its type.
    fn expression(&mut self, expr: &str) -> String {
        match self.expression_result(expr, true) {
            Ok((v, ty)) => format!("{v} : {ty}\n"),
            Err(e) => e,
        }
    }

    /// The value (if `run`) and the type of a bare expression.
    fn expression_result(
        &mut self,
        expr: &str,
        run: bool,
    ) -> Result<(String, crate::types::Type), String> {
        // Diagnostics point into the expression only (`check_wrapped`), as typed.
        let prefix = "__unit | map { value: ";
        let expr = expr.trim_end();
        let text = format!(
            "{prefix}{expr}\n}} | sink {}(\"{PREVIEW}\")",
            memory::COLLECT
        );
        let warnings = self.check_wrapped(&text, prefix.len()..prefix.len() + expr.len())?;
        let ty = self
            .preview_row()
            .and_then(|r| r.fields.first().map(|f| f.ty))
            .ok_or_else(|| self.fail("the expression has no type"))?;
        if !run {
            return Ok((warnings, ty));
        }
        let (_, rows) = self.run_collect().map_err(|e| warnings.clone() + &e)?;
        let v = rows
            .first()
            .and_then(|r| r.first())
            .map(|v| v.to_string())
            .unwrap_or_else(|| "(no value)".into());
        Ok((warnings + &v, ty))
    }

    /// The row type at the preview sink of the current compilation.
    fn preview_row(&mut self) -> Option<RowType> {
        let plan = self.session.plan().ok()?;
        plan.graph.node_weights().find_map(|n| match &n.op {
            Op::Sink(s) if s.connector == memory::COLLECT => Some(n.row.clone()),
            _ => None,
        })
    }

    /// The row type of a pipeline (prefix) typed at the prompt: `Err` if it does not check.
    pub fn row_type_of(&mut self, pipeline: &str) -> Result<RowType, String> {
        let text = format!(
            "{pipeline}\n| limit 0\n| sink {}(\"{PREVIEW}\")",
            memory::COLLECT
        );
        self.check_wrapped(&text, 0..pipeline.len())?;
        let row = self.preview_row();
        row.ok_or_else(|| self.fail("no row type"))
    }

    /// Adds (or replaces) a declaration; `origin` names the loaded file it comes from.
    fn declare(&mut self, item: &ast::Item, text: &str, origin: Option<(&str, usize)>) -> String {
        let Some((key, what)) = decl_key(item) else {
            return self.fail(format_args!("not a declaration: {text}"));
        };
        self.counter += 1;
        let (name, line) = match origin {
            Some((path, line)) => (path.to_string(), line.saturating_sub(1)),
            None => (format!("<repl:{}>", self.counter), 0),
        };
        let decl = Decl {
            key: key.clone(),
            name,
            text: text.trim().to_string(),
            line,
        };
        let old = self.decls.iter().position(|d| d.key == key);
        let previous = old.map(|i| self.decls.remove(i));
        self.decls.push(decl);
        match self.check_input("") {
            Ok(warnings) => {
                let verb = if previous.is_some() {
                    "replaced"
                } else {
                    "defined"
                };
                let detail = self.describe(item);
                format!("{warnings}{verb} {what}{detail}\n")
            }
            Err(e) => {
                // Rejected: the session is as it was before.
                self.decls.pop();
                if let (Some(i), Some(p)) = (old, previous) {
                    self.decls.insert(i, p);
                }
                e
            }
        }
    }

    /// `: TYPE` after a source or let; the signature of a fn.
    fn describe(&mut self, item: &ast::Item) -> String {
        match item {
            ast::Item::Source(s) => self
                .row_type_of(&s.name.name)
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
            ast::Item::Let(l) => self
                .row_type_of(&l.name.name)
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
            _ => String::new(),
        }
    }

    fn command(&mut self, cmd: &str) -> (String, Action) {
        let (name, arg) = match cmd.find(char::is_whitespace) {
            Some(i) => (&cmd[..i], cmd[i..].trim()),
            None => (cmd, ""),
        };
        let out = match name {
            "q" | "quit" | "exit" => return (String::new(), Action::Quit),
            "h" | "help" if arg.is_empty() => HELP.to_string(),
            "h" | "help" => complete::help_for(arg).unwrap_or_else(|e| {
                self.failed = true;
                e
            }),
            "t" | "type" => self.type_of(arg),
            "schema" => self.schema(arg),
            "explain" => self.explain(arg),
            "load" => self.load(arg),
            "save" => self.save(arg),
            "reset" => {
                self.decls.clear();
                self.pending = None;
                "the session is empty\n".to_string()
            }
            "limit" => match arg.parse::<usize>() {
                Ok(n) if n > 0 => {
                    self.limit = n;
                    format!("previews show {n} rows\n")
                }
                _ => {
                    let now = self.limit;
                    self.fail(format_args!(
                        "`:limit N` takes a positive number (now {now})"
                    ))
                }
            },
            "run" => self.run(arg),
            "decls" | "list" => {
                let mut s = String::new();
                for d in &self.decls {
                    // Shown, not saved: passwords masked (`:save` writes the text as typed).
                    let _ = writeln!(s, "{}", crate::diagnostics::mask_secrets(&d.text));
                }
                s
            }
            _ => self.fail(format_args!(
                "unknown command `:{name}` (`:help` lists them)"
            )),
        };
        (out, Action::Continue)
    }

    fn type_of(&mut self, arg: &str) -> String {
        if arg.is_empty() {
            return self.fail("`:type EXPR` needs an expression or a pipeline");
        }
        match classify(arg) {
            Kind::Items => match self.row_type_of(arg) {
                Ok(r) => format!("{r}\n"),
                Err(e) => e,
            },
            Kind::Expr => match self.expression_result(arg, false) {
                Ok((w, ty)) => format!("{w}{ty}\n"),
                Err(e) => e,
            },
        }
    }

    fn schema(&mut self, name: &str) -> String {
        if name.is_empty() {
            return self.fail("`:schema NAME` needs a schema, source or let name");
        }
        if let Some(d) = self
            .decls
            .iter()
            .find(|d| d.key == format!("schema {name}"))
        {
            return format!("{}\n", d.text);
        }
        match self.row_type_of(name) {
            Ok(r) => format!("{name}: {r}\n"),
            Err(e) => e,
        }
    }

    fn explain(&mut self, pipeline: &str) -> String {
        if pipeline.is_empty() {
            return self.fail("`:explain PIPELINE` needs a pipeline");
        }
        let text = if pipeline_has_sink(pipeline) {
            pipeline.to_string()
        } else {
            format!(
                "{pipeline}\n| limit {}\n| sink {}(\"{PREVIEW}\")",
                self.limit,
                memory::COLLECT
            )
        };
        if let Err(e) = self.check_wrapped(&text, 0..pipeline.len()) {
            return e;
        }
        let limit = self.limit;
        let out = match self.session.plan() {
            Ok(p) => {
                let (plan, hidden) = without_preview_sink(p, limit);
                let mut out = crate::plan::explain::text(&plan);
                if hidden > 0 {
                    let _ = writeln!(
                        out,
                        "(not shown: the preview's own `limit {limit}` and `sink`, which the REPL adds to run a pipeline without a sink)"
                    );
                }
                out
            }
            Err(_) => String::new(),
        };
        if out.ends_with('\n') { out } else { out + "\n" }
    }

    /// `:run [PIPELINE]`: runs a pipeline with a sink (the one typed last without an argument).
    fn run(&mut self, arg: &str) -> String {
        let text = if arg.is_empty() {
            match self.pending.take() {
                Some(p) => p,
                None => return self.fail("nothing to run: type a pipeline with a sink first"),
            }
        } else {
            arg.to_string()
        };
        if !pipeline_has_sink(&text) {
            return self.fail("`:run` runs a pipeline that ends in a sink; without one, type the pipeline to preview it");
        }
        let warnings = match self.check_input(&text) {
            Ok(w) => w,
            Err(e) => return e,
        };
        self.store.clear();
        self.store.set_input("__unit", vec![vec![Value::Int(0)]]);
        let mut opts = RunOptions::for_engine(crate::codegen::Engine::Jit);
        opts.registry = self.session.registry().clone();
        let r = self.session.run(&opts);
        match r {
            Ok(s) => {
                let mut out = warnings;
                for sink in &s.sinks {
                    let _ = writeln!(
                        out,
                        "wrote {} rows to {}",
                        sink.rows_written,
                        sink.path.as_deref().unwrap_or("standard output")
                    );
                }
                out
            }
            Err(RunFailure::Diagnostics(ds)) => warnings + &self.render(&ds),
            Err(RunFailure::Job { error, diagnostic }) => {
                warnings
                    + &match diagnostic {
                        Some(d) => self.render(&[*d]),
                        None => self.fail(format_args!("the job failed: {error}")),
                    }
            }
        }
    }

    /// `:load FILE`: the declarations of a script (its pipelines with sinks are not run).
    fn load(&mut self, path: &str) -> String {
        if path.is_empty() {
            return self.fail("`:load FILE` needs a file");
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return self.fail(format_args!("cannot read {path}: {e}")),
        };
        let (module, diags) = syntax::parse(&text, crate::span::FileId(0));
        if diags.iter().any(|d| d.is_error()) {
            let mut sources = crate::span::SourceMap::default();
            let id = sources.add(path.to_string(), text.clone());
            let (_, diags) = syntax::parse(&text, id);
            return diagnostics::render(&sources, &diags, self.color);
        }
        let mut out = String::new();
        let mut skipped = 0;
        let mut tests = 0;
        for item in &module.items {
            if matches!(item, ast::Item::Pipeline(_)) {
                skipped += 1;
                continue;
            }
            if matches!(item, ast::Item::Test(_)) {
                tests += 1;
                continue;
            }
            let span = item_span(item);
            let line = text[..span.start as usize].matches('\n').count() + 1;
            let dir = std::path::Path::new(path)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let item_text = relocate_paths(&text, item, &dir);
            out.push_str(&self.declare(item, &item_text, Some((path, line))));
        }
        if skipped > 0 {
            let _ = writeln!(
                out,
                "skipped {skipped} pipeline{} of {path} (type one to preview it, `:run` one with a sink)",
                if skipped == 1 { "" } else { "s" }
            );
        }
        if tests > 0 {
            let _ = writeln!(
                out,
                "skipped {tests} test{} of {path} (`flow test {path}` runs them)",
                if tests == 1 { "" } else { "s" }
            );
        }
        out
    }

    /// `:save FILE`: the declarations as one formatted script.
    fn save(&mut self, path: &str) -> String {
        if path.is_empty() {
            return self.fail("`:save FILE` needs a file");
        }
        let script = self.script();
        let formatted = crate::fmt::format(&script, crate::span::FileId(0)).unwrap_or(script);
        let tmp = format!("{path}.tmp-{}", std::process::id());
        let written = std::fs::write(&tmp, &formatted).and_then(|_| std::fs::rename(&tmp, path));
        match written {
            Ok(()) => format!(
                "saved {} declaration{} to {path}\n",
                self.decls.len(),
                if self.decls.len() == 1 { "" } else { "s" }
            ),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                self.fail(format_args!("cannot write {path}: {e}"))
            }
        }
    }

    /// The session's declarations as a script, in the order they were made.
    pub fn script(&self) -> String {
        let mut s = String::new();
        for d in &self.decls {
            s.push_str(&d.text);
            s.push_str("\n\n");
        }
        s
    }

    /// Names in scope, for completion: (name, kind).
    pub fn names(&self) -> Vec<(String, &'static str)> {
        self.decls
            .iter()
            .filter_map(|d| {
                let (kind, name) = d.key.split_once(' ')?;
                let kind = match kind {
                    "stream" => "stream",
                    "fn" => "fn",
                    "schema" => "schema",
                    _ => return None,
                };
                Some((name.to_string(), kind))
            })
            .collect()
    }

    /// Modules brought in with `use` (`text` for `use std.text`).
    pub fn used_modules(&self) -> Vec<String> {
        self.decls
            .iter()
            .filter_map(|d| d.key.strip_prefix("use std.").map(str::to_string))
            .collect()
    }
}

const HELP: &str = "\
Type a declaration (schema, source, fn, let, use, mode) to add it to the session (a new one
of the same name replaces it); a pipeline without a sink to see its first rows; an expression
to see its value and type. Input continues on the next line while a statement is incomplete.

  :help [FUNCTION]    this help, or a function's signature, doc and example
  :type EXPR          the type of an expression, or the row type of a pipeline
  :schema NAME        a schema, or the row type of a source or let
  :explain PIPELINE   the optimized plan of a pipeline
  :run [PIPELINE]     run a pipeline that ends in a sink (the last one typed, without argument)
  :load FILE          add the declarations of a script
  :save FILE          write the declarations as a formatted script
  :decls              list the declarations
  :limit N            rows shown by a preview (now 20 by default)
  :reset              forget every declaration
  :quit               leave (also Ctrl-D)
";

/// How an input is evaluated.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// Declarations and pipelines (statements of the language).
    Items,
    /// A bare expression.
    Expr,
}

fn classify(input: &str) -> Kind {
    let mut diags = Vec::new();
    let toks = lexer::lex(input, crate::span::FileId(0), &mut diags);
    match (toks.first().map(|t| &t.1), toks.get(1).map(|t| &t.1)) {
        (
            Some(Token::Kw(Tok::Mode | Tok::Use | Tok::Schema | Tok::Source | Tok::Fn | Tok::Let)),
            _,
        ) => Kind::Items,
        (Some(Token::Ident(_)), None | Some(Token::Kw(Tok::Pipe))) => Kind::Items,
        (Some(Token::Ident(w)), Some(Token::Str(_))) if w == "test" => Kind::Items,
        _ => Kind::Expr,
    }
}

/// Is the input incomplete (the parser ran out of input in its last statement)? The line
/// editor's validator: Enter then continues the input on the next line.
pub fn incomplete(input: &str) -> bool {
    let t = input.trim();
    if t.is_empty() || t.starts_with(':') {
        return false;
    }
    // A statement that ends in an operator, `|`, `=`, `,` or an opening bracket goes on.
    let mut lex_diags = Vec::new();
    let toks = lexer::lex(input, crate::span::FileId(0), &mut lex_diags);
    if toks.is_empty() {
        return false; // blank or only comments
    }
    if let Some((_, Token::Kw(k), _)) = toks.last()
        && matches!(
            k,
            Tok::Pipe
                | Tok::Assign
                | Tok::Arrow
                | Tok::Comma
                | Tok::Colon
                | Tok::Dot
                | Tok::LParen
                | Tok::LBrace
                | Tok::Coalesce
                | Tok::Plus
                | Tok::Minus
                | Tok::Star
                | Tok::Slash
                | Tok::Percent
                | Tok::EqEq
                | Tok::NotEq
                | Tok::Lt
                | Tok::Le
                | Tok::Gt
                | Tok::Ge
                | Tok::AndAnd
                | Tok::OrOr
                | Tok::Bang
                | Tok::If
                | Tok::Else
        )
    {
        return true;
    }
    let text = match classify(input) {
        Kind::Items => input.to_string(),
        Kind::Expr => format!("let __v = __unit | filter {input}"),
    };
    let (_, diags) = syntax::parse(&text, crate::span::FileId(0));
    diags
        .iter()
        .any(|d| d.code == crate::diagnostics::Code::UnexpectedEof)
}

fn pipeline_has_sink(text: &str) -> bool {
    let (m, _) = syntax::parse(text, crate::span::FileId(0));
    m.items.iter().any(|i| match i {
        ast::Item::Pipeline(p) => has_sink(p),
        _ => false,
    })
}

fn has_sink(p: &ast::Pipeline) -> bool {
    p.stages
        .iter()
        .any(|s| matches!(s.kind, ast::StageKind::Sink(_)))
}

fn item_span(item: &ast::Item) -> crate::span::Span {
    match item {
        ast::Item::Mode(d) => d.span,
        ast::Item::Use(d) => d.span,
        ast::Item::Schema(d) => d.span,
        ast::Item::Source(d) => d.span,
        ast::Item::Fn(d) => d.span,
        ast::Item::Let(d) => d.span,
        ast::Item::Pipeline(d) => d.span,
        ast::Item::Test(d) => d.span,
        ast::Item::Error(d) => d.span,
    }
}

/// The namespace key of a declaration and how to name it in messages.
fn decl_key(item: &ast::Item) -> Option<(String, String)> {
    Some(match item {
        ast::Item::Mode(_) => ("mode".into(), "the run mode".into()),
        ast::Item::Use(u) => {
            let path: Vec<&str> = u.path.iter().map(|i| i.name.as_str()).collect();
            let p = path.join(".");
            (format!("use {p}"), format!("use {p}"))
        }
        ast::Item::Schema(s) => (
            format!("schema {}", s.name.name),
            format!("schema {}", s.name.name),
        ),
        ast::Item::Source(s) => (
            format!("stream {}", s.name.name),
            format!("source {}", s.name.name),
        ),
        ast::Item::Let(l) => (
            format!("stream {}", l.name.name),
            format!("let {}", l.name.name),
        ),
        ast::Item::Fn(f) => (format!("fn {}", f.name.name), format!("fn {}", f.name.name)),
        _ => return None,
    })
}

fn file_id(sources: &crate::span::SourceMap, name: &str) -> Option<crate::span::FileId> {
    sources
        .files
        .iter()
        .rposition(|f| f.name == name)
        .map(|i| crate::span::FileId(i as u32))
}

/// The text of a loaded declaration with the relative paths of a source (its input and its
/// dead-letter file) made relative to the working directory instead of the script's `dir`.
fn relocate_paths(text: &str, item: &ast::Item, dir: &str) -> String {
    let span = item_span(item);
    let (start, end) = (span.start as usize, span.end as usize);
    let ast::Item::Source(src) = item else {
        return text[start..end].to_string();
    };
    if dir.is_empty() {
        return text[start..end].to_string();
    }
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut path_arg = |e: &ast::Expr| {
        if let ast::ExprKind::Str(p) = &e.kind
            && !std::path::Path::new(p).is_absolute()
        {
            let joined = std::path::Path::new(dir).join(p);
            edits.push((
                e.span.start as usize,
                e.span.end as usize,
                format!("{:?}", joined.to_string_lossy()),
            ));
        }
    };
    for a in &src.connector.args {
        match &a.value.kind {
            _ if a.name.is_none() => path_arg(&a.value),
            ast::ExprKind::Call { name, args, .. } if name.name == "dead_letter" => {
                for x in args.iter().filter(|x| x.name.is_none()) {
                    path_arg(&x.value);
                }
            }
            _ => {}
        }
    }
    edits.sort();
    let mut out = String::new();
    let mut at = start;
    for (l, r, new) in edits {
        if l < at || r > end {
            continue;
        }
        out.push_str(&text[at..l]);
        out.push_str(&new);
        at = r;
    }
    out.push_str(&text[at..end]);
    out
}

/// The plan without the nodes the REPL adds to preview a pipeline (the `__collect` sink and the
/// `limit` feeding only it), and how many were left out. The pipelines a node is used by are
/// the input typed (the session holds no other pipeline).
fn without_preview_sink(
    plan: &crate::plan::ir::Plan,
    limit: usize,
) -> (crate::plan::ir::Plan, usize) {
    let mut hide = std::collections::HashSet::new();
    for id in plan.graph.node_indices() {
        let is_preview =
            matches!(&plan.graph[id].op, Op::Sink(s) if s.connector == memory::COLLECT);
        if !is_preview {
            continue;
        }
        hide.insert(id);
        for input in plan.inputs(id) {
            let only_here = plan
                .graph
                .neighbors_directed(input, petgraph::Direction::Outgoing)
                .all(|n| n == id);
            if matches!(plan.graph[input].op, Op::Limit(n) if n == limit as u64) && only_here {
                hide.insert(input);
            }
        }
    }
    let mut out = plan.clone();
    out.graph = plan.graph.filter_map(
        |id, n| {
            if hide.contains(&id) {
                return None;
            }
            let mut n = n.clone();
            for u in &mut n.used_by {
                if u.starts_with(SCRIPT) {
                    *u = INPUT.to_string();
                }
            }
            Some(n)
        },
        |_, e| Some(*e),
    );
    (out, hide.len())
}

/// Warnings that only say the REPL's own declarations are unused.
fn is_repl_noise(d: &Diagnostic) -> bool {
    d.severity == Severity::Warning && d.message.contains("__")
}
