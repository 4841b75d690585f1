//! `flow lsp`: the language server on standard input/output (see `crate::lsp`).

use super::err;
use std::process::ExitCode;

pub fn cmd_lsp() -> ExitCode {
    // Re-checks on every change reuse database descriptions for a while (driver::probe).
    crate::driver::cache_descriptions();
    match crate::lsp::serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            err(&format!("flow lsp: {e}"));
            ExitCode::from(1)
        }
    }
}
