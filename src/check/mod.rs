//! The checker: AST → typed HIR (`hir::Program`) plus diagnostics.

pub mod hir;
