//! The limit operator: the first N rows in input order, at any worker count.
//!
//! Every packet knows where its rows are in the input ([`Order`]: source, split, chunk). Each
//! worker keeps at most N rows of each split (a split's packets reach it in order, so these are
//! the split's first N rows) and routes them to worker 0, which keeps the first N candidates by
//! input position and emits them, in that order, when its input is complete. Once some split has
//! given N rows, no row of a later split (or later in that split) can be among the first N: the
//! limit publishes that split's key (`Shared::limit_upto`), and sources whose rows all reach
//! satisfied limits stop reading there.

use super::{Cb, Ctx, Order, Packet, S};
use crate::batch::Batch;
use crate::runtime::physical::PhysNode;
use std::collections::{BTreeMap, HashMap};
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

fn rows_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

pub(super) fn limit_op<'s>(input: S<'s>, i: usize, node: &PhysNode, n: u64, ctx: &Ctx) -> S<'s> {
    if n == 0 {
        ctx.shared.limit_upto[i].store(0, Ordering::Relaxed);
    }
    let c2 = ctx.clone();
    // When some stage runs on other workers than its input (readers and processors,
    // `@parallel(n)`), a split's packets may reach a worker from several senders, out of
    // order: its first packets here are not the split's first rows, so nothing is cut here
    // (the final keeper orders by input position). Seeing N rows of a split still proves that
    // no later row is among the first N, so the split's key is published as before.
    let in_order = ctx.placed.iter().all(|w| w == &ctx.placed[i]);
    let local = input.unary::<Cb, _, _, _>(Pipeline, "limit (per split)", move |_cap, _info| {
        // Rows still wanted from each split (packets not from a source are not cut here).
        let mut left: HashMap<u64, u64> = HashMap::new();
        move |input, output| {
            input.for_each(|cap, data| {
                let mut session = output.session(&cap);
                for mut p in data.drain(..) {
                    if p.order == Order::NONE {
                        session.give(p);
                        continue;
                    }
                    let key = p.order.split_key();
                    let left = left.entry(key).or_insert(n);
                    if !in_order {
                        *left = left.saturating_sub(p.batch.rows as u64);
                        if *left == 0 {
                            c2.shared.limit_upto[i].fetch_min(key, Ordering::Relaxed);
                        }
                        session.give(p);
                        continue;
                    }
                    if *left == 0 {
                        c2.shared.nodes[i].add(p.batch.rows as u64, 0);
                        c2.pool.recycle(p.batch);
                        continue;
                    }
                    truncate(&mut p.batch, rows_of(*left));
                    *left -= p.batch.rows as u64;
                    if *left == 0 {
                        c2.shared.limit_upto[i].fetch_min(key, Ordering::Relaxed);
                    }
                    session.give(p);
                }
            });
        }
    });
    let ctx = ctx.clone();
    let keeper = ctx
        .placed
        .get(i)
        .and_then(|w| w.first())
        .copied()
        .unwrap_or(0) as u64;
    local.unary_frontier::<Cb, _, _, _>(
        Exchange::new(move |_p: &Packet| keeper),
        &node.name,
        move |cap, _info| {
            let mut cap = Some(cap);
            // The candidates by input position (ties, i.e. rows not in input order, in arrival
            // order), holding at most N rows plus the last packet's.
            let mut kept: BTreeMap<(Order, u64), Arc<Batch>> = BTreeMap::new();
            let mut rows = 0u64;
            let mut arrival = 0u64;
            move |(input, frontier), output| {
                input.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        let rows_in = p.batch.rows as u64;
                        ctx.shared.nodes[i].add(rows_in, 0);
                        if n == 0 || ctx.shared.aborted() {
                            ctx.pool.recycle(p.batch);
                            continue;
                        }
                        kept.insert((p.order, arrival), p.batch);
                        arrival += 1;
                        rows += rows_in;
                        // Drop the last candidates while the others already make N rows.
                        while let Some(last) = kept.last_entry() {
                            let r = last.get().rows as u64;
                            if rows - r < n {
                                break;
                            }
                            rows -= r;
                            ctx.pool.recycle(last.remove());
                        }
                    }
                });
                let Some(c) = cap.as_mut() else { return };
                let f = frontier.frontier();
                if f.is_empty() {
                    let mut left = n;
                    for ((order, _), mut b) in std::mem::take(&mut kept) {
                        if left == 0 || ctx.shared.aborted() {
                            ctx.pool.recycle(b);
                            continue;
                        }
                        truncate(&mut b, rows_of(left));
                        left -= b.rows as u64;
                        ctx.shared.nodes[i].add(0, b.rows as u64);
                        output.session(&*c).give(Packet {
                            route: 0,
                            order,
                            batch: b,
                        });
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
