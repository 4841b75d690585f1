//! `flow run`: one call into the session (check, plan, kernels, run), then the summary.

use super::{PlanFlags, err, session};
use crate::codegen::{self, Engine};
use crate::driver::RunFailure;
use crate::runtime::{RunOptions, RunSummary};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RunArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Show at most N diagnostics, then how many more there are.
    #[arg(long, value_name = "N", default_value_t = crate::diagnostics::DEFAULT_MAX_ERRORS)]
    max_errors: usize,
    /// Worker threads (overrides the script's mode).
    #[arg(long)]
    threads: Option<usize>,
    /// Rows per batch (overrides the script's mode).
    #[arg(long)]
    batch: Option<usize>,
    /// Worker processes to start on this machine (overrides `mode multi(nodes: N)`; 1 runs in
    /// this process).
    #[arg(long)]
    nodes: Option<usize>,
    /// Seconds without a heartbeat after which a worker process is taken as hung (multi-node).
    #[arg(long, default_value_t = 10.0)]
    heartbeat_timeout: f64,
    /// Re-run the job from scratch up to N times when a worker process is lost or hangs
    /// (multi-node; a job error such as a bad row under `on_error: fail` is not retried).
    /// Overrides `mode multi(retries: N)`; at most 100.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=crate::job::MAX_RETRIES as i64))]
    retries: Option<u32>,
    /// Seconds that starting and connecting the worker processes may take (multi-node).
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// Run the job on worker daemons (`flow worker --listen HOST:PORT`): a file of `host:port`
    /// lines (`#` comments), one worker process per line. Their token: --token-file or
    /// FLOW_JOB_TOKEN.
    #[arg(long, value_name = "FILE")]
    hosts: Option<PathBuf>,
    /// A file holding the worker daemons' token (otherwise FLOW_JOB_TOKEN).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// How row kernels are executed.
    #[arg(long, value_enum, default_value = "jit")]
    engine: EngineArg,
    /// Print the final summary as JSON (on stderr, like the text summary, since sinks may
    /// write stdout).
    #[arg(long, value_enum)]
    summary: Option<SummaryFormat>,
    /// Report kernel compile times and plan details on stderr.
    #[arg(long)]
    verbose: bool,
    /// No progress bar, no summary on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Run the job on another engine instead: `duckdb` (the DuckDB CLI on PATH), `spark` (a
    /// local Spark: FLOW_SPARK_HOME, SPARK_HOME, spark-sql on PATH or ~/.cache/flow-spark) or a
    /// PostgreSQL server `postgres://user@host:port/db` (password from the URL, PGPASSWORD or
    /// ~/.pgpass).
    #[arg(long, value_parser = parse_target)]
    target: Option<String>,
    /// Run every stage in flow's runtime: no part of the job inside PostgreSQL, no stages
    /// pushed into a `postgres` source's query (by default a pipeline whose sources and sinks
    /// are all on one PostgreSQL server runs there; see `flow explain`).
    #[arg(long, conflicts_with = "target")]
    native: bool,
    #[command(flatten)]
    plan: PlanFlags,
}

#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
enum EngineArg {
    Jit,
    Interpreter,
}

#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
enum SummaryFormat {
    Json,
}

pub fn cmd_run(args: RunArgs) -> ExitCode {
    crate::runtime::cluster::trace::mark("flow run", || "started".into());
    let mut session = match session(&args.files, args.plan, args.max_errors) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(target) = &args.target {
        return run_on_engine(&mut session, target, args.quiet);
    }
    let engine = match args.engine {
        EngineArg::Jit => Engine::Jit,
        EngineArg::Interpreter => Engine::Interpreter,
    };
    if args.verbose
        && let Ok(plan) = session.plan()
    {
        for id in plan.graph.node_indices() {
            if let crate::plan::Op::Fused { steps } = &plan.graph[id].op
                && let Some(input) = plan.inputs(id).first()
            {
                let k = codegen::build_kernel(&plan.graph[*input].row, steps, engine);
                let micros = k
                    .compile_micros()
                    .map(|m| format!("{:.2} ms", m as f64 / 1000.0))
                    .unwrap_or_else(|| "-".into());
                err(&format!(
                    "kernel n{}: {} ({} steps), compiled in {micros}",
                    id.index(),
                    k.describe(),
                    steps.len()
                ));
            }
        }
    }
    let _ = crate::runtime::signals::install(); // without it, a job still runs (as before)
    let mut opts = RunOptions::for_engine(engine);
    opts.threads = args.threads;
    opts.batch = args.batch;
    opts.progress = !args.quiet && std::io::stderr().is_terminal();
    let mut cluster = crate::runtime::cluster::ClusterOptions::new(1);
    match (
        seconds(args.heartbeat_timeout),
        seconds(args.connect_timeout),
    ) {
        (Some(h), Some(c)) => {
            cluster.heartbeat_timeout = h;
            cluster.connect_timeout = c;
        }
        _ => {
            err(
                "flow run: --heartbeat-timeout and --connect-timeout take a number of seconds above 0",
            );
            return ExitCode::from(2);
        }
    }
    cluster.heartbeat_interval = cluster
        .heartbeat_interval
        .min(cluster.heartbeat_timeout / 4);
    cluster.verbose = args.verbose;
    if let Some(file) = &args.hosts {
        match crate::runtime::cluster::read_hosts(file) {
            Ok(h) => cluster.hosts = h,
            Err(e) => {
                err(&format!("flow run: {e}"));
                return ExitCode::from(2);
            }
        }
        match crate::runtime::cluster::read_token(args.token_file.as_deref()) {
            Ok(t) => cluster.token = Some(t),
            Err(e) => {
                err(&format!("flow run: {e}"));
                return ExitCode::from(2);
            }
        }
    }
    let declared = match session.plan().map(|p| &p.mode) {
        Ok(crate::job::Mode::Multi { retries, .. }) => *retries,
        _ => 0,
    };
    let retries = args.retries.unwrap_or(declared);
    let mut attempt = 0;
    let result = loop {
        let r = session.run_placed(&opts, args.nodes, &cluster, args.native);
        match &r {
            Err(RunFailure::Job { error, .. }) if attempt < retries && error.is_worker_loss() => {
                attempt += 1;
                err(&format!(
                    "flow: attempt {attempt} failed: {error}; retrying from scratch ({attempt} of {retries})"
                ));
            }
            _ => break r,
        }
    };
    match result {
        Ok(summary) => {
            if args.summary == Some(SummaryFormat::Json) {
                err(&serde_json::to_string_pretty(&summary).unwrap_or_default());
            } else if !args.quiet {
                err(&render_summary(&summary));
            }
            ExitCode::SUCCESS
        }
        Err(RunFailure::Diagnostics(_)) => ExitCode::from(1), // already reported by `session`
        Err(RunFailure::Job {
            diagnostic: Some(d),
            ..
        }) => {
            let text = crate::diagnostics::render(
                &session.compile().sources,
                &[*d],
                super::use_color(super::ColorChoice::Auto),
            );
            err(&text);
            err("error: the job failed; no file output was written under its final name");
            ExitCode::from(1)
        }
        Err(RunFailure::Job { error, .. }) => {
            err(&format!("error: the job failed: {error}"));
            err(
                "no file output was written under its final name (rows already sent to stdout stay sent)",
            );
            ExitCode::from(1)
        }
    }
}

fn seconds(s: f64) -> Option<std::time::Duration> {
    (s.is_finite() && s > 0.0 && s < 1e6).then(|| std::time::Duration::from_secs_f64(s))
}

/// The human summary: rows in / out / errored per stage, rows per sink.
pub fn render_summary(s: &RunSummary) -> String {
    let mut out = String::new();
    if !s.layout.is_empty() {
        out.push_str(&format!("layout: {}\n", s.layout));
    }
    for p in &s.processes {
        out.push_str(&format!(
            "  worker process {} on {} (pid {}, {} thread{}): read {} rows, {} bytes\n",
            p.index,
            p.host,
            p.pid,
            p.threads,
            if p.threads == 1 { "" } else { "s" },
            p.rows_read,
            p.bytes_read
        ));
        // Its rows in / out / errored per stage, in the columns of the stage table below.
        for st in &p.stages {
            let name = s
                .stages
                .iter()
                .find(|x| x.node == st.node)
                .map_or_else(|| format!("#{}", st.node), |x| x.name.clone());
            out.push_str(&format!(
                "    {:<26} {:>12} {:>12} {:>10}\n",
                name, st.rows_in, st.rows_out, st.errored
            ));
        }
    }
    if s.threads == 0 && s.stages.is_empty() {
        // Every part ran inside the database (`sql::place`): no stage ran in flow.
        out.push_str(&format!(
            "done in {:.2}s, no rows through flow\n",
            s.elapsed_secs
        ));
    } else {
        out.push_str(&format!(
            "done in {:.2}s on {} (batch {})\n",
            s.elapsed_secs,
            s.workers(),
            s.batch
        ));
    }
    if !s.stages.is_empty() {
        out.push_str(&format!(
            "  {:<28} {:>12} {:>12} {:>10}\n",
            "stage", "rows in", "rows out", "errored"
        ));
    }
    for st in &s.stages {
        out.push_str(&format!(
            "  {:<28} {:>12} {:>12} {:>10}\n",
            st.name.clone(),
            st.rows_in,
            st.rows_out,
            st.errored
        ));
    }
    for sink in &s.sinks {
        let dest = sink.path.clone().unwrap_or_else(|| "stdout".into());
        out.push_str(&format!(
            "  wrote {} rows to {dest} ({})\n",
            sink.rows_written, sink.origin
        ));
    }
    for d in &s.dead_letters {
        out.push_str(&format!(
            "  {} rejected rows written to {}\n",
            d.rows, d.path
        ));
    }
    for w in &s.warnings {
        out.push_str(&format!("  warning: {w}\n"));
    }
    out
}

fn parse_target(s: &str) -> Result<String, String> {
    if s == "duckdb" || s == "spark" || crate::sql::postgres::is_url(s) {
        Ok(s.to_string())
    } else {
        Err("expected `duckdb`, `spark` or a PostgreSQL URL `postgres://…`".into())
    }
}

/// `flow run --target duckdb|spark|postgres://…`: the job's SQL run by the DuckDB CLI, on a
/// local Spark or on a PostgreSQL server; rows per sink reported.
fn run_on_engine(session: &mut crate::driver::Session, target: &str, quiet: bool) -> ExitCode {
    let pg = crate::sql::postgres::is_url(target);
    let spark = target == "spark";
    let dialect: &dyn crate::sql::Dialect = if pg {
        &crate::sql::Postgres
    } else if spark {
        &crate::sql::Spark
    } else {
        &crate::sql::DuckDb
    };
    let compiled = match session.plan() {
        Ok(plan) => crate::sql::compile_on(plan, dialect, pg.then_some(target)),
        Err(_) => return ExitCode::from(1),
    };
    let statements = match compiled {
        Ok(s) => s,
        Err(errors) => {
            super::compile::report_sql_errors(session, &errors);
            return ExitCode::from(1);
        }
    };
    let start = std::time::Instant::now();
    let mut stdout = std::io::stdout().lock();
    let (result, engine) = if pg {
        (
            crate::sql::postgres::run(target, &statements, &mut stdout),
            format!("PostgreSQL ({})", crate::sql::postgres::redact(target)),
        )
    } else if spark {
        (
            crate::sql::spark_run::run(&statements, &mut stdout),
            "Spark".to_string(),
        )
    } else {
        (
            crate::sql::duckdb::run(&statements, &mut stdout),
            "DuckDB".to_string(),
        )
    };
    match result {
        Ok(sinks) => {
            if !quiet {
                let mut text = format!(
                    "done in {:.2}s on {engine}\n",
                    start.elapsed().as_secs_f64()
                );
                for s in sinks {
                    let dest = s.path.unwrap_or_else(|| "stdout".into());
                    text.push_str(&format!(
                        "  wrote {} rows to {dest} ({})\n",
                        s.rows, s.origin
                    ));
                }
                err(&text);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            match crate::sql::located(&e) {
                // A stop of the job's SQL: shown at the script's expression, like a native row
                // error.
                Some((message, span)) => {
                    let d = crate::diagnostics::Diagnostic::error(
                        crate::diagnostics::Code::RowEvalFailed,
                        format!("the job failed on {engine}: {message}"),
                    )
                    .label(span, "evaluating this expression");
                    let text = crate::diagnostics::render(
                        &session.compile().sources,
                        &[d],
                        super::use_color(super::ColorChoice::Auto),
                    );
                    err(&text);
                }
                None => err(&format!("error: {e}")),
            }
            err("no file output was written under its final name");
            ExitCode::from(1)
        }
    }
}
