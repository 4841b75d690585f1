//! The join operator: a hash join. The build side the planner chose (`JoinStrategy::build`:
//! the right side, or for an inner join the left one when it is estimated smaller) is built
//! into a hash table of its keys; the other (probe) side streams past it, its batches held only
//! until the build input is complete (its frontier is empty). A left join always builds its
//! right side, so that each left row, probed once, is null-extended when nothing matches.
//!
//! With several placed workers: when the build side is broadcast (`JoinStrategy::broadcast`)
//! every batch of it goes to every worker running the join, each of which builds the whole
//! table, and the probe side stays on the worker that produced it; otherwise both sides are
//! split by the owner of each row's key (`group::route` of the key's encoding), so equal keys
//! meet on one worker. A null key never matches: such build rows are dropped, such left rows of
//! a left join are kept (with null fields). The table and the held probe batches count against
//! the memory budget (`FLOW_MEMORY_BUDGET`); over it the job fails naming the join.
//!
//! Row order with one worker: the probe side's order, each probe row's matches in the build
//! side's order (so the left side's order unless an inner join builds its left side).

mod table;

use super::{Cb, Ctx, Packet, S};
use crate::batch::{BATCH_BYTES, Batch};
use crate::check::hir::JoinKey;
use crate::plan::ir::{JoinSide, JoinStrategy};
use crate::runtime::RunError;
use crate::runtime::group::route;
use crate::runtime::memhint;
use crate::runtime::physical::PhysNode;
use crate::types::{RowType, Scalar};
use std::sync::Arc;
use table::Table;
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

/// The keys of one batch's rows, encoded back to back, with their hashes ([`table::hash`]):
/// computed before the rows are probed or added, so that the table's memory for the rows ahead
/// can be prefetched.
#[derive(Default)]
struct BatchKeys {
    bytes: Vec<u8>,
    /// Per row: where its key is in `bytes` (start, length) and its hash; `None`: a null key.
    spans: Vec<Option<(usize, usize, u64)>>,
    scratch: Vec<u8>,
}

impl BatchKeys {
    fn encode(&mut self, b: &Batch, cols: &KeyCols) {
        self.bytes.clear();
        self.spans.clear();
        for r in 0..b.rows {
            let span = encode_key(b, r, cols, &mut self.scratch).then(|| {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(&self.scratch);
                (start, self.scratch.len(), table::hash(&self.scratch))
            });
            self.spans.push(span);
        }
    }

    /// Row `r`'s key and its hash (`None`: a null key, or past the batch).
    #[inline]
    fn get(&self, r: usize) -> Option<(&[u8], u64)> {
        let (start, len, h) = (*self.spans.get(r)?)?;
        Some((&self.bytes[start..start + len], h))
    }

    /// Row `r`'s hash (as for [`BatchKeys::get`]).
    #[inline]
    fn hash(&self, r: usize) -> Option<u64> {
        self.spans.get(r).copied().flatten().map(|s| s.2)
    }
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

/// An operator on one side before the join: for each packet (none once the job is aborted;
/// its rows counted as the join's rows in when `count` names the join), `f` gives the packets
/// to send on.
fn side_op<'s>(
    input: S<'s>,
    name: &str,
    count: Option<usize>,
    ctx: &Ctx,
    mut f: impl FnMut(&Packet, &mut Vec<Packet>) + 'static,
) -> S<'s> {
    let c2 = ctx.clone();
    input.unary::<Cb, _, _, _>(Pipeline, name, move |_cap, _info| {
        let mut out = Vec::new();
        move |input, output| {
            input.for_each(|cap, data| {
                let mut session = output.session(&cap);
                for p in data.drain(..) {
                    if !c2.shared.aborted() {
                        if let Some(i) = count {
                            c2.shared.nodes[i].add(p.batch.rows as u64, 0);
                        }
                        f(&p, &mut out);
                        for q in out.drain(..) {
                            session.give(q);
                        }
                    }
                    c2.pool.recycle(p.batch);
                }
            });
        }
    })
}

/// Splits each packet by the owner of each row's key. Rows with a null key go to the first
/// owner if `keep_null` (a left join keeps them), else are dropped. `count`: as for
/// [`side_op`] (the left side's rows are counted before any is dropped).
#[allow(clippy::too_many_arguments)]
fn route_side<'s>(
    input: S<'s>,
    name: &str,
    keys: KeyCols,
    types: Vec<Scalar>,
    owners: Arc<Vec<usize>>,
    keep_null: bool,
    count: Option<usize>,
    ctx: &Ctx,
) -> S<'s> {
    let pool = ctx.pool.clone();
    let peers = owners.len().max(1);
    let mut key = Vec::new();
    side_op(input, name, count, ctx, move |p, out| {
        let mut parts: Vec<Option<Batch>> = (0..peers).map(|_| None).collect();
        for r in 0..p.batch.rows {
            let w = if encode_key(&p.batch, r, &keys, &mut key) {
                route(&key, peers) as usize
            } else if keep_null {
                0
            } else {
                continue;
            };
            let part = parts[w].get_or_insert_with(|| pool.take(types.len()));
            let o = part.push_row();
            for (c, &s) in types.iter().enumerate() {
                copy_cell(&p.batch, r, c, s, part, o, c);
            }
        }
        for (w, part) in parts.into_iter().enumerate() {
            if let Some(b) = part {
                let dest = owners.get(w).copied().unwrap_or(0) as u64;
                out.push(Packet::new(dest, b));
            }
        }
    })
}

/// Sends every packet to every worker in `owners` (a broadcast build side); `count` as for
/// [`side_op`].
fn broadcast_side<'s>(
    input: S<'s>,
    name: &str,
    owners: Arc<Vec<usize>>,
    count: Option<usize>,
    ctx: &Ctx,
) -> S<'s> {
    side_op(input, name, count, ctx, move |p, out| {
        out.extend(owners.iter().map(|&w| Packet {
            route: w as u64,
            order: p.order,
            batch: p.batch.clone(),
        }));
    })
}

/// Where an output column comes from: the probe row (`true`, its column) or the stored build
/// row (`false`, its stored column); its type.
type OutCol = (bool, usize, Scalar);

/// How many rows ahead of a probe its index slot, its record and its first build row are
/// prefetched.
const AHEAD_SLOT: usize = 16;
const AHEAD_RECORD: usize = 8;
const AHEAD_ROW: usize = 4;

/// Where a packet goes at the join: to the worker its `route` names, to this worker, or to the
/// join's only worker.
#[derive(Clone, Copy)]
enum Dest {
    Routed,
    Here(u64),
    Only(u64),
}

impl Dest {
    fn of(self, p: &Packet) -> u64 {
        match self {
            Dest::Routed => p.route,
            Dest::Here(w) | Dest::Only(w) => w,
        }
    }
}

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
    strategy: JoinStrategy,
    ctx: &Ctx,
) -> S<'s> {
    let ltypes: Vec<Scalar> = node.input_row.fields.iter().map(|f| f.ty.scalar).collect();
    let rtypes: Vec<Scalar> = right_row.fields.iter().map(|f| f.ty.scalar).collect();
    let side_keys = |types: &[Scalar], col: fn(&JoinKey) -> usize| -> KeyCols {
        keys.iter()
            .map(|k| {
                (
                    col(k),
                    types.get(col(k)).copied().unwrap_or(Scalar::Null),
                    k.float,
                )
            })
            .collect()
    };
    let lkeys = side_keys(&ltypes, |k| k.left);
    let rkeys = side_keys(&rtypes, |k| k.right);
    let ftypes: Vec<(usize, Scalar)> = fields
        .iter()
        .map(|&f| (f, rtypes.get(f).copied().unwrap_or(Scalar::Null)))
        .collect();
    let nleft = ltypes.len();
    // A left join finds its unmatched left rows while they stream: it always builds the right.
    let build_left = strategy.build == JoinSide::Left && !outer;
    // The build rows keep what the output takes from them; each output column comes from the
    // probe row (`true`, its column) or the stored build row (`false`, its stored column).
    let (stored, outcols): (Vec<(usize, Scalar)>, Vec<OutCol>) = if build_left {
        let stored = ltypes.iter().copied().enumerate().collect();
        let out = (0..nleft)
            .map(|c| (false, c, ltypes[c]))
            .chain(ftypes.iter().map(|&(f, s)| (true, f, s)))
            .collect();
        (stored, out)
    } else {
        let out = (0..nleft)
            .map(|c| (true, c, ltypes[c]))
            .chain(ftypes.iter().enumerate().map(|(k, &(_, s))| (false, k, s)))
            .collect();
        (ftypes.clone(), out)
    };
    let (probe, build, pkeys, bkeys, ptypes, btypes) = if build_left {
        (right, left, rkeys, lkeys, rtypes, ltypes)
    } else {
        (left, right, lkeys, rkeys, ltypes, rtypes)
    };
    let owners = ctx.placed.get(i).cloned().unwrap_or_default();
    let partial = owners.len() > 1;
    let only = owners.first().copied().unwrap_or(0) as u64;
    let (probe, build, pdest, bdest) = if !partial {
        (probe, build, Dest::Only(only), Dest::Only(only))
    } else if strategy.broadcast {
        let build = broadcast_side(
            build,
            &format!("{} (broadcast build side)", node.name),
            owners.clone(),
            build_left.then_some(i),
            ctx,
        );
        (probe, build, Dest::Here(ctx.index as u64), Dest::Routed)
    } else {
        let probe = route_side(
            probe,
            &format!("{} (route probe side)", node.name),
            pkeys.clone(),
            ptypes.clone(),
            owners.clone(),
            outer,
            (!build_left).then_some(i),
            ctx,
        );
        let build = route_side(
            build,
            &format!("{} (route build side)", node.name),
            bkeys.clone(),
            btypes.clone(),
            owners.clone(),
            false,
            build_left.then_some(i),
            ctx,
        );
        (probe, build, Dest::Routed, Dest::Routed)
    };
    // The rows in of a join are its left rows, counted where they arrive unless an operator
    // before the join counted them (on the sending worker, before a broadcast copies them).
    let count_here = match (partial, strategy.broadcast) {
        (false, _) => true,
        (true, true) => !build_left,
        (true, false) => false,
    };
    let ctx = ctx.clone();
    let name = node.name.clone();
    let ncols = node.row.len();
    let batch_rows = ctx.job.plan.batch.max(1);
    probe.binary_frontier::<_, Cb, _, _, _, _>(
        build,
        Exchange::new(move |p: &Packet| pdest.of(p)),
        Exchange::new(move |p: &Packet| bdest.of(p)),
        &node.name,
        move |cap, _info| {
            let mut cap = Some(cap);
            // Key → the build rows (their stored columns, in `store`).
            let mut table = Table::default();
            let mut store = Batch::new(stored.len());
            let mut build_done = false;
            let mut held: Vec<Arc<Batch>> = Vec::new();
            let mut held_bytes = 0usize;
            let mut accounted = 0usize;
            let mut keys = BatchKeys::default();
            move |(pinput, pfrontier), (binput, bfrontier), output| {
                binput.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if ctx.shared.aborted() {
                            ctx.pool.recycle(p.batch);
                            continue;
                        }
                        let b = &p.batch;
                        if count_here && build_left {
                            ctx.shared.nodes[i].add(b.rows as u64, 0);
                        }
                        keys.encode(b, &bkeys);
                        let prefetch = table.large();
                        for r in 0..b.rows {
                            if prefetch && let Some(h) = keys.hash(r + AHEAD_SLOT) {
                                table.prefetch_slot(h);
                            }
                            // A null key matches nothing: the row is dropped.
                            let Some((key, h)) = keys.get(r) else {
                                continue;
                            };
                            if !table.add_hashed(key, h, store.rows) {
                                ctx.shared.fail(RunError::Stage {
                                    stage: name.clone(),
                                    reason: "more than 4 billion build rows".into(),
                                });
                                break;
                            }
                            let o = store.push_row();
                            for (oc, &(c, s)) in stored.iter().enumerate() {
                                copy_cell(b, r, c, s, &mut store, o, oc);
                            }
                        }
                        ctx.pool.recycle(p.batch);
                    }
                });
                pinput.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if ctx.shared.aborted() {
                            ctx.pool.recycle(p.batch);
                            continue;
                        }
                        if count_here && !build_left {
                            ctx.shared.nodes[i].add(p.batch.rows as u64, 0);
                        }
                        held_bytes += p.batch.bytes();
                        held.push(p.batch);
                    }
                });
                let now = table.bytes() + store.bytes() + held_bytes;
                if now != accounted
                    && let Err(e) = ctx.shared.account_join(&mut accounted, now, &name)
                {
                    ctx.shared.fail(e);
                }
                let Some(c) = cap.as_mut() else {
                    for b in held.drain(..) {
                        ctx.pool.recycle(b);
                    }
                    return;
                };
                if !build_done && bfrontier.frontier().is_empty() {
                    build_done = true;
                }
                if build_done && !held.is_empty() {
                    let mut out = ctx.pool.take(ncols);
                    for b in held.drain(..) {
                        held_bytes -= b.bytes();
                        if ctx.shared.aborted() {
                            ctx.pool.recycle(b);
                            continue;
                        }
                        // The batch's keys and hashes first, so that the probes of the rows
                        // ahead are prefetched: their index slot, then their record, then
                        // their first build row.
                        keys.encode(&b, &pkeys);
                        let prefetch = table.large();
                        for r in 0..b.rows {
                            if prefetch {
                                if let Some(h) = keys.hash(r + AHEAD_SLOT) {
                                    table.prefetch_slot(h);
                                }
                                if let Some(h) = keys.hash(r + AHEAD_RECORD) {
                                    table.prefetch_record(h);
                                }
                                if let Some(m) = keys
                                    .hash(r + AHEAD_ROW)
                                    .and_then(|h| table.first_row_hint(h))
                                {
                                    let w = store.words.as_ptr();
                                    memhint::prefetch(w.wrapping_add(m * store.layout.stride));
                                }
                            }
                            // A null key matches nothing.
                            let mut matches = keys
                                .get(r)
                                .map(|(key, h)| table.rows_hashed(key, h))
                                .into_iter()
                                .flatten()
                                .peekable();
                            let emit = |out: &mut Batch, m: Option<usize>| {
                                let o = out.push_row();
                                for (oc, &(from_probe, col, s)) in outcols.iter().enumerate() {
                                    if from_probe {
                                        copy_cell(&b, r, col, s, out, o, oc);
                                    } else if let Some(m) = m {
                                        copy_cell(&store, m, col, s, out, o, oc);
                                    }
                                }
                            };
                            let mut flush = |out: &mut Batch| {
                                if out.rows >= batch_rows || out.bytes() >= BATCH_BYTES {
                                    let full = std::mem::replace(out, ctx.pool.take(ncols));
                                    ctx.shared.nodes[i].add(0, full.rows as u64);
                                    output.session(&*c).give(Packet::new(0, full));
                                }
                            };
                            if matches.peek().is_none() {
                                if outer {
                                    emit(&mut out, None);
                                    flush(&mut out);
                                }
                            } else {
                                for m in matches {
                                    emit(&mut out, Some(m));
                                    flush(&mut out);
                                }
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
                let pf = pfrontier.frontier();
                let bf = bfrontier.frontier();
                if pf.is_empty() && bf.is_empty() {
                    table = Table::default();
                    store = Batch::new(0);
                    let _ = ctx.shared.account_join(&mut accounted, 0, &name);
                    cap = None;
                } else if let Some(t) = pf.iter().chain(bf.iter()).min()
                    && *t > *c.time()
                {
                    c.downgrade(t);
                }
            }
        },
    )
}
