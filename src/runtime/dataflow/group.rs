//! The group operator: aggregates per worker, exchanges partial states by key hash, and emits
//! each group once its input frontier is empty.

use super::{Cb, Ctx, Packet, S, kernel_op};
use crate::batch::Batch;
use crate::runtime::RunError;
use crate::runtime::group::{GroupTable, route};
use crate::runtime::physical::{GroupPlan, PhysNode};
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Operator;

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
