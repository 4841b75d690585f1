//! The output buffer of the text writers (CSV, JSON lines) and the byte scans they share.
//!
//! `OutBuf` is a fully initialised byte buffer with a write position. A writer asks for room
//! (`room`) before each field — that is where the buffer is flushed to the output when full —
//! and then writes without capacity checks; short pieces (numbers, names) are copied with two
//! overlapping fixed-size moves instead of a `memcpy` call. Bytes past the position are scratch.
//!
//! `any_word` scans a field a word (8 bytes) at a time, with overlapping loads for the tail, so
//! a writer can tell whether a field needs quoting or escaping without a per-byte loop.

use std::io::{self, Write};

/// Bytes beyond any `room` request that are always available: `small` may write up to this
/// many bytes past the end of what it copies.
const SLACK: usize = 32;

/// The size of the pieces `OutBuf::fixed` copies (all of them may land in the slack).
pub const FIXED: usize = SLACK;

pub struct OutBuf {
    /// Its length is the usable size; `buf[..pos]` is the pending output.
    buf: Vec<u8>,
    pos: usize,
    /// Bytes already written to the output by `flush_to`.
    flushed: u64,
}

impl OutBuf {
    pub fn new(size: usize) -> OutBuf {
        OutBuf {
            buf: vec![0; size.max(4 * SLACK)],
            pos: 0,
            flushed: 0,
        }
    }

    /// The pending output.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.pos]
    }

    pub fn len(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// All bytes written so far: flushed or pending.
    #[inline]
    pub fn written(&self) -> u64 {
        self.flushed + self.pos as u64
    }

    /// Makes sure `n` more bytes fit, writing the pending output to `out` first if they do not
    /// (and growing the buffer if `n` alone is larger than it).
    #[inline]
    pub fn room(&mut self, n: usize, out: &mut dyn Write) -> io::Result<()> {
        if self.pos + n + SLACK > self.buf.len() {
            self.flush_to(out)?;
            if n + SLACK > self.buf.len() {
                self.buf.resize(n + SLACK, 0);
            }
        }
        Ok(())
    }

    /// Makes sure `n` more bytes fit without writing anything out (inside a record: outputs
    /// shared by several workers must only ever receive whole records).
    #[inline]
    pub fn grow(&mut self, n: usize) {
        if self.pos + n + SLACK > self.buf.len() {
            self.buf.resize(self.pos + n + SLACK, 0);
        }
    }

    /// Writes the pending output to `out` and empties the buffer.
    pub fn flush_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.buf[..self.pos])?;
        self.flushed += self.pos as u64;
        self.pos = 0;
        Ok(())
    }

    /// Appends one byte (within the room asked for).
    #[inline(always)]
    pub fn byte(&mut self, b: u8) {
        self.buf[self.pos] = b;
        self.pos += 1;
    }

    /// Appends the first `n` bytes of `s` (`n <= FIXED`, within the room asked for) with one
    /// fixed-size move; the bytes after them land in the slack and are overwritten later.
    #[inline(always)]
    pub fn fixed(&mut self, s: &[u8; FIXED], n: usize) {
        let p = self.pos;
        self.buf[p..p + FIXED].copy_from_slice(s);
        self.pos = p + n.min(FIXED);
    }

    /// Appends `s` (within the room asked for), with fixed-size moves when it is short.
    #[inline(always)]
    pub fn bytes(&mut self, s: &[u8]) {
        let n = s.len();
        let p = self.pos;
        let d = &mut self.buf;
        if n >= 8 {
            if n <= 16 {
                d[p..p + 8].copy_from_slice(&s[..8]);
                d[p + n - 8..p + n].copy_from_slice(&s[n - 8..]);
            } else if n <= 32 {
                d[p..p + 16].copy_from_slice(&s[..16]);
                d[p + n - 16..p + n].copy_from_slice(&s[n - 16..]);
            } else {
                d[p..p + n].copy_from_slice(s);
            }
        } else if n >= 4 {
            d[p..p + 4].copy_from_slice(&s[..4]);
            d[p + n - 4..p + n].copy_from_slice(&s[n - 4..]);
        } else if n > 0 {
            d[p] = s[0];
            d[p + n / 2] = s[n / 2];
            d[p + n - 1] = s[n - 1];
        }
        self.pos = p + n;
    }
}

impl OutBuf {
    /// A cursor at the write position, for writing one record without checks: the caller has
    /// asked for room (`room`, `grow`) for everything it writes through it, and hands it back
    /// with `commit` before asking for room again (which may move the buffer).
    #[inline(always)]
    pub fn cursor(&mut self) -> Cursor {
        let base = self.buf.as_mut_ptr();
        // SAFETY: `pos <= len`, so both pointers are within (or one past) the allocation.
        unsafe {
            Cursor {
                p: base.add(self.pos),
                end: base.add(self.buf.len()),
            }
        }
    }

    /// Drops the last `n` pending bytes.
    pub fn unwrite(&mut self, n: usize) {
        self.pos = self.pos.saturating_sub(n);
    }

    /// Takes the cursor's position back as the write position.
    #[inline(always)]
    pub fn commit(&mut self, c: Cursor) {
        // SAFETY: the cursor was made from this buffer, which has not moved since (no `room`
        // or `grow` in between), and its writes stayed within it (the room asked for).
        let pos = unsafe { c.p.offset_from(self.buf.as_ptr()) } as usize;
        debug_assert!(pos <= self.buf.len());
        self.pos = pos.min(self.buf.len());
    }
}

/// An unchecked write position inside an `OutBuf` (see `OutBuf::cursor`): a record's bytes are
/// written through a pointer kept in a register, without a bounds check or a store of the
/// position per piece. Every write is `unsafe`: the caller must have asked for room for it.
pub struct Cursor {
    p: *mut u8,
    /// The end of the buffer (checked in debug builds only).
    end: *mut u8,
}

impl Cursor {
    /// Appends one byte.
    ///
    /// # Safety
    /// The byte is within the room asked for.
    #[inline(always)]
    pub unsafe fn byte(&mut self, b: u8) {
        debug_assert!(self.p < self.end);
        // SAFETY: see the function contract.
        unsafe {
            self.p.write(b);
            self.p = self.p.add(1);
        }
    }

    /// Appends the first `n` bytes of `s` (`n <= FIXED`) with one fixed-size move; the bytes
    /// after them land in the slack.
    ///
    /// # Safety
    /// The `n` bytes are within the room asked for (the move's other bytes then fall in the
    /// slack every `room` keeps).
    #[inline(always)]
    pub unsafe fn fixed(&mut self, s: &[u8; FIXED], n: usize) {
        debug_assert!(self.p.wrapping_add(FIXED) <= self.end);
        // SAFETY: see the function contract.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), self.p, FIXED);
            self.p = self.p.add(n.min(FIXED));
        }
    }

    /// Appends `s`, with fixed-size moves when it is short.
    ///
    /// # Safety
    /// `s.len()` bytes are within the room asked for.
    #[inline(always)]
    pub unsafe fn bytes(&mut self, s: &[u8]) {
        let n = s.len();
        let (d, src) = (self.p, s.as_ptr());
        debug_assert!(d.wrapping_add(n) <= self.end);
        // SAFETY: see the function contract; every read is within `s` (the overlapping moves
        // read `s[..k]` and `s[n - k..]` for `k <= n`), every write within `d[..n]`.
        unsafe {
            if n >= 8 {
                if n <= 16 {
                    let a = src.cast::<u64>().read_unaligned();
                    let b = src.add(n - 8).cast::<u64>().read_unaligned();
                    d.cast::<u64>().write_unaligned(a);
                    d.add(n - 8).cast::<u64>().write_unaligned(b);
                } else if n <= 32 {
                    let a = src.cast::<u128>().read_unaligned();
                    let b = src.add(n - 16).cast::<u128>().read_unaligned();
                    d.cast::<u128>().write_unaligned(a);
                    d.add(n - 16).cast::<u128>().write_unaligned(b);
                } else {
                    std::ptr::copy_nonoverlapping(src, d, n);
                }
            } else if n >= 4 {
                let a = src.cast::<u32>().read_unaligned();
                let b = src.add(n - 4).cast::<u32>().read_unaligned();
                d.cast::<u32>().write_unaligned(a);
                d.add(n - 4).cast::<u32>().write_unaligned(b);
            } else if n > 0 {
                *d = *src;
                *d.add(n / 2) = *src.add(n / 2);
                *d.add(n - 1) = *src.add(n - 1);
            }
            self.p = d.add(n);
        }
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// A word with byte `b` in every position.
pub const fn splat(b: u8) -> u64 {
    LO * b as u64
}

/// Whether some byte of `w` is zero (exact as a yes/no answer).
#[inline]
pub fn has_zero(w: u64) -> bool {
    w.wrapping_sub(LO) & !w & HI != 0
}

/// Whether some byte of `w` is below `n` (`n <= 128`; exact as a yes/no answer).
#[inline]
pub fn has_below(w: u64, n: u8) -> bool {
    w.wrapping_sub(splat(n)) & !w & HI != 0
}

/// Whether `hit` is true for some word covering the bytes of `s`, for `s` of 4 bytes or more
/// (words may overlap, so `hit` must be a per-byte "any" test). `None` for shorter `s`.
#[inline]
pub fn any_word(s: &[u8], hit: impl Fn(u64) -> bool) -> Option<bool> {
    let n = s.len();
    let word = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&s[i..i + 8]);
        u64::from_le_bytes(a)
    };
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if hit(word(i)) {
                return Some(true);
            }
            i += 8;
        }
        Some(hit(word(n - 8)))
    } else if n >= 4 {
        let half = |i: usize| {
            let mut a = [0u8; 4];
            a.copy_from_slice(&s[i..i + 4]);
            u32::from_le_bytes(a) as u64
        };
        Some(hit(half(0) | half(n - 4) << 32))
    } else {
        None
    }
}

/// The SSE2 scan of [`any_of4`] and [`any_json_escape`]: `hits` marks the bytes of 16 looked
/// for; 32 bytes a step (one test for both halves), then one 16-byte step. `None` if a byte of
/// `s` was hit, else `Some(i)`: none of `s[..i]` is (the rest, under 16 bytes, is the caller's).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn scan_sse2(
    s: &[u8],
    hits: impl Fn(std::arch::x86_64::__m128i) -> std::arch::x86_64::__m128i,
) -> Option<usize> {
    use std::arch::x86_64::*;
    let mut i = 0;
    // SAFETY: SSE2 is part of the x86_64 baseline; each load reads 16 bytes of `s` from `i` or
    // `i + 16`, in bounds by the loop conditions.
    unsafe {
        while i + 32 <= s.len() {
            let v = _mm_loadu_si128(s.as_ptr().add(i) as *const __m128i);
            let u = _mm_loadu_si128(s.as_ptr().add(i + 16) as *const __m128i);
            if _mm_movemask_epi8(_mm_or_si128(hits(v), hits(u))) != 0 {
                return None;
            }
            i += 32;
        }
        if i + 16 <= s.len() {
            let v = _mm_loadu_si128(s.as_ptr().add(i) as *const __m128i);
            if _mm_movemask_epi8(hits(v)) != 0 {
                return None;
            }
            i += 16;
        }
    }
    Some(i)
}

/// Whether some byte of `s` is one of `set`, 32 bytes a step (SSE2 on x86_64): the writers
/// check a whole batch's string bytes for the CSV specials (delimiter, quote, CR, LF) at once.
pub fn any_of4(s: &[u8], set: [u8; 4]) -> bool {
    #[cfg(not(target_arch = "x86_64"))]
    let i = 0;
    #[cfg(target_arch = "x86_64")]
    let i = {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline (register operations only).
        let (a, b, c, d) = unsafe {
            (
                _mm_set1_epi8(set[0] as i8),
                _mm_set1_epi8(set[1] as i8),
                _mm_set1_epi8(set[2] as i8),
                _mm_set1_epi8(set[3] as i8),
            )
        };
        // SAFETY: as above.
        let hits = |v: __m128i| unsafe {
            _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, a), _mm_cmpeq_epi8(v, b)),
                _mm_or_si128(_mm_cmpeq_epi8(v, c), _mm_cmpeq_epi8(v, d)),
            )
        };
        match scan_sse2(s, hits) {
            None => return true,
            Some(at) => at,
        }
    };
    s[i..].iter().any(|x| set.contains(x))
}

/// Whether some byte of `s` needs escaping in a JSON string (below 0x20, `"`, `\`), 32 bytes
/// a step (SSE2 on x86_64), for a whole batch's string bytes at once.
pub fn any_json_escape(s: &[u8]) -> bool {
    #[cfg(not(target_arch = "x86_64"))]
    let i = 0;
    #[cfg(target_arch = "x86_64")]
    let i = {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline (register operations only).
        let (ctl, q, bs) = unsafe {
            (
                _mm_set1_epi8(0x1f),
                _mm_set1_epi8(b'"' as i8),
                _mm_set1_epi8(b'\\' as i8),
            )
        };
        // SAFETY: as above.
        let hits = |v: __m128i| unsafe {
            // Unsigned `v <= 0x1f`: min(v, 0x1f) == v.
            let low = _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v);
            _mm_or_si128(
                low,
                _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)),
            )
        };
        match scan_sse2(s, hits) {
            None => return true,
            Some(at) => at,
        }
    };
    s[i..].iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::batch::Batch;
    use crate::types::{Field, RowType, Scalar, Type, Value};
    /// A `Write` whose bytes the test can read after the writer is done with it.
    #[derive(Clone, Default)]
    pub(crate) struct Shared(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Random rows of every scalar type (nulls, awkward strings, non-finite floats, long
    /// strings that outgrow the buffer), in batches, for the writer tests.
    pub(crate) fn random_batches(seed: u64, columns: usize) -> (RowType, Vec<Batch>) {
        let mut seed = seed;
        let mut next = move |n: u64| {
            crate::connectors::xorshift(&mut seed);
            seed % n
        };
        let scalars = [
            Scalar::Int,
            Scalar::Float,
            Scalar::Str,
            Scalar::Bool,
            Scalar::Timestamp,
            Scalar::Str,
            Scalar::Float,
        ];
        let names = ["id", "x", "s", "b", "t", "q\"uo,te", "é"];
        let fields: Vec<Field> = (0..columns)
            .map(|i| {
                let k = (next(100) as usize + i) % scalars.len();
                Field {
                    name: format!("{}{i}", names[k]),
                    ty: Type::nullable(scalars[k]),
                }
            })
            .collect();
        let t = RowType::new(fields);
        let pieces = [
            "a", "B c", ",", "\"", "\r", "\n", "\\", "\u{1}", "\u{1f}", "\u{7f}", "é", "😀", ";",
            "\t", "1", "e", "-", ".", "",
        ];
        let mut batches = Vec::new();
        for _ in 0..1 + next(6) {
            let mut rows = Vec::new();
            for _ in 0..next(40) {
                let row = t
                    .fields
                    .iter()
                    .map(|f| {
                        if next(8) == 0 {
                            return Value::Null;
                        }
                        match f.ty.scalar {
                            Scalar::Int => Value::Int(match next(4) {
                                0 => [i64::MIN, i64::MAX, 0, -1][next(4) as usize],
                                1 => next(1 << 40) as i64 - (1 << 39),
                                _ => next(100_000) as i64,
                            }),
                            Scalar::Float => Value::Float(match next(6) {
                                0 => f64::from_bits(next(u64::MAX)),
                                1 => [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0]
                                    [next(5) as usize],
                                2 => {
                                    (next(2_000_000) as f64 - 1e6)
                                        * 10f64.powi(next(50) as i32 - 25)
                                }
                                _ => (next(2_000_000) as f64 - 1e6) / 100.0,
                            }),
                            Scalar::Bool => Value::Bool(next(2) == 0),
                            Scalar::Timestamp => Value::Timestamp(next(1 << 40) as i64 - (1 << 39)),
                            _ => {
                                let n = match next(50) {
                                    0 => 300_000 + next(10) as usize,
                                    1..=5 => 20 + next(60) as usize,
                                    _ => next(14) as usize,
                                };
                                let mut x = String::new();
                                while x.len() < n {
                                    let p = if next(5) == 0 {
                                        pieces[next(pieces.len() as u64) as usize]
                                    } else {
                                        "abcdefghij"
                                    };
                                    if x.len() + p.len() <= n && !p.is_empty() {
                                        x.push_str(p);
                                    } else {
                                        x.push('z');
                                    }
                                }
                                Value::Str(x)
                            }
                        }
                    })
                    .collect();
                rows.push(row);
            }
            batches.push(Batch::from_values(&t, &rows));
        }
        (t, batches)
    }

    #[test]
    fn bytes_and_room_keep_every_byte() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            crate::connectors::xorshift(&mut seed);
            (seed % n as u64) as usize
        };
        let mut b = OutBuf::new(0);
        let mut sink: Vec<u8> = Vec::new();
        let mut want: Vec<u8> = Vec::new();
        for _ in 0..20000 {
            let len = match next(10) {
                0 => next(400),
                _ => next(40),
            };
            let s: Vec<u8> = (0..len).map(|_| next(256) as u8).collect();
            b.room(len + 1, &mut sink).unwrap();
            if len % 3 == 0 {
                b.byte(b'|');
                want.push(b'|');
            }
            b.bytes(&s);
            want.extend_from_slice(&s);
        }
        b.flush_to(&mut sink).unwrap();
        assert!(b.is_empty());
        assert_eq!(sink, want);
    }

    /// The cursor writes what the checked methods write, byte for byte.
    #[test]
    fn cursor_writes_like_bytes() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = |n: usize| {
            crate::connectors::xorshift(&mut seed);
            (seed % n as u64) as usize
        };
        let (mut a, mut b) = (OutBuf::new(0), OutBuf::new(0));
        let (mut sa, mut sb): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
        let mut key = [0u8; FIXED];
        for round in 0..20000 {
            let len = match next(10) {
                0 => next(400),
                _ => next(40),
            };
            let s: Vec<u8> = (0..len).map(|_| next(256) as u8).collect();
            let k = next(FIXED + 1);
            key.iter_mut().for_each(|x| *x = next(256) as u8);
            a.room(len + k + 1, &mut sa).unwrap();
            b.room(len + k + 1, &mut sb).unwrap();
            a.byte(b'|');
            a.fixed(&key, k);
            a.bytes(&s);
            let mut c = b.cursor();
            // SAFETY: room for `len + k + 1` bytes was asked for.
            unsafe {
                c.byte(b'|');
                c.fixed(&key, k);
                c.bytes(&s);
            }
            b.commit(c);
            assert_eq!(a.as_bytes(), b.as_bytes(), "round {round}");
        }
        a.flush_to(&mut sa).unwrap();
        b.flush_to(&mut sb).unwrap();
        assert_eq!(sa, sb);
    }

    /// The SSE2 scans over long inputs: one special byte at every position of 0..100 bytes
    /// (first block, later blocks, the tail), every byte value.
    #[test]
    fn block_scans_find_every_position() {
        for len in 0..100 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    let csv = b",\"\r\n".contains(&b);
                    assert_eq!(any_of4(&s, *b",\"\r\n"), csv, "{len} {at} {b}");
                    let json = b < 0x20 || b == b'"' || b == b'\\';
                    assert_eq!(any_json_escape(&s), json, "{len} {at} {b}");
                }
            }
            assert!(!any_of4(&vec![b'a'; len], *b",\"\r\n"));
            assert!(!any_json_escape(&vec![0x80; len]));
        }
    }

    #[test]
    fn word_scans_agree_with_byte_scans() {
        let alphabet = b"ab,\"\r\n\\\x01\x1f \x7f\xc3\xa9";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..50000 {
            let len = round % 37;
            let s: Vec<u8> = (0..len)
                .map(|_| {
                    crate::connectors::xorshift(&mut seed);
                    let k = (seed % 64) as usize;
                    // Mostly plain letters.
                    if k < alphabet.len() {
                        alphabet[k]
                    } else {
                        b'a' + (k as u8 % 26)
                    }
                })
                .collect();
            let csv = |w: u64| {
                has_zero(w ^ splat(b','))
                    || has_zero(w ^ splat(b'"'))
                    || has_zero(w ^ splat(b'\r'))
                    || has_zero(w ^ splat(b'\n'))
            };
            let json = |w: u64| {
                has_below(w, 0x20) || has_zero(w ^ splat(b'"')) || has_zero(w ^ splat(b'\\'))
            };
            let want_csv = s.iter().any(|b| b",\"\r\n".contains(b));
            let want_json = s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            match any_word(&s, csv) {
                Some(v) => assert_eq!(v, want_csv, "{s:?}"),
                None => assert!(len < 4),
            }
            if let Some(v) = any_word(&s, json) {
                assert_eq!(v, want_json, "{s:?}");
            }
            assert_eq!(any_of4(&s, *b",\"\r\n"), want_csv, "{s:?}");
            assert_eq!(any_json_escape(&s), want_json, "{s:?}");
        }
    }
}
