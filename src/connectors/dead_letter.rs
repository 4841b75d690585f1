//! Dead-letter records: one JSON object per rejected row, with the raw record (or the row's
//! values, for rows rejected by a stage), where it was, and why. Dead-letter files are
//! `AtomicOutput`s like sinks: written per worker, renamed into place only on success.

use super::RowReject;
use serde_json::{Value as J, json};

/// A row rejected by a source.
pub fn source_line(source: &str, r: &RowReject) -> Vec<u8> {
    let v = json!({
        "source": source,
        "file": r.file,
        "line": r.line,
        "column": r.column.as_ref().map(|(_, n)| n.clone()),
        "field": r.column.as_ref().map(|(i, _)| *i),
        "reason": r.reason,
        "record": r.raw,
    });
    line(v)
}

/// A row rejected by a stage (a kernel error): the input row's values.
pub fn stage_line(stage: &str, step: usize, reason: &str, row: J) -> Vec<u8> {
    let v = json!({
        "stage": stage,
        "step": step,
        "reason": reason,
        "record": row,
    });
    line(v)
}

fn line(v: J) -> Vec<u8> {
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.push(b'\n');
    b
}
