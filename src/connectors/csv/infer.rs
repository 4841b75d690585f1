//! CSV schema inference: int / float / bool / str per column from a sample of records;
//! nullable where values are empty or missing; timestamp where every value is an ISO 8601 date
//! or date-time (`2024-05-01`, `2024-05-01T12:00:00Z`), as the reader parses them.

use super::{EMPTY, header_names};
use crate::connectors::{opt_bool, opt_delimiter};
use crate::job::Options;
use crate::types::{Field, RowType, Scalar, Type};

/// How many records schema inference samples.
pub const SAMPLE: usize = 1000;

/// What one column's sampled values allow.
#[derive(Clone, Copy)]
struct Guess {
    int: bool,
    float: bool,
    bool_: bool,
    ts: bool,
    any: bool,
    nulls: bool,
}

impl Guess {
    fn new() -> Guess {
        Guess {
            int: true,
            float: true,
            bool_: true,
            ts: true,
            any: false,
            nulls: false,
        }
    }
    fn see(&mut self, v: &str) {
        let v = v.trim();
        if v.is_empty() {
            self.nulls = true;
            return;
        }
        self.any = true;
        // A digit string with a leading zero (a zip code `08123`, an id `007`) is text: as a
        // number it would lose its zeros.
        let digits = v.strip_prefix(['-', '+']).unwrap_or(v).as_bytes();
        if digits.len() > 1 && digits[0] == b'0' && digits[1].is_ascii_digit() {
            self.int = false;
            self.float = false;
        }
        self.int &= v.parse::<i64>().is_ok();
        self.float &= v.parse::<f64>().is_ok()
            && !v.chars().any(|c| c.is_alphabetic() && c != 'e' && c != 'E');
        self.bool_ &= v == "true" || v == "false";
        self.ts = self.ts && crate::stdlib::ops::parse_timestamp(v).is_some();
    }
    fn ty(self) -> Type {
        let scalar = if !self.any {
            Scalar::Str
        } else if self.int {
            Scalar::Int
        } else if self.float {
            Scalar::Float
        } else if self.bool_ {
            Scalar::Bool
        } else if self.ts {
            Scalar::Timestamp
        } else {
            Scalar::Str
        };
        Type {
            scalar,
            nullable: self.nulls || !self.any,
        }
    }
}

/// Infers a CSV file's row type from its header (or `c1…`) and a sample of its records.
///
/// A sampled record the reader would reject (a field count other than the header's — or, without
/// a header, than most sampled records' — or a field that is not UTF-8) is a row error for the
/// source's error policy at run time, so it does not shape the schema here.
pub fn infer(path: &str, options: &Options) -> Result<RowType, String> {
    let delimiter = opt_delimiter(options)?;
    let header = opt_bool(options, "header", true);
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .map_err(|e| e.to_string())?;
    let mut rec = csv::ByteRecord::new();
    let names: Vec<String> = if header {
        if !r.read_byte_record(&mut rec).map_err(|e| e.to_string())? {
            return Err(EMPTY.into());
        }
        header_names(&rec)?
    } else {
        Vec::new()
    };
    let mut sample: Vec<csv::ByteRecord> = Vec::new();
    while sample.len() < SAMPLE && r.read_byte_record(&mut rec).map_err(|e| e.to_string())? {
        sample.push(rec.clone());
    }
    let fields = if header {
        names.len()
    } else {
        match most_common_len(&sample) {
            Some(n) => n,
            None => return Err("the file has no records".into()),
        }
    };
    let mut guesses: Vec<Guess> = vec![Guess::new(); fields];
    for rec in &sample {
        if rec.len() != fields {
            continue;
        }
        let Ok(values) = rec
            .iter()
            .map(std::str::from_utf8)
            .collect::<Result<Vec<&str>, _>>()
        else {
            continue;
        };
        for (g, v) in guesses.iter_mut().zip(values) {
            g.see(v);
        }
    }
    let fields = guesses
        .iter()
        .enumerate()
        .map(|(i, g)| Field {
            name: names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("c{}", i + 1)),
            ty: g.ty(),
        })
        .collect();
    Ok(RowType::new(fields))
}

/// The field count most sampled records have (the first such on a tie).
fn most_common_len(sample: &[csv::ByteRecord]) -> Option<usize> {
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for rec in sample {
        match counts.iter_mut().find(|(n, _)| *n == rec.len()) {
            Some(c) => c.1 += 1,
            None => counts.push((rec.len(), 1)),
        }
    }
    let best = counts.iter().map(|c| c.1).max()?;
    counts.iter().find(|c| c.1 == best).map(|c| c.0)
}
