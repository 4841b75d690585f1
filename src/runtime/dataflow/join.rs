//! The join operator: a hash join. The right (named) stream is built into a hash table of its
//! keys; the left stream is probed against it, its batches held until the right input is
//! complete (its frontier is empty). With several placed workers both sides are first split by
//! the owner of each row's key (`group::route` of the key's encoding), so equal keys meet on one
//! worker. A null key never matches: such right rows are dropped, such left rows are kept only
//! by a left join (with null fields). The table and the held left batches count against the
//! memory budget of group state (`FLOW_MEMORY_BUDGET`).

use super::{Cb, Ctx, Packet, S};
use crate::batch::{BATCH_BYTES, Batch};
use crate::check::hir::JoinKey;
use crate::runtime::group::route;
use crate::runtime::physical::PhysNode;
use crate::types::{RowType, Scalar};
use std::collections::HashMap;
use std::sync::Arc;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Operator;

/// One side's key columns: (column, its type, compared as float).
type KeyCols = Vec<(usize, Scalar, bool)>;

/// Encodes row `r`'s key; `false` if a key column is null (the row matches nothing).
fn encode_key(b: &Batch, r: usize, keys: &KeyCols, out: &mut Vec<u8>) -> bool {
    out.clear();
    for &(c, s, float) in keys {
        if b.is_null(r, c) {
            return false;
        }
        match s {
            Scalar::Str => {
                let v = b.get_str_bytes(r, c);
                out.extend_from_slice(&(v.len() as u64).to_le_bytes());
                out.extend_from_slice(v);
            }
            Scalar::Int if float => out.extend_from_slice(&canon(b.get_int(r, c) as f64)),
            Scalar::Float => out.extend_from_slice(&canon(b.get_float(r, c))),
            _ => out.extend_from_slice(&b.raw(r, c).to_le_bytes()),
        }
    }
    true
}

/// A float's bytes with `-0.0` as `0.0` and every NaN as one NaN (as `==` compares them).
fn canon(v: f64) -> [u8; 8] {
    let v = if v == 0.0 {
        0.0
    } else if v.is_nan() {
        f64::NAN
    } else {
        v
    };
    v.to_bits().to_le_bytes()
}

/// Copies column `c` of row `r` of `from` to column `oc` of row `o` of `to`.
fn copy_cell(from: &Batch, r: usize, c: usize, s: Scalar, to: &mut Batch, o: usize, oc: usize) {
    if from.is_null(r, c) {
        return;
    }
    match s {
        Scalar::Str => to.set_str_bytes(o, oc, from.get_str_bytes(r, c)),
        _ => to.set_int(o, oc, from.raw(r, c) as i64),
    }
}

/// Splits each packet by the owner of each row's key. Rows with a null key go to the first
/// owner if `keep_null` (a left join keeps them), else are dropped.
fn route_side<'s>(
    input: S<'s>,
    name: &str,
    keys: KeyCols,
    types: Vec<Scalar>,
    owners: Arc<Vec<usize>>,
    keep_null: bool,
    ctx: &Ctx,
) -> S<'s> {
    let c2 = ctx.clone();
    let peers = owners.len().max(1);
    input.unary::<Cb, _, _, _>(Pipeline, name, move |_cap, _info| {
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
                        let w = if encode_key(&p.batch, r, &keys, &mut key) {
                            route(&key, peers) as usize
                        } else if keep_null {
                            0
                        } else {
                            continue;
                        };
                        let part = parts[w].get_or_insert_with(|| c2.pool.take(types.len()));
                        let o = part.push_row();
                        for (c, &s) in types.iter().enumerate() {
                            copy_cell(&p.batch, r, c, s, part, o, c);
                        }
                    }
                    for (w, part) in parts.into_iter().enumerate() {
                        if let Some(b) = part {
                            let dest = owners.get(w).copied().unwrap_or(0) as u64;
                            session.give(Packet::new(dest, b));
                        }
                    }
                    c2.pool.recycle(p.batch);
                }
            });
        }
    })
}

/// Per-key bookkeeping bytes counted beside the key and the right rows.
const ENTRY_OVERHEAD: usize = 64;

#[allow(clippy::too_many_arguments)]
pub(super) fn join_op<'s>(
    left: S<'s>,
    right: S<'s>,
    i: usize,
    node: &PhysNode,
    right_row: &RowType,
    keys: &[JoinKey],
    fields: &[usize],
    outer: bool,
    ctx: &Ctx,
) -> S<'s> {
    let ltypes: Vec<Scalar> = node.input_row.fields.iter().map(|f| f.ty.scalar).collect();
    let rtypes: Vec<Scalar> = right_row.fields.iter().map(|f| f.ty.scalar).collect();
    let lkeys: KeyCols = keys
        .iter()
        .map(|k| {
            (
                k.left,
                ltypes.get(k.left).copied().unwrap_or(Scalar::Null),
                k.float,
            )
        })
        .collect();
    let rkeys: KeyCols = keys
        .iter()
        .map(|k| {
            (
                k.right,
                rtypes.get(k.right).copied().unwrap_or(Scalar::Null),
                k.float,
            )
        })
        .collect();
    let ftypes: Vec<(usize, Scalar)> = fields
        .iter()
        .map(|&f| (f, rtypes.get(f).copied().unwrap_or(Scalar::Null)))
        .collect();
    let owners = ctx.placed.get(i).cloned().unwrap_or_default();
    let partial = owners.len() > 1;
    let only = owners.first().copied().unwrap_or(0) as u64;
    let (left, right) = if partial {
        (
            route_side(
                left,
                &format!("{} (route left)", node.name),
                lkeys.clone(),
                ltypes.clone(),
                owners.clone(),
                outer,
                ctx,
            ),
            route_side(
                right,
                &format!("{} (route right)", node.name),
                rkeys.clone(),
                rtypes.clone(),
                owners.clone(),
                false,
                ctx,
            ),
        )
    } else {
        (left, right)
    };
    let ctx = ctx.clone();
    let name = node.name.clone();
    let ncols = node.row.len();
    let nleft = ltypes.len();
    let batch_rows = ctx.job.plan.batch.max(1);
    let pact = move |p: &Packet| if partial { p.route } else { only };
    left.binary_frontier::<_, Cb, _, _, _, _>(
        right,
        Exchange::new(pact),
        Exchange::new(pact),
        &node.name,
        move |cap, _info| {
            let mut cap = Some(cap);
            // Key → indices of the right rows (the brought fields, in `store`).
            let mut table: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
            let mut store = Batch::new(ftypes.len());
            let mut right_done = false;
            let mut held: Vec<Arc<Batch>> = Vec::new();
            let mut held_bytes = 0usize;
            let mut table_bytes = 0usize;
            let mut accounted = 0usize;
            let mut key = Vec::new();
            move |(linput, lfrontier), (rinput, rfrontier), output| {
                rinput.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if ctx.shared.aborted() {
                            ctx.pool.recycle(p.batch);
                            continue;
                        }
                        let b = &p.batch;
                        for r in 0..b.rows {
                            if !encode_key(b, r, &rkeys, &mut key) {
                                continue;
                            }
                            let o = store.push_row();
                            for (oc, &(c, s)) in ftypes.iter().enumerate() {
                                copy_cell(b, r, c, s, &mut store, o, oc);
                            }
                            match table.get_mut(key.as_slice()) {
                                Some(v) => v.push(o as u32),
                                None => {
                                    table_bytes += key.len() + ENTRY_OVERHEAD;
                                    table.insert(key.clone(), vec![o as u32]);
                                }
                            }
                            table_bytes += 4;
                        }
                        ctx.pool.recycle(p.batch);
                    }
                });
                linput.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if ctx.shared.aborted() {
                            ctx.pool.recycle(p.batch);
                            continue;
                        }
                        ctx.shared.nodes[i].add(p.batch.rows as u64, 0);
                        held_bytes += p.batch.bytes();
                        held.push(p.batch);
                    }
                });
                let now = table_bytes + store.bytes() + held_bytes;
                if now != accounted
                    && let Err(e) = ctx.shared.account_group(&mut accounted, now, &name)
                {
                    ctx.shared.fail(e);
                }
                let Some(c) = cap.as_mut() else {
                    for b in held.drain(..) {
                        ctx.pool.recycle(b);
                    }
                    return;
                };
                if !right_done && rfrontier.frontier().is_empty() {
                    right_done = true;
                }
                if right_done && !held.is_empty() {
                    let mut out = ctx.pool.take(ncols);
                    for b in held.drain(..) {
                        held_bytes -= b.bytes();
                        if ctx.shared.aborted() {
                            ctx.pool.recycle(b);
                            continue;
                        }
                        for r in 0..b.rows {
                            let matches = if encode_key(&b, r, &lkeys, &mut key) {
                                table.get(key.as_slice()).map(|v| v.as_slice())
                            } else {
                                None
                            };
                            let emit = |out: &mut Batch, m: Option<u32>| {
                                let o = out.push_row();
                                for (c, &s) in ltypes.iter().enumerate() {
                                    copy_cell(&b, r, c, s, out, o, c);
                                }
                                if let Some(m) = m {
                                    for (fc, &(_, s)) in ftypes.iter().enumerate() {
                                        copy_cell(&store, m as usize, fc, s, out, o, nleft + fc);
                                    }
                                }
                            };
                            match matches {
                                Some(ms) => {
                                    for &m in ms {
                                        emit(&mut out, Some(m));
                                        if out.rows >= batch_rows || out.bytes() >= BATCH_BYTES {
                                            let full =
                                                std::mem::replace(&mut out, ctx.pool.take(ncols));
                                            ctx.shared.nodes[i].add(0, full.rows as u64);
                                            output.session(&*c).give(Packet::new(0, full));
                                        }
                                    }
                                }
                                None if outer => emit(&mut out, None),
                                None => {}
                            }
                            if out.rows >= batch_rows || out.bytes() >= BATCH_BYTES {
                                let full = std::mem::replace(&mut out, ctx.pool.take(ncols));
                                ctx.shared.nodes[i].add(0, full.rows as u64);
                                output.session(&*c).give(Packet::new(0, full));
                            }
                        }
                        ctx.pool.recycle(b);
                    }
                    if out.rows > 0 {
                        ctx.shared.nodes[i].add(0, out.rows as u64);
                        output.session(&*c).give(Packet::new(0, out));
                    } else {
                        ctx.pool.put(out);
                    }
                }
                let lf = lfrontier.frontier();
                let rf = rfrontier.frontier();
                if lf.is_empty() && rf.is_empty() {
                    table = HashMap::new();
                    store = Batch::new(0);
                    table_bytes = 0;
                    let _ = ctx.shared.account_group(&mut accounted, 0, &name);
                    cap = None;
                } else if let Some(t) = lf.iter().chain(rf.iter()).min()
                    && *t > *c.time()
                {
                    c.downgrade(t);
                }
            }
        },
    )
}
