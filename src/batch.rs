//! The row layout of the runtime's batches, shared by connectors, kernels (JIT and interpreter)
//! and operators.
//!
//! A batch holds rows of one `RowType`, row-major, in one `Vec<u64>`: each row is `stride` words,
//! first `null_words` words of null bitmap (bit `i` set = column `i` is null; every column has a
//! bit whatever its declared nullability), then one 8-byte slot per column:
//! - int, timestamp: the `i64`; float: the `f64` bits; bool: 0 or 1;
//! - str: `(offset << 32) | len`, a byte range of the batch's `arena` (UTF-8).
//!
//! Batches are recycled: `clear` keeps both allocations. A filter's output shares its input's
//! string bytes instead of copying them ([`Arena::share`]).

use crate::types::{RowType, Scalar, Value};
use std::sync::Arc;

/// The byte budget of one batch: a source ends a chunk once its batch holds this much (row
/// words plus string bytes) even if it has fewer rows than the batch size, and the group
/// operator cuts its output batches at it. 8 MiB keeps a chunk of very wide rows (200 KB
/// strings: 40 rows) as cheap as a default chunk of narrow ones (16,384 rows of 4 columns:
/// 0.6 MB of words plus their strings) without making narrow chunks smaller.
pub const BATCH_BYTES: usize = 8 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub columns: usize,
    pub null_words: usize,
    pub stride: usize,
}

impl Layout {
    pub fn new(columns: usize) -> Layout {
        let null_words = columns.div_ceil(64).max(1);
        Layout {
            columns,
            null_words,
            stride: null_words + columns,
        }
    }
    /// Word offset of column `col`'s slot within a row.
    pub fn slot(&self, col: usize) -> usize {
        self.null_words + col
    }
}

#[derive(Clone, Debug)]
pub struct Batch {
    pub layout: Layout,
    pub rows: usize,
    pub words: Vec<u64>,
    pub arena: Arena,
}

/// The string bytes of a batch: its own, or those of another batch it shares (a filter's
/// output keeps its input's strings where they are, so a kept row moves as its words alone).
/// Reads (it derefs to `[u8]`) see the shared bytes; the first write to a shared arena copies
/// them into its own (copy on write), so a shared batch is never changed and the slots keep
/// their offsets either way.
#[derive(Clone, Debug, Default)]
pub struct Arena {
    own: Vec<u8>,
    /// The batch whose (own) arena this one reads; `own` is empty while it is set.
    shared: Option<Arc<Batch>>,
}

impl Arena {
    pub fn with_capacity(n: usize) -> Arena {
        Arena {
            own: Vec::with_capacity(n),
            shared: None,
        }
    }

    /// Makes this (empty or discarded) arena read `batch`'s string bytes: slots copied from
    /// `batch` stay valid here.
    pub fn share(&mut self, batch: &Arc<Batch>) {
        self.own.clear();
        self.shared = Some(match &batch.arena.shared {
            Some(inner) => inner.clone(),
            None => batch.clone(),
        });
    }

    /// The batch whose bytes this arena shares, taken away (the arena is then empty): the
    /// batch pool recycles it.
    pub fn take_shared(&mut self) -> Option<Arc<Batch>> {
        self.shared.take()
    }

    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The bytes, for writing: a shared arena becomes its own copy first.
    #[inline]
    pub fn vec_mut(&mut self) -> &mut Vec<u8> {
        if self.shared.is_some() {
            self.unshare();
        }
        &mut self.own
    }

    #[cold]
    fn unshare(&mut self) {
        if let Some(b) = self.shared.take() {
            self.own.clear();
            self.own.extend_from_slice(&b.arena.own);
        }
    }

    #[inline]
    pub fn extend_from_slice(&mut self, s: &[u8]) {
        self.vec_mut().extend_from_slice(s)
    }

    pub fn truncate(&mut self, n: usize) {
        self.vec_mut().truncate(n)
    }

    pub fn reserve_exact(&mut self, n: usize) {
        self.vec_mut().reserve_exact(n)
    }

    /// Empties the arena (a shared one lets go of the batch it read), keeping the allocation.
    pub fn clear(&mut self) {
        self.shared = None;
        self.own.clear();
    }

    /// The capacity of its own allocation.
    pub fn capacity(&self) -> usize {
        self.own.capacity()
    }
}

impl std::ops::Deref for Arena {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.shared {
            Some(b) => &b.arena.own,
            None => &self.own,
        }
    }
}

impl From<Vec<u8>> for Arena {
    fn from(own: Vec<u8>) -> Arena {
        Arena { own, shared: None }
    }
}

impl PartialEq for Arena {
    fn eq(&self, other: &Arena) -> bool {
        **self == **other
    }
}

impl Batch {
    pub fn new(columns: usize) -> Batch {
        Batch {
            layout: Layout::new(columns),
            rows: 0,
            words: Vec::new(),
            arena: Arena::default(),
        }
    }

    pub fn with_capacity(columns: usize, rows: usize, arena_bytes: usize) -> Batch {
        let layout = Layout::new(columns);
        Batch {
            layout,
            rows: 0,
            words: Vec::with_capacity(rows * layout.stride),
            arena: Arena::with_capacity(arena_bytes),
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    /// The bytes of data the batch holds: its row words and string bytes.
    pub fn bytes(&self) -> usize {
        self.words.len() * 8 + self.arena.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Empties the batch, keeping its allocations (and its layout).
    pub fn clear(&mut self) {
        self.rows = 0;
        self.words.clear();
        self.arena.clear();
    }

    /// Re-targets a recycled batch to another column count.
    pub fn reset(&mut self, columns: usize) {
        self.clear();
        self.layout = Layout::new(columns);
    }

    /// Appends a row of all-null columns and returns its index; fill it with the setters.
    #[inline]
    pub fn push_row(&mut self) -> usize {
        let stride = self.layout.stride;
        let start = self.words.len();
        self.words.resize(start + stride, 0);
        // Set the null bits of all columns, a word at a time.
        let mut left = self.layout.columns;
        let mut w = start;
        while left >= 64 {
            self.words[w] = u64::MAX;
            w += 1;
            left -= 64;
        }
        if left > 0 {
            self.words[w] = (1u64 << left) - 1;
        }
        self.rows += 1;
        self.rows - 1
    }

    /// Appends a row given as its words (null words and slots; `stride` of them), e.g. a row
    /// of a batch whose arena this one shares.
    #[inline]
    pub fn push_words(&mut self, words: &[u64]) {
        debug_assert_eq!(words.len(), self.layout.stride);
        self.words.extend_from_slice(words);
        self.rows += 1;
    }

    /// Copies the strings of columns `str_cols` of rows `from..` out of `src` (the arena their
    /// slots point into: another batch's, or the one this batch shares) into this batch's own
    /// arena, rewriting their slots; a slot out of `src`'s range becomes "", as `get_str` reads it.
    pub fn copy_strings_from(&mut self, src: &[u8], from: usize, str_cols: &[usize]) {
        for r in from..self.rows {
            for &c in str_cols {
                if !self.is_null(r, c) {
                    let w = self.raw(r, c);
                    let (off, len) = ((w >> 32) as usize, (w & 0xffff_ffff) as usize);
                    self.set_str_bytes(r, c, src.get(off..off + len).unwrap_or(&[]));
                }
            }
        }
    }

    /// Gives a batch that shares another's strings its own copy of those its rows use (columns
    /// `str_cols`): a filter that kept few rows then does not hold its whole input.
    pub fn own_strings(&mut self, str_cols: &[usize]) {
        if let Some(src) = self.arena.take_shared() {
            self.copy_strings_from(&src.arena, 0, str_cols);
        }
    }

    /// Removes the last row (e.g. one that failed to parse half-way). Its arena bytes stay until
    /// `clear`.
    pub fn pop_row(&mut self) {
        if self.rows > 0 {
            self.rows -= 1;
            self.words.truncate(self.rows * self.layout.stride);
        }
    }

    #[inline]
    fn base(&self, row: usize) -> usize {
        row * self.layout.stride
    }

    #[inline]
    pub fn is_null(&self, row: usize, col: usize) -> bool {
        self.words[self.base(row) + col / 64] >> (col % 64) & 1 == 1
    }
    #[inline]
    pub fn set_null(&mut self, row: usize, col: usize) {
        let b = self.base(row);
        self.words[b + col / 64] |= 1 << (col % 64);
    }
    #[inline]
    fn set_present(&mut self, row: usize, col: usize, word: u64) {
        let b = self.base(row);
        self.words[b + col / 64] &= !(1 << (col % 64));
        self.words[b + self.layout.slot(col)] = word;
    }

    #[inline]
    pub fn raw(&self, row: usize, col: usize) -> u64 {
        self.words[self.base(row) + self.layout.slot(col)]
    }
    #[inline]
    pub fn get_int(&self, row: usize, col: usize) -> i64 {
        self.raw(row, col) as i64
    }
    #[inline]
    pub fn get_float(&self, row: usize, col: usize) -> f64 {
        f64::from_bits(self.raw(row, col))
    }
    #[inline]
    pub fn get_bool(&self, row: usize, col: usize) -> bool {
        self.raw(row, col) != 0
    }
    pub fn get_str(&self, row: usize, col: usize) -> &str {
        let w = self.raw(row, col);
        let (off, len) = ((w >> 32) as usize, (w & 0xffff_ffff) as usize);
        // The arena only ever receives whole UTF-8 strings (`set_str`), so this cannot fail;
        // fall back to "" rather than panic if a bug ever broke that.
        self.arena
            .get(off..off + len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// The bytes of a str slot without re-checking UTF-8 (they were checked when stored).
    #[inline]
    pub fn get_str_bytes(&self, row: usize, col: usize) -> &[u8] {
        let w = self.raw(row, col);
        let (off, len) = ((w >> 32) as usize, (w & 0xffff_ffff) as usize);
        self.arena.get(off..off + len).unwrap_or(&[])
    }

    #[inline]
    pub fn set_int(&mut self, row: usize, col: usize, v: i64) {
        self.set_present(row, col, v as u64)
    }
    #[inline]
    pub fn set_float(&mut self, row: usize, col: usize, v: f64) {
        self.set_present(row, col, v.to_bits())
    }
    #[inline]
    pub fn set_bool(&mut self, row: usize, col: usize, v: bool) {
        self.set_present(row, col, v as u64)
    }
    #[inline]
    pub fn set_str(&mut self, row: usize, col: usize, s: &str) {
        self.set_str_bytes(row, col, s.as_bytes())
    }

    /// Stores bytes that the caller knows to be UTF-8 (copied from another str slot, or checked
    /// by the caller), without checking again. The arena must only ever hold UTF-8.
    #[inline]
    pub fn set_str_bytes(&mut self, row: usize, col: usize, s: &[u8]) {
        let arena = self.arena.vec_mut();
        let off = arena.len() as u64;
        arena.extend_from_slice(s);
        self.set_present(row, col, (off << 32) | s.len() as u64)
    }

    /// Stores the first `len` bytes of `chunk` (`len <= 16`, UTF-8 as for `set_str_bytes`) with
    /// one fixed-size copy.
    #[inline]
    pub fn set_str_prefix(&mut self, row: usize, col: usize, chunk: &[u8; 16], len: usize) {
        let arena = self.arena.vec_mut();
        let off = arena.len();
        arena.extend_from_slice(chunk);
        arena.truncate(off + len.min(16));
        self.set_present(row, col, ((off as u64) << 32) | len.min(16) as u64)
    }

    pub fn get_value(&self, row: usize, col: usize, scalar: Scalar) -> Value {
        if self.is_null(row, col) {
            return Value::Null;
        }
        match scalar {
            Scalar::Int => Value::Int(self.get_int(row, col)),
            Scalar::Float => Value::Float(self.get_float(row, col)),
            Scalar::Bool => Value::Bool(self.get_bool(row, col)),
            Scalar::Str => Value::Str(self.get_str(row, col).to_string()),
            Scalar::Timestamp => Value::Timestamp(self.get_int(row, col)),
            Scalar::Null => Value::Null,
        }
    }

    pub fn set_value(&mut self, row: usize, col: usize, v: &Value) {
        match v {
            Value::Null => self.set_null(row, col),
            Value::Int(i) | Value::Timestamp(i) => self.set_int(row, col, *i),
            Value::Float(x) => self.set_float(row, col, *x),
            Value::Bool(b) => self.set_bool(row, col, *b),
            Value::Str(s) => self.set_str(row, col, s),
        }
    }

    /// The rows as values (tests, the interpreter, small outputs).
    pub fn to_values(&self, types: &RowType) -> Vec<Vec<Value>> {
        (0..self.rows)
            .map(|r| {
                types
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(c, f)| self.get_value(r, c, f.ty.scalar))
                    .collect()
            })
            .collect()
    }

    pub fn from_values(types: &RowType, rows: &[Vec<Value>]) -> Batch {
        let mut b = Batch::new(types.len());
        for row in rows {
            let r = b.push_row();
            for (c, v) in row.iter().enumerate() {
                b.set_value(r, c, v);
            }
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Field, Type};

    #[test]
    fn values_round_trip_through_a_batch() {
        let t = RowType::new(vec![
            Field {
                name: "a".into(),
                ty: Type::nullable(Scalar::Int),
            },
            Field {
                name: "b".into(),
                ty: Type::STR,
            },
            Field {
                name: "c".into(),
                ty: Type::FLOAT,
            },
        ]);
        let rows = vec![
            vec![
                Value::Int(1),
                Value::Str("é".into()),
                Value::Float(f64::INFINITY),
            ],
            vec![Value::Null, Value::Str(String::new()), Value::Float(-0.0)],
        ];
        let b = Batch::from_values(&t, &rows);
        assert_eq!(b.to_values(&t), rows);
    }

    /// A batch sharing another's strings reads them through its own slots; writing to it
    /// copies them first, so the shared batch never changes and every slot stays valid.
    #[test]
    fn shared_arenas_read_through_and_copy_on_write() {
        let t = RowType::new(vec![Field {
            name: "s".into(),
            ty: Type::nullable(Scalar::Str),
        }]);
        let rows: Vec<Vec<Value>> = ["ab", "", "héllo"]
            .iter()
            .map(|s| vec![Value::Str(s.to_string())])
            .collect();
        let input = Arc::new(Batch::from_values(&t, &rows));
        let mut out = Batch::new(1);
        for r in [2, 0] {
            let stride = input.layout.stride;
            out.push_words(&input.words[r * stride..(r + 1) * stride]);
        }
        out.arena.share(&input);
        assert!(out.arena.is_shared());
        assert_eq!(out.get_str(0, 0), "héllo");
        assert_eq!(out.get_str(1, 0), "ab");
        // Sharing a sharing batch points at the owner of the bytes.
        let outer = Arc::new(out.clone());
        let mut again = Batch::new(1);
        again.push_words(&outer.words[..outer.layout.stride]);
        again.arena.share(&outer);
        assert_eq!(again.get_str(0, 0), "héllo");
        assert!(Arc::ptr_eq(
            again.arena.take_shared().as_ref().unwrap(),
            &input
        ));
        // A copy of only the strings its rows use.
        let mut own = out.clone();
        own.own_strings(&[0]);
        assert!(!own.arena.is_shared());
        assert_eq!(&own.arena[..], "hélloab".as_bytes());
        assert_eq!(own.to_values(&t), out.to_values(&t));
        // Copy on write.
        let r = out.push_row();
        out.set_str(r, 0, "new");
        assert!(!out.arena.is_shared());
        assert_eq!(
            out.to_values(&t),
            vec![
                vec![Value::Str("héllo".into())],
                vec![Value::Str("ab".into())],
                vec![Value::Str("new".into())],
            ]
        );
        assert_eq!(input.to_values(&t), rows);
        out.clear();
        assert!(out.arena.is_empty() && out.rows == 0);
    }
}
