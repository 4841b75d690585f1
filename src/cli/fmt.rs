//! `flow fmt [--check] [FILE…]`: the canonical layout (see `crate::fmt`). Without files it formats
//! standard input to standard output; with files it rewrites each in place (a temporary file in
//! the same directory, then a rename), or with `--check` only names the files that would change.

use super::{ColorChoice, err, use_color};
use crate::fmt::{self, FmtError};
use crate::span::SourceMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct FmtArgs {
    files: Vec<PathBuf>,
    /// Change nothing: exit 1 and name the files that are not formatted.
    #[arg(long)]
    check: bool,
}

/// The formatted text of `text` (named `name` in diagnostics), or the message to print.
fn format_text(name: &str, text: &str) -> Result<String, String> {
    let mut sources = SourceMap::default();
    let file = sources.add(name, text);
    match fmt::format(text, file) {
        Ok(out) => Ok(out),
        Err(FmtError::Syntax(diags)) => Err(format!(
            "{}flow fmt: {name} has errors; not formatted",
            crate::diagnostics::render(&sources, &diags, use_color(ColorChoice::Auto))
        )),
        Err(FmtError::Changed(why)) => Err(format!("flow fmt: {name}: {why}")),
    }
}

/// Replaces `path` by `text` atomically: a new temporary file beside it, then a rename (so a
/// reader never sees half a file, and a failure leaves the original).
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let base = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{base}.fmt-{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    };
    let result = write();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn cmd_fmt(args: FmtArgs) -> ExitCode {
    if args.files.is_empty() {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            err(&format!("flow fmt: cannot read standard input: {e}"));
            return ExitCode::from(1);
        }
        return match format_text("<stdin>", &text) {
            Ok(out) if args.check => {
                if out == text {
                    ExitCode::SUCCESS
                } else {
                    err("<stdin>");
                    ExitCode::from(1)
                }
            }
            Ok(out) => {
                let mut stdout = std::io::stdout().lock();
                match stdout
                    .write_all(out.as_bytes())
                    .and_then(|_| stdout.flush())
                {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                    Err(e) => {
                        err(&format!("flow fmt: cannot write standard output: {e}"));
                        ExitCode::from(1)
                    }
                }
            }
            Err(msg) => {
                err(&msg);
                ExitCode::from(1)
            }
        };
    }
    let mut failed = false;
    for path in &args.files {
        let name = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                err(&format!("flow fmt: cannot read {name}: {e}"));
                failed = true;
                continue;
            }
        };
        let out = match format_text(&name, &text) {
            Ok(out) => out,
            Err(msg) => {
                err(&msg);
                failed = true;
                continue;
            }
        };
        if out == text {
            continue;
        }
        if args.check {
            if let Err(code) = super::out(&name) {
                return code;
            }
            failed = true;
        } else if let Err(e) = write_atomically(path, &out) {
            err(&format!("flow fmt: cannot write {name}: {e}"));
            failed = true;
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
