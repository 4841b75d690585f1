//! One timely dataflow per job, built identically on every worker from the physical plan.
//!
//! Data moves as [`Packet`]s: one row batch (the shared `batch::Batch` layout) plus a routing
//! word. Inside a process packets move as values; across processes they are serialized
//! (`Serialize`/`Deserialize` below), so the multi-node mode can reuse this unchanged.
//!
//! - Sources emit one chunk (at most `batch` rows) per activation, each at its own epoch, and
//!   hold back while more than `window` epochs are unfinished at the sinks (probe-window
//!   back-pressure, see notes/timely.md), so memory is set by batch size × window, not input size.
//! - Batches are recycled through a per-worker pool: consumers return the batches they are done
//!   with and producers take from it (`Batch::reset` keeps both allocations).
//! - Kernel nodes run on the worker that read the rows (no exchange). `group` routes rows by key
//!   hash (keyed exchange) and emits when its input frontier is empty; `limit` routes to worker 0,
//!   after each worker has cut its own input to N rows; a stdout sink routes to worker 0. A file
//!   sink's rows stay on their worker, which appends whole buffers of whole records to the one
//!   shared temporary file (`sink::SharedFile`; the header was written when it was prepared).
//! - A node with several consumers feeds each of them the same batches: a packet holds its batch
//!   behind an `Arc`, so timely's copy for each extra consumer copies a pointer, not the rows;
//!   the last consumer done with a batch recycles it. Nothing is recomputed.
//!
//! Row order: with one worker every operator preserves input order (sources read files in sorted
//! order; `union` interleaves its inputs by chunk; `group` emits groups in first-seen order). With
//! several workers the output is the same multiset of rows, in no guaranteed order.

use super::RunError;
use super::group::{GroupLayout, GroupTable, route};
use super::physical::{PhysNode, PhysOp, PhysicalPlan};
use super::policy::{DeadLetters, Shared, reject};
use crate::batch::Batch;
use crate::check::hir::{Agg, ErrorPolicy, Expr, ExprKind};
use crate::codegen::{Kernel, RowError};
use crate::connectors::sink::SharedFile;
use crate::connectors::{Registry, RowReject, RowWriter, SinkTarget, SourceReader, dead_letter};
use crate::plan::ir::{FusedStep, Step};
use crate::span::Span;
use crate::types::{Field, RowType, Scalar};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::{Concatenate, Operator, Probe};
use timely::dataflow::{ProbeHandle, Scope, Stream};
use timely::worker::Worker;

pub type KernelFactory = Arc<dyn Fn(&RowType, &[FusedStep]) -> Arc<dyn Kernel> + Send + Sync>;

/// A batch of rows on its way between operators; `route` picks the worker in a keyed exchange.
/// The batch is shared (`Arc`) so that feeding several consumers does not copy it; it is
/// read-only while shared (`Arc::make_mut` copies it only if a shared batch must change).
#[derive(Clone, Debug)]
pub struct Packet {
    pub route: u64,
    pub batch: Arc<Batch>,
}

impl Packet {
    pub fn new(route: u64, batch: Batch) -> Packet {
        Packet {
            route,
            batch: Arc::new(batch),
        }
    }
}

#[derive(Serialize)]
struct WireRef<'a> {
    route: u64,
    columns: usize,
    rows: usize,
    words: &'a [u64],
    arena: &'a [u8],
}

#[derive(Deserialize)]
struct Wire {
    route: u64,
    columns: usize,
    rows: usize,
    words: Vec<u64>,
    arena: Vec<u8>,
}

impl Serialize for Packet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireRef {
            route: self.route,
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
        batch.arena = w.arena;
        Ok(Packet::new(w.route, batch))
    }
}

type S<'s> = Stream<'s, u64, Vec<Packet>>;
type Cb = CapacityContainerBuilder<Vec<Packet>>;

/// Everything a worker needs, shared read-only by the workers of one process.
pub struct Job {
    pub plan: PhysicalPlan,
    pub registry: Registry,
    pub factory: KernelFactory,
    /// Per sink (`PhysOp::Sink::sink`): the output file all workers append to, for file sinks.
    pub sink_files: Vec<Option<SharedFile>>,
    pub dead_parts: Arc<HashMap<String, Vec<PathBuf>>>,
}

/// Recycled batches of one worker.
#[derive(Clone, Default)]
struct Pool(Rc<RefCell<Vec<Batch>>>);

impl Pool {
    fn take(&self, columns: usize) -> Batch {
        match self.0.borrow_mut().pop() {
            Some(mut b) => {
                b.reset(columns);
                b
            }
            None => Batch::new(columns),
        }
    }
    fn put(&self, b: Batch) {
        let mut p = self.0.borrow_mut();
        if p.len() < 64 {
            p.push(b);
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
    peers: usize,
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
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
        peers: worker.peers(),
        job,
    };
    let probe = ctx.probe.clone();
    let dead = ctx.dead.clone();
    worker.dataflow::<u64, _, _>(|scope| build(scope, &ctx));
    while !probe.done() {
        worker.step_or_park(None);
    }
    if let Err(e) = dead.borrow_mut().flush(&shared) {
        shared.fail(e);
    }
}

fn build<'s>(scope: Scope<'s, u64>, ctx: &Ctx) {
    let plan = &ctx.job.plan;
    let mut streams: Vec<Option<S<'s>>> = (0..plan.nodes.len()).map(|_| None).collect();
    for (i, node) in plan.nodes.iter().enumerate() {
        let inputs: Option<Vec<S<'s>>> = node
            .inputs
            .iter()
            .map(|&p| streams.get(p).and_then(|s| s.clone()))
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
            (PhysOp::Group { keys, aggs }, Some(input)) => {
                Some(group_op(input, i, node, keys, aggs, ctx))
            }
            (PhysOp::Union, Some(_)) => Some(scope.concatenate(inputs)),
            (PhysOp::Limit(n), Some(input)) => Some(limit_op(input, i, node, *n, ctx)),
            (PhysOp::Sink { sink, .. }, Some(input)) => {
                sink_op(input, i, node, *sink, ctx).probe_with(&ctx.probe);
                None
            }
            (_, None) => None,
        };
    }
}

fn source_op<'s>(
    scope: Scope<'s, u64>,
    i: usize,
    node: &PhysNode,
    splits: Vec<crate::connectors::Split>,
    ctx: &Ctx,
) -> S<'s> {
    let PhysOp::Source { spec, .. } = &node.op else {
        unreachable_source(ctx, node);
        return timely::dataflow::operators::generic::operator::empty(scope);
    };
    let spec = spec.clone();
    let ctx = ctx.clone();
    let conn = ctx.job.registry.source(&spec.connector);
    let batch_rows = node
        .hints
        .batch
        .map(|b| b as usize)
        .unwrap_or(ctx.job.plan.batch)
        .max(1);
    let window = ctx.job.plan.window.max(1);
    let columns = spec.columns.len();
    let name = node.name.clone();
    let stop_after = ctx.job.plan.limits_covering(i);
    source(scope, &node.name, move |cap, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = Some(cap);
        let mut epoch = 0u64;
        let mut next_split = 0;
        let mut reader: Option<Box<dyn SourceReader>> = None;
        let mut reported_bytes = 0u64;
        let mut rejects: Vec<RowReject> = Vec::new();
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            let shared = &ctx.shared;
            if shared.aborted() {
                cap = None;
                return;
            }
            if let Some(limits) = &stop_after
                && limits
                    .iter()
                    .all(|&l| shared.limit_done[l].load(Ordering::Relaxed))
            {
                // Every row from here on would be dropped by a satisfied `limit`.
                cap = None;
                return;
            }
            if epoch >= window && ctx.probe.less_than(&(epoch + 1 - window)) {
                activator.activate_after(Duration::from_micros(100));
                return;
            }
            let Some(conn) = conn.as_ref() else {
                shared.fail(RunError::Plan(format!(
                    "unknown source connector `{}`",
                    spec.connector
                )));
                cap = None;
                return;
            };
            let mut b = ctx.pool.take(columns);
            let step = catch_unwind(AssertUnwindSafe(
                || -> Result<bool, crate::connectors::ConnectorError> {
                    if reader.is_none() {
                        match splits.get(next_split) {
                            None => return Ok(true),
                            Some(sp) => {
                                reader = Some(conn.open(&spec, sp)?);
                                reported_bytes = 0;
                                next_split += 1;
                            }
                        }
                    }
                    let Some(r) = reader.as_mut() else {
                        return Ok(true);
                    };
                    let more = r.read(&mut b, batch_rows, &mut rejects)?;
                    let bytes = r.bytes_read();
                    shared.nodes[i]
                        .bytes
                        .fetch_add(bytes - reported_bytes, Ordering::Relaxed);
                    reported_bytes = bytes;
                    if !more {
                        reader = None;
                        return Ok(next_split >= splits.len());
                    }
                    Ok(false)
                },
            ));
            let finished = match step {
                Ok(Ok(f)) => f,
                Ok(Err(e)) => {
                    shared.fail(RunError::Input {
                        file: e.place,
                        line: None,
                        column: None,
                        reason: e.reason,
                    });
                    true
                }
                Err(p) => {
                    shared.fail(RunError::Internal(format!(
                        "{name}: reader panicked: {}",
                        panic_message(p)
                    )));
                    true
                }
            };
            let read = b.rows as u64 + rejects.len() as u64;
            shared.nodes[i].add(read, b.rows as u64);
            if !rejects.is_empty() {
                let mut dead = ctx.dead.borrow_mut();
                for r in rejects.drain(..) {
                    reject(
                        shared,
                        i,
                        &name,
                        &spec.policy,
                        &mut dead,
                        || RunError::Input {
                            file: r.file.clone(),
                            line: r.line,
                            column: r.column.clone(),
                            reason: r.reason.clone(),
                        },
                        || dead_letter::source_line(&spec.name, &r),
                    );
                }
            }
            if b.rows > 0 && !shared.aborted() {
                output.session(&*c).give(Packet::new(0, b));
            } else {
                ctx.pool.put(b);
            }
            if finished || shared.aborted() {
                cap = None;
            } else {
                epoch += 1;
                c.downgrade(&epoch);
                activator.activate();
            }
        }
    })
}

fn unreachable_source(ctx: &Ctx, node: &PhysNode) {
    ctx.shared
        .fail(RunError::Plan(format!("{} is not a source", node.name)));
}

/// The source span of a fused step: its predicate, or its map expressions.
fn step_span(step: &Step) -> Option<crate::span::Span> {
    match step {
        Step::Filter(e) => Some(e.span),
        Step::Map(exprs) => {
            let first = exprs.first()?.span;
            let last = exprs.last()?.span;
            Some(if first.file == last.file {
                first.to(last)
            } else {
                first
            })
        }
    }
}

/// Stands in for a kernel that could not be built, after the job has been failed.
struct Broken;
impl Kernel for Broken {
    fn run(&self, _: &Batch, _: &mut Batch, _: &mut Vec<RowError>) {}
    fn describe(&self) -> String {
        "broken".into()
    }
    fn compile_micros(&self) -> Option<u64> {
        None
    }
}

#[allow(clippy::too_many_arguments)]
fn kernel_op<'s>(
    input: S<'s>,
    i: usize,
    name: &str,
    in_row: &RowType,
    out_row: &RowType,
    steps: Vec<FusedStep>,
    count: bool,
    ctx: &Ctx,
) -> S<'s> {
    let ctx = ctx.clone();
    let name = name.to_string();
    let in_row = in_row.clone();
    let out_cols = out_row.len();
    let factory = ctx.job.factory.clone();
    let kernel: Arc<dyn Kernel> = match catch_unwind(AssertUnwindSafe(|| factory(&in_row, &steps)))
    {
        Ok(k) => k,
        Err(p) => {
            ctx.shared.fail(RunError::Stage {
                stage: name.clone(),
                reason: format!("cannot build its kernel: {}", panic_message(p)),
            });
            Arc::new(Broken)
        }
    };
    input.unary::<Cb, _, _, _>(Pipeline, &name.clone(), move |_cap, _info| {
        let mut errors: Vec<RowError> = Vec::new();
        move |input, output| {
            input.for_each(|cap, data| {
                let mut session = output.session(&cap);
                for p in data.drain(..) {
                    let shared = &ctx.shared;
                    if shared.aborted() {
                        ctx.pool.recycle(p.batch);
                        continue;
                    }
                    let mut out = ctx.pool.take(out_cols);
                    errors.clear();
                    let ran = catch_unwind(AssertUnwindSafe(|| {
                        kernel.run(&p.batch, &mut out, &mut errors)
                    }));
                    if let Err(e) = ran {
                        shared.fail(RunError::Stage {
                            stage: name.clone(),
                            reason: format!("kernel panicked: {}", panic_message(e)),
                        });
                        ctx.pool.recycle(p.batch);
                        ctx.pool.put(out);
                        continue;
                    }
                    if count {
                        shared.nodes[i].add(p.batch.rows as u64, out.rows as u64);
                    }
                    if !errors.is_empty() {
                        let mut dead = ctx.dead.borrow_mut();
                        let default = ErrorPolicy::default();
                        for e in errors.iter() {
                            let step = e.step as usize;
                            let policy = steps.get(step).map(|s| &s.policy).unwrap_or(&default);
                            let kind = match steps.get(step).map(|s| &s.step) {
                                Some(Step::Filter(_)) => "filter",
                                _ => "map",
                            };
                            let row = e.row as usize;
                            reject(
                                shared,
                                i,
                                &name,
                                policy,
                                &mut dead,
                                || RunError::RowEval {
                                    stage: format!("{name}, step {} ({kind})", step + 1),
                                    at: steps.get(step).and_then(|s| step_span(&s.step)),
                                    code: e.code,
                                    row: if row < p.batch.rows {
                                        crate::connectors::row_to_json(&p.batch, row, &in_row)
                                            .to_string()
                                    } else {
                                        String::new()
                                    },
                                },
                                || {
                                    let values = if row < p.batch.rows {
                                        crate::connectors::row_to_json(&p.batch, row, &in_row)
                                    } else {
                                        serde_json::Value::Null
                                    };
                                    dead_letter::stage_line(
                                        &name,
                                        step + 1,
                                        e.code.message(),
                                        values,
                                    )
                                },
                            );
                        }
                    }
                    ctx.pool.recycle(p.batch);
                    if out.rows > 0 && !shared.aborted() {
                        session.give(Packet::new(0, out));
                    } else {
                        ctx.pool.put(out);
                    }
                }
            });
        }
    })
}

fn group_op<'s>(
    input: S<'s>,
    i: usize,
    node: &PhysNode,
    keys: &[usize],
    aggs: &[Agg],
    ctx: &Ctx,
) -> S<'s> {
    let in_row = &node.input_row;
    let scalar_of = |c: usize| {
        in_row
            .fields
            .get(c)
            .map(|f| f.ty.scalar)
            .unwrap_or(Scalar::Null)
    };
    let computed = aggs
        .iter()
        .any(|a| matches!(&a.arg, Some(e) if !matches!(e.kind, ExprKind::Field(_))));
    let key_types = RowType::new(
        keys.iter()
            .filter_map(|&k| in_row.fields.get(k).cloned())
            .collect(),
    );
    let (stream, layout) = if computed {
        // Compute keys and aggregate arguments with one map kernel: row = keys ++ args.
        let mut exprs: Vec<Expr> = Vec::new();
        let mut fields: Vec<Field> = Vec::new();
        for &k in keys {
            let f = in_row.fields.get(k).cloned().unwrap_or(Field {
                name: format!("_key{k}"),
                ty: crate::types::Type::NULL,
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
        let steps = vec![FusedStep {
            step: Step::Map(exprs),
            policy: ErrorPolicy::default(),
            row: row.clone(),
        }];
        let s = kernel_op(
            input,
            i,
            &format!("{} (arguments)", node.name),
            in_row,
            &row,
            steps,
            false,
            ctx,
        );
        let layout = GroupLayout {
            keys: (0..keys.len())
                .map(|j| (j, row.fields[j].ty.scalar))
                .collect(),
            aggs: agg_layout,
        };
        (s, layout)
    } else {
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
        (input, layout)
    };
    let peers = ctx.peers;
    // With several workers, each aggregates its own rows first and sends only its partial
    // states (one row per group it saw) to the worker that owns the key: the rows themselves
    // never cross workers. `GroupTable::merge` combines them there.
    let partial = peers > 1;
    let routed = if partial {
        let c2 = ctx.clone();
        let layout = layout.clone();
        let key_types = key_types.clone();
        let name = node.name.clone();
        let batch_rows = ctx.job.plan.batch.max(1);
        stream.unary_frontier::<Cb, _, _, _>(Pipeline, "pre-aggregate", move |cap, _info| {
            let mut cap = Some(cap);
            let mut pre = GroupTable::new(layout, key_types);
            let pcols = pre.partial_columns();
            move |(input, frontier), output| {
                input.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if !c2.shared.aborted() {
                            c2.shared.nodes[i].add(p.batch.rows as u64, 0);
                            if let Err(reason) = pre.update(&p.batch) {
                                c2.shared.fail(RunError::Stage {
                                    stage: name.clone(),
                                    reason,
                                });
                            }
                        }
                        c2.pool.recycle(p.batch);
                    }
                });
                let Some(c) = cap.as_mut() else { return };
                let f = frontier.frontier();
                if f.is_empty() {
                    if !c2.shared.aborted() {
                        let mut parts: Vec<Batch> =
                            (0..peers).map(|_| c2.pool.take(pcols)).collect();
                        let mut key = Vec::new();
                        for g in 0..pre.groups() {
                            key.clear();
                            pre.group_key(g, &mut key);
                            let w = route(&key, peers) as usize;
                            pre.emit_partial(g, &mut parts[w]);
                            if parts[w].rows >= batch_rows {
                                let b = std::mem::replace(&mut parts[w], c2.pool.take(pcols));
                                output.session(&*c).give(Packet::new(w as u64, b));
                            }
                        }
                        for (w, b) in parts.into_iter().enumerate() {
                            if b.rows > 0 {
                                output.session(&*c).give(Packet::new(w as u64, b));
                            } else {
                                c2.pool.put(b);
                            }
                        }
                    }
                    cap = None;
                } else if let Some(t) = f.iter().min()
                    && *t > *c.time()
                {
                    c.downgrade(t);
                }
            }
        })
    } else {
        stream
    };
    let ctx = ctx.clone();
    let name = node.name.clone();
    let out_cols = node.row.len();
    let batch_rows = ctx.job.plan.batch;
    routed.unary_frontier::<Cb, _, _, _>(
        Exchange::new(|p: &Packet| p.route),
        &node.name,
        move |cap, _info| {
            let mut cap = Some(cap);
            let mut table = GroupTable::new(layout, key_types);
            move |(input, frontier), output| {
                input.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if !ctx.shared.aborted() {
                            let r = if partial {
                                table.merge(&p.batch)
                            } else {
                                ctx.shared.nodes[i].add(p.batch.rows as u64, 0);
                                table.update(&p.batch)
                            };
                            if let Err(reason) = r {
                                ctx.shared.fail(RunError::Stage {
                                    stage: name.clone(),
                                    reason,
                                });
                            }
                        }
                        ctx.pool.recycle(p.batch);
                    }
                });
                let Some(c) = cap.as_mut() else { return };
                let f = frontier.frontier();
                if f.is_empty() {
                    if !ctx.shared.aborted() {
                        let mut from = 0;
                        while from < table.groups() {
                            let mut b = ctx.pool.take(out_cols);
                            from = table.emit(from, batch_rows, &mut b);
                            ctx.shared.nodes[i].add(0, b.rows as u64);
                            output.session(&*c).give(Packet::new(0, b));
                        }
                    }
                    cap = None;
                } else if let Some(t) = f.iter().min()
                    && *t > *c.time()
                {
                    c.downgrade(t);
                }
            }
        },
    )
}

/// Cuts a packet's batch to `n` rows (copying it first only if other consumers share it).
fn truncate(b: &mut Arc<Batch>, n: usize) {
    if b.rows > n {
        let b = Arc::make_mut(b);
        b.rows = n;
        b.words.truncate(n * b.layout.stride);
    }
}

fn limit_op<'s>(input: S<'s>, i: usize, node: &PhysNode, n: u64, ctx: &Ctx) -> S<'s> {
    let local = if ctx.peers > 1 {
        let c2 = ctx.clone();
        input.unary::<Cb, _, _, _>(Pipeline, "limit (local)", move |_cap, _info| {
            let mut left = n;
            move |input, output| {
                input.for_each(|cap, data| {
                    let mut session = output.session(&cap);
                    for mut p in data.drain(..) {
                        if left == 0 {
                            c2.pool.recycle(p.batch);
                            continue;
                        }
                        truncate(&mut p.batch, left.min(usize::MAX as u64) as usize);
                        left -= p.batch.rows as u64;
                        session.give(p);
                    }
                });
            }
        })
    } else {
        input
    };
    let ctx = ctx.clone();
    local.unary::<Cb, _, _, _>(
        Exchange::new(|_p: &Packet| 0),
        &node.name,
        move |_cap, _info| {
            let mut left = n;
            if n == 0 {
                ctx.shared.limit_done[i].store(true, Ordering::Relaxed);
            }
            move |input, output| {
                input.for_each(|cap, data| {
                    let mut session = output.session(&cap);
                    for mut p in data.drain(..) {
                        let rows_in = p.batch.rows as u64;
                        if left == 0 || ctx.shared.aborted() {
                            ctx.shared.nodes[i].add(rows_in, 0);
                            ctx.pool.recycle(p.batch);
                            continue;
                        }
                        truncate(&mut p.batch, left.min(usize::MAX as u64) as usize);
                        left -= p.batch.rows as u64;
                        if left == 0 {
                            ctx.shared.limit_done[i].store(true, Ordering::Relaxed);
                        }
                        ctx.shared.nodes[i].add(rows_in, p.batch.rows as u64);
                        p.route = 0;
                        session.give(p);
                    }
                });
            }
        },
    )
}

fn sink_op<'s>(input: S<'s>, i: usize, node: &PhysNode, sink: usize, ctx: &Ctx) -> S<'s> {
    let PhysOp::Sink { spec, .. } = &node.op else {
        return input;
    };
    let ctx = ctx.clone();
    let place = spec.path.clone().unwrap_or_else(|| "<stdout>".to_string());
    let mut writer: Option<Box<dyn RowWriter>> = None;
    let mut target = SinkTarget::File;
    match ctx.job.registry.sink(&spec.connector) {
        None => ctx.shared.fail(RunError::Plan(format!(
            "unknown sink connector `{}`",
            spec.connector
        ))),
        Some(conn) => {
            target = conn.target(spec);
            let out: Option<Result<Box<dyn std::io::Write + Send>, String>> = match target {
                SinkTarget::Stdout => {
                    (ctx.index == 0).then(|| Ok(Box::new(std::io::stdout()) as Box<_>))
                }
                SinkTarget::File => Some(
                    match ctx.job.sink_files.get(sink).and_then(|f| f.as_ref()) {
                        None => Err("output was not prepared".to_string()),
                        Some(f) => Ok(Box::new(f.clone()) as Box<dyn std::io::Write + Send>),
                    },
                ),
            };
            // A file's header was written when it was prepared; standard output is written by
            // worker 0 alone, which writes the header.
            let first = target == SinkTarget::Stdout && ctx.index == 0;
            match out {
                None => {}
                Some(Err(reason)) => ctx.shared.fail(RunError::Output {
                    path: place.clone(),
                    reason,
                }),
                Some(Ok(out)) => match conn.writer(spec, &node.row, out, first) {
                    Ok(w) => writer = Some(w),
                    Err(e) => ctx.shared.fail(RunError::Output {
                        path: place.clone(),
                        reason: e.reason,
                    }),
                },
            }
        }
    }
    let dest = if target == SinkTarget::Stdout {
        0
    } else {
        ctx.index as u64
    };
    input.unary_frontier::<Cb, _, _, _>(
        Exchange::new(move |_p: &Packet| dest),
        &node.name,
        move |_cap, _info| {
            move |(input, frontier), _output| {
                input.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if !ctx.shared.aborted()
                            && let Some(w) = writer.as_mut()
                        {
                            if let Err(e) = w.write_batch(&p.batch) {
                                ctx.shared.fail(RunError::Output {
                                    path: place.clone(),
                                    reason: format!("write error: {e}"),
                                });
                            }
                            let n = p.batch.rows as u64;
                            ctx.shared.nodes[i].add(n, n);
                        }
                        ctx.pool.recycle(p.batch);
                    }
                });
                if frontier.frontier().is_empty()
                    && let Some(mut w) = writer.take()
                    && !ctx.shared.aborted()
                    && let Err(e) = w.finish()
                {
                    ctx.shared.fail(RunError::Output {
                        path: place.clone(),
                        reason: format!("write error: {e}"),
                    });
                }
            }
        },
    )
}
