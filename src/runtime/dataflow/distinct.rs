//! The distinct operator: the first row of each key, "first" by input position, so that the
//! same row is kept at any worker count.
//!
//! A row's rank is its input position (source, split, chunk, row: see [`Order`]); rows without
//! one (a `group`'s output) rank after positioned rows and among themselves by their values
//! (`sort::encode_position`). With several workers each packet is first split by the owner of
//! each row's key (`group::route` of the key's encoding), every part carrying the rows' indices
//! in the original packet as a hidden last column, so the owner computes the same ranks. The
//! owner keeps, per key, the row of the smallest rank, and emits its rows in rank order once its
//! input is complete (with one worker: the input order of the first occurrences). The table
//! counts against the memory budget of group state (`FLOW_MEMORY_BUDGET`).

use super::sort::{encode_position, encode_row, encode_value};
use super::{Cb, Ctx, Packet, S};
use crate::batch::{BATCH_BYTES, Batch};
use crate::runtime::RunError;
use crate::runtime::group::route;
use crate::runtime::physical::PhysNode;
use crate::types::Scalar;
use std::collections::HashMap;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Operator;

/// Copies the first `types.len()` columns of row `r` of `from` to a new row of `to`.
fn copy_row(from: &Batch, r: usize, types: &[Scalar], to: &mut Batch) -> usize {
    let o = to.push_row();
    for (c, &s) in types.iter().enumerate() {
        if from.is_null(r, c) {
            continue;
        }
        match s {
            Scalar::Str => to.set_str_bytes(o, c, from.get_str_bytes(r, c)),
            _ => to.set_int(o, c, from.raw(r, c) as i64),
        }
    }
    o
}

/// Per-entry bookkeeping bytes counted beside the key, rank and row bytes.
const ENTRY_OVERHEAD: usize = 96;

pub(super) fn distinct_op<'s>(
    input: S<'s>,
    i: usize,
    node: &PhysNode,
    keys: &[usize],
    ctx: &Ctx,
) -> S<'s> {
    let types: Vec<Scalar> = node.row.fields.iter().map(|f| f.ty.scalar).collect();
    let keys: Vec<(usize, Scalar)> = keys
        .iter()
        .map(|&k| (k, types.get(k).copied().unwrap_or(Scalar::Null)))
        .collect();
    // The workers that own the keys (all of them, or the stage's `@parallel(n)`).
    let owners = ctx.placed.get(i).cloned().unwrap_or_default();
    let peers = owners.len().max(1);
    let partial = peers > 1;
    let ncols = types.len();
    let routed = if partial {
        let c2 = ctx.clone();
        let keys = keys.clone();
        let types = types.clone();
        let owners = owners.clone();
        input.unary::<Cb, _, _, _>(Pipeline, "distinct (route)", move |_cap, _info| {
            let mut key = Vec::new();
            move |input, output| {
                input.for_each(|cap, data| {
                    let mut session = output.session(&cap);
                    for p in data.drain(..) {
                        if c2.shared.aborted() {
                            c2.pool.recycle(p.batch);
                            continue;
                        }
                        let mut parts: Vec<Option<Batch>> = (0..peers).map(|_| None).collect();
                        for r in 0..p.batch.rows {
                            key.clear();
                            for &(c, s) in &keys {
                                encode_value(&p.batch, r, c, s, false, &mut key);
                            }
                            let w = route(&key, peers) as usize;
                            let part = parts[w].get_or_insert_with(|| c2.pool.take(ncols + 1));
                            let o = copy_row(&p.batch, r, &types, part);
                            part.set_int(o, ncols, r as i64);
                        }
                        for (w, part) in parts.into_iter().enumerate() {
                            if let Some(b) = part {
                                let dest = owners.get(w).copied().unwrap_or(0) as u64;
                                let mut q = Packet::new(dest, b);
                                q.order = p.order;
                                session.give(q);
                            }
                        }
                        c2.pool.recycle(p.batch);
                    }
                });
            }
        })
    } else {
        input
    };
    let ctx = ctx.clone();
    let name = node.name.clone();
    let batch_rows = ctx.job.plan.batch;
    let scope = routed.scope();
    routed.unary_frontier::<Cb, _, _, _>(
        Exchange::new(|p: &Packet| p.route),
        &node.name,
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut cap = Some(cap);
            // Key → (rank, row).
            let mut table: HashMap<Vec<u8>, (Vec<u8>, Vec<u8>)> = HashMap::new();
            let mut bytes = 0usize;
            let mut held = 0usize;
            let mut out: Option<std::vec::IntoIter<(Vec<u8>, Vec<u8>)>> = None;
            let mut key = Vec::new();
            let mut rank = Vec::new();
            move |(input, frontier), output| {
                input.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if ctx.shared.aborted() {
                            ctx.pool.recycle(p.batch);
                            continue;
                        }
                        let b = &p.batch;
                        ctx.shared.nodes[i].add(b.rows as u64, 0);
                        for r in 0..b.rows {
                            key.clear();
                            for &(c, s) in &keys {
                                encode_value(b, r, c, s, false, &mut key);
                            }
                            let at = if partial {
                                usize::try_from(b.get_int(r, ncols)).unwrap_or(r)
                            } else {
                                r
                            };
                            rank.clear();
                            encode_position(b, r, p.order, &types, &mut rank);
                            // The position encodes the row index last (4 bytes) for positioned
                            // rows: use the index in the original packet.
                            if p.order != super::Order::NONE {
                                let n = rank.len();
                                rank[n - 4..].copy_from_slice(&(at as u32).to_be_bytes());
                            }
                            match table.get_mut(key.as_slice()) {
                                Some((old, row)) => {
                                    if rank < *old {
                                        bytes -= old.len() + row.len();
                                        old.clone_from(&rank);
                                        row.clear();
                                        encode_row(b, r, &types, row);
                                        bytes += old.len() + row.len();
                                    }
                                }
                                None => {
                                    let mut row = Vec::new();
                                    encode_row(b, r, &types, &mut row);
                                    bytes += key.len() + rank.len() + row.len() + ENTRY_OVERHEAD;
                                    table.insert(key.clone(), (rank.clone(), row));
                                }
                            }
                        }
                        if let Err(e) = ctx.shared.account_group(&mut held, bytes, &name) {
                            ctx.shared.fail(e);
                        }
                        ctx.pool.recycle(p.batch);
                    }
                });
                let Some(c) = cap.as_mut() else { return };
                if !super::sort::input_complete(c, frontier.frontier()) {
                    return;
                }
                let rows = out.get_or_insert_with(|| {
                    let mut v: Vec<(Vec<u8>, Vec<u8>)> = table.drain().map(|(_, e)| e).collect();
                    table.shrink_to_fit();
                    v.sort_unstable();
                    v.into_iter()
                });
                let mut given = 0;
                let mut done = false;
                while given < 4 && !ctx.shared.aborted() {
                    let mut b = ctx.pool.take(ncols);
                    while b.rows < batch_rows && b.bytes() < BATCH_BYTES {
                        let Some((_, row)) = rows.next() else {
                            done = true;
                            break;
                        };
                        if super::sort::decode_row(&row, &types, &mut b).is_none() {
                            ctx.shared.fail(RunError::Stage {
                                stage: name.clone(),
                                reason: "internal error: a kept row does not decode".into(),
                            });
                            done = true;
                            break;
                        }
                    }
                    if b.rows > 0 {
                        ctx.shared.nodes[i].add(0, b.rows as u64);
                        output.session(&*c).give(Packet::new(0, b));
                    } else {
                        ctx.pool.put(b);
                    }
                    given += 1;
                    if done {
                        break;
                    }
                }
                if done || ctx.shared.aborted() {
                    out = None;
                    let _ = ctx.shared.account_group(&mut held, 0, &name);
                    cap = None;
                } else {
                    activator.activate();
                }
            }
        },
    )
}
