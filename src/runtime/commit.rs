//! Step 3 of a run, on the coordinating process: the end-of-job checks over everything the
//! workers counted, then every output renamed into place (commit) or removed (abort).

use super::physical::PhysOp;
use super::{DeadLetterSummary, Prepared, RunError, RunSummary, SinkSummary, StageSummary, policy};
use crate::connectors::sink::AtomicOutput;
use crate::job::ErrorPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
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

/// Moves every output into place, on several threads when there are several outputs (an
/// output that replaces a large file spends most of its commit freeing the old one: in
/// parallel, the job waits for the largest, not for their sum). The first failure in output
/// order, if any; the outputs that failed stay uncommitted (the caller aborts them).
fn commit_all(outputs: Vec<&mut AtomicOutput>) -> Option<RunError> {
    let n = outputs.len();
    let queue = Mutex::new(outputs.into_iter().enumerate().collect::<Vec<_>>());
    let failed = Mutex::new(Vec::new());
    let work = || {
        loop {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some((i, o)) = next else { return };
            if let Err(e) = o.commit() {
                let e = RunError::Output {
                    path: o.final_path.display().to_string(),
                    reason: format!("cannot move the finished output into place: {e}"),
                };
                failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, e));
            }
        }
    };
    std::thread::scope(|s| {
        // Helpers that cannot be started leave their share to this thread.
        for _ in 1..n.min(COMMIT_THREADS) {
            let _ = std::thread::Builder::new()
                .name("flow-commit".into())
                .spawn_scoped(s, work);
        }
        work();
    });
    let mut failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    failed.sort_by_key(|(i, _)| *i);
    failed.into_iter().next().map(|(_, e)| e)
}

/// The most threads committing outputs at once.
const COMMIT_THREADS: usize = 4;

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
        let outputs: Vec<&mut AtomicOutput> = self
            .outputs
            .iter_mut()
            .flatten()
            .chain(self.dead_outputs.iter_mut().map(|(_, o)| o))
            .collect();
        if let Some(e) = commit_all(outputs) {
            self.abort();
            return Err(e);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn output(dir: &std::path::Path, name: &str, text: &str) -> AtomicOutput {
        let out = AtomicOutput::prepare(&dir.join(name), 1).unwrap();
        out.open_part(0)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        out
    }

    fn assert_no_temporaries(dir: &std::path::Path) {
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// Several outputs, committed on several threads, each replacing an existing file.
    #[test]
    fn commit_all_moves_every_output_into_place() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..6 {
            std::fs::write(dir.path().join(format!("o{i}.csv")), "old\n").unwrap();
        }
        let mut outs: Vec<AtomicOutput> = (0..6)
            .map(|i| output(dir.path(), &format!("o{i}.csv"), &format!("new {i}\n")))
            .collect();
        assert!(commit_all(outs.iter_mut().collect()).is_none());
        for i in 0..6 {
            let text = std::fs::read_to_string(dir.path().join(format!("o{i}.csv"))).unwrap();
            assert_eq!(text, format!("new {i}\n"));
        }
        assert_no_temporaries(dir.path());
    }

    /// An output that cannot be moved (its final name became a directory) is the error, names
    /// its path, and stays uncommitted; the others are in place.
    #[test]
    fn commit_all_reports_the_output_that_failed() {
        let dir = tempfile::tempdir().unwrap();
        let mut outs: Vec<AtomicOutput> = (0..3)
            .map(|i| output(dir.path(), &format!("o{i}.csv"), &format!("new {i}\n")))
            .collect();
        let blocked = dir.path().join("o1.csv");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inside"), "x").unwrap();
        let e = commit_all(outs.iter_mut().collect()).expect("a failure");
        let RunError::Output { path, reason } = e else {
            panic!("{e:?}")
        };
        assert!(path.ends_with("o1.csv"), "{path}");
        assert!(reason.contains("cannot move"), "{reason}");
        for i in [0, 2] {
            let text = std::fs::read_to_string(dir.path().join(format!("o{i}.csv"))).unwrap();
            assert_eq!(text, format!("new {i}\n"));
        }
        outs[1].discard();
        assert!(blocked.join("inside").exists());
        assert_no_temporaries(dir.path());
    }
}
