//! Errors the planner reports.

use crate::span::Span;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// Two sinks write the same destination (same file path, or both standard output).
    /// `path` is the destination as written (the connector name for stdout), `first` and
    /// `second` the two sink statements in program order.
    DuplicateSink {
        path: String,
        first: Span,
        second: Span,
    },
    /// The HIR broke an invariant the checker guarantees (a source index or a column index out
    /// of range…). This is a compiler bug, reported instead of panicking.
    Internal(String),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::DuplicateSink { path, .. } => {
                write!(f, "two sinks write to the same destination `{path}`")
            }
            PlanError::Internal(msg) => write!(f, "internal planner error: {msg}"),
        }
    }
}

impl std::error::Error for PlanError {}
