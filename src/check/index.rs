//! The checker's index: what the checker learned about each span, for editors (the language
//! server's hover, completion and inlay hints). Filled as a side record while checking, also
//! for files with errors (every part that could be typed is there), and read by nobody inside
//! the compiler: the planner sees only the HIR.

use crate::span::Span;
use crate::types::{RowType, Type};

/// Spans mapped to types, in checking order (entries for one span may repeat: the last wins).
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// Every expression that was typed.
    pub exprs: Vec<ExprEntry>,
    /// Every stage whose input was known: its input row and, if it checked, its output row.
    pub stages: Vec<StageEntry>,
    /// Stream names in pipelines (heads): the rows they denote.
    pub streams: Vec<(Span, RowType)>,
    /// Declared names (sources, lets, fns): a one-line description with their type.
    pub decls: Vec<(Span, String)>,
}

#[derive(Clone, Debug)]
pub struct ExprEntry {
    pub span: Span,
    pub ty: Type,
    /// The expression reads a column of the row (a field name).
    pub field: bool,
}

#[derive(Clone, Debug)]
pub struct StageEntry {
    pub span: Span,
    pub input: RowType,
    pub output: Option<RowType>,
}

impl Index {
    pub(super) fn expr(&mut self, span: Span, ty: Type, field: bool) {
        self.exprs.push(ExprEntry { span, ty, field });
    }

    pub(super) fn stage(&mut self, span: Span, input: &RowType, output: Option<&RowType>) {
        self.stages.push(StageEntry {
            span,
            input: input.clone(),
            output: output.cloned(),
        });
    }

    pub(super) fn stream(&mut self, span: Span, row: &RowType) {
        self.streams.push((span, row.clone()));
    }

    pub(super) fn decl(&mut self, span: Span, what: String) {
        self.decls.push((span, what));
    }
}
