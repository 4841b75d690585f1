//! The result of a successful run.

use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StageSummary {
    /// Index in the physical plan (topological order).
    pub node: usize,
    pub name: String,
    pub kind: String,
    pub rows_in: u64,
    pub rows_out: u64,
    /// Rows rejected here (malformed input, kernel errors), whatever the policy did with them.
    pub errored: u64,
    /// Sources: bytes read.
    pub bytes_read: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SinkSummary {
    pub origin: String,
    pub connector: String,
    /// `None`: standard output.
    pub path: Option<String>,
    pub rows_written: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DeadLetterSummary {
    pub path: String,
    pub rows: u64,
}

/// One worker process of a multi-node run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProcessSummary {
    pub index: usize,
    pub host: String,
    pub pid: u32,
    pub threads: usize,
    /// Rows and bytes its sources read.
    pub rows_read: u64,
    pub bytes_read: u64,
    /// Its counts for every stage (by physical node, as [`RunSummary::stages`]); summed over
    /// the processes they are the job's.
    pub stages: Vec<ProcessStage>,
}

/// One stage's counts on one worker process.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProcessStage {
    /// Index in the physical plan, as [`StageSummary::node`].
    pub node: usize,
    pub rows_in: u64,
    pub rows_out: u64,
    pub errored: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunSummary {
    /// The layout that ran and why (`single-node, 2 threads: mode auto, one machine…`).
    pub layout: String,
    /// Worker processes (empty for a single-node run).
    pub processes: Vec<ProcessSummary>,
    /// Worker threads per process.
    pub threads: usize,
    pub batch: usize,
    pub elapsed_secs: f64,
    pub stages: Vec<StageSummary>,
    pub sinks: Vec<SinkSummary>,
    pub dead_letters: Vec<DeadLetterSummary>,
    /// Hints and settings that could not be honoured.
    pub warnings: Vec<String>,
}

impl RunSummary {
    pub fn stage(&self, name: &str) -> Option<&StageSummary> {
        self.stages.iter().find(|s| s.name == name)
    }
    pub fn total_errored(&self) -> u64 {
        self.stages.iter().map(|s| s.errored).sum()
    }
    /// The workers that ran the job: `2 threads`, or multi-node `2 processes × 1 thread`
    /// (processes × threads per process).
    pub fn workers(&self) -> String {
        let threads = format!(
            "{} thread{}",
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        );
        match self.processes.len() {
            0 => threads,
            1 => format!("1 process × {threads}"),
            n => format!("{n} processes × {threads}"),
        }
    }
}
