//! `extern "C"` runtime helpers called by JIT code, registered with `JITBuilder::symbol`.
//!
//! Each helper calls the same `stdlib::ops` / `codegen::sem` function the interpreter uses.
//! String values travel as `(pointer, length)` pairs: into the input arena, a literal owned by the
//! kernel, or the per-run `Scratch`. Helpers that produce a string store it in the scratch and
//! write `(ptr, len)` to `out`; helpers that can fail return a `RowErrorCode` number (0 = ok).
//!
//! Safety contract of every `unsafe` helper (upheld by the generated code, their only caller):
//! `ctx` is the live `Ctx` of the current `run`; each `(ptr, len)` string pair points to `len`
//! readable bytes (or `len` is 0); `out` points to a 16-byte writable stack slot.

use super::super::{RowError, sem};
use crate::stdlib::RowErrorCode;
use crate::stdlib::ops;

/// Per-`run` state the JIT code passes to helpers as its first argument.
pub struct Ctx<'a> {
    pub out_arena: &'a mut Vec<u8>,
    pub errors: &'a mut Vec<RowError>,
    /// Strings computed during this run; `(ptr, len)` pairs into it stay valid until the run
    /// ends.
    pub scratch: Scratch,
}

/// A bump arena of fixed-capacity chunks: a chunk never grows past its capacity, so its bytes
/// never move, and the pointers handed to JIT code stay valid until the arena is dropped.
#[derive(Default)]
pub struct Scratch {
    chunks: Vec<Vec<u8>>,
}

impl Scratch {
    const CHUNK: usize = 32 * 1024;

    /// Copies `bytes` in and returns a stable pointer to the copy.
    pub fn keep(&mut self, bytes: &[u8]) -> *const u8 {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= bytes.len());
        if !fits {
            self.chunks
                .push(Vec::with_capacity(Self::CHUNK.max(bytes.len())));
        }
        match self.chunks.last_mut() {
            Some(c) => {
                let start = c.len();
                // Within capacity: no reallocation, earlier pointers stay valid.
                c.extend_from_slice(bytes);
                c[start..].as_ptr()
            }
            None => bytes.as_ptr(), // unreachable: a chunk was just pushed
        }
    }
}

impl Scratch {
    /// Copies `bytes` in, mapping each byte, and returns a stable pointer to the copy.
    pub fn keep_mapped(&mut self, bytes: &[u8], f: impl Fn(u8) -> u8) -> *const u8 {
        let p = self.keep(bytes);
        if let Some(c) = self.chunks.last_mut() {
            let start = c.len() - bytes.len();
            c[start..].iter_mut().for_each(|b| *b = f(*b));
        }
        p
    }
}

/// The bytes of a `(ptr, len)` pair produced by JIT code.
///
/// # Safety
/// As for [`s`].
unsafe fn raw<'a>(p: *const u8, len: u64) -> &'a [u8] {
    if len == 0 || p.is_null() {
        return &[];
    }
    // SAFETY: see the function contract.
    unsafe { std::slice::from_raw_parts(p, len as usize) }
}

/// Views a `(ptr, len)` pair produced by JIT code as a string.
///
/// # Safety
/// `p` must point to `len` readable bytes (JIT code only forms pairs from bounds-checked arena
/// slots, kernel-owned literals and scratch strings), or `len` must be 0.
unsafe fn s<'a>(p: *const u8, len: u64) -> &'a str {
    if len == 0 || p.is_null() {
        return "";
    }
    // SAFETY: see the function contract.
    let bytes = unsafe { std::slice::from_raw_parts(p, len as usize) };
    // Arenas only receive whole UTF-8 strings; mirror `Batch::get_str`'s fallback otherwise.
    std::str::from_utf8(bytes).unwrap_or("")
}

/// # Safety
/// `ctx` is the live `Ctx` of the current run (JIT code passes its argument through).
unsafe fn ctx<'a>(c: *mut Ctx<'static>) -> &'a mut Ctx<'static> {
    // SAFETY: see the function contract.
    unsafe { &mut *c }
}

/// # Safety
/// `out` points to two writable `u64`s (a stack slot of the JIT function).
unsafe fn put(out: *mut u64, a: u64, b: u64) {
    // SAFETY: see the function contract.
    unsafe {
        *out = a;
        *out.add(1) = b;
    }
}

fn keep(c: &mut Ctx<'static>, v: String, out: *mut u64) {
    let (p, l) = (c.scratch.keep(v.as_bytes()) as u64, v.len() as u64);
    // SAFETY: `out` comes from JIT code (a 16-byte stack slot).
    unsafe { put(out, p, l) }
}

pub unsafe extern "C" fn flow_err(c: *mut Ctx<'static>, row: u64, step: u64, code: u64) {
    // SAFETY: called by JIT code with its ctx argument.
    let c = unsafe { ctx(c) };
    c.errors.push(RowError {
        row: row as u32,
        step: step as u32,
        code: RowErrorCode::from_u32(code as u32).unwrap_or(RowErrorCode::InvalidArgument),
    });
}

/// Appends a string to the output arena; returns its slot word `(offset << 32) | len`.
/// The bytes are copied verbatim (no UTF-8 re-validation: they come from an arena, a literal or
/// a helper, and `Batch::get_str` validates on read anyway).
pub unsafe extern "C" fn flow_out_str(c: *mut Ctx<'static>, p: *const u8, l: u64) -> u64 {
    // SAFETY: called by JIT code with its ctx argument.
    let c = unsafe { ctx(c) };
    let off = c.out_arena.len() as u64;
    if l > 0 && !p.is_null() {
        // SAFETY: a valid string pair from JIT code (see `s`).
        let bytes = unsafe { std::slice::from_raw_parts(p, l as usize) };
        push_bytes(c.out_arena, bytes);
    }
    (off << 32) | l
}

/// `dst.extend_from_slice(s)`, with two overlapping fixed-size moves for a short `s` (most
/// output strings) instead of a `memcpy` call.
#[inline]
fn push_bytes(dst: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if !(4..=16).contains(&n) {
        return dst.extend_from_slice(s);
    }
    dst.reserve(n);
    let off = dst.len();
    let (src, d) = (
        s.as_ptr(),
        dst.spare_capacity_mut().as_mut_ptr().cast::<u8>(),
    );
    // SAFETY: `4 <= n <= 16`: the reads are `s[..k]` and `s[n - k..]` for `k <= n`, the
    // writes `d[..k]` and `d[n - k..]`, within the `n` bytes reserved; all `n` bytes are
    // written before the length covers them.
    unsafe {
        if n >= 8 {
            let a = src.cast::<u64>().read_unaligned();
            let b = src.add(n - 8).cast::<u64>().read_unaligned();
            d.cast::<u64>().write_unaligned(a);
            d.add(n - 8).cast::<u64>().write_unaligned(b);
        } else {
            let a = src.cast::<u32>().read_unaligned();
            let b = src.add(n - 4).cast::<u32>().read_unaligned();
            d.cast::<u32>().write_unaligned(a);
            d.add(n - 4).cast::<u32>().write_unaligned(b);
        }
        dst.set_len(off + n);
    }
}

/// `upper`/`lower` of an output column, written straight into the output arena: its slot word.
///
/// # Safety
/// JIT-code arguments (see `s`, `ctx`).
unsafe fn out_case(c: *mut Ctx<'static>, p: *const u8, l: u64, upper: bool) -> u64 {
    // SAFETY: see the function contract.
    let (c, bytes) = unsafe { (ctx(c), raw(p, l)) };
    let arena = &mut *c.out_arena;
    let off = arena.len();
    if !ascii_case_into(arena, bytes, upper) {
        // SAFETY: as above.
        let v = unsafe { s(p, l) };
        let t = if upper { ops::upper(v) } else { ops::lower(v) };
        arena.extend_from_slice(t.as_bytes());
    }
    ((off as u64) << 32) | (arena.len() - off) as u64
}

pub unsafe extern "C" fn flow_out_upper(c: *mut Ctx<'static>, p: *const u8, l: u64) -> u64 {
    // SAFETY: JIT-code arguments, passed through.
    unsafe { out_case(c, p, l, true) }
}

pub unsafe extern "C" fn flow_out_lower(c: *mut Ctx<'static>, p: *const u8, l: u64) -> u64 {
    // SAFETY: JIT-code arguments, passed through.
    unsafe { out_case(c, p, l, false) }
}

/// Appends `src` upper- (or lower-) cased to `dst`, 8 bytes at a time, if it is all ASCII (for
/// which Unicode case mapping is ASCII case mapping); false, appending nothing, if it is not.
fn ascii_case_into(dst: &mut Vec<u8>, src: &[u8], upper: bool) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let (first, last) = if upper { (b'a', b'z') } else { (b'A', b'Z') };
    // Bytes are below 0x80 when they are kept, so these sums never carry into the next byte:
    // bit 7 of a byte of `ge` is set when the byte is >= `first`, of `gt` when it is > `last`.
    let map = |w: u64| {
        let ge = w.wrapping_add(LO * u64::from(0x80 - first));
        let gt = w.wrapping_add(LO * u64::from(0x7f - last));
        w ^ ((ge & !gt & HI) >> 2)
    };
    let n = src.len();
    dst.reserve(n);
    let off = dst.len();
    let (s, d) = (
        src.as_ptr(),
        dst.spare_capacity_mut().as_mut_ptr().cast::<u8>(),
    );
    let mut any = 0u64;
    // SAFETY: reads stay within `src` (whole words up to `n`, then the last word ending at
    // `n`, overlapping; or two 4-byte halves; or single bytes), writes within the `n` bytes
    // reserved after `off` (the overlapping writes store the same mapped bytes again).
    unsafe {
        if n >= 8 {
            let mut i = 0;
            while i + 8 <= n {
                let w = s.add(i).cast::<u64>().read_unaligned();
                any |= w;
                d.add(i).cast::<u64>().write_unaligned(map(w));
                i += 8;
            }
            if i < n {
                let w = s.add(n - 8).cast::<u64>().read_unaligned();
                any |= w;
                d.add(n - 8).cast::<u64>().write_unaligned(map(w));
            }
        } else if n >= 4 {
            let a = u64::from(s.cast::<u32>().read_unaligned());
            let b = u64::from(s.add(n - 4).cast::<u32>().read_unaligned());
            any = a | b;
            d.cast::<u32>().write_unaligned(map(a) as u32);
            d.add(n - 4).cast::<u32>().write_unaligned(map(b) as u32);
        } else {
            for i in 0..n {
                let b = u64::from(*s.add(i));
                any |= b;
                *d.add(i) = map(b) as u8;
            }
        }
        if any & HI != 0 {
            return false;
        }
        dst.set_len(off + n);
    }
    true
}

/// Copies `n` words of a kept row (a chain of filters only, rows too wide to copy inline).
///
/// # Safety
/// `src` points to `n` readable words of the input batch and `dst` to `n` writable words of
/// the output batch (different allocations).
pub unsafe extern "C" fn flow_copy_words(dst: *mut u64, src: *const u64, n: u64) {
    // SAFETY: see the function contract.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, n as usize) }
}

/// Bytewise comparison: -1, 0 or 1.
pub unsafe extern "C" fn flow_str_cmp(ap: *const u8, al: u64, bp: *const u8, bl: u64) -> i64 {
    // SAFETY: valid string pairs from JIT code.
    let (a, b) = unsafe { (s(ap, al), s(bp, bl)) };
    a.as_bytes().cmp(b.as_bytes()) as i64
}

pub unsafe extern "C" fn flow_len(p: *const u8, l: u64) -> i64 {
    // SAFETY: valid string pair from JIT code.
    ops::len(unsafe { s(p, l) })
}

/// `upper` / `lower`: ASCII text (the common case) is mapped byte by byte into the scratch arena
/// — for ASCII, Unicode case mapping is exactly ASCII case mapping — without a `String` per row;
/// other text goes through `ops`.
///
/// # Safety
/// JIT-code arguments (see `s`, `ctx`, `put`).
unsafe fn case_map(c: *mut Ctx<'static>, p: *const u8, l: u64, out: *mut u64, upper: bool) {
    // SAFETY: see the function contract.
    let (c, bytes) = unsafe { (ctx(c), raw(p, l)) };
    if bytes.is_ascii() {
        let f = |b: u8| {
            if upper {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            }
        };
        let q = c.scratch.keep_mapped(bytes, f);
        // SAFETY: `out` is JIT code's 16-byte stack slot.
        unsafe { put(out, q as u64, l) }
    } else {
        // SAFETY: as above.
        let v = unsafe { s(p, l) };
        keep(c, if upper { ops::upper(v) } else { ops::lower(v) }, out)
    }
}

pub unsafe extern "C" fn flow_upper(c: *mut Ctx<'static>, p: *const u8, l: u64, out: *mut u64) {
    // SAFETY: JIT-code arguments, passed through.
    unsafe { case_map(c, p, l, out, true) }
}

pub unsafe extern "C" fn flow_lower(c: *mut Ctx<'static>, p: *const u8, l: u64, out: *mut u64) {
    // SAFETY: JIT-code arguments, passed through.
    unsafe { case_map(c, p, l, out, false) }
}

pub unsafe extern "C" fn flow_trim(p: *const u8, l: u64, out: *mut u64) {
    // SAFETY: JIT-code arguments; the result is a sub-slice of the argument.
    unsafe {
        let t = ops::trim(s(p, l));
        put(out, t.as_ptr() as u64, t.len() as u64)
    }
}

pub unsafe extern "C" fn flow_contains(ap: *const u8, al: u64, bp: *const u8, bl: u64) -> u64 {
    // SAFETY: valid string pairs from JIT code.
    let (a, b) = unsafe { (s(ap, al), s(bp, bl)) };
    a.contains(b) as u64
}

pub unsafe extern "C" fn flow_starts_with(ap: *const u8, al: u64, bp: *const u8, bl: u64) -> u64 {
    // SAFETY: valid string pairs from JIT code.
    let (a, b) = unsafe { (s(ap, al), s(bp, bl)) };
    a.starts_with(b) as u64
}

pub unsafe extern "C" fn flow_ends_with(ap: *const u8, al: u64, bp: *const u8, bl: u64) -> u64 {
    // SAFETY: valid string pairs from JIT code.
    let (a, b) = unsafe { (s(ap, al), s(bp, bl)) };
    a.ends_with(b) as u64
}

pub unsafe extern "C" fn flow_substr(
    p: *const u8,
    l: u64,
    start: i64,
    count: i64,
    out: *mut u64,
) -> u32 {
    // SAFETY: JIT-code arguments; the result is a sub-slice of the argument.
    unsafe {
        match ops::substr(s(p, l), start, count) {
            Ok(t) => {
                put(out, t.as_ptr() as u64, t.len() as u64);
                0
            }
            Err(code) => code as u32,
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn flow_replace(
    c: *mut Ctx<'static>,
    p: *const u8,
    l: u64,
    fp: *const u8,
    fl: u64,
    tp: *const u8,
    tl: u64,
    out: *mut u64,
) {
    // SAFETY: JIT-code arguments (see `s`, `ctx`).
    let (c, v, f, t) = unsafe { (ctx(c), s(p, l), s(fp, fl), s(tp, tl)) };
    keep(c, ops::replace(v, f, t), out)
}

pub unsafe extern "C" fn flow_concat2(
    c: *mut Ctx<'static>,
    ap: *const u8,
    al: u64,
    bp: *const u8,
    bl: u64,
    out: *mut u64,
) {
    // SAFETY: JIT-code arguments (see `s`, `ctx`).
    let (c, a, b) = unsafe { (ctx(c), s(ap, al), s(bp, bl)) };
    keep(c, [a, b].concat(), out)
}

pub extern "C" fn flow_round(x: f64) -> f64 {
    x.round()
}

pub extern "C" fn flow_fmod(a: f64, b: f64) -> f64 {
    a % b
}

pub extern "C" fn flow_fmin(a: f64, b: f64) -> f64 {
    ops::float_min(a, b)
}

pub extern "C" fn flow_fmax(a: f64, b: f64) -> f64 {
    ops::float_max(a, b)
}

pub unsafe extern "C" fn flow_float_to_int(x: f64, out: *mut u64) -> u32 {
    match ops::float_to_int(x) {
        // SAFETY: `out` is a JIT stack slot.
        Ok(i) => unsafe {
            put(out, i as u64, 0);
            0
        },
        Err(code) => code as u32,
    }
}

pub unsafe extern "C" fn flow_int_to_str(c: *mut Ctx<'static>, x: i64, out: *mut u64) {
    // SAFETY: JIT ctx argument.
    keep(unsafe { ctx(c) }, sem::int_to_str(x), out)
}

pub unsafe extern "C" fn flow_float_to_str(c: *mut Ctx<'static>, x: f64, out: *mut u64) {
    // SAFETY: JIT ctx argument.
    keep(unsafe { ctx(c) }, ops::float_to_str(x), out)
}

pub unsafe extern "C" fn flow_bool_to_str(x: u64, out: *mut u64) {
    let t = sem::bool_to_str(x != 0);
    // SAFETY: `out` is a JIT stack slot; the result is a static string.
    unsafe { put(out, t.as_ptr() as u64, t.len() as u64) }
}

pub unsafe extern "C" fn flow_ts_to_str(c: *mut Ctx<'static>, x: i64, out: *mut u64) {
    // SAFETY: JIT ctx argument.
    keep(unsafe { ctx(c) }, ops::timestamp_to_str(x), out)
}

/// Parsers write the value to `out[0]` and return 1 for null, 0 for a value.
pub unsafe extern "C" fn flow_parse_int(p: *const u8, l: u64, out: *mut u64) -> u32 {
    // SAFETY: JIT-code arguments.
    match ops::parse_int(unsafe { s(p, l) }) {
        Some(v) => unsafe {
            put(out, v as u64, 0);
            0
        },
        None => 1,
    }
}

pub unsafe extern "C" fn flow_parse_float(p: *const u8, l: u64, out: *mut u64) -> u32 {
    // SAFETY: JIT-code arguments.
    match ops::parse_float(unsafe { s(p, l) }) {
        Some(v) => unsafe {
            put(out, v.to_bits(), 0);
            0
        },
        None => 1,
    }
}

pub unsafe extern "C" fn flow_parse_timestamp(p: *const u8, l: u64, out: *mut u64) -> u32 {
    // SAFETY: JIT-code arguments.
    match ops::parse_timestamp(unsafe { s(p, l) }) {
        Some(v) => unsafe {
            put(out, v as u64, 0);
            0
        },
        None => 1,
    }
}

pub extern "C" fn flow_unix(x: i64) -> i64 {
    ops::unix(x)
}

/// # Safety
/// `re` is a pattern compiled for this kernel and owned by it (JIT code embeds its address).
unsafe fn re<'a>(re: *const regex::Regex) -> &'a regex::Regex {
    // SAFETY: see the function contract.
    unsafe { &*re }
}

pub unsafe extern "C" fn flow_regex_match(r: *const regex::Regex, p: *const u8, l: u64) -> u64 {
    // SAFETY: JIT-code arguments (see `re`, `s`).
    unsafe { ops::regex_matches(re(r), s(p, l)) as u64 }
}

/// Writes the group's `(ptr, len)` (a sub-slice of the argument) to `out`; returns 0 for a
/// value, 1 for null, or 1 + a `RowErrorCode` for an error.
pub unsafe extern "C" fn flow_regex_extract(
    r: *const regex::Regex,
    p: *const u8,
    l: u64,
    group: i64,
    out: *mut u64,
) -> u32 {
    // SAFETY: JIT-code arguments (see `re`, `s`, `put`).
    unsafe {
        match ops::regex_extract(re(r), s(p, l), group) {
            Ok(Some(t)) => {
                put(out, t.as_ptr() as u64, t.len() as u64);
                0
            }
            // An empty pair: the output writer may copy a null string's bytes.
            Ok(None) => {
                put(out, 0, 0);
                1
            }
            Err(code) => 1 + code as u32,
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn flow_regex_replace(
    c: *mut Ctx<'static>,
    r: *const regex::Regex,
    p: *const u8,
    l: u64,
    wp: *const u8,
    wl: u64,
    out: *mut u64,
) {
    // SAFETY: JIT-code arguments (see `re`, `s`, `ctx`, `put`).
    unsafe {
        let v = s(p, l);
        match ops::regex_replace_all(re(r), v, s(wp, wl)) {
            std::borrow::Cow::Borrowed(t) => put(out, t.as_ptr() as u64, t.len() as u64),
            std::borrow::Cow::Owned(t) => keep(ctx(c), t, out),
        }
    }
}

pub unsafe extern "C" fn flow_parse_ts_format(
    p: *const u8,
    l: u64,
    fp: *const u8,
    fl: u64,
    out: *mut u64,
) -> u32 {
    // SAFETY: JIT-code arguments.
    match ops::parse_timestamp_format(unsafe { s(p, l) }, unsafe { s(fp, fl) }) {
        Some(v) => unsafe {
            put(out, v as u64, 0);
            0
        },
        None => 1,
    }
}

pub unsafe extern "C" fn flow_format_ts(
    c: *mut Ctx<'static>,
    x: i64,
    fp: *const u8,
    fl: u64,
    out: *mut u64,
) -> u32 {
    // SAFETY: JIT-code arguments.
    match ops::format_timestamp(x, unsafe { s(fp, fl) }) {
        Ok(t) => {
            keep(unsafe { ctx(c) }, t, out);
            0
        }
        Err(code) => code as u32,
    }
}

pub extern "C" fn flow_ts_part(x: i64, part: u64) -> i64 {
    ops::ts_part(x, ops::TsPart::from_code(part))
}

pub extern "C" fn flow_date_trunc(x: i64, unit: u64) -> i64 {
    ops::date_trunc(ops::TruncUnit::from_code(unit), x)
}

/// `utc_to_local` (`to_utc` = 0) or `local_to_utc` (1): the result to `out[0]`, or an error code.
pub unsafe extern "C" fn flow_zone_shift(
    z: *const jiff::tz::TimeZone,
    x: i64,
    to_utc: u64,
    out: *mut u64,
) -> u32 {
    // SAFETY: `z` is a time zone compiled for this kernel and owned by it.
    let z = unsafe { &*z };
    let r = if to_utc == 0 {
        ops::utc_to_local(x, z)
    } else {
        ops::local_to_utc(x, z)
    };
    match r {
        // SAFETY: `out` is a JIT stack slot.
        Ok(v) => unsafe {
            put(out, v as u64, 0);
            0
        },
        Err(code) => code as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_bytes_is_extend_from_slice() {
        let src: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        for start in [0, 3] {
            for n in 0..=30 {
                let mut a = b"prefix".to_vec();
                let mut b = a.clone();
                a.truncate(start + 3);
                b.truncate(start + 3);
                push_bytes(&mut a, &src[..n]);
                b.extend_from_slice(&src[..n]);
                assert_eq!(a, b, "{n}");
            }
        }
    }

    /// The word-at-a-time case mapping is `str::to_ascii_uppercase`/`lowercase` on ASCII and
    /// declines anything else, for every byte value at every position of 0–20 bytes.
    #[test]
    fn ascii_case_into_is_ascii_case_mapping() {
        for len in 0..20 {
            for at in 0..len.max(1) {
                for b in 0..=255u8 {
                    let mut src: Vec<u8> = (0..len).map(|i| b"aZ@[`{mQ09"[i % 10]).collect();
                    if len > 0 {
                        src[at] = b;
                    }
                    for upper in [true, false] {
                        let mut dst = b"x".to_vec();
                        let ok = ascii_case_into(&mut dst, &src, upper);
                        assert_eq!(ok, src.is_ascii(), "{src:?}");
                        assert!(ok || dst == b"x", "{src:?}: appended on decline");
                        if ok {
                            let want = if upper {
                                src.to_ascii_uppercase()
                            } else {
                                src.to_ascii_lowercase()
                            };
                            assert_eq!(&dst[1..], &want[..], "{src:?} {upper}");
                        }
                    }
                }
            }
        }
    }
}
