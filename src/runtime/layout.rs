//! Where a job runs: how many processes and worker threads (the declared mode, the command
//! line's overrides, or `mode auto`'s decision from the input size and the cores), and — for
//! `flow explain --layout` — which workers run each stage and which edges move rows between
//! workers or processes. The dataflow obeys the same placement ([`PhysicalPlan::place`]).

use super::physical::{self, PhysOp, PhysicalPlan};
use super::{RunError, RunOptions};
use crate::job::Mode;
use crate::plan::ir::{JoinSide, Plan};
use std::collections::BTreeSet;

/// Under `mode auto`, one worker thread per this many input bytes (up to the cores): a job on a
/// few small files runs on one thread (no start-up of idle workers, rows in input order).
pub const AUTO_BYTES_PER_THREAD: u64 = 8 << 20;

/// Under `mode auto` with worker daemons given (`--hosts`), the input size from which the job
/// runs on them rather than in this process: below it, shipping the job and the mesh set-up
/// (tens of milliseconds) cost more than other machines' cores win.
pub const AUTO_MULTI_BYTES: u64 = 256 << 20;

/// The processes and threads a job runs on, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub processes: usize,
    /// Worker threads per process, when the layout decides them (`mode auto`); `None`: from the
    /// mode or `--threads` ([`physical::resolve_threads`]).
    pub threads: Option<usize>,
    /// One line: what was chosen and why.
    pub why: String,
    /// Runs on worker processes (spawned here, or on the daemons given), not in this process.
    pub multi: bool,
}

/// The largest `@parallel(n)` of the job (0: none).
pub fn largest_parallel(plan: &Plan) -> usize {
    plan.graph
        .node_weights()
        .filter_map(|n| n.hints.parallel)
        .max()
        .unwrap_or(0) as usize
}

/// The bytes of the job's input files (each file once), or `None` if one cannot be listed
/// (the run then reports it with its place).
fn input_bytes(plan: &Plan, opts: &RunOptions) -> Option<u64> {
    let mut files = BTreeSet::new();
    for n in plan.graph.node_weights() {
        if let crate::plan::ir::Op::Source(spec) = &n.op {
            let conn = opts.registry.source(&spec.connector)?;
            for split in conn.plan(spec, 1).ok()?.into_iter().flatten() {
                files.insert(split.path?);
            }
        }
    }
    files
        .iter()
        .map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
        .sum()
}

/// Decides the layout: `--nodes` (`nodes`), else the mode's `nodes:`; `mode auto` decides from
/// the input size and the cores (more processes on one machine only add serialization, so it
/// runs in one process).
pub fn decide(plan: &Plan, opts: &RunOptions, nodes: Option<usize>, hosts: usize) -> Layout {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let bytes = matches!(plan.mode, Mode::Auto { .. })
        .then(|| input_bytes(plan, opts))
        .flatten();
    let size = match bytes {
        Some(b) if b < 1_000_000 => format!("{b} bytes of input"),
        Some(b) => format!("{:.1} MB of input", b as f64 / 1e6),
        None => "input size unknown".to_string(),
    };
    match (&plan.mode, nodes) {
        (Mode::Auto { .. }, None) if hosts > 0 && bytes.is_some_and(|b| b >= AUTO_MULTI_BYTES) => {
            Layout {
                processes: hosts,
                threads: None,
                multi: true,
                why: format!(
                    "mode auto chose multi-node on the {} given: {size}, at least {} MB",
                    plural(hosts, "host"),
                    AUTO_MULTI_BYTES >> 20
                ),
            }
        }
        (Mode::Multi { .. } | Mode::Single { .. }, None) | (_, Some(_)) if hosts > 0 => Layout {
            processes: hosts,
            threads: None,
            multi: true,
            why: format!("--hosts: {}", plural(hosts, "worker daemon")),
        },
        (_, Some(n)) => Layout {
            processes: n.max(1),
            threads: None,
            multi: n >= 2,
            why: format!("--nodes {n}"),
        },
        (Mode::Multi { nodes, .. }, None) => Layout {
            processes: (*nodes as usize).max(1),
            threads: None,
            multi: *nodes >= 2,
            why: format!("mode multi(nodes: {nodes})"),
        },
        (
            Mode::Single {
                readers,
                processors,
                ..
            },
            None,
        ) => Layout {
            processes: 1,
            threads: None,
            multi: false,
            why: match opts.threads {
                Some(n) => {
                    match physical::scaled_readers(n, *readers as usize, *processors as usize) {
                        0 => format!(
                            "mode single; {} from --threads, each reads and processes",
                            plural(n, "thread")
                        ),
                        r => format!(
                            "mode single(readers: {readers}, processors: {processors}) scaled to \
                         --threads {n}: {} reading and parsing, {} running the other stages",
                            plural(r, "reader thread"),
                            plural(n - r, "processor thread")
                        ),
                    }
                }
                None => format!(
                    "mode single: {} reading and parsing, {} running the other stages",
                    plural(*readers as usize, "reader thread"),
                    plural(*processors as usize, "processor thread")
                ),
            },
        },
        (Mode::Auto { .. }, None) => {
            let largest_parallel = largest_parallel(plan);
            let by_size = bytes.map(|b| b.div_ceil(AUTO_BYTES_PER_THREAD).max(1) as usize);
            let threads = match opts.threads {
                Some(t) => t,
                None => by_size
                    .unwrap_or(cores)
                    .min(cores)
                    .max(largest_parallel.min(physical::MAX_THREADS)),
            };
            let mut why = if hosts > 0 {
                format!(
                    "mode auto chose single-node: {size}, below {} MB, is not worth shipping to \
                     the {} given; {} here",
                    AUTO_MULTI_BYTES >> 20,
                    plural(hosts, "host"),
                    plural(cores, "core")
                )
            } else {
                format!(
                    "mode auto chose single-node: one machine and no hosts given (worker \
                     processes on one machine only add serialization); {size}, {} here",
                    plural(cores, "core")
                )
            };
            if opts.threads.is_some() {
                why.push_str("; threads from --threads");
            } else if largest_parallel > by_size.unwrap_or(cores).min(cores) {
                why.push_str(&format!(
                    ", so {} (a stage asks for @parallel({largest_parallel}))",
                    plural(threads, "thread")
                ));
            } else {
                why.push_str(&format!(
                    ", so {} (one per {} MB, at most one per core)",
                    plural(threads, "thread"),
                    AUTO_BYTES_PER_THREAD >> 20
                ));
            }
            Layout {
                processes: 1,
                threads: Some(threads),
                why,
                multi: false,
            }
        }
    }
}

/// `flow explain --layout`: the processes, the workers of each process, which workers run
/// each stage, and the edges on which rows move between workers (and whether they cross
/// processes).
pub fn describe(plan: &Plan, opts: &RunOptions, nodes: Option<usize>) -> Result<String, RunError> {
    let layout = decide(plan, opts, nodes, 0);
    let largest = largest_parallel(plan);
    let t = physical::resolve_threads(
        &plan.mode,
        layout.threads.or(opts.threads),
        layout.processes,
        largest,
    )?;
    let mut phys = PhysicalPlan::from_plan(plan, t.threads, t.batch)?;
    phys.readers = t.readers;
    let processes = layout.processes;
    let warnings = phys.place(processes);
    let threads = phys.threads;
    let workers = threads * processes;
    let mut out = String::new();
    out.push_str(&format!("layout: {}\n", layout.why));
    out.push_str(&format!(
        "  {} × {} worker thread{} = {workers} workers (global index = process × {threads} + thread)\n",
        if processes == 1 {
            "1 process (the `flow run` process)".to_string()
        } else {
            format!("{processes} worker processes")
        },
        threads,
        if threads == 1 { "" } else { "s" },
    ));
    if phys.readers > 0 && phys.readers < threads {
        out.push_str(&format!(
            "  per process: threads 0..{} read and parse (readers), threads {}..{} run the other stages (processors)\n",
            phys.readers,
            phys.readers,
            threads
        ));
    }
    out.push_str(
        "  (rows stay on the worker that made them unless an edge below says they move)\n",
    );
    let set = |w: &[usize]| -> String {
        if w.len() == workers {
            return format!("all {workers} workers");
        }
        let list: Vec<String> = w.iter().map(|x| x.to_string()).collect();
        format!(
            "worker{} {}",
            if w.len() == 1 { "" } else { "s" },
            list.join(", ")
        )
    };
    let procs = |w: &[usize]| -> BTreeSet<usize> { w.iter().map(|x| x / threads).collect() };
    for (i, node) in phys.nodes.iter().enumerate() {
        let here = phys.workers_of(i, workers);
        out.push_str(&format!("{}: on {}\n", node.name, set(&here)));
        for (port, &p) in node.inputs.iter().enumerate() {
            let from = phys.workers_of(p, workers);
            let crosses = |to: &[usize]| {
                let (a, b) = (procs(&from), procs(to));
                a.len() > 1 || b.len() > 1 || a != b
            };
            let cross = |to: &[usize]| {
                if crosses(to) {
                    "crosses processes"
                } else {
                    "inside the process"
                }
            };
            if from != here {
                out.push_str(&format!(
                    "  <- {}: batches dealt round-robin from {} to {} ({})\n",
                    phys.nodes[p].name,
                    set(&from),
                    set(&here),
                    cross(&here)
                ));
            }
            let keeper = [here.first().copied().unwrap_or(0)];
            match &node.op {
                PhysOp::Group(_) if here.len() > 1 => out.push_str(&format!(
                    "  keyed exchange: partial aggregates by hash of the keys to their owner among {} ({})\n",
                    set(&here),
                    cross(&here)
                )),
                PhysOp::Join {
                    outer, strategy, ..
                } if here.len() > 1 => {
                    let side = if port == 0 { "left" } else { "right" };
                    let built = match strategy.build {
                        JoinSide::Left => port == 0,
                        JoinSide::Right => port == 1,
                    } && !(*outer && port == 0);
                    out.push_str(&match (strategy.broadcast, built) {
                        (true, true) => format!(
                            "  broadcast: every batch of the {side} (build) side goes to each of {} ({})\n",
                            set(&here),
                            cross(&here)
                        ),
                        (true, false) => format!(
                            "  the {side} (probe) side stays on the worker that made it\n"
                        ),
                        (false, _) => format!(
                            "  keyed exchange: the {side} side's rows by hash of the join keys to their owner among {} ({})\n",
                            set(&here),
                            cross(&here)
                        ),
                    });
                }
                PhysOp::Limit(n) => out.push_str(&format!(
                    "  global limit: each worker's first {n} rows per split go to worker {} ({})\n",
                    keeper[0],
                    cross(&keeper)
                )),
                PhysOp::Sink { spec, .. } if spec.path.is_none() => out.push_str(&format!(
                    "  standard output: rows go to worker {}, which writes them ({})\n",
                    keeper[0],
                    cross(&keeper)
                )),
                _ => {}
            }
        }
    }
    for w in warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    Ok(out)
}
