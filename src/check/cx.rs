//! The checker's state, shared by the passes over declarations (`items`), pipelines (`stream`)
//! and expressions (`expr`). Those modules add methods to [`Checker`]; they import the state
//! from here rather than from each other, so no two passes import each other.

use super::Probe;
use super::hir;
use crate::catalog::Catalog;
use crate::diagnostics::{Code, Diagnostic};
use crate::job::OnError;
use crate::span::Span;
use crate::syntax::ast;
use crate::types::{RowType, Type};
use std::collections::{HashMap, HashSet};

/// The functions callable from some code: its own file's/module's `fn`s, and `use`d modules.
#[derive(Clone, Debug, Default)]
pub struct FnScope {
    pub fns: HashMap<String, usize>,
    pub modules: HashMap<String, HashMap<String, usize>>,
}

/// A checked function, ready to inline: parameters are locals `0..params.len()`.
#[derive(Clone, Debug)]
pub struct FnHir {
    pub params: Vec<(String, Type)>,
    /// The checked body, with its own calls of `fn`s not inlined (`check::inline` inlines them
    /// when a stage expression calls this one). A body that is just a call of a `fn` without
    /// parameters shares that one's body.
    pub body: std::rc::Rc<Body>,
    /// The body's type.
    pub ty: Type,
    /// Locals of the inlined body (parameters included): each `Let` binds one of its own.
    pub locals: usize,
    pub span: Span,
    /// Node count and depth of the inlined body (a leaf is 0 deep), for the inlining limits.
    pub size: usize,
    pub depth: usize,
    /// Whether evaluating the inlined body can raise a row error.
    pub fallible: bool,
}

/// A checked `fn` body before inlining: HIR in which each call of a `fn` is a `Let` per argument
/// around a leaf `Local(CALL_BASE + i)` standing for the callee's body, `calls[i]`. Only the
/// checker sees this form: stage expressions are inlined completely (no leaf reaches the HIR).
#[derive(Clone, Debug)]
pub struct Body {
    pub expr: hir::Expr,
    pub calls: Vec<Call>,
    /// Locals `expr` uses (parameters included; leaves not counted).
    pub locals: usize,
}

/// A call of a `fn` inside a [`Body`]: the callee, and the locals bound to its parameters.
#[derive(Clone, Debug)]
pub struct Call {
    pub callee: std::rc::Rc<FnHir>,
    pub args: Vec<usize>,
}

/// `Local(CALL_BASE + i)` in a [`Body`] is the leaf of its call `i`, not a local.
pub const CALL_BASE: usize = usize::MAX / 2;

pub(super) enum FnState {
    Unchecked,
    InProgress,
    /// Shared, not copied, by every call (a body is as large as all it inlines).
    Done(Option<std::rc::Rc<FnHir>>),
}

pub(super) struct FnEntry {
    pub decl: ast::FnDecl,
    /// Shared by all fns of a file (a copy per fn made checking quadratic in the number of fns).
    pub scope: std::rc::Rc<FnScope>,
    pub state: FnState,
    pub qualified: String,
}

/// A stream name of a file: a source or a `let`.
#[derive(Clone)]
pub enum StreamDef {
    Source(usize),
    Let(Option<hir::Stream>),
}

pub struct Checker<'p> {
    pub probe: &'p dyn Probe,
    pub catalog: &'p Catalog,
    pub diags: Vec<Diagnostic>,
    pub sources: Vec<hir::Source>,
    pub sinks: Vec<hir::Sink>,
    pub types: Vec<String>,
    pub index: super::index::Index,
    /// Checked `test` items (`flow test`).
    pub tests: Vec<hir::Test>,
    /// `@parallel` / `@batch` hints as written, checked against the mode at the end.
    pub(super) hint_uses: Vec<super::items::HintUse>,
    pub(super) fns: Vec<FnEntry>,
    /// `fn` checks in progress, one inside the other (see `items::MAX_FN_NESTING`).
    pub(super) fn_nesting: usize,
    pub(super) std_modules: HashMap<String, HashMap<String, usize>>,
}

pub(super) struct FileCx<'t> {
    pub name: String,
    pub text: &'t str,
    pub base_dir: String,
    pub schemas: HashMap<String, (RowType, Span)>,
    pub streams: HashMap<String, (StreamDef, Span)>,
    pub used: HashSet<String>,
    pub scope: FnScope,
    pub modules_used: HashSet<String>,
    /// Byte offsets of the line starts of `text`, computed on first use (see `stream::line_of`).
    pub line_starts: std::cell::OnceCell<Vec<usize>>,
}

impl<'p> Checker<'p> {
    pub fn new(probe: &'p dyn Probe, catalog: &'p Catalog) -> Self {
        Checker {
            probe,
            catalog,
            diags: vec![],
            hint_uses: vec![],
            sources: vec![],
            sinks: vec![],
            types: vec![],
            index: Default::default(),
            tests: vec![],
            fns: vec![],
            fn_nesting: 0,
            std_modules: HashMap::new(),
        }
    }
}

pub(super) fn parse_on_error(value: &ast::Expr, base_dir: &str) -> Result<OnError, String> {
    match &value.kind {
        ast::ExprKind::Name(n) if n.name == "fail" => Ok(OnError::Fail),
        ast::ExprKind::Name(n) if n.name == "skip" => Ok(OnError::Skip),
        ast::ExprKind::Call {
            module: None,
            name,
            args,
        } if name.name == "dead_letter" => match args.as_slice() {
            [
                ast::Arg {
                    name: None,
                    value:
                        ast::Expr {
                            kind: ast::ExprKind::Str(p),
                            ..
                        },
                    ..
                },
            ] => Ok(OnError::DeadLetter(join_path(base_dir, p))),
            _ => Err("dead_letter takes one path string".into()),
        },
        _ => Err("expected fail, skip or dead_letter(\"path\")".into()),
    }
}

pub(super) fn positive_int(e: &ast::Expr) -> Option<u32> {
    match e.kind {
        ast::ExprKind::Int(i) if i >= 1 && i <= u32::MAX as i64 => Some(i as u32),
        _ => None,
    }
}

/// Resolves a path from a script against the script's directory.
pub(super) fn join_path(base: &str, p: &str) -> String {
    use std::path::{Component, Path, PathBuf};
    let joined = if base.is_empty() || Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        Path::new(base).join(p)
    };
    // Lexical clean-up (`a/./b/../c` → `a/c`), so equal destinations compare equal and messages
    // show plain paths; a leading `..` is kept.
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        ".".into()
    } else {
        out.to_string_lossy().into_owned()
    }
}

pub(super) fn dup(name: &ast::Ident, what: &str) -> Diagnostic {
    Diagnostic::error(
        Code::DuplicateName,
        format!("{what} `{}` is defined twice", name.name),
    )
    .label(name.span, "defined again here")
}
