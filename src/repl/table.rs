//! Rows as an aligned text table, with the row type as its header line.

use crate::types::{RowType, Value};

/// Text of one cell: strings without quotes (null is `null`), numbers right-aligned.
fn cell(v: &Value) -> String {
    match v {
        Value::Str(s) => s.replace('\n', "\\n").replace('\t', "\\t"),
        other => other.to_string(),
    }
}

fn right_aligned(v: &Value) -> bool {
    matches!(v, Value::Int(_) | Value::Float(_))
}

/// The row type, then a table of `rows`; a last line says how many rows there were (and that
/// there may be more when `limit` rows came).
pub fn render(row: &RowType, rows: &[Vec<Value>], limit: usize) -> String {
    let mut out = format!("{row}\n");
    if row.is_empty() {
        out.push_str(&count_line(rows.len(), limit));
        return out;
    }
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let mut widths: Vec<usize> = row.fields.iter().map(|f| f.name.chars().count()).collect();
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |parts: Vec<String>| -> String {
        let mut s = parts.join(" | ");
        while s.ends_with(' ') {
            s.pop();
        }
        s.push('\n');
        s
    };
    out.push_str(&line(
        row.fields
            .iter()
            .zip(&widths)
            .map(|(f, w)| format!("{:<w$}", f.name, w = *w))
            .collect(),
    ));
    out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    for (r, vals) in cells.iter().zip(rows) {
        out.push_str(&line(
            r.iter()
                .zip(&widths)
                .zip(vals)
                .map(|((c, w), v)| {
                    if right_aligned(v) {
                        format!("{c:>w$}", w = *w)
                    } else {
                        format!("{c:<w$}", w = *w)
                    }
                })
                .collect(),
        ));
    }
    out.push_str(&count_line(rows.len(), limit));
    out
}

fn count_line(n: usize, limit: usize) -> String {
    match n {
        0 => "(no rows)\n".to_string(),
        1 => "(1 row)\n".to_string(),
        n if n >= limit => format!("(first {n} rows; `:limit N` shows more)\n"),
        n => format!("({n} rows)\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Field, Scalar, Type};

    #[test]
    fn aligns_columns_and_counts_rows() {
        let row = RowType::new(vec![
            Field {
                name: "id".into(),
                ty: Type::new(Scalar::Int),
            },
            Field {
                name: "vendor".into(),
                ty: Type::nullable(Scalar::Str),
            },
        ]);
        let rows = vec![
            vec![Value::Int(1), Value::Str("acme".into())],
            vec![Value::Int(100), Value::Null],
        ];
        assert_eq!(
            render(&row, &rows, 20),
            "{ id: int, vendor: str? }\n\
             id  | vendor\n\
             --- | ------\n\
             \x20 1 | acme\n\
             100 | null\n\
             (2 rows)\n"
        );
    }
}
