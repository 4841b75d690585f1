//! Hash aggregation for `group`.
//!
//! Semantics (see `hir::AggFunc`): `count()` counts rows; `sum` adds non-null values (0 when
//! none; int overflow is a job error); `min`/`max` keep the smallest/largest non-null value
//! (strings bytewise), null if there was none; for floats NaN propagates, as in the builtins
//! (`float_min`/`float_max`): one NaN makes the group's min and max NaN, whatever the row order
//! and however the rows were split between workers; `avg` is the float mean of non-null
//! values, null if there was none; `count_distinct` counts the distinct non-null values (a set
//! per group, values compared as keys are); `first`/`last` keep the value (null included) of
//! the row with the smallest/largest input position (see [`GroupTable::set_position`]), so
//! partial states from any split or worker merge to the same value. Keys compare by value: nulls form one group, floats compare
//! by value with `-0.0 == 0.0` and all NaNs equal (a float key is written as its canonical
//! value: `0.0` for a group of `-0.0` and `0.0`).
//!
//! Speed: `update` first hashes the key of every row of the batch, one key column at a time,
//! straight from the batch's columns ([`batch_hashes`]: one folded multiply per column, a short
//! string's bytes read as two words), then finds each row's group by comparing the row's key
//! columns with the stored key ([`row_matches`]: a row's key is encoded only when it starts a
//! new group); a row whose key columns equal the previous row's reuses its group (checked only
//! while that hits: sorted or clustered keys), and a key of one column is first looked up in a
//! small direct-mapped cache that holds such keys exactly (while it hits: few distinct keys);
//! then it folds each aggregate in one loop over the batch. Keys of few values (`group vendor`,
//! `group vendor, city`) skip all of that: each key column's values get dense codes from a
//! dictionary of the column (exact small keys, one column at a time), and the row's codes,
//! combined into one word, map to its group ([`Dicts`]; hashed, probed and encoded only for a
//! new combination); past [`DICT_MAX`] values in a column or [`COMBO_MAX`] combinations the
//! table turns that path off for good.
//!
//! Groups are emitted in the order their keys were first seen (so with one worker the output
//! order is deterministic; after a spill, partition by partition, see `dataflow::group`); rows
//! are routed between workers by the key hash, the same in every process (a fixed function of
//! the key's values, computed alike from a row and from a stored key: [`hash_col`]).
//!
//! Memory (about 40 bytes per group for an int key and two aggregates, plus the key bytes):
//! - keys are stored once, in their canonical encoding ([`Enc`]: 9 bytes per column if every key
//!   column is fixed-width, else compact — a length byte per column, ints in the bytes they
//!   need: the H2O q10 key of three short strings and three ints takes 32 bytes), back to back in
//!   chunks of a fixed number of groups ([`KeyStore`]: no doubling vector of all the keys, so
//!   no copy of them on growth and no unused half; fixed-width keys are found by position,
//!   variable-width ones by a 4-byte start offset per group in its chunk of 4096); they are
//!   decoded when the groups are written out, and the chunks of groups already written out can
//!   be freed ([`GroupTable::free_before`], which also frees the index and gives back the
//!   states' pages behind the emit, so that an operator after the group — a sort holding its
//!   output — reuses that memory);
//! - the hash index is an open-addressing table of `u64` slots (a 32-bit hash and the group
//!   number), no per-key allocation;
//! - aggregate states are packed into a fixed number of 8-byte words per group (one per
//!   aggregate, two for `avg`, plus a word of "has a value" bits for min/max); only `min`/`max`
//!   of strings keep a heap copy of the current best string; `first`/`last` take four words
//!   (the value and the row's position) and two flag bits (seen, null); `count_distinct` two
//!   words, the head of its group's chain of values in the aggregate's [`DistinctSets`] (one
//!   flat store of (group, encoded value) records, no allocation per value or group) and the
//!   count (counted in [`GroupTable::bytes`]);
//! - a null in a key column of a fixed-width key keeps the column's 9 bytes (so such keys stay
//!   found by position);
//! - [`GroupTable::bytes`] is what the table holds; it does not grow past its
//!   [`GroupTable::set_limit`]: [`GroupTable::add`] stops at the first row whose group would
//!   need more (before the allocation), so that the caller can spill the table and go on; only
//!   `count_distinct` sets grow past it, by at most one batch's values, after which
//!   [`GroupTable::over_limit`] tells the caller to spill.
//!
//! Partial states (pre-aggregation on several workers, and the spill) carry the encoded key and
//! its hash, so the table that merges them neither decodes, re-encodes nor re-hashes keys; a
//! pre-aggregation table keeps each group's hash ([`GroupTable::set_keep_hashes`]), and rows
//! of a pre-aggregation that does not reduce are sent on as one-row partial states without a
//! table ([`GroupTable::row_partials`]).

use super::distinct::DistinctSets;
use super::memhint;
use super::strstore::{self, StrStore};
use crate::batch::Batch;
use crate::check::hir::AggFunc;
use crate::stdlib::ops;
use crate::types::{RowType, Scalar};

/// Where each key and aggregate argument is found in the rows given to `update`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroupLayout {
    pub keys: Vec<(usize, Scalar)>,
    /// Function, argument column and scalar (`None` for `count()`).
    pub aggs: Vec<(AggFunc, Option<(usize, Scalar)>)>,
}

/// How one aggregate's state is stored in a group's words.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    Count,
    SumInt,
    SumFloat,
    /// Float sum, then count.
    Avg,
    /// min/max of an int, timestamp or bool (as i64), of a float (bits), or of a string
    /// (a word of `GroupTable::strs`); `bit` is its "has a value" bit in the flag words.
    Best {
        max: bool,
        scalar: Scalar,
        bit: usize,
    },
    /// count_distinct: the head of the group's chain in `GroupTable::distinct[set]` (0:
    /// empty), then the set's count.
    Distinct {
        scalar: Scalar,
        set: usize,
    },
    /// first/last: the value (as for `Best`), then the row's position (three words, compared
    /// in order); flag bits `bit` ("seen") and `bit + 1` ("the value is null").
    Pick {
        last: bool,
        scalar: Scalar,
        bit: usize,
    },
}

impl Slot {
    /// State words of the slot.
    fn words(self) -> usize {
        match self {
            Slot::Avg | Slot::Distinct { .. } => 2,
            Slot::Pick { .. } => 4,
            _ => 1,
        }
    }
    /// Columns of the slot's partial state.
    fn partial_columns(self) -> usize {
        match self {
            Slot::Avg => 2,
            Slot::Pick { .. } => 4,
            _ => 1,
        }
    }
}

pub struct GroupTable {
    layout: GroupLayout,
    key_types: RowType,
    /// Per aggregate: its slot and first word.
    slots: Vec<(Slot, usize)>,
    /// Words per group: the aggregates', then the flag words.
    words: usize,
    flag_words: usize,
    /// A table keyed by one string column: the state word where each group's key is also
    /// held as [`small_key`] gives it (`[3 + len, x, y]`, `[1, 0, 0]` for null, kind 0 for a
    /// string longer than 16 bytes), so that a row's key is compared in the state's own cache
    /// line rather than at its stored key (two more loads: the key's start, then its bytes).
    inline: Option<usize>,
    /// The encoded keys, each stored once, and their encoding.
    keys: KeyStore,
    enc: Enc,
    /// Words of each group's state that start as `strstore::NONE`: the string states (min/max
    /// and first/last of strings; no string yet).
    unset_words: Vec<usize>,
    /// Open-addressing index: 0 = empty, else `(hash32 << 32) | (group + 1)`.
    index: memhint::Words,
    groups: usize,
    states: memhint::Words,
    /// Current best strings of min/max over strings (and of first/last): one arena, no
    /// allocation per group (see `strstore`).
    strs: StrStore,
    /// The values of each `count_distinct` aggregate (encoded as `encode_key` writes one
    /// column), by group.
    distinct: Vec<DistinctSets>,
    /// The input position of the batch given to `update` (see `set_position`).
    pos: [u64; 2],
    /// Rows seen without an input position (their position is this running count).
    unplaced: u64,
    scratch: Vec<u8>,
    /// The group of each row of the batch being added, and its key hash (reused between
    /// batches).
    gids: Vec<u32>,
    hashes: Vec<u64>,
    /// A table of one key column: a direct-mapped cache from the key (as [`small_key`] gives
    /// it) to its group, tried before the index (empty until used; cleared with the groups).
    cache: Vec<([u64; 3], u32)>,
    /// The few-key path (see [`Dicts`]) and the bytes it holds.
    dicts: Dicts,
    dict_bytes: usize,
    /// The range path (see [`Span`]) and the bytes it holds.
    span: Span,
    span_bytes: usize,
    limit: usize,
    /// The key hash of each group, kept if `set_keep_hashes` (a pre-aggregation table, which
    /// sends every group on with its hash: recomputing it from the key would walk the key).
    group_hashes: Option<Vec<u64>>,
}

/// How a table encodes its keys. `Fixed` (every key column fixed-width: int, float, bool,
/// timestamp): per column a tag byte (0 null, 1 present) and the value's 8 bytes, also for a null,
/// so that the keys have one width and are found by position. `Compact` (a key with a string
/// column): per column one length byte — a string: 0 null, `1 + len` for `len < 254`, else 255
/// and the length as u32; a fixed-width value: 0 null, else `1 + k` and the `k` low bytes of its
/// word (an int's or timestamp's zigzag, a float's canonical bits, a bool's 0/1), `k` as few as
/// hold it — then the bytes. Either encoding is canonical (equal keys, equal bytes), so stored
/// keys compare bytewise; a row's key is compared with a stored one column by column without
/// being encoded ([`row_matches`]).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Enc {
    Fixed,
    Compact,
}

/// The word of a fixed-width key value that keys compare by: floats with `-0.0 == 0.0` and all
/// NaNs equal.
#[inline(always)]
fn canon(s: Scalar, x: u64) -> u64 {
    if s == Scalar::Float {
        let f = f64::from_bits(x);
        if f.is_nan() {
            return f64::NAN.to_bits();
        } else if f == 0.0 {
            return 0;
        }
    }
    x
}

/// The word `Enc::Compact` stores for a canonical value (small ints in few bytes).
#[inline(always)]
fn compact_word(s: Scalar, x: u64) -> u64 {
    match s {
        Scalar::Int | Scalar::Timestamp => (x << 1) ^ ((x as i64 >> 63) as u64),
        _ => x,
    }
}

/// The inverse of [`compact_word`].
#[inline(always)]
fn from_compact_word(s: Scalar, u: u64) -> u64 {
    match s {
        Scalar::Int | Scalar::Timestamp => (u >> 1) ^ (u & 1).wrapping_neg(),
        _ => u,
    }
}

/// Bytes of `u` without its high zero bytes (0 for 0).
#[inline(always)]
fn word_len(u: u64) -> usize {
    (71 - u.leading_zeros() as usize) / 8
}

/// The value of one key column, as the key hash and the comparisons see it.
enum Col<'a> {
    Null,
    /// A fixed-width value's canonical word.
    Word(u64),
    Str(&'a [u8]),
}

/// The key hash: per column one folded multiply of the running hash with the column's value (a
/// string's [`hash_key`]), so that it is computed alike from a row ([`row_hash`]) and from an
/// encoded key ([`GroupTable::group_hash`]) in either encoding, and is the same in every process.
const HASH_SEED: u64 = P0;

#[inline(always)]
fn hash_col(h: u64, c: Col) -> u64 {
    match c {
        Col::Null => mix(h ^ P0, P1),
        Col::Word(x) => mix(x ^ P1, h ^ P2),
        Col::Str(s) => {
            // A short string (most keys) in one multiply: its bytes as two (overlapping)
            // words, its length in the high bits of the first.
            let n = s.len();
            let (x, y) = if n > 16 {
                (hash_key(s), 0)
            } else {
                short_words(s)
            };
            mix(x ^ P1 ^ ((n as u64) << 57), y ^ h ^ P2)
        }
    }
}

/// A string of at most 16 bytes as two (overlapping) words; with its length, they are the
/// string (so equal length and words are equal strings).
#[inline(always)]
fn short_words(s: &[u8]) -> (u64, u64) {
    let n = s.len();
    if n >= 8 {
        (read8(s, 0), read8(s, n - 8))
    } else if n >= 4 {
        (read4(s, 0), read4(s, n - 4))
    } else if n > 0 {
        (
            ((s[0] as u64) << 16) | ((s[n / 2] as u64) << 8) | s[n - 1] as u64,
            0,
        )
    } else {
        (0, 0)
    }
}

/// The most values a key column's dictionary holds, the most key columns and the most
/// combinations of the few-key path ([`Dicts`]); past them the table goes the general way.
const DICT_MAX: usize = 1024;
const DICT_COLS: usize = 8;
const COMBO_MAX: usize = 1 << 15;

/// The few-key path of a table (`group vendor`, `group vendor, city`): per key column a
/// dictionary from its values to dense codes, the row's codes combined into one word (`bits`
/// per column), and a map from that word to the group. A row's group then costs a few
/// dictionary probes of exact small keys instead of a hash of the whole key, an index probe
/// and a comparison with the stored key. It turns itself off for good (until the table is
/// made anew) once a column has more than [`DICT_MAX`] values or there are more than
/// [`COMBO_MAX`] combinations.
#[derive(Default)]
struct Dicts {
    off: bool,
    bits: u32,
    cols: Vec<Dict>,
    /// One key column: `direct[code]` is the group (`u32::MAX`: none yet). Several: an
    /// open-addressing map of `(code + 1, group)` (0: empty) holding `combos` entries.
    direct: Vec<u32>,
    map: Vec<(u64, u32)>,
    combos: usize,
    /// The combined code of each row of the batch being added (reused between batches, not
    /// counted, as the table's other per-batch vectors).
    codes: Vec<u64>,
}

/// Bytes of a dictionary slot and of a combination map slot.
const DICT_SLOT: usize = std::mem::size_of::<([u64; 3], u32)>();
const MAP_SLOT: usize = std::mem::size_of::<(u64, u32)>();

impl Dicts {
    fn bytes(&self) -> usize {
        self.cols
            .iter()
            .map(|d| d.slots.capacity() * DICT_SLOT)
            .sum::<usize>()
            + self.direct.capacity() * 4
            + self.map.capacity() * MAP_SLOT
    }

    /// The group of combined code `code` (of several key columns), if known.
    #[inline(always)]
    fn group(&self, code: u64) -> Option<u32> {
        if self.map.is_empty() || code == u64::MAX {
            return None;
        }
        let mask = self.map.len() - 1;
        let mut i = combo_slot(code) & mask;
        loop {
            let (k, g) = self.map[i];
            if k == code + 1 {
                return Some(g);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Notes that combined code `code` (absent) is group `g`, unless that needs more than
    /// `room` bytes (then its rows keep going the slow way, still to the right group).
    #[cold]
    fn remember(&mut self, code: u64, g: u32, room: usize) {
        if self.cols.len() == 1 {
            let need = code as usize + 1;
            if self.direct.len() < need {
                let cap = need.next_power_of_two().max(16);
                if cap.saturating_sub(self.direct.capacity()) * 4 > room {
                    return;
                }
                self.direct.reserve_exact(cap - self.direct.len());
                self.direct.resize(need, u32::MAX);
            }
            self.direct[code as usize] = g;
            return;
        }
        if (self.combos + 1) * 2 > self.map.len() {
            let n = (self.map.len() * 2).max(64);
            if n * MAP_SLOT > room {
                return;
            }
            let old = std::mem::replace(&mut self.map, vec![(0, 0); n]);
            for (k, v) in old.into_iter().filter(|&(k, _)| k != 0) {
                self.put(k, v);
            }
        }
        self.put(code + 1, g);
        self.combos += 1;
    }

    fn put(&mut self, k: u64, g: u32) {
        let mask = self.map.len() - 1;
        let mut i = combo_slot(k - 1) & mask;
        while self.map[i].0 != 0 {
            i = (i + 1) & mask;
        }
        self.map[i] = (k, g);
    }

    /// Forgets the groups of the combinations (the dictionaries' codes stay).
    fn forget_groups(&mut self) {
        self.direct.clear();
        self.map.iter_mut().for_each(|e| *e = (0, 0));
        self.combos = 0;
    }
}

#[inline(always)]
fn combo_slot(code: u64) -> usize {
    (code.wrapping_mul(P0) >> 32) as usize
}

/// Pushes the group of each code of `codes` to `gids` while `group` knows it (`u32::MAX` or
/// `None`: not known; `u64::MAX`, a row without a code, is never known); returns how many.
#[inline(always)]
fn known(codes: &[u64], gids: &mut Vec<u32>, group: impl Fn(u64) -> Option<u32>) -> usize {
    // Written into the spare room (reserved once) rather than pushed: no length stored and
    // no capacity checked per row.
    gids.reserve(codes.len());
    let mut n = 0;
    for (slot, &c) in gids.spare_capacity_mut().iter_mut().zip(codes) {
        match group(c) {
            Some(g) if g != u32::MAX => {
                slot.write(g);
                n += 1;
            }
            _ => break,
        }
    }
    // SAFETY: the `n` slots past the length were written just above, within the capacity.
    unsafe { gids.set_len(gids.len() + n) };
    n
}

/// The most values the range path of a table keyed by one int column spans (4 MiB of groups).
const SPAN_MAX: usize = 1 << 20;

/// The range path of a table keyed by one int column of many values (`group id6`: more than a
/// dictionary takes): `groups[v - lo]` is the group of value `v` (`u32::MAX`: none yet) and
/// `null` the group of the null key, so that a row's group costs one array load instead of a
/// hash, an index probe and a comparison with the stored key. Groups are still created (and
/// found by `merge_from`) through the index; this only remembers them. It turns itself off for
/// good (until the table is made anew) once the values span more than [`SPAN_MAX`] or more
/// bytes than the table may give it.
struct Span {
    off: bool,
    lo: i64,
    groups: Vec<u32>,
    null: u32,
}

impl Default for Span {
    fn default() -> Span {
        Span {
            off: false,
            lo: 0,
            groups: Vec::new(),
            null: u32::MAX,
        }
    }
}

impl Span {
    fn bytes(&self) -> usize {
        self.groups.capacity() * 4
    }

    /// Widens the range to hold `lo..=hi`, unless that spans more than [`SPAN_MAX`] values or
    /// needs more than `room` more bytes (`false`: nothing changed).
    fn cover(&mut self, lo: i64, hi: i64, room: usize) -> bool {
        let (new_lo, new_hi) = if self.groups.is_empty() {
            (lo, hi)
        } else {
            let top = self.lo as i128 + self.groups.len() as i128 - 1;
            (self.lo.min(lo), (top.max(hi as i128)) as i64)
        };
        let span = new_hi as i128 - new_lo as i128 + 1;
        if span > SPAN_MAX as i128 {
            return false;
        }
        let span = span as usize;
        if span <= self.groups.len() && new_lo == self.lo {
            return true;
        }
        let cap = if span > self.groups.capacity() {
            span.next_power_of_two().min(SPAN_MAX)
        } else {
            self.groups.capacity()
        };
        if cap.saturating_sub(self.groups.capacity()) * 4 > room {
            return false;
        }
        if self.groups.is_empty() || new_lo == self.lo {
            self.groups.reserve_exact(cap - self.groups.len());
            self.groups.resize(span, u32::MAX);
        } else {
            // Values below the range: the known groups move up by the difference.
            let shift = (self.lo as i128 - new_lo as i128) as usize;
            let mut groups = Vec::with_capacity(cap);
            groups.resize(shift, u32::MAX);
            groups.extend_from_slice(&self.groups);
            groups.resize(span, u32::MAX);
            self.groups = groups;
        }
        self.lo = new_lo;
        true
    }

    /// Where the group of value index `at` (`v - lo`; `None`: the null key) is remembered
    /// (`None`: outside the range).
    #[inline(always)]
    fn slot(&mut self, at: Option<usize>) -> Option<&mut u32> {
        match at {
            None => Some(&mut self.null),
            Some(k) => self.groups.get_mut(k),
        }
    }

    /// Forgets the groups (the range and its allocation stay).
    fn forget_groups(&mut self) {
        self.groups.iter_mut().for_each(|g| *g = u32::MAX);
        self.null = u32::MAX;
    }
}

/// One key column's dictionary: an open-addressing table from the value (exact, as
/// [`small_key`] gives it; kind 0 marks an empty slot) to its code, in first-seen order.
#[derive(Default)]
struct Dict {
    slots: Vec<([u64; 3], u32)>,
    /// `64 - log2(slots)`.
    shift: u32,
    len: usize,
}

impl Dict {
    /// Puts the code of each row's value of key column `c` (of scalar `s`), shifted by
    /// `shift`, into `codes` (rows `from..` of `b`): ORed into what is there, or in place of it
    /// for the first column (`first`), so `codes` need not be zeroed; a string too long for a
    /// small key makes the row's code `u64::MAX`. False if the column has more than `max`
    /// values or its dictionary would need more than `room` bytes.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn fill(
        &mut self,
        b: &Batch,
        from: usize,
        (c, s): (usize, Scalar),
        (shift, first): (u32, bool),
        max: usize,
        room: &mut usize,
        codes: &mut [u64],
    ) -> bool {
        let stride = b.layout.stride;
        let words = b.words.get(from * stride..b.rows * stride).unwrap_or(&[]);
        let (nw, bit, off) = (c / 64, 1u64 << (c % 64), b.layout.slot(c));
        let keep = if first { 0 } else { u64::MAX };
        if s == Scalar::Str {
            let col = (nw, bit, off);
            let mut at = 0;
            // Rows up to the next value the dictionary lacks in a loop that only reads it,
            // then that value inserted.
            while at < codes.len() {
                let r = if first {
                    self.fill_str::<true>(b, words, col, shift, &mut codes[at..])
                } else {
                    self.fill_str::<false>(b, words, col, shift, &mut codes[at..])
                };
                let Some((i, k)) = r else { break };
                at += i;
                let Some(v) = self.insert(k, max, room) else {
                    return false;
                };
                let code = &mut codes[at];
                *code = (*code & keep) | (v as u64) << shift;
                at += 1;
            }
        } else {
            for (code, r) in codes.iter_mut().zip(words.chunks_exact(stride)) {
                let k = if r[nw] & bit != 0 {
                    [1, 0, 0]
                } else {
                    [2, canon(s, r[off]), 0]
                };
                match self.code(k, max, room) {
                    Some(v) => *code = (*code & keep) | (v as u64) << shift,
                    None => return false,
                }
            }
        }
        true
    }

    /// [`Dict::fill`]'s loop over a str column's rows (`codes[i]` is row `from + i`'s code,
    /// `words` the batch's rows from `from`), while the dictionary holds their values: `Some((i,
    /// k))` at the first row `i` whose value `k` it lacks (its code not written).
    #[inline(always)]
    fn fill_str<const FIRST: bool>(
        &self,
        b: &Batch,
        words: &[u64],
        (nw, bit, off): (usize, u64, usize),
        shift: u32,
        codes: &mut [u64],
    ) -> Option<(usize, [u64; 3])> {
        let stride = b.layout.stride;
        let arena = &b.arena[..];
        // Strings whose 16 bytes from their start lie in the arena: `o < end`.
        let end = arena.len().saturating_sub(15);
        let base = (words.len() / stride).saturating_sub(codes.len());
        let rows = words[base * stride..].chunks_exact(stride);
        for (i, (code, r)) in codes.iter_mut().zip(rows).enumerate() {
            let x = r[off];
            let (o, n) = ((x >> 32) as usize, (x & 0xffff_ffff) as usize);
            let null = r[nw] & bit != 0;
            let k = if !null && n <= 16 && o < end {
                // SAFETY: `o + 16 <= arena.len()` (above).
                let w = unsafe { arena.get_unchecked(o..o + 16) };
                let [mx, my] = STR_MASKS[n];
                [3 + n as u64, read8(w, 0) & mx, read8(w, 8) & my]
            } else if null {
                [1, 0, 0]
            } else if let Some(k) = small_str(arena, o, n) {
                k
            } else {
                *code = u64::MAX;
                continue;
            };
            let v = self.find(k);
            if v == u32::MAX {
                return Some((i, k));
            }
            let c = (v as u64) << shift;
            *code = if FIRST { c } else { *code | c };
        }
        None
    }

    /// The code of `k`, given a new one if absent; `None` as for [`Dict::fill`].
    #[inline(always)]
    fn code(&mut self, k: [u64; 3], max: usize, room: &mut usize) -> Option<u32> {
        let v = self.find(k);
        if v != u32::MAX {
            return Some(v);
        }
        self.insert(k, max, room)
    }

    /// The code of `k`, `u32::MAX` if absent.
    #[inline(always)]
    fn find(&self, k: [u64; 3]) -> u32 {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = dict_slot(k, self.shift) & mask;
        while let Some((sk, v)) = self.slots.get(i) {
            if sk[0] == k[0] && sk[1] == k[1] && sk[2] == k[2] {
                return *v;
            }
            if sk[0] == 0 {
                break;
            }
            i = (i + 1) & mask;
        }
        u32::MAX
    }

    #[cold]
    fn insert(&mut self, k: [u64; 3], max: usize, room: &mut usize) -> Option<u32> {
        if self.len >= max {
            return None;
        }
        // At most a quarter full while small (most probes hit their first slot), half past
        // 1024 slots.
        let load = if self.slots.len() < 1024 { 4 } else { 2 };
        if (self.len + 1) * load > self.slots.len() {
            let n = (self.slots.len() * 2).max(64);
            let more = (n - self.slots.len()) * DICT_SLOT;
            if more > *room {
                return None;
            }
            *room -= more;
            let old = std::mem::replace(&mut self.slots, vec![([0; 3], 0); n]);
            self.shift = 64 - n.trailing_zeros();
            for (sk, v) in old.into_iter().filter(|(sk, _)| sk[0] != 0) {
                self.put(sk, v);
            }
        }
        let v = self.len as u32;
        self.put(k, v);
        self.len += 1;
        Some(v)
    }

    fn put(&mut self, k: [u64; 3], v: u32) {
        let mask = self.slots.len() - 1;
        let mut i = dict_slot(k, self.shift) & mask;
        while self.slots[i].0[0] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = (k, v);
    }
}

/// A string of at most 16 bytes at `arena[o..o + n]` as a dictionary key `[3 + n, x, y]`: its
/// bytes as two little-endian words, zero past its end (one 16-byte read, masked, where the
/// arena has 16 bytes from `o`); `None` for a longer string (or a range out of the arena).
#[inline(always)]
fn small_str(arena: &[u8], o: usize, n: usize) -> Option<[u64; 3]> {
    if n > 16 {
        return None;
    }
    if let Some(w) = arena.get(o..o + 16) {
        let [mx, my] = STR_MASKS[n];
        return Some([3 + n as u64, read8(w, 0) & mx, read8(w, 8) & my]);
    }
    let v = arena.get(o..o + n)?;
    let mut w = [0u8; 16];
    w[..n].copy_from_slice(v);
    Some([3 + n as u64, read8(&w, 0), read8(&w, 8)])
}

/// The masks of the first `n` bytes of two little-endian words (`n` ≤ 16).
const STR_MASKS: [[u64; 2]; 17] = {
    let mut m = [[0u64; 2]; 17];
    let mut n = 1;
    while n <= 16 {
        m[n] = if n < 8 {
            [(1u64 << (8 * n)) - 1, 0]
        } else if n == 8 {
            [u64::MAX, 0]
        } else if n < 16 {
            [u64::MAX, (1u64 << (8 * (n - 8))) - 1]
        } else {
            [u64::MAX, u64::MAX]
        };
        n += 1;
    }
    m
};

/// The slot of `k` in a dictionary of `2^(64 - shift)` slots: the high bits of one multiply
/// (the second word turned by half, so that its bytes reach the high bits too).
#[inline(always)]
fn dict_slot(k: [u64; 3], shift: u32) -> usize {
    ((k[1] ^ k[2].rotate_left(32) ^ (k[0] << 56)).wrapping_mul(P1) >> shift) as usize
}

/// Entries of the small-key cache (see [`GroupTable::group_ids`]).
const CACHE: usize = 256;

/// Index slots from which probe loops prefetch ([`GroupTable::prefetch_ahead`]): 256 KiB of
/// index, some 12k groups (with their keys and states, more than the L1 and L2 caches hold
/// comfortably).
const PREFETCH_MIN_SLOTS: usize = 1 << 15;
/// How many rows ahead of the probe each prefetch runs (see [`GroupTable::prefetch_ahead`]).
const AHEAD_SLOT: usize = 16;
const AHEAD_GROUP: usize = 8;
const AHEAD_KEY: usize = 4;
/// Index slots per 64-byte cache line (see [`GroupTable::first_group`]).
const HINT_SLOTS: usize = 8;
/// Rows per run of [`GroupTable::add`] on a table past the caches.
const FOLD_RUN: usize = 256;

/// The running counts of [`GroupTable::group_ids`]' two shortcuts within one batch: checks of
/// "same key as the previous row" and their hits, tries of the small-key cache and its hits.
#[derive(Clone, Copy, Default)]
struct Probing {
    checks: u32,
    hits: u32,
    tries: u32,
    found: u32,
}

/// A key of one column that three words hold exactly: `(kind, x, y)`, kind 1 a null, 2 a
/// fixed-width value (`x` its canonical word), `3 + len` a string of at most 16 bytes
/// ([`short_words`]); `None` for a longer string. Kind 0 marks an empty cache entry.
#[inline(always)]
fn small_key(b: &Batch, row: usize, c: usize, s: Scalar) -> Option<[u64; 3]> {
    let base = row * b.layout.stride;
    match row_col(b, row, base, c, s) {
        Col::Null => Some([1, 0, 0]),
        Col::Word(x) => Some([2, x, 0]),
        Col::Str(v) if v.len() <= 16 => {
            let (x, y) = short_words(v);
            Some([3 + v.len() as u64, x, y])
        }
        Col::Str(_) => None,
    }
}

/// The inline words ([`small_key`]'s) of an encoded key of one string column (`Enc::Compact`:
/// 0 null, else `1 + len` and the bytes; 255 and a u32 length for a long one): kind 0 for a
/// string longer than 16 bytes (compared at its stored key).
fn inline_key(key: &[u8]) -> [u64; 3] {
    match key.first() {
        Some(0) => [1, 0, 0],
        Some(&n) if (1..=17).contains(&n) => {
            let v = key.get(1..n as usize).unwrap_or(&[]);
            let (x, y) = short_words(v);
            [3 + v.len() as u64, x, y]
        }
        _ => [0, 0, 0],
    }
}

/// Key column `c` (of scalar `s`) of the row at word `base` of `b`.
#[inline(always)]
fn row_col(b: &Batch, row: usize, base: usize, c: usize, s: Scalar) -> Col<'_> {
    if b.words[base + c / 64] >> (c % 64) & 1 == 1 {
        Col::Null
    } else if s == Scalar::Str {
        Col::Str(b.get_str_bytes(row, c))
    } else {
        Col::Word(canon(s, b.words[base + b.layout.slot(c)]))
    }
}

/// The key hash of row `row` of `b` (see [`hash_col`]; the tests check [`batch_hashes`] against it).
#[inline]
fn row_hash(b: &Batch, row: usize, keys: &[(usize, Scalar)]) -> u64 {
    let base = row * b.layout.stride;
    let mut h = HASH_SEED;
    for &(c, s) in keys {
        h = hash_col(h, row_col(b, row, base, c, s));
    }
    h
}

/// The key hashes of rows `from..` of `b` into `out` ([`row_hash`] of each), one column at a
/// time (a tight loop per key column rather than a walk over the key columns per row).
fn batch_hashes(b: &Batch, from: usize, keys: &[(usize, Scalar)], out: &mut Vec<u64>) {
    out.clear();
    out.resize(b.rows.saturating_sub(from), HASH_SEED);
    let stride = b.layout.stride;
    let words = b.words.get(from * stride..b.rows * stride).unwrap_or(&[]);
    for &(c, s) in keys {
        let (nw, bit, off) = (c / 64, 1u64 << (c % 64), b.layout.slot(c));
        let rows = out.iter_mut().zip(words.chunks_exact(stride));
        match s {
            Scalar::Str => {
                for (h, r) in rows {
                    *h = if r[nw] & bit != 0 {
                        hash_col(*h, Col::Null)
                    } else {
                        let (o, n) = ((r[off] >> 32) as usize, (r[off] & 0xffff_ffff) as usize);
                        hash_col(*h, Col::Str(b.arena.get(o..o + n).unwrap_or(&[])))
                    };
                }
            }
            _ => {
                for (h, r) in rows {
                    *h = if r[nw] & bit != 0 {
                        hash_col(*h, Col::Null)
                    } else {
                        hash_col(*h, Col::Word(canon(s, r[off])))
                    };
                }
            }
        }
    }
}

/// Little-endian `b.len() <= 8` bytes as a word (without a call to `memcpy` for the
/// variable length).
#[inline(always)]
fn read_le(b: &[u8]) -> u64 {
    match b.len() {
        8.. => read8(b, 0),
        4..8 => read4(b, 0) | read4(b, b.len() - 4) << (8 * (b.len() - 4)),
        _ => b.iter().rev().fold(0, |x, &c| (x << 8) | c as u64),
    }
}

/// The next column of an encoded key, from `key[*at..]` (a damaged key, from a partial state of
/// another process, gives nulls and empty strings, never a panic).
#[inline]
fn next_col<'a>(key: &'a [u8], at: &mut usize, s: Scalar, enc: Enc) -> Col<'a> {
    let start = *at;
    if enc == Enc::Fixed {
        *at += 9;
        return match key.get(start..start + 9) {
            Some(w) if w[0] != 0 => Col::Word(read_le(&w[1..])),
            _ => Col::Null,
        };
    }
    let Some(&t) = key.get(start) else {
        *at += 1;
        return Col::Null;
    };
    if s == Scalar::Str {
        let (from, len) = match t {
            0 => {
                *at += 1;
                return Col::Null;
            }
            255 => (
                start + 5,
                key.get(start + 1..start + 5).map_or(0, read_le) as usize,
            ),
            _ => (start + 1, t as usize - 1),
        };
        *at = from + len;
        return Col::Str(key.get(from..from + len).unwrap_or(&[]));
    }
    if t == 0 {
        *at += 1;
        return Col::Null;
    }
    let k = (t as usize - 1).min(8);
    *at = start + 1 + k;
    let u = key.get(start + 1..start + 1 + k).map_or(0, read_le);
    Col::Word(from_compact_word(s, u))
}

/// Appends the encoding (`enc`) of the key of `b[row]` to `out`.
///
/// Room for the whole key is reserved once (9 bytes a column, a string's length plus 16), then
/// each column is written through a pointer: a word as one 8-byte store (cut to the bytes it
/// needs), a string of at most 16 bytes as one 16-byte move when the arena has 16 bytes from
/// its start (the bytes past the key land in the reserved room and are cut off).
#[inline]
fn encode_key(out: &mut Vec<u8>, b: &Batch, row: usize, keys: &[(usize, Scalar)], enc: Enc) {
    let base = row * b.layout.stride;
    let Some(words) = b.words.get(base..base + b.layout.stride) else {
        return;
    };
    let arena: &[u8] = &b.arena;
    // Room for every column as a short one (a word or a null: a tag byte and an 8-byte store;
    // a string of at most 16 bytes: its length byte and a 16-byte move); a longer string asks
    // for its own room.
    const COL_ROOM: usize = 17;
    out.reserve(keys.len() * COL_ROOM);
    // SAFETY: `p` stays within the reserved room: `COL_ROOM` bytes for each column left to
    // write are free past it (a longer string reserves its own first, and the pointer is
    // taken again), and the bytes up to `p` are all written before `set_len`.
    unsafe {
        let mut p = out.as_mut_ptr().add(out.len());
        for (j, &(c, s)) in keys.iter().enumerate() {
            let null = words[c / 64] >> (c % 64) & 1 == 1;
            let x = words[b.layout.slot(c)];
            if null {
                match enc {
                    Enc::Fixed => {
                        p.write_bytes(0, 9);
                        p = p.add(9);
                    }
                    Enc::Compact => {
                        p.write(0);
                        p = p.add(1);
                    }
                }
            } else if s == Scalar::Str {
                let (o, n) = ((x >> 32) as usize, (x & 0xffff_ffff) as usize);
                let v = arena.get(o..o + n).unwrap_or(&[]);
                let n = v.len();
                if n > 16 {
                    // Room for it (5 + n) and for the columns after it.
                    let used = p.offset_from(out.as_ptr()) as usize;
                    out.set_len(used);
                    out.reserve(5 + n + (keys.len() - j) * COL_ROOM);
                    p = out.as_mut_ptr().add(used);
                }
                if n < 254 {
                    p.write(1 + n as u8);
                    p = p.add(1);
                } else {
                    p.write(255);
                    p.add(1)
                        .cast::<[u8; 4]>()
                        .write_unaligned((n as u32).to_le_bytes());
                    p = p.add(5);
                }
                match arena.get(o..o + 16) {
                    Some(w) if n <= 16 && n == (x & 0xffff_ffff) as usize => {
                        std::ptr::copy_nonoverlapping(w.as_ptr(), p, 16)
                    }
                    _ => std::ptr::copy_nonoverlapping(v.as_ptr(), p, n),
                }
                p = p.add(n);
            } else {
                let x = canon(s, x);
                match enc {
                    Enc::Fixed => {
                        p.write(1);
                        p.add(1).cast::<u64>().write_unaligned(x.to_le());
                        p = p.add(9);
                    }
                    Enc::Compact => {
                        let u = compact_word(s, x);
                        let k = word_len(u);
                        p.write(1 + k as u8);
                        p.add(1).cast::<u64>().write_unaligned(u.to_le());
                        p = p.add(1 + k);
                    }
                }
            }
        }
        out.set_len(p.offset_from(out.as_ptr()) as usize);
    }
}

/// Whether the stored key `key` (encoded as `enc`) is the key of `b[row]`, compared column by
/// column without encoding the row's.
#[inline(always)]
fn row_matches(key: &[u8], b: &Batch, row: usize, keys: &[(usize, Scalar)], enc: Enc) -> bool {
    let base = row * b.layout.stride;
    let mut at = 0;
    for &(c, s) in keys {
        let same = match (row_col(b, row, base, c, s), enc) {
            (Col::Null, Enc::Fixed) => key.get(at) == Some(&0),
            (Col::Word(x), Enc::Fixed) => {
                key.get(at) == Some(&1) && key.get(at + 1..at + 9).map(read_le) == Some(x)
            }
            (Col::Null, Enc::Compact) => {
                at += 1;
                key.get(at - 1) == Some(&0)
            }
            (Col::Word(x), Enc::Compact) => {
                let u = compact_word(s, x);
                let k = word_len(u);
                let same = key.get(at) == Some(&(1 + k as u8))
                    && key.get(at + 1..at + 1 + k).map(read_le) == Some(u);
                at += 1 + k;
                same
            }
            (Col::Str(v), _) => {
                let n = v.len();
                let from = if n < 254 { at + 1 } else { at + 5 };
                let end = from + n;
                if end > key.len() {
                    return false;
                }
                let head = if n < 254 {
                    key[at] == 1 + n as u8
                } else {
                    key[at] == 255 && read4(key, at + 1) == n as u64
                };
                at = end;
                head && same_bytes(&key[from..end], v)
            }
        };
        if !same {
            return false;
        }
        if enc == Enc::Fixed {
            at += 9;
        }
    }
    at == key.len()
}

pub fn route(key: &[u8], peers: usize) -> u64 {
    route_hash(hash_key(key), peers)
}

/// [`route`] of a key whose [`hash_key`] is `h`.
pub fn route_hash(h: u64, peers: usize) -> u64 {
    // The high bits (the table's index uses the low ones, spill partitions bits 40 and up).
    (h >> 32) % peers.max(1) as u64
}

/// The spill partition (of [`SPILL_FANOUT`]) of a key hashed `h` at spill level `level`: four
/// bits of the hash per level, from bit 40 up (the index uses the low 32 bits, the routing
/// between workers `(h >> 32) % peers`), so up to [`SPILL_LEVELS`] levels.
pub fn spill_partition(h: u64, level: u32) -> usize {
    ((h >> (40 + 4 * level)) & (SPILL_FANOUT as u64 - 1)) as usize
}

/// Partitions per spill level, and the most levels (bits 40..64 of the hash).
pub const SPILL_FANOUT: usize = 16;
pub const SPILL_LEVELS: u32 = 6;

/// The leading columns of a partial-state row that hold the key: its encoding and its hash.
const PARTIAL_KEY_COLS: usize = 2;

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

/// The 64-bit product of `a` and `b` folded (high ^ low): one multiply mixes 16 bytes.
#[inline(always)]
fn mix(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn read8(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

#[inline(always)]
fn read4(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[i..i + 4]);
    u32::from_le_bytes(a) as u64
}

/// A fast, fixed (so the same in every process) hash of an encoded key, in the style of
/// wyhash: 16 bytes per folded multiply, short keys read as two overlapping words. Not
/// DoS-resistant; keys come from the job's own data.
#[inline(always)]
pub fn hash_key(b: &[u8]) -> u64 {
    let n = b.len();
    let (x, y) = if n <= 16 {
        short_words(b)
    } else {
        let mut h = P0;
        let mut i = 0;
        while i + 16 < n {
            h = mix(read8(b, i) ^ P1, read8(b, i + 8) ^ h);
            i += 16;
        }
        (read8(b, n - 16) ^ h, read8(b, n - 8))
    };
    mix(P1 ^ n as u64, mix(x ^ P1, y ^ P0 ^ P2))
}

/// `a == b`, inline for short keys (no call to `memcmp`).
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 4 {
        a.iter().zip(b).all(|(x, y)| x == y)
    } else if n < 8 {
        read4(a, 0) == read4(b, 0) && read4(a, n - 4) == read4(b, n - 4)
    } else if n <= 16 {
        read8(a, 0) == read8(b, 0) && read8(a, n - 8) == read8(b, n - 8)
    } else if (17..=32).contains(&n) {
        read8(a, 0) == read8(b, 0)
            && read8(a, 8) == read8(b, 8)
            && read8(a, n - 16) == read8(b, n - 16)
            && read8(a, n - 8) == read8(b, n - 8)
    } else {
        a == b
    }
}

/// The encoded width of a key column, if fixed.
fn fixed_width(s: Scalar) -> Option<usize> {
    match s {
        Scalar::Str => None,
        _ => Some(9),
    }
}

/// The next key column in `bytes[*at..]` (encoded as `enc`) written to `out[row, col]`;
/// `tail` is `bytes` followed by whatever the key store holds after it (for one fixed-size
/// copy of a short string).
#[inline]
#[allow(clippy::too_many_arguments)]
fn decode_into(
    bytes: &[u8],
    tail: &[u8],
    at: &mut usize,
    s: Scalar,
    enc: Enc,
    out: &mut Batch,
    row: usize,
    col: usize,
) {
    let start = *at;
    match next_col(bytes, at, s, enc) {
        Col::Null => out.set_null(row, col),
        Col::Str(v) => {
            // A short string (its bytes start right after its length byte) with 16 bytes of
            // the key store from there: one fixed-size copy.
            let n = v.len();
            match tail.get(start + 1..start + 17).map(<&[u8; 16]>::try_from) {
                Some(Ok(w)) if n <= 16 && *at == start + 1 + n => {
                    out.set_str_prefix(row, col, w, n)
                }
                _ => out.set_str_bytes(row, col, v),
            }
        }
        Col::Word(x) => match s {
            Scalar::Float => out.set_float(row, col, f64::from_bits(x)),
            Scalar::Bool => out.set_bool(row, col, x != 0),
            Scalar::Null => out.set_null(row, col),
            _ => out.set_int(row, col, x as i64),
        },
    }
}

/// Keys per chunk of fixed-width keys: about this many bytes.
const FIXED_CHUNK: usize = 16 << 10;
/// Variable-width keys: groups per chunk (as a shift), and the first chunk's first capacity.
const VAR_SHIFT: u32 = 12;
const VAR_CHUNK_MIN: usize = 16 << 10;

/// The encoded keys of a table, each stored once, back to back in chunks of a fixed number of
/// groups. Fixed-width chunks are allocated at their final size; a variable-width chunk at the
/// previous chunk's bytes and a thirty-second more, grown by an eighth when that is short (the
/// first one starts at [`VAR_CHUNK_MIN`] and doubles); the memory limit is checked against the
/// exact next allocation. Groups are numbered in insertion order, so once the groups before `g` are
/// written out, the chunks that hold only them can be freed ([`KeyStore::free_before`]) while
/// the rest is emitted.
struct KeyStore {
    chunks: Vec<Vec<u8>>,
    /// Fixed-width keys: `(width, shift)`, key `g` is the `g & (2^shift - 1)`th of chunk
    /// `g >> shift` (found by position: no per-group offset).
    fixed: Option<(usize, u32)>,
    /// Variable-width keys (in chunks of `2^VAR_SHIFT` groups): where each group's key starts
    /// in its chunk `g >> VAR_SHIFT`; it ends where the next group's starts if that is in the
    /// same chunk, else at the chunk's end.
    starts: Vec<u32>,
    /// Bytes of the live chunks.
    chunk_bytes: usize,
    /// Chunks `..freed` are released.
    freed: usize,
}

/// Groups of a chunk of variable-width keys, less one.
const VAR_MASK: usize = (1 << VAR_SHIFT) - 1;

impl KeyStore {
    fn new(width: Option<usize>) -> KeyStore {
        let fixed = width.map(|w| {
            let per = (FIXED_CHUNK / w.max(1)).max(1);
            (w, usize::BITS - 1 - per.leading_zeros())
        });
        KeyStore {
            chunks: Vec::new(),
            fixed,
            starts: Vec::new(),
            chunk_bytes: 0,
            freed: 0,
        }
    }

    fn bytes(&self) -> usize {
        self.chunk_bytes
            + self.starts.capacity() * 4
            + self.chunks.capacity() * std::mem::size_of::<Vec<u8>>()
    }

    #[inline(always)]
    fn get(&self, g: usize) -> &[u8] {
        match self.fixed {
            Some((w, shift)) => {
                let o = (g & ((1 << shift) - 1)) * w;
                &self.chunks[g >> shift][o..o + w]
            }
            None => {
                let chunk = &self.chunks[g >> VAR_SHIFT];
                let end = match self.starts.get(g + 1) {
                    Some(&n) if (g + 1) & VAR_MASK != 0 => n as usize,
                    _ => chunk.len(),
                };
                &chunk[self.starts[g] as usize..end]
            }
        }
    }

    /// Prefetches what [`KeyStore::get`] of `g` reads first: a fixed-width key's bytes, or a
    /// variable-width key's start (its bytes follow with [`KeyStore::prefetch_bytes`]).
    #[inline(always)]
    fn prefetch(&self, g: usize) {
        match self.fixed {
            Some((w, shift)) => {
                if let Some(c) = self.chunks.get(g >> shift) {
                    memhint::prefetch(c.as_ptr().wrapping_add((g & ((1 << shift) - 1)) * w));
                }
            }
            None => memhint::prefetch(self.starts.as_ptr().wrapping_add(g)),
        }
    }

    /// Prefetches the bytes of variable-width key `g` (its start read from `starts`).
    #[inline(always)]
    fn prefetch_bytes(&self, g: usize) {
        if let Some(&s) = self.starts.get(g)
            && let Some(c) = self.chunks.get(g >> VAR_SHIFT)
        {
            memhint::prefetch(c.as_ptr().wrapping_add(s as usize));
        }
    }

    /// [`KeyStore::get`], and the bytes of its chunk from the key's start on.
    #[inline(always)]
    fn get_with_tail(&self, g: usize) -> (&[u8], &[u8]) {
        let key = self.get(g);
        let tail = match self.fixed {
            Some(_) => key,
            None => &self.chunks[g >> VAR_SHIFT][self.starts[g] as usize..],
        };
        (key, tail)
    }

    /// The capacity a push of a `len`-byte key gives its chunk: a new chunk's, a grown one's,
    /// or 0 if the key fits the current chunk.
    #[inline]
    fn next_chunk(&self, len: usize) -> usize {
        match self.fixed {
            Some((w, shift)) => match self.chunks.last() {
                Some(c) if c.len() < w << shift => 0,
                _ => w << shift,
            },
            None => match self.chunks.get(self.starts.len() >> VAR_SHIFT) {
                // The last chunk is full (of groups): a new one about as large.
                None => self
                    .chunks
                    .last()
                    .map_or(VAR_CHUNK_MIN, |c| c.len() + c.len() / 32)
                    .max(len),
                // Short: the first chunk (no estimate) doubles, a later one (sized as the
                // previous) grows by an eighth.
                Some(c) if c.capacity() - c.len() < len => {
                    let more = if self.chunks.len() == 1 {
                        c.capacity()
                    } else {
                        c.capacity() / 8
                    };
                    (c.capacity() + more).max(c.len() + len)
                }
                Some(_) => 0,
            },
        }
    }

    /// What pushing a `len`-byte key takes: the capacity its chunk gets ([`next_chunk`]: 0 if
    /// it fits) and the bytes it would allocate (a grown chunk: its new capacity, the old one
    /// is freed once copied); `None` if it cannot be pushed: a chunk of variable-width keys
    /// holds at most 4 GiB (its starts are `u32`; every chunk's capacity is checked here, so a
    /// key that fits a chunk's room ends within it).
    ///
    /// [`next_chunk`]: KeyStore::next_chunk
    #[inline]
    fn plan(&self, len: usize) -> Option<(usize, usize)> {
        let cap = self.next_chunk(len);
        let extra =
            cap + if self.fixed.is_none() {
                if cap > u32::MAX as usize {
                    return None;
                }
                growth(&self.starts, 1)
            } else {
                0
            } + growth(&self.chunks, 1);
        Some((cap, extra))
    }

    /// Appends the next group's key, `cap` from its [`KeyStore::plan`] (a fixed-width key must
    /// be `width` bytes).
    #[inline]
    fn push(&mut self, key: &[u8], cap: usize) {
        let new = match self.fixed {
            // (A table without keys stores its one empty key in an empty first chunk.)
            Some(_) => cap > 0 || self.chunks.is_empty(),
            None => self.chunks.len() <= self.starts.len() >> VAR_SHIFT,
        };
        if new {
            self.chunks.push(Vec::with_capacity(cap));
            self.chunk_bytes += cap;
        } else if cap > 0
            && let Some(c) = self.chunks.last_mut()
        {
            self.chunk_bytes -= c.capacity();
            c.reserve_exact(cap - c.len());
            self.chunk_bytes += c.capacity();
        }
        let c = self.chunks.len() - 1;
        let chunk = &mut self.chunks[c];
        if self.fixed.is_none() {
            self.starts.push(chunk.len() as u32);
        }
        chunk.extend_from_slice(key);
    }

    /// Frees the chunks that hold only keys of groups before `g` (`g` = the group count: all).
    fn free_before(&mut self, g: usize, groups: usize) {
        let upto = if g >= groups {
            self.chunks.len()
        } else {
            match self.fixed {
                Some((_, shift)) => g >> shift,
                None => g >> VAR_SHIFT,
            }
        };
        while self.freed < upto {
            self.chunk_bytes -= self.chunks[self.freed].capacity();
            self.chunks[self.freed] = Vec::new();
            self.freed += 1;
        }
    }

    /// Forgets every key, keeping the first chunk (if not freed).
    fn clear(&mut self) {
        if self.freed > 0 {
            self.chunks.clear();
        }
        self.chunks.truncate(1);
        if let Some(c) = self.chunks.first_mut() {
            c.clear();
        }
        self.chunk_bytes = self.chunks.iter().map(|c| c.capacity()).sum();
        self.starts.clear();
        self.freed = 0;
    }
}

/// Bytes a vector would take after its next doubling (0 if it has room for `more` items).
fn growth<T>(v: &Vec<T>, more: usize) -> usize {
    if v.len() + more <= v.capacity() {
        0
    } else {
        v.capacity().max(v.len() + more).max(4) * std::mem::size_of::<T>()
    }
}

impl GroupTable {
    pub fn new(layout: GroupLayout, key_types: RowType) -> GroupTable {
        let mut slots = Vec::new();
        let mut words = 0;
        let mut best = 0;
        let mut sets = 0;
        for &(f, arg) in &layout.aggs {
            let scalar = arg.map(|(_, s)| s).unwrap_or(Scalar::Null);
            let slot = match f {
                AggFunc::Count => Slot::Count,
                AggFunc::Sum if scalar == Scalar::Float => Slot::SumFloat,
                AggFunc::Sum => Slot::SumInt,
                AggFunc::Avg => Slot::Avg,
                AggFunc::Min | AggFunc::Max => {
                    best += 1;
                    Slot::Best {
                        max: f == AggFunc::Max,
                        scalar,
                        bit: best - 1,
                    }
                }
                AggFunc::CountDistinct => {
                    sets += 1;
                    Slot::Distinct {
                        scalar,
                        set: sets - 1,
                    }
                }
                AggFunc::First | AggFunc::Last => {
                    best += 2;
                    Slot::Pick {
                        last: f == AggFunc::Last,
                        scalar,
                        bit: best - 2,
                    }
                }
            };
            slots.push((slot, words));
            words += slot.words();
        }
        // One string key column: its key, when short, also as three words beside the states
        // (see `GroupTable::inline`), before the flag words.
        let inline = match layout.keys[..] {
            [(_, Scalar::Str)] => {
                words += 3;
                Some(words - 3)
            }
            _ => None,
        };
        let flag_words = best.div_ceil(64);
        let key_width = layout
            .keys
            .iter()
            .map(|&(_, s)| fixed_width(s))
            .sum::<Option<usize>>();
        let unset_words = slots
            .iter()
            .filter_map(|&(slot, w)| match slot {
                Slot::Best {
                    scalar: Scalar::Str,
                    ..
                }
                | Slot::Pick {
                    scalar: Scalar::Str,
                    ..
                } => Some(w),
                _ => None,
            })
            .collect();
        GroupTable {
            layout,
            key_types,
            slots,
            words: words + flag_words,
            flag_words,
            inline,
            keys: KeyStore::new(key_width),
            enc: if key_width.is_some() {
                Enc::Fixed
            } else {
                Enc::Compact
            },
            unset_words,
            index: memhint::Words::new(),
            groups: 0,
            states: memhint::Words::new(),
            strs: StrStore::default(),
            distinct: (0..sets).map(|_| DistinctSets::default()).collect(),
            pos: [u64::MAX; 2],
            unplaced: 0,
            scratch: Vec::new(),
            gids: Vec::new(),
            hashes: Vec::new(),
            cache: Vec::new(),
            dicts: Dicts::default(),
            dict_bytes: 0,
            span: Span::default(),
            span_bytes: 0,
            limit: usize::MAX,
            group_hashes: None,
        }
    }

    pub fn groups(&self) -> usize {
        self.groups
    }

    /// The bytes this table holds (its allocations).
    pub fn bytes(&self) -> usize {
        self.keys.bytes()
            + self.index.bytes()
            + self.states.bytes()
            + self.group_hashes.as_ref().map_or(0, |v| v.capacity() * 8)
            + self.strs.bytes()
            + self.distinct.iter().map(DistinctSets::bytes).sum::<usize>()
            + self.dict_bytes
            + self.span_bytes
    }

    /// Where the rows of the next `update` are in the input: `hi` = source and split (`source
    /// << 32 | split`), `chunk` = the chunk in the split; a row's position is then `(hi, chunk,
    /// row index)`. `None`: rows without an input position (a `group`'s output, a sort's), which
    /// rank after every positioned row, in the order this table sees them.
    pub fn set_position(&mut self, at: Option<(u64, u64)>) {
        self.pos = match at {
            Some((hi, chunk)) => [hi, chunk],
            None => [u64::MAX; 2],
        };
    }

    /// The most bytes the table may hold: it does not grow past it (`add` and `merge_from`
    /// stop at the row that would need more, before allocating).
    pub fn set_limit(&mut self, bytes: usize) {
        self.limit = bytes;
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Forgets every group and frees the allocations. The limit and the input position of
    /// the rows being added stay (a table released mid-batch to spill goes on with the same
    /// batch, and `first`/`last` must still rank its rows by their position).
    pub fn release(&mut self) {
        let (limit, pos, unplaced) = (self.limit, self.pos, self.unplaced);
        let keep = self.group_hashes.is_some();
        let (dicts_off, span_off) = (self.dicts.off, self.span.off);
        *self = GroupTable::new(self.layout.clone(), self.key_types.clone());
        self.dicts.off = dicts_off;
        self.span.off = span_off;
        self.limit = limit;
        self.pos = pos;
        self.unplaced = unplaced;
        self.set_keep_hashes(keep);
    }

    /// Forgets every group, keeping the allocations.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.index.iter_mut().for_each(|s| *s = 0);
        self.groups = 0;
        self.states.clear();
        self.strs.clear();
        self.distinct.iter_mut().for_each(DistinctSets::clear);
        self.cache.clear();
        self.dicts.forget_groups();
        self.span.forget_groups();
        if let Some(h) = self.group_hashes.as_mut() {
            h.clear();
        }
    }

    /// Keeps each group's key hash (8 bytes a group), so that [`GroupTable::group_hash`] is a
    /// look-up.
    pub fn set_keep_hashes(&mut self, keep: bool) {
        self.group_hashes = keep.then(Vec::new);
    }

    #[inline(always)]
    fn key(&self, g: usize) -> &[u8] {
        self.keys.get(g)
    }

    /// Frees what groups before `g` hold (already emitted by [`GroupTable::emit`], the final
    /// output: the table is not added to again before `clear` or `release`): their keys'
    /// chunks and their states' whole pages, the index (finding a group by its key is over),
    /// and the `count_distinct` values (the final count of each set is in its group's states;
    /// only a partial state needs the values).
    pub fn free_before(&mut self, g: usize) {
        self.keys.free_before(g, self.groups);
        if self.index.capacity() > 0 {
            self.index = memhint::Words::new();
        }
        for d in &mut self.distinct {
            if d.bytes() > 0 {
                *d = DistinctSets::default();
            }
        }
        self.states.discard_prefix(g.min(self.groups) * self.words);
    }

    /// The group whose stored key `same` accepts, among those hashed like `h32`, or the
    /// index slot where a new group of that hash goes.
    #[inline(always)]
    fn probe(&self, h32: u32, same: impl Fn(&[u8]) -> bool) -> Result<usize, usize> {
        self.probe_group(h32, |g| same(self.key(g)))
    }

    /// [`GroupTable::probe`] of a short key `k` ([`small_key`]) of a table with inline keys:
    /// compared with the words beside each candidate's states, exactly (equal words, equal
    /// key; a stored key longer than 16 bytes has kind 0, which no short key has).
    #[inline(always)]
    fn probe_inline(&self, h32: u32, iw: usize, k: [u64; 3]) -> Result<usize, usize> {
        self.probe_group(h32, |g| {
            let at = g * self.words + iw;
            self.states[at] == k[0] && self.states[at + 1] == k[1] && self.states[at + 2] == k[2]
        })
    }

    /// The group hashed like `h32` that `same` accepts, or the index slot where a new group of
    /// that hash goes.
    #[inline(always)]
    fn probe_group(&self, h32: u32, same: impl Fn(usize) -> bool) -> Result<usize, usize> {
        let mask = self.index.len() - 1;
        let mut i = h32 as usize & mask;
        loop {
            let s = self.index[i];
            if s == 0 {
                return Err(i);
            }
            if (s >> 32) as u32 == h32 {
                let g = (s & 0xffff_ffff) as usize - 1;
                if same(g) {
                    return Ok(g);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Whether the index is large enough for [`GroupTable::prefetch_ahead`] to pay (a smaller
    /// one stays in the caches).
    #[inline]
    fn prefetching(&self) -> bool {
        self.index.len() >= PREFETCH_MIN_SLOTS
    }

    /// The group of the first of the index slots from hash `h`'s home slot to the end of its
    /// cache line (at most [`HINT_SLOTS`]) that holds that hash, stopping at an empty slot: a
    /// hint (linear probing leaves about a fifth of the keys past their home slot at the loads
    /// used, nearly always in the same line; a 32-bit hash match is nearly always the group).
    #[inline(always)]
    fn first_group(&self, h: u64) -> Option<usize> {
        let mask = self.index.len().wrapping_sub(1);
        let home = h as u32 as usize & mask;
        let line = self
            .index
            .get(home..(home | (HINT_SLOTS - 1)).min(mask) + 1)?;
        for &s in line {
            if s == 0 {
                return None;
            }
            if (s >> 32) as u32 == h as u32 {
                return Some((s & 0xffff_ffff) as usize - 1);
            }
        }
        None
    }

    /// The software pipeline of a probe loop over a table larger than the caches: called for
    /// row `i` with the key hashes of the rows ahead (`hash(k)` for row `i + k`, `None` past the
    /// end), it prefetches the index slot of row `i + AHEAD_SLOT`, the states and key (or key
    /// start) of row `i + AHEAD_GROUP`'s group (its slot is in the cache by then) and a
    /// variable-width key's bytes for row `i + AHEAD_KEY`, so that the cache misses of many rows
    /// overlap instead of each probe waiting for its own.
    #[inline(always)]
    fn prefetch_ahead(&self, hash: impl Fn(usize) -> Option<u64>) {
        if let Some(h) = hash(AHEAD_SLOT) {
            let mask = self.index.len().wrapping_sub(1);
            memhint::prefetch(self.index.as_ptr().wrapping_add(h as u32 as usize & mask));
        }
        if let Some(h) = hash(AHEAD_GROUP)
            && let Some(g) = self.first_group(h)
        {
            let at = self.states.as_ptr().wrapping_add(g * self.words);
            memhint::prefetch(at);
            if self.inline.is_some() {
                // The inline key is compared there: the state's last word may be on the next line.
                memhint::prefetch(at.wrapping_add(self.words - 1));
            } else {
                self.keys.prefetch(g);
            }
        }
        if self.keys.fixed.is_none()
            && self.inline.is_none()
            && let Some(h) = hash(AHEAD_KEY)
            && let Some(g) = self.first_group(h)
        {
            self.keys.prefetch_bytes(g);
        }
    }

    /// The group of `key` (encoded as this table encodes keys, hashed `h` as
    /// [`GroupTable::group_hash`] hashes it), created if new; `None` if creating it would pass
    /// the table's limit (nothing is changed then).
    #[inline]
    fn find_or_insert(&mut self, h: u64, key: &[u8]) -> Result<Option<usize>, String> {
        // The low bits (the routing between workers uses the high ones).
        if self.index.is_empty() && !self.grow_index(0) {
            return Ok(None);
        }
        match self.probe(h as u32, |k| same_bytes(k, key)) {
            Ok(g) => Ok(Some(g)),
            Err(slot) => self.insert(h, slot, key),
        }
    }

    /// [`GroupTable::find_or_insert_row`] of the few-key path (a new combination: rare), kept
    /// out of line so that the general path keeps its copy inline.
    #[inline(never)]
    fn find_or_insert_new_row(
        &mut self,
        b: &Batch,
        row: usize,
        scratch: &mut Vec<u8>,
    ) -> Result<Option<usize>, String> {
        let h = row_hash(b, row, &self.layout.keys);
        self.find_or_insert_row(h, b, row, scratch)
    }

    /// The group of row `row` of `b` (hashed `h` by [`row_hash`]), created if new (its key
    /// encoded into `scratch` only then); `None` as for [`GroupTable::find_or_insert`].
    #[inline(always)]
    fn find_or_insert_row(
        &mut self,
        h: u64,
        b: &Batch,
        row: usize,
        scratch: &mut Vec<u8>,
    ) -> Result<Option<usize>, String> {
        if self.index.is_empty() && !self.grow_index(0) {
            return Ok(None);
        }
        let (keys, enc) = (&self.layout.keys, self.enc);
        let found = match (self.inline, &keys[..]) {
            (Some(iw), &[(c, s)]) => match small_key(b, row, c, s) {
                Some(k) => self.probe_inline(h as u32, iw, k),
                None => self.probe(h as u32, |k| row_matches(k, b, row, keys, enc)),
            },
            _ => self.probe(h as u32, |k| row_matches(k, b, row, keys, enc)),
        };
        match found {
            Ok(g) => Ok(Some(g)),
            Err(slot) => {
                scratch.clear();
                encode_key(scratch, b, row, &self.layout.keys, self.enc);
                self.insert(h, slot, scratch)
            }
        }
    }

    /// Creates the group of `key` (hashed `h32`, absent) at index slot `i`; `None` if that
    /// would pass the table's limit.
    fn insert(&mut self, h: u64, mut i: usize, key: &[u8]) -> Result<Option<usize>, String> {
        let h32 = h as u32;
        if self.groups >= u32::MAX as usize - 1 {
            return Err("more than 4 billion groups".into());
        }
        let Some((cap, key_extra)) = self.keys.plan(key.len()) else {
            return Err(format!(
                "the keys of {} groups take more than 4 GiB",
                1 << VAR_SHIFT
            ));
        };
        let extra = key_extra
            + self.states.growth_bytes(self.words)
            + self.group_hashes.as_ref().map_or(0, |v| growth(v, 1));
        if extra > 0 && self.bytes() + extra > self.limit {
            return Ok(None);
        }
        if (self.groups + 1) * 4 > self.index.len() * 3 {
            if !self.grow_index(extra) {
                return Ok(None);
            }
            let mask = self.index.len() - 1;
            i = h32 as usize & mask;
            while self.index[i] != 0 {
                i = (i + 1) & mask;
            }
        }
        let g = self.groups;
        self.keys.push(key, cap);
        let start = self.states.len();
        self.states.push_zeros(self.words);
        for &w in &self.unset_words {
            self.states[start + w] = strstore::NONE;
        }
        if let Some(iw) = self.inline {
            let k = inline_key(key);
            for (j, x) in k.into_iter().enumerate() {
                self.states[start + iw + j] = x;
            }
        }
        self.index[i] = ((h32 as u64) << 32) | (g as u64 + 1);
        self.groups += 1;
        if let Some(v) = self.group_hashes.as_mut() {
            v.push(h);
        }
        Ok(Some(g))
    }

    /// Whether the table holds more than its limit: the `count_distinct` sets grew past it
    /// while a batch was folded (sets grow without stopping the batch, at most by that batch's
    /// values). The caller then spills the table, or sends its partial states on.
    pub fn over_limit(&self) -> bool {
        self.bytes() > self.limit
    }

    /// The error of a table that is full (past its limit).
    fn full(&self) -> String {
        crate::runtime::policy::over_budget(self.bytes(), self.limit)
    }

    /// Doubles the index; false if that (and `extra` more bytes) would pass the limit.
    fn grow_index(&mut self, extra: usize) -> bool {
        let n = (self.index.len() * 2).max(16);
        if self.bytes() + n * 8 + extra > self.limit {
            return false;
        }
        let mut index = memhint::Words::zeroed(n);
        let mask = n - 1;
        for &s in self.index.iter() {
            if s != 0 {
                let mut i = (s >> 32) as usize & mask;
                while index[i] != 0 {
                    i = (i + 1) & mask;
                }
                index[i] = s;
            }
        }
        self.index = index;
        true
    }

    /// Folds value `v` (not null) into aggregate `a` of group `g` (`count` adds `n`).
    #[inline]
    fn fold(&mut self, g: usize, a: usize, v: In) -> Result<(), String> {
        let (slot, w) = self.slots[a];
        let base = g * self.words;
        let at = base + w;
        match (slot, v) {
            (Slot::Count, In::Int(n)) => self.states[at] = (self.states[at] as i64 + n) as u64,
            (Slot::SumInt, In::Int(x)) => {
                self.states[at] = (self.states[at] as i64)
                    .checked_add(x)
                    .ok_or_else(|| format!("integer overflow in sum (aggregate {})", a + 1))?
                    as u64
            }
            (Slot::SumFloat, In::Float(x)) => {
                self.states[at] = (f64::from_bits(self.states[at]) + x).to_bits()
            }
            (Slot::Avg, In::Avg(x, n)) => {
                self.states[at] = (f64::from_bits(self.states[at]) + x).to_bits();
                self.states[at + 1] += n;
            }
            (Slot::Best { max, bit, .. }, v) => {
                let fw = base + self.words - self.flag_words + bit / 64;
                let seen = self.states[fw] >> (bit % 64) & 1 == 1;
                self.states[fw] |= 1 << (bit % 64);
                match v {
                    In::Str(s) => {
                        let cur = self.states[at];
                        let better = cur == strstore::NONE || {
                            let ord = s.cmp(self.strs.get(cur));
                            (max && ord.is_gt()) || (!max && ord.is_lt())
                        };
                        if better {
                            self.put_str(at, s);
                        }
                    }
                    In::Float(x) => {
                        let cur = f64::from_bits(self.states[at]);
                        let new = match (seen, max) {
                            (false, _) => x,
                            (true, false) => ops::float_min(cur, x),
                            (true, true) => ops::float_max(cur, x),
                        };
                        self.states[at] = new.to_bits();
                    }
                    In::Int(x) => {
                        let cur = self.states[at] as i64;
                        let new = match (seen, max) {
                            (false, _) => x,
                            (true, false) => cur.min(x),
                            (true, true) => cur.max(x),
                        };
                        self.states[at] = new as u64;
                    }
                    In::Avg(..) => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Adds the rows of `b`. Errors: int sum overflow (a job error, naming the aggregate), or
    /// the table's memory limit.
    pub fn update(&mut self, b: &Batch) -> Result<(), String> {
        match self.add(b, 0)? {
            None => Ok(()),
            Some(_) => Err(self.full()),
        }
    }

    /// Adds rows `from..` of `b`. `Some(r)`: the table is full (a new group would pass its
    /// limit): rows `from..r` are added, rows `r..` are not. Errors: int sum overflow (a job
    /// error, naming the aggregate).
    ///
    /// Two passes: first the group of every row (a row whose key columns hold the same values
    /// as the previous row's reuses its group without encoding or probing), then one tight
    /// loop per aggregate over those rows. A table larger than the caches takes the two passes
    /// per run of [`FOLD_RUN`] rows: the states its probes prefetched are still cached when
    /// they are folded.
    pub fn add(&mut self, b: &Batch, from: usize) -> Result<Option<usize>, String> {
        let mut gids = std::mem::take(&mut self.gids);
        gids.clear();
        gids.reserve(b.rows.saturating_sub(from));
        let r = self.add_rows(b, from, &mut gids);
        self.gids = gids;
        r
    }

    fn add_rows(
        &mut self,
        b: &Batch,
        from: usize,
        gids: &mut Vec<u32>,
    ) -> Result<Option<usize>, String> {
        if !self.dicts.off
            && let Some(r) = self.dict_ids(b, from, gids)
        {
            let stop = r?;
            self.fold_batch(b, from, gids)?;
            return Ok(stop);
        }
        if !self.span.off
            && let Some(r) = self.span_ids(b, from, gids)
        {
            let stop = r?;
            self.fold_batch(b, from, gids)?;
            return Ok(stop);
        }
        let mut hashes = std::mem::take(&mut self.hashes);
        batch_hashes(b, from, &self.layout.keys, &mut hashes);
        let mut probe = Probing::default();
        let mut at = from;
        let r = loop {
            let to = if self.prefetching() {
                at.saturating_add(FOLD_RUN).min(b.rows)
            } else {
                b.rows
            };
            let stop = match self.group_ids(b, from, to, &hashes, &mut probe, gids) {
                Ok(stop) => stop,
                Err(e) => break Err(e),
            };
            if let Err(e) = self.fold_batch(b, at, &gids[at - from..]) {
                break Err(e);
            }
            if stop.is_some() || to >= b.rows {
                break Ok(stop);
            }
            at = to;
        };
        self.hashes = hashes;
        r
    }

    /// Whether row `row`'s key columns hold the same values as row `row - 1`'s (a sufficient
    /// condition for the same group: equal bits encode equally).
    #[inline]
    fn same_key_as_previous(&self, b: &Batch, row: usize) -> bool {
        let stride = b.layout.stride;
        let (cur, prev) = (row * stride, (row - 1) * stride);
        self.layout.keys.iter().all(|&(c, s)| {
            let nw = c / 64;
            let bit = 1u64 << (c % 64);
            let (nc, np) = (b.words[cur + nw] & bit, b.words[prev + nw] & bit);
            if nc != np {
                return false;
            }
            if nc != 0 {
                return true;
            }
            let slot = b.layout.slot(c);
            let (x, y) = (b.words[cur + slot], b.words[prev + slot]);
            x == y
                || (s == Scalar::Str
                    && same_bytes(b.get_str_bytes(row, c), b.get_str_bytes(row - 1, c)))
        })
    }

    /// The group of every row `from + gids.len()..to` of `b` (created if new), appended to
    /// `gids` (which holds rows `from..` before them); `Some(r)` if the table is full at row
    /// `r` (`gids` then ends before `r`). `hashes[i]` is the key hash of row `from + i`, for
    /// every row of the batch (also past `to`: the prefetches look ahead); `probe` carries
    /// the running checks below from one run of rows to the next.
    ///
    /// A row's key is hashed and compared from the batch's columns (encoded only for a new
    /// group). Whether a row has the previous row's key is checked while that pays: after the
    /// first 32 checks of a batch, only while at least a quarter of them hit (sorted or
    /// clustered keys), so random keys do not pay for the check.
    fn group_ids(
        &mut self,
        b: &Batch,
        from: usize,
        to: usize,
        hashes: &[u64],
        probe: &mut Probing,
        gids: &mut Vec<u32>,
    ) -> Result<Option<usize>, String> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut stop = None;
        let Probing {
            mut checks,
            mut hits,
            mut tries,
            mut found,
        } = *probe;
        // A key of one column: the small-key cache, while it hits at least half the time
        // (after its first 64 tries of the batch), so that many distinct keys do not pay for it.
        let one = match self.layout.keys[..] {
            [(c, s)] => Some((c, s)),
            _ => None,
        };
        if one.is_some() && self.cache.is_empty() {
            self.cache = vec![([0; 3], 0); CACHE];
        }
        let mut pf = self.prefetching();
        for row in from + gids.len()..to {
            if pf {
                let at = row - from;
                self.prefetch_ahead(|k| hashes.get(at + k).copied());
            }
            if row > from && (checks < 32 || hits * 4 >= checks) {
                checks += 1;
                if self.same_key_as_previous(b, row) {
                    hits += 1;
                    let g = gids[row - from - 1];
                    gids.push(g);
                    continue;
                }
            }
            let h = hashes[row - from];
            let cached = match one {
                Some((c, s)) if tries < 64 || found * 2 >= tries => small_key(b, row, c, s),
                _ => None,
            };
            let slot = (h >> 24) as usize % CACHE;
            if let Some(k) = cached {
                tries += 1;
                let (ck, g) = self.cache[slot];
                if ck == k {
                    found += 1;
                    gids.push(g);
                    continue;
                }
            }
            match self.find_or_insert_row(h, b, row, &mut scratch) {
                Ok(Some(g)) => {
                    if let Some(k) = cached {
                        self.cache[slot] = (k, g as u32);
                    }
                    gids.push(g as u32);
                    // (The index may have grown past the threshold.)
                    pf = pf || (g + 1 == self.groups && self.prefetching());
                }
                Ok(None) => {
                    stop = Some(row);
                    break;
                }
                Err(e) => {
                    self.scratch = scratch;
                    return Err(e);
                }
            }
        }
        self.scratch = scratch;
        *probe = Probing {
            checks,
            hits,
            tries,
            found,
        };
        Ok(stop)
    }

    /// The bytes the few-key path may still allocate: at most an eighth of the table's limit
    /// in all (the groups keep the rest), and no more than is left under it.
    fn dict_room(&self) -> usize {
        (self.limit / 8)
            .saturating_sub(self.dict_bytes)
            .min(self.limit.saturating_sub(self.bytes()))
    }

    /// The few-key path of [`GroupTable::group_ids`]: each key column's values are mapped to
    /// dense codes by its dictionary, one column at a time, and a row's combined code to its
    /// group (hashed, probed and encoded only when the combination is new). `None` if the path
    /// is off or turns off in this batch (a column with more than its dictionary's values, or
    /// the dictionaries would pass the table's limit) before any row was added: the caller
    /// goes the general way.
    fn dict_ids(
        &mut self,
        b: &Batch,
        from: usize,
        gids: &mut Vec<u32>,
    ) -> Option<Result<Option<usize>, String>> {
        let mut d = std::mem::take(&mut self.dicts);
        let keys = &self.layout.keys;
        if d.cols.is_empty() {
            if keys.is_empty() || keys.len() > DICT_COLS {
                d.off = true;
                self.dicts = d;
                return None;
            }
            d.cols = (0..keys.len()).map(|_| Dict::default()).collect();
            d.bits = (64 / keys.len() as u32).min(16);
        }
        let max = DICT_MAX.min((1 << d.bits) - 1);
        let mut room = self.dict_room();
        let mut codes = std::mem::take(&mut d.codes);
        // Not zeroed: the first column's codes replace what is there.
        codes.resize(b.rows.saturating_sub(from), 0);
        let mut ok = true;
        for (i, &key) in keys.iter().enumerate() {
            let shift = (i as u32 * d.bits, i == 0);
            ok = d.cols[i].fill(b, from, key, shift, max, &mut room, &mut codes);
            if !ok {
                break;
            }
        }
        if !ok {
            self.dict_bytes = 0;
            self.dicts = Dicts {
                off: true,
                ..Dicts::default()
            };
            return None;
        }
        self.dict_bytes = d.bytes();
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut stop = None;
        let mut result = Ok(());
        let mut i = 0;
        while i < codes.len() {
            // The rows of known combinations, in a tight loop.
            i += if d.cols.len() == 1 {
                known(&codes[i..], gids, |c| d.direct.get(c as usize).copied())
            } else {
                known(&codes[i..], gids, |c| d.group(c))
            };
            let Some(&code) = codes.get(i) else { break };
            // A new combination (or a key a dictionary does not hold: a long string).
            let row = from + i;
            match self.find_or_insert_new_row(b, row, &mut scratch) {
                Ok(Some(g)) => {
                    if code != u64::MAX {
                        let room = self.dict_room();
                        d.remember(code, g as u32, room);
                        self.dict_bytes = d.bytes();
                    }
                    gids.push(g as u32)
                }
                Ok(None) => {
                    stop = Some(row);
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            i += 1;
        }
        self.scratch = scratch;
        d.codes = codes;
        if d.combos >= COMBO_MAX {
            // Many combinations: their map costs what the index does; go the general way.
            d = Dicts {
                off: true,
                ..Dicts::default()
            };
            self.dict_bytes = 0;
        }
        self.dicts = d;
        Some(result.map(|()| stop))
    }

    /// The range path of [`GroupTable::add_rows`] (see [`Span`]): the group of each row
    /// `from..` of `b` pushed to `gids`, found by its key's value; hashed, probed and encoded
    /// only for a value not seen yet. `None` if the path is off or turns off for this batch
    /// (not one int key column; values spanning too much), before any row was added.
    fn span_ids(
        &mut self,
        b: &Batch,
        from: usize,
        gids: &mut Vec<u32>,
    ) -> Option<Result<Option<usize>, String>> {
        let c = match self.layout.keys[..] {
            [(c, Scalar::Int)] => c,
            _ => {
                self.span.off = true;
                return None;
            }
        };
        let stride = b.layout.stride;
        let (nw, bit, off) = (c / 64, 1u64 << (c % 64), b.layout.slot(c));
        let words = b.words.get(from * stride..b.rows * stride).unwrap_or(&[]);
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for r in words.chunks_exact(stride) {
            if r[nw] & bit == 0 {
                lo = lo.min(r[off] as i64);
                hi = hi.max(r[off] as i64);
            }
        }
        let room = (self.limit / 8)
            .saturating_sub(self.span_bytes)
            .min(self.limit.saturating_sub(self.bytes()));
        if lo <= hi && !self.span.cover(lo, hi, room) {
            self.span = Span {
                off: true,
                ..Span::default()
            };
            self.span_bytes = 0;
            return None;
        }
        self.span_bytes = self.span.bytes();
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = self.span_rows(b, from, c, gids, &mut scratch);
        self.scratch = scratch;
        Some(r)
    }

    /// The loop of [`GroupTable::span_ids`] over rows `from..` of `b` (key column `c`, its
    /// values within the range): `Some(r)` if the table is full at row `r`.
    fn span_rows(
        &mut self,
        b: &Batch,
        from: usize,
        c: usize,
        gids: &mut Vec<u32>,
        scratch: &mut Vec<u8>,
    ) -> Result<Option<usize>, String> {
        let stride = b.layout.stride;
        let (nw, bit, off) = (c / 64, 1u64 << (c % 64), b.layout.slot(c));
        let words = b.words.get(from * stride..b.rows * stride).unwrap_or(&[]);
        gids.reserve(words.len() / stride.max(1));
        let base = self.span.lo;
        for (i, r) in words.chunks_exact(stride).enumerate() {
            let at = (r[nw] & bit == 0).then(|| (r[off] as i64).wrapping_sub(base) as usize);
            if let Some(&mut g) = self.span.slot(at)
                && g != u32::MAX
            {
                gids.push(g);
                continue;
            }
            let Some(g) = self.find_or_insert_new_row(b, from + i, scratch)? else {
                return Ok(Some(from + i));
            };
            if let Some(slot) = self.span.slot(at) {
                *slot = g as u32;
            }
            gids.push(g as u32);
        }
        Ok(None)
    }

    /// Folds the aggregate arguments of rows `from..from + gids.len()` of `b` into group
    /// `gids[row - from]`, one loop per aggregate.
    fn fold_batch(&mut self, b: &Batch, from: usize, gids: &[u32]) -> Result<(), String> {
        let stride = b.layout.stride;
        let words = self.words;
        for a in 0..self.slots.len() {
            let (slot, w) = self.slots[a];
            let arg = self.layout.aggs[a].1;
            if slot == Slot::Count {
                let st = &mut self.states;
                for &g in gids {
                    st[g as usize * words + w] += 1;
                }
                continue;
            }
            let Some((col, scalar)) = arg else {
                continue;
            };
            let (nw, bit, off) = (col / 64, 1u64 << (col % 64), b.layout.slot(col));
            let rows = b.words[from * stride..].chunks_exact(stride).zip(gids);
            let st = &mut self.states;
            match (slot, scalar) {
                (Slot::SumInt, _) => {
                    for (r, &g) in rows {
                        if r[nw] & bit == 0 {
                            let at = g as usize * words + w;
                            st[at] =
                                (st[at] as i64).checked_add(r[off] as i64).ok_or_else(|| {
                                    format!("integer overflow in sum (aggregate {})", a + 1)
                                })? as u64;
                        }
                    }
                }
                (Slot::SumFloat, _) => {
                    for (r, &g) in rows {
                        if r[nw] & bit == 0 {
                            let at = g as usize * words + w;
                            st[at] = (f64::from_bits(st[at]) + f64::from_bits(r[off])).to_bits();
                        }
                    }
                }
                (Slot::Avg, _) => {
                    let add = |st: &mut [u64], g: u32, x: f64| {
                        let at = g as usize * words + w;
                        let p = &mut st[at..at + 2];
                        p[0] = (f64::from_bits(p[0]) + x).to_bits();
                        p[1] += 1;
                    };
                    if scalar == Scalar::Float {
                        for (r, &g) in rows {
                            if r[nw] & bit == 0 {
                                add(st, g, f64::from_bits(r[off]));
                            }
                        }
                    } else {
                        for (r, &g) in rows {
                            if r[nw] & bit == 0 {
                                add(st, g, r[off] as i64 as f64);
                            }
                        }
                    }
                }
                (
                    Slot::Best {
                        max,
                        bit: flag,
                        scalar,
                    },
                    _,
                ) if scalar != Scalar::Str => {
                    // min/max of a fixed-width value, as `fold` does it, in one loop.
                    let (fw, fb) = (words - self.flag_words + flag / 64, 1u64 << (flag % 64));
                    let float = scalar == Scalar::Float;
                    for (r, &g) in rows {
                        if r[nw] & bit != 0 {
                            continue;
                        }
                        let base = g as usize * words;
                        let seen = st[base + fw] & fb != 0;
                        st[base + fw] |= fb;
                        let (cur, x) = (st[base + w], r[off]);
                        st[base + w] = if !seen {
                            x
                        } else if float {
                            let (c, y) = (f64::from_bits(cur), f64::from_bits(x));
                            if max {
                                ops::float_max(c, y).to_bits()
                            } else {
                                ops::float_min(c, y).to_bits()
                            }
                        } else if max {
                            (cur as i64).max(x as i64) as u64
                        } else {
                            (cur as i64).min(x as i64) as u64
                        };
                    }
                }
                (Slot::Distinct { .. }, _) => {
                    let mut v = Vec::new();
                    for (i, &g) in gids.iter().enumerate() {
                        let row = from + i;
                        if b.is_null(row, col) {
                            continue;
                        }
                        v.clear();
                        encode_key(&mut v, b, row, &[(col, scalar)], Enc::Compact);
                        self.insert_distinct(g as usize, a, &v);
                    }
                }
                (Slot::Pick { .. }, _) => {
                    let [hi, chunk] = self.pos;
                    let unplaced = self.unplaced;
                    for (i, &g) in gids.iter().enumerate() {
                        let row = from + i;
                        let at = if hi == u64::MAX {
                            [hi, chunk, unplaced + row as u64]
                        } else {
                            [hi, chunk, row as u64]
                        };
                        let v = (!b.is_null(row, col)).then(|| match scalar {
                            Scalar::Float => In::Float(b.get_float(row, col)),
                            Scalar::Str => In::Str(b.get_str_bytes(row, col)),
                            _ => In::Int(b.get_int(row, col)),
                        });
                        self.pick(g as usize, a, v, at);
                    }
                }
                _ => {
                    for (i, &g) in gids.iter().enumerate() {
                        let row = from + i;
                        if b.is_null(row, col) {
                            continue;
                        }
                        let v = match scalar {
                            Scalar::Float => In::Float(b.get_float(row, col)),
                            Scalar::Str => In::Str(b.get_str_bytes(row, col)),
                            _ => In::Int(b.get_int(row, col)),
                        };
                        self.fold(g as usize, a, v)?;
                    }
                }
            }
        }
        if self.pos[0] == u64::MAX {
            self.unplaced += b.rows as u64;
        }
        Ok(())
    }

    /// Stores `x` as the string of state word `at` (a word of `strs`; `strstore::NONE`: none
    /// yet), and compacts `strs` when replaced strings have come to outweigh the live ones.
    fn put_str(&mut self, at: usize, x: &[u8]) {
        self.strs.put(&mut self.states[at], x);
        if self.strs.wants_compaction() {
            self.compact_strs();
        }
    }

    /// Compacts `strs` over the replaced strings, rewriting every state's word.
    #[cold]
    #[inline(never)]
    fn compact_strs(&mut self) {
        // The string state words are those that start unset.
        let words = std::mem::take(&mut self.unset_words);
        let mut refs = Vec::new();
        for g in 0..self.groups {
            for &w in &words {
                let at = g * self.words + w;
                if self.states[at] != strstore::NONE {
                    refs.push((self.states[at], at));
                }
            }
        }
        self.strs.compact(&mut refs);
        for (word, at) in refs {
            self.states[at] = word;
        }
        self.unset_words = words;
    }

    /// Adds the encoded value `v` to group `g`'s set of aggregate `a` (`count_distinct`).
    fn insert_distinct(&mut self, g: usize, a: usize, v: &[u8]) {
        let (Slot::Distinct { set, .. }, w) = self.slots[a] else {
            return;
        };
        let at = g * self.words + w;
        let mut head = self.states[at];
        if self.distinct[set].insert(g as u32, &mut head, v) {
            self.states[at] = head;
            self.states[at + 1] += 1;
        }
    }

    /// Keeps `v` (`None`: null) at input position `at` as group `g`'s `first`/`last` (aggregate
    /// `a`) if it comes before (after) the one kept.
    fn pick(&mut self, g: usize, a: usize, v: Option<In>, at: [u64; 3]) {
        let (Slot::Pick { last, bit, .. }, w) = self.slots[a] else {
            return;
        };
        let base = g * self.words;
        let fw = base + self.words - self.flag_words + bit / 64;
        let (seen, null) = (1u64 << (bit % 64), 1u64 << ((bit + 1) % 64));
        let fw_null = base + self.words - self.flag_words + (bit + 1) / 64;
        let s = base + w;
        let cur = [self.states[s + 1], self.states[s + 2], self.states[s + 3]];
        let take = self.states[fw] & seen == 0 || if last { at > cur } else { at < cur };
        if !take {
            return;
        }
        self.states[fw] |= seen;
        self.states[s + 1..s + 4].copy_from_slice(&at);
        match v {
            None => self.states[fw_null] |= null,
            Some(v) => {
                self.states[fw_null] &= !null;
                match v {
                    In::Str(x) => self.put_str(s, x),
                    In::Float(x) => self.states[s] = x.to_bits(),
                    In::Int(x) => self.states[s] = x as u64,
                    In::Avg(..) => {}
                }
            }
        }
    }

    /// Columns of a partial-state row (`emit_partial` / `merge`): the key as its encoding
    /// (bytes in a str slot, not necessarily UTF-8: only `merge` reads it) and its
    /// [`hash_key`] (so the owner neither re-encodes nor re-hashes it), then per aggregate its
    /// state: count, sum → one column; min/max → the value (null if none); avg → float sum
    /// and int count.
    pub fn partial_columns(&self) -> usize {
        PARTIAL_KEY_COLS
            + self
                .slots
                .iter()
                .map(|(s, _)| s.partial_columns())
                .sum::<usize>()
    }

    /// The column types of a partial-state row (see [`GroupTable::partial_columns`]).
    pub fn partial_types(&self) -> Vec<Scalar> {
        let mut t = vec![Scalar::Str, Scalar::Int];
        for &(slot, _) in &self.slots {
            match slot {
                Slot::Count | Slot::SumInt => t.push(Scalar::Int),
                Slot::SumFloat => t.push(Scalar::Float),
                Slot::Avg => t.extend([Scalar::Float, Scalar::Int]),
                Slot::Best { scalar, .. } => t.push(scalar),
                Slot::Distinct { .. } => t.push(Scalar::Str),
                Slot::Pick { scalar, .. } => {
                    t.extend([scalar, Scalar::Int, Scalar::Int, Scalar::Int])
                }
            }
        }
        t
    }

    /// The hash of group `g`'s key, as [`row_hash`] hashes a row with that key (the same in
    /// every process for the same key).
    pub fn group_hash(&self, g: usize) -> u64 {
        if let Some(&h) = self.group_hashes.as_ref().and_then(|v| v.get(g)) {
            return h;
        }
        let key = self.key(g);
        let mut at = 0;
        let mut h = HASH_SEED;
        for &(_, s) in &self.layout.keys {
            h = hash_col(h, next_col(key, &mut at, s, self.enc));
        }
        h
    }

    /// Writes group `g`'s key into columns `0..keys` of `out[r]`.
    fn write_key(&self, g: usize, out: &mut Batch, r: usize) {
        let (bytes, tail) = self.keys.get_with_tail(g);
        let mut at = 0;
        for (i, f) in self.key_types.fields.iter().enumerate() {
            decode_into(bytes, tail, &mut at, f.ty.scalar, self.enc, out, r, i);
        }
    }

    /// Writes aggregate `a` of group `g` to `out[r, c]` (min/max: null if none; the final
    /// value, or for a partial row the state).
    fn write_state(&self, g: usize, a: usize, out: &mut Batch, r: usize, c: usize, partial: bool) {
        let (slot, w) = self.slots[a];
        let base = g * self.words;
        let x = self.states[base + w];
        match slot {
            Slot::Count | Slot::SumInt => out.set_int(r, c, x as i64),
            Slot::SumFloat => out.set_float(r, c, f64::from_bits(x)),
            Slot::Avg => {
                let n = self.states[base + w + 1];
                if partial {
                    out.set_float(r, c, f64::from_bits(x));
                    out.set_int(r, c + 1, n as i64);
                } else if n == 0 {
                    out.set_null(r, c);
                } else {
                    out.set_float(r, c, f64::from_bits(x) / n as f64);
                }
            }
            Slot::Distinct { set, .. } => {
                if partial {
                    let mut all = Vec::new();
                    for v in self.distinct[set].values(x) {
                        all.extend_from_slice(v);
                    }
                    out.set_str_bytes(r, c, &all);
                } else {
                    out.set_int(r, c, self.states[base + w + 1] as i64);
                }
            }
            Slot::Best { scalar, bit, .. } | Slot::Pick { scalar, bit, .. } => {
                let flag = |bit: usize| {
                    let fw = base + self.words - self.flag_words + bit / 64;
                    self.states[fw] >> (bit % 64) & 1 == 1
                };
                if let Slot::Pick { .. } = slot
                    && partial
                {
                    for k in 1..4 {
                        out.set_int(r, c + k, self.states[base + w + k] as i64);
                    }
                }
                if !flag(bit) || (matches!(slot, Slot::Pick { .. }) && flag(bit + 1)) {
                    out.set_null(r, c);
                    return;
                }
                match scalar {
                    Scalar::Str => {
                        out.set_str_bytes(r, c, self.strs.get(x));
                    }
                    Scalar::Float => out.set_float(r, c, f64::from_bits(x)),
                    Scalar::Bool => out.set_bool(r, c, x != 0),
                    Scalar::Null => out.set_null(r, c),
                    Scalar::Int | Scalar::Timestamp => out.set_int(r, c, x as i64),
                }
            }
        }
    }

    /// Appends group `g`'s key (hashed `h`: [`GroupTable::group_hash`]) and aggregate states
    /// to `out` as one partial-state row.
    pub fn emit_partial(&self, g: usize, h: u64, out: &mut Batch) {
        let plain = self
            .slots
            .iter()
            .all(|(s, _)| matches!(s, Slot::Count | Slot::SumInt | Slot::SumFloat | Slot::Avg));
        if plain && out.layout.stride == 1 + self.partial_columns() {
            // Count, sum and avg states are never null: the row's words as they are.
            let key = self.key(g);
            let arena = out.arena.vec_mut();
            let off = arena.len();
            arena.extend_from_slice(key);
            out.words.push(0);
            out.words.push(((off as u64) << 32) | key.len() as u64);
            out.words.push(h);
            let base = g * self.words;
            for &(slot, w) in &self.slots {
                out.words.push(self.states[base + w]);
                if slot == Slot::Avg {
                    out.words.push(self.states[base + w + 1]);
                }
            }
            out.rows += 1;
            return;
        }
        let r = out.push_row();
        out.set_str_bytes(r, 0, self.key(g));
        out.set_int(r, 1, h as i64);
        let mut c = PARTIAL_KEY_COLS;
        for a in 0..self.slots.len() {
            self.write_state(g, a, out, r, c, true);
            c += self.slots[a].0.partial_columns();
        }
    }

    /// About the bytes of a partial-state row's key (the average over the table's groups), to
    /// size the batches [`GroupTable::emit_partial`] fills.
    pub fn partial_key_bytes(&self) -> usize {
        self.keys.chunk_bytes / self.groups.max(1) + 1
    }

    /// Writes every row of `b` as the partial-state row of a group of that row alone (what
    /// `add` of the row into an empty table and `emit_partial` would give, without the table)
    /// to `parts[route_hash(h, parts.len())]`: a pre-aggregation that does not reduce (nearly
    /// every key new) passes its rows on this way.
    pub fn row_partials(&mut self, b: &Batch, parts: &mut [Batch]) {
        if parts.is_empty() {
            return;
        }
        let mut hashes = std::mem::take(&mut self.hashes);
        let mut scratch = std::mem::take(&mut self.scratch);
        batch_hashes(b, 0, &self.layout.keys, &mut hashes);
        let [hi, chunk] = self.pos;
        // Room in every part for its rows, asked for once (the parts cross to other workers
        // and are not recycled, so they would otherwise grow by doubling): their words, and
        // their keys at about this batch's string bytes per row plus 9 bytes a key column.
        let peers = parts.len();
        let mut counts = vec![0usize; peers];
        for &h in &hashes {
            counts[route_hash(h, peers) as usize] += 1;
        }
        let key_room = self.layout.keys.len() * 9 + b.arena.len() / b.rows.max(1) + 1;
        for (out, &n) in parts.iter_mut().zip(&counts) {
            out.words.reserve(n * out.layout.stride);
            out.arena.vec_mut().reserve(n * key_room + 64);
        }
        // Plain states (count, sum, avg: never null) straight into the rows' words, the key
        // encoded straight into the part's arena.
        let plain = self
            .slots
            .iter()
            .all(|(s, _)| matches!(s, Slot::Count | Slot::SumInt | Slot::SumFloat | Slot::Avg));
        if plain
            && parts
                .iter()
                .all(|o| o.layout.stride == 1 + self.partial_columns())
        {
            for (row, &h) in hashes.iter().enumerate() {
                let out = &mut parts[route_hash(h, peers) as usize];
                let arena = out.arena.vec_mut();
                let off = arena.len();
                encode_key(arena, b, row, &self.layout.keys, self.enc);
                let len = arena.len() - off;
                let words = &mut out.words;
                words.push(0);
                words.push(((off as u64) << 32) | len as u64);
                words.push(h);
                for (&(slot, _), &(_, arg)) in self.slots.iter().zip(&self.layout.aggs) {
                    let v = arg.filter(|&(col, _)| !b.is_null(row, col));
                    match slot {
                        Slot::Count => words.push(1),
                        Slot::SumInt => words.push(v.map_or(0, |(col, _)| b.raw(row, col))),
                        Slot::SumFloat => words.push(v.map_or(0, |(col, _)| b.raw(row, col))),
                        _ => {
                            let x = v.map_or(0.0, |(col, s)| {
                                if s == Scalar::Float {
                                    b.get_float(row, col)
                                } else {
                                    b.get_int(row, col) as f64
                                }
                            });
                            words.push(x.to_bits());
                            words.push(v.is_some() as u64);
                        }
                    }
                }
                out.rows += 1;
            }
            if hi == u64::MAX {
                self.unplaced += b.rows as u64;
            }
            self.hashes = hashes;
            self.scratch = scratch;
            return;
        }
        for (row, &h) in hashes.iter().enumerate() {
            let out = &mut parts[route_hash(h, parts.len()) as usize];
            scratch.clear();
            encode_key(&mut scratch, b, row, &self.layout.keys, self.enc);
            let r = out.push_row();
            out.set_str_bytes(r, 0, &scratch);
            out.set_int(r, 1, h as i64);
            let mut c = PARTIAL_KEY_COLS;
            for (&(slot, _), &(_, arg)) in self.slots.iter().zip(&self.layout.aggs) {
                // The argument, if not null (push_row left every column null).
                let v = arg.filter(|&(col, _)| !b.is_null(row, col));
                let int = |(col, _): (usize, Scalar)| b.get_int(row, col);
                let float = |(col, _): (usize, Scalar)| b.get_float(row, col);
                match slot {
                    Slot::Count => out.set_int(r, c, 1),
                    Slot::SumInt => out.set_int(r, c, v.map_or(0, int)),
                    Slot::SumFloat => out.set_float(r, c, v.map_or(0.0, float)),
                    Slot::Avg => {
                        let x = v.map_or(0.0, |(col, s)| {
                            if s == Scalar::Float {
                                b.get_float(row, col)
                            } else {
                                b.get_int(row, col) as f64
                            }
                        });
                        out.set_float(r, c, x);
                        out.set_int(r, c + 1, v.is_some() as i64);
                    }
                    Slot::Distinct { scalar, .. } => {
                        let mut one = Vec::new();
                        if let Some((col, _)) = v {
                            encode_key(&mut one, b, row, &[(col, scalar)], Enc::Compact);
                        }
                        out.set_str_bytes(r, c, &one);
                    }
                    Slot::Best { scalar, .. } | Slot::Pick { scalar, .. } => {
                        if let Slot::Pick { .. } = slot {
                            let at = if hi == u64::MAX {
                                [hi, chunk, self.unplaced + row as u64]
                            } else {
                                [hi, chunk, row as u64]
                            };
                            for (k, x) in at.into_iter().enumerate() {
                                out.set_int(r, c + 1 + k, x as i64);
                            }
                        }
                        if let Some((col, _)) = v {
                            match scalar {
                                Scalar::Str => out.set_str_bytes(r, c, b.get_str_bytes(row, col)),
                                Scalar::Float => out.set_float(r, c, b.get_float(row, col)),
                                _ => out.set_int(r, c, b.get_int(row, col)),
                            }
                        }
                    }
                }
                c += slot.partial_columns();
            }
        }
        if hi == u64::MAX {
            self.unplaced += b.rows as u64;
        }
        self.hashes = hashes;
        self.scratch = scratch;
    }

    /// Merges partial-state rows (from `emit_partial` of other tables with the same layout).
    pub fn merge(&mut self, b: &Batch) -> Result<(), String> {
        match self.merge_from(b, 0)? {
            None => Ok(()),
            Some(_) => Err(self.full()),
        }
    }

    /// Merges partial-state rows `from..` of `b`; `Some(r)` as for [`GroupTable::add`].
    pub fn merge_from(&mut self, b: &Batch, from: usize) -> Result<Option<usize>, String> {
        for row in from..b.rows {
            if self.prefetching() {
                self.prefetch_ahead(|k| (row + k < b.rows).then(|| b.get_int(row + k, 1) as u64));
            }
            let key = b.get_str_bytes(row, 0);
            if let Some((w, _)) = self.keys.fixed
                && key.len() != w
            {
                return Err(format!(
                    "a damaged partial group state (a key of {} bytes, not {w})",
                    key.len()
                ));
            }
            let Some(g) = self.find_or_insert(b.get_int(row, 1) as u64, key)? else {
                return Ok(Some(row));
            };
            let mut c = PARTIAL_KEY_COLS;
            for a in 0..self.slots.len() {
                let (slot, _) = self.slots[a];
                let v = match slot {
                    Slot::Count => {
                        let at = g * self.words + self.slots[a].1;
                        self.states[at] = self.states[at].wrapping_add(b.get_int(row, c) as u64);
                        None
                    }
                    Slot::SumFloat => {
                        let at = g * self.words + self.slots[a].1;
                        let x = f64::from_bits(self.states[at]) + b.get_float(row, c);
                        self.states[at] = x.to_bits();
                        None
                    }
                    Slot::SumInt => Some(In::Int(b.get_int(row, c))),
                    Slot::Avg => Some(In::Avg(b.get_float(row, c), b.get_int(row, c + 1) as u64)),
                    Slot::Best { scalar, .. } if !b.is_null(row, c) => Some(match scalar {
                        Scalar::Float => In::Float(b.get_float(row, c)),
                        Scalar::Str => In::Str(b.get_str_bytes(row, c)),
                        _ => In::Int(b.get_int(row, c)),
                    }),
                    Slot::Best { .. } => None,
                    Slot::Distinct { scalar, .. } => {
                        let all = b.get_str_bytes(row, c);
                        let mut at = 0;
                        while let Some(v) = next_encoded(all, &mut at, scalar) {
                            self.insert_distinct(g, a, v);
                        }
                        None
                    }
                    Slot::Pick { scalar, .. } => {
                        let v = (!b.is_null(row, c)).then(|| match scalar {
                            Scalar::Float => In::Float(b.get_float(row, c)),
                            Scalar::Str => In::Str(b.get_str_bytes(row, c)),
                            _ => In::Int(b.get_int(row, c)),
                        });
                        let at = [1, 2, 3].map(|k| b.get_int(row, c + k) as u64);
                        self.pick(g, a, v, at);
                        None
                    }
                };
                if let Some(v) = v {
                    self.fold(g, a, v)?;
                }
                c += slot.partial_columns();
            }
        }
        Ok(None)
    }

    /// Writes groups `from..` into `out` (layout: keys then aggregates), at most `max` rows and
    /// about `max_bytes` bytes (at least one row); returns the next group index.
    pub fn emit(&self, from: usize, max: usize, max_bytes: usize, out: &mut Batch) -> usize {
        let k = self.layout.keys.len();
        let end = from.saturating_add(max).min(self.groups);
        if let Some(next) = self.emit_plain(from, end, max_bytes, out) {
            return next;
        }
        for g in from..end {
            if g > from && out.bytes() >= max_bytes {
                return g;
            }
            let r = out.push_row();
            self.write_key(g, out, r);
            let base = g * self.words;
            for (a, &(slot, w)) in self.slots.iter().enumerate() {
                // The plain slots here, the others by `write_state`.
                let x = self.states[base + w];
                match slot {
                    Slot::Count | Slot::SumInt => out.set_int(r, k + a, x as i64),
                    Slot::SumFloat => out.set_float(r, k + a, f64::from_bits(x)),
                    _ => self.write_state(g, a, out, r, k + a, false),
                }
            }
        }
        end
    }
}

/// Output rows of at most this many words are built on the stack by [`GroupTable::emit`].
const EMIT_WORDS: usize = 16;

impl GroupTable {
    /// [`GroupTable::emit`] of a table whose output rows have one null word and at most
    /// [`EMIT_WORDS`] words and whose aggregates are count, sum or avg: each row built in a
    /// fixed-size array (keys decoded straight from their encoding, a short string copied into
    /// the arena with one 16-byte move) and appended with one fixed-size copy, the batch's room
    /// asked for once. `None` (nothing written) for any other table.
    fn emit_plain(
        &self,
        from: usize,
        end: usize,
        max_bytes: usize,
        out: &mut Batch,
    ) -> Option<usize> {
        let k = self.layout.keys.len();
        let stride = out.layout.stride;
        let plain = self
            .slots
            .iter()
            .all(|(s, _)| matches!(s, Slot::Count | Slot::SumInt | Slot::SumFloat | Slot::Avg));
        if !plain
            || out.layout.null_words != 1
            || out.layout.columns != k + self.slots.len()
            || stride > EMIT_WORDS
            || self.key_types.fields.len() != k
        {
            return None;
        }
        let rows = end.saturating_sub(from);
        out.words.reserve(rows * stride + EMIT_WORDS);
        let Batch { words, arena, .. } = out;
        let arena = arena.vec_mut();
        // About the key bytes of these groups (a string's bytes at most its key's).
        let strs = self
            .key_types
            .fields
            .iter()
            .any(|f| f.ty.scalar == Scalar::Str);
        if strs && rows > 0 {
            let per = self.keys.chunk_bytes / self.groups.max(1) + 1;
            arena.reserve(rows.min(1 << 16) * per + 16);
        }
        let w0 = words.len();
        let mut n = 0;
        let mut next = end;
        for g in from..end {
            if g > from && words.len() * 8 + arena.len() >= max_bytes {
                next = g;
                break;
            }
            let mut row = [0u64; EMIT_WORDS];
            let mut nulls = 0u64;
            let (bytes, tail) = self.keys.get_with_tail(g);
            let mut at = 0;
            for (i, f) in self.key_types.fields.iter().enumerate() {
                let s = f.ty.scalar;
                let start = at;
                match next_col(bytes, &mut at, s, self.enc) {
                    Col::Null => nulls |= 1 << i,
                    Col::Str(v) => {
                        let len = v.len();
                        let off = arena.len();
                        match tail.get(start + 1..start + 17) {
                            Some(w) if len <= 16 && at == start + 1 + len => {
                                if arena.capacity() - off < 16 {
                                    arena.reserve(16 + (end - g) * 16);
                                }
                                // SAFETY: 16 bytes past the length are reserved (just
                                // above), `w` has 16 bytes, and only the first `len <= 16` of
                                // them become the arena's.
                                unsafe {
                                    std::ptr::copy_nonoverlapping(
                                        w.as_ptr(),
                                        arena.as_mut_ptr().add(off),
                                        16,
                                    );
                                    arena.set_len(off + len);
                                }
                            }
                            _ => arena.extend_from_slice(v),
                        }
                        row[1 + i] = ((off as u64) << 32) | len as u64;
                    }
                    Col::Word(x) => {
                        row[1 + i] = match s {
                            Scalar::Bool => (x != 0) as u64,
                            Scalar::Null => {
                                nulls |= 1 << i;
                                0
                            }
                            _ => x,
                        }
                    }
                }
            }
            let base = g * self.words;
            for (a, &(slot, w)) in self.slots.iter().enumerate() {
                let x = self.states[base + w];
                row[1 + k + a] = match slot {
                    Slot::Avg => {
                        let n = self.states[base + w + 1];
                        if n == 0 {
                            nulls |= 1 << (k + a);
                            0
                        } else {
                            (f64::from_bits(x) / n as f64).to_bits()
                        }
                    }
                    _ => x,
                };
            }
            row[0] = nulls;
            // One fixed-size copy (room for `EMIT_WORDS` more was reserved), then cut.
            words.extend_from_slice(&row);
            words.truncate(w0 + (n + 1) * stride);
            n += 1;
        }
        out.rows += n;
        Some(next)
    }
}

/// The next value of a `count_distinct` partial state (values as `encode_key` writes one
/// non-null column in `Enc::Compact`, back to back) from `all[*at..]`; `None` at the end (or if
/// damaged).
fn next_encoded<'a>(all: &'a [u8], at: &mut usize, s: Scalar) -> Option<&'a [u8]> {
    let start = *at;
    let t = *all.get(start)? as usize;
    let len = match s {
        Scalar::Str if t == 255 => 5 + all.get(start + 1..start + 5).map(read_le)? as usize,
        Scalar::Str => t.max(1),
        _ => 1 + t.saturating_sub(1).min(8),
    };
    let v = all.get(start..start + len)?;
    *at = start + len;
    Some(v)
}

/// A value folded into an aggregate state.
#[derive(Clone, Copy)]
enum In<'a> {
    Int(i64),
    Float(f64),
    Str(&'a [u8]),
    /// A float sum and a count (one row: the value and 1).
    Avg(f64, u64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Field, Type, Value};

    /// A row type of the named columns.
    fn row_type(cols: &[(&str, Type)]) -> RowType {
        RowType::new(
            cols.iter()
                .map(|(name, ty)| Field {
                    name: (*name).into(),
                    ty: *ty,
                })
                .collect(),
        )
    }

    #[test]
    fn partial_states_merge_to_the_same_result() {
        let t = RowType::new(vec![
            Field {
                name: "k".into(),
                ty: Type::STR,
            },
            Field {
                name: "v".into(),
                ty: Type::nullable(Scalar::Int),
            },
            Field {
                name: "x".into(),
                ty: Type::FLOAT,
            },
        ]);
        let rows: Vec<Vec<Value>> = (0..200)
            .map(|i| {
                vec![
                    Value::Str(format!("k{}", i % 7)),
                    if i % 5 == 0 {
                        Value::Null
                    } else {
                        Value::Int(i * 3 - 100)
                    },
                    Value::Float(i as f64 / 4.0),
                ]
            })
            .collect();
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Str)],
            aggs: vec![
                (AggFunc::Count, None),
                (AggFunc::Sum, Some((1, Scalar::Int))),
                (AggFunc::Min, Some((1, Scalar::Int))),
                (AggFunc::Max, Some((2, Scalar::Float))),
                (AggFunc::Avg, Some((1, Scalar::Int))),
                (AggFunc::Sum, Some((2, Scalar::Float))),
            ],
        };
        let kt = RowType::new(vec![t.fields[0].clone()]);
        let (x, y) = whole_and_merged(&t, &rows, &layout, &kt, 37, false);
        assert_eq!(x.words, y.words);
        assert_eq!(x.arena, y.arena);
    }

    #[test]
    fn aggregates_follow_the_documented_semantics() {
        let t = RowType::new(vec![
            Field {
                name: "k".into(),
                ty: Type::STR,
            },
            Field {
                name: "v".into(),
                ty: Type::nullable(Scalar::Int),
            },
        ]);
        let rows = vec![
            vec![Value::Str("a".into()), Value::Int(3)],
            vec![Value::Str("b".into()), Value::Null],
            vec![Value::Str("a".into()), Value::Int(-1)],
        ];
        let b = Batch::from_values(&t, &rows);
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Str)],
            aggs: vec![
                (AggFunc::Count, None),
                (AggFunc::Sum, Some((1, Scalar::Int))),
                (AggFunc::Min, Some((1, Scalar::Int))),
                (AggFunc::Avg, Some((1, Scalar::Int))),
            ],
        };
        let mut g = GroupTable::new(layout, RowType::new(vec![t.fields[0].clone()]));
        g.update(&b).unwrap();
        let mut out = Batch::new(5);
        assert_eq!(g.emit(0, 10, usize::MAX, &mut out), 2);
        let ot = RowType::new(vec![
            t.fields[0].clone(),
            Field {
                name: "n".into(),
                ty: Type::INT,
            },
            Field {
                name: "s".into(),
                ty: Type::INT,
            },
            Field {
                name: "m".into(),
                ty: Type::nullable(Scalar::Int),
            },
            Field {
                name: "a".into(),
                ty: Type::nullable(Scalar::Float),
            },
        ]);
        assert_eq!(
            out.to_values(&ot),
            vec![
                vec![
                    Value::Str("a".into()),
                    Value::Int(2),
                    Value::Int(2),
                    Value::Int(-1),
                    Value::Float(1.0)
                ],
                vec![
                    Value::Str("b".into()),
                    Value::Int(1),
                    Value::Int(0),
                    Value::Null,
                    Value::Null
                ],
            ]
        );
        let over = Batch::from_values(
            &t,
            &[
                vec![Value::Str("z".into()), Value::Int(i64::MAX)],
                vec![Value::Str("z".into()), Value::Int(1)],
            ],
        );
        assert!(g.update(&over).is_err());
    }

    /// first/last/count_distinct over rows split into chunks of 3 (positions (split 0, chunk
    /// i)), each pre-aggregated alone and merged in reverse order, equal the one-table result;
    /// nulls are kept by first/last and not counted by count_distinct.
    #[test]
    fn first_last_merge_by_position_not_arrival() {
        let t = RowType::new(vec![
            Field {
                name: "k".into(),
                ty: Type::INT,
            },
            Field {
                name: "s".into(),
                ty: Type::nullable(Scalar::Str),
            },
        ]);
        let vals = [
            None,
            Some("b"),
            Some("a"),
            Some("b"),
            None,
            Some("c"),
            Some("a"),
        ];
        let rows: Vec<Vec<Value>> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| {
                vec![
                    Value::Int(i as i64 % 2),
                    v.map_or(Value::Null, |s| Value::Str(s.into())),
                ]
            })
            .collect();
        let s = Some((1, Scalar::Str));
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Int)],
            aggs: vec![
                (AggFunc::First, s),
                (AggFunc::Last, s),
                (AggFunc::CountDistinct, s),
            ],
        };
        let kt = RowType::new(vec![t.fields[0].clone()]);
        let mut fin = GroupTable::new(layout.clone(), kt.clone());
        for (i, part) in rows.chunks(3).enumerate().rev() {
            let mut pre = GroupTable::new(layout.clone(), kt.clone());
            pre.set_position(Some((0, i as u64)));
            pre.update(&Batch::from_values(&t, part)).unwrap();
            let mut b = Batch::new(pre.partial_columns());
            for g in 0..pre.groups() {
                pre.emit_partial(g, pre.group_hash(g), &mut b);
            }
            fin.merge(&b).unwrap();
        }
        let mut out = Batch::new(4);
        fin.emit(0, 10, usize::MAX, &mut out);
        let ot = RowType::new(vec![
            t.fields[0].clone(),
            t.fields[1].clone(),
            t.fields[1].clone(),
            Field {
                name: "d".into(),
                ty: Type::INT,
            },
        ]);
        let mut got = out.to_values(&ot);
        got.sort_by_key(|r| format!("{:?}", r[0]));
        let st = |x: &str| Value::Str(x.into());
        // k = 0: rows 0, 2, 4, 6 = null, a, null, a; k = 1: rows 1, 3, 5 = b, b, c.
        assert_eq!(
            got,
            vec![
                vec![Value::Int(0), Value::Null, st("a"), Value::Int(1)],
                vec![Value::Int(1), st("b"), st("c"), Value::Int(2)],
            ]
        );
    }

    /// A count_distinct set counts toward the table's limit. It grows past it within a batch
    /// (the batch is folded whole, and counted right); the table then says it is over, so that
    /// its caller spills it.
    #[test]
    fn count_distinct_sets_count_toward_the_limit() {
        let t = RowType::new(vec![Field {
            name: "v".into(),
            ty: Type::INT,
        }]);
        let rows: Vec<Vec<Value>> = (0..5000).map(|i| vec![Value::Int(i)]).collect();
        let layout = GroupLayout {
            keys: vec![],
            aggs: vec![(AggFunc::CountDistinct, Some((0, Scalar::Int)))],
        };
        let mut g = GroupTable::new(layout, RowType::new(vec![]));
        g.set_limit(64 << 10);
        assert!(!g.over_limit());
        g.update(&Batch::from_values(&t, &rows)).unwrap();
        assert!(g.over_limit(), "{} bytes", g.bytes());
        // At least each value's record: a 10-byte header and the value.
        assert!(g.bytes() >= 5000 * 12, "{} bytes", g.bytes());
        let out_t = RowType::new(vec![Field {
            name: "d".into(),
            ty: Type::INT,
        }]);
        let mut out = Batch::new(1);
        g.emit(0, usize::MAX, usize::MAX, &mut out);
        assert_eq!(out.to_values(&out_t), vec![vec![Value::Int(5000)]]);
    }

    fn float_rows(xs: &[f64]) -> (RowType, Vec<Vec<Value>>) {
        let t = RowType::new(vec![
            Field {
                name: "k".into(),
                ty: Type::STR,
            },
            Field {
                name: "x".into(),
                ty: Type::FLOAT,
            },
        ]);
        let rows = xs
            .iter()
            .map(|&x| vec![Value::Str("b".into()), Value::Float(x)])
            .collect();
        (t, rows)
    }

    /// min, max, sum, avg of `xs` in one group, through `workers` pre-aggregation tables (rows
    /// dealt round-robin) merged into a final one, or directly with one worker.
    fn float_aggs(xs: &[f64], workers: usize) -> Vec<f64> {
        let (t, rows) = float_rows(xs);
        let x = Some((1, Scalar::Float));
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Str)],
            aggs: vec![
                (AggFunc::Min, x),
                (AggFunc::Max, x),
                (AggFunc::Sum, x),
                (AggFunc::Avg, x),
            ],
        };
        let kt = RowType::new(vec![t.fields[0].clone()]);
        let mut fin = GroupTable::new(layout.clone(), kt.clone());
        if workers == 1 {
            fin.update(&Batch::from_values(&t, &rows)).unwrap();
        } else {
            for w in 0..workers {
                let mine: Vec<Vec<Value>> = rows.iter().skip(w).step_by(workers).cloned().collect();
                let mut pre = GroupTable::new(layout.clone(), kt.clone());
                // One row per batch: the state is folded row by row.
                for r in &mine {
                    pre.update(&Batch::from_values(&t, std::slice::from_ref(r)))
                        .unwrap();
                }
                let mut b = Batch::new(pre.partial_columns());
                for g in 0..pre.groups() {
                    pre.emit_partial(g, pre.group_hash(g), &mut b);
                }
                fin.merge(&b).unwrap();
            }
        }
        let mut out = Batch::new(5);
        fin.emit(0, 10, usize::MAX, &mut out);
        (1..5).map(|c| out.get_float(0, c)).collect()
    }

    /// Issue 16 item 4: one NaN makes min and max NaN whatever the row order, at 1, 2 and 4
    /// workers (`sqrt(-1.0)` is a negative NaN; both signs are tested).
    #[test]
    fn nan_propagates_in_min_max_in_any_order_and_worker_count() {
        let neg_nan = (-1.0f64).sqrt();
        for nan in [neg_nan, f64::NAN] {
            let orders = [
                vec![2.0, nan],
                vec![nan, 2.0],
                vec![4.0, nan, -3.0, 7.5],
                vec![nan, 4.0, -3.0, 7.5],
                vec![4.0, -3.0, 7.5, nan],
            ];
            for xs in &orders {
                for workers in [1, 2, 4] {
                    let r = float_aggs(xs, workers);
                    assert!(
                        r.iter().all(|v| v.is_nan()),
                        "{xs:?} at {workers} workers: min/max/sum/avg = {r:?}"
                    );
                }
            }
        }
        // Without a NaN: the ordinary values, the same at every worker count.
        for workers in [1, 2, 4] {
            assert_eq!(
                float_aggs(&[4.0, -3.0, 7.5, 0.5], workers),
                vec![-3.0, 7.5, 9.0, 2.25]
            );
        }
    }

    /// Rows of one int column `k`, grouped by `k` with `count()`.
    fn int_key_count() -> (RowType, GroupLayout) {
        let t = RowType::new(vec![Field {
            name: "k".into(),
            ty: Type::INT,
        }]);
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Int)],
            aggs: vec![(AggFunc::Count, None)],
        };
        (t, layout)
    }

    /// Rows `(k: key?, v: int)`, the layout `group k { n: count(), sum: sum(v) }`, the key's
    /// row type and the output's.
    fn key_count_sum(key: Scalar) -> (RowType, GroupLayout, RowType, RowType) {
        let t = RowType::new(vec![
            Field {
                name: "k".into(),
                ty: Type::nullable(key),
            },
            Field {
                name: "v".into(),
                ty: Type::INT,
            },
        ]);
        let layout = GroupLayout {
            keys: vec![(0, key)],
            aggs: vec![
                (AggFunc::Count, None),
                (AggFunc::Sum, Some((1, Scalar::Int))),
            ],
        };
        let kt = RowType::new(vec![t.fields[0].clone()]);
        let mut ot = kt.clone();
        for name in ["n", "sum"] {
            ot.fields.push(Field {
                name: name.into(),
                ty: Type::nullable(Scalar::Int),
            });
        }
        (t, layout, kt, ot)
    }

    /// Count and sum of column 1 per key (column 0) of `rows`, keys as their debug text.
    fn fold_count_sum(rows: &[Vec<Value>]) -> std::collections::HashMap<String, (i64, i64)> {
        let mut want: std::collections::HashMap<String, (i64, i64)> = Default::default();
        for r in rows {
            let Value::Int(v) = r[1] else { panic!("{r:?}") };
            let e = want.entry(format!("{:?}", r[0])).or_default();
            e.0 += 1;
            e.1 += v;
        }
        want
    }

    /// The groups `tables` emit as `(key, count, sum)` rows of `ot`, keys as their debug text;
    /// each key emitted once in all.
    fn emitted_count_sum(
        tables: &[&GroupTable],
        ot: &RowType,
    ) -> std::collections::HashMap<String, (i64, i64)> {
        let mut got: std::collections::HashMap<String, (i64, i64)> = Default::default();
        for g in tables {
            let mut out = Batch::new(3);
            g.emit(0, usize::MAX, usize::MAX, &mut out);
            for r in out.to_values(ot) {
                let (Value::Int(c), Value::Int(s)) = (&r[1], &r[2]) else {
                    panic!("{r:?}")
                };
                assert!(
                    got.insert(format!("{:?}", r[0]), (*c, *s)).is_none(),
                    "{r:?}"
                );
            }
        }
        got
    }

    /// Count and int sum by one nullable int key of `rows` (`(key, value)`), added in batches
    /// of `batch` rows to a table limited to `limit` bytes (spilled — emitted and cleared — at
    /// each stop, as the operator does), summed over the emitted groups: what a plain fold gives.
    fn int_key_sums(
        rows: &[(Option<i64>, i64)],
        batch: usize,
        limit: usize,
    ) -> (
        std::collections::HashMap<Option<i64>, (i64, i64)>,
        GroupTable,
        usize,
    ) {
        let (t, layout, kt, ot) = key_count_sum(Scalar::Int);
        let mut g = GroupTable::new(layout, kt);
        g.set_limit(limit);
        let mut got: std::collections::HashMap<Option<i64>, (i64, i64)> = Default::default();
        let mut stops = 0;
        let mut drain = |g: &mut GroupTable| {
            let mut out = Batch::new(3);
            g.emit(0, usize::MAX, usize::MAX, &mut out);
            for r in out.to_values(&ot) {
                let k = match r[0] {
                    Value::Null => None,
                    Value::Int(k) => Some(k),
                    ref v => panic!("{v:?}"),
                };
                let (Value::Int(c), Value::Int(s)) = (&r[1], &r[2]) else {
                    panic!("{r:?}")
                };
                let e = got.entry(k).or_default();
                e.0 += c;
                e.1 += s;
            }
            g.clear();
        };
        for part in rows.chunks(batch) {
            let vals: Vec<Vec<Value>> = part
                .iter()
                .map(|&(k, v)| vec![k.map_or(Value::Null, Value::Int), Value::Int(v)])
                .collect();
            let b = Batch::from_values(&t, &vals);
            let mut from = 0;
            while let Some(r) = g.add(&b, from).unwrap() {
                assert!(r > from || g.groups() > 0, "no progress at row {r}");
                stops += 1;
                drain(&mut g);
                from = r;
            }
        }
        drain(&mut g);
        (got, g, stops)
    }

    fn plain_int_fold(
        rows: &[(Option<i64>, i64)],
    ) -> std::collections::HashMap<Option<i64>, (i64, i64)> {
        let mut want: std::collections::HashMap<Option<i64>, (i64, i64)> = Default::default();
        for &(k, v) in rows {
            let e = want.entry(k).or_default();
            e.0 += 1;
            e.1 += v;
        }
        want
    }

    /// A key of one int column of many values within a range (`group id6`) takes the range
    /// path: groups found by the value, also as the range widens downwards and upwards between
    /// batches, with nulls, and across a table that fills up and is cleared.
    #[test]
    fn an_int_key_of_many_values_in_a_range_counts_and_sums_like_a_fold() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rows = Vec::new();
        for i in 0..60_000i64 {
            crate::connectors::xorshift(&mut seed);
            // The first batches hold 5000..10000 only; later ones reach down to -3000 and
            // up to 40000.
            let k = match i {
                0..4096 => 5000 + (seed % 5000) as i64,
                _ => -3000 + (seed % 43_000) as i64,
            };
            let k = (!(seed >> 40).is_multiple_of(29))
                .then_some(k)
                .filter(|_| i % 7 != 3);
            rows.push((k, i % 13 - 4));
        }
        let want = plain_int_fold(&rows);
        // (At 1 MiB an eighth of the limit holds less than the range: the path turns off.)
        for (batch, limit) in [
            (4096, usize::MAX),
            (1000, usize::MAX),
            (4096, 1 << 20),
            (4096, 2 << 20),
        ] {
            let (got, g, stops) = int_key_sums(&rows, batch, limit);
            assert_eq!(got, want, "batch {batch}, limit {limit}");
            // (With all its groups the table takes less than 8 times its range's bytes, so it
            // fills up only at 1 MiB, after the path turned off.)
            assert_eq!(stops > 0, limit == 1 << 20, "batch {batch}, limit {limit}");
            assert_eq!(g.span.off, limit == 1 << 20, "batch {batch}, limit {limit}");
            if g.span.off {
                continue;
            }
            assert!((-3000..-2990).contains(&g.span.lo), "{}", g.span.lo);
            assert!(g.span.groups.len() >= 42_980);
            assert!(g.bytes() <= limit);
        }
    }

    /// Values spanning more than the range path takes (or more than the table's limit gives
    /// it) turn it off, before or after it held groups; the groups stay right.
    #[test]
    fn an_int_key_spanning_too_much_leaves_the_range_path() {
        let near: Vec<(Option<i64>, i64)> = (0..20_000).map(|i| (Some(i % 3000), 1)).collect();
        let far: Vec<(Option<i64>, i64)> = (0..20_000)
            .map(|i| (Some((i % 3000) * 1_000_003 - 7), 2))
            .collect();
        for rows in [
            [near.clone(), far.clone()].concat(),
            far.clone(),
            near.clone(),
        ] {
            let want = plain_int_fold(&rows);
            let (got, g, _) = int_key_sums(&rows, 4096, usize::MAX);
            assert_eq!(got, want);
            let wide = rows.iter().any(|r| r.1 == 2);
            assert_eq!(g.span.off, wide);
            assert_eq!(g.span_bytes == 0, wide);
        }
        // In range, but the range would take more than an eighth of the limit.
        let rows: Vec<(Option<i64>, i64)> = (0..200_000).map(|i| (Some(i * 5), 1)).collect();
        let (got, g, _) = int_key_sums(&rows, 4096, 2 << 20);
        assert_eq!(got, plain_int_fold(&rows));
        assert!(g.span.off);
    }

    /// A key of one string column is compared at its inline words: strings of every length
    /// around the 16-byte bound (with zero bytes, and prefixes of each other), the empty
    /// string and nulls group exactly, whether a group was made by `add` or by `merge` and is
    /// then found by the other, on small tables and on tables past the prefetching bound.
    #[test]
    fn inline_string_keys_group_exactly_like_a_fold() {
        let (t, layout, kt, ot) = key_count_sum(Scalar::Str);
        for distinct in [300u64, 50_000] {
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            let rows: Vec<Vec<Value>> = (0..4 * distinct as i64)
                .map(|i| {
                    crate::connectors::xorshift(&mut seed);
                    let k = seed % distinct;
                    let key = match k % 23 {
                        0 => Value::Null,
                        // Lengths 0..=21: "", "a", "a\0", …, each a prefix of the next.
                        n => {
                            let mut s: String = format!("{k}#")
                                .chars()
                                .cycle()
                                .take(n as usize - 1)
                                .collect();
                            if n % 5 == 0 {
                                s.push('\0');
                            }
                            Value::Str(s)
                        }
                    };
                    vec![key, Value::Int(i % 9 - 3)]
                })
                .collect();
            let want = fold_count_sum(&rows);
            // Half the batches added, half merged as partial states, into one table.
            let mut g = GroupTable::new(layout.clone(), kt.clone());
            for (i, part) in rows.chunks(1000).enumerate() {
                let b = Batch::from_values(&t, part);
                if i % 2 == 0 {
                    g.update(&b).unwrap();
                } else {
                    let mut parts = [Batch::new(g.partial_columns())];
                    GroupTable::new(layout.clone(), kt.clone()).row_partials(&b, &mut parts);
                    g.merge(&parts[0]).unwrap();
                }
            }
            assert_eq!(g.prefetching(), distinct > 1000, "{}", g.index.len());
            let got = emitted_count_sum(&[&g], &ot);
            assert_eq!(got, want, "{distinct} keys");
        }
    }

    /// A table refuses to grow past its limit, with the budget in the message.
    #[test]
    fn a_table_stops_at_its_memory_limit() {
        let (t, layout) = int_key_count();
        let mut g = GroupTable::new(layout, t.clone());
        g.set_limit(1 << 20);
        let rows: Vec<Vec<Value>> = (0..200_000).map(|i| vec![Value::Int(i)]).collect();
        let e = g.update(&Batch::from_values(&t, &rows)).unwrap_err();
        assert!(e.contains("memory budget of 1.0 MB"), "{e}");
        assert!(g.bytes() <= 1 << 20, "{}", g.bytes());
    }

    /// Keys of every type (nulls, -0.0, NaN, long strings) come back out as they went in, and
    /// the table holds each key's bytes once (no per-key allocation).
    #[test]
    fn keys_round_trip_and_are_stored_once() {
        let t = RowType::new(vec![
            Field {
                name: "s".into(),
                ty: Type::nullable(Scalar::Str),
            },
            Field {
                name: "f".into(),
                ty: Type::nullable(Scalar::Float),
            },
            Field {
                name: "b".into(),
                ty: Type::BOOL,
            },
        ]);
        let long = "é".repeat(5000);
        let rows = vec![
            vec![
                Value::Str(long.clone()),
                Value::Float(-0.0),
                Value::Bool(true),
            ],
            vec![Value::Null, Value::Null, Value::Bool(false)],
            vec![
                Value::Str(long.clone()),
                Value::Float(0.0),
                Value::Bool(true),
            ],
            vec![
                Value::Str("".into()),
                Value::Float(f64::NAN),
                Value::Bool(false),
            ],
            vec![
                Value::Str("".into()),
                Value::Float(-f64::NAN),
                Value::Bool(false),
            ],
        ];
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Str), (1, Scalar::Float), (2, Scalar::Bool)],
            aggs: vec![(AggFunc::Count, None)],
        };
        let mut g = GroupTable::new(layout, t.clone());
        g.update(&Batch::from_values(&t, &rows)).unwrap();
        assert_eq!(g.groups(), 3);
        let mut out = Batch::new(4);
        g.emit(0, 10, usize::MAX, &mut out);
        let mut ot = t.clone();
        ot.fields.push(Field {
            name: "n".into(),
            ty: Type::INT,
        });
        let got = out.to_values(&ot);
        assert_eq!(
            got[0][..3],
            [Value::Str(long), Value::Float(0.0), Value::Bool(true)]
        );
        assert_eq!(got[0][3], Value::Int(2));
        assert_eq!(
            got[1],
            vec![Value::Null, Value::Null, Value::Bool(false), Value::Int(1)]
        );
        assert!(matches!(got[2][1], Value::Float(x) if x.is_nan()));
        assert_eq!(got[2][3], Value::Int(2));
        assert!(g.bytes() < 2 * 10_000 + 4096, "{}", g.bytes());
    }

    /// `add` stops at the row whose new group would pass the limit (nothing of that row is
    /// added, the table stays within it); the rest of the batch goes on after the table is
    /// emptied, and every row is counted once (what the spill of `group` relies on).
    #[test]
    fn add_stops_at_the_limit_and_goes_on_from_that_row() {
        let (t, layout) = int_key_count();
        let rows: Vec<Vec<Value>> = (0..20_000)
            .map(|i| vec![Value::Int(i * 7 % 10_007)])
            .collect();
        let b = Batch::from_values(&t, &rows);
        let mut g = GroupTable::new(layout, t.clone());
        g.set_limit(64 << 10);
        let (mut from, mut counted, mut stops) = (0, 0, 0);
        loop {
            let stop = g.add(&b, from).unwrap();
            assert!(g.bytes() <= 64 << 10, "{}", g.bytes());
            let mut out = Batch::new(2);
            g.emit(0, usize::MAX, usize::MAX, &mut out);
            counted += (0..out.rows).map(|r| out.get_int(r, 1)).sum::<i64>();
            g.release();
            match stop {
                Some(r) => {
                    assert!(r > from);
                    from = r;
                    stops += 1;
                }
                None => break,
            }
        }
        assert!(stops > 1, "{stops}");
        assert_eq!(counted, 20_000);
    }

    /// A table released mid-batch to spill keeps the batch's input position: `first`/`last`
    /// over partial states of every release, merged in reverse, are the values of the first and
    /// last row per key in input order (with the position lost, the rows after a stop would
    /// rank as unplaced, after every positioned row of the next chunk, and `last` would come
    /// out wrong).
    #[test]
    fn first_and_last_survive_a_release_in_the_middle_of_a_batch() {
        let t = RowType::new(vec![
            Field {
                name: "k".into(),
                ty: Type::INT,
            },
            Field {
                name: "v".into(),
                ty: Type::INT,
            },
        ]);
        let n = 20_000i64;
        // Key i % 5003, value i: first = the key itself, last = the largest i with that key.
        let rows: Vec<Vec<Value>> = (0..n)
            .map(|i| vec![Value::Int(i % 5003), Value::Int(i)])
            .collect();
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Int)],
            aggs: vec![
                (AggFunc::First, Some((1, Scalar::Int))),
                (AggFunc::Last, Some((1, Scalar::Int))),
            ],
        };
        let kt = RowType::new(vec![t.fields[0].clone()]);
        let mut g = GroupTable::new(layout.clone(), kt.clone());
        g.set_limit(64 << 10);
        let mut partials = Vec::new();
        let mut stops = 0;
        // Two chunks of one split, each spilled part-way through.
        for (chunk, part) in rows.chunks(rows.len() / 2).enumerate() {
            let b = Batch::from_values(&t, part);
            g.set_position(Some((7, chunk as u64)));
            let mut from = 0;
            loop {
                let stop = g.add(&b, from).unwrap();
                let mut p = Batch::new(g.partial_columns());
                for i in 0..g.groups() {
                    g.emit_partial(i, g.group_hash(i), &mut p);
                }
                partials.push(p);
                g.release();
                match stop {
                    Some(r) => {
                        from = r;
                        stops += 1;
                    }
                    None => break,
                }
            }
        }
        assert!(stops > 2, "{stops}");
        let mut fin = GroupTable::new(layout, kt);
        for p in partials.iter().rev() {
            fin.merge(p).unwrap();
        }
        let mut out = Batch::new(3);
        fin.emit(0, usize::MAX, usize::MAX, &mut out);
        assert_eq!(out.rows, 5003);
        for r in 0..out.rows {
            let k = out.get_int(r, 0);
            let last = k + (n - 1 - k) / 5003 * 5003;
            assert_eq!((out.get_int(r, 1), out.get_int(r, 2)), (k, last), "key {k}");
        }
    }

    /// Long string keys are stored once (200 distinct 10 KB keys take about their bytes, not a
    /// doubled vector's), and the chunks of groups already emitted are freed.
    #[test]
    fn long_keys_are_stored_once_and_freed_once_emitted() {
        let t = RowType::new(vec![Field {
            name: "k".into(),
            ty: Type::STR,
        }]);
        let pad = "q".repeat(10_000);
        let rows: Vec<Vec<Value>> = (0..400)
            .map(|i| vec![Value::Str(format!("{pad}{}", i % 200))])
            .collect();
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Str)],
            aggs: vec![(AggFunc::Count, None)],
        };
        let mut g = GroupTable::new(layout, t.clone());
        g.update(&Batch::from_values(&t, &rows)).unwrap();
        assert_eq!(g.groups(), 200);
        let keys = 200 * 10_008;
        assert!(g.bytes() < keys + keys / 10 + (32 << 10), "{}", g.bytes());
        let mut from = 0;
        while from < g.groups() {
            let mut out = Batch::new(2);
            from = g.emit(from, 50, usize::MAX, &mut out);
            assert_eq!(out.get_int(0, 1), 2);
            g.free_before(from);
        }
        assert!(g.bytes() < 32 << 10, "{}", g.bytes());
    }

    /// String states replaced row after row (`last`, and `max` over rising values, in a few
    /// groups) keep the right strings through the compactions of their store, which keep the
    /// table small: its strings are a few hundred bytes, the replaced ones megabytes.
    #[test]
    fn replaced_string_states_are_compacted_and_stay_right() {
        let t = row_type(&[("k", Type::INT), ("s", Type::STR)]);
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Int)],
            aggs: vec![
                (AggFunc::First, Some((1, Scalar::Str))),
                (AggFunc::Last, Some((1, Scalar::Str))),
                (AggFunc::Max, Some((1, Scalar::Str))),
                (AggFunc::Min, Some((1, Scalar::Str))),
            ],
        };
        let mut g = GroupTable::new(layout, t.clone());
        let text = |i: i64| format!("{i:08}{}", "x".repeat((i % 37) as usize));
        let n = 200_000i64;
        for part in 0..20 {
            let rows: Vec<Vec<Value>> = (part * n / 20..(part + 1) * n / 20)
                .map(|i| vec![Value::Int(i % 5), Value::Str(text(i))])
                .collect();
            g.set_position(Some((0, part as u64)));
            g.update(&Batch::from_values(&t, &rows)).unwrap();
        }
        assert!(g.bytes() < 1 << 20, "{} bytes", g.bytes());
        let mut out = Batch::new(5);
        g.emit(0, 10, usize::MAX, &mut out);
        assert_eq!(out.rows, 5);
        for r in 0..5 {
            let k = out.get_int(r, 0);
            let last = n - 5 + k;
            assert_eq!(out.get_str(r, 1), text(k), "first of {k}");
            assert_eq!(out.get_str(r, 2), text(last), "last of {k}");
            assert_eq!(out.get_str(r, 3), text(last), "max of {k}");
            assert_eq!(out.get_str(r, 4), text(k), "min of {k}");
        }
    }

    /// `count_distinct` emitted in pieces with `free_before` after each: the values are freed
    /// with the first piece, and every later group still has its own count (kept in its
    /// states); a partial state gives back exactly the group's values.
    #[test]
    fn count_distinct_counts_survive_freeing_behind_the_emit() {
        let t = row_type(&[("k", Type::INT), ("v", Type::STR)]);
        // Group k has the values 0..=k (each twice, as strings).
        let rows: Vec<Vec<Value>> = (0..300i64)
            .flat_map(|k| (0..=k).flat_map(move |v| [v, v]).map(move |v| (k, v)))
            .map(|(k, v)| vec![Value::Int(k), Value::Str(format!("v{v}"))])
            .collect();
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Int)],
            aggs: vec![(AggFunc::CountDistinct, Some((1, Scalar::Str)))],
        };
        let mut g = GroupTable::new(layout, t.clone());
        g.update(&Batch::from_values(&t, &rows)).unwrap();
        let mut part = Batch::new(g.partial_columns());
        g.emit_partial(7, g.group_hash(7), &mut part);
        let all = part.get_str_bytes(0, PARTIAL_KEY_COLS);
        let (mut at, mut got) = (0, Vec::new());
        while let Some(v) = next_encoded(all, &mut at, Scalar::Str) {
            got.push(String::from_utf8_lossy(&v[1..]).into_owned());
        }
        got.sort();
        let mut want: Vec<String> = (0..=7).map(|v| format!("v{v}")).collect();
        want.sort();
        assert_eq!(got, want);
        let before = g.bytes();
        let (mut from, mut seen) = (0, 0);
        while from < g.groups() {
            let mut out = Batch::new(2);
            from = g.emit(from, 40, usize::MAX, &mut out);
            for r in 0..out.rows {
                assert_eq!(out.get_int(r, 1), out.get_int(r, 0) + 1, "row {r}");
                seen += 1;
            }
            g.free_before(from);
            assert!(g.distinct.iter().all(|d| d.bytes() == 0));
        }
        assert_eq!(seen, 300);
        assert!(g.bytes() < before, "{} of {before}", g.bytes());
    }

    /// A table large enough for its index and states to be mappings of their own: emitted in
    /// pieces with `free_before` after each, every group still comes out with its own key and
    /// states (the discarded state pages are all before the groups still to come), and what the
    /// table holds falls as it goes — the index at once, the states and keys behind the emit.
    #[test]
    fn emitting_frees_the_index_and_the_states_behind_it() {
        let t = RowType::new(vec![
            Field {
                name: "a".into(),
                ty: Type::INT,
            },
            Field {
                name: "b".into(),
                ty: Type::INT,
            },
        ]);
        let n = 400_000i64;
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Int), (1, Scalar::Int)],
            aggs: vec![
                (AggFunc::Count, None),
                (AggFunc::Sum, Some((1, Scalar::Int))),
            ],
        };
        let mut g = GroupTable::new(layout, t.clone());
        for part in 0..4 {
            let rows: Vec<Vec<Value>> = (part * n / 4..(part + 1) * n / 4)
                .map(|i| vec![Value::Int(i), Value::Int(i * 7)])
                .collect();
            g.update(&Batch::from_values(&t, &rows)).unwrap();
        }
        assert_eq!(g.groups(), n as usize);
        let full = g.bytes();
        let index = g.index.capacity() * 8;
        assert!(index >= 4 << 20 && g.states.capacity() * 8 >= 4 << 20);
        let mut from = 0;
        let mut seen = 0i64;
        let mut halfway = None;
        while from < g.groups() {
            let mut out = Batch::new(4);
            from = g.emit(from, 10_000, usize::MAX, &mut out);
            for r in 0..out.rows {
                let a = out.get_int(r, 0);
                assert_eq!(out.get_int(r, 1), a * 7);
                assert_eq!(
                    (out.get_int(r, 2), out.get_int(r, 3)),
                    (1, a * 7),
                    "group {a}"
                );
                seen += 1;
            }
            g.free_before(from);
            if halfway.is_none() && from >= g.groups() / 2 {
                halfway = Some(g.bytes());
            }
        }
        assert_eq!(seen, n);
        // The index went with the first piece; the keys' chunks behind the emit went too.
        let halfway = halfway.unwrap();
        assert!(
            halfway <= full - index - (full - index) / 3,
            "{full} {halfway}"
        );
    }

    /// Variable-width keys in chunks of `2^VAR_SHIFT` groups: every key comes back (across
    /// chunk ends, a key longer than a chunk's room, a grown chunk), the bytes counted are the
    /// chunks' capacities, and `clear` and `free_before` keep that true.
    #[test]
    fn variable_keys_come_back_across_chunks() {
        let key = |g: usize| -> Vec<u8> {
            let n = match g % 1000 {
                7 => 70_000,
                _ => 1 + (g * 7919) % 40,
            };
            (0..n).map(|i| (g + i) as u8).collect()
        };
        let mut ks = KeyStore::new(None);
        for round in 0..2 {
            let n = 3 * (1 << VAR_SHIFT) + 123;
            for g in 0..n {
                let k = key(g);
                let before = ks.bytes();
                let Some((cap, extra)) = ks.plan(k.len()) else {
                    panic!("group {g} does not fit")
                };
                ks.push(&k, cap);
                assert!(
                    ks.bytes() <= before + extra,
                    "group {g}: {} > {before} + {extra}",
                    ks.bytes()
                );
            }
            let caps: usize = ks.chunks.iter().map(|c| c.capacity()).sum();
            assert_eq!(ks.chunk_bytes, caps);
            assert_eq!(ks.chunks.len(), 4);
            for g in 0..n {
                assert_eq!(ks.get(g), &key(g)[..], "round {round}, group {g}");
                let (k, tail) = ks.get_with_tail(g);
                assert_eq!(&tail[..k.len()], k);
            }
            if round == 0 {
                ks.clear();
                assert_eq!(ks.chunks.len(), 1);
            } else {
                ks.free_before(2 << VAR_SHIFT, n);
                assert_eq!(ks.freed, 2);
                assert_eq!(ks.get(n - 1), &key(n - 1)[..]);
                let caps: usize = ks.chunks.iter().map(|c| c.capacity()).sum();
                assert_eq!(ks.chunk_bytes, caps);
                ks.free_before(n, n);
                assert_eq!(ks.chunk_bytes, 0);
            }
        }
    }

    /// Partial states carry the encoded key and its hash; a key of the wrong width for a
    /// fixed-width table (a damaged packet) is an error, not a panic.
    #[test]
    fn a_damaged_partial_key_is_an_error() {
        let (t, layout) = int_key_count();
        let g = GroupTable::new(layout.clone(), t.clone());
        let mut b = Batch::new(g.partial_columns());
        let r = b.push_row();
        b.set_str_bytes(r, 0, b"abc");
        b.set_int(r, 1, 7);
        b.set_int(r, 2, 1);
        let mut fin = GroupTable::new(layout, t);
        assert!(fin.merge(&b).unwrap_err().contains("damaged"));
    }

    /// A null in a fixed-width key column keeps the key's width (keys are found by position):
    /// nullable int keys group and come back out correctly (found by the H2O 5% NA questions).
    #[test]
    fn null_int_keys_keep_the_fixed_width() {
        let t = RowType::new(vec![
            Field {
                name: "k".into(),
                ty: Type::nullable(Scalar::Int),
            },
            Field {
                name: "j".into(),
                ty: Type::nullable(Scalar::Int),
            },
        ]);
        let rows: Vec<Vec<Value>> = (0..40)
            .map(|i| {
                let v = |m| {
                    if i % m == 0 {
                        Value::Null
                    } else {
                        Value::Int(i % 4)
                    }
                };
                vec![v(3), v(5)]
            })
            .collect();
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Int), (1, Scalar::Int)],
            aggs: vec![(AggFunc::Count, None)],
        };
        let mut g = GroupTable::new(layout, t.clone());
        g.update(&Batch::from_values(&t, &rows)).unwrap();
        let mut want: Vec<(Vec<Value>, i64)> = Vec::new();
        for r in &rows {
            match want.iter_mut().find(|(k, _)| k == r) {
                Some((_, n)) => *n += 1,
                None => want.push((r.clone(), 1)),
            }
        }
        let mut out = Batch::new(3);
        g.emit(0, 100, usize::MAX, &mut out);
        let mut ot = t.clone();
        ot.fields.push(Field {
            name: "n".into(),
            ty: Type::INT,
        });
        let got = out.to_values(&ot);
        assert_eq!(got.len(), want.len());
        for (row, (k, n)) in got.iter().zip(&want) {
            assert_eq!(&row[..2], &k[..]);
            assert_eq!(row[2], Value::Int(*n));
        }
    }

    fn mixed_rows() -> (RowType, Vec<Vec<Value>>) {
        let f = |name: &str, ty| Field {
            name: name.into(),
            ty,
        };
        let t = RowType::new(vec![
            f("s", Type::nullable(Scalar::Str)),
            f("i", Type::nullable(Scalar::Int)),
            f("f", Type::nullable(Scalar::Float)),
            f("b", Type::nullable(Scalar::Bool)),
        ]);
        let long = "x".repeat(300);
        let strs = [
            Value::Null,
            Value::Str(String::new()),
            Value::Str("id001".into()),
            Value::Str("id0000012345".into()),
            Value::Str("a string of twenty-five".into()),
            Value::Str(long),
        ];
        let ints = [
            Value::Null,
            Value::Int(0),
            Value::Int(-1),
            Value::Int(57),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Int(12345),
        ];
        let floats = [
            Value::Null,
            Value::Float(0.0),
            Value::Float(-0.0),
            Value::Float(f64::NAN),
            Value::Float(-2.5),
        ];
        let bools = [Value::Null, Value::Bool(true), Value::Bool(false)];
        let rows = (0..600usize)
            .map(|i| {
                vec![
                    strs[i % 6].clone(),
                    ints[i % 7].clone(),
                    floats[i % 5].clone(),
                    bools[i / 7 % 3].clone(),
                ]
            })
            .collect();
        (t, rows)
    }

    /// A row's key hash computed from the batch (per column, and per row) equals the hash the
    /// table computes from the stored key, in both encodings (what the exchange of partial
    /// states and the spill partitions rely on); equal keys (-0.0 and 0.0, NaNs) share a group.
    #[test]
    fn row_and_key_hashes_agree_in_both_encodings() {
        let (t, rows) = mixed_rows();
        let b = Batch::from_values(&t, &rows);
        let all = vec![
            (0, Scalar::Str),
            (1, Scalar::Int),
            (2, Scalar::Float),
            (3, Scalar::Bool),
        ];
        for keys in [all.clone(), all[1..].to_vec(), vec![all[0]]] {
            let layout = GroupLayout {
                keys: keys.clone(),
                aggs: vec![(AggFunc::Count, None)],
            };
            let kt = RowType::new(keys.iter().map(|&(c, _)| t.fields[c].clone()).collect());
            let mut g = GroupTable::new(layout, kt);
            assert_eq!(g.enc == Enc::Fixed, keys[0].1 != Scalar::Str, "{keys:?}");
            g.update(&b).unwrap();
            let mut hashes = Vec::new();
            batch_hashes(&b, 0, &keys, &mut hashes);
            for (row, &h) in hashes.iter().enumerate() {
                let gid = g.gids[row] as usize;
                assert_eq!(h, row_hash(&b, row, &keys), "row {row}");
                assert_eq!(h, g.group_hash(gid), "row {row} {keys:?}");
                assert!(row_matches(g.key(gid), &b, row, &keys, g.enc), "row {row}");
            }
            // Groups by value: -0.0 joins 0.0 (floats at i % 5 = 1, 2 fold together).
            let mut distinct: Vec<Vec<Value>> = Vec::new();
            for r in &rows {
                let k: Vec<Value> = keys
                    .iter()
                    .map(|&(c, _)| match &r[c] {
                        Value::Float(x) if *x == 0.0 => Value::Float(0.0),
                        v => v.clone(),
                    })
                    .collect();
                let same = |a: &Vec<Value>| {
                    a.iter().zip(&k).all(|(x, y)| match (x, y) {
                        (Value::Float(x), Value::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
                        _ => x == y,
                    })
                };
                if !distinct.iter().any(same) {
                    distinct.push(k);
                }
            }
            assert_eq!(g.groups(), distinct.len(), "{keys:?}");
            let mut out = Batch::new(keys.len() + 1);
            g.emit(0, usize::MAX, usize::MAX, &mut out);
            let mut ot = g.key_types.clone();
            ot.fields.push(Field {
                name: "n".into(),
                ty: Type::INT,
            });
            let got = out.to_values(&ot);
            assert_eq!(
                got.iter()
                    .map(|r| match r[keys.len()] {
                        Value::Int(n) => n,
                        _ => 0,
                    })
                    .sum::<i64>(),
                600
            );
            for (r, want) in got.iter().zip(&distinct) {
                for (x, y) in r.iter().zip(want) {
                    match (x, y) {
                        (Value::Float(x), Value::Float(y)) if x.is_nan() => assert!(y.is_nan()),
                        _ => assert_eq!(x, y),
                    }
                }
            }
        }
    }

    /// Compact keys: the H2O q10 key (`id057`, `id012`, `id0000012345`, 57, 12, 12345) takes 32
    /// bytes (a length byte per column, ints in as few bytes as hold them), not 64.
    #[test]
    fn compact_keys_take_the_bytes_they_need() {
        let f = |name: &str, ty| Field {
            name: name.into(),
            ty,
        };
        let t = RowType::new(vec![
            f("id1", Type::STR),
            f("id2", Type::STR),
            f("id3", Type::STR),
            f("id4", Type::INT),
            f("id5", Type::INT),
            f("id6", Type::INT),
        ]);
        let row = vec![
            Value::Str("id057".into()),
            Value::Str("id012".into()),
            Value::Str("id0000012345".into()),
            Value::Int(57),
            Value::Int(12),
            Value::Int(12345),
        ];
        let layout = GroupLayout {
            keys: (0..3)
                .map(|c| (c, Scalar::Str))
                .chain((3..6).map(|c| (c, Scalar::Int)))
                .collect(),
            aggs: vec![(AggFunc::Count, None)],
        };
        let mut g = GroupTable::new(layout, t.clone());
        g.update(&Batch::from_values(&t, &[row.clone(), row.clone()]))
            .unwrap();
        assert_eq!(g.groups(), 1);
        assert_eq!(g.key(0).len(), 6 + 6 + 13 + 2 + 2 + 3);
        let mut out = Batch::new(7);
        g.emit(0, 1, usize::MAX, &mut out);
        let mut ot = t.clone();
        ot.fields.push(f("n", Type::INT));
        let mut want = row;
        want.push(Value::Int(2));
        assert_eq!(out.to_values(&ot), vec![want]);
    }

    /// The previous-row check switches off on random keys and on again on sorted ones; with
    /// nulls and a limit that makes the table stop (the spill's path) every row is counted once
    /// in its group, as a plain fold counts them.
    #[test]
    fn clustered_and_random_keys_under_a_limit_count_like_a_fold() {
        let t = RowType::new(vec![
            Field {
                name: "s".into(),
                ty: Type::nullable(Scalar::Str),
            },
            Field {
                name: "k".into(),
                ty: Type::nullable(Scalar::Int),
            },
        ]);
        let key = |i: i64| {
            // Random keys first, then runs of one key, then random again.
            let k = if (3000..6000).contains(&i) {
                i / 50
            } else {
                i * 7919 % 1009
            };
            vec![
                if k % 11 == 0 {
                    Value::Null
                } else {
                    Value::Str(format!("v{}", k % 97))
                },
                if k % 13 == 0 {
                    Value::Null
                } else {
                    Value::Int(k)
                },
            ]
        };
        let rows: Vec<Vec<Value>> = (0..9000).map(key).collect();
        let mut want: std::collections::HashMap<String, i64> = Default::default();
        for r in &rows {
            *want.entry(format!("{r:?}")).or_default() += 1;
        }
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Str), (1, Scalar::Int)],
            aggs: vec![(AggFunc::Count, None)],
        };
        let show = |k: &[Value]| format!("{k:?}");
        let (got, stops) = counts_through_stops(&t, &rows, layout, 24 << 10, 2048, &show);
        assert!(stops > 0);
        assert_eq!(got, want);
    }

    /// Tables large enough for the probe loops' prefetching (more than `PREFETCH_MIN_SLOTS`
    /// index slots), with a string key (variable-width: the prefetch of a key's start, then its
    /// bytes) and with an int key (fixed-width), rows added directly and through partial rows
    /// merged by two owners: every group's count and sum as a plain fold gives them.
    #[test]
    fn large_tables_with_prefetching_count_and_sum_like_a_fold() {
        // 40k distinct keys in random order, every one seen about three times, a few nulls.
        // The int keys span too much for the range path: they take the general probe loop.
        let n = 120_000i64;
        let key = |i: i64| i.wrapping_mul(2_654_435_761) % 40_009;
        for scalar in [Scalar::Str, Scalar::Int] {
            let (t, layout, kt, ot) = key_count_sum(scalar);
            let rows: Vec<Vec<Value>> = (0..n)
                .map(|i| {
                    let k = key(i);
                    let kv = match (k, scalar) {
                        (7, _) => Value::Null,
                        (_, Scalar::Str) => Value::Str(format!("id{k:010}")),
                        _ => Value::Int(k * 1_000_003),
                    };
                    vec![kv, Value::Int(i % 5 + 1)]
                })
                .collect();
            let want = fold_count_sum(&rows);
            let mut whole = GroupTable::new(layout.clone(), kt.clone());
            let pre = GroupTable::new(layout.clone(), kt.clone());
            let mut owners = [
                GroupTable::new(layout.clone(), kt.clone()),
                GroupTable::new(layout.clone(), kt.clone()),
            ];
            for part in rows.chunks(1000) {
                let b = Batch::from_values(&t, part);
                whole.update(&b).unwrap();
                let mut parts = [
                    Batch::new(pre.partial_columns()),
                    Batch::new(pre.partial_columns()),
                ];
                let mut pre = GroupTable::new(layout.clone(), kt.clone());
                pre.row_partials(&b, &mut parts);
                for (o, p) in owners.iter_mut().zip(&parts) {
                    o.merge(p).unwrap();
                }
            }
            assert!(whole.prefetching(), "{} index slots", whole.index.len());
            assert!(owners.iter().all(|o| o.prefetching()));
            assert!(whole.span.off);
            let got = |tables: &[&GroupTable]| emitted_count_sum(tables, &ot);
            assert_eq!(got(&[&whole]), want, "{scalar:?} key, one table");
            assert_eq!(
                got(&[&owners[0], &owners[1]]),
                want,
                "{scalar:?} key, merged"
            );
        }
    }

    /// `count_distinct` sets (values in the compact encoding) merge across partial states to
    /// the counts of one table.
    #[test]
    fn count_distinct_merges_across_partial_states() {
        let (t, rows) = mixed_rows();
        let layout = GroupLayout {
            keys: vec![(3, Scalar::Bool)],
            aggs: vec![
                (AggFunc::CountDistinct, Some((0, Scalar::Str))),
                (AggFunc::CountDistinct, Some((1, Scalar::Int))),
                (AggFunc::CountDistinct, Some((2, Scalar::Float))),
            ],
        };
        let kt = RowType::new(vec![t.fields[3].clone()]);
        let (x, y) = whole_and_merged(&t, &rows, &layout, &kt, 41, true);
        assert_eq!(x.rows, 3);
        assert_eq!(x.words, y.words);
        // Per group: 5 non-null strings, 6 ints, 3 floats (0.0 = -0.0, one NaN).
        for r in 0..x.rows {
            assert_eq!([1, 2, 3].map(|c| x.get_int(r, c)), [5, 6, 3], "group {r}");
        }
    }

    /// Rows passed through as their own partial states (`row_partials`, a pre-aggregation that
    /// does not reduce), in two routes, merge to what one table gives, for every aggregate
    /// (nulls, strings, first/last by position, count_distinct).
    /// count/sum/avg tables take the word-writing paths (`row_partials`, `emit_partial`,
    /// `emit`'s plain rows): every way of getting the rows to an owner gives what a plain fold
    /// gives, for compact and fixed-width keys, also when the output is cut into small batches.
    #[test]
    fn plain_states_through_every_path_count_like_a_fold() {
        let (mut t, mut rows) = mixed_rows();
        t.fields.push(Field {
            name: "v".into(),
            ty: Type::nullable(Scalar::Int),
        });
        for (i, r) in rows.iter_mut().enumerate() {
            r.push(if i % 13 == 0 {
                Value::Null
            } else {
                Value::Int(i as i64 % 11 - 5)
            });
        }
        let canon = |v: &Value| match v {
            Value::Float(x) if *x == 0.0 => Value::Float(0.0),
            v => v.clone(),
        };
        for keys in [vec![0, 1, 2, 3], vec![1, 2, 3]] {
            let scalar = |c: usize| t.fields[c].ty.scalar;
            let layout = GroupLayout {
                keys: keys.iter().map(|&c| (c, scalar(c))).collect(),
                aggs: vec![
                    (AggFunc::Count, None),
                    (AggFunc::Sum, Some((4, Scalar::Int))),
                    (AggFunc::Sum, Some((2, Scalar::Float))),
                    (AggFunc::Avg, Some((1, Scalar::Int))),
                ],
            };
            let kt = RowType::new(keys.iter().map(|&c| t.fields[c].clone()).collect());
            let mut ot = kt.clone();
            for (name, ty) in [
                ("n", Type::INT),
                ("si", Type::INT),
                ("sf", Type::FLOAT),
                ("avg", Type::nullable(Scalar::Float)),
            ] {
                ot.fields.push(Field {
                    name: name.into(),
                    ty,
                });
            }
            // The fold: per key, count, int sum, float sum, and the int column's sum and count.
            let mut want = std::collections::BTreeMap::<String, (i64, i64, f64, f64, u64)>::new();
            for r in &rows {
                let k: Vec<Value> = keys.iter().map(|&c| canon(&r[c])).collect();
                let e = want.entry(format!("{k:?}")).or_insert((0, 0, 0.0, 0.0, 0));
                e.0 += 1;
                if let Value::Int(v) = r[4] {
                    e.1 += v;
                }
                if let Value::Float(f) = r[2] {
                    e.2 += f;
                }
                if let Value::Int(i) = r[1] {
                    e.3 += i as f64;
                    e.4 += 1;
                }
            }
            let want: Vec<String> = want
                .into_iter()
                .map(|(k, (n, si, sf, s, c))| {
                    let avg = if c == 0 {
                        Value::Null
                    } else {
                        Value::Float(s / c as f64)
                    };
                    let vals = [Value::Int(n), Value::Int(si), Value::Float(sf), avg];
                    format!("{k} {vals:?}")
                })
                .collect();
            let show = |table: &GroupTable, max: usize, max_bytes: usize| {
                let mut got = Vec::new();
                let mut from = 0;
                while from < table.groups() {
                    let mut out = Batch::new(ot.fields.len());
                    let next = table.emit(from, max, max_bytes, &mut out);
                    assert!(next > from && out.rows == next - from);
                    for r in out.to_values(&ot) {
                        let (k, v) = r.split_at(keys.len());
                        got.push(format!("{k:?} {v:?}"));
                    }
                    from = next;
                }
                got.sort();
                got
            };
            let new = || GroupTable::new(layout.clone(), kt.clone());
            let (mut whole, mut pre, mut rp, mut ep) = (new(), new(), new(), new());
            for part in rows.chunks(97) {
                let b = Batch::from_values(&t, part);
                whole.update(&b).unwrap();
                let mut parts = [
                    Batch::new(pre.partial_columns()),
                    Batch::new(pre.partial_columns()),
                ];
                pre.row_partials(&b, &mut parts);
                assert_eq!(parts[0].rows + parts[1].rows, b.rows);
                rp.merge(&parts[1]).unwrap();
                rp.merge(&parts[0]).unwrap();
                pre.clear();
                pre.update(&b).unwrap();
                let mut p = Batch::new(pre.partial_columns());
                for g in 0..pre.groups() {
                    pre.emit_partial(g, pre.group_hash(g), &mut p);
                }
                ep.merge(&p).unwrap();
                pre.clear();
            }
            assert_eq!(show(&whole, usize::MAX, usize::MAX), want, "keys {keys:?}");
            assert_eq!(show(&whole, 7, 300), want, "keys {keys:?}, small batches");
            assert_eq!(
                show(&rp, usize::MAX, usize::MAX),
                want,
                "keys {keys:?}, row partials"
            );
            assert_eq!(
                show(&ep, 5, usize::MAX),
                want,
                "keys {keys:?}, partial states"
            );
        }
    }

    #[test]
    fn row_partials_merge_like_a_table() {
        let (t, rows) = mixed_rows();
        let layout = GroupLayout {
            keys: vec![(1, Scalar::Int), (3, Scalar::Bool)],
            aggs: vec![
                (AggFunc::Count, None),
                (AggFunc::Min, Some((1, Scalar::Int))),
                (AggFunc::Sum, Some((2, Scalar::Float))),
                (AggFunc::Avg, Some((1, Scalar::Int))),
                (AggFunc::Min, Some((0, Scalar::Str))),
                (AggFunc::Max, Some((2, Scalar::Float))),
                (AggFunc::First, Some((0, Scalar::Str))),
                (AggFunc::Last, Some((2, Scalar::Float))),
                (AggFunc::CountDistinct, Some((0, Scalar::Str))),
            ],
        };
        let kt = RowType::new(vec![t.fields[1].clone(), t.fields[3].clone()]);
        let mut whole = GroupTable::new(layout.clone(), kt.clone());
        let mut pre = GroupTable::new(layout.clone(), kt.clone());
        let mut fin = GroupTable::new(layout.clone(), kt.clone());
        for (chunk, part) in rows.chunks(97).enumerate() {
            let b = Batch::from_values(&t, part);
            let at = (chunk % 2 == 0).then_some((3, chunk as u64));
            whole.set_position(at);
            whole.update(&b).unwrap();
            pre.set_position(at);
            let mut parts = [
                Batch::new(pre.partial_columns()),
                Batch::new(pre.partial_columns()),
            ];
            pre.row_partials(&b, &mut parts);
            assert_eq!(parts[0].rows + parts[1].rows, b.rows);
            // The owners in reverse: merging is by position, not arrival.
            fin.merge(&parts[1]).unwrap();
            fin.merge(&parts[0]).unwrap();
        }
        assert_eq!(whole.groups(), fin.groups());
        let cols = 2 + layout.aggs.len();
        let (mut x, mut y) = (Batch::new(cols), Batch::new(cols));
        whole.emit(0, usize::MAX, usize::MAX, &mut x);
        fin.emit(0, usize::MAX, usize::MAX, &mut y);
        let mut ot = kt.clone();
        for (i, ty) in [
            Type::INT,
            Type::nullable(Scalar::Int),
            Type::FLOAT,
            Type::nullable(Scalar::Float),
            Type::nullable(Scalar::Str),
            Type::nullable(Scalar::Float),
            Type::nullable(Scalar::Str),
            Type::nullable(Scalar::Float),
            Type::INT,
        ]
        .into_iter()
        .enumerate()
        {
            ot.fields.push(Field {
                name: format!("a{i}"),
                ty,
            });
        }
        let key = |r: &Vec<Value>| format!("{:?}", &r[..2]);
        let mut want = x.to_values(&ot);
        let mut got = y.to_values(&ot);
        want.sort_by_key(key);
        got.sort_by_key(key);
        assert_eq!(format!("{want:?}"), format!("{got:?}"));
    }

    /// A key of one column goes through the small-key cache: few keys (null, short and long
    /// strings, -0.0 and 0.0, NaN), then a run of distinct keys (the cache stops paying and is
    /// skipped), then the few again, under a limit that makes the table stop and start empty
    /// (the cache must not outlive its groups): every row counted in its group, as a fold does.
    #[test]
    fn one_column_keys_through_the_small_key_cache_count_like_a_fold() {
        let long = "k".repeat(40);
        type Gen = Box<dyn Fn(i64) -> Value>;
        let cases: Vec<(Scalar, Gen)> = vec![
            (
                Scalar::Str,
                Box::new(move |i| match i {
                    0 => Value::Null,
                    1..=6 => Value::Str(format!("id{i:03}")),
                    7..=9 => Value::Str(format!("{long}{i}")),
                    _ => Value::Str(format!("id{i:010}")),
                }),
            ),
            (
                Scalar::Float,
                Box::new(|i| match i {
                    0 => Value::Null,
                    1 => Value::Float(-0.0),
                    2 => Value::Float(0.0),
                    3 => Value::Float(f64::NAN),
                    _ => Value::Float(i as f64 / 8.0),
                }),
            ),
            (
                Scalar::Int,
                Box::new(|i| {
                    if i == 0 {
                        Value::Null
                    } else {
                        Value::Int(i - 2)
                    }
                }),
            ),
        ];
        for (scalar, value) in cases {
            let t = RowType::new(vec![Field {
                name: "k".into(),
                ty: Type::nullable(scalar),
            }]);
            // Few keys, many distinct ones, few again.
            let rows: Vec<Vec<Value>> = (0..9000i64)
                .map(|i| {
                    let k = if (3000..6000).contains(&i) {
                        i * 131
                    } else {
                        i % 13
                    };
                    vec![value(k)]
                })
                .collect();
            let show = |v: &Value| match v {
                Value::Float(x) if *x == 0.0 => "0.0".to_string(),
                Value::Float(x) if x.is_nan() => "NaN".to_string(),
                v => format!("{v:?}"),
            };
            let mut want: std::collections::HashMap<String, i64> = Default::default();
            for r in &rows {
                *want.entry(show(&r[0])).or_default() += 1;
            }
            let layout = GroupLayout {
                keys: vec![(0, scalar)],
                aggs: vec![(AggFunc::Count, None)],
            };
            let one = |k: &[Value]| show(&k[0]);
            let (got, stops) = counts_through_stops(&t, &rows, layout, 48 << 10, 1500, &one);
            assert!(stops > 1, "{scalar:?}");
            assert_eq!(got, want, "{scalar:?}");
        }
    }

    /// Rows of three key columns (a string: null, empty, short and longer than 16 bytes; a
    /// float: null, -0.0 and 0.0, NaN; an int) and a nullable int value; key `i` of each
    /// column from `key(row)`.
    fn three_key_rows(n: i64, key: &dyn Fn(i64) -> [i64; 3]) -> (RowType, Vec<Vec<Value>>) {
        let cols = [
            ("s", Scalar::Str),
            ("f", Scalar::Float),
            ("i", Scalar::Int),
            ("v", Scalar::Int),
        ];
        let t = RowType::new(
            cols.iter()
                .map(|&(name, s)| Field {
                    name: name.into(),
                    ty: Type::nullable(s),
                })
                .collect(),
        );
        let long = "x".repeat(17);
        let rows = (0..n)
            .map(|r| {
                let [a, b, c] = key(r);
                vec![
                    match a {
                        0 => Value::Null,
                        1 => Value::Str(String::new()),
                        2..=4 => Value::Str(format!("{long}{a}")),
                        _ => Value::Str(format!("v{}", "y".repeat(a as usize % 16))),
                    },
                    match b {
                        0 => Value::Null,
                        1 => Value::Float(-0.0),
                        2 => Value::Float(0.0),
                        3 => Value::Float(f64::NAN),
                        _ => Value::Float(b as f64 / 4.0),
                    },
                    if c == 0 {
                        Value::Null
                    } else {
                        Value::Int(c * 1_000_003)
                    },
                    if r % 7 == 0 {
                        Value::Null
                    } else {
                        Value::Int(r % 100)
                    },
                ]
            })
            .collect();
        (t, rows)
    }

    fn show_keys(k: &[Value]) -> String {
        k.iter()
            .map(|v| match v {
                Value::Float(x) if *x == 0.0 => "0.0".to_string(),
                Value::Float(x) if x.is_nan() => "NaN".to_string(),
                v => format!("{v:?}"),
            })
            .collect::<Vec<_>>()
            .join("|")
    }

    /// Count and sum per key of `rows` through one table (`chunk` rows a batch) against a
    /// plain fold; the table, to look at.
    fn dict_counts(t: &RowType, rows: &[Vec<Value>], chunk: usize) -> GroupTable {
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Str), (1, Scalar::Float), (2, Scalar::Int)],
            aggs: vec![
                (AggFunc::Count, None),
                (AggFunc::Sum, Some((3, Scalar::Int))),
            ],
        };
        let kt = RowType::new(t.fields[..3].to_vec());
        let mut g = GroupTable::new(layout, kt.clone());
        for part in rows.chunks(chunk) {
            g.update(&Batch::from_values(t, part)).unwrap();
        }
        let mut want: std::collections::HashMap<String, (i64, i64)> = Default::default();
        let mut order = Vec::new();
        for r in rows {
            let k = show_keys(&r[..3]);
            let e = want.entry(k.clone()).or_insert_with(|| {
                order.push(k);
                (0, 0)
            });
            e.0 += 1;
            if let Value::Int(v) = r[3] {
                e.1 += v;
            }
        }
        let mut out = Batch::new(5);
        g.emit(0, usize::MAX, usize::MAX, &mut out);
        let mut ot = kt;
        for name in ["n", "s"] {
            ot.fields.push(Field {
                name: name.into(),
                ty: Type::INT,
            });
        }
        let got = out.to_values(&ot);
        let keys: Vec<String> = got.iter().map(|r| show_keys(&r[..3])).collect();
        assert_eq!(keys, order, "groups in first-seen order");
        for r in &got {
            let (Value::Int(n), Value::Int(s)) = (&r[3], &r[4]) else {
                panic!("{r:?}")
            };
            assert_eq!(want[&show_keys(&r[..3])], (*n, *s), "{r:?}");
        }
        g
    }

    /// Few keys (nulls, -0.0 and 0.0, NaN, strings longer than a dictionary holds) go through
    /// the dictionaries, which stay on; counted and summed as a fold does, in first-seen order.
    #[test]
    fn few_keys_through_the_dictionaries_count_like_a_fold() {
        let (t, rows) = three_key_rows(20_000, &|r| [r % 11, (r / 3) % 9, (r / 7) % 5]);
        let g = dict_counts(&t, &rows, 1000);
        assert!(!g.dicts.off);
        assert!(g.dicts.combos > 100, "{}", g.dicts.combos);
        // One key column: the direct map.
        let t1 = RowType::new(vec![t.fields[0].clone()]);
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Str)],
            aggs: vec![(AggFunc::Count, None)],
        };
        let one = |k: &[Value]| show_keys(k);
        let rows1: Vec<Vec<Value>> = rows.iter().map(|r| vec![r[0].clone()]).collect();
        let (got, _) = counts_through_stops(&t1, &rows1, layout, usize::MAX, 999, &one);
        let mut want: std::collections::HashMap<String, i64> = Default::default();
        for r in &rows1 {
            *want.entry(show_keys(r)).or_default() += 1;
        }
        assert_eq!(got, want);
    }

    /// A str key column after the first (its codes ORed into the first column's, which are
    /// written in place of stale ones from the previous batch), long strings and nulls among
    /// its values: the counts of a fold.
    #[test]
    fn a_later_str_key_column_counts_like_a_fold() {
        let (t, rows) = three_key_rows(20_000, &|r| [(r / 5) % 13, r % 4, r % 3]);
        // (i, s): the int key first, the str key second.
        let t = RowType::new(vec![t.fields[2].clone(), t.fields[0].clone()]);
        let rows: Vec<Vec<Value>> = rows
            .iter()
            .map(|r| vec![r[2].clone(), r[0].clone()])
            .collect();
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Int), (1, Scalar::Str)],
            aggs: vec![(AggFunc::Count, None)],
        };
        let show = |k: &[Value]| show_keys(k);
        for chunk in [999, 4096] {
            let (got, _) =
                counts_through_stops(&t, &rows, layout.clone(), usize::MAX, chunk, &show);
            let mut want: std::collections::HashMap<String, i64> = Default::default();
            for r in &rows {
                *want.entry(show_keys(r)).or_default() += 1;
            }
            assert_eq!(got, want, "chunk {chunk}");
        }
    }

    /// A column with more values than its dictionary holds (in the middle of a batch), and more
    /// combinations than the path keeps: the table goes the general way from there, with the
    /// same counts.
    #[test]
    fn dictionaries_turn_off_when_the_keys_grow_many() {
        // Few, then many values of the int column, then few again.
        let (t, rows) = three_key_rows(12_000, &|r| {
            let c = if (4000..8000).contains(&r) { r } else { r % 3 };
            [r % 6, r % 4, c]
        });
        let g = dict_counts(&t, &rows, 1500);
        assert!(g.dicts.off);
        assert_eq!(g.dict_bytes, 0);
        // Many combinations of few values each (200 x 200 > COMBO_MAX).
        let (t, rows) = three_key_rows(50_000, &|r| [5 + r % 2, 4 + r % 200, (r / 200) % 200]);
        let g = dict_counts(&t, &rows, 4096);
        assert!(g.dicts.off);
    }

    /// The dictionaries take at most an eighth of a small limit: a table of many distinct keys
    /// under 64 KiB still holds groups at every stop (it spills them rather than failing).
    #[test]
    fn dictionaries_leave_a_small_limit_to_the_groups() {
        let (t, layout) = int_key_count();
        let rows: Vec<Vec<Value>> = (0..20_000).map(|i| vec![Value::Int(i)]).collect();
        let mut g = GroupTable::new(layout, RowType::new(vec![t.fields[0].clone()]));
        g.set_limit(64 << 10);
        let (mut stops, mut total) = (0, 0);
        for part in rows.chunks(1000) {
            let b = Batch::from_values(&t, part);
            let mut from = 0;
            while let Some(r) = g.add(&b, from).unwrap() {
                assert!(g.groups() > 0, "a stop at row {r} with no group");
                assert!(g.dict_bytes <= (64 << 10) / 8);
                total += g.groups();
                g.release();
                stops += 1;
                from = r;
            }
        }
        total += g.groups();
        assert!(stops > 2, "{stops}");
        assert_eq!(total, 20_000);
    }

    /// Under a limit that stops the table again and again while the dictionaries are on (and
    /// their map of combinations cannot grow past it), every row is counted in its group.
    #[test]
    fn dictionaries_under_a_limit_count_like_a_fold() {
        let (t, rows) = three_key_rows(30_000, &|r| [5 + r % 10, 4 + (r / 10) % 30, 1 + r % 7]);
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Str), (1, Scalar::Float), (2, Scalar::Int)],
            aggs: vec![(AggFunc::Count, None)],
        };
        let mut want: std::collections::HashMap<String, i64> = Default::default();
        for r in &rows {
            *want.entry(show_keys(&r[..3])).or_default() += 1;
        }
        let (got, stops) = counts_through_stops(&t, &rows, layout, 96 << 10, 2000, &show_keys);
        assert!(stops > 2, "{stops}");
        assert_eq!(got, want);
    }

    /// The count per key (named by `show`) of `rows` through a table of `layout` (a `count()`
    /// last) under `limit`, added `chunk` rows at a time and emptied (by `clear` and `release` in
    /// turn) at every stop, as the spill does; and the number of stops.
    fn counts_through_stops(
        t: &RowType,
        rows: &[Vec<Value>],
        layout: GroupLayout,
        limit: usize,
        chunk: usize,
        show: &dyn Fn(&[Value]) -> String,
    ) -> (std::collections::HashMap<String, i64>, usize) {
        let k = layout.keys.len();
        let mut ot = RowType::new(
            layout
                .keys
                .iter()
                .map(|&(c, _)| t.fields[c].clone())
                .collect(),
        );
        ot.fields.push(Field {
            name: "n".into(),
            ty: Type::INT,
        });
        let mut g = GroupTable::new(layout, t.clone());
        g.set_limit(limit);
        let mut got: std::collections::HashMap<String, i64> = Default::default();
        let mut stops = 0;
        for part in rows.chunks(chunk) {
            let b = Batch::from_values(t, part);
            let mut from = 0;
            loop {
                let stop = g.add(&b, from).unwrap();
                let mut out = Batch::new(k + 1);
                g.emit(0, usize::MAX, usize::MAX, &mut out);
                for r in out.to_values(&ot) {
                    let Value::Int(n) = r[k] else {
                        panic!("count {r:?}")
                    };
                    *got.entry(show(&r[..k])).or_default() += n;
                }
                if stops % 2 == 0 {
                    g.clear();
                } else {
                    g.release();
                }
                match stop {
                    Some(r) => {
                        from = r;
                        stops += 1;
                    }
                    None => break,
                }
            }
        }
        (got, stops)
    }

    /// `rows` aggregated by one table, and by a table per `chunk` rows whose partial states (with
    /// kept hashes if `keep`) are merged into another: both tables' groups, emitted.
    fn whole_and_merged(
        t: &RowType,
        rows: &[Vec<Value>],
        layout: &GroupLayout,
        kt: &RowType,
        chunk: usize,
        keep: bool,
    ) -> (Batch, Batch) {
        let mut whole = GroupTable::new(layout.clone(), kt.clone());
        whole.update(&Batch::from_values(t, rows)).unwrap();
        let mut fin = GroupTable::new(layout.clone(), kt.clone());
        for part in rows.chunks(chunk) {
            let mut pre = GroupTable::new(layout.clone(), kt.clone());
            pre.set_keep_hashes(keep);
            pre.update(&Batch::from_values(t, part)).unwrap();
            let mut b = Batch::new(pre.partial_columns());
            for g in 0..pre.groups() {
                pre.emit_partial(g, pre.group_hash(g), &mut b);
            }
            fin.merge(&b).unwrap();
        }
        let cols = kt.fields.len() + layout.aggs.len();
        let (mut x, mut y) = (Batch::new(cols), Batch::new(cols));
        whole.emit(0, usize::MAX, usize::MAX, &mut x);
        fin.emit(0, usize::MAX, usize::MAX, &mut y);
        (x, y)
    }
}
