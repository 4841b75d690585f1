//! flow: a typed pipeline language and its compiler. See ARCHITECTURE.md for the code map.

pub mod batch;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod codegen;
pub mod connectors;
pub mod diagnostics;
pub mod driver;
pub mod fmt;
pub mod job;
pub mod lsp;
pub mod plan;
pub mod repl;
pub mod runtime;
pub mod span;
pub mod sql;
pub mod stdlib;
pub mod syntax;
pub mod testing;
pub mod types;
