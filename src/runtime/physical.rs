//! The physical plan: the logical `Plan` in topological order, with unfused filters and maps
//! turned into one-step fused chains, input splits assigned to workers, and the run parameters.
//! It is serde-serializable so that a coordinator can ship it to worker processes; every worker
//! builds its kernels from it with the kernel factory.

use super::RunError;
use super::group::GroupLayout;
use crate::check::hir::{Agg, Expr, ExprKind, JoinKey, SortKey};
use crate::connectors::Split;
use crate::job::{ErrorPolicy, Hints, Mode};
use crate::plan::ir::{FusedStep, JoinStrategy, Op, Plan, SinkSpec, SourceSpec, Step};
use crate::span::Span;
use crate::types::RowType;
use crate::types::{Field, Scalar, Type};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PhysOp {
    Source {
        spec: SourceSpec,
        /// `splits[w]`: the splits worker `w` reads, in order.
        splits: Vec<Vec<Split>>,
    },
    /// A fused chain of filter/map steps, run by one kernel.
    Kernel {
        steps: Vec<FusedStep>,
    },
    Group(GroupPlan),
    Union,
    Limit(u64),
    /// `limit`: the sort's only consumer is a `limit` of this many rows (a top-N).
    Sort {
        keys: Vec<SortKey>,
        limit: Option<u64>,
    },
    /// Key columns (every column for whole-row `distinct`).
    Distinct {
        keys: Vec<usize>,
    },
    /// A hash join of input 0 (the left side) and input 1 (the right side, of row
    /// `right_row`); `strategy` says which side is built and whether it is broadcast.
    Join {
        keys: Vec<JoinKey>,
        fields: Vec<usize>,
        outer: bool,
        #[serde(default)]
        strategy: JoinStrategy,
        right_row: RowType,
    },
    Sink {
        spec: SinkSpec,
        sink: usize,
    },
}

/// How a `group` node runs, decided here rather than on the workers: where its key and argument
/// columns are, and — when an aggregate's argument is an expression rather than a column — the
/// one map kernel that computes `keys ++ arguments` before aggregation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupPlan {
    /// The kernel computing `keys ++ arguments` (its output row is `args_row`), if any argument
    /// is computed.
    pub args: Option<(Vec<FusedStep>, RowType)>,
    /// Key and argument columns in the rows the table sees (the input, or the kernel's output).
    pub layout: GroupLayout,
    /// The types of the key columns, in key order.
    pub key_types: RowType,
}

impl GroupPlan {
    pub fn new(in_row: &RowType, keys: &[usize], aggs: &[Agg]) -> GroupPlan {
        let scalar_of = |c: usize| {
            in_row
                .fields
                .get(c)
                .map(|f| f.ty.scalar)
                .unwrap_or(Scalar::Null)
        };
        let key_types = RowType::new(
            keys.iter()
                .filter_map(|&k| in_row.fields.get(k).cloned())
                .collect(),
        );
        let computed = aggs
            .iter()
            .any(|a| matches!(&a.arg, Some(e) if !matches!(e.kind, ExprKind::Field(_))));
        if !computed {
            let layout = GroupLayout {
                keys: keys.iter().map(|&k| (k, scalar_of(k))).collect(),
                aggs: aggs
                    .iter()
                    .map(|a| {
                        let arg = match &a.arg {
                            Some(Expr {
                                kind: ExprKind::Field(c),
                                ..
                            }) => Some((*c, scalar_of(*c))),
                            _ => None,
                        };
                        (a.func, arg)
                    })
                    .collect(),
            };
            return GroupPlan {
                args: None,
                layout,
                key_types,
            };
        }
        // One map kernel computes the keys and the aggregate arguments: row = keys ++ args.
        let mut exprs: Vec<Expr> = Vec::new();
        let mut fields: Vec<Field> = Vec::new();
        for &k in keys {
            let f = in_row.fields.get(k).cloned().unwrap_or(Field {
                name: format!("_key{k}"),
                ty: Type::NULL,
            });
            exprs.push(Expr::new(ExprKind::Field(k), f.ty, Span::default()));
            fields.push(f);
        }
        let mut agg_layout = Vec::new();
        for (j, a) in aggs.iter().enumerate() {
            match &a.arg {
                Some(e) => {
                    agg_layout.push((a.func, Some((exprs.len(), e.ty.scalar))));
                    fields.push(Field {
                        name: format!("_arg{j}"),
                        ty: e.ty,
                    });
                    exprs.push(e.clone());
                }
                None => agg_layout.push((a.func, None)),
            }
        }
        let row = RowType::new(fields);
        let layout = GroupLayout {
            keys: (0..keys.len())
                .map(|j| (j, row.fields[j].ty.scalar))
                .collect(),
            aggs: agg_layout,
        };
        let steps = vec![FusedStep {
            step: Step::Map(exprs),
            policy: ErrorPolicy::default(),
            row: row.clone(),
        }];
        GroupPlan {
            args: Some((steps, row)),
            layout,
            key_types,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhysNode {
    /// Display name used in messages and the summary: `filter #3 (long)`.
    pub name: String,
    pub kind: String,
    pub op: PhysOp,
    /// Producers, in input-port order (indices into `PhysicalPlan::nodes`).
    pub inputs: Vec<usize>,
    /// The type of the rows this node produces (for a sink: the rows it writes).
    pub row: RowType,
    /// The row type of the first input (kernels, group, sink).
    pub input_row: RowType,
    pub hints: Hints,
    /// The global worker indices that run this node (see [`PhysicalPlan::place`]); empty until
    /// placed, which means every worker.
    #[serde(default)]
    pub workers: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhysicalPlan {
    pub nodes: Vec<PhysNode>,
    /// Worker threads per process.
    pub threads: usize,
    /// Rows per batch (source chunk size).
    pub batch: usize,
    /// Back-pressure window: at most this many source chunks (epochs) in flight.
    pub window: u64,
    /// `mode single(readers: R, …)`: the first `readers` workers of every process only read
    /// and parse (sources), the others run every other stage; 0 = every worker does both.
    #[serde(default)]
    pub readers: usize,
}

impl PhysicalPlan {
    /// Orders and converts the logical plan. Splits are left empty (see `runtime::run`).
    pub fn from_plan(plan: &Plan, threads: usize, batch: usize) -> Result<PhysicalPlan, RunError> {
        let order = petgraph::algo::toposort(&plan.graph, None)
            .map_err(|_| RunError::Plan("the plan has a cycle".into()))?;
        let mut index = vec![usize::MAX; plan.graph.node_count()];
        for (i, id) in order.iter().enumerate() {
            index[id.index()] = i;
        }
        let mut nodes = Vec::with_capacity(order.len());
        let mut sinks = 0;
        for (i, &id) in order.iter().enumerate() {
            let n = &plan.graph[id];
            let inputs: Vec<usize> = plan.inputs(id).iter().map(|p| index[p.index()]).collect();
            let input_row = inputs
                .first()
                .map(|&p| plan.graph[order[p]].row.clone())
                .unwrap_or_default();
            let op = match &n.op {
                Op::Source(spec) => PhysOp::Source {
                    spec: spec.clone(),
                    splits: Vec::new(),
                },
                Op::Filter { pred, policy } => PhysOp::Kernel {
                    steps: vec![FusedStep {
                        step: Step::Filter(pred.clone()),
                        policy: policy.clone(),
                        row: n.row.clone(),
                    }],
                },
                Op::Map { fields, policy } => PhysOp::Kernel {
                    steps: vec![FusedStep {
                        step: Step::Map(fields.iter().map(|(_, e)| e.clone()).collect()),
                        policy: policy.clone(),
                        row: n.row.clone(),
                    }],
                },
                Op::Fused { steps } => PhysOp::Kernel {
                    steps: steps.clone(),
                },
                Op::Group { keys, aggs } => PhysOp::Group(GroupPlan::new(&input_row, keys, aggs)),
                Op::Union => PhysOp::Union,
                Op::Limit(k) => PhysOp::Limit(*k),
                Op::Sort { keys } => {
                    let outs = plan.outputs(id);
                    let limit = match outs.as_slice() {
                        [o] => match &plan.graph[*o].op {
                            Op::Limit(k) => Some(*k),
                            // A sort by computed keys drops them in a projection first.
                            op if projection(op) => match plan.outputs(*o).as_slice() {
                                [l] => match plan.graph[*l].op {
                                    Op::Limit(k) => Some(k),
                                    _ => None,
                                },
                                _ => None,
                            },
                            _ => None,
                        },
                        _ => None,
                    };
                    PhysOp::Sort {
                        keys: keys.clone(),
                        limit,
                    }
                }
                Op::Distinct { keys } => PhysOp::Distinct {
                    keys: keys.clone().unwrap_or_else(|| (0..n.row.len()).collect()),
                },
                Op::Join {
                    keys,
                    fields,
                    outer,
                    strategy,
                } => PhysOp::Join {
                    keys: keys.clone(),
                    fields: fields.clone(),
                    outer: *outer,
                    strategy: *strategy,
                    right_row: inputs
                        .get(1)
                        .map(|&p| plan.graph[order[p]].row.clone())
                        .unwrap_or_default(),
                },
                Op::Sink(spec) => {
                    sinks += 1;
                    PhysOp::Sink {
                        spec: spec.clone(),
                        sink: sinks - 1,
                    }
                }
            };
            let expected_inputs = match &op {
                PhysOp::Source { .. } => 0..=0,
                PhysOp::Union => 1..=usize::MAX,
                PhysOp::Join { .. } => 2..=2,
                _ => 1..=1,
            };
            if !expected_inputs.contains(&inputs.len()) {
                return Err(RunError::Plan(format!(
                    "{} node {} has {} inputs",
                    n.op.kind(),
                    i,
                    inputs.len()
                )));
            }
            let mut name = format!("{} #{}", n.op.kind(), i);
            if let Some(l) = n.labels.first() {
                name.push_str(&format!(" ({l})"));
            } else if let PhysOp::Source { spec, .. } = &op {
                name = format!("source {}", spec.name);
            } else if let PhysOp::Sink { spec, .. } = &op {
                name = format!("sink {}", spec.origin);
            }
            nodes.push(PhysNode {
                name,
                kind: n.op.kind().to_string(),
                op,
                inputs,
                row: n.row.clone(),
                input_row,
                hints: n.hints.clone(),
                workers: Vec::new(),
            });
        }
        Ok(PhysicalPlan {
            nodes,
            threads,
            batch: batch.max(1),
            // The frontier is global, so a small window keeps the workers in near lockstep and
            // one descheduled worker stalls the others: 4 → 32 took J2 at 10M rows from
            // 4.9 s to 2.6 s wall on a shared 2-core machine (peak RSS 16 → 22 MB).
            window: 32,
            readers: 0,
        })
    }

    /// The workers that may run a node of this kind when it has no `@parallel` hint: with
    /// `readers` set, sources run on each process's first `readers` workers and every other
    /// stage on the rest; otherwise every stage runs on every worker. The list interleaves the
    /// processes (worker 0 of each process, then worker 1 of each…), so that taking its first
    /// `n` for `@parallel(n)` spreads the stage over the processes.
    pub fn eligible(&self, source: bool, processes: usize) -> Vec<usize> {
        let t = self.threads.max(1);
        let r = if self.readers > 0 && self.readers < t {
            self.readers
        } else {
            0
        };
        let locals = match (r, source) {
            (0, _) => 0..t,
            (r, true) => 0..r,
            (r, false) => r..t,
        };
        locals
            .flat_map(|l| (0..processes.max(1)).map(move |p| p * t + l))
            .collect()
    }

    /// Decides which workers run each node ([`PhysNode::workers`]): the eligible workers
    /// ([`Self::eligible`]), or the first `n` of them for `@parallel(n)`. Returns a warning for
    /// a hint asking for more workers than can run the stage (the checker warns at check time
    /// for what the declared mode allows; this is for run-time overrides such as `--threads`).
    pub fn place(&mut self, processes: usize) -> Vec<String> {
        let mut warnings = Vec::new();
        let eligible = [
            self.eligible(false, processes),
            self.eligible(true, processes),
        ];
        for node in &mut self.nodes {
            let all = &eligible[usize::from(matches!(node.op, PhysOp::Source { .. }))];
            let n = node.hints.parallel.map(|p| p as usize).unwrap_or(all.len());
            if n > all.len() {
                warnings.push(format!(
                    "@parallel({n}) on {} runs on {} workers: only {} can run it here",
                    node.name,
                    all.len(),
                    all.len()
                ));
            }
            let mut w: Vec<usize> = all.iter().copied().take(n.max(1)).collect();
            w.sort_unstable();
            node.workers = w;
        }
        warnings
    }

    /// The workers that run node `i` (all `peers` workers if it is not placed).
    pub fn workers_of(&self, i: usize, peers: usize) -> Vec<usize> {
        match self.nodes.get(i) {
            Some(n) if !n.workers.is_empty() => n.workers.clone(),
            _ => (0..peers).collect(),
        }
    }

    /// The indices of the source nodes.
    pub fn sources(&self) -> Vec<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.op, PhysOp::Source { .. }))
            .map(|(i, _)| i)
            .collect()
    }

    /// For a source, the `limit` nodes that every path from it to a sink passes through (the
    /// first one on each path); `None` if some path reaches a sink without a limit. Once all
    /// those limits have let their N rows through, the source can stop reading: any further
    /// row would be dropped by a limit anyway.
    pub fn limits_covering(&self, source: usize) -> Option<Vec<usize>> {
        let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &p in &n.inputs {
                consumers[p].push(i);
            }
        }
        let mut limits = Vec::new();
        let mut stack = vec![source];
        let mut seen = vec![false; self.nodes.len()];
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n], true) {
                continue;
            }
            match self.nodes[n].op {
                PhysOp::Limit(_) if n != source => {
                    limits.push(n);
                    continue;
                }
                PhysOp::Sink { .. } => return None,
                _ => {}
            }
            stack.extend(consumers[n].iter().copied());
        }
        if limits.is_empty() {
            return None;
        }
        limits.sort();
        Some(limits)
    }
}

pub use crate::job::MAX_THREADS;

/// How many worker threads a process runs and how they split into readers and processors.
#[derive(Clone, Debug, PartialEq)]
pub struct Threads {
    pub threads: usize,
    /// Reader workers per process (0: every worker reads and processes).
    pub readers: usize,
    pub batch: usize,
    pub warnings: Vec<String>,
}

/// The readers among `n` workers that keep `single(readers: r, processors: p)`'s ratio: at
/// least 1 and at most `n - 1`, so both kinds remain (0, no split, when `n < 2` or the mode
/// has no readers or no processors).
pub fn scaled_readers(n: usize, r: usize, p: usize) -> usize {
    if n < 2 || r == 0 || p == 0 {
        return 0;
    }
    let share = (n as f64 * r as f64 / (r + p) as f64).round() as usize;
    share.clamp(1, n - 1)
}

/// Threads and batch size from the declared mode and the `--threads` override. A thread count
/// of 0 (from `--threads`) or above [`MAX_THREADS`] (from `--threads` or the mode) is an error
/// naming where it came from.
///
/// `single(readers: R, processors: P)` runs `R + P` workers: `R` read and parse, `P` run the
/// other stages (`--threads` overrides the total and the split is scaled to it, keeping the
/// ratio: [`scaled_readers`]; `--threads 1` cannot split, a warning).
/// `multi(nodes: N, threads: T)` gives `T` threads per process (`processes` is how many the
/// job is planned for; a warning when a multi-node mode runs in one process, e.g. through
/// `runtime::run`). `auto` uses the available cores, or more if a stage asks for more with
/// `@parallel(n)` (`largest_parallel`).
pub fn resolve_threads(
    mode: &Mode,
    threads: Option<usize>,
    processes: usize,
    largest_parallel: usize,
) -> Result<Threads, RunError> {
    let mut warnings = Vec::new();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut readers = 0;
    let (declared, batch) = match mode {
        Mode::Single {
            readers: r,
            processors,
            batch,
        } => {
            readers = *r as usize;
            (r.saturating_add(*processors).max(1) as usize, *batch)
        }
        Mode::Multi {
            nodes,
            threads,
            batch,
            ..
        } => {
            if *nodes > 1 && processes <= 1 {
                warnings.push(format!(
                    "mode multi(nodes: {nodes}) runs on one node here, with {threads} threads \
                     (`flow run` starts {nodes} worker processes)"
                ));
            }
            ((*threads).max(1) as usize, *batch)
        }
        Mode::Auto { batch } => (cores.max(largest_parallel.min(MAX_THREADS)), *batch),
    };
    let from = if let Some(n) = threads {
        if let Mode::Single {
            readers: r,
            processors: p,
            ..
        } = mode
        {
            readers = scaled_readers(n, *r as usize, *p as usize);
            if readers == 0 && n == 1 && *r > 0 && *p > 0 {
                warnings.push(format!(
                    "--threads 1 runs mode single(readers: {r}, processors: {p}) on one worker \
                     that reads and processes (a split needs at least 2 workers)"
                ));
            }
        }
        "--threads".to_string()
    } else {
        match mode {
            Mode::Single { .. } => "mode single(readers + processors)".to_string(),
            Mode::Multi { .. } => "mode multi(threads)".to_string(),
            Mode::Auto { .. } => "mode auto (the available cores)".to_string(),
        }
    };
    let n = threads.unwrap_or(declared);
    if n == 0 || n > MAX_THREADS {
        return Err(RunError::Plan(format!(
            "{from} asks for {n} worker threads; it must be between 1 and {MAX_THREADS} \
             (this machine has {cores} cores)"
        )));
    }
    Ok(Threads {
        threads: n,
        readers,
        batch: (batch as usize).max(1),
        warnings,
    })
}

/// Whether `op` only picks columns (no row is dropped, no value computed, no row error): a
/// `limit` after it takes the same rows as right before it.
fn projection(op: &Op) -> bool {
    let fields_only = |fields: &[(String, Expr)]| {
        fields
            .iter()
            .all(|(_, e)| matches!(e.kind, ExprKind::Field(_)))
    };
    match op {
        Op::Map { fields, .. } => fields_only(fields),
        Op::Fused { steps } => steps
            .iter()
            .all(|s| matches!(&s.step, Step::Map(es) if es.iter().all(|e| matches!(e.kind, ExprKind::Field(_))))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_are_validated() {
        let auto = Mode::Auto { batch: 100 };
        assert_eq!(resolve_threads(&auto, Some(3), 1, 0).unwrap().threads, 3);
        assert_eq!(
            resolve_threads(&auto, Some(MAX_THREADS), 1, 0)
                .unwrap()
                .threads,
            MAX_THREADS
        );
        for bad in [0, MAX_THREADS + 1, 100_000, usize::MAX] {
            let e = resolve_threads(&auto, Some(bad), 1, 0)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("--threads") && e.contains("between 1 and 256"),
                "{e}"
            );
        }
        let huge = Mode::Multi {
            nodes: 1,
            threads: 100_000,
            batch: 100,
            retries: 0,
        };
        let e = resolve_threads(&huge, None, 1, 0).unwrap_err().to_string();
        assert!(
            e.contains("mode multi(threads)") && e.contains("100000"),
            "{e}"
        );
        let single = Mode::Single {
            readers: 60_000,
            processors: 60_000,
            batch: 100,
        };
        assert!(resolve_threads(&single, None, 1, 0).is_err());
    }

    #[test]
    fn readers_and_processors_are_placed_apart() {
        let mut p = PhysicalPlan {
            nodes: Vec::new(),
            threads: 3,
            batch: 10,
            window: 4,
            readers: 1,
        };
        assert_eq!(p.eligible(true, 1), vec![0]);
        assert_eq!(p.eligible(false, 1), vec![1, 2]);
        // Two processes of 3: readers 0 and 3; processors interleaved by process.
        assert_eq!(p.eligible(true, 2), vec![0, 3]);
        assert_eq!(p.eligible(false, 2), vec![1, 4, 2, 5]);
        p.readers = 0;
        assert_eq!(p.eligible(true, 1), vec![0, 1, 2]);
        let single = Mode::Single {
            readers: 2,
            processors: 3,
            batch: 100,
        };
        let t = resolve_threads(&single, None, 1, 0).unwrap();
        assert_eq!((t.threads, t.readers), (5, 2));
        // --threads keeps the split, scaled: 2 of 5 read, so 2 of 4 (rounded), 3 of 8.
        let t = resolve_threads(&single, Some(4), 1, 0).unwrap();
        assert_eq!((t.threads, t.readers), (4, 2));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let t = resolve_threads(&single, Some(8), 1, 0).unwrap();
        assert_eq!((t.threads, t.readers), (8, 3));
        let t = resolve_threads(&single, Some(2), 1, 0).unwrap();
        assert_eq!((t.threads, t.readers), (2, 1));
        // One worker cannot split: a warning, no readers.
        let t = resolve_threads(&single, Some(1), 1, 0).unwrap();
        assert_eq!((t.threads, t.readers), (1, 0));
        assert!(
            t.warnings[0].contains("--threads 1 runs mode single(readers: 2, processors: 3)"),
            "{:?}",
            t.warnings
        );
        // Both kinds always remain: 1 reader of 9 workers → still 1 of 2; 9 of 10 → 2 of 3.
        assert_eq!(scaled_readers(2, 1, 9), 1);
        assert_eq!(scaled_readers(3, 9, 1), 2);
        let auto = Mode::Auto { batch: 100 };
        assert!(resolve_threads(&auto, None, 1, 64).unwrap().threads >= 64);
    }
}
