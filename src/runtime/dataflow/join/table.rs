//! The build table of a join: per key, the build rows that have it, in build order, with no
//! allocation per key or per row.
//!
//! Each key is a record `[key len, first row, last row: u32 each][key]`, appended to one byte
//! arena; an index of tagged offsets finds it (`runtime::tagged`), the home slot the key
//! hash's low bits (the routing between workers takes `(hash >> 32) % workers`). A key's rows are a chain through `next` (one `u32` per build row,
//! by row number), from the record's first row to its last, which a new row is linked after.
//!
//! Invariant: every key is in the index once; its chain holds exactly its rows, in the order
//! they were added.

use crate::runtime::group::hash_key;
use crate::runtime::memhint::{self, Words};
use crate::runtime::tagged;

const HEADER: usize = 12;
/// Indexes of at least this many slots (256 KiB) are prefetched into (see [`Table::large`]).
const PREFETCH_MIN_SLOTS: usize = 1 << 15;
/// The end of a chain.
const END: u32 = u32::MAX;

/// A key's hash, as the table takes it.
#[inline]
pub(super) fn hash(key: &[u8]) -> u64 {
    hash_key(key)
}

#[derive(Default)]
pub(super) struct Table {
    index: Words,
    arena: Words,
    used: usize,
    keys: usize,
    /// Per build row: the next row of its key, or [`END`].
    next: Vec<u32>,
}

#[inline(always)]
fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Table {
    /// The bytes held.
    pub(super) fn bytes(&self) -> usize {
        self.index.bytes() + self.arena.bytes() + self.next.capacity() * 4
    }

    /// Adds build row `row` (the next row number: 0, 1, 2, …) under `key`; `false` (nothing
    /// added) past 2^32 - 1 rows.
    #[cfg(test)]
    pub(super) fn add(&mut self, key: &[u8], row: usize) -> bool {
        self.add_hashed(key, hash(key), row)
    }

    /// [`Table::add`] of a key hashed `h` ([`hash`]).
    #[inline]
    pub(super) fn add_hashed(&mut self, key: &[u8], h: u64, row: usize) -> bool {
        debug_assert_eq!(row, self.next.len());
        if row >= END as usize {
            return false;
        }
        self.next.push(END);
        let row = row as u32;
        if (self.keys + 1) * 4 > self.index.len() * 3 {
            self.grow_index();
        }
        match self.find(key, h) {
            Ok(at) => {
                let b = self.arena.as_bytes_mut();
                let last = read_u32(b, at + 8);
                b[at + 8..at + 12].copy_from_slice(&row.to_le_bytes());
                self.next[last as usize] = row;
            }
            Err(i) => {
                let at = self.append(key, row);
                self.index[i] = tagged::slot(h, at);
                self.keys += 1;
            }
        }
        true
    }

    /// The rows of `key`, in the order they were added.
    #[cfg(test)]
    pub(super) fn rows(&self, key: &[u8]) -> Rows<'_> {
        self.rows_hashed(key, hash(key))
    }

    /// [`Table::rows`] of a key hashed `h` ([`hash`]).
    #[inline]
    pub(super) fn rows_hashed(&self, key: &[u8], h: u64) -> Rows<'_> {
        let first = match self.find(key, h) {
            Ok(at) => read_u32(self.arena.as_bytes(), at + 4),
            Err(_) => END,
        };
        Rows {
            next: &self.next,
            at: first,
        }
    }

    /// Whether the index is past the caches, so that the prefetches ([`Table::prefetch_slot`],
    /// [`Table::prefetch_record`]) pay.
    pub(super) fn large(&self) -> bool {
        self.index.len() >= PREFETCH_MIN_SLOTS
    }

    /// Asks for the home slot of hash `h` in the caches.
    #[inline(always)]
    pub(super) fn prefetch_slot(&self, h: u64) {
        let mask = self.index.len().wrapping_sub(1);
        memhint::prefetch(self.index.as_ptr().wrapping_add(h as usize & mask));
    }

    /// The record the home slot of hash `h` points at, if its tag agrees (the key is not
    /// compared: a hint for the prefetches below).
    #[inline(always)]
    fn home_record(&self, h: u64) -> Option<usize> {
        let mask = self.index.len().checked_sub(1)?;
        let s = *self.index.get(h as usize & mask)?;
        (s != 0 && tagged::may_be(s, h)).then(|| tagged::offset(s))
    }

    /// Asks for the record of hash `h`'s home slot in the caches (the slot should be there:
    /// [`Table::prefetch_slot`] a few rows before).
    #[inline(always)]
    pub(super) fn prefetch_record(&self, h: u64) {
        if let Some(at) = self.home_record(h) {
            memhint::prefetch(self.arena.as_bytes().as_ptr().wrapping_add(at));
        }
    }

    /// The first row of the record of hash `h`'s home slot (which should be in the caches:
    /// [`Table::prefetch_record`] a few rows before), for the caller to prefetch that row.
    #[inline(always)]
    pub(super) fn first_row_hint(&self, h: u64) -> Option<usize> {
        let at = self.home_record(h)?;
        let b = self.arena.as_bytes();
        b.get(at + 4..at + 8).map(|_| read_u32(b, at + 4) as usize)
    }

    /// The record offset of `key` (hashed `h`), or the empty index slot where it would go.
    #[inline]
    fn find(&self, key: &[u8], h: u64) -> Result<usize, usize> {
        let b = self.arena.as_bytes();
        tagged::find(&self.index, h, h as usize, |at| {
            let len = read_u32(b, at) as usize;
            &b[at + HEADER..at + HEADER + len] == key
        })
        .map(|(_, at)| at)
    }

    /// Appends the record of a new key whose one row is `row`; returns its offset.
    fn append(&mut self, key: &[u8], row: u32) -> usize {
        let at = self.used;
        let end = at + HEADER + key.len();
        // Offsets below 2^48 - 1: no memory budget comes near (the allocation fails first).
        tagged::reach(&mut self.arena, end);
        let b = &mut self.arena.as_bytes_mut()[at..end];
        b[..4].copy_from_slice(&(key.len() as u32).to_le_bytes());
        b[4..8].copy_from_slice(&row.to_le_bytes());
        b[8..12].copy_from_slice(&row.to_le_bytes());
        b[HEADER..].copy_from_slice(key);
        self.used = end;
        at
    }

    /// Doubles the index (at least 16 slots), re-hashing the keys.
    #[cold]
    #[inline(never)]
    fn grow_index(&mut self) {
        let b = self.arena.as_bytes();
        self.index = tagged::doubled(&self.index, |s| {
            let at = tagged::offset(s);
            let len = read_u32(b, at) as usize;
            hash_key(&b[at + HEADER..at + HEADER + len]) as usize
        });
    }
}

/// The rows of one key ([`Table::rows`]).
pub(super) struct Rows<'a> {
    next: &'a [u32],
    at: u32,
}

impl Iterator for Rows<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.at == END {
            return None;
        }
        let r = self.at as usize;
        self.at = self.next.get(r).copied().unwrap_or(END);
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_gives_its_rows_in_the_order_added() {
        let mut t = Table::default();
        let key = |i: usize| format!("key-{}", i % 1000).into_bytes();
        // 5000 rows over 1000 keys: the index grows several times between a key's rows.
        for r in 0..5000 {
            assert!(t.add(&key(r), r));
        }
        for k in 0..1000 {
            let rows: Vec<usize> = t.rows(&key(k)).collect();
            assert_eq!(rows, vec![k, k + 1000, k + 2000, k + 3000, k + 4000]);
        }
        assert_eq!(t.rows(b"absent").count(), 0);
        assert_eq!(t.rows(b"").count(), 0);
        assert!(t.add(b"", 5000));
        assert_eq!(t.rows(b"").collect::<Vec<_>>(), vec![5000]);
        assert!(t.bytes() > 0);
    }
}
