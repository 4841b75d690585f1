//! Splitting input files into byte ranges so several workers read one file in parallel.
//!
//! A split is `start..end`: a reader seeks to `start` and reads every record that *starts*
//! before `end` (the last one may run past `end`). Boundaries are always placed at the start of
//! a record, so no record is read twice or lost:
//!
//! - JSON lines: a newline inside a JSON string is always escaped (`\n`), so every newline byte
//!   ends a record; a boundary is the position just after the first newline at or after the
//!   target offset. Provably safe. (A JSON lines record ends only at `\n`; a `\r` before it is
//!   whitespace to the parser.)
//! - CSV: a quoted field may contain newlines, so a newline byte is not necessarily a record end,
//!   and the quote state at an arbitrary offset is not written there. A small quote-state
//!   automaton mirrors csv-core's tokenizer states (field start / unquoted / quoted /
//!   quote-in-quoted); a boundary is placed after the first line end (`\n`, `\r\n` or a lone `\r`,
//!   all of which csv-core accepts) past the target that is outside a quoted field. To know that
//!   state without reading the file from its start, the planner runs the automaton from the
//!   target in all four states at once (`near_boundary`): the true state is one of them, and
//!   in CSV the four runs meet within a record or two, after which the state is known exactly
//!   and the next record end is the boundary (the previous piece ends there).
//!   The runs cannot meet where there is no quote (the run inside a quoted field never leaves
//!   it): when the 64 KiB after the target hold no quote at all (any file without quotes), the
//!   boundary is a *guess*, the first line end after the target — a record end unless the
//!   target lies inside a quoted field longer than that window. The piece before ends there
//!   with `Split::end_guessed`: its reader knows the exact quote state when it gets there and
//!   fails the job if a record it read runs past the guess ([`SPLIT_GUESS_WRONG`]); on any
//!   failure of a job with guesses the runtime checks them exactly (a scan from the start of
//!   the file, on the failure path only), and a wrong one makes the runtime run the job again
//!   with exact boundaries (`RunOptions::guess_splits`). Guesses are made only where a failed
//!   job leaves nothing behind (see `runtime::prepare`); otherwise, and where the runs do not
//!   meet within `AGREE_BYTES` for other reasons (a file built to keep them apart), the
//!   piece's start is left as a target (`Split::align`): its reader scans the file from the
//!   beginning (accelerated with `memchr`) on its own worker, and the previous piece ends at
//!   `target + 1`. A file whose quoting is broken cannot move a boundary into the middle of a
//!   record as csv-core sees it, because both follow the same state machine.
//!
//! Files are never split below `MIN_SPLIT_BYTES` per part. Pieces are dealt to workers in order
//! (piece `i` → worker `i % workers`), so with one worker every file is read whole, in order.

use super::{ConnectorError, Split};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Files are not split into parts smaller than this (smaller in unit tests, so that they
/// exercise splitting on small files).
#[cfg(not(test))]
pub const MIN_SPLIT_BYTES: u64 = 1 << 20;
#[cfg(test)]
pub const MIN_SPLIT_BYTES: u64 = 64 << 10;

/// The files a path or glob pattern names, sorted. A plain path must exist; a pattern must match
/// at least one file.
pub fn expand(pattern: &str) -> Result<Vec<PathBuf>, ConnectorError> {
    let is_glob = pattern.contains(['*', '?', '[']);
    if !is_glob {
        let p = PathBuf::from(pattern);
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(vec![p]),
            Ok(_) => Err(ConnectorError::new(pattern, "is not a regular file")),
            Err(e) => Err(ConnectorError::new(
                pattern,
                format!("cannot open input: {e}"),
            )),
        };
    }
    let paths = glob::glob(pattern)
        .map_err(|e| ConnectorError::new(pattern, format!("invalid glob pattern: {e}")))?;
    let mut out = Vec::new();
    for p in paths {
        match p {
            Ok(p) if p.is_file() => out.push(p),
            Ok(_) => {}
            Err(e) => {
                return Err(ConnectorError::new(
                    pattern,
                    format!("cannot read {}: {}", e.path().display(), e.error()),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(ConnectorError::new(pattern, "no file matches this pattern"));
    }
    out.sort();
    Ok(out)
}

/// The reason a reader gives when a record it read runs past its guessed end
/// (`Split::end_guessed`).
pub const SPLIT_GUESS_WRONG: &str = "a record runs past the guessed split boundary";

/// One piece of a file: records starting in `start..end` (`end`: `u64::MAX` for the last).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub start: u64,
    pub end: u64,
    /// `start` is a target its reader aligns (`Split::align`).
    pub align: bool,
    /// `end` is a guess its reader checks (`Split::end_guessed`).
    pub end_guessed: bool,
}

impl Piece {
    fn new(start: u64, end: u64, align: bool) -> Piece {
        Piece {
            start,
            end,
            align,
            end_guessed: false,
        }
    }
}

/// How to find record starts in a file.
#[derive(Clone, Copy, Debug)]
pub enum Framing {
    /// Every newline ends a record.
    Lines,
    /// CSV with this delimiter and `"` quotes.
    Csv { delimiter: u8 },
}

/// Byte ranges of `path` (size `size`) for at most `parts` readers.
///
/// CSV boundaries are exact record starts found from the bytes after each target, or guesses
/// in quote-free windows ([`csv_pieces`]); a boundary whose quote state those bytes do not tell
/// is left to the reader (`align`, see [`csv_pieces`]).
pub fn ranges(
    path: &Path,
    size: u64,
    parts: usize,
    framing: Framing,
) -> Result<Vec<Piece>, ConnectorError> {
    let parts = (parts as u64).min(size / MIN_SPLIT_BYTES).max(1) as usize;
    if parts == 1 {
        return Ok(vec![Piece::new(0, u64::MAX, false)]);
    }
    let targets: Vec<u64> = (1..parts as u64).map(|k| size * k / parts as u64).collect();
    let io = |e: std::io::Error| ConnectorError::new(path.display().to_string(), e.to_string());
    let bounds = match framing {
        Framing::Lines => line_boundaries(path, &targets).map_err(io)?,
        Framing::Csv { delimiter } => {
            // A boundary left to its reader costs that reader a scan up to it (it stops only at
            // quotes, but still reads those bytes), so such a piece starts 5% later (with 2
            // workers: 52.5% / 47.5%), which evened out the two workers' CPU in J1/J2 at 10M
            // rows (per-thread shares from `perf`: 3% later left the second worker 6% busier,
            // 7.7% later the first one 9% busier). Exact and guessed boundaries are not moved.
            return csv_pieces(path, size, &targets, delimiter, |t| t + t / 20).map_err(io);
        }
    };
    let mut out = Vec::new();
    let mut start = 0;
    for b in bounds {
        if b > start && b < size {
            out.push(Piece::new(start, b, false));
            start = b;
        }
    }
    out.push(Piece::new(start, u64::MAX, false));
    Ok(out)
}

fn line_boundaries(path: &Path, targets: &[u64]) -> std::io::Result<Vec<u64>> {
    let mut f = File::open(path)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for &t in targets {
        f.seek(SeekFrom::Start(t))?;
        let mut pos = t;
        let mut found = None;
        while found.is_none() {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
                found = Some(pos + i as u64 + 1);
            }
            pos += n as u64;
        }
        match found {
            Some(b) => out.push(b),
            None => break,
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Q {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// One step of the quote-state automaton (mirrors csv-core's tokenizer). Returns the new state
/// and whether `b` ended a record.
#[inline]
fn step(state: Q, b: u8, delim: u8) -> (Q, bool) {
    let next = match state {
        Q::Quoted => {
            if b == b'"' {
                Q::QuoteInQuoted
            } else {
                Q::Quoted
            }
        }
        Q::FieldStart if b == b'"' => Q::Quoted,
        Q::QuoteInQuoted if b == b'"' => Q::Quoted,
        _ if b == delim => Q::FieldStart,
        // csv-core ends a record at `\r` or `\n` outside quotes (a `\r\n` is one end, blank
        // lines are skipped): a boundary after either byte is before the next record's start.
        _ if b == b'\n' || b == b'\r' => return (Q::FieldStart, true),
        _ => Q::Unquoted,
    };
    (next, false)
}

/// Runs the automaton over `buf` (at file offset `offset`) from `state`, pushing each record
/// end (the offset after its `\r` or `\n`) that passes the next target. Exactly the
/// byte-by-byte automaton, accelerated with `memchr`: inside a quoted field only `"` matters;
/// outside, only `"` and line ends do, and the state reached over the bytes skipped between them
/// follows from the last of them (a delimiter or line end gives field start, anything else
/// unquoted).
fn scan(
    buf: &[u8],
    offset: u64,
    mut state: Q,
    delim: u8,
    targets: &[u64],
    next: &mut usize,
    out: &mut Vec<u64>,
) -> Q {
    let n = buf.len();
    let mut i = 0;
    while i < n && *next < targets.len() {
        let at = match state {
            Q::Quoted => match memchr::memchr(b'"', &buf[i..]) {
                None => return Q::Quoted,
                Some(k) => i + k,
            },
            Q::QuoteInQuoted => i,
            // Before the next target no record end is wanted, so newlines need no stop: jump
            // from quote to quote (a newline, like a delimiter, leaves field start).
            Q::FieldStart | Q::Unquoted if offset + (i as u64) < targets[*next] => {
                let lim = n.min((targets[*next] - offset) as usize);
                let found = memchr::memchr(b'"', &buf[i..lim]);
                let p = found.map_or(lim, |k| i + k);
                if let Some(&last) = buf[i..p].last() {
                    state = if last == delim || last == b'\n' || last == b'\r' {
                        Q::FieldStart
                    } else {
                        Q::Unquoted
                    };
                }
                if found.is_none() {
                    i = lim;
                    continue;
                }
                p
            }
            Q::FieldStart | Q::Unquoted => {
                let found = memchr::memchr3(b'"', b'\n', b'\r', &buf[i..]);
                let p = found.map_or(n, |k| i + k);
                if let Some(&last) = buf[i..p].last() {
                    state = if last == delim {
                        Q::FieldStart
                    } else {
                        Q::Unquoted
                    };
                }
                if found.is_none() {
                    return state;
                }
                p
            }
        };
        let (s, end) = step(state, buf[at], delim);
        state = s;
        i = at + 1;
        if end {
            let pos = offset + i as u64;
            while *next < targets.len() && pos > targets[*next] {
                out.push(pos);
                *next += 1;
            }
        }
    }
    state
}

/// How far past a target the runs of [`near_boundary`] may go without agreeing on the quote
/// state before that boundary is left to its reader's scan from the start of the file.
#[cfg(not(test))]
const AGREE_BYTES: u64 = 64 << 10;
#[cfg(test)]
const AGREE_BYTES: u64 = 4 << 10;

/// What the bytes after a target say about a record start after it.
enum Near {
    /// A record end after the target (a record start, or the end of a blank line): the first
    /// one after the point where the quote state became known, not always the first after the
    /// target.
    At(u64),
    /// No record starts after the target: the file ends first.
    End,
    /// The first line end after the target, in a window of 64 KiB without a quote: a record
    /// end unless the target is inside a quoted field (see the module comment).
    Guess(u64),
    /// The quote state stayed unknown for [`AGREE_BYTES`].
    Unknown,
}

/// `read` that retries when interrupted.
fn read_some(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match f.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// A record end after `target`, found from the bytes from `target` on alone: the automaton
/// runs from each of its four states at once (the state before `target` is one of them), and
/// once all four runs are in the same state that state is the true one, so from there on the
/// single exact run finds the next record end. (A record end before that point is not taken:
/// the true run is not known yet.) In CSV the runs agree within a record or two (a
/// run that wrongly thinks it is inside quotes takes the next opening quote for a closing one,
/// sees a field character after it and becomes an unquoted field, which ends where the true run's
/// quoted field ends), but a file made to keep them apart (say, quoted fields that all start with
/// a delimiter) is possible: past [`AGREE_BYTES`] the answer is `Unknown`.
fn near_boundary(f: &mut File, target: u64, delim: u8, buf: &mut [u8]) -> std::io::Result<Near> {
    f.seek(SeekFrom::Start(target))?;
    let mut runs = [Q::FieldStart, Q::Unquoted, Q::Quoted, Q::QuoteInQuoted];
    let mut agreed = None;
    let mut offset = target;
    let mut out = Vec::new();
    loop {
        let n = read_some(f, buf)?;
        if n == 0 {
            return Ok(Near::End);
        }
        let mut i = 0;
        if offset == target && n >= 4096 && memchr::memchr(b'"', &buf[..n]).is_none() {
            // Without a quote the run in a quoted field stays there, apart from the others, most
            // likely for good: a file without quotes (common) gets a guess, checked by the
            // reader of the piece before (see `csv_pieces`), without stepping four runs over
            // every byte of the window first.
            return Ok(match memchr::memchr2(b'\n', b'\r', &buf[..n]) {
                Some(i) => Near::Guess(target + i as u64 + 1),
                None => Near::Unknown,
            });
        }
        while agreed.is_none() && i < n {
            let b = buf[i];
            for r in runs.iter_mut() {
                *r = step(*r, b, delim).0;
            }
            i += 1;
            if runs.iter().all(|&r| r == runs[0]) {
                // All four at field start after a line end: every run ended a record there (a
                // line end leaves a quoted field quoted).
                if matches!(b, b'\n' | b'\r') && runs[0] == Q::FieldStart {
                    return Ok(Near::At(offset + i as u64));
                }
                agreed = Some(runs[0]);
            }
        }
        if let Some(state) = agreed {
            let mut next = 0;
            let s = scan(
                &buf[i..n],
                offset + i as u64,
                state,
                delim,
                &[target],
                &mut next,
                &mut out,
            );
            if let Some(&b) = out.first() {
                return Ok(Near::At(b));
            }
            agreed = Some(s);
        } else if offset + n as u64 - target >= AGREE_BYTES {
            return Ok(Near::Unknown);
        }
        offset += n as u64;
    }
}

/// CSV pieces of `path` (size `size`) cut near `targets` (sorted), as [`ranges`] returns them.
/// Each boundary is placed exactly when the bytes after its target tell the quote state
/// ([`near_boundary`]), guessed in a quote-free window (`end_guessed` on the piece before);
/// otherwise it is left to the next piece's reader at `lazy(target)` (kept below the next
/// target; `align`: the piece before ends at that point + 1, the next one starts there and its
/// reader scans from the start of the file, see [`csv_boundaries`]). Pieces that would start at
/// the end of the file are dropped.
pub fn csv_pieces(
    path: &Path,
    size: u64,
    targets: &[u64],
    delim: u8,
    lazy: impl Fn(u64) -> u64,
) -> std::io::Result<Vec<Piece>> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut out = Vec::new();
    let (mut start, mut align) = (0u64, false);
    for (k, &t) in targets.iter().enumerate() {
        if !align && start > t {
            // The boundary before already lies past `t`: it is the first after `t` too.
            continue;
        }
        match near_boundary(&mut f, t, delim, &mut buf)? {
            Near::At(b) | Near::Guess(b) if b >= size => break,
            near @ (Near::At(b) | Near::Guess(b)) => {
                if b > start {
                    let mut p = Piece::new(start, b, align);
                    p.end_guessed = matches!(near, Near::Guess(_));
                    out.push(p);
                    (start, align) = (b, false);
                }
            }
            Near::End => break,
            Near::Unknown => {
                let below = targets.get(k + 1).copied().unwrap_or(size).max(t + 1);
                let t = lazy(t).clamp(t, below - 1);
                out.push(Piece::new(start, t + 1, align));
                (start, align) = (t, true);
            }
        }
    }
    out.push(Piece::new(start, u64::MAX, align));
    Ok(out)
}

/// Turns every guessed boundary among `splits` (all the splits of one source) into one its
/// reader aligns exactly (`Split::align`, without the skew of [`csv_pieces`]): the split after a
/// guess `b` starts at the target `b - 1`, whose first record start after it is `b` when the
/// guess was right.
pub fn unguess(splits: &mut [Vec<Split>]) {
    let guesses: Vec<(Option<PathBuf>, u64)> = splits
        .iter_mut()
        .flatten()
        .filter(|s| s.end_guessed)
        .map(|s| {
            s.end_guessed = false;
            (s.path.clone(), s.end)
        })
        .collect();
    for s in splits.iter_mut().flatten() {
        if !s.align && s.start > 0 && guesses.contains(&(s.path.clone(), s.start)) {
            s.start -= 1;
            s.align = true;
            s.skip_header = false;
        }
    }
}

/// Whether a guessed end `b` is a record start: the first record end after `b - 1` found by
/// the exact scan from the start of the file is `b`.
pub fn csv_guess_holds(path: &Path, b: u64, delim: u8) -> std::io::Result<bool> {
    if b == 0 {
        return Ok(true);
    }
    Ok(csv_boundaries(path, &[b - 1], delim)?.first() == Some(&b))
}

/// Record starts after each target offset, found by one quote-aware sequential scan.
pub fn csv_boundaries(path: &Path, targets: &[u64], delim: u8) -> std::io::Result<Vec<u64>> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut out = Vec::new();
    let mut state = Q::FieldStart;
    let mut offset = 0u64;
    let mut next = 0;
    while next < targets.len() {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        state = scan(
            &buf[..n],
            offset,
            state,
            delim,
            targets,
            &mut next,
            &mut out,
        );
        offset += n as u64;
    }
    out.dedup();
    Ok(out)
}

/// The number of newline bytes in `path` before byte `upto` (for line numbers of splits that do
/// not start at the beginning of a file; computed only when a row error needs it).
pub fn count_newlines(path: &Path, upto: u64) -> std::io::Result<u64> {
    let f = File::open(path)?;
    let mut r = f.take(upto);
    let mut buf = vec![0u8; 256 * 1024];
    let mut lines = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// Deals the pieces of `files` to `workers` workers. `split_of(path, start, end)` builds a split.
pub fn assign(
    files: &[PathBuf],
    workers: usize,
    framing: Framing,
    mut split_of: impl FnMut(&Path, u64, u64) -> Result<Split, ConnectorError>,
) -> Result<Vec<Vec<Split>>, ConnectorError> {
    let workers = workers.max(1);
    let mut out = vec![Vec::new(); workers];
    let mut i = 0;
    for path in files {
        let size = std::fs::metadata(path)
            .map_err(|e| ConnectorError::new(path.display().to_string(), e.to_string()))?
            .len();
        for p in ranges(path, size, workers, framing)? {
            let mut s = split_of(path, p.start, p.end)?;
            s.align = p.align;
            s.end_guessed = p.end_guessed;
            out[i % workers].push(s);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The byte-by-byte automaton, for comparison with the accelerated scan.
    fn slow_boundaries(data: &[u8], targets: &[u64], delim: u8) -> Vec<u64> {
        let mut out = Vec::new();
        let mut state = Q::FieldStart;
        let mut next = 0;
        for (i, &b) in data.iter().enumerate() {
            if next >= targets.len() {
                break;
            }
            let (s, end) = step(state, b, delim);
            state = s;
            if end {
                let pos = i as u64 + 1;
                while next < targets.len() && pos > targets[next] {
                    out.push(pos);
                    next += 1;
                }
            }
        }
        out.dedup();
        out
    }

    #[test]
    fn accelerated_scan_matches_the_automaton() {
        // Pseudo-random bytes from a small alphabet rich in quotes, delimiters, CR and LF,
        // scanned in chunks of several sizes (state carried across chunk ends).
        let alphabet = b"a,\"\r\n;x";
        let mut seed = 0x1234_5678_9abc_def0u64;
        for round in 0..300 {
            let len = 1 + (round * 7) % 400;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    crate::connectors::xorshift(&mut seed);
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            // Dense targets, and sparse ones (long stretches scanned without record ends).
            let step = if round % 3 == 0 {
                37 + round % 50
            } else {
                1 + round % 5
            };
            let targets: Vec<u64> = (0..len as u64).step_by(step).collect();
            for delim in [b',', b';'] {
                let want = slow_boundaries(&data, &targets, delim);
                for chunk in [1usize, 2, 3, 7, 64, 1000] {
                    let mut out = Vec::new();
                    let mut next = 0;
                    let mut state = Q::FieldStart;
                    for (k, c) in data.chunks(chunk).enumerate() {
                        let off = (k * chunk) as u64;
                        state = scan(c, off, state, delim, &targets, &mut next, &mut out);
                    }
                    out.dedup();
                    assert_eq!(out, want, "round {round} chunk {chunk} data {data:?}");
                }
            }
        }
    }

    #[test]
    fn csv_boundaries_never_fall_inside_quoted_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.csv");
        let mut f = File::create(&p).unwrap();
        // Every record: `i,"line one\nline two, with comma",x\n`.
        let mut starts = vec![0u64];
        let mut off = 0u64;
        for i in 0..200 {
            let rec = format!("{i},\"line one\nline \"\"two\"\", with comma\",x\n");
            off += rec.len() as u64;
            starts.push(off);
            f.write_all(rec.as_bytes()).unwrap();
        }
        drop(f);
        let targets: Vec<u64> = (1..50).map(|k| k * 97).collect();
        let b = csv_boundaries(&p, &targets, b',').unwrap();
        assert!(!b.is_empty());
        for x in b {
            assert!(starts.contains(&x), "boundary {x} is not a record start");
        }
    }

    /// Random bytes from `alphabet` (xorshift, seeded).
    fn random_bytes(seed: &mut u64, len: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                alphabet[(*seed % alphabet.len() as u64) as usize]
            })
            .collect()
    }

    /// A boundary found from the bytes after a target alone is a record end that the scan from
    /// the start of the file finds, or the end of the file; nearly always found.
    #[test]
    fn near_boundary_is_a_record_end_of_the_scan_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        let mut seed = 0x0bad_cafe_1234_5678u64;
        let (mut at, mut all) = (0, 0);
        for round in 0..200 {
            // Quote-rich noise, and CSV-like text (fields, some quoted, with newlines inside).
            let data = if round % 2 == 0 {
                random_bytes(&mut seed, 1 + (round * 13) % 600, b"a,\"\r\n;x")
            } else {
                let mut d = Vec::new();
                while d.len() < 900 {
                    let f = random_bytes(&mut seed, 1 + d.len() % 7, b"ab ,\n\r\"");
                    if seed.is_multiple_of(3) {
                        d.push(b'"');
                        for &b in &f {
                            if b == b'"' {
                                d.push(b'"');
                            }
                            d.push(b);
                        }
                        d.push(b'"');
                    } else {
                        d.extend(
                            f.iter()
                                .filter(|&&b| !matches!(b, b'"' | b',' | b'\n' | b'\r')),
                        );
                    }
                    d.extend_from_slice(if seed.is_multiple_of(4) {
                        b"\r\n"
                    } else {
                        b","
                    });
                }
                d
            };
            std::fs::write(&p, &data).unwrap();
            let mut f = File::open(&p).unwrap();
            let mut buf = vec![0u8; 1 + round % 50];
            // Every record end, from the byte-by-byte automaton from the start.
            let every: Vec<u64> =
                slow_boundaries(&data, &(0..data.len() as u64).collect::<Vec<_>>(), b',');
            for t in 0..data.len() as u64 {
                match near_boundary(&mut f, t, b',', &mut buf).unwrap() {
                    Near::At(b) => {
                        at += 1;
                        assert!(b > t && every.contains(&b), "round {round} target {t}: {b}");
                    }
                    // Also before the runs agree: the piece before then reads to the end.
                    Near::End => {}
                    Near::Guess(b) => panic!("round {round} target {t}: a guess {b} in 900 bytes"),
                    Near::Unknown => panic!("round {round} target {t}: unknown in 900 bytes"),
                }
                all += 1;
            }
        }
        eprintln!("{at} of {all} found");
        assert!(at * 10 > all * 9, "{at} of {all} found");
    }

    /// Records whose quoted fields keep a run in the wrong quote state from ever meeting the
    /// true one (`","`): the boundary is left to the reader (`align`), after a target.
    #[test]
    fn runs_that_never_agree_leave_the_boundary_to_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.csv");
        let data = "\",\"\n".repeat(20_000);
        std::fs::write(&p, &data).unwrap();
        let size = data.len() as u64;
        let pieces = csv_pieces(&p, size, &[size / 3, 2 * size / 3], b',', |t| t).unwrap();
        assert_eq!(
            pieces,
            vec![
                Piece::new(0, size / 3 + 1, false),
                Piece::new(size / 3, 2 * size / 3 + 1, true),
                Piece::new(2 * size / 3, u64::MAX, true)
            ]
        );
    }

    /// A file without quotes: the quote state is unknown after any target, so each boundary
    /// is a guess, the first line end after its target (no skew); two targets in one record
    /// give one boundary.
    #[test]
    fn a_file_without_quotes_gets_guessed_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.csv");
        let data = "1,abc,2.5\n".repeat(10_000);
        std::fs::write(&p, &data).unwrap();
        let size = data.len() as u64;
        let pieces = csv_pieces(&p, size, &[1000, 1001, 50_000], b',', |t| t + 100).unwrap();
        let g = |start, end| Piece {
            end_guessed: true,
            ..Piece::new(start, end, false)
        };
        assert_eq!(
            pieces,
            vec![
                g(0, 1010),
                g(1010, 50_010),
                Piece::new(50_010, u64::MAX, false)
            ]
        );
        // A target right after a `\r` of a `\r\n`: the guess is after its `\n`.
        let data = "1,abc,2.5\r\n".repeat(10_000);
        std::fs::write(&p, &data).unwrap();
        let pieces = csv_pieces(&p, data.len() as u64, &[10], b',', |t| t).unwrap();
        assert_eq!(pieces, vec![g(0, 11), Piece::new(11, u64::MAX, false)]);
        // Without a line end in the window: left to the reader.
        let data = "x".repeat(100_000);
        std::fs::write(&p, &data).unwrap();
        let pieces = csv_pieces(&p, data.len() as u64, &[10], b',', |t| t).unwrap();
        assert_eq!(
            pieces,
            vec![Piece::new(0, 11, false), Piece::new(10, u64::MAX, true)]
        );
    }

    /// `unguess` turns each guess into an aligned start one byte before it, and the exact check
    /// tells a right guess from one inside a quoted field.
    #[test]
    fn guesses_unguessed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.csv");
        // A quoted field of 200 KB with newlines inside and no quote near the target.
        let mut data = String::from("a,b\n1,\"");
        data.push_str(&"line\n".repeat(40_000));
        data.push_str("\"\n");
        data.push_str(&"2,x\n".repeat(30_000));
        std::fs::write(&p, &data).unwrap();
        let size = data.len() as u64;
        let t = 40_000;
        let pieces = csv_pieces(&p, size, &[t, size - 50_000], b',', |t| t).unwrap();
        assert!(pieces[0].end_guessed && pieces[1].end_guessed, "{pieces:?}");
        assert!(!csv_guess_holds(&p, pieces[0].end, b',').unwrap());
        assert!(csv_guess_holds(&p, pieces[1].end, b',').unwrap());
        let split = |pc: &Piece| Split {
            path: Some(p.clone()),
            start: pc.start,
            end: pc.end,
            skip_header: pc.start == 0,
            field_of_column: vec![0, 1],
            fields: 2,
            align: pc.align,
            end_guessed: pc.end_guessed,
            snapshot: None,
        };
        let mut splits = vec![
            vec![split(&pieces[0]), split(&pieces[2])],
            vec![split(&pieces[1])],
        ];
        unguess(&mut splits);
        let got: Vec<(u64, u64, bool, bool)> = splits
            .iter()
            .flatten()
            .map(|s| (s.start, s.end, s.align, s.end_guessed))
            .collect();
        let (b0, b1) = (pieces[0].end, pieces[1].end);
        assert_eq!(
            got,
            vec![
                (0, b0, false, false),
                (b1 - 1, u64::MAX, true, false),
                (b0 - 1, b1, true, false)
            ]
        );
    }

    /// Exact boundaries in a plain file; a target whose record ends the file gives no piece.
    #[test]
    fn csv_pieces_are_exact_record_starts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        // Records of 11 bytes, each with a quoted newline.
        let rec = "1234,\"a\nb\"\n";
        let data = rec.repeat(100);
        std::fs::write(&p, &data).unwrap();
        let size = data.len() as u64;
        let r = rec.len() as u64;
        // A target inside the quoted newline of record 3: the boundary is record 4's start.
        let pieces = csv_pieces(&p, size, &[3 * r + 7, 3 * r + 8, 50 * r], b',', |t| t).unwrap();
        assert_eq!(
            pieces,
            vec![
                Piece::new(0, 4 * r, false),
                Piece::new(4 * r, 51 * r, false),
                Piece::new(51 * r, u64::MAX, false)
            ]
        );
        // Targets in the last record: one piece.
        assert_eq!(
            csv_pieces(&p, size, &[size - 5, size - 1], b',', |t| t).unwrap(),
            vec![Piece::new(0, u64::MAX, false)]
        );
    }
}
