//! `flow lsp`: the language server on standard input/output (see `crate::lsp`).

use super::err;
use std::process::ExitCode;

pub fn cmd_lsp() -> ExitCode {
    match crate::lsp::serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            err(&format!("flow lsp: {e}"));
            ExitCode::from(1)
        }
    }
}
