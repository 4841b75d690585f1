//! The sort operator: a total, stable order of the rows, in bounded memory, at any worker count.
//!
//! Every row becomes one record: an order-preserving byte key (the sort keys, then the row's
//! input position — so equal keys keep their input order —, then, for rows that have no input
//! position such as a `group`'s output, every column, so that even their order does not depend
//! on the worker count), and a payload from which the row is rebuilt. Records compare as bytes.
//!
//! All rows go to worker 0 (the workers before it read, filter and map in parallel). It keeps
//! records in memory up to the sort budget ([`crate::runtime::policy::sort_budget`]); beyond it
//! it sorts them and writes them as one run to a spill file — an unnamed temporary file
//! (`tempfile::tempfile`: it has no name in the file system, so it is gone on every exit path,
//! a `kill -9` included) — and, once its input is complete, merges the runs and what is left in
//! memory. `sort … | limit N` (the sort's only consumer a limit) keeps at most 2N records: it
//! cuts to the first N whenever it holds 2N.
//!
//! The order of values: see `hir::SortKey` (nulls last in either direction, NaN above every
//! number, `-0.0 == 0.0`, strings bytewise).

use super::{Cb, Ctx, Order, Packet, S};
use crate::batch::{BATCH_BYTES, Batch};
use crate::check::hir::SortKey;
use crate::runtime::RunError;
use crate::runtime::physical::PhysNode;
use crate::types::Scalar;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::{Capability, Operator};
use timely::progress::frontier::AntichainRef;

/// Appends the order-preserving encoding of column `col` of row `r`: a marker byte (present 1,
/// null 2: nulls last, and not inverted by `desc`), then the value's bytes, inverted for `desc`.
/// Encodings are prefix-free (strings are escaped and terminated), so byte order is value order
/// key by key.
pub(super) fn encode_value(
    b: &Batch,
    r: usize,
    col: usize,
    scalar: Scalar,
    desc: bool,
    out: &mut Vec<u8>,
) {
    if b.is_null(r, col) {
        out.push(2);
        return;
    }
    out.push(1);
    let start = out.len();
    match scalar {
        Scalar::Int | Scalar::Timestamp => {
            out.extend_from_slice(&((b.get_int(r, col) as u64) ^ (1 << 63)).to_be_bytes())
        }
        Scalar::Float => {
            let mut x = b.get_float(r, col);
            if x == 0.0 {
                x = 0.0; // -0.0 sorts (and compares) equal to 0.0
            }
            if x.is_nan() {
                x = f64::NAN; // one NaN, above +inf
            }
            let bits = x.to_bits();
            let k = if bits >> 63 == 1 {
                !bits
            } else {
                bits ^ (1 << 63)
            };
            out.extend_from_slice(&k.to_be_bytes());
        }
        Scalar::Bool => out.push(u8::from(b.get_bool(r, col))),
        Scalar::Str => {
            for &c in b.get_str_bytes(r, col) {
                if c == 0 {
                    out.extend_from_slice(&[0, 0xff]);
                } else {
                    out.push(c);
                }
            }
            out.extend_from_slice(&[0, 0]);
        }
        Scalar::Null => {}
    }
    if desc {
        for x in &mut out[start..] {
            *x = !*x;
        }
    }
}

/// Appends where row `r` of a packet at `order` is in the input (source, split, chunk, row),
/// big-endian so that bytes compare as positions. A row with no input position
/// ([`Order::NONE`]) sorts after every positioned one, and among such rows by all its values
/// (`types`), so that their order does not depend on how they reached the operator.
pub(super) fn encode_position(
    b: &Batch,
    r: usize,
    order: Order,
    types: &[Scalar],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&order.source.to_be_bytes());
    out.extend_from_slice(&order.split.to_be_bytes());
    out.extend_from_slice(&order.chunk.to_be_bytes());
    if order == Order::NONE {
        out.extend_from_slice(&u32::MAX.to_be_bytes());
        for (c, &s) in types.iter().enumerate() {
            encode_value(b, r, c, s, false, out);
        }
    } else {
        out.extend_from_slice(&(r as u32).to_be_bytes());
    }
}

/// Appends the first `types.len()` columns of row `r` (the batch may have more) in a compact
/// form [`decode_row`] reads back: the null bitmap words of a row of `types.len()` columns, then
/// each present value (8 bytes, or a 4-byte length and the bytes of a string).
pub(super) fn encode_row(b: &Batch, r: usize, types: &[Scalar], out: &mut Vec<u8>) {
    let base = r * b.layout.stride;
    for w in 0..crate::batch::Layout::new(types.len()).null_words {
        out.extend_from_slice(&b.words[base + w].to_le_bytes());
    }
    for (c, &s) in types.iter().enumerate() {
        if b.is_null(r, c) {
            continue;
        }
        if s == Scalar::Str {
            let bytes = b.get_str_bytes(r, c);
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        } else {
            out.extend_from_slice(&b.raw(r, c).to_le_bytes());
        }
    }
}

/// Appends the row encoded by [`encode_row`] to `out` (same column types). `None` if the bytes
/// are not such a row (a damaged spill file).
pub(super) fn decode_row(p: &[u8], types: &[Scalar], out: &mut Batch) -> Option<()> {
    let nw = out.layout.null_words;
    let (bitmap, mut rest) = p.split_at_checked(nw * 8)?;
    let null = |c: usize| {
        let w = u64::from_le_bytes(bitmap[(c / 64) * 8..(c / 64) * 8 + 8].try_into().ok()?);
        Some(w >> (c % 64) & 1 == 1)
    };
    let row = out.push_row();
    for (c, &s) in types.iter().enumerate() {
        if null(c)? {
            continue;
        }
        if s == Scalar::Str {
            let (len, tail) = rest.split_at_checked(4)?;
            let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
            let (bytes, tail) = tail.split_at_checked(len)?;
            // The bytes came from a str slot (UTF-8) of a batch of this job.
            out.set_str_bytes(row, c, bytes);
            rest = tail;
        } else {
            let (w, tail) = rest.split_at_checked(8)?;
            let w = u64::from_le_bytes(w.try_into().ok()?);
            match s {
                Scalar::Float => out.set_float(row, c, f64::from_bits(w)),
                Scalar::Bool => out.set_bool(row, c, w != 0),
                _ => out.set_int(row, c, w as i64),
            }
            rest = tail;
        }
    }
    Some(())
}

/// A record: `[key length u32][payload length u32][key][payload]`.
fn key_of(rec: &[u8]) -> &[u8] {
    let k = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]) as usize;
    &rec[8..8 + k]
}

fn payload_of(rec: &[u8]) -> &[u8] {
    let k = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]) as usize;
    &rec[8 + k..]
}

fn record_len(arena: &[u8], off: usize) -> usize {
    let k = u32::from_le_bytes([arena[off], arena[off + 1], arena[off + 2], arena[off + 3]]);
    let p = u32::from_le_bytes([
        arena[off + 4],
        arena[off + 5],
        arena[off + 6],
        arena[off + 7],
    ]);
    8 + k as usize + p as usize
}

/// Records in memory and sorted runs on disk: the state of one sort.
pub(super) struct Sorter {
    keys: Vec<(usize, Scalar, bool)>,
    types: Vec<Scalar>,
    arena: Vec<u8>,
    /// Offsets of the records in `arena`.
    index: Vec<usize>,
    budget: usize,
    limit: Option<usize>,
    spill: Option<File>,
    /// Byte ranges of the sorted runs in the spill file.
    runs: Vec<(u64, u64)>,
    spilled: u64,
}

impl Sorter {
    pub(super) fn new(
        keys: &[SortKey],
        types: Vec<Scalar>,
        budget: usize,
        limit: Option<u64>,
    ) -> Sorter {
        Sorter {
            keys: keys
                .iter()
                .map(|k| {
                    (
                        k.col,
                        types.get(k.col).copied().unwrap_or(Scalar::Null),
                        k.desc,
                    )
                })
                .collect(),
            types,
            arena: Vec::new(),
            index: Vec::new(),
            budget: budget.max(1),
            limit: limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            spill: None,
            runs: Vec::new(),
            spilled: 0,
        }
    }

    /// The bytes held in memory (the index by its allocation, which grows by doubling).
    fn bytes(&self) -> usize {
        self.arena.len() + self.index.capacity() * 8
    }

    /// How many runs were written to disk so far.
    #[cfg(test)]
    pub(super) fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    pub(super) fn push(&mut self, b: &Batch, order: Order) -> io::Result<()> {
        if self.arena.capacity() == 0 && b.rows > 0 {
            // Once, the whole budget (pages are only touched as they fill): a doubling vector
            // would overshoot the budget by up to its size.
            self.arena
                .reserve_exact(self.budget.min(1 << 30) + (64 << 10));
        }
        for r in 0..b.rows {
            let off = self.arena.len();
            self.arena.extend_from_slice(&[0; 8]);
            for &(c, s, desc) in &self.keys {
                encode_value(b, r, c, s, desc, &mut self.arena);
            }
            encode_position(b, r, order, &self.types, &mut self.arena);
            let klen = self.arena.len() - off - 8;
            encode_row(b, r, &self.types, &mut self.arena);
            let plen = self.arena.len() - off - 8 - klen;
            let (k, p) = (
                u32::try_from(klen).map_err(|_| io::Error::other("sort key too long"))?,
                u32::try_from(plen).map_err(|_| io::Error::other("row too long to sort"))?,
            );
            self.arena[off..off + 4].copy_from_slice(&k.to_le_bytes());
            self.arena[off + 4..off + 8].copy_from_slice(&p.to_le_bytes());
            self.index.push(off);
            if let Some(n) = self.limit
                && self.index.len() >= n.saturating_mul(2).max(1024)
            {
                self.sort_index();
                self.index.truncate(n);
                self.compact();
            }
            if self.bytes() > self.budget && self.index.len() > 1 {
                self.spill_run()?;
            }
        }
        Ok(())
    }

    fn sort_index(&mut self) {
        let arena = &self.arena;
        self.index
            .sort_unstable_by(|&a, &b| key_of(&arena[a..]).cmp(key_of(&arena[b..])));
    }

    /// Rewrites the arena with only the records of the index, in index order.
    fn compact(&mut self) {
        let mut arena = Vec::with_capacity(self.arena.len() / 2);
        for off in self.index.iter_mut() {
            let len = record_len(&self.arena, *off);
            let at = arena.len();
            arena.extend_from_slice(&self.arena[*off..*off + len]);
            *off = at;
        }
        self.arena = arena;
    }

    /// Sorts the records in memory and appends them to the spill file as one run.
    fn spill_run(&mut self) -> io::Result<()> {
        self.sort_index();
        if self.spill.is_none() {
            self.spill = Some(tempfile::tempfile()?);
        }
        let Some(file) = self.spill.as_ref() else {
            return Err(io::Error::other("no spill file"));
        };
        let start = self.spilled;
        let mut w = BufWriter::with_capacity(1 << 16, Offset { file, at: start });
        let mut n = 0usize;
        // Past the first N, no record of a run can be among the first N of the whole sort.
        for &off in self.index.iter().take(self.limit.unwrap_or(usize::MAX)) {
            let len = record_len(&self.arena, off);
            w.write_all(&self.arena[off..off + len])?;
            n += len;
        }
        w.flush()?;
        self.spilled = start + n as u64;
        self.runs.push((start, self.spilled));
        self.arena.clear();
        self.index.clear();
        Ok(())
    }

    /// Sorts what is in memory and returns the merge of all runs. If runs were spilled, the
    /// rest is spilled too, so that the merge holds only the runs' read buffers (half the budget
    /// together) instead of a full memory run beside them.
    pub(super) fn finish(mut self) -> io::Result<Merge> {
        if !self.runs.is_empty() && !self.index.is_empty() {
            self.spill_run()?;
            self.arena = Vec::new();
            self.index = Vec::new();
        }
        self.sort_index();
        if let Some(n) = self.limit {
            self.index.truncate(n);
        }
        let mut sources = Vec::new();
        let buf = (self.budget / 2 / (self.runs.len() + 1)).clamp(4 << 10, 1 << 20);
        if let Some(file) = self.spill.take() {
            let file = std::sync::Arc::new(file);
            for &(start, end) in &self.runs {
                sources.push(Run::File(FileRun {
                    file: file.clone(),
                    at: start,
                    end,
                    buf: Vec::with_capacity(buf),
                    pos: 0,
                    cap: buf,
                }));
            }
        }
        sources.push(Run::Mem {
            arena: std::mem::take(&mut self.arena),
            index: std::mem::take(&mut self.index),
            at: 0,
        });
        Ok(Merge {
            runs: sources,
            heap: BinaryHeap::new(),
            started: false,
            left: self.limit.unwrap_or(usize::MAX),
            types: self.types,
        })
    }
}

/// Writes at an advancing offset of a shared file (`pwrite`: no shared seek position).
struct Offset<'f> {
    file: &'f File,
    at: u64,
}

impl Write for Offset<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(buf, self.at)?;
        self.at += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct FileRun {
    file: std::sync::Arc<File>,
    at: u64,
    end: u64,
    buf: Vec<u8>,
    pos: usize,
    cap: usize,
}

impl FileRun {
    /// Makes at least `n` bytes available at `pos` (fewer only at the run's end).
    fn fill(&mut self, n: usize) -> io::Result<()> {
        if self.buf.len() - self.pos >= n {
            return Ok(());
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
        let want = (self.cap.max(n) - self.buf.len()) as u64;
        let take = want.min(self.end - self.at) as usize;
        let old = self.buf.len();
        self.buf.resize(old + take, 0);
        self.file.read_exact_at(&mut self.buf[old..], self.at)?;
        self.at += take as u64;
        Ok(())
    }

    fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.fill(8)?;
        if self.buf.len() - self.pos < 8 {
            return Ok(None);
        }
        let len = record_len(&self.buf, self.pos);
        self.fill(len)?;
        let rec = self
            .buf
            .get(self.pos..self.pos + len)
            .ok_or_else(|| io::Error::other("a spill file ends inside a record"))?
            .to_vec();
        self.pos += len;
        Ok(Some(rec))
    }
}

enum Run {
    File(FileRun),
    Mem {
        arena: Vec<u8>,
        index: Vec<usize>,
        at: usize,
    },
}

impl Run {
    fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self {
            Run::File(f) => f.next(),
            Run::Mem { arena, index, at } => {
                let Some(&off) = index.get(*at) else {
                    arena.clear();
                    arena.shrink_to_fit();
                    return Ok(None);
                };
                *at += 1;
                let len = record_len(arena, off);
                Ok(Some(arena[off..off + len].to_vec()))
            }
        }
    }
}

/// The head record of one run, ordered by key (then run, for a total order).
struct Head {
    rec: Vec<u8>,
    run: usize,
}

impl PartialEq for Head {
    fn eq(&self, o: &Head) -> bool {
        self.cmp(o) == std::cmp::Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Head) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head {
    fn cmp(&self, o: &Head) -> std::cmp::Ordering {
        key_of(&self.rec)
            .cmp(key_of(&o.rec))
            .then(self.run.cmp(&o.run))
    }
}

/// Appends one record (as the runs hold them: key length, payload length, key, payload).
pub(super) fn write_record(w: &mut impl Write, key: &[u8], payload: &[u8]) -> io::Result<usize> {
    let (k, p) = (
        u32::try_from(key.len()).map_err(|_| io::Error::other("key too long to spill"))?,
        u32::try_from(payload.len()).map_err(|_| io::Error::other("row too long to spill"))?,
    );
    w.write_all(&k.to_le_bytes())?;
    w.write_all(&p.to_le_bytes())?;
    w.write_all(key)?;
    w.write_all(payload)?;
    Ok(8 + key.len() + payload.len())
}

/// The k-way merge of the sorted runs.
pub(super) struct Merge {
    runs: Vec<Run>,
    heap: BinaryHeap<Reverse<Head>>,
    started: bool,
    left: usize,
    types: Vec<Scalar>,
}

impl Merge {
    /// The merge of sorted runs (byte ranges of `file` written by [`write_record`], each run
    /// in key order, payloads as `encode_row` writes rows of `types`), reading each through a
    /// buffer of about `budget / 2` split between them.
    pub(super) fn of_file_runs(
        file: File,
        runs: &[(u64, u64)],
        budget: usize,
        types: Vec<Scalar>,
    ) -> Merge {
        let buf = (budget / 2 / (runs.len() + 1)).clamp(4 << 10, 1 << 20);
        let file = std::sync::Arc::new(file);
        Merge {
            runs: runs
                .iter()
                .map(|&(at, end)| {
                    Run::File(FileRun {
                        file: file.clone(),
                        at,
                        end,
                        buf: Vec::with_capacity(buf),
                        pos: 0,
                        cap: buf,
                    })
                })
                .collect(),
            heap: BinaryHeap::new(),
            started: false,
            left: usize::MAX,
            types,
        }
    }

    /// Appends up to `rows` rows (or `bytes` of them) to `out`; `false` once all are given.
    pub(super) fn fill(&mut self, out: &mut Batch, rows: usize, bytes: usize) -> io::Result<bool> {
        if !self.started {
            self.started = true;
            for (i, r) in self.runs.iter_mut().enumerate() {
                if let Some(rec) = r.next()? {
                    self.heap.push(Reverse(Head { rec, run: i }));
                }
            }
        }
        while out.rows < rows && out.bytes() < bytes {
            if self.left == 0 {
                return Ok(false);
            }
            let Some(Reverse(head)) = self.heap.pop() else {
                return Ok(false);
            };
            decode_row(payload_of(&head.rec), &self.types, out)
                .ok_or_else(|| io::Error::other("a spill file holds a damaged record"))?;
            self.left -= 1;
            if let Some(run) = self.runs.get_mut(head.run)
                && let Some(rec) = run.next()?
            {
                self.heap.push(Reverse(Head { rec, run: head.run }));
            }
        }
        Ok(self.left > 0 && !self.heap.is_empty())
    }
}

/// For a blocking operator holding capability `c`: `true` once its input is complete; until
/// then it follows the input frontier down (so that later epochs are not held up).
pub(super) fn input_complete(c: &mut Capability<u64>, frontier: AntichainRef<'_, u64>) -> bool {
    if frontier.is_empty() {
        return true;
    }
    if let Some(t) = frontier.iter().min()
        && *t > *c.time()
    {
        c.downgrade(t);
    }
    false
}

pub(super) fn sort_op<'s>(
    input: S<'s>,
    i: usize,
    node: &PhysNode,
    keys: &[SortKey],
    limit: Option<u64>,
    ctx: &Ctx,
) -> S<'s> {
    let ctx = ctx.clone();
    let name = node.name.clone();
    let types: Vec<Scalar> = node.row.fields.iter().map(|f| f.ty.scalar).collect();
    let out_cols = node.row.len();
    let batch_rows = ctx.job.plan.batch;
    let keys = keys.to_vec();
    let budget = ctx.shared.sort_budget;
    let scope = input.scope();
    // Every row goes to the sort's first worker (worker 0 unless placed elsewhere), which alone
    // sorts and emits.
    let dest = ctx
        .placed
        .get(i)
        .and_then(|w| w.first())
        .copied()
        .unwrap_or(0) as u64;
    input.unary_frontier::<Cb, _, _, _>(
        Exchange::new(move |_p: &Packet| dest),
        &node.name,
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut cap = Some(cap);
            let mut sorter = Some(Sorter::new(&keys, types, budget, limit));
            let mut merge: Option<Merge> = None;
            let fail = move |ctx: &Ctx, e: io::Error| {
                ctx.shared.fail(RunError::Stage {
                    stage: name.clone(),
                    reason: format!("cannot spill sorted rows to a temporary file: {e}"),
                })
            };
            move |(input, frontier), output| {
                input.for_each(|_cap, data| {
                    for p in data.drain(..) {
                        if !ctx.shared.aborted() {
                            ctx.shared.nodes[i].add(p.batch.rows as u64, 0);
                            if let Some(s) = sorter.as_mut()
                                && let Err(e) = s.push(&p.batch, p.order)
                            {
                                fail(&ctx, e);
                            }
                        }
                        // Not recycled: batches from every worker end here, and worker 0's pool
                        // would keep up to 64 of them (tens of MB) beside the sort's budget.
                        drop(p.batch);
                    }
                });
                let Some(c) = cap.as_mut() else { return };
                if !input_complete(c, frontier.frontier()) {
                    return;
                }
                if merge.is_none()
                    && let Some(s) = sorter.take()
                {
                    match s.finish() {
                        Ok(m) => merge = Some(m),
                        Err(e) => fail(&ctx, e),
                    }
                }
                let mut more = false;
                if let Some(m) = merge.as_mut() {
                    // A few batches per activation, so that downstream operators consume them
                    // before the next ones are made.
                    for _ in 0..4 {
                        if ctx.shared.aborted() {
                            more = false;
                            break;
                        }
                        let mut b = ctx.pool.take(out_cols);
                        let r = m.fill(&mut b, batch_rows, BATCH_BYTES);
                        if b.rows > 0 {
                            ctx.shared.nodes[i].add(0, b.rows as u64);
                            output.session(&*c).give(Packet::new(0, b));
                        } else {
                            ctx.pool.put(b);
                        }
                        match r {
                            Ok(m) => more = m,
                            Err(e) => {
                                fail(&ctx, e);
                                more = false;
                            }
                        }
                        if !more {
                            break;
                        }
                    }
                }
                if more {
                    activator.activate();
                } else {
                    merge = None;
                    cap = None;
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Value;

    fn batch(rows: &[(Option<f64>, &str)]) -> Batch {
        let mut b = Batch::new(2);
        for (x, s) in rows {
            let r = b.push_row();
            if let Some(x) = x {
                b.set_float(r, 0, *x);
            }
            b.set_str(r, 1, s);
        }
        b
    }

    fn sorted(
        keys: &[SortKey],
        budget: usize,
        limit: Option<u64>,
        input: &Batch,
    ) -> (Vec<Vec<Value>>, usize) {
        let types = vec![Scalar::Float, Scalar::Str];
        let mut s = Sorter::new(keys, types.clone(), budget, limit);
        // One row per packet, so that positions are (0, 0, chunk, 0).
        for r in 0..input.rows {
            let mut one = Batch::new(2);
            let o = one.push_row();
            for (c, &t) in types.iter().enumerate() {
                one.set_value(o, c, &input.get_value(r, c, t));
            }
            let order = Order {
                source: 0,
                split: 0,
                chunk: r as u64,
            };
            s.push(&one, order).unwrap();
        }
        let runs = s.spilled_runs();
        let mut m = s.finish().unwrap();
        let mut values = Vec::new();
        let row = crate::types::RowType::new(vec![
            crate::types::Field {
                name: "x".into(),
                ty: crate::types::Type {
                    scalar: Scalar::Float,
                    nullable: true,
                },
            },
            crate::types::Field {
                name: "s".into(),
                ty: crate::types::Type::new(Scalar::Str),
            },
        ]);
        // Batches of at most 3 rows, as the operator asks for its batch size.
        loop {
            let mut out = Batch::new(2);
            let more = m.fill(&mut out, 3, BATCH_BYTES).unwrap();
            assert!(out.rows <= 3);
            values.extend(out.to_values(&row));
            if !more {
                break;
            }
        }
        (values, runs)
    }

    #[test]
    fn total_stable_order_in_memory_and_spilled() {
        let input = batch(&[
            (Some(1.0), "b"),
            (None, "n"),
            (Some(f64::NAN), "nan"),
            (Some(-0.0), "negzero"),
            (Some(0.0), "zero"),
            (Some(f64::NEG_INFINITY), "-inf"),
            (Some(1.0), "a"),
            (Some(-2.5), "c"),
        ]);
        let asc = [SortKey {
            col: 0,
            desc: false,
        }];
        let (mem, runs) = sorted(&asc, 1 << 20, None, &input);
        assert_eq!(runs, 0);
        let names: Vec<String> = mem.iter().map(|r| format!("{:?}", r[1])).collect();
        assert_eq!(
            names.join(" "),
            r#"Str("-inf") Str("c") Str("negzero") Str("zero") Str("b") Str("a") Str("nan") Str("n")"#
        );
        let (spilled, runs) = sorted(&asc, 64, None, &input);
        assert!(runs >= 3, "{runs} runs");
        assert_eq!(format!("{spilled:?}"), format!("{mem:?}"));
        let desc = [SortKey { col: 0, desc: true }];
        let (d, _) = sorted(&desc, 64, None, &input);
        let names: Vec<String> = d.iter().map(|r| format!("{:?}", r[1])).collect();
        assert_eq!(
            names.join(" "),
            r#"Str("nan") Str("b") Str("a") Str("negzero") Str("zero") Str("c") Str("-inf") Str("n")"#
        );
        let (top, _) = sorted(&desc, 1 << 20, Some(2), &input);
        assert_eq!(top.len(), 2);
        let by_str = [SortKey { col: 1, desc: true }];
        let (s, _) = sorted(&by_str, 100, None, &input);
        assert_eq!(format!("{:?}", s[0][1]), r#"Str("zero")"#);
    }
}
