//! The group operator: aggregates per worker, exchanges partial states by key hash, and emits
//! each group once its input frontier is empty.

use super::{Cb, Ctx, Order, Packet, S, kernel_op};
use crate::batch::{BATCH_BYTES, Batch};
use crate::runtime::RunError;
use crate::runtime::group::{GroupTable, route};
use crate::runtime::physical::{GroupPlan, PhysNode};
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
    let budget = ctx.shared.memory_budget;
    // With several workers, each aggregates its own rows first and sends only its partial
    // states (one row per group it saw) to the worker that owns the key: the rows themselves
    // never cross workers. `GroupTable::merge` combines them there. The pre-aggregation table
    // is flushed (its partial states sent on) whenever it holds more than `PRE_FLUSH_BYTES`, so
    // with many distinct keys it stays small instead of holding a second copy of them.
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
            pre.set_limit(budget);
            let mut held = 0;
            let pcols = pre.partial_columns();
            move |(input, frontier), output| {
                let Some(c) = cap.as_mut() else {
                    input.for_each(|_cap, data| {
                        data.drain(..).for_each(|p| c2.pool.recycle(p.batch))
                    });
                    return;
                };
                let flush =
                    |pre: &mut GroupTable, output: &mut OutputBuilderSession<'_, u64, Cb>| {
                        let mut parts: Vec<Batch> =
                            (0..peers).map(|_| c2.pool.take(pcols)).collect();
                        let mut key = Vec::new();
                        for g in 0..pre.groups() {
                            key.clear();
                            pre.group_key(g, &mut key);
                            let w = route(&key, peers) as usize;
                            let dest = owners.get(w).copied().unwrap_or(0) as u64;
                            pre.emit_partial(g, &mut parts[w]);
                            if parts[w].rows >= batch_rows || parts[w].bytes() >= BATCH_BYTES {
                                let b = std::mem::replace(&mut parts[w], c2.pool.take(pcols));
                                output.session(&*c).give(Packet::new(dest, b));
                            }
                        }
                        for (w, b) in parts.into_iter().enumerate() {
                            if b.rows > 0 {
                                let dest = owners.get(w).copied().unwrap_or(0) as u64;
                                output.session(&*c).give(Packet::new(dest, b));
                            } else {
                                c2.pool.put(b);
                            }
                        }
                        pre.clear();
                    };
                input.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if !c2.shared.aborted() {
                            c2.shared.nodes[i].add(p.batch.rows as u64, 0);
                            pre.set_position(position(p.order));
                            let r = pre.update(&p.batch).map_err(|reason| RunError::Stage {
                                stage: name.clone(),
                                reason,
                            });
                            let r = r.and_then(|()| {
                                c2.shared.account_group(&mut held, pre.bytes(), &name)
                            });
                            match r {
                                Err(e) => c2.shared.fail(e),
                                Ok(()) if pre.bytes() > PRE_FLUSH_BYTES => flush(&mut pre, output),
                                Ok(()) => {}
                            }
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
            table.set_limit(budget);
            let mut held = 0;
            // The next group to emit, once the input is complete.
            let mut next: Option<usize> = None;
            move |(input, frontier), output| {
                input.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if !ctx.shared.aborted() {
                            let r = if partial {
                                table.merge(&p.batch)
                            } else {
                                ctx.shared.nodes[i].add(p.batch.rows as u64, 0);
                                table.set_position(position(p.order));
                                table.update(&p.batch)
                            };
                            let r = r
                                .map_err(|reason| RunError::Stage {
                                    stage: name.clone(),
                                    reason,
                                })
                                .and_then(|()| {
                                    ctx.shared.account_group(&mut held, table.bytes(), &name)
                                });
                            if let Err(e) = r {
                                ctx.shared.fail(e);
                            }
                        }
                        ctx.pool.recycle(p.batch);
                    }
                });
                let Some(c) = cap.as_mut() else { return };
                let f = frontier.frontier();
                if f.is_empty() {
                    // Emit a few batches per activation, so that downstream operators consume
                    // them before the next ones are made (the output is never all in memory).
                    let mut from = next.unwrap_or(0);
                    let mut given = 0;
                    while !ctx.shared.aborted() && from < table.groups() && given < 4 {
                        let mut b = ctx.pool.take(out_cols);
                        from = table.emit(from, batch_rows, BATCH_BYTES, &mut b);
                        ctx.shared.nodes[i].add(0, b.rows as u64);
                        output.session(&*c).give(Packet::new(0, b));
                        given += 1;
                    }
                    next = Some(from);
                    if ctx.shared.aborted() || from >= table.groups() {
                        let _ = ctx.shared.account_group(&mut held, 0, &name);
                        table.release();
                        cap = None;
                    } else {
                        activator.activate();
                    }
                } else if let Some(t) = f.iter().min()
                    && *t > *c.time()
                {
                    c.downgrade(t);
                }
            }
        },
    )
}

/// A packet's input position as `GroupTable::set_position` takes it (for `first`/`last`).
fn position(o: Order) -> Option<(u64, u64)> {
    (o != Order::NONE).then_some((o.split_key(), o.chunk))
}

/// A pre-aggregation table sends its partial states on once it holds this many bytes.
const PRE_FLUSH_BYTES: usize = 4 << 20;
