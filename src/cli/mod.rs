//! The command line: `flow check | explain | run | compile | fmt | explain-error …`. Exit codes: 0 success,
//! 1 errors in the scripts or a failed job, 2 usage errors.

mod compile;
mod fmt;
mod lsp;
mod repl;
mod run;
mod test;

use crate::diagnostics::{self, Code};
use crate::driver::{self, Compilation, Session};
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
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Planner switches, to compare optimized and unoptimized plans.
#[derive(clap::Args, Clone, Copy)]
struct PlanFlags {
    /// Do not merge identical nodes across pipelines and files.
    #[arg(long)]
    no_dedup: bool,
    /// Do not fuse filter/map chains into single kernels.
    #[arg(long)]
    no_fuse: bool,
    /// Do not push filters and column projections toward sources.
    #[arg(long)]
    no_pushdown: bool,
}

impl PlanFlags {
    fn options(self) -> crate::plan::PlanOptions {
        crate::plan::PlanOptions {
            dedup: !self.no_dedup,
            fuse: !self.no_fuse,
            pushdown: !self.no_pushdown,
        }
    }
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
        /// Show at most N diagnostics, then how many more there are.
        #[arg(long, value_name = "N", default_value_t = diagnostics::DEFAULT_MAX_ERRORS)]
        max_errors: usize,
    },
    /// Run the job: all given files together, as one de-duplicated plan.
    Run(run::RunArgs),
    /// Print the optimized plan: one de-duplicated DAG for all the given files.
    Explain {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print Graphviz DOT instead of text.
        #[arg(long)]
        dot: bool,
        /// `json` prints nodes and de-duplication statistics for tools.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Also print the physical layout: processes, workers, which workers run each stage,
        /// which edges move rows between workers or processes (and `mode auto`'s choice).
        #[arg(long)]
        layout: bool,
        /// With --layout: lay the job out on N worker processes, as `flow run --nodes N`.
        #[arg(long, value_name = "N")]
        nodes: Option<usize>,
        /// With --layout: worker threads per process, as `flow run --threads N`.
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// Show the placement of `flow run --native` (every stage in flow).
        #[arg(long)]
        native: bool,
        #[command(flatten)]
        plan: PlanFlags,
    },
    /// Print the job as SQL for an engine: `--target sql:duckdb|sql:postgres`.
    Compile(compile::CompileArgs),
    /// Format scripts in the canonical layout (in place; stdin to stdout without files).
    Fmt(fmt::FmtArgs),
    /// Serve the language server protocol on standard input/output (for editors).
    Lsp,
    /// Print the long explanation of an error code, e.g. `flow explain-error E0022`.
    ExplainError { code: String },
    /// An interactive session: declarations accumulate, pipelines are previewed on real rows.
    Repl(repl::ReplArgs),
    /// Run the `test "name" { … }` items of scripts on the given rows (nothing is written).
    Test(test::TestArgs),
    /// Run one worker process of multi-node jobs (`flow run` starts these itself).
    Worker(WorkerArgs),
}

#[derive(clap::Args)]
struct WorkerArgs {
    /// Address to listen on for the coordinator, e.g. `0.0.0.0:7000` (port 0: any free port).
    #[arg(long)]
    listen: String,
    /// Serve one job, then exit (otherwise: serve jobs one after another until stopped).
    #[arg(long)]
    once: bool,
    /// Print `flow worker listening on ADDR` on standard output once listening.
    #[arg(long)]
    announce: bool,
    /// Read the job token from the first line of standard input (otherwise from the
    /// FLOW_JOB_TOKEN environment variable), and exit when standard input closes.
    #[arg(long)]
    token_stdin: bool,
    /// Read the job token from this file (a daemon's token; never on the command line).
    #[arg(long, value_name = "FILE", conflicts_with = "token_stdin")]
    token_file: Option<PathBuf>,
}

fn cmd_worker(args: WorkerArgs) -> ExitCode {
    use crate::runtime::cluster::worker;
    crate::runtime::cluster::trace::mark("worker", || "started".into());
    let token = if args.token_stdin {
        worker::token_from_stdin()
    } else {
        crate::runtime::cluster::read_token(args.token_file.as_deref())
    };
    let token = match token {
        Ok(t) => t,
        Err(e) => {
            err(&format!("flow worker: {e}"));
            return ExitCode::from(2);
        }
    };
    ExitCode::from(worker::serve(worker::WorkerOptions {
        listen: args.listen,
        once: args.once,
        announce: args.announce,
        token,
        exit_with_stdin: args.token_stdin,
    }))
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
            max_errors,
        } => cmd_check(&files, format, types, color, max_errors),
        Command::Run(args) => run::cmd_run(args),
        Command::Explain {
            files,
            dot,
            format,
            layout,
            nodes,
            threads,
            native,
            plan,
        } => cmd_explain(
            &files,
            dot,
            format,
            plan,
            layout.then_some((nodes, threads)),
            native,
        ),
        Command::Compile(args) => compile::cmd_compile(args),
        Command::Fmt(args) => fmt::cmd_fmt(args),
        Command::Lsp => lsp::cmd_lsp(),
        Command::ExplainError { code } => cmd_explain_error(&code),
        Command::Worker(args) => cmd_worker(args),
        Command::Repl(args) => repl::cmd_repl(args),
        Command::Test(args) => test::cmd_test(args),
    }
}

pub(crate) fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

/// Writes a line to stdout. A closed pipe (`flow explain x.flow | head`) means the output is
/// no longer wanted: not an error. Any other failure (a full disk, `>/dev/full`) is: the caller
/// exits non-zero rather than report success with the output lost.
fn out(text: &str) -> Result<(), ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|_| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            err(&format!("flow: cannot write standard output: {e}"));
            Err(ExitCode::from(1))
        }
    }
}

/// Writes to stderr, never panicking: when stderr itself cannot be written (`2>/dev/full`, a
/// closed pipe) there is nowhere left to report to, and the exit code still tells.
pub(crate) fn err(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = e.write_all(b"\n");
    }
    let _ = e.flush();
}

/// Prints diagnostics (text on stderr, or JSON on stdout); returns whether there were errors,
/// or the exit code if the JSON could not be written.
fn report(
    c: &Compilation,
    format: Format,
    color: ColorChoice,
    max_errors: usize,
) -> Result<bool, ExitCode> {
    match format {
        Format::Json => {
            let json = diagnostics::to_json_capped(&c.sources, &c.diagnostics, max_errors);
            out(&serde_json::to_string_pretty(&json).unwrap_or_else(|_| "[]".into()))?;
        }
        Format::Text => {
            let text = diagnostics::render_capped(
                &c.sources,
                &c.diagnostics,
                use_color(color),
                max_errors,
            );
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(text.as_bytes());
        }
    }
    Ok(c.has_errors())
}

fn cmd_check(
    files: &[PathBuf],
    format: Format,
    types: bool,
    color: ColorChoice,
    max_errors: usize,
) -> ExitCode {
    let c = driver::check_paths(files);
    let failed = match report(&c, format, color, max_errors) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if types && format == Format::Text {
        for line in &c.types {
            if let Err(code) = out(line) {
                return code;
            }
        }
    }
    if failed {
        if format == Format::Text {
            let errors = c.diagnostics.iter().filter(|d| d.is_error()).count();
            err(&format!(
                "flow check: {errors} error{} found",
                if errors == 1 { "" } else { "s" }
            ));
        }
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// A session holding the files, with the given planner switches; its compilation's diagnostics
/// are printed. `Err` when there are errors (the exit code to return).
fn session(files: &[PathBuf], flags: PlanFlags, max_errors: usize) -> Result<Session, ExitCode> {
    let mut s = Session::default();
    s.load_paths(files);
    s.set_plan_options(flags.options());
    let c = s.compile();
    let failed = report(c, Format::Text, ColorChoice::Auto, max_errors)?;
    if failed || c.plan.is_none() {
        return Err(ExitCode::from(1));
    }
    Ok(s)
}

fn cmd_explain(
    files: &[PathBuf],
    dot: bool,
    format: Format,
    flags: PlanFlags,
    layout: Option<(Option<usize>, Option<usize>)>,
    native: bool,
) -> ExitCode {
    let mut s = match session(files, flags, diagnostics::DEFAULT_MAX_ERRORS) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let Ok(plan) = s.plan() else {
        return ExitCode::from(1);
    };
    // Where each part runs, when the job touches a database (`sql::place`).
    let placement =
        crate::sql::place::uses_database(plan).then(|| crate::sql::place::place(plan, native));
    let text = if dot {
        crate::plan::explain::dot(plan)
    } else if format == Format::Json {
        let mut v = crate::plan::explain::json(plan);
        if let Some(p) = &placement {
            v["placement"] = crate::sql::place::json(p);
        }
        serde_json::to_string_pretty(&v).unwrap_or_default()
    } else {
        let mut t = crate::plan::explain::text(plan);
        if let Some(p) = &placement {
            t = format!("{}\n\n{}", t.trim_end(), crate::sql::place::text(p));
        }
        t
    };
    let text = match layout {
        None => text,
        Some((nodes, threads)) => {
            let mut opts = crate::runtime::RunOptions::for_engine(crate::codegen::Engine::Jit);
            opts.threads = threads;
            match crate::runtime::layout::describe(plan, &opts, nodes) {
                Ok(l) => format!("{}\n\n{l}", text.trim_end()),
                Err(e) => {
                    err(&format!("flow explain: {e}"));
                    return ExitCode::from(1);
                }
            }
        }
    };
    // A password in a literal the plan prints back (a query's text, a filter's string) is masked.
    match out(&diagnostics::mask_secrets(text.trim_end())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

fn cmd_explain_error(code: &str) -> ExitCode {
    match Code::parse(code) {
        Some(c) => {
            match out(&format!(
                "{}: {}\n\n{}",
                c.as_str(),
                c.title(),
                c.explanation()
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(code) => code,
            }
        }
        None => {
            err(&format!(
                "flow explain-error: unknown error code `{code}` (codes look like E0022)"
            ));
            ExitCode::from(2)
        }
    }
}
