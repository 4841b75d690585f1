//! What the line-oriented readers (CSV, JSON lines) share: a growable read buffer over one
//! split, and the file line number of a split's first byte (counted only when first needed).

use super::ConnectorError;
use super::split;
use std::io::Read;
use std::path::PathBuf;

/// Moves `buf[keep..*hi]` to the front of `buf`, doubles `buf` if it is still full, and reads
/// more input after the kept bytes. Returns `(shift, read)`: how far the kept bytes moved
/// (callers subtract it from their indices) and how many bytes were read (0 = end of input).
pub fn refill(
    input: &mut dyn Read,
    buf: &mut Vec<u8>,
    keep: usize,
    hi: &mut usize,
    file: &str,
) -> Result<(usize, usize), ConnectorError> {
    if keep > 0 {
        buf.copy_within(keep..*hi, 0);
        *hi -= keep;
    }
    if *hi == buf.len() {
        let n = buf.len() * 2;
        buf.resize(n, 0);
    }
    let n = input
        .read(&mut buf[*hi..])
        .map_err(|e| ConnectorError::new(file, format!("read error: {e}")))?;
    *hi += n;
    Ok((keep, n))
}

/// The 1-based file line of a split-relative line: a split starting mid-file counts the
/// newlines before it once, lazily (only when a rejected row needs its line).
pub struct LineBase {
    path: Option<PathBuf>,
    start: u64,
    base: Option<u64>,
}

impl LineBase {
    pub fn new(path: Option<PathBuf>, start: u64) -> LineBase {
        LineBase {
            path,
            start,
            base: if start == 0 { Some(0) } else { None },
        }
    }

    /// The file line of the line `rel` newlines after the split's start.
    pub fn line(&mut self, rel: u64) -> Option<u64> {
        if self.base.is_none()
            && let Some(p) = &self.path
        {
            self.base = split::count_newlines(p, self.start).ok();
        }
        self.base.map(|b| b + rel + 1)
    }
}
