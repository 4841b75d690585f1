//! Step 1 of a run, on the coordinating process: the physical plan, input splits and every
//! output prepared (temporary files next to the final names) before any data moves.

use super::physical::{self, PhysOp, PhysicalPlan};
use super::{RunError, RunOptions};
use crate::codegen::Engine;
use crate::connectors::sink::AtomicOutput;
use crate::connectors::{ConnectorError, PendingOutput, SinkTarget};
use crate::job::{ErrorPolicy, OnError};
use crate::plan::ir::Plan;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What every worker process needs to run its part of a job: plain data, serializable, with no
/// closures, open files or locks, so a coordinator can ship it to other processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub plan: PhysicalPlan,
    pub engine: Engine,
    /// Per sink (`PhysOp::Sink::sink`): the temporary file that all workers append whole
    /// records to (its header is already written), for file sinks; `None` for standard output.
    pub sink_files: Vec<Option<PathBuf>>,
    /// Per sink: the key of the transaction its writer loads into, for sinks that write in a
    /// transaction (`SinkTarget::Transaction`, opened here by `SinkConnector::begin`).
    #[serde(default)]
    pub sink_tokens: Vec<Option<String>>,
    /// Per dead-letter path: one temporary part file per worker.
    pub dead_parts: BTreeMap<String, Vec<PathBuf>>,
    /// Processes the job runs on (each with `plan.threads` workers; splits and dead-letter parts
    /// are planned for all `processes × threads` workers, indexed by timely's global index).
    #[serde(default = "one")]
    pub processes: usize,
}

fn one() -> usize {
    1
}

/// A prepared job: its [`JobSpec`] and the outputs it will commit or discard.
pub struct Prepared {
    pub spec: JobSpec,
    pub(super) outputs: Vec<Option<AtomicOutput>>,
    pub(super) dead_outputs: Vec<(String, AtomicOutput)>,
    /// Open transactions of the sinks that write in one, committed before the files.
    pub(super) pending: Vec<(usize, Box<dyn PendingOutput>)>,
    pub(super) warnings: Vec<String>,
    pub(super) started: Instant,
}

impl Prepared {
    /// `error` ended the job: if a guessed split boundary was in effect, checks every guess
    /// exactly (a scan from the start of its file), and a wrong one turns `error` into
    /// [`RunError::SplitGuess`] (a guess that cannot be checked counts as wrong: the re-run with
    /// exact boundaries is always safe).
    pub fn check_guesses(
        &self,
        registry: &crate::connectors::Registry,
        error: RunError,
    ) -> RunError {
        for node in &self.spec.plan.nodes {
            let PhysOp::Source { spec, splits } = &node.op else {
                continue;
            };
            for s in splits.iter().flatten().filter(|s| s.end_guessed) {
                let holds = registry
                    .source(&spec.connector)
                    .is_some_and(|c| c.guess_holds(spec, s).unwrap_or(false));
                if !holds {
                    let file = s.path.as_ref().map(|p| p.display().to_string());
                    return RunError::SplitGuess {
                        file: file.unwrap_or_else(|| spec.name.clone()),
                        offset: s.end,
                        cause: Box::new(error),
                    };
                }
            }
        }
        error
    }
}

fn connector_input_error(e: ConnectorError) -> RunError {
    RunError::Input {
        file: e.place,
        line: None,
        column: None,
        reason: e.reason,
    }
}

fn output_error(e: ConnectorError) -> RunError {
    RunError::Output {
        path: e.place,
        reason: e.reason,
    }
}

/// Plans splits, collects dead-letter paths and prepares every output: all before any data
/// moves, so a missing input or an unwritable destination fails the job with nothing written.
pub fn prepare(plan: &Plan, opts: &RunOptions) -> Result<Prepared, RunError> {
    let started = Instant::now();
    let largest = super::layout::largest_parallel(plan);
    let t = physical::resolve_threads(&plan.mode, opts.threads, opts.processes, largest)?;
    let mut warnings = t.warnings;
    let batch = opts.batch.unwrap_or(t.batch).max(1);
    let mut phys = PhysicalPlan::from_plan(plan, t.threads, batch)?;
    phys.readers = t.readers;
    if let Some(w) = opts.window {
        phys.window = w.max(1);
    }
    let processes = opts.processes.max(1);
    let workers = t.threads.saturating_mul(processes);
    warnings.extend(phys.place(processes));
    let registry = &opts.registry;
    let mut dead_paths: Vec<String> = Vec::new();
    let add_policy = |p: &ErrorPolicy, dead: &mut Vec<String>| {
        if let OnError::DeadLetter(path) = &p.on_error
            && !dead.contains(path)
        {
            dead.push(path.clone());
        }
    };
    let mut outputs: Vec<Option<AtomicOutput>> = Vec::new();
    let mut pending: Vec<(usize, Box<dyn PendingOutput>)> = Vec::new();
    let mut tokens: Vec<Option<String>> = Vec::new();
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
    // Rows sent to standard output (or written in place to a device or FIFO) stay sent when
    // the job fails, so no split may start at a
    // guess there (a wrong guess is found only when a reader reaches it, or when the job
    // fails); and a `limit` may stop the readers before they get to their guessed ends.
    let mut undoable = !phys.nodes.iter().any(|n| matches!(n.op, PhysOp::Limit(_)));
    for node in &mut phys.nodes {
        match &mut node.op {
            PhysOp::Source { spec, splits } => {
                let conn = registry.source(&spec.connector).ok_or_else(|| {
                    RunError::Plan(format!("unknown source connector `{}`", spec.connector))
                })?;
                // Planned for the workers that run the source, then laid out by global index.
                let on = &node.workers;
                let planned = conn
                    .plan(spec, on.len().max(1))
                    .map_err(connector_input_error)?;
                *splits = vec![Vec::new(); workers];
                for (&w, mine) in on.iter().zip(planned) {
                    if let Some(slot) = splits.get_mut(w) {
                        *slot = mine;
                    }
                }
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
                while tokens.len() <= *sink {
                    tokens.push(None);
                }
                let target = conn.target(spec);
                if target == SinkTarget::Transaction {
                    // The transaction is held by the process of the sink's one writer: this one,
                    // or, multi-node, the worker process that runs it, which opens it itself
                    // (`cluster::transaction_sinks`) and commits it on the coordinator's word.
                    if processes == 1 {
                        let p = conn.begin(spec, &node.row).map_err(output_error)?;
                        tokens[*sink] = Some(p.token());
                        pending.push((*sink, p));
                    }
                } else if target == SinkTarget::Stdout {
                    undoable = false;
                } else {
                    let path = spec.path.clone().unwrap_or_default();
                    claim(&path, format!("sink {}", spec.origin))?;
                    let fail = |reason: String| RunError::Output {
                        path: path.clone(),
                        reason,
                    };
                    let out = AtomicOutput::prepare(Path::new(&path), 1).map_err(output_error)?;
                    undoable &= !out.is_direct();
                    let file = out
                        .open_part(0)
                        .map_err(|e| fail(format!("cannot write output: {e}")))?;
                    // The header (if the format has one) goes first, before any worker writes;
                    // the workers' writers then only append records. A one-writer file is
                    // written whole by its writer.
                    if target == SinkTarget::File {
                        conn.writer(spec, &node.row, Box::new(file), true)
                            .and_then(|mut w| {
                                w.finish()
                                    .map_err(|e| ConnectorError::new(&path, e.to_string()))
                            })
                            .map_err(|e| fail(e.reason))?;
                    }
                    outputs[*sink] = Some(out);
                }
            }
            _ => {}
        }
    }
    let mut dead_outputs: Vec<(String, AtomicOutput)> = Vec::new();
    for path in &dead_paths {
        claim(path, "a dead-letter output".to_string())?;
        let out = AtomicOutput::prepare(Path::new(path), workers).map_err(output_error)?;
        undoable &= !out.is_direct();
        dead_outputs.push((path.clone(), out));
    }
    if !(undoable && opts.guess_splits) {
        for node in &mut phys.nodes {
            if let PhysOp::Source { splits, .. } = &mut node.op {
                crate::connectors::split::unguess(splits);
            }
        }
    }
    let spec = JobSpec {
        sink_files: outputs
            .iter()
            .map(|o| o.as_ref().and_then(|o| o.parts.first().cloned()))
            .collect(),
        sink_tokens: tokens,
        dead_parts: dead_outputs
            .iter()
            .map(|(p, o)| (p.clone(), o.parts.clone()))
            .collect(),
        plan: phys,
        engine: opts.engine,
        processes,
    };
    Ok(Prepared {
        spec,
        outputs,
        dead_outputs,
        pending,
        warnings,
        started,
    })
}
