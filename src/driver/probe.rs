//! The file-system probe the checker uses: existence checks, CSV headers and schema inference
//! from a sample of records (int / float / bool / str; nullable where values are empty or missing;
//! timestamps are declared, not guessed).

use crate::check::Probe;
use crate::job::Options;
use crate::types::{Field, RowType, Scalar, Type, Value};

/// How many records schema inference samples.
const SAMPLE: usize = 1000;

pub struct FsProbe;

fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// The first existing file of a path or glob.
fn first_file(path: &str) -> Option<String> {
    if !is_glob(path) {
        return std::path::Path::new(path)
            .is_file()
            .then(|| path.to_string());
    }
    let mut matches: Vec<String> = glob::glob(path)
        .ok()?
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    matches.sort();
    matches.into_iter().next()
}

fn delimiter(options: &Options) -> u8 {
    match options.get("delimiter") {
        Some(Value::Str(s)) => s.as_bytes().first().copied().unwrap_or(b','),
        _ => b',',
    }
}

impl Probe for FsProbe {
    fn exists(&self, path: &str) -> bool {
        first_file(path).is_some()
    }

    fn csv_header(&self, path: &str, delimiter: u8) -> Result<Vec<String>, String> {
        let file = first_file(path).ok_or_else(|| "no such file".to_string())?;
        let mut r = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .from_path(&file)
            .map_err(|e| e.to_string())?;
        let h = r.headers().map_err(|e| e.to_string())?;
        Ok(h.iter().map(|s| s.trim().to_string()).collect())
    }

    fn infer(&self, connector: &str, path: &str, options: &Options) -> Result<RowType, String> {
        let file = first_file(path).ok_or_else(|| "no such file".to_string())?;
        match connector {
            "csv" => infer_csv(
                &file,
                delimiter(options),
                !matches!(options.get("header"), Some(Value::Bool(false))),
            ),
            "jsonl" => infer_jsonl(&file),
            other => Err(format!("cannot infer a schema for `{other}`")),
        }
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

fn infer_csv(path: &str, delimiter: u8, header: bool) -> Result<RowType, String> {
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

fn infer_jsonl(path: &str) -> Result<RowType, String> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut fields: Vec<(String, Option<Scalar>, bool, usize)> = Vec::new(); // name, scalar, nullable, seen
    let mut objects = 0;
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(&line)
        else {
            if objects == 0 && n > 20 {
                break;
            }
            continue; // malformed lines are the runtime's business (error policy)
        };
        objects += 1;
        for (k, v) in &obj {
            let s = match v {
                serde_json::Value::Null => None,
                serde_json::Value::Bool(_) => Some(Scalar::Bool),
                serde_json::Value::Number(num) => Some(if num.is_i64() {
                    Scalar::Int
                } else {
                    Scalar::Float
                }),
                _ => Some(Scalar::Str),
            };
            match fields.iter_mut().find(|f| f.0 == *k) {
                Some(f) => {
                    f.3 += 1;
                    match (f.1, s) {
                        (_, None) => f.2 = true,
                        (None, Some(s)) => f.1 = Some(s),
                        (Some(a), Some(b)) if a == b => {}
                        (Some(Scalar::Int), Some(Scalar::Float))
                        | (Some(Scalar::Float), Some(Scalar::Int)) => f.1 = Some(Scalar::Float),
                        (Some(_), Some(_)) => f.1 = Some(Scalar::Str),
                    }
                }
                None => fields.push((k.clone(), s, s.is_none() || objects > 1, 1)),
            }
        }
        if objects >= SAMPLE {
            break;
        }
    }
    if objects == 0 {
        return Err("the file holds no JSON objects".into());
    }
    Ok(RowType::new(
        fields
            .into_iter()
            .map(|(name, s, nullable, seen)| Field {
                name,
                ty: Type {
                    scalar: s.unwrap_or(Scalar::Str),
                    nullable: nullable || s.is_none() || seen < objects,
                },
            })
            .collect(),
    ))
}
