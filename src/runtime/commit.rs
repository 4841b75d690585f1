//! Step 3 of a run, on the coordinating process: the end-of-job checks over everything the
//! workers counted, then every output renamed into place (commit) or removed (abort).

use super::physical::PhysOp;
use super::{DeadLetterSummary, Prepared, RunError, RunSummary, SinkSummary, StageSummary, policy};
use crate::job::ErrorPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// One node's counters, summed over the workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCounts {
    pub rows_in: u64,
    pub rows_out: u64,
    pub errors: u64,
    pub bytes: u64,
}

impl NodeCounts {
    /// The counters of every node of a process so far (read while its workers run, for a
    /// heartbeat, or after they are done).
    pub fn snapshot(shared: &policy::Shared) -> Vec<NodeCounts> {
        shared
            .nodes
            .iter()
            .map(|c| NodeCounts {
                rows_in: c.rows_in.load(Ordering::Relaxed),
                rows_out: c.rows_out.load(Ordering::Relaxed),
                errors: c.errors.load(Ordering::Relaxed),
                bytes: c.bytes.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// What the workers of a successful execution counted (serializable: a worker process reports
/// it to the coordinator, which adds the processes' outcomes up).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Per physical node.
    pub nodes: Vec<NodeCounts>,
    /// Rows written to each dead-letter path.
    pub dead_rows: BTreeMap<String, u64>,
}

impl Prepared {
    /// The end-of-job thresholds (`max_errors` ratios), then every output moved into place and
    /// the summary; on any failure nothing appears under a final name.
    pub fn commit(self, outcome: &Outcome) -> Result<RunSummary, RunError> {
        self.commit_with(outcome, || Ok(Vec::new()))
    }

    /// As [`Prepared::commit`], with transactions held by other processes (multi-node: the
    /// worker process of a transactional sink's writer): `remote` commits them after the
    /// end-of-job checks and before the files, and returns each one's sink and description;
    /// its error fails the job with every file absent.
    pub fn commit_with<R>(mut self, outcome: &Outcome, remote: R) -> Result<RunSummary, RunError>
    where
        R: FnOnce() -> Result<Vec<(usize, String)>, RunError>,
    {
        let count = |i: usize| outcome.nodes.get(i).copied().unwrap_or_default();
        for (i, node) in self.spec.plan.nodes.iter().enumerate() {
            let c = count(i);
            let policies: Vec<&ErrorPolicy> = match &node.op {
                PhysOp::Source { spec, .. } => vec![&spec.policy],
                PhysOp::Kernel { steps } => steps.iter().map(|s| &s.policy).collect(),
                _ => vec![],
            };
            for p in policies {
                if let Some(e) = policy::check_ratio(p, &node.name, c.errors, c.rows_in) {
                    self.abort();
                    return Err(e);
                }
            }
        }
        // Transactions first: a refused commit still leaves every file absent.
        let mut loaded = BTreeMap::new();
        match remote() {
            Ok(done) => loaded.extend(done),
            Err(e) => {
                self.abort();
                return Err(e);
            }
        }
        for i in 0..self.pending.len() {
            let (sink, p) = &mut self.pending[i];
            loaded.insert(*sink, p.describe());
            if let Err(e) = p.commit() {
                self.abort();
                return Err(RunError::Output {
                    path: e.place,
                    reason: e.reason,
                });
            }
        }
        self.pending.clear();
        let outputs = self
            .outputs
            .iter_mut()
            .flatten()
            .chain(self.dead_outputs.iter_mut().map(|(_, o)| o));
        for o in outputs {
            if let Err(e) = o.commit() {
                let e = RunError::Output {
                    path: o.final_path.display().to_string(),
                    reason: format!("cannot move the finished output into place: {e}"),
                };
                self.abort();
                return Err(e);
            }
        }
        let plan = &self.spec.plan;
        let mut summary = RunSummary {
            threads: plan.threads,
            batch: plan.batch,
            elapsed_secs: 0.0,
            warnings: std::mem::take(&mut self.warnings),
            ..RunSummary::default()
        };
        for (i, node) in plan.nodes.iter().enumerate() {
            let c = count(i);
            summary.stages.push(StageSummary {
                node: i,
                name: node.name.clone(),
                kind: node.kind.clone(),
                rows_in: c.rows_in,
                rows_out: c.rows_out,
                errored: c.errors,
                bytes_read: c.bytes,
            });
            if let PhysOp::Sink { spec, sink } = &node.op {
                let is_file = matches!(self.spec.sink_files.get(*sink), Some(Some(_)));
                summary.sinks.push(SinkSummary {
                    origin: spec.origin.clone(),
                    connector: spec.connector.clone(),
                    path: spec
                        .path
                        .clone()
                        .filter(|_| is_file)
                        .or_else(|| loaded.get(sink).cloned()),
                    rows_written: c.rows_out,
                });
            }
        }
        for (path, _) in &self.dead_outputs {
            summary.dead_letters.push(DeadLetterSummary {
                path: path.clone(),
                rows: outcome.dead_rows.get(path).copied().unwrap_or(0),
            });
        }
        summary.elapsed_secs = self.started.elapsed().as_secs_f64();
        Ok(summary)
    }

    /// Removes every temporary output of the job.
    pub fn abort(mut self) {
        for o in self.outputs.iter_mut().flatten() {
            o.discard();
        }
        for (_, o) in self.dead_outputs.iter_mut() {
            o.discard();
        }
        for (_, p) in self.pending.iter_mut() {
            p.abort();
        }
    }
}
