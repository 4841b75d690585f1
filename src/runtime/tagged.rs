//! The open-addressing index of the flat tables (the `count_distinct` store, the `distinct`
//! and `join` tables): each slot is 0 (empty) or `(tag << 48) | (offset + 1)`, the tag a
//! record's hash's top 16 bits and the offset where the record starts in the table's byte
//! arena, so that most probes that do not match are told apart without reading the arena.
//! Linear probing, a power-of-two number of slots.
//!
//! Invariant: pure helpers on words; what a record is, and which hash bits pick a home slot,
//! is the table's.

use super::memhint::Words;

const OFFSET_BITS: u32 = 48;
/// The largest offset + 1 a slot holds.
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// The slot of a record at `at` whose hash is `h`.
#[inline(always)]
pub fn slot(h: u64, at: usize) -> u64 {
    debug_assert!((at as u64) < OFFSET_MASK);
    tag(h) | (at as u64 + 1)
}

/// The tag bits of hash `h`, as a slot holds them.
#[inline(always)]
pub fn tag(h: u64) -> u64 {
    h >> OFFSET_BITS << OFFSET_BITS
}

/// Whether (non-empty) slot `s` may be a record hashed `h`: their tags agree.
#[inline(always)]
pub fn may_be(s: u64, h: u64) -> bool {
    s & !OFFSET_MASK == tag(h)
}

/// The record offset of a non-empty slot.
#[inline(always)]
pub fn offset(s: u64) -> usize {
    ((s & OFFSET_MASK) - 1) as usize
}

/// The slot `s` (non-empty) pointing at offset `at` instead, its tag kept.
#[inline(always)]
pub fn moved(s: u64, at: usize) -> u64 {
    (s & !OFFSET_MASK) | (at as u64 + 1)
}

/// Linear probing from `home` (taken modulo the index's length) for a record hashed `h` that
/// `is(offset)` accepts: `Ok((slot, offset))`, or `Err(slot)`, the first empty slot (where
/// such a record would go; 0 in an empty index). The index must keep an empty slot (its
/// tables grow at a load of 3/4).
#[inline(always)]
pub fn find(
    index: &Words,
    h: u64,
    home: usize,
    mut is: impl FnMut(usize) -> bool,
) -> Result<(usize, usize), usize> {
    if index.is_empty() {
        return Err(0);
    }
    let mask = index.len() - 1;
    let mut i = home & mask;
    loop {
        let s = index[i];
        if s == 0 {
            return Err(i);
        }
        if may_be(s, h) && is(offset(s)) {
            return Ok((i, offset(s)));
        }
        i = (i + 1) & mask;
    }
}

/// `index` doubled (at least 16 slots), each slot placed again from its home
/// `home(slot) & (new length - 1)`.
pub fn doubled(index: &Words, home: impl Fn(u64) -> usize) -> Words {
    let n = (index.len() * 2).max(16);
    let mut new = Words::zeroed(n);
    let mask = n - 1;
    for &s in index.iter() {
        if s == 0 {
            continue;
        }
        let mut i = home(s) & mask;
        while new[i] != 0 {
            i = (i + 1) & mask;
        }
        new[i] = s;
    }
    new
}

/// Makes `arena` (zeros past what is used) at least `end` bytes long.
#[inline]
pub fn reach(arena: &mut Words, end: usize) {
    let words = end.div_ceil(8);
    if words > arena.len() {
        let more = words - arena.len();
        arena.push_zeros(more);
    }
}
