//! CSV schema inference: int / float / bool / str per column from a sample of records;
//! nullable where values are empty or missing; timestamps are declared, not guessed.

use crate::job::Options;
use crate::types::{Field, RowType, Scalar, Type, Value};

/// How many records schema inference samples.
pub const SAMPLE: usize = 1000;

fn delimiter(options: &Options) -> u8 {
    match options.get("delimiter") {
        Some(Value::Str(s)) => s.as_bytes().first().copied().unwrap_or(b','),
        _ => b',',
    }
}

/// What one column's sampled values allow.
#[derive(Clone, Copy)]
struct Guess {
    int: bool,
    float: bool,
    bool_: bool,
    any: bool,
    nulls: bool,
}

impl Guess {
    fn new() -> Guess {
        Guess {
            int: true,
            float: true,
            bool_: true,
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
        self.int &= v.parse::<i64>().is_ok();
        self.float &= v.parse::<f64>().is_ok()
            && !v.chars().any(|c| c.is_alphabetic() && c != 'e' && c != 'E');
        self.bool_ &= v == "true" || v == "false";
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
pub fn infer(path: &str, options: &Options) -> Result<RowType, String> {
    let delimiter = delimiter(options);
    let header = !matches!(options.get("header"), Some(Value::Bool(false)));
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(header)
        .flexible(true)
        .from_path(path)
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = if header {
        let h = r.headers().map_err(|e| e.to_string())?;
        if h.is_empty() || h.iter().all(|s| s.trim().is_empty()) {
            return Err("the file is empty (no header line)".into());
        }
        h.iter().map(|s| s.trim().to_string()).collect()
    } else {
        Vec::new()
    };
    let mut guesses: Vec<Guess> = vec![Guess::new(); names.len()];
    let mut rows = 0;
    for rec in r.records().take(SAMPLE) {
        let rec = rec.map_err(|e| e.to_string())?;
        if guesses.len() < rec.len() {
            guesses.resize(rec.len(), Guess::new());
        }
        for (g, v) in guesses.iter_mut().zip(rec.iter()) {
            g.see(v);
        }
        rows += 1;
    }
    if rows == 0 && names.is_empty() {
        return Err("the file has no records".into());
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
