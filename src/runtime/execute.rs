//! Step 2 of a run, on every process that runs workers: the process-local environment built
//! from a [`JobSpec`], and one timely dataflow on this process's worker threads.

use super::commit::{NodeCounts, Outcome};
use super::dataflow::{self, Job};
use super::{JobSpec, RunError, RunOptions, policy, progress};
use crate::connectors::sink::SharedFile;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use timely::WorkerConfig;
use timely::communication::AllocatorBuilder;

/// Runs this process's workers of the job to completion and returns what they counted, or the
/// first error any of them raised. Writes only to the temporary files named in `spec`.
pub fn execute(spec: &JobSpec, opts: &RunOptions) -> Result<Outcome, RunError> {
    let shared = Arc::new(policy::Shared::new(spec.plan.nodes.len()));
    execute_on(spec, opts, None, shared)
}

/// The communication of a process of a cluster: timely's allocators over the mesh sockets and
/// the guard of its network threads (from `initialize_networking_from_sockets`).
pub type Comms = (Vec<AllocatorBuilder>, Box<dyn std::any::Any + Send>);

/// As [`execute`], on the given cluster communication (`None`: this process alone) and with the
/// caller's counters (a worker process reports them in its heartbeats while the job runs).
pub fn execute_on(
    spec: &JobSpec,
    opts: &RunOptions,
    comms: Option<Comms>,
    shared: Arc<policy::Shared>,
) -> Result<Outcome, RunError> {
    let threads = spec.plan.threads.max(1);
    let mut sink_files = Vec::with_capacity(spec.sink_files.len());
    for path in &spec.sink_files {
        sink_files.push(match path {
            Some(p) => Some(SharedFile::new(
                OpenOptions::new()
                    .append(true)
                    .open(p)
                    .map_err(|e| RunError::Output {
                        path: p.display().to_string(),
                        reason: format!("cannot open the temporary output: {e}"),
                    })?,
            )),
            None => None,
        });
    }
    let job = Arc::new(Job {
        sink_files,
        sink_tokens: spec.sink_tokens.clone(),
        dead_parts: Arc::new(
            spec.dead_parts
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        ),
        plan: spec.plan.clone(),
        registry: opts.registry.clone(),
        factory: opts.kernel_factory.clone(),
    });
    let sources = job.plan.sources();
    let progress = progress::Progress::start(opts.progress, shared.clone(), sources);

    let (j2, s2) = (job.clone(), shared.clone());
    let logic = move |worker: &mut timely::worker::Worker| {
        let index = worker.index();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            dataflow::run_worker(worker, j2.clone(), s2.clone())
        }));
        if let Err(p) = res {
            s2.fail(RunError::Internal(format!(
                "worker {index} panicked: {}",
                dataflow::panic_message(p)
            )));
        }
        s2.workers_done.fetch_add(1, Ordering::SeqCst);
    };
    let guards = match comms {
        None => timely::execute(timely::Config::process(threads), logic),
        Some((builders, others)) => {
            timely::execute::execute_from(builders, others, WorkerConfig::default(), logic)
        }
    }
    .map_err(RunError::Internal)?;
    let joined = guards.join();
    progress.finish();
    for r in joined {
        if let Err(e) = r {
            shared.fail(RunError::Internal(format!("a worker failed: {e}")));
        }
    }
    if let Some(e) = shared.take_error() {
        return Err(e);
    }
    let nodes = NodeCounts::snapshot(&shared);
    let dead_rows = shared
        .dead_rows
        .lock()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default();
    Ok(Outcome { nodes, dead_rows })
}
