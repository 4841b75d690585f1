//! The source operator: reads this worker's splits one chunk per activation, holding back while
//! too many chunks are unfinished downstream (probe-window back-pressure).
//!
//! A chunk ends at the batch size in rows or at [`BATCH_BYTES`] (row words plus string bytes),
//! whichever comes first: the reader is asked for as many rows as the bytes per row seen so far
//! say will fit (64 rows first). So 200 KB rows make chunks of ~40 rows, not 16,384 (3.2 GB).
//! The bytes of unfinished chunks are bounded as well: a source holds back while its chunks
//! still in flight downstream hold more than [`IN_FLIGHT_BYTES`].

use super::{Ctx, Order, Packet, S, panic_message};
use crate::batch::BATCH_BYTES;
use crate::connectors::{RowReject, SourceReader, dead_letter};
use crate::runtime::RunError;
use crate::runtime::physical::{PhysNode, PhysOp};
use crate::runtime::policy::reject;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::Duration;
use timely::dataflow::Scope;
use timely::dataflow::operators::generic::operator::source;

/// The most bytes of one source's chunks (per worker) that may be unfinished downstream.
pub const IN_FLIGHT_BYTES: usize = 4 * BATCH_BYTES;

/// A source's epoch covers its chunks until they hold this many rows (or [`BATCH_BYTES`]): the
/// default batch, so with it every chunk is its own epoch, while smaller chunks share one. Each
/// epoch costs timely's progress tracking the same at every operator whatever its rows (a
/// frontier move per operator, ~60k instructions per epoch on J3), and the back-pressure window
/// counts epochs: so a smaller batch pays neither more tracking nor less slack between the
/// workers (32 epochs of 1,024-row chunks held a worker back ~0.45 s per 1M-row run on a loaded
/// machine).
const EPOCH_ROWS: usize = 16_384;

/// Rows asked for first, before the reader has shown how large its rows are.
const FIRST_STEP_ROWS: usize = 64;

pub(super) fn source_op<'s>(
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
    // Splits are dealt in order, piece `k` to the `k % n`-th of the `n` workers that run the
    // source (`split::assign`): this worker's `k`-th split is piece `k * n + position`.
    let on = ctx.placed.get(i).cloned().unwrap_or_default();
    let peers = on.len().max(1);
    let index = on.iter().position(|&w| w == ctx.index).unwrap_or(0);
    let rank = ctx.ranks.get(i).copied().unwrap_or(u32::MAX - 1);
    let order_of = move |k: usize, chunk: u64| Order {
        source: rank,
        split: u32::try_from(k * peers + index).unwrap_or(u32::MAX - 1),
        chunk,
    };
    source(scope, &node.name, move |cap, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = Some(cap);
        let mut epoch = 0u64;
        let mut next_split = 0;
        let mut reader: Option<Box<dyn SourceReader>> = None;
        // The position of the next chunk in the split being read.
        let mut chunk = 0u64;
        let mut reported_bytes = 0u64;
        let mut rejects: Vec<RowReject> = Vec::new();
        // Bytes per row of the chunks read so far (0: none yet).
        let mut row_bytes = 0usize;
        // (epoch, bytes) of the chunks given and perhaps not finished downstream.
        let mut in_flight: VecDeque<(u64, usize)> = VecDeque::new();
        // Their bytes.
        let mut held = 0usize;
        // Rows and bytes given at the current epoch.
        let (mut epoch_rows, mut epoch_bytes) = (0usize, 0usize);
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            let shared = &ctx.shared;
            if shared.aborted() {
                cap = None;
                return;
            }
            if let Some(limits) = &stop_after {
                // The split being read (or the next one): when every `limit` downstream has its
                // N rows from it or an earlier split, no row from here on can be among them.
                let k = if reader.is_some() {
                    next_split - 1
                } else {
                    next_split
                };
                let key = order_of(k, 0).split_key();
                if limits
                    .iter()
                    .all(|&l| key >= shared.limit_upto[l].load(Ordering::Relaxed))
                {
                    cap = None;
                    return;
                }
            }
            while let Some(&(e, bytes)) = in_flight.front()
                && !ctx.probe.less_than(&(e + 1))
            {
                in_flight.pop_front();
                held -= bytes;
            }
            if (epoch >= window && ctx.probe.less_than(&(epoch + 1 - window)))
                || held > IN_FLIGHT_BYTES
            {
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
            // The chunk read below belongs to the split open now or opened by this step.
            let split_at = if reader.is_some() {
                next_split - 1
            } else {
                next_split
            };
            let step = catch_unwind(AssertUnwindSafe(
                || -> Result<bool, crate::connectors::ConnectorError> {
                    if reader.is_none() {
                        match splits.get(next_split) {
                            None => return Ok(true),
                            Some(sp) => {
                                reader = Some(conn.open(&spec, sp)?);
                                reported_bytes = 0;
                                chunk = 0;
                                next_split += 1;
                            }
                        }
                    }
                    let Some(r) = reader.as_mut() else {
                        return Ok(true);
                    };
                    let more = loop {
                        let want = batch_rows - b.rows;
                        let step = match row_bytes {
                            0 => want.min(FIRST_STEP_ROWS),
                            n => want.min((BATCH_BYTES.saturating_sub(b.bytes()) / n).max(1)),
                        };
                        let before = b.rows;
                        let more = r.read(&mut b, step, &mut rejects)?;
                        if b.rows > 0 {
                            row_bytes = b.bytes().div_ceil(b.rows).max(1);
                        }
                        if !more
                            || b.rows >= batch_rows
                            || b.bytes() >= BATCH_BYTES
                            || b.rows == before
                        {
                            break more;
                        }
                    };
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
                if in_flight.back().is_some_and(|&(e, _)| e == epoch) {
                    if let Some(last) = in_flight.back_mut() {
                        last.1 += b.bytes();
                    }
                } else {
                    in_flight.push_back((epoch, b.bytes()));
                }
                held += b.bytes();
                epoch_rows += b.rows;
                epoch_bytes += b.bytes();
                let mut p = Packet::new(0, b);
                p.order = order_of(split_at, chunk);
                chunk += 1;
                output.session(&*c).give(p);
            } else {
                ctx.pool.put(b);
            }
            if finished || shared.aborted() {
                cap = None;
            } else {
                // The epoch is closed once it holds a default batch's rows or a chunk's bytes,
                // so the epoch still open holds less than BATCH_BYTES when the source checks
                // `held` (the closed ones, which finish without it, hold the rest).
                if epoch_rows >= EPOCH_ROWS || epoch_bytes >= BATCH_BYTES {
                    epoch += 1;
                    (epoch_rows, epoch_bytes) = (0, 0);
                    c.downgrade(&epoch);
                }
                activator.activate();
            }
        }
    })
}

pub(super) fn unreachable_source(ctx: &Ctx, node: &PhysNode) {
    ctx.shared
        .fail(RunError::Plan(format!("{} is not a source", node.name)));
}
