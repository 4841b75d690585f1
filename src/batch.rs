//! The row layout of the runtime's batches, shared by connectors, kernels (JIT and interpreter)
//! and operators.
//!
//! A batch holds rows of one `RowType`, row-major, in one `Vec<u64>`: each row is `stride` words,
//! first `null_words` words of null bitmap (bit `i` set = column `i` is null; every column has a
//! bit whatever its declared nullability), then one 8-byte slot per column:
//! - int, timestamp: the `i64`; float: the `f64` bits; bool: 0 or 1;
//! - str: `(offset << 32) | len`, a byte range of the batch's `arena` (UTF-8).
//!
//! Batches are recycled: `clear` keeps both allocations.

use crate::types::{RowType, Scalar, Value};

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
    pub arena: Vec<u8>,
}

impl Batch {
    pub fn new(columns: usize) -> Batch {
        Batch {
            layout: Layout::new(columns),
            rows: 0,
            words: Vec::new(),
            arena: Vec::new(),
        }
    }

    pub fn with_capacity(columns: usize, rows: usize, arena_bytes: usize) -> Batch {
        let layout = Layout::new(columns);
        Batch {
            layout,
            rows: 0,
            words: Vec::with_capacity(rows * layout.stride),
            arena: Vec::with_capacity(arena_bytes),
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
        let off = self.arena.len() as u64;
        self.arena.extend_from_slice(s.as_bytes());
        self.set_present(row, col, (off << 32) | s.len() as u64)
    }

    /// Stores bytes that the caller knows to be UTF-8 (copied from another str slot, or checked
    /// by the caller), without checking again. The arena must only ever hold UTF-8.
    #[inline]
    pub fn set_str_bytes(&mut self, row: usize, col: usize, s: &[u8]) {
        let off = self.arena.len() as u64;
        self.arena.extend_from_slice(s);
        self.set_present(row, col, (off << 32) | s.len() as u64)
    }

    /// Stores the first `len` bytes of `chunk` (`len <= 16`, UTF-8 as for `set_str_bytes`) with
    /// one fixed-size copy.
    #[inline]
    pub fn set_str_prefix(&mut self, row: usize, col: usize, chunk: &[u8; 16], len: usize) {
        let off = self.arena.len();
        self.arena.extend_from_slice(chunk);
        self.arena.truncate(off + len.min(16));
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
}
