//! The limit operator: each worker cuts its own input to N rows, then worker 0 takes the first N
//! it receives.

use super::{Cb, Ctx, Packet, S};
use crate::batch::Batch;
use crate::runtime::physical::PhysNode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Operator;

/// Cuts a packet's batch to `n` rows (copying it first only if other consumers share it).
fn truncate(b: &mut Arc<Batch>, n: usize) {
    if b.rows > n {
        let b = Arc::make_mut(b);
        b.rows = n;
        b.words.truncate(n * b.layout.stride);
    }
}

pub(super) fn limit_op<'s>(input: S<'s>, i: usize, node: &PhysNode, n: u64, ctx: &Ctx) -> S<'s> {
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
