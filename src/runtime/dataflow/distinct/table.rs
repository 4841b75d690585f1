//! The table of a distinct owner: per key, the row of the smallest rank seen so far, in one
//! byte arena, with no allocation per key.
//!
//! Each entry is a record `[key len, rank len, row len: u32 each][key][rank][row]`, appended to
//! the arena; an open-addressing index of words finds a key: `(tag << 48) | (offset + 1)`, the
//! tag the key hash's top 16 bits. A row of smaller rank for a kept key is written over the
//! record if its rank and row fit where the old ones were, else appended (the index then points
//! at the new record, the old one is garbage). Once garbage outweighs the live records (and
//! [`COMPACT_MIN`]), the live records are moved down in place, in offset order.
//!
//! The index takes the key hash's bits from 4 up: the spill partitions use the low 4 bits (so
//! all keys of a partition share them), the routing between workers the high 32.
//!
//! Invariant: every key is in the index at most once, and its slot points at its live record.

use crate::runtime::group::hash_key;
use crate::runtime::memhint::Words;
use crate::runtime::tagged;

const HEADER: usize = 12;
/// Garbage below this is never compacted.
const COMPACT_MIN: usize = 64 << 10;
/// Bits of the hash below those the index uses.
const LOW_BITS: u32 = 4;

#[derive(Default)]
pub(super) struct Table {
    index: Words,
    arena: Words,
    used: usize,
    /// Bytes of the live records.
    live: usize,
    keys: usize,
    /// A new row's encoding, before it is copied into the arena.
    scratch: Vec<u8>,
}

#[inline(always)]
fn read_u32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// The key, rank and row of the record at `at`.
#[inline(always)]
fn parts(b: &[u8], at: usize) -> (&[u8], &[u8], &[u8]) {
    let (k, r, w) = (read_u32(b, at), read_u32(b, at + 4), read_u32(b, at + 8));
    let s = at + HEADER;
    (
        &b[s..s + k],
        &b[s + k..s + k + r],
        &b[s + k + r..s + k + r + w],
    )
}

fn record_len(b: &[u8], at: usize) -> usize {
    HEADER + read_u32(b, at) + read_u32(b, at + 4) + read_u32(b, at + 8)
}

impl Table {
    /// Keys kept.
    pub(super) fn len(&self) -> usize {
        self.keys
    }

    /// The bytes held.
    pub(super) fn bytes(&self) -> usize {
        self.index.bytes() + self.arena.bytes() + self.scratch.capacity()
    }

    /// Keeps `(rank, row)` for `key` if it ranks before the row kept (or is the first); `row`
    /// writes the row's encoding (called only then).
    pub(super) fn keep(&mut self, key: &[u8], rank: &[u8], row: impl FnOnce(&mut Vec<u8>)) {
        if (self.keys + 1) * 4 > self.index.len() * 3 {
            self.grow_index();
        }
        let h = hash_key(key);
        let found = {
            let b = self.arena.as_bytes();
            tagged::find(&self.index, h, (h >> LOW_BITS) as usize, |at| {
                parts(b, at).0 == key
            })
        };
        let i = match found {
            Err(i) => i,
            Ok((i, at)) => {
                let (k, old, kept) = parts(self.arena.as_bytes(), at);
                if rank >= old {
                    return;
                }
                let (klen, room) = (k.len(), old.len() + kept.len());
                self.scratch.clear();
                row(&mut self.scratch);
                let w = self.scratch.len();
                if rank.len() + w <= room {
                    // Over the old rank and row.
                    self.live -= room - rank.len() - w;
                    let b = self.arena.as_bytes_mut();
                    b[at + 4..at + 8].copy_from_slice(&(rank.len() as u32).to_le_bytes());
                    b[at + 8..at + 12].copy_from_slice(&(w as u32).to_le_bytes());
                    let s = at + HEADER + klen;
                    b[s..s + rank.len()].copy_from_slice(rank);
                    b[s + rank.len()..s + rank.len() + w].copy_from_slice(&self.scratch);
                } else {
                    self.live -= HEADER + klen + room;
                    let new = self.append(key, rank);
                    self.index[i] = tagged::slot(h, new);
                    if self.garbage_heavy() {
                        self.compact();
                    }
                }
                return;
            }
        };
        self.scratch.clear();
        row(&mut self.scratch);
        let at = self.append(key, rank);
        self.index[i] = tagged::slot(h, at);
        self.keys += 1;
    }

    /// Appends a record of `key`, `rank` and the row in `scratch`; returns its offset.
    fn append(&mut self, key: &[u8], rank: &[u8]) -> usize {
        let at = self.used;
        let n = HEADER + key.len() + rank.len() + self.scratch.len();
        let end = at + n;
        // Offsets below 2^48 - 1: no memory budget comes near (the allocation fails first).
        tagged::reach(&mut self.arena, end);
        let b = &mut self.arena.as_bytes_mut()[at..end];
        for (i, len) in [key.len(), rank.len(), self.scratch.len()]
            .into_iter()
            .enumerate()
        {
            b[4 * i..4 * i + 4].copy_from_slice(&(len as u32).to_le_bytes());
        }
        let (k, r) = (HEADER + key.len(), HEADER + key.len() + rank.len());
        b[HEADER..k].copy_from_slice(key);
        b[k..r].copy_from_slice(rank);
        b[r..].copy_from_slice(&self.scratch);
        self.used = end;
        self.live += n;
        at
    }

    fn garbage_heavy(&self) -> bool {
        let garbage = self.used - self.live;
        garbage > COMPACT_MIN && garbage > self.live
    }

    /// Moves the live records down over the garbage, in offset order, and points the index at
    /// their new places.
    #[cold]
    #[inline(never)]
    fn compact(&mut self) {
        let mut slots: Vec<(usize, usize)> = (0..self.index.len())
            .filter(|&i| self.index[i] != 0)
            .map(|i| (tagged::offset(self.index[i]), i))
            .collect();
        slots.sort_unstable();
        let mut to = 0;
        for (at, i) in slots {
            let b = self.arena.as_bytes_mut();
            let n = record_len(b, at);
            b.copy_within(at..at + n, to);
            self.index[i] = tagged::moved(self.index[i], to);
            to += n;
        }
        self.used = to;
        self.live = to;
    }

    /// Doubles the index (at least 16 slots), re-reading the live records' keys.
    #[cold]
    #[inline(never)]
    fn grow_index(&mut self) {
        let b = self.arena.as_bytes();
        self.index = tagged::doubled(&self.index, |s| {
            let (key, _, _) = parts(b, tagged::offset(s));
            (hash_key(key) >> LOW_BITS) as usize
        });
    }

    /// The offsets of the live records, in rank order (then by row, for equal ranks).
    pub(super) fn by_rank(&self) -> Vec<usize> {
        let b = self.arena.as_bytes();
        let mut v: Vec<usize> = self
            .index
            .iter()
            .filter(|&&s| s != 0)
            .map(|&s| tagged::offset(s))
            .collect();
        v.sort_unstable_by(|&x, &y| {
            let (_, rx, wx) = parts(b, x);
            let (_, ry, wy) = parts(b, y);
            (rx, wx).cmp(&(ry, wy))
        });
        v
    }

    /// The key, rank and row of the record at `at` (from [`Table::by_rank`] or
    /// [`Table::entries`]).
    pub(super) fn entry(&self, at: usize) -> (&[u8], &[u8], &[u8]) {
        parts(self.arena.as_bytes(), at)
    }

    /// Every live record: key, rank and row (in no particular order).
    pub(super) fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8], &[u8])> {
        let b = self.arena.as_bytes();
        self.index
            .iter()
            .filter(|&&s| s != 0)
            .map(move |&s| parts(b, tagged::offset(s)))
    }

    /// Forgets every key and frees the memory.
    pub(super) fn release(&mut self) {
        *self = Table::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Keys kept against a `HashMap` of the first (smallest-rank) row: ranks arriving out of
    /// order, rows of varying length (so both over-writes and appends), across index growths
    /// and compactions; `by_rank` gives every key once, in rank order.
    #[test]
    fn keeps_the_smallest_rank_per_key() {
        let mut t = Table::default();
        let mut want: HashMap<Vec<u8>, (Vec<u8>, Vec<u8>)> = HashMap::new();
        for i in 0..200_000u64 {
            let key = format!("k{}", i.wrapping_mul(0x9e37_79b9) % 5000).into_bytes();
            // Ranks fall now and then, so later rows replace kept ones.
            let rank = (1_000_000 - (i * 7919) % 1_000_000).to_be_bytes().to_vec();
            let row = vec![b'r'; (i % 23) as usize];
            t.keep(&key, &rank, |o| o.extend_from_slice(&row));
            let e = want.entry(key).or_insert((rank.clone(), row.clone()));
            if rank < e.0 {
                *e = (rank, row);
            }
        }
        assert_eq!(t.len(), want.len());
        for (k, r, w) in t.entries() {
            assert_eq!(want.get(k), Some(&(r.to_vec(), w.to_vec())));
        }
        let order = t.by_rank();
        assert_eq!(order.len(), want.len());
        let ranks: Vec<&[u8]> = order.iter().map(|&at| t.entry(at).1).collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
        // The garbage of 200k replacements is compacted away: the arena holds about the
        // live records (5000 of at most 12 + 5 + 8 + 22 bytes), not every row seen.
        assert!(t.bytes() < 2 << 20, "{} bytes", t.bytes());
        t.release();
        assert_eq!((t.len(), t.bytes()), (0, 0));
    }
}
