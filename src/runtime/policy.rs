//! Error policy: counting rejected rows, failing the job, dead letters, thresholds.
//!
//! State shared by the workers of one process lives in [`Shared`] (atomics; the first job error
//! wins and raises `abort`, after which sources stop and every operator drops what it receives,
//! so the dataflow drains quickly and the coordinating thread cleans up). Per-worker dead-letter
//! writers live in [`DeadLetters`].
//!
//! Thresholds: `max_errors: N` fails the job as soon as more than N rows of that source or stage
//! were rejected (counted across all workers); `max_errors: 0.01` fails it at the end if more
//! than that fraction of the rows that reached the source or stage were rejected. A fused node
//! counts the errors of all its steps together, against the policy of the step that failed.

use super::RunError;
use crate::job::{ErrorPolicy, MaxErrors, OnError};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct Counters {
    pub rows_in: AtomicU64,
    pub rows_out: AtomicU64,
    pub errors: AtomicU64,
    pub bytes: AtomicU64,
}

impl Counters {
    pub fn add(&self, rows_in: u64, rows_out: u64) {
        if rows_in > 0 {
            self.rows_in.fetch_add(rows_in, Ordering::Relaxed);
        }
        if rows_out > 0 {
            self.rows_out.fetch_add(rows_out, Ordering::Relaxed);
        }
    }
}

pub struct Shared {
    pub abort: AtomicBool,
    pub error: Mutex<Option<RunError>>,
    pub nodes: Vec<Counters>,
    pub workers_done: AtomicUsize,
    /// Rows written to each dead-letter path.
    pub dead_rows: Mutex<HashMap<String, u64>>,
    /// Per `limit` node: the smallest split key (`Order::split_key`) from which it has seen N
    /// rows; rows of that split after them, and of every later split, cannot be among its first
    /// N (`u64::MAX`: none yet).
    pub limit_upto: Vec<AtomicU64>,
    /// Bytes held by the group tables of all workers of the process.
    pub group_bytes: AtomicUsize,
    /// The most bytes the group tables may hold together ([`memory_budget`]).
    pub memory_budget: usize,
    /// The most bytes one `sort` holds in memory before it spills a run ([`sort_budget`]).
    pub sort_budget: usize,
}

impl Shared {
    pub fn new(nodes: usize) -> Shared {
        Shared {
            abort: AtomicBool::new(false),
            error: Mutex::new(None),
            nodes: (0..nodes).map(|_| Counters::default()).collect(),
            workers_done: AtomicUsize::new(0),
            dead_rows: Mutex::new(HashMap::new()),
            limit_upto: (0..nodes).map(|_| AtomicU64::new(u64::MAX)).collect(),
            group_bytes: AtomicUsize::new(0),
            memory_budget: memory_budget(),
            sort_budget: sort_budget(),
        }
    }

    /// Records that a group table now holds `now` bytes (it held `*held`); an error naming the
    /// stage and the budget if the tables of the process together exceed the budget.
    pub fn account_group(&self, held: &mut usize, now: usize, stage: &str) -> Result<(), RunError> {
        self.account_state(held, now, stage, over_budget)
    }

    /// As [`Shared::account_group`], for a join's hash table and held probe batches: the error
    /// names the join's state.
    pub fn account_join(&self, held: &mut usize, now: usize, stage: &str) -> Result<(), RunError> {
        self.account_state(held, now, stage, |total, budget| {
            format!(
                "the join's hash table and held rows need {}, over the memory budget of {} \
                 (set {MEMORY_BUDGET_VAR}, e.g. {MEMORY_BUDGET_VAR}=8G, to allow more; joins are \
                 not spilled to disk: the planner builds the smaller side, see `flow explain`)",
                show_bytes(total),
                show_bytes(budget)
            )
        })
    }

    fn account_state(
        &self,
        held: &mut usize,
        now: usize,
        stage: &str,
        message: impl Fn(usize, usize) -> String,
    ) -> Result<(), RunError> {
        let total = if now >= *held {
            self.group_bytes.fetch_add(now - *held, Ordering::Relaxed) + (now - *held)
        } else {
            self.group_bytes.fetch_sub(*held - now, Ordering::Relaxed) - (*held - now)
        };
        *held = now;
        if total > self.memory_budget {
            return Err(RunError::Stage {
                stage: stage.to_string(),
                reason: message(total, self.memory_budget),
            });
        }
        Ok(())
    }

    /// Records the job's error (the first one wins) and stops the job.
    pub fn fail(&self, e: RunError) {
        let mut g = match self.error.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.is_none() {
            *g = Some(e);
        }
        self.abort.store(true, Ordering::SeqCst);
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    pub fn take_error(&self) -> Option<RunError> {
        match self.error.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }
}

/// The environment variable that sets the memory budget of `group` state.
pub const MEMORY_BUDGET_VAR: &str = "FLOW_MEMORY_BUDGET";

/// The memory budget of the group tables of one process (all workers together), in bytes:
/// `FLOW_MEMORY_BUDGET` (a number of bytes with an optional `K`, `M`, `G` suffix, powers of
/// 1024), else 3/4 of the machine's memory (`/proc/meminfo`), else 4 GiB. A `group` whose
/// groups need more spills them to disk by hash partition (`runtime::dataflow::group`); the
/// other stages that hold state (`distinct`, a join's build side) fail with an error naming the
/// stage and the budget, before the allocation that would pass it.
pub fn memory_budget() -> usize {
    if let Some(b) = std::env::var(MEMORY_BUDGET_VAR)
        .ok()
        .and_then(|v| parse_bytes(&v))
    {
        return b;
    }
    let total_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
    });
    match total_kb {
        Some(kb) => kb.saturating_mul(1024) / 4 * 3,
        None => 4 << 30,
    }
}

/// The environment variable that sets the sort budget.
pub const SORT_BUDGET_VAR: &str = "FLOW_SORT_BUDGET";

/// The bytes one `sort` stage keeps in memory before it writes a sorted run to a temporary file:
/// `FLOW_SORT_BUDGET` (as [`parse_bytes`]), else 1/8 of [`memory_budget`] capped at 256 MiB. A
/// sort never fails for want of memory: beyond its budget it spills (see
/// `runtime::dataflow::sort`).
pub fn sort_budget() -> usize {
    if let Some(b) = std::env::var(SORT_BUDGET_VAR)
        .ok()
        .and_then(|v| parse_bytes(&v))
    {
        return b.max(1);
    }
    (memory_budget() / 8).clamp(1 << 20, 256 << 20)
}

/// `123`, `64K`, `512M`, `2G` (also with a trailing `B`, any case) as bytes.
pub fn parse_bytes(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_uppercase();
    let s = s.strip_suffix('B').unwrap_or(&s);
    let (num, shift) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 10),
        'M' => (&s[..s.len() - 1], 20),
        'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    num.trim().parse::<usize>().ok()?.checked_mul(1 << shift)
}

/// The message of a group state over its budget.
pub fn over_budget(bytes: usize, budget: usize) -> String {
    format!(
        "the group state needs {}, over the memory budget of {} ({})",
        show_bytes(bytes),
        show_bytes(budget),
        raise_budget_hint()
    )
}

/// A size for a message: KB under 1 MB (a budget of 512 KB is not "0 MB"), MB with one decimal
/// under 10 MB (1.4 MB of state is not "over 1 MB of budget" as "1 MB"), whole MB above.
pub fn show_bytes(n: usize) -> String {
    const MB: f64 = (1 << 20) as f64;
    if n < 1 << 20 {
        format!("{} KB", n.div_ceil(1 << 10))
    } else if n < 10 << 20 {
        format!("{:.1} MB", n as f64 / MB)
    } else {
        format!("{} MB", n >> 20)
    }
}

/// How to allow a stage more memory.
pub fn raise_budget_hint() -> String {
    format!("set {MEMORY_BUDGET_VAR}, e.g. {MEMORY_BUDGET_VAR}=8G, to allow more")
}

/// One worker's dead-letter writers, by path.
pub struct DeadLetters {
    worker: usize,
    outputs: Arc<HashMap<String, Vec<PathBuf>>>,
    writers: HashMap<String, BufWriter<File>>,
    counts: HashMap<String, u64>,
}

impl DeadLetters {
    pub fn new(worker: usize, outputs: Arc<HashMap<String, Vec<PathBuf>>>) -> DeadLetters {
        DeadLetters {
            worker,
            outputs,
            writers: HashMap::new(),
            counts: HashMap::new(),
        }
    }

    pub fn write(&mut self, path: &str, line: &[u8]) -> Result<(), RunError> {
        let err = |e: std::io::Error| RunError::Output {
            path: path.to_string(),
            reason: format!("cannot write dead letters: {e}"),
        };
        if !self.writers.contains_key(path) {
            let part = self
                .outputs
                .get(path)
                .and_then(|p| p.get(self.worker))
                .ok_or_else(|| RunError::Output {
                    path: path.to_string(),
                    reason: "dead-letter output was not prepared".into(),
                })?;
            let f = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(part)
                .map_err(err)?;
            self.writers.insert(path.to_string(), BufWriter::new(f));
        }
        if let Some(w) = self.writers.get_mut(path) {
            w.write_all(line).map_err(err)?;
        }
        *self.counts.entry(path.to_string()).or_default() += 1;
        Ok(())
    }

    /// Flushes the writers and adds this worker's counts to `shared`.
    pub fn flush(&mut self, shared: &Shared) -> Result<(), RunError> {
        if let Ok(mut m) = shared.dead_rows.lock() {
            for (p, n) in self.counts.drain() {
                *m.entry(p).or_default() += n;
            }
        }
        for (path, w) in &mut self.writers {
            w.flush().map_err(|e| RunError::Output {
                path: path.clone(),
                reason: format!("cannot write dead letters: {e}"),
            })?;
        }
        Ok(())
    }
}

/// Handles one rejected row of node `node` under `policy`. `error` builds the job error that
/// `fail` reports; `line` the dead-letter record.
pub fn reject(
    shared: &Shared,
    node: usize,
    place: &str,
    policy: &ErrorPolicy,
    dead: &mut DeadLetters,
    error: impl Fn() -> RunError,
    line: impl FnOnce() -> Vec<u8>,
) {
    let total = shared.nodes[node].errors.fetch_add(1, Ordering::Relaxed) + 1;
    match &policy.on_error {
        OnError::Fail => shared.fail(error()),
        OnError::Skip => {}
        OnError::DeadLetter(path) => {
            if let Err(e) = dead.write(path, &line()) {
                shared.fail(e);
            }
        }
    }
    if let Some(MaxErrors::Count(n)) = policy.max_errors
        && total > n
    {
        let last = error();
        shared.fail(RunError::TooManyErrors {
            place: place.to_string(),
            errors: total,
            limit: format!("{n} rows"),
            last: last.to_string(),
        });
    }
}

/// The end-of-job ratio check.
pub fn check_ratio(policy: &ErrorPolicy, place: &str, errors: u64, seen: u64) -> Option<RunError> {
    if let Some(MaxErrors::Ratio(r)) = policy.max_errors
        && seen > 0
        && errors as f64 / seen as f64 > r
    {
        return Some(RunError::TooManyErrors {
            place: place.to_string(),
            errors,
            limit: format!("{}% of {seen} rows", r * 100.0),
            last: String::new(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_in_messages_keep_small_budgets_apart() {
        use super::show_bytes;
        assert_eq!(show_bytes(512 << 10), "512 KB");
        assert_eq!(show_bytes(1000), "1 KB");
        assert_eq!(show_bytes(1 << 20), "1.0 MB");
        assert_eq!(show_bytes(3 << 19), "1.5 MB");
        assert_eq!(show_bytes(8 << 30), "8192 MB");
    }

    #[test]
    fn byte_sizes_parse() {
        use super::parse_bytes;
        assert_eq!(parse_bytes("123"), Some(123));
        assert_eq!(parse_bytes("64k"), Some(64 << 10));
        assert_eq!(parse_bytes("512MB"), Some(512 << 20));
        assert_eq!(parse_bytes(" 2G "), Some(2 << 30));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes(""), None);
        assert_eq!(parse_bytes("99999999999999999999G"), None);
    }
}
