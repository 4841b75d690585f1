//! The CSV reader's fast path: plain records split and converted in one pass.
//!
//! A *plain* record is strictly RFC 4180, ends with one `\n`, has no `\r`, no doubled `""`
//! inside quotes and exactly the expected number of fields. [`parse_plain`] reads runs of such
//! records straight into a batch: it finds field ends with a 64-byte bitmask of the bytes that
//! matter (delimiter, `\n`, `\r`, `"`; SSE2 on x86_64) and converts each needed field as soon as
//! its end is known (numbers parsed in place, ASCII text copied once). Unneeded fields are only
//! stepped over.
//!
//! Anything else — a blank line, `\r`, a BOM, an escaped quote, a wrong field count, a value that
//! does not convert — stops the run *before* that record ([`Stop::Unusual`]), with the batch as it
//! was, and the caller reads that one record the general way (csv-core and the full checks), so
//! rows, errors and their messages are exactly those of the general path.

use crate::batch::Batch;
use crate::connectors::{fast_float_at, fast_int_at, set_empty_as_null, set_from_text};
use crate::types::{Scalar, Type};

/// What to do with one field of a record.
#[derive(Clone, Copy, Debug)]
pub enum Conv {
    Skip,
    /// Convert into batch column `col`.
    Col {
        col: usize,
        ty: Type,
    },
}

/// The per-field plan of a reader: one [`Conv`] per field of a record.
pub struct Plain {
    convs: Vec<Conv>,
    delim: u8,
}

impl Plain {
    /// `fields`: the number of fields of every record; `needed`: (field, batch column, type).
    /// `None` when the fast path cannot serve this layout (a delimiter that is itself special,
    /// a field needed twice, a column outside the record).
    pub fn new(delim: u8, fields: usize, needed: &[(usize, usize, Type)]) -> Option<Plain> {
        if matches!(delim, b'\n' | b'\r' | b'"') || fields == 0 {
            return None;
        }
        let mut convs = vec![Conv::Skip; fields];
        for &(field, col, ty) in needed {
            match convs.get_mut(field) {
                Some(c @ Conv::Skip) => *c = Conv::Col { col, ty },
                _ => return None,
            }
        }
        Some(Plain { convs, delim })
    }
}

/// Why [`parse_plain`] stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// `max_rows` rows were added.
    Full,
    /// The next record starts at or after `limit` (it belongs to the next split).
    Limit,
    /// The input ends inside the next record: read more, or (at the end of the input) let the
    /// general path read it.
    NeedMore,
    /// The next record is not plain: the general path must read it.
    Unusual,
}

/// What one call did: bytes consumed (whole records only), rows added, newlines consumed.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    pub consumed: usize,
    pub rows: usize,
    pub lines: u64,
    pub stop: Stop,
}

/// Reads plain records from the start of `input` into `out`, at most `max_rows`, not starting a
/// record at or after `limit`.
#[inline(never)]
pub fn parse_plain(
    input: &[u8],
    limit: usize,
    plain: &Plain,
    out: &mut Batch,
    max_rows: usize,
) -> Run {
    let delim = plain.delim;
    let mut scan = Specials::new(delim);
    let mut run = Run {
        consumed: 0,
        rows: 0,
        lines: 0,
        stop: Stop::Full,
    };
    while run.rows < max_rows {
        let start = run.consumed;
        if start >= limit {
            run.stop = Stop::Limit;
            return run;
        }
        match record(input, start, plain, &mut scan, out) {
            Ok((end, lines)) => {
                run.consumed = end;
                run.rows += 1;
                run.lines += lines;
            }
            Err(stop) => {
                run.stop = stop;
                return run;
            }
        }
    }
    run
}

/// One plain record starting at `pos`: `(position after its \n, newlines)`, or why not. On
/// failure the batch is left as it was. `scan` yields the special bytes from `pos` on, in order;
/// a plain record consumes all of them up to and including its `\n`.
#[inline(always)]
fn record(
    input: &[u8],
    mut pos: usize,
    plain: &Plain,
    scan: &mut Specials,
    out: &mut Batch,
) -> Result<(usize, u64), Stop> {
    match input.get(pos) {
        None => return Err(Stop::NeedMore),
        Some(b'\n' | b'\r' | 0xEF) => return Err(Stop::Unusual),
        Some(_) => {}
    }
    let row = push_row(out);
    let mark = out.arena.len();
    let fail = |out: &mut Batch, stop: Stop| {
        out.pop_row();
        out.arena.truncate(mark);
        Err(stop)
    };
    let mut lines = 1;
    // Every field but the last ends at the delimiter, the last one at `\n`.
    let Some((last, body)) = plain.convs.split_last() else {
        return fail(out, Stop::Unusual);
    };
    for conv in body {
        match take(input, pos, scan, &mut lines, conv, plain.delim, out, row) {
            Ok(p) => pos = p,
            Err(stop) => return fail(out, stop),
        }
    }
    match take(input, pos, scan, &mut lines, last, b'\n', out, row) {
        Ok(p) => pos = p,
        Err(stop) => return fail(out, stop),
    }
    Ok((pos, lines))
}

/// Reads the field at `pos`, which must end at the byte `end`, and converts it as `conv` says:
/// the position after `end`. A quoted field runs to its closing quote (a delimiter, `\r` or
/// `\n` inside is text; each `\n` counts in `lines`), which `end` must follow right away; text
/// after the closing quote, or a second quote (an escaped one), is for the general path.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn take(
    input: &[u8],
    pos: usize,
    scan: &mut Specials,
    lines: &mut u64,
    conv: &Conv,
    end: u8,
    out: &mut Batch,
    row: usize,
) -> Result<usize, Stop> {
    let p = scan.next(input).ok_or(Stop::NeedMore)?;
    // SAFETY: `p` is a position `scan` found, inside `input`.
    let c = unsafe { *input.get_unchecked(p) };
    let (s, e, p) = if c == end {
        (pos, p, p)
    } else if c == b'"' && p == pos {
        let e = loop {
            let q = scan.next(input).ok_or(Stop::NeedMore)?;
            // SAFETY: as above.
            match unsafe { *input.get_unchecked(q) } {
                b'"' => break q,
                b'\n' => *lines += 1,
                _ => {}
            }
        };
        let q = scan.next(input).ok_or(Stop::NeedMore)?;
        // SAFETY: as above.
        if q != e + 1 || unsafe { *input.get_unchecked(q) } != end {
            return Err(Stop::Unusual);
        }
        (pos + 1, e, q)
    } else {
        // Another field end than `end` (a wrong field count), a quote inside an unquoted
        // field, or a `\r`.
        return Err(Stop::Unusual);
    };
    if let Conv::Col { col, ty } = conv
        && !convert(out, row, *col, *ty, input, s, e)
    {
        return Err(Stop::Unusual);
    }
    Ok(p + 1)
}

/// `Batch::push_row` without a `memset` call per row: a row of at most 8 words (at most 7
/// columns) is cleared with one fixed 64-byte store into reserved capacity.
#[inline(always)]
fn push_row(out: &mut Batch) -> usize {
    let (stride, columns) = (out.layout.stride, out.layout.columns);
    if stride > 8 {
        return out.push_row();
    }
    let start = out.words.len();
    out.words.reserve(8);
    // SAFETY: the capacity holds `start + 8` words; the first `stride <= 8` of them are written
    // here before the length covers them. `columns < 8`, so the null bits fit the first word.
    unsafe {
        let p = out.words.as_mut_ptr().add(start);
        (p as *mut [u64; 8]).write([0; 8]);
        p.write((1u64 << columns) - 1);
        out.words.set_len(start + stride);
    }
    out.rows += 1;
    out.rows - 1
}

/// Converts field `input[s..e]`; `false` if it does not convert (the general path reports why).
#[inline(always)]
fn convert(
    out: &mut Batch,
    row: usize,
    col: usize,
    ty: Type,
    input: &[u8],
    s: usize,
    e: usize,
) -> bool {
    let text = &input[s..e];
    match ty.scalar {
        Scalar::Int => {
            if let Some(v) = fast_int_at(input, s, e) {
                out.set_int(row, col, v);
                return true;
            }
        }
        Scalar::Float => {
            if let Some(v) = fast_float_at(input, s, e) {
                out.set_float(row, col, v);
                return true;
            }
        }
        Scalar::Str if !text.is_empty() => {
            // Short text (most of it): one 16-byte load that covers the field, checked for
            // ASCII and stored without a `memcpy` call.
            if let Some(chunk) = input.get(s..s + 16)
                && text.len() <= 16
            {
                let mut a = [0u8; 16];
                a.copy_from_slice(chunk);
                let keep = u128::MAX >> (8 * (16 - text.len()));
                if u128::from_le_bytes(a) & keep & 0x8080_8080_8080_8080_8080_8080_8080_8080 == 0 {
                    out.set_str_prefix(row, col, &a, text.len());
                    return true;
                }
            } else if text.is_ascii() {
                out.set_str_bytes(row, col, text);
                return true;
            }
        }
        _ => {}
    }
    // An empty field of a nullable column (which no fast path above takes): `set_from_text`'s
    // first rule, applied here without that call.
    set_empty_as_null(out, row, col, text, ty) || set_from_text(out, row, col, text, ty).is_ok()
}

/// The positions of the delimiters, `\n`, `\r` and `"` of an input, in order, found 64 bytes at a
/// time: `mask` has bit `i` set when `input[base + i]` is such a byte and not yet taken.
struct Specials {
    delim: u8,
    base: usize,
    mask: u64,
    /// Where the next block starts.
    next_base: usize,
}

impl Specials {
    fn new(delim: u8) -> Specials {
        Specials {
            delim,
            base: 0,
            mask: 0,
            next_base: 0,
        }
    }

    /// The next special position, or `None` at the end of the input.
    #[inline(always)]
    fn next(&mut self, input: &[u8]) -> Option<usize> {
        while self.mask == 0 {
            if self.next_base >= input.len() {
                return None;
            }
            self.load(input, self.next_base);
        }
        let p = self.base + self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(p)
    }

    #[inline(always)]
    fn load(&mut self, input: &[u8], at: usize) {
        self.base = at;
        if let Some(block) = input.get(at..at + 64) {
            self.mask = mask64(block, self.delim);
            self.next_base = at + 64;
        } else {
            let tail = input.get(at..).unwrap_or(&[]);
            let mut m = 0u64;
            for (i, &b) in tail.iter().enumerate() {
                if b == self.delim || matches!(b, b'\n' | b'\r' | b'"') {
                    m |= 1 << i;
                }
            }
            self.mask = m;
            self.next_base = input.len();
        }
    }
}

/// Bit `i` set when `block[i]` is the delimiter, `\n`, `\r` or `"`; `block` is 64 bytes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn mask64(block: &[u8], delim: u8) -> u64 {
    use std::arch::x86_64::*;
    assert!(block.len() >= 64);
    // SAFETY: SSE2 is part of the x86_64 baseline, and the four unaligned 16-byte loads read
    // `block[0..64]`, which the assertion above guarantees is in bounds.
    unsafe {
        let d = _mm_set1_epi8(delim as i8);
        let nl = _mm_set1_epi8(b'\n' as i8);
        let cr = _mm_set1_epi8(b'\r' as i8);
        let q = _mm_set1_epi8(b'"' as i8);
        let p = block.as_ptr() as *const __m128i;
        let mut m = 0u64;
        for i in 0..4 {
            let v = _mm_loadu_si128(p.add(i));
            let hit = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, d), _mm_cmpeq_epi8(v, nl)),
                _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, q)),
            );
            m |= (_mm_movemask_epi8(hit) as u32 as u64) << (16 * i);
        }
        m
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn mask64(block: &[u8], delim: u8) -> u64 {
    let mut m = 0u64;
    for (i, &b) in block[..64].iter().enumerate() {
        if b == delim || matches!(b, b'\n' | b'\r' | b'"') {
            m |= 1 << i;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specials_agree_with_a_byte_scan() {
        let mut seed = 7u64;
        for round in 0..400 {
            let len = round % 300;
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Every fourth input is sparse: runs longer than a block without a hit.
                    let spread = if round % 4 == 0 { 400 } else { 12 };
                    match (seed >> 33) % spread {
                        0 => b',',
                        1 => b'\n',
                        2 => b'"',
                        3 => b'\r',
                        4 => b';',
                        _ => b'a' + ((seed >> 40) % 26) as u8,
                    }
                })
                .collect();
            for delim in [b',', b';'] {
                let want: Vec<usize> = (0..input.len())
                    .filter(|&i| input[i] == delim || matches!(input[i], b'\n' | b'\r' | b'"'))
                    .collect();
                let mut s = Specials::new(delim);
                let got: Vec<usize> = std::iter::from_fn(|| s.next(&input)).collect();
                assert_eq!(got, want, "{round}");
            }
        }
    }
}
