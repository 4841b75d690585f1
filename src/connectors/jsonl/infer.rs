//! JSON lines schema inference: the union of the keys of a sample of objects, each typed by
//! the values seen (int and float widen to float; strings that are all ISO 8601 dates or
//! date-times are timestamps; anything else mixed is str).

use crate::connectors::csv::infer::SAMPLE;
use crate::job::Options;
use crate::types::{Field, RowType, Scalar, Type};

/// Infers a JSON lines file's row type from a sample of its objects.
pub fn infer(path: &str, _options: &Options) -> Result<RowType, String> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut first = true;
    let mut fields: Vec<(String, Option<Scalar>, bool, usize)> = Vec::new(); // name, scalar, nullable, seen
    let mut objects = 0;
    for (n, line) in std::io::BufReader::new(f).split(b'\n').enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        let mut line = line.as_slice();
        if std::mem::take(&mut first) {
            line = line.strip_prefix(super::BOM).unwrap_or(line);
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        // A line that is not UTF-8 or not a JSON object is a row error at run time (the
        // source's error policy), not part of the schema.
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(line)
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
                serde_json::Value::String(t)
                    if crate::stdlib::ops::parse_timestamp(t).is_some() =>
                {
                    Some(Scalar::Timestamp)
                }
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
