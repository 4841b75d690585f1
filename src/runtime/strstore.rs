//! The strings a group table keeps as aggregate states — the current best of `min`/`max` over
//! strings and the value of `first`/`last` of a string — in one byte arena, with no allocation
//! per group or per replacement.
//!
//! A state word refers to its string as `(offset << 24) | len` ([`NONE`]: no string); a string
//! of [`LONG`] bytes or more has `len = LONG` and its length in the 8 bytes at `offset`, its bytes
//! after. A replacement no longer than the string it replaces is written over it; a longer one
//! is appended, and the old bytes become garbage. Once the garbage passes the live bytes (and
//! [`COMPACT_MIN`]), the owner hands every word it holds to [`StrStore::compact`], which moves
//! the live strings down in place (no second arena), so the arena stays within about twice
//! what the states refer to.
//!
//! Invariant: a word that `put` returned stays valid (its bytes unchanged) until it is replaced
//! by a `put` over it, the store is cleared, or the owner compacts.

use super::memhint::Words;

/// A state word holding no string.
pub const NONE: u64 = u64::MAX;
/// The length field of a long string (its length is in the arena).
const LONG: usize = (1 << 24) - 1;
/// Offsets must stay below this (`NONE` is never a valid word: its offset would be 2^40 - 1).
const OFFSET_MAX: usize = (1 << 40) - 1;
/// Garbage below this is never compacted (a small table gains nothing).
const COMPACT_MIN: usize = 16 << 10;

#[derive(Default)]
pub struct StrStore {
    arena: Words,
    /// Bytes of the arena in use.
    used: usize,
    /// Bytes of the strings (and long headers) the states refer to.
    live: usize,
}

#[inline(always)]
fn split(word: u64) -> (usize, usize) {
    ((word >> 24) as usize, (word & LONG as u64) as usize)
}

impl StrStore {
    /// The bytes held.
    pub fn bytes(&self) -> usize {
        self.arena.bytes()
    }

    /// The string of `word` (empty for [`NONE`]).
    #[inline(always)]
    pub fn get(&self, word: u64) -> &[u8] {
        if word == NONE {
            return &[];
        }
        let b = self.arena.as_bytes();
        let (at, len) = split(word);
        if len < LONG {
            &b[at..at + len]
        } else {
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[at..at + 8]);
            let n = u64::from_le_bytes(n) as usize;
            &b[at + 8..at + 8 + n]
        }
    }

    /// Bytes a string takes in the arena.
    fn room(len: usize) -> usize {
        if len < LONG { len } else { 8 + len }
    }

    /// Makes `*word` refer to `x`: over its current string if `x` is no longer, else appended.
    pub fn put(&mut self, word: &mut u64, x: &[u8]) {
        let need = StrStore::room(x.len());
        let at = if *word == NONE {
            self.append(need)
        } else {
            let (at, len) = split(*word);
            let old = StrStore::room(self.get(*word).len());
            self.live -= old;
            let fits = if len < LONG {
                x.len() <= len
            } else {
                x.len() >= LONG && need <= old
            };
            if fits { at } else { self.append(need) }
        };
        self.live += need;
        let b = self.arena.as_bytes_mut();
        if x.len() < LONG {
            b[at..at + x.len()].copy_from_slice(x);
            *word = (at as u64) << 24 | x.len() as u64;
        } else {
            b[at..at + 8].copy_from_slice(&(x.len() as u64).to_le_bytes());
            b[at + 8..at + 8 + x.len()].copy_from_slice(x);
            *word = (at as u64) << 24 | LONG as u64;
        }
    }

    /// Room for `need` more bytes at the end; returns where they start.
    fn append(&mut self, need: usize) -> usize {
        let at = self.used;
        let end = at + need;
        // A 1 TiB arena: no memory budget comes near it (the allocation fails first).
        debug_assert!(end < OFFSET_MAX);
        let words = end.div_ceil(8);
        if words > self.arena.len() {
            let more = words - self.arena.len();
            self.arena.push_zeros(more);
        }
        self.used = end;
        at
    }

    /// Whether replaced strings take more than the live ones (and 16 KiB): the owner
    /// should then copy every state's string into a new store.
    #[inline]
    pub fn wants_compaction(&self) -> bool {
        let garbage = self.used - self.live;
        garbage > COMPACT_MIN && garbage > self.live
    }

    /// Moves the strings of `words` (every word the owner holds that is not [`NONE`], each with
    /// the owner's own tag) down over the garbage, in offset order, and rewrites the words.
    pub fn compact(&mut self, words: &mut [(u64, usize)]) {
        words.sort_unstable_by_key(|&(w, _)| w >> 24);
        let mut to = 0;
        for (w, _) in words.iter_mut() {
            let (at, len) = split(*w);
            let n = if len < LONG {
                len
            } else {
                StrStore::room(self.get(*w).len())
            };
            self.arena.as_bytes_mut().copy_within(at..at + n, to);
            *w = (to as u64) << 24 | len as u64;
            to += n;
        }
        self.used = to;
        self.live = to;
    }

    /// Forgets every string, keeping the allocation.
    pub fn clear(&mut self) {
        self.arena.clear();
        self.used = 0;
        self.live = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replacements shorter, equal and longer, a long string, and many words at once: every
    /// word gives back the string last put into it.
    #[test]
    fn words_give_back_what_was_put() {
        let mut s = StrStore::default();
        let mut words = vec![NONE; 1000];
        let mut want = vec![Vec::new(); 1000];
        assert_eq!(s.get(NONE), b"");
        for round in 0..5usize {
            for (i, w) in words.iter_mut().enumerate() {
                let n = (i * 7 + round * 13) % 40;
                let x: Vec<u8> = (0..n)
                    .map(|k| b'a' + ((k + i + round) % 26) as u8)
                    .collect();
                s.put(w, &x);
                want[i] = x;
            }
        }
        let long = vec![b'z'; LONG + 5];
        s.put(&mut words[3], &long);
        want[3] = long.clone();
        s.put(&mut words[3], &long[..LONG + 1]);
        want[3] = long[..LONG + 1].to_vec();
        s.put(&mut words[4], &long[..LONG]);
        want[4] = long[..LONG].to_vec();
        for (w, x) in words.iter().zip(&want) {
            assert_eq!(s.get(*w), &x[..]);
        }
    }

    /// `last(s)` over a long input replaces the string of a few groups every row: the garbage
    /// calls for a compaction, and copying the live strings to a new store keeps them.
    #[test]
    fn garbage_calls_for_compaction() {
        let mut s = StrStore::default();
        let mut words = [NONE; 4];
        let mut i = 0u64;
        while !s.wants_compaction() {
            let x = format!("value-{}", "x".repeat((i % 50) as usize));
            s.put(&mut words[(i % 4) as usize], x.as_bytes());
            i += 1;
            assert!(i < 10_000_000, "never asked for a compaction");
        }
        let want: Vec<Vec<u8>> = words.iter().map(|&w| s.get(w).to_vec()).collect();
        let used = s.used;
        let mut refs: Vec<(u64, usize)> = words.iter().enumerate().map(|(i, &w)| (w, i)).collect();
        s.compact(&mut refs);
        for &(w, i) in &refs {
            words[i] = w;
        }
        for (w, x) in words.iter().zip(&want) {
            assert_eq!(s.get(*w), &x[..]);
        }
        assert!(!s.wants_compaction());
        assert!(s.used < 256 && s.used < used, "{} of {used}", s.used);
        // Puts after the compaction append after the live strings.
        s.put(&mut words[0], &[b'q'; 300]);
        assert_eq!(s.get(words[0]), &[b'q'; 300][..]);
        assert_eq!(s.get(words[1]), &want[1][..]);
    }

    /// A long string survives a compaction.
    #[test]
    fn a_long_string_survives_compaction() {
        let mut s = StrStore::default();
        let mut a = NONE;
        let mut b = NONE;
        s.put(&mut a, b"garbage that will be replaced");
        s.put(&mut a, b"garbage that will be replaced, now longer");
        let long = vec![b'L'; LONG + 3];
        s.put(&mut b, &long);
        let mut refs = vec![(a, 0), (b, 1)];
        s.compact(&mut refs);
        let (a, b) = (refs[0].0, refs[1].0);
        assert_eq!(s.get(a), b"garbage that will be replaced, now longer");
        assert_eq!(s.get(b), &long[..]);
    }
}
