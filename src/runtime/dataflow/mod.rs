//! One timely dataflow per job, built identically on every worker from the physical plan.
//!
//! Data moves as [`Packet`]s: one row batch (the shared `batch::Batch` layout) plus a routing
//! word. Inside a process packets move as values; across processes they are serialized
//! (`Serialize`/`Deserialize` below), so the multi-node mode can reuse this unchanged.
//!
//! - Sources emit one chunk (at most `batch` rows) per activation, at an epoch that covers
//!   16,384 rows (the default batch: one chunk; smaller chunks share an epoch, so they cost no
//!   more progress tracking), and hold back while more than `window` epochs are unfinished at
//!   the sinks (probe-window back-pressure, see notes/timely.md), so memory is set by the
//!   window, not by the input size. A file sink takes its input over a pipeline edge.
//! - Batches are recycled through a per-worker pool: consumers return the batches they are done
//!   with and producers take from it (`Batch::reset` keeps both allocations); the pool keeps at
//!   most 64 batches and 16 MiB of their allocations.
//! - Kernel nodes run on the worker that read the rows (no exchange). `group` routes rows by key
//!   hash (keyed exchange) and emits when its input frontier is empty; `limit` keeps at most N
//!   rows per split on each worker, routes them to worker 0, which emits the first N in input
//!   order ([`Order`]) when its input is complete; a stdout sink routes to worker 0. A file
//!   sink's rows stay on their worker, which appends whole buffers of whole records to the one
//!   shared temporary file (`sink::SharedFile`; the header was written when it was prepared).
//! - A node with several consumers feeds each of them the same batches: a packet holds its batch
//!   behind an `Arc`, so timely's copy for each extra consumer copies a pointer, not the rows;
//!   the last consumer done with a batch recycles it. Nothing is recomputed.
//!
//! Row order: with one worker every operator preserves input order (sources read files in sorted
//! order; `union` interleaves its inputs by chunk; `group` emits groups in first-seen order). With
//! several workers the output is the same multiset of rows, in no guaranteed order, except that
//! `limit` returns the first N rows in input order at any worker count, and `sort` orders its
//! output totally (all rows meet on worker 0, [`sort`]). `distinct` routes rows by key hash and
//! keeps the first row of each key by input position ([`Order`] and the row's index).

use super::RunError;
use super::physical::{PhysOp, PhysicalPlan};
use super::policy::{DeadLetters, Shared};
use crate::batch::Batch;
use crate::codegen::Kernel;
use crate::connectors::Registry;
use crate::connectors::sink::SharedFile;
use crate::plan::ir::FusedStep;
use crate::types::RowType;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Concatenate, Probe};
use timely::dataflow::{ProbeHandle, Scope, Stream};
use timely::worker::Worker;

pub type KernelFactory = Arc<dyn Fn(&RowType, &[FusedStep]) -> Arc<dyn Kernel> + Send + Sync>;

/// Where a packet's rows are in the input: the source's rank ([`source_ranks`]), the split's position among all
/// splits of that source (files in sorted order, each file's pieces in byte order) and the
/// chunk's position in the split. Row-wise operators keep it; `limit` orders by it to return
/// the first rows in input order at any worker count. Rows that are not in input order (a
/// `group`'s output) carry [`Order::NONE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Order {
    pub source: u32,
    pub split: u32,
    pub chunk: u64,
}

impl Order {
    pub const NONE: Order = Order {
        source: u32::MAX,
        split: u32::MAX,
        chunk: u64::MAX,
    };

    /// The split's key in a `limit`'s progress word (`Shared::limit_upto`): source, split.
    pub fn split_key(self) -> u64 {
        (u64::from(self.source) << 32) | u64::from(self.split)
    }
}

/// A batch of rows on its way between operators; `route` picks the worker in a keyed exchange.
/// The batch is shared (`Arc`) so that feeding several consumers does not copy it; it is
/// read-only while shared (`Arc::make_mut` copies it only if a shared batch must change).
#[derive(Clone, Debug)]
pub struct Packet {
    pub route: u64,
    pub order: Order,
    pub batch: Arc<Batch>,
}

impl Packet {
    pub fn new(route: u64, batch: Batch) -> Packet {
        Packet {
            route,
            order: Order::NONE,
            batch: Arc::new(batch),
        }
    }
}

#[derive(Serialize)]
struct WireRef<'a> {
    route: u64,
    order: Order,
    columns: usize,
    rows: usize,
    words: &'a [u64],
    arena: &'a [u8],
}

#[derive(Deserialize)]
struct Wire {
    route: u64,
    order: Order,
    columns: usize,
    rows: usize,
    words: Vec<u64>,
    arena: Vec<u8>,
}

impl Serialize for Packet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireRef {
            route: self.route,
            order: self.order,
            columns: self.batch.layout.columns,
            rows: self.batch.rows,
            words: &self.batch.words,
            arena: &self.batch.arena,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Packet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Packet, D::Error> {
        let w = Wire::deserialize(d)?;
        let mut batch = Batch::new(w.columns);
        if w.words.len() != w.rows * batch.layout.stride {
            return Err(serde::de::Error::custom(
                "packet size does not match its layout",
            ));
        }
        batch.rows = w.rows;
        batch.words = w.words;
        batch.arena = w.arena.into();
        let mut p = Packet::new(w.route, batch);
        p.order = w.order;
        Ok(p)
    }
}

mod distinct;
mod exchange;
mod group;
mod join;
mod kernel;
mod limit;
mod sink;
mod sort;
mod source;

use distinct::distinct_op;
use group::group_op;
use kernel::kernel_op;
use limit::limit_op;
use sink::sink_op;
use sort::sort_op;
use source::source_op;

type S<'s> = Stream<'s, u64, Vec<Packet>>;
type Cb = CapacityContainerBuilder<Vec<Packet>>;

/// Everything a worker needs, shared read-only by the workers of one process.
pub struct Job {
    pub plan: PhysicalPlan,
    pub registry: Registry,
    pub factory: KernelFactory,
    /// Per sink (`PhysOp::Sink::sink`): the output file all workers append to, for file sinks.
    pub sink_files: Vec<Option<SharedFile>>,
    /// Per sink: the transaction its writer loads into (`SinkTarget::Transaction`).
    pub sink_tokens: Vec<Option<String>>,
    pub dead_parts: Arc<HashMap<String, Vec<PathBuf>>>,
}

/// Recycled batches of one worker: at most [`POOL_BATCHES`] batches holding at most
/// [`POOL_BYTES`] of allocations (row words and string bytes, by capacity) in all, so a burst
/// of large batches (long strings) is freed rather than kept for the rest of the job.
#[derive(Clone, Default)]
struct Pool(Rc<RefCell<Pooled>>);

#[derive(Default)]
struct Pooled {
    batches: Vec<Batch>,
    /// The sum of `capacity_bytes` over `batches`.
    bytes: usize,
}

const POOL_BATCHES: usize = 64;
const POOL_BYTES: usize = 2 * crate::batch::BATCH_BYTES;

/// What a batch's allocations hold, used or not.
fn capacity_bytes(b: &Batch) -> usize {
    b.words.capacity() * 8 + b.arena.capacity()
}

impl Pool {
    fn take(&self, columns: usize) -> Batch {
        let mut p = self.0.borrow_mut();
        match p.batches.pop() {
            Some(mut b) => {
                p.bytes -= capacity_bytes(&b);
                b.reset(columns);
                b
            }
            None => Batch::new(columns),
        }
    }
    fn put(&self, mut b: Batch) {
        // A filter's output shares its input's strings: the input is taken back too.
        if let Some(input) = b.arena.take_shared() {
            self.recycle(input);
        }
        let mut p = self.0.borrow_mut();
        let n = capacity_bytes(&b);
        if p.batches.len() < POOL_BATCHES && p.bytes + n <= POOL_BYTES {
            p.bytes += n;
            p.batches.push(b);
        }
    }
    /// Takes back a packet's batch if this was its last holder (other consumers of the same
    /// packet may still be reading it; the last one recycles it).
    fn recycle(&self, b: Arc<Batch>) {
        if let Some(b) = Arc::into_inner(b) {
            self.put(b);
        }
    }
}

/// Per-worker context handed to the operator builders.
#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    job: Arc<Job>,
    pool: Pool,
    dead: Rc<RefCell<DeadLetters>>,
    probe: ProbeHandle<u64>,
    index: usize,
    /// Per node: a source's rank in input order ([`Order::source`], see [`source_ranks`]).
    ranks: Arc<Vec<u32>>,
    /// Per node: the global indices of the workers that run it (`PhysNode::workers`).
    placed: Arc<Vec<Arc<Vec<usize>>>>,
}

/// The input order of the sources: a depth-first walk over each node's inputs in order, from
/// the `union`s first, outermost (last) first, so that `a | union b | limit N` takes `a`'s rows
/// before `b`'s; then from the other nodes. A source reached through several unions in
/// different orders gets the rank of its first visit.
fn source_ranks(plan: &PhysicalPlan) -> Vec<u32> {
    let n = plan.nodes.len();
    let mut rank = vec![u32::MAX - 1; n];
    let mut seen = vec![false; n];
    let mut next = 0u32;
    let unions = (0..n)
        .rev()
        .filter(|&i| matches!(plan.nodes[i].op, PhysOp::Union));
    let roots: Vec<usize> = unions.chain((0..n).rev()).collect();
    for root in roots {
        let mut stack = vec![root];
        while let Some(i) = stack.pop() {
            if i >= n || std::mem::replace(&mut seen[i], true) {
                continue;
            }
            if matches!(plan.nodes[i].op, PhysOp::Source { .. }) {
                rank[i] = next;
                next += 1;
            }
            stack.extend(plan.nodes[i].inputs.iter().rev());
        }
    }
    rank
}

pub(super) fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// Builds the dataflow on this worker and runs it to completion.
pub fn run_worker(worker: &mut Worker, job: Arc<Job>, shared: Arc<Shared>) {
    let ctx = Ctx {
        dead: Rc::new(RefCell::new(DeadLetters::new(
            worker.index(),
            job.dead_parts.clone(),
        ))),
        shared: shared.clone(),
        pool: Pool::default(),
        probe: ProbeHandle::new(),
        index: worker.index(),
        ranks: Arc::new(source_ranks(&job.plan)),
        placed: Arc::new(
            (0..job.plan.nodes.len())
                .map(|i| Arc::new(job.plan.workers_of(i, worker.peers())))
                .collect(),
        ),
        job,
    };
    let probe = ctx.probe.clone();
    let dead = ctx.dead.clone();
    worker.dataflow::<u64, _, _>(|scope| build(scope, &ctx));
    let index = ctx.index;
    crate::runtime::cluster::trace::mark("worker", || format!("timely worker {index}: built"));
    while !probe.done() {
        worker.step_or_park(None);
    }
    crate::runtime::cluster::trace::mark("worker", || format!("timely worker {index}: done"));
    if let Err(e) = dead.borrow_mut().flush(&shared) {
        shared.fail(e);
    }
}

fn build<'s>(scope: Scope<'s, u64>, ctx: &Ctx) {
    let plan = &ctx.job.plan;
    let mut streams: Vec<Option<S<'s>>> = (0..plan.nodes.len()).map(|_| None).collect();
    for (i, node) in plan.nodes.iter().enumerate() {
        // An input produced on other workers than the ones that run this node moves to them.
        let here = &ctx.placed[i];
        let inputs: Option<Vec<S<'s>>> = node
            .inputs
            .iter()
            .map(|&p| {
                let s = streams.get(p).and_then(|s| s.clone())?;
                Some(match ctx.placed.get(p) {
                    Some(from) if from != here => exchange::spread(s, here.clone(), ctx),
                    _ => s,
                })
            })
            .collect();
        let Some(inputs) = inputs else {
            ctx.shared.fail(RunError::Plan(format!(
                "{}: an input is not built before it",
                node.name
            )));
            return;
        };
        let first = inputs.first().cloned();
        streams[i] = match (&node.op, first) {
            (PhysOp::Source { splits, .. }, _) => {
                let mine = splits.get(ctx.index).cloned().unwrap_or_default();
                Some(source_op(scope, i, node, mine, ctx))
            }
            (PhysOp::Kernel { steps }, Some(input)) => Some(kernel_op(
                input,
                i,
                &node.name,
                &node.input_row,
                &node.row,
                steps.clone(),
                true,
                ctx,
            )),
            (PhysOp::Group(plan), Some(input)) => Some(group_op(input, i, node, plan, ctx)),
            (PhysOp::Union, Some(_)) => Some(scope.concatenate(inputs)),
            (PhysOp::Limit(n), Some(input)) => Some(limit_op(input, i, node, *n, ctx)),
            (PhysOp::Sort { keys, limit }, Some(input)) => {
                Some(sort_op(input, i, node, keys, *limit, ctx))
            }
            (PhysOp::Distinct { keys }, Some(input)) => {
                Some(distinct_op(input, i, node, keys, ctx))
            }
            (
                PhysOp::Join {
                    keys,
                    fields,
                    outer,
                    strategy,
                    right_row,
                },
                Some(left),
            ) => match inputs.get(1) {
                Some(right) => Some(join::join_op(
                    left,
                    right.clone(),
                    i,
                    node,
                    right_row,
                    keys,
                    fields,
                    *outer,
                    *strategy,
                    ctx,
                )),
                None => {
                    ctx.shared.fail(RunError::Plan(format!(
                        "{}: a join needs two inputs",
                        node.name
                    )));
                    return;
                }
            },
            (PhysOp::Sink { sink, .. }, Some(input)) => {
                sink_op(input, i, node, *sink, ctx).probe_with(&ctx.probe);
                None
            }
            (_, None) => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(bytes: usize) -> Batch {
        let mut b = Batch::new(1);
        b.arena.reserve_exact(bytes);
        b
    }

    /// The pool keeps batches up to its byte bound, drops one that alone exceeds it, accounts
    /// for what `take` hands out, and never holds more than `POOL_BATCHES`.
    #[test]
    fn pool_is_bounded_by_bytes_and_count() {
        let pool = Pool::default();
        let held = |p: &Pool| (p.0.borrow().batches.len(), p.0.borrow().bytes);
        pool.put(batch_of(POOL_BYTES + 1));
        assert_eq!(held(&pool).0, 0, "a batch larger than the bound is freed");
        let each = POOL_BYTES / 4;
        for _ in 0..6 {
            pool.put(batch_of(each));
        }
        let (n, bytes) = held(&pool);
        assert_eq!(n, 4);
        assert!(bytes <= POOL_BYTES && bytes >= 4 * each, "{bytes}");
        let b = pool.take(3);
        assert_eq!(b.layout.columns, 3);
        assert!(b.arena.capacity() >= each);
        assert_eq!(held(&pool).0, 3);
        assert_eq!(held(&pool).1, bytes - capacity_bytes(&b));
        let pool = Pool::default();
        for _ in 0..POOL_BATCHES + 10 {
            pool.put(Batch::new(1));
        }
        assert_eq!(held(&pool), (POOL_BATCHES, 0));
    }
}
