//! The runtime: executes a plan on Timely Dataflow (`flow run`), in three steps a coordinator can
//! split across processes:
//!
//! 1. [`prepare`] (on the coordinating process): turns the logical plan into a [`PhysicalPlan`],
//!    plans input splits and prepares every output (temporary files; this is where a missing
//!    input or an unwritable destination is reported, before any data moves). Its result holds a
//!    [`JobSpec`]: plain serializable data (no closures, no open files), what a worker needs.
//! 2. [`execute`] (on every process that runs workers): builds the process-local environment
//!    from a `JobSpec` (connector registry, kernel factory, the outputs opened for appending)
//!    and runs one timely dataflow on `threads` workers; returns the counters.
//! 3. [`Prepared::commit`] renames the outputs into place and builds the summary, or
//!    [`Prepared::abort`] removes every temporary file: no output appears under its final name
//!    unless the whole job succeeded.
//!
//! [`run`] is the three in one process.
//!
//! Threads: `--threads N` wins; else `mode single(readers: R, processors: P)` gives `R + P`
//! workers, `R` reading and parsing and `P` running the other stages (batches move from readers
//! to processors, `dataflow::exchange`), `mode multi(threads: T)` gives `T` per process (`flow
//! run` starts the processes through [`cluster`]; [`run`] alone runs one, with a warning), and
//! `mode auto` decides from the input size and the cores ([`layout`]). `@parallel(n)` runs a
//! stage on `n` of its workers ([`physical::PhysicalPlan::place`]); hints the mode cannot honour
//! are check-time warnings (W0200, W0201).

pub mod cluster;
mod commit;
pub mod dataflow;
mod distinct;
mod execute;
pub mod group;
pub mod layout;
mod memhint;
pub mod physical;
pub mod policy;
mod prepare;
pub mod progress;
pub mod signals;
mod strstore;
pub mod summary;
mod tagged;

#[cfg(test)]
mod test_kernel;
#[cfg(test)]
mod tests;

pub use commit::{NodeCounts, Outcome};
pub use dataflow::{KernelFactory, Packet};
pub use execute::{Comms, execute, execute_on};
pub use physical::{PhysNode, PhysOp, PhysicalPlan};
pub use prepare::{JobSpec, Prepared, prepare};
pub use summary::{
    DeadLetterSummary, ProcessStage, ProcessSummary, RunSummary, SinkSummary, StageSummary,
};

use crate::codegen::Engine;
use crate::connectors::Registry;
use crate::plan::ir::Plan;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Why a job failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// The job failed (`cause`) while a guessed split boundary was in effect
    /// (`Split::end_guessed`), and the exact check found that guess wrong: the split started
    /// inside a quoted field. Nothing was committed; [`run`] and `cluster::run_multi` run the
    /// job again with exact boundaries (`RunOptions::guess_splits` off, [`exact_again`]).
    SplitGuess {
        file: String,
        offset: u64,
        cause: Box<RunError>,
    },
    /// A worker process of a multi-node job failed (`cause`: the job error it reported) or
    /// was lost (`reason`: its connection dropped, it missed its heartbeats, it never came).
    Worker {
        index: usize,
        host: String,
        pid: Option<u32>,
        reason: String,
        cause: Option<Box<RunError>>,
    },
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
            RunError::SplitGuess {
                file,
                offset,
                cause,
            } => write!(
                f,
                "{file}: the guessed split boundary at byte {offset} lies inside a quoted field \
                 ({cause})"
            ),
            RunError::Worker {
                index,
                host,
                pid,
                reason,
                cause,
            } => {
                write!(f, "worker process {index} on {host}")?;
                if let Some(p) = pid {
                    write!(f, " (pid {p})")?;
                }
                match cause {
                    Some(c) => write!(f, ": {c}"),
                    None => write!(f, ": {reason}"),
                }
            }
        }
    }
}

impl std::error::Error for RunError {}

impl RunError {
    /// A worker process was lost, hung, never came, or stopped on a peer's loss: a failure of
    /// the machinery rather than of the job's data, which a re-run may not meet again.
    pub fn is_worker_loss(&self) -> bool {
        match self {
            RunError::Worker { cause: None, .. } => true,
            RunError::Worker { cause: Some(c), .. } => matches!(**c, RunError::Internal(_)),
            _ => false,
        }
    }
}

#[derive(Clone)]
pub struct RunOptions {
    /// Worker threads (overrides the plan's mode).
    pub threads: Option<usize>,
    /// How kernels run; shipped to workers in the [`JobSpec`].
    pub engine: Engine,
    /// Builds a kernel for a fused chain; called on every worker of this process (by default
    /// `codegen::build_kernel` with `engine`; tests put in their own).
    pub kernel_factory: KernelFactory,
    /// A progress bar on stderr (only when it is a terminal).
    pub progress: bool,
    /// Rows per batch (overrides the mode's `batch`).
    pub batch: Option<usize>,
    /// Back-pressure window in source chunks (default 32).
    pub window: Option<u64>,
    pub registry: Registry,
    /// Processes the job is planned for (1: this one; a coordinator sets its worker count).
    pub processes: usize,
    /// CSV splits may start at a guessed record start where the file has no quote near the
    /// cut (`Split::end_guessed`; checked, see `connectors::split`); off: exact boundaries only.
    pub guess_splits: bool,
}

impl RunOptions {
    /// Kernels by `codegen::build_kernel` with this engine.
    pub fn for_engine(engine: Engine) -> RunOptions {
        let mut o = RunOptions::new(Arc::new(move |row, steps| {
            crate::codegen::build_kernel(row, steps, engine)
        }));
        o.engine = engine;
        o
    }

    /// Kernels from a factory of the caller's.
    pub fn new(kernel_factory: KernelFactory) -> RunOptions {
        RunOptions {
            threads: None,
            engine: Engine::Jit,
            kernel_factory,
            progress: false,
            batch: None,
            window: None,
            registry: Registry::builtin(),
            processes: 1,
            guess_splits: true,
        }
    }
}

/// Runs a job to completion in this process: prepare, execute, then commit or abort. Outputs
/// appear under their final names only if it succeeds.
pub fn run(plan: &Plan, opts: &RunOptions) -> Result<RunSummary, RunError> {
    exact_again(opts, |o| run_once(plan, o))
}

/// Runs `job` with `opts`; if it failed because a guessed split boundary was wrong
/// ([`RunError::SplitGuess`]: nothing of it was committed), prints one note saying so and runs
/// it once more with exact boundaries (`guess_splits` off).
pub fn exact_again<T>(
    opts: &RunOptions,
    job: impl Fn(&RunOptions) -> Result<T, RunError>,
) -> Result<T, RunError> {
    match job(opts) {
        Err(RunError::SplitGuess { file, offset, .. }) => {
            eprintln!(
                "note: {file}: a guessed split boundary (byte {offset}) lies inside a quoted \
                 field; running the job again with exact split boundaries"
            );
            let mut exact = opts.clone();
            exact.guess_splits = false;
            job(&exact)
        }
        r => r,
    }
}

fn run_once(plan: &Plan, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let prepared = prepare(plan, opts)?;
    match execute(&prepared.spec, opts) {
        Ok(outcome) => prepared.commit(&outcome),
        Err(e) => {
            let e = prepared.check_guesses(&opts.registry, e);
            prepared.abort();
            Err(e)
        }
    }
}
