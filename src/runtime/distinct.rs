//! The values of one `count_distinct` aggregate in a group table: every (group, value) pair in
//! one flat store, with no allocation per value or per group.
//!
//! Each new pair is appended to one byte arena as a record: the group (4 bytes), the offset + 1
//! of the record before it in the same group's set (6 bytes; 0: none), then the value as
//! `encode_key` writes one non-null column in the compact encoding (self-delimiting: its first
//! byte gives its length). An open-addressing index of words finds a pair:
//! `(tag << 48) | (offset + 1)`, the tag being the pair's hash's top 16 bits, so that most
//! probes that do not match are told apart without reading the arena. A group's set is the
//! chain of its records, newest first; its head and its count are two of the group's state
//! words, which the caller holds (so the final count needs none of this store).
//!
//! About 25 bytes per distinct int value (10 of header, the value, ≈ 11 of index at a load
//! between 3/8 and 3/4), against 88 for a `HashSet<Box<[u8]>>` per group.
//!
//! Invariant: a pair is stored at most once; every stored record is in the index and in its
//! group's chain; growing the index re-reads the arena in order (its hashes are not kept).

use super::memhint::Words;
use super::tagged;

/// Bytes of a record before its value: the group, then the previous record's offset + 1.
const HEADER: usize = 4 + PREV_BYTES;
const PREV_BYTES: usize = 6;

#[derive(Default)]
pub struct DistinctSets {
    /// 0 = empty, else `(hash >> 48) << 48 | (offset + 1)`; a power of two long (or empty).
    index: Words,
    /// The records, back to back (the words past `used` bytes are zeros).
    arena: Words,
    /// Bytes of the arena in use.
    used: usize,
    /// Records stored.
    values: usize,
}

/// The length of the encoded value at the start of `b`: 1 for a null, else as its first
/// byte says (`1 + len`; 255: a long string, its length in the next four bytes).
#[inline(always)]
fn value_len(b: &[u8]) -> usize {
    match b.first() {
        None => 0,
        Some(0) => 1,
        Some(255) => b.get(1..5).map_or(0, |l| {
            5 + u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize
        }),
        Some(&t) => t as usize,
    }
}

/// The hash of a pair: the value's key hash with the group folded in by a multiply.
#[inline(always)]
fn hash(g: u32, v: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let r = ((super::group::hash_key(v) ^ g as u64) as u128).wrapping_mul(K as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn read_prev(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w[..PREV_BYTES].copy_from_slice(&b[at + 4..at + HEADER]);
    u64::from_le_bytes(w)
}

impl DistinctSets {
    /// The bytes held (index and arena capacity).
    pub fn bytes(&self) -> usize {
        self.index.bytes() + self.arena.bytes()
    }

    /// The pairs stored.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.values
    }

    /// Adds `v` (one encoded non-null value) to group `g`'s set, whose chain starts at `*head`
    /// (0: empty); true if it was new (then `*head` is its record; the caller counts it).
    pub fn insert(&mut self, g: u32, head: &mut u64, v: &[u8]) -> bool {
        if (self.values + 1) * 4 > self.index.len() * 3 {
            self.grow_index();
        }
        let h = hash(g, v);
        let Err(i) = tagged::find(&self.index, h, h as usize, |at| self.holds(at, g, v)) else {
            return false;
        };
        let at = self.append(g, *head, v);
        self.index[i] = tagged::slot(h, at);
        *head = at as u64 + 1;
        self.values += 1;
        true
    }

    /// Whether the record at `at` is group `g`'s value `v`. `v` is self-delimiting, so equal
    /// bytes over its length are an equal value.
    #[inline(always)]
    fn holds(&self, at: usize, g: u32, v: &[u8]) -> bool {
        let b = self.arena.as_bytes();
        b[at..at + 4] == g.to_le_bytes() && b.get(at + HEADER..at + HEADER + v.len()) == Some(v)
    }

    /// Appends a record; returns its offset.
    fn append(&mut self, g: u32, prev: u64, v: &[u8]) -> usize {
        let at = self.used;
        let end = at + HEADER + v.len();
        // Offsets below 2^48 - 1 (256 TiB): no memory budget comes near.
        tagged::reach(&mut self.arena, end);
        let b = &mut self.arena.as_bytes_mut()[at..end];
        b[..4].copy_from_slice(&g.to_le_bytes());
        b[4..HEADER].copy_from_slice(&prev.to_le_bytes()[..PREV_BYTES]);
        b[HEADER..].copy_from_slice(v);
        self.used = end;
        at
    }

    /// Doubles the index (at least 16 slots), re-reading every record in arena order.
    #[cold]
    #[inline(never)]
    fn grow_index(&mut self) {
        let n = (self.index.len() * 2).max(16);
        let mut index = Words::zeroed(n);
        let mask = n - 1;
        let b = self.arena.as_bytes();
        let mut at = 0;
        while at < self.used {
            let g = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let v = &b[at + HEADER..];
            let v = &v[..value_len(v)];
            let h = hash(g, v);
            let mut i = h as usize & mask;
            while index[i] != 0 {
                i = (i + 1) & mask;
            }
            index[i] = tagged::slot(h, at);
            at += HEADER + v.len();
        }
        self.index = index;
    }

    /// The values of the set whose chain starts at `head` (newest first).
    pub fn values(&self, head: u64) -> impl Iterator<Item = &[u8]> {
        let b = self.arena.as_bytes();
        let mut next = head;
        std::iter::from_fn(move || {
            let at = next.checked_sub(1)? as usize;
            next = read_prev(b, at);
            let v = &b[at + HEADER..];
            Some(&v[..value_len(v)])
        })
    }

    /// Forgets every pair, keeping the allocations.
    pub fn clear(&mut self) {
        self.index.iter_mut().for_each(|s| *s = 0);
        // (`push_zeros` writes the words again as they are reused.)
        self.arena.clear();
        self.used = 0;
        self.values = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    /// An int as the compact encoding writes it (`1 + k`, then its `k` low bytes).
    fn int(x: u64) -> Vec<u8> {
        let k = (8 - x.leading_zeros() as usize / 8).max(1);
        let mut v = vec![1 + k as u8];
        v.extend_from_slice(&x.to_le_bytes()[..k]);
        v
    }

    fn string(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        if s.len() < 254 {
            v.push(1 + s.len() as u8);
        } else {
            v.push(255);
            v.extend_from_slice(&(s.len() as u32).to_le_bytes());
        }
        v.extend_from_slice(s);
        v
    }

    /// Sets of many groups, with repeats, a long string and values shared between groups,
    /// agree with a `HashSet` per group: the counts, and the values each chain gives back
    /// (also after the index grew many times and after a `clear`).
    #[test]
    fn sets_agree_with_a_hash_set_per_group() {
        let mut d = DistinctSets::default();
        for round in 0..2 {
            let mut heads: HashMap<u32, (u64, u64)> = HashMap::new();
            let mut want: HashMap<u32, HashSet<Vec<u8>>> = HashMap::new();
            let long = vec![b'x'; 300];
            for i in 0..50_000u64 {
                let g = (i.wrapping_mul(2_654_435_761) % 97) as u32;
                let v = match i % 4 {
                    0 => int(i % 1000),
                    1 => string(format!("id{:05}", i % 3000).as_bytes()),
                    2 => int(i),
                    _ => string(&long),
                };
                let (head, count) = heads.entry(g).or_default();
                let new = d.insert(g, head, &v);
                *count += new as u64;
                assert_eq!(new, want.entry(g).or_default().insert(v), "pair {i}");
            }
            assert_eq!(d.len(), want.values().map(|s| s.len()).sum::<usize>());
            for (g, set) in &want {
                let (head, count) = heads[g];
                assert_eq!(count as usize, set.len(), "round {round}, group {g}");
                let got: HashSet<Vec<u8>> = d.values(head).map(|v| v.to_vec()).collect();
                assert_eq!(&got, set, "round {round}, group {g}");
                assert_eq!(
                    d.values(head).count(),
                    set.len(),
                    "a value twice in a chain"
                );
            }
            d.clear();
            assert_eq!(d.len(), 0);
        }
    }

    #[test]
    fn an_empty_set_has_no_values() {
        let d = DistinctSets::default();
        assert_eq!(d.values(0).count(), 0);
        assert_eq!(d.bytes(), 0);
    }

    /// The point of the store: a few tens of bytes per distinct value, not ~90.
    #[test]
    fn bytes_per_value_are_a_few_tens() {
        let mut d = DistinctSets::default();
        let mut heads = vec![0u64; 100];
        let n = 1 << 20;
        for i in 0..n as u64 {
            d.insert((i % 100) as u32, &mut heads[(i % 100) as usize], &int(i));
        }
        let per = d.bytes() as f64 / n as f64;
        assert!(per < 40.0, "{per:.1} bytes per value");
    }
}
