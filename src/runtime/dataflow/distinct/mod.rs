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
//!
//! Past the spill budget (`FLOW_SORT_BUDGET`, the one of `sort`: [`crate::runtime::policy::
//! sort_budget`]) the owner writes its whole table to [`PARTS`] partition files by a hash of the
//! key and starts again empty; the files are unnamed temporary files (`tempfile::tempfile`, in
//! `TMPDIR`), gone on every exit path, as a sort's. Once its input is complete it reads back one
//! partition at a time (every occurrence of a key is in the same one), keeps per key the row of
//! the smallest rank, writes the survivors sorted by rank as one run and merges the runs
//! (`sort::Merge`): the same rows, in the same order, as without spilling.
//!
//! The table is [`table::Table`]: one arena of (key, rank, row) records and an index, no
//! allocation per key.

mod table;

use super::sort::{Merge, encode_position, encode_row, encode_value, write_record};
use super::{Cb, Ctx, Packet, S};
use crate::batch::{BATCH_BYTES, Batch};
use crate::runtime::RunError;
use crate::runtime::group::{hash_key, route};
use crate::runtime::physical::PhysNode;
use crate::types::Scalar;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use table::Table;
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

/// Partition files of a distinct past its spill budget.
const PARTS: usize = 16;

/// The partition files of one distinct owner (see the module doc).
struct Spill {
    parts: Vec<Option<BufWriter<File>>>,
}

impl Spill {
    fn new() -> Spill {
        Spill {
            parts: (0..PARTS).map(|_| None).collect(),
        }
    }

    /// Appends every entry of `table` to its partition and empties the table.
    fn spill(&mut self, table: &mut Table) -> io::Result<()> {
        for (key, rank, row) in table.entries() {
            // The low bits (the routing between workers uses the high ones).
            let p = hash_key(key) as usize % PARTS;
            let w = match &mut self.parts[p] {
                Some(w) => w,
                slot => slot.insert(BufWriter::with_capacity(64 << 10, tempfile::tempfile()?)),
            };
            for part in [key, rank, row] {
                w.write_all(&(part.len() as u32).to_le_bytes())?;
                w.write_all(part)?;
            }
        }
        table.release();
        for w in self.parts.iter_mut().flatten() {
            w.flush()?;
        }
        Ok(())
    }

    /// Reduces each partition to the first row of each of its keys, writes them in rank order
    /// as one run, and returns the merge of the runs. `account(bytes)` is told the bytes of the
    /// partition being reduced (the memory budget may stop it).
    fn finish(
        self,
        types: Vec<Scalar>,
        budget: usize,
        account: &mut dyn FnMut(usize) -> Result<(), RunError>,
    ) -> Result<Merge, SpillError> {
        let mut out = BufWriter::with_capacity(64 << 10, tempfile::tempfile()?);
        let mut runs = Vec::new();
        let mut at = 0u64;
        for w in self.parts.into_iter().flatten() {
            let mut f = w.into_inner().map_err(|e| e.into_error())?;
            f.rewind()?;
            let mut r = BufReader::with_capacity(64 << 10, f);
            let mut table = Table::default();
            let mut fields: [Vec<u8>; 3] = Default::default();
            'records: loop {
                for (i, field) in fields.iter_mut().enumerate() {
                    let mut len = [0u8; 4];
                    match r.read_exact(&mut len) {
                        Err(e) if i == 0 && e.kind() == io::ErrorKind::UnexpectedEof => {
                            break 'records;
                        }
                        other => other?,
                    }
                    field.resize(u32::from_le_bytes(len) as usize, 0);
                    r.read_exact(field)?;
                }
                let [key, rank, row] = &fields;
                table.keep(key, rank, |o| o.extend_from_slice(row));
                account(table.bytes())?;
            }
            let start = at;
            for e in table.by_rank() {
                let (_, rank, row) = table.entry(e);
                at += write_record(&mut out, rank, row)? as u64;
            }
            runs.push((start, at));
        }
        account(0)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        Ok(Merge::of_file_runs(file, &runs, budget, types))
    }
}

/// Why finishing a spilled distinct failed.
enum SpillError {
    Io(io::Error),
    Run(RunError),
}

impl From<io::Error> for SpillError {
    fn from(e: io::Error) -> SpillError {
        SpillError::Io(e)
    }
}

impl From<RunError> for SpillError {
    fn from(e: RunError) -> SpillError {
        SpillError::Run(e)
    }
}

/// The kept rows on their way out: from memory (the table and its records' offsets in rank
/// order, the next one first), or merged from the spilled runs.
enum Out {
    Mem(Table, std::vec::IntoIter<usize>),
    Merged(Merge),
}

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
            let mut table = Table::default();
            let mut held = 0usize;
            let mut spill: Option<Spill> = None;
            let mut out: Option<Out> = None;
            let spill_budget = ctx.shared.sort_budget;
            let fail = {
                let name = name.clone();
                move |ctx: &super::Ctx, e: io::Error| {
                    ctx.shared.fail(RunError::Stage {
                        stage: name.clone(),
                        reason: format!("cannot spill distinct rows to a temporary file: {e}"),
                    })
                }
            };
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
                            table.keep(&key, &rank, |o| encode_row(b, r, &types, o));
                        }
                        if table.bytes() > spill_budget
                            && table.len() > 1
                            && let Err(e) = spill.get_or_insert_with(Spill::new).spill(&mut table)
                        {
                            fail(&ctx, e);
                        }
                        if let Err(e) = ctx.shared.account_group(&mut held, table.bytes(), &name) {
                            ctx.shared.fail(e);
                        }
                        ctx.pool.recycle(p.batch);
                    }
                });
                let Some(c) = cap.as_mut() else { return };
                if !super::sort::input_complete(c, frontier.frontier()) {
                    return;
                }
                if out.is_none() && !ctx.shared.aborted() {
                    out = match spill.take() {
                        None => {
                            let order = table.by_rank();
                            Some(Out::Mem(std::mem::take(&mut table), order.into_iter()))
                        }
                        Some(mut sp) => {
                            let r = sp.spill(&mut table).map_err(SpillError::Io).and_then(|()| {
                                let _ = ctx.shared.account_group(&mut held, 0, &name);
                                sp.finish(types.clone(), spill_budget, &mut |n| {
                                    ctx.shared.account_group(&mut held, n, &name)
                                })
                            });
                            match r {
                                Ok(m) => Some(Out::Merged(m)),
                                Err(SpillError::Io(e)) => {
                                    fail(&ctx, e);
                                    None
                                }
                                Err(SpillError::Run(e)) => {
                                    ctx.shared.fail(e);
                                    None
                                }
                            }
                        }
                    };
                }
                let mut given = 0;
                let mut done = false;
                while given < 4 && !ctx.shared.aborted() {
                    let Some(rows) = out.as_mut() else {
                        done = true;
                        break;
                    };
                    let mut b = ctx.pool.take(ncols);
                    match rows {
                        Out::Mem(kept, rows) => {
                            while b.rows < batch_rows && b.bytes() < BATCH_BYTES {
                                let Some(e) = rows.next() else {
                                    done = true;
                                    break;
                                };
                                let (_, _, row) = kept.entry(e);
                                if super::sort::decode_row(row, &types, &mut b).is_none() {
                                    ctx.shared.fail(RunError::Stage {
                                        stage: name.clone(),
                                        reason: "internal error: a kept row does not decode".into(),
                                    });
                                    done = true;
                                    break;
                                }
                            }
                        }
                        Out::Merged(m) => match m.fill(&mut b, batch_rows, BATCH_BYTES) {
                            Ok(more) => done = !more,
                            Err(e) => {
                                fail(&ctx, e);
                                done = true;
                            }
                        },
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
