//! The group operator: aggregates per worker, exchanges partial states by key hash, and emits
//! each group once its input frontier is empty.
//!
//! Memory: each worker's table may hold its share of the memory budget (`FLOW_MEMORY_BUDGET`,
//! [`crate::runtime::policy::memory_budget`]). A table that would pass it spills: every group's
//! partial state goes to one of [`SPILL_FANOUT`] partitions (by bits of its key's hash) in an
//! unnamed temporary file (as the sort spill: `tempfile::tempfile`, no name in the file system,
//! so it is gone on every exit path — the end of the job, an error, SIGINT/TERM/HUP and
//! `kill -9`), and the table starts empty. Once the input is complete, the table's last groups
//! are spilled too and the partitions are aggregated one at a time (a partition holds every
//! group of its keys, so each group is complete when its partition is); a partition that
//! itself does not fit is split again by the next bits of the hash. The result is the same as
//! in memory; only the order of the groups differs (partition by partition).

use super::sort::{decode_row, encode_row};
use super::{Cb, Ctx, Order, Packet, S, kernel_op};
use crate::batch::{BATCH_BYTES, Batch};
use crate::runtime::RunError;
use crate::runtime::group::{GroupTable, SPILL_FANOUT, SPILL_LEVELS, route_hash, spill_partition};
use crate::runtime::physical::{GroupPlan, PhysNode};
use crate::types::Scalar;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Operator;
use timely::dataflow::operators::generic::OutputBuilderSession;

pub(super) fn group_op<'s>(
    input: S<'s>,
    i: usize,
    node: &PhysNode,
    plan: &GroupPlan,
    ctx: &Ctx,
) -> S<'s> {
    let layout = plan.layout.clone();
    let key_types = plan.key_types.clone();
    let stream = match &plan.args {
        Some((steps, row)) => kernel_op(
            input,
            i,
            &format!("{} (arguments)", node.name),
            &node.input_row,
            row,
            steps.clone(),
            false,
            ctx,
        ),
        None => input,
    };
    // The workers that own the groups (all of them, or the stage's `@parallel(n)`).
    let owners = ctx.placed.get(i).cloned().unwrap_or_default();
    let peers = owners.len().max(1);
    let only = owners.first().copied().unwrap_or(0) as u64;
    // With several workers, each aggregates its own rows first and sends only its partial
    // states (one row per group it saw) to the worker that owns the key: the rows themselves
    // never cross workers. `GroupTable::merge` combines them there. The pre-aggregation table
    // is flushed (its partial states sent on) whenever it holds more than `PRE_FLUSH_BYTES`
    // (or its share of the budget), so with many distinct keys it stays small instead of
    // holding a second copy of them.
    let partial = peers > 1;
    // Each table's share of the budget: the owners' final tables, and as many pre-aggregation
    // tables.
    let share = ctx.shared.memory_budget / if partial { 2 * peers } else { 1 };
    let routed = if partial {
        let c2 = ctx.clone();
        let layout = layout.clone();
        let key_types = key_types.clone();
        let name = node.name.clone();
        let batch_rows = ctx.job.plan.batch.max(1);
        stream.unary_frontier::<Cb, _, _, _>(Pipeline, "pre-aggregate", move |cap, _info| {
            let mut cap = Some(cap);
            let mut pre = GroupTable::new(layout, key_types);
            pre.set_limit(share.min(2 * PRE_FLUSH_BYTES));
            pre.set_keep_hashes(true);
            let mut held = 0;
            let pcols = pre.partial_columns();
            // Rows added since the last flush, and the batches still to pass through without
            // pre-aggregation (see `BYPASS_BATCHES`).
            let mut since = 0usize;
            let mut bypass = 0usize;
            // The table's size at which it is flushed: `PRE_FLUSH_BYTES`, or, for the first
            // table after a pass-through, `RETRY_FLUSH_BYTES` (see there).
            let mut flush_at = PRE_FLUSH_BYTES;
            // Flushes in a row that did not reduce (see `bypass_after`).
            let mut streak = 0u32;
            move |(input, frontier), output| {
                let Some(c) = cap.as_mut() else {
                    input.for_each(|_cap, data| {
                        data.drain(..).for_each(|p| c2.pool.recycle(p.batch))
                    });
                    return;
                };
                // Sends each non-empty part to its owner (the others back to the pool).
                let send = |parts: Vec<Batch>, output: &mut OutputBuilderSession<'_, u64, Cb>| {
                    for (w, b) in parts.into_iter().enumerate() {
                        if b.rows > 0 {
                            let dest = owners.get(w).copied().unwrap_or(0) as u64;
                            output.session(&*c).give(Packet::new(dest, b));
                        } else {
                            c2.pool.put(b);
                        }
                    }
                };
                let flush =
                    |pre: &mut GroupTable, output: &mut OutputBuilderSession<'_, u64, Cb>| {
                        // Parts with room for their share of the groups (up to a batch),
                        // asked for once: they cross to other workers and are not recycled,
                        // so they would otherwise grow by doubling.
                        let rows = (pre.groups() / peers + pre.groups() / (8 * peers) + 64)
                            .min(batch_rows);
                        let key_bytes = pre.partial_key_bytes();
                        let part = || {
                            let mut b = c2.pool.take(pcols);
                            b.words.reserve(rows * b.layout.stride);
                            b.arena.vec_mut().reserve(rows * key_bytes);
                            b
                        };
                        let mut parts: Vec<Batch> = (0..peers).map(|_| part()).collect();
                        for g in 0..pre.groups() {
                            let h = pre.group_hash(g);
                            let w = route_hash(h, peers) as usize;
                            let dest = owners.get(w).copied().unwrap_or(0) as u64;
                            pre.emit_partial(g, h, &mut parts[w]);
                            if parts[w].rows >= batch_rows || parts[w].bytes() >= BATCH_BYTES {
                                let b = std::mem::replace(&mut parts[w], part());
                                output.session(&*c).give(Packet::new(dest, b));
                            }
                        }
                        send(parts, output);
                        pre.clear();
                    };
                input.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        c2.shared.nodes[i].add(p.batch.rows as u64, 0);
                        pre.set_position(position(p.order));
                        if bypass > 0 && !c2.shared.aborted() {
                            // Each row as its own partial state, straight to its owner.
                            bypass -= 1;
                            let mut parts: Vec<Batch> =
                                (0..peers).map(|_| c2.pool.take(pcols)).collect();
                            pre.row_partials(&p.batch, &mut parts);
                            send(parts, output);
                            c2.pool.recycle(p.batch);
                            continue;
                        }
                        since += p.batch.rows;
                        let mut from = 0;
                        while !c2.shared.aborted() {
                            match pre.add(&p.batch, from) {
                                Err(reason) => c2.shared.fail(RunError::Stage {
                                    stage: name.clone(),
                                    reason,
                                }),
                                // Full: send the partial states on, go on with an empty table.
                                Ok(Some(row)) if pre.groups() > 0 => {
                                    bypass = bypass_after(pre.groups(), &mut since, &mut streak);
                                    flush_at = flush_size(bypass);
                                    flush(&mut pre, output);
                                    pre.release();
                                    from = row;
                                    continue;
                                }
                                Ok(Some(_)) => c2.shared.fail(RunError::Stage {
                                    stage: name.clone(),
                                    reason: too_small(pre.limit()),
                                }),
                                Ok(None) => {
                                    // Over the budget of the whole process, or over the flush
                                    // size: send the partial states on.
                                    let over =
                                        c2.shared.account_group(&mut held, pre.bytes(), &name);
                                    let big = pre.bytes() > flush_at;
                                    if big
                                        && over.is_ok()
                                        && !pre.over_limit()
                                        && flush_at < PRE_FLUSH_BYTES
                                        && reduces(pre.groups(), since)
                                    {
                                        // A retry that reduces: the table goes on to its
                                        // full size.
                                        flush_at = PRE_FLUSH_BYTES;
                                    } else if over.is_err() || big || pre.over_limit() {
                                        bypass =
                                            bypass_after(pre.groups(), &mut since, &mut streak);
                                        flush_at = flush_size(bypass);
                                        flush(&mut pre, output);
                                        pre.release();
                                        let _ = c2.shared.account_group(&mut held, 0, &name);
                                    }
                                }
                            }
                            break;
                        }
                        c2.pool.recycle(p.batch);
                    }
                });
                let f = frontier.frontier();
                if f.is_empty() {
                    if !c2.shared.aborted() {
                        flush(&mut pre, output);
                    }
                    let _ = c2.shared.account_group(&mut held, 0, &name);
                    pre.release();
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
    let scope = routed.scope();
    routed.unary_frontier::<Cb, _, _, _>(
        // Partial states go to the owner of their key; without pre-aggregation (one owner)
        // every row goes to that owner.
        Exchange::new(move |p: &Packet| if partial { p.route } else { only }),
        &node.name,
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut cap = Some(cap);
            let mut table = GroupTable::new(layout, key_types);
            table.set_limit(share);
            let shape = Shape {
                types: table.partial_types(),
                cols: table.partial_columns(),
                budget: share,
            };
            let mut held = 0;
            // The spill of the input (if the table did not fit), then the partitions still to
            // aggregate: (spill, partition), the next one last.
            let mut spill: Option<Spill> = None;
            let mut todo: Vec<(Rc<Spill>, usize)> = Vec::new();
            // The next group of `table` to emit, while emitting.
            let mut next: Option<usize> = None;
            let mut input_done = false;
            move |(input, frontier), output| {
                let stage_err = |reason: String| RunError::Stage {
                    stage: name.clone(),
                    reason,
                };
                input.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if !partial {
                            ctx.shared.nodes[i].add(p.batch.rows as u64, 0);
                        }
                        if !ctx.shared.aborted() {
                            if !partial {
                                table.set_position(position(p.order));
                            }
                            let r =
                                add_spilling(&mut table, &p.batch, partial, &mut spill, 0, &shape)
                                    .map_err(&stage_err)
                                    .and_then(|()| {
                                        if ctx
                                            .shared
                                            .account_group(&mut held, table.bytes(), &name)
                                            .is_err()
                                            && table.groups() > 0
                                        {
                                            // The process's tables together are over the budget:
                                            // this one goes to disk.
                                            spill_table(&mut table, &mut spill, 0, &shape)
                                                .map_err(&stage_err)?;
                                            let _ = ctx.shared.account_group(&mut held, 0, &name);
                                        }
                                        Ok(())
                                    });
                            if let Err(e) = r {
                                ctx.shared.fail(e);
                            }
                        }
                        // Partial states come from the other workers' pools: recycled here they
                        // would pile up (with their string bytes) in this worker's pool.
                        if !partial {
                            ctx.pool.recycle(p.batch);
                        }
                    }
                });
                let Some(c) = cap.as_mut() else { return };
                let f = frontier.frontier();
                if !f.is_empty() {
                    if let Some(t) = f.iter().min()
                        && *t > *c.time()
                    {
                        c.downgrade(t);
                    }
                    return;
                }
                if !input_done {
                    input_done = true;
                    next = Some(0);
                    if spill.is_some() && !ctx.shared.aborted() {
                        // The last groups join the spilled ones; then partition by partition.
                        let r = spill_table(&mut table, &mut spill, 0, &shape)
                            .and_then(|()| finish(&mut spill, &mut todo));
                        if let Err(e) = r {
                            ctx.shared.fail(stage_err(e));
                        }
                        next = None;
                    }
                }
                // Emit a few batches per activation, so that downstream operators consume
                // them before the next ones are made (the output is never all in memory); the
                // keys of the groups written out are freed as it goes.
                let mut given = 0;
                let mut bytes = 0;
                while !ctx.shared.aborted() && given < 4 && bytes < BATCH_BYTES {
                    match next {
                        Some(from) if from < table.groups() => {
                            let mut b = ctx.pool.take(out_cols);
                            let from = table.emit(from, batch_rows, BATCH_BYTES, &mut b);
                            table.free_before(from);
                            next = Some(from);
                            ctx.shared.nodes[i].add(0, b.rows as u64);
                            bytes += b.bytes();
                            output.session(&*c).give(Packet::new(0, b));
                            given += 1;
                        }
                        _ => {
                            table.release();
                            let _ = ctx.shared.account_group(&mut held, 0, &name);
                            let Some((sp, part)) = todo.pop() else {
                                next = None;
                                break;
                            };
                            // One partition per activation.
                            match load_partition(&mut table, &sp, part, &shape) {
                                Ok(Some(child)) => {
                                    todo.extend(
                                        (0..SPILL_FANOUT).rev().map(|p| (child.clone(), p)),
                                    );
                                    next = None;
                                }
                                Ok(None) => next = Some(0),
                                Err(e) => ctx.shared.fail(stage_err(e)),
                            }
                            let _ = ctx.shared.account_group(&mut held, table.bytes(), &name);
                            break;
                        }
                    }
                }
                let more = matches!(next, Some(from) if from < table.groups()) || !todo.is_empty();
                if ctx.shared.aborted() || !more {
                    let _ = ctx.shared.account_group(&mut held, 0, &name);
                    table.release();
                    todo.clear();
                    spill = None;
                    cap = None;
                } else {
                    activator.activate();
                }
            }
        },
    )
}

/// A packet's input position as `GroupTable::set_position` takes it (for `first`/`last`).
fn position(o: Order) -> Option<(u64, u64)> {
    (o != Order::NONE).then_some((o.split_key(), o.chunk))
}

/// A pre-aggregation table sends its partial states on once it holds this many bytes (16 MiB:
/// about 200k groups of a short string key and two aggregates, so that a worker's share of the
/// H2O q3/q7 keys, 100k at 10M rows, is reduced in its table rather than flushed half-way).
const PRE_FLUSH_BYTES: usize = 16 << 20;

/// Batches a pre-aggregation passes through (each row its own partial state, no table) after a
/// flush that found it did not reduce: fewer than 2 rows per group since the previous flush
/// (nearly every key new, as for H2O q10). Then the table is tried again.
const BYPASS_BATCHES: usize = 64;

/// After a pass-through, the table is tried again only up to this size (2 MiB: about 25k
/// groups, under two batches of q10's rows) before the rows are judged: one that reduces goes
/// on to [`PRE_FLUSH_BYTES`], one that does not is flushed and the rows pass through again. The
/// first table of a stage always fills [`PRE_FLUSH_BYTES`]: a small window would judge a key of
/// 100k uniformly drawn values (H2O q3) as not reducing, although the full table holds them all
/// and reduces 10M rows to 100k states. A retry only has to see whether the input changed.
const RETRY_FLUSH_BYTES: usize = 2 << 20;

/// Whether `groups` groups made of `rows` rows reduce: at least 2 rows a group.
fn reduces(groups: usize, rows: usize) -> bool {
    groups * 2 <= rows
}

/// The batches to pass through after a flush of `groups` groups made of `since` rows (reset):
/// none if they reduced, else [`BYPASS_BATCHES`], doubled for each flush in a row that did
/// not reduce (`streak`), up to 16 times as many.
fn bypass_after(groups: usize, since: &mut usize, streak: &mut u32) -> usize {
    let rows = std::mem::take(since);
    if reduces(groups, rows) {
        *streak = 0;
        0
    } else {
        let n = BYPASS_BATCHES << (*streak).min(4);
        *streak = streak.saturating_add(1);
        n
    }
}

/// The size the next table is flushed at, given the batches it passes through first.
fn flush_size(bypass: usize) -> usize {
    if bypass > 0 {
        RETRY_FLUSH_BYTES
    } else {
        PRE_FLUSH_BYTES
    }
}

/// The error of a table whose limit does not hold even one group.
fn too_small(limit: usize) -> String {
    format!(
        "one group needs more than this stage's share of the memory budget ({limit} bytes); {}",
        crate::runtime::policy::raise_budget_hint()
    )
}

/// Adds `b` (rows, or partial states if `partial`) to `table`, spilling the table to `spill`
/// (created at `level` if none) whenever it is full.
fn add_spilling(
    table: &mut GroupTable,
    b: &Batch,
    partial: bool,
    spill: &mut Option<Spill>,
    level: u32,
    shape: &Shape,
) -> Result<(), String> {
    let mut from = 0;
    loop {
        let r = if partial {
            table.merge_from(b, from)?
        } else {
            table.add(b, from)?
        };
        let Some(row) = r else {
            if table.over_limit() {
                // `count_distinct` sets grew past the limit in this batch. In a partition being
                // aggregated again (level > 0), one group over it alone will never fit.
                if level > 0 && table.groups() == 1 {
                    return Err(too_small(table.limit()));
                }
                spill_table(table, spill, level, shape)?;
            }
            return Ok(());
        };
        if table.groups() == 0 {
            return Err(too_small(table.limit()));
        }
        spill_table(table, spill, level, shape)?;
        from = row;
    }
}

/// Writes every group of `table` to `spill` (created at `level` if none) and empties it.
fn spill_table(
    table: &mut GroupTable,
    spill: &mut Option<Spill>,
    level: u32,
    shape: &Shape,
) -> Result<(), String> {
    if spill.is_none() {
        if level >= SPILL_LEVELS {
            return Err(format!(
                "the groups of one hash partition do not fit the memory budget of {} bytes \
                 even after {SPILL_LEVELS} levels of spilling; {}",
                shape.budget,
                crate::runtime::policy::raise_budget_hint()
            ));
        }
        *spill = Some(Spill::new(level, shape.budget).map_err(spill_error)?);
    }
    if let Some(s) = spill.as_mut() {
        s.take(table, shape).map_err(spill_error)?;
    }
    Ok(())
}

fn spill_error(e: io::Error) -> String {
    format!("cannot spill groups to a temporary file: {e}")
}

/// Flushes `spill`'s buffers and queues its partitions (the first one last, popped first).
fn finish(spill: &mut Option<Spill>, todo: &mut Vec<(Rc<Spill>, usize)>) -> Result<(), String> {
    if let Some(mut s) = spill.take() {
        s.flush_all().map_err(spill_error)?;
        let s = Rc::new(s);
        todo.extend((0..SPILL_FANOUT).rev().map(|p| (s.clone(), p)));
    }
    Ok(())
}

/// Aggregates partition `part` of `sp` into the (empty) `table`. If it does not fit, its groups
/// are split again, one level deeper: the returned spill (already flushed), to be aggregated
/// partition by partition in turn.
fn load_partition(
    table: &mut GroupTable,
    sp: &Spill,
    part: usize,
    shape: &Shape,
) -> Result<Option<Rc<Spill>>, String> {
    let mut child = None;
    let mut b = Batch::new(shape.cols);
    for &(start, end) in &sp.parts[part].ranges {
        let mut buf = vec![0u8; (end - start) as usize];
        sp.file
            .read_exact_at(&mut buf, start)
            .map_err(spill_error)?;
        let mut at = 0;
        b.clear();
        while at < buf.len() {
            let rec = buf
                .get(at..at + 4)
                .map(|l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)
                .and_then(|n| buf.get(at + 4..at + 4 + n));
            let Some(rec) = rec else {
                return Err("a group spill file is damaged (a record past its end)".into());
            };
            if decode_row(rec, &shape.types, &mut b).is_none() {
                return Err("a group spill file is damaged (a record does not decode)".into());
            }
            at += 4 + rec.len();
        }
        add_spilling(table, &b, true, &mut child, sp.level + 1, shape)?;
    }
    if child.is_some() {
        spill_table(table, &mut child, sp.level + 1, shape)?;
    }
    match child {
        Some(mut c) => {
            c.flush_all().map_err(spill_error)?;
            Ok(Some(Rc::new(c)))
        }
        None => Ok(None),
    }
}

/// What the spill functions need to know: the partial-state row's column types and count, and
/// the table's share of the budget.
struct Shape {
    types: Vec<Scalar>,
    cols: usize,
    budget: usize,
}

/// One partition of a spill: the byte ranges it wrote, and its bytes not yet written.
struct Part {
    ranges: Vec<(u64, u64)>,
    buf: Vec<u8>,
}

/// Partial-state rows of spilled groups, by hash partition, in one unnamed temporary file:
/// records `[length u32][the row as sort::encode_row]`, written in blocks per partition.
struct Spill {
    file: File,
    level: u32,
    parts: Vec<Part>,
    end: u64,
    block: usize,
}

impl Spill {
    fn new(level: u32, budget: usize) -> io::Result<Spill> {
        Ok(Spill {
            file: tempfile::tempfile()?,
            level,
            parts: (0..SPILL_FANOUT)
                .map(|_| Part {
                    ranges: Vec::new(),
                    buf: Vec::new(),
                })
                .collect(),
            end: 0,
            // The write buffers together take at most a quarter of the budget.
            block: (budget / 4 / SPILL_FANOUT).clamp(4 << 10, 256 << 10),
        })
    }

    /// Writes every group of `table` as a partial-state row to its partition; releases the
    /// table.
    fn take(&mut self, table: &mut GroupTable, shape: &Shape) -> io::Result<()> {
        let mut row = Batch::new(shape.cols);
        for g in 0..table.groups() {
            let h = table.group_hash(g);
            row.clear();
            table.emit_partial(g, h, &mut row);
            let p = spill_partition(h, self.level);
            let buf = &mut self.parts[p].buf;
            let at = buf.len();
            buf.extend_from_slice(&[0; 4]);
            encode_row(&row, 0, &shape.types, buf);
            let n = u32::try_from(buf.len() - at - 4)
                .map_err(|_| io::Error::other("a group state too large to spill"))?;
            buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
            if buf.len() >= self.block {
                self.flush(p)?;
            }
        }
        table.release();
        Ok(())
    }

    fn flush(&mut self, p: usize) -> io::Result<()> {
        let part = &mut self.parts[p];
        if part.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all_at(&part.buf, self.end)?;
        let end = self.end + part.buf.len() as u64;
        part.ranges.push((self.end, end));
        self.end = end;
        part.buf.clear();
        Ok(())
    }

    fn flush_all(&mut self) -> io::Result<()> {
        for p in 0..SPILL_FANOUT {
            self.flush(p)?;
            self.parts[p].buf = Vec::new();
        }
        Ok(())
    }
}
