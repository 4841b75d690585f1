//! The runtime: executes a plan on Timely Dataflow (`flow run`).
//!
//! `run` turns the logical plan into a [`PhysicalPlan`] (serde-serializable), plans input splits
//! and prepares every output (temporary part files; this is where a missing input or an
//! unwritable destination is reported, before any data moves), then runs one timely dataflow
//! per job on `threads` workers of this process (`timely::Config::process`). The multi-node mode
//! will build the same `Job` from the shipped physical plan and start the same `run_worker` on
//! each process. On success outputs are committed (renamed into place); on any failure every
//! temporary file is removed and no output appears under its final name.
//!
//! Threads: `--threads N` wins; else `mode single(readers: R, processors: P)` gives `R + P`
//! workers (each timely worker both reads its splits and runs the kernels on them, so the ratio
//! only sets the total), `mode multi(threads: T)` gives `T` (with a warning: multi-node runs
//! single-node here), and `mode auto` the available cores. `@parallel(n)` hints are reported as
//! warnings in the summary: every stage runs on every worker. `@batch(n)` on a source sets its
//! chunk size; elsewhere it is reported as a warning.

pub mod dataflow;
pub mod group;
pub mod physical;
pub mod policy;
pub mod progress;
pub mod signals;
pub mod summary;

#[cfg(test)]
mod test_kernel;
#[cfg(test)]
mod tests;

pub use dataflow::{KernelFactory, Packet};
pub use physical::{PhysNode, PhysOp, PhysicalPlan};
pub use summary::{DeadLetterSummary, RunSummary, SinkSummary, StageSummary};

use crate::connectors::sink::{AtomicOutput, SharedFile};
use crate::connectors::{ConnectorError, Registry, SinkTarget};
use crate::job::{ErrorPolicy, OnError};
use crate::plan::ir::Plan;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Why a job failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum RunError {
    /// An input could not be read, or a row was rejected under `on_error: fail`.
    Input {
        file: String,
        /// 1-based line where the record starts.
        line: Option<u64>,
        /// 1-based field number and column name.
        column: Option<(usize, String)>,
        reason: String,
    },
    /// A stage failed (an int sum overflow, a kernel that could not be built…).
    Stage { stage: String, reason: String },
    /// A row's evaluation failed under `on_error: fail` (division by zero, overflow…).
    RowEval {
        stage: String,
        /// The script span of the failing filter or map step.
        at: Option<crate::span::Span>,
        code: crate::stdlib::RowErrorCode,
        /// The input row, as JSON.
        row: String,
    },
    /// An output could not be prepared or written.
    Output { path: String, reason: String },
    /// More rows were rejected than `max_errors` allows.
    TooManyErrors {
        place: String,
        errors: u64,
        limit: String,
        /// The last rejection, as a message ("" when checked at the end).
        last: String,
    },
    /// The plan cannot be run (unknown connector, malformed graph).
    Plan(String),
    /// A bug: a panic caught in a worker.
    Internal(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Input {
                file,
                line,
                column,
                reason,
            } => {
                f.write_str(file)?;
                if let Some(l) = line {
                    write!(f, ":{l}")?;
                    if let Some((i, _)) = column {
                        write!(f, ":{i}")?;
                    }
                }
                if let Some((_, name)) = column {
                    write!(f, ": column `{name}`")?;
                }
                write!(f, ": {reason}")
            }
            RunError::Stage { stage, reason } => write!(f, "stage {stage}: {reason}"),
            RunError::RowEval {
                stage, code, row, ..
            } => write!(
                f,
                "stage {stage}: {} (error code {}) in row {row}",
                code.message(),
                *code as u32
            ),
            RunError::Output { path, reason } => write!(f, "{path}: {reason}"),
            RunError::TooManyErrors {
                place,
                errors,
                limit,
                last,
            } => {
                write!(
                    f,
                    "too many rejected rows in {place}: {errors} (max_errors: {limit})"
                )?;
                if !last.is_empty() {
                    write!(f, "; last: {last}")?;
                }
                Ok(())
            }
            RunError::Plan(m) => write!(f, "cannot run this plan: {m}"),
            RunError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for RunError {}

#[derive(Clone)]
pub struct RunOptions {
    /// Worker threads (overrides the plan's mode).
    pub threads: Option<usize>,
    /// Builds a kernel for a fused chain; called on every worker.
    pub kernel_factory: KernelFactory,
    /// A progress bar on stderr (only when it is a terminal).
    pub progress: bool,
    /// Rows per batch (overrides the mode's `batch`).
    pub batch: Option<usize>,
    /// Back-pressure window in source chunks (default 32).
    pub window: Option<u64>,
    pub registry: Registry,
}

impl RunOptions {
    pub fn new(kernel_factory: KernelFactory) -> RunOptions {
        RunOptions {
            threads: None,
            kernel_factory,
            progress: false,
            batch: None,
            window: None,
            registry: Registry::builtin(),
        }
    }
}

fn connector_input_error(e: crate::connectors::ConnectorError) -> RunError {
    RunError::Input {
        file: e.place,
        line: None,
        column: None,
        reason: e.reason,
    }
}

/// Runs a job to completion. Outputs appear under their final names only if it succeeds.
pub fn run(plan: &Plan, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let (threads, batch, mut warnings) = physical::resolve_threads(&plan.mode, opts.threads)?;
    let batch = opts.batch.unwrap_or(batch).max(1);
    let mut phys = PhysicalPlan::from_plan(plan, threads, batch)?;
    if let Some(w) = opts.window {
        phys.window = w.max(1);
    }
    let registry = opts.registry.clone();

    // Plan splits, collect dead-letter paths, prepare outputs: all before any data moves.
    let mut dead_paths: Vec<String> = Vec::new();
    let add_policy = |p: &ErrorPolicy, dead: &mut Vec<String>| {
        if let OnError::DeadLetter(path) = &p.on_error
            && !dead.contains(path)
        {
            dead.push(path.clone());
        }
    };
    let mut outputs: Vec<Option<(AtomicOutput, SharedFile)>> = Vec::new();
    let mut final_paths: HashMap<PathBuf, String> = HashMap::new();
    let mut claim = |path: &str, what: String| -> Result<(), RunError> {
        let abs = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
        if let Some(other) = final_paths.insert(abs, what.clone()) {
            return Err(RunError::Output {
                path: path.to_string(),
                reason: format!("written by both {other} and {what}"),
            });
        }
        Ok(())
    };
    for node in &mut phys.nodes {
        if let Some(p) = node.hints.parallel {
            warnings.push(format!(
                "@parallel({p}) on {} is not honoured: every stage runs on all {threads} workers",
                node.name
            ));
        }
        if let (Some(b), false) = (node.hints.batch, matches!(node.op, PhysOp::Source { .. })) {
            warnings.push(format!(
                "@batch({b}) on {} is not honoured: batch sizes are set at the sources",
                node.name
            ));
        }
        match &mut node.op {
            PhysOp::Source { spec, splits } => {
                let conn = registry.source(&spec.connector).ok_or_else(|| {
                    RunError::Plan(format!("unknown source connector `{}`", spec.connector))
                })?;
                *splits = conn.plan(spec, threads).map_err(connector_input_error)?;
                add_policy(&spec.policy, &mut dead_paths);
            }
            PhysOp::Kernel { steps } => {
                for s in steps.iter() {
                    add_policy(&s.policy, &mut dead_paths);
                }
            }
            PhysOp::Sink { spec, sink } => {
                let conn = registry.sink(&spec.connector).ok_or_else(|| {
                    RunError::Plan(format!("unknown sink connector `{}`", spec.connector))
                })?;
                conn.validate(spec).map_err(|e| RunError::Output {
                    path: spec.path.clone().unwrap_or_else(|| e.place.clone()),
                    reason: e.reason,
                })?;
                while outputs.len() <= *sink {
                    outputs.push(None);
                }
                if conn.target(spec) == SinkTarget::File {
                    let path = spec.path.clone().unwrap_or_default();
                    claim(&path, format!("sink {}", spec.origin))?;
                    let fail = |reason: String| RunError::Output {
                        path: path.clone(),
                        reason,
                    };
                    let out =
                        AtomicOutput::prepare(std::path::Path::new(&path), 1).map_err(|e| {
                            RunError::Output {
                                path: e.place,
                                reason: e.reason,
                            }
                        })?;
                    let file = out
                        .open_part(0)
                        .map_err(|e| fail(format!("cannot write output: {e}")))?;
                    let file = SharedFile::new(file);
                    // The header (if the format has one) goes first, before any worker writes;
                    // the workers' writers then only write records.
                    conn.writer(spec, &node.row, Box::new(file.clone()), true)
                        .and_then(|mut w| {
                            w.finish()
                                .map_err(|e| ConnectorError::new(&path, e.to_string()))
                        })
                        .map_err(|e| fail(e.reason))?;
                    outputs[*sink] = Some((out, file));
                }
            }
            _ => {}
        }
    }
    let mut dead_outputs: Vec<(String, AtomicOutput)> = Vec::new();
    for path in &dead_paths {
        claim(path, "a dead-letter output".to_string())?;
        let out = AtomicOutput::prepare(std::path::Path::new(path), threads).map_err(|e| {
            RunError::Output {
                path: e.place,
                reason: e.reason,
            }
        })?;
        dead_outputs.push((path.clone(), out));
    }

    let job = Arc::new(dataflow::Job {
        sink_files: outputs
            .iter()
            .map(|o| o.as_ref().map(|(_, f)| f.clone()))
            .collect(),
        dead_parts: Arc::new(
            dead_outputs
                .iter()
                .map(|(p, o)| (p.clone(), o.parts.clone()))
                .collect(),
        ),
        plan: phys,
        registry,
        factory: opts.kernel_factory.clone(),
    });
    let shared = Arc::new(policy::Shared::new(job.plan.nodes.len()));
    let sources: Vec<usize> = job
        .plan
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.op, PhysOp::Source { .. }))
        .map(|(i, _)| i)
        .collect();
    let progress = progress::Progress::start(opts.progress, shared.clone(), sources);

    let (j2, s2) = (job.clone(), shared.clone());
    let guards = timely::execute(timely::Config::process(threads), move |worker| {
        let index = worker.index();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            dataflow::run_worker(worker, j2.clone(), s2.clone())
        }));
        if let Err(p) = res {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            s2.fail(RunError::Internal(format!(
                "worker {index} panicked: {msg}"
            )));
        }
        s2.workers_done.fetch_add(1, Ordering::SeqCst);
    })
    .map_err(RunError::Internal)?;
    let joined = guards.join();
    progress.finish();
    for r in joined {
        if let Err(e) = r {
            shared.fail(RunError::Internal(format!("a worker failed: {e}")));
        }
    }

    // End-of-job checks (ratio thresholds), then commit or discard.
    let counters = |i: usize| {
        let c = &shared.nodes[i];
        (
            c.rows_in.load(Ordering::Relaxed),
            c.rows_out.load(Ordering::Relaxed),
            c.errors.load(Ordering::Relaxed),
            c.bytes.load(Ordering::Relaxed),
        )
    };
    for (i, node) in job.plan.nodes.iter().enumerate() {
        let (rows_in, _, errors, _) = counters(i);
        let policies: Vec<&ErrorPolicy> = match &node.op {
            PhysOp::Source { spec, .. } => vec![&spec.policy],
            PhysOp::Kernel { steps } => steps.iter().map(|s| &s.policy).collect(),
            _ => vec![],
        };
        for p in policies {
            if let Some(e) = policy::check_ratio(p, &node.name, errors, rows_in) {
                shared.fail(e);
            }
        }
    }
    if let Some(e) = shared.take_error() {
        for (o, _) in outputs.iter_mut().flatten() {
            o.discard();
        }
        for (_, o) in dead_outputs.iter_mut() {
            o.discard();
        }
        return Err(e);
    }
    let commit_err = |path: &std::path::Path, e: std::io::Error| RunError::Output {
        path: path.display().to_string(),
        reason: format!("cannot move the finished output into place: {e}"),
    };
    let mut failure = None;
    for (o, _) in outputs.iter_mut().flatten() {
        if failure.is_none()
            && let Err(e) = o.commit()
        {
            failure = Some(commit_err(&o.final_path, e));
        }
    }
    for (_, o) in dead_outputs.iter_mut() {
        if failure.is_none()
            && let Err(e) = o.commit()
        {
            failure = Some(commit_err(&o.final_path, e));
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }

    let mut summary = RunSummary {
        threads,
        batch,
        elapsed_secs: 0.0,
        warnings,
        ..RunSummary::default()
    };
    for (i, node) in job.plan.nodes.iter().enumerate() {
        let (rows_in, rows_out, errored, bytes_read) = counters(i);
        summary.stages.push(StageSummary {
            node: i,
            name: node.name.clone(),
            kind: node.kind.clone(),
            rows_in,
            rows_out,
            errored,
            bytes_read,
        });
        if let PhysOp::Sink { spec, .. } = &node.op {
            summary.sinks.push(SinkSummary {
                origin: spec.origin.clone(),
                connector: spec.connector.clone(),
                path: spec
                    .path
                    .clone()
                    .filter(|_| registry_target(&opts.registry, spec) == Some(SinkTarget::File)),
                rows_written: rows_out,
            });
        }
    }
    let dead_rows = shared
        .dead_rows
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    for (path, _) in &dead_outputs {
        summary.dead_letters.push(DeadLetterSummary {
            path: path.clone(),
            rows: dead_rows.get(path).copied().unwrap_or(0),
        });
    }
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn registry_target(r: &Registry, spec: &crate::plan::ir::SinkSpec) -> Option<SinkTarget> {
    r.sink(&spec.connector).map(|c| c.target(spec))
}
