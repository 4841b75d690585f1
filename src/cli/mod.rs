//! The command line: `flow check | explain | run | explain-error …`. Exit codes: 0 success,
//! 1 errors in the scripts or a failed job, 2 usage errors.

use crate::diagnostics::{self, Code};
use crate::driver::{self, Compilation};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "flow",
    version,
    about = "flow: a typed pipeline language and its compiler"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Check scripts for errors without running them.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format of the diagnostics.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Also print the type of every source, let, fn and sink.
        #[arg(long)]
        types: bool,
        #[arg(long, value_enum, default_value = "auto")]
        color: ColorChoice,
    },
    /// Print the long explanation of an error code, e.g. `flow explain-error E0022`.
    ExplainError { code: String },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Check {
            files,
            format,
            types,
            color,
        } => cmd_check(&files, format, types, color),
        Command::ExplainError { code } => cmd_explain_error(&code),
    }
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

/// Prints diagnostics (text on stderr, or JSON on stdout); returns whether there were errors.
fn report(c: &Compilation, format: Format, color: ColorChoice) -> bool {
    match format {
        Format::Json => {
            let json = diagnostics::to_json(&c.sources, &c.diagnostics);
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_else(|_| "[]".into())
            );
        }
        Format::Text => {
            let text = diagnostics::render(&c.sources, &c.diagnostics, use_color(color));
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    }
    c.has_errors()
}

fn cmd_check(files: &[PathBuf], format: Format, types: bool, color: ColorChoice) -> ExitCode {
    let c = driver::check_paths(files);
    let failed = report(&c, format, color);
    if types && format == Format::Text {
        for line in &c.types {
            println!("{line}");
        }
    }
    if failed {
        if format == Format::Text {
            let errors = c.diagnostics.iter().filter(|d| d.is_error()).count();
            eprintln!(
                "flow check: {errors} error{} found",
                if errors == 1 { "" } else { "s" }
            );
        }
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn cmd_explain_error(code: &str) -> ExitCode {
    match Code::from_str(code) {
        Some(c) => {
            println!("{}: {}\n\n{}", c.as_str(), c.title(), c.explanation());
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("flow explain-error: unknown error code `{code}` (codes look like E0022)");
            ExitCode::from(2)
        }
    }
}
