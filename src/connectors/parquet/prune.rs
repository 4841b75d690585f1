//! Row-group pruning: whether a pushed-down predicate (`SourceSpec::prune`) is false for every
//! row of a row group, judged from the group's min/max statistics and null counts.
//!
//! The predicate cannot fail (pushdown only passes such predicates) and the filter above the
//! source still decides every row that is read, so a wrong "maybe" only costs reading; the one
//! thing that must hold is that "false for every row" is never said of a group where some row
//! passes. Understood: `&&`, `||`, comparisons of a column (or an int column widened to float,
//! or `column ?? literal`) with a literal, `is_null` and its negation, the literal `false`. Anything else is "maybe".
//! A comparison is only reached on rows where its column is not null (the checker requires
//! nullable columns to be narrowed first), so it is judged on the non-null values alone.

use super::schema::Kind;
use crate::check::hir::{BinOp, Expr, ExprKind, UnOp};
use crate::codegen::sem::compare;
use crate::types::{Scalar, Value};
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::statistics::Statistics;
use std::cmp::Ordering;

/// What the statistics say of one column of one row group.
struct Stats {
    /// Lower and upper bounds of its non-null values, in flow's values.
    bounds: Option<(Value, Value)>,
    nulls: Option<u64>,
    rows: u64,
}

/// Where a produced column of the source lives: its leaf index and how it converts.
pub type ColumnOf<'a> = dyn Fn(usize) -> Option<(usize, Kind)> + 'a;

/// True when `pred` is false for every row of `rg`.
pub fn skips(pred: &Expr, rg: &RowGroupMetaData, column_of: &ColumnOf) -> bool {
    let stats = |i: usize| -> Option<Stats> {
        let (leaf, kind) = column_of(i)?;
        let chunk = rg.columns().get(leaf)?;
        let s = chunk.statistics()?;
        Some(Stats {
            bounds: bounds(s, kind),
            nulls: s.null_count_opt(),
            rows: u64::try_from(rg.num_rows()).ok()?,
        })
    };
    never(pred, &stats)
}

/// "False whenever evaluated".
fn never(e: &Expr, stats: &dyn Fn(usize) -> Option<Stats>) -> bool {
    match &e.kind {
        ExprKind::Lit(Value::Bool(false)) => true,
        ExprKind::Binary(BinOp::And, a, b) => never(a, stats) || never(b, stats),
        ExprKind::Binary(BinOp::Or, a, b) => never(a, stats) && never(b, stats),
        ExprKind::IsNull(a) => match a.kind {
            ExprKind::Field(i) => stats(i).is_some_and(|s| s.nulls == Some(0)),
            _ => false,
        },
        ExprKind::Unary(UnOp::Not, a) => match &a.kind {
            ExprKind::IsNull(x) => match x.kind {
                ExprKind::Field(i) => stats(i).is_some_and(|s| s.nulls == Some(s.rows)),
                _ => false,
            },
            _ => false,
        },
        ExprKind::Binary(op, a, b) => match (column(a), &b.kind, column(b), &a.kind) {
            (Some(c), ExprKind::Lit(v), _, _) => compare_never(*op, &c, v, stats),
            (_, _, Some(c), ExprKind::Lit(v)) => {
                flip(*op).is_some_and(|op| compare_never(op, &c, v, stats))
            }
            _ => false,
        },
        _ => false,
    }
}

/// A column operand of a comparison: `x`, `x` widened to float, or `x ?? literal`.
struct Operand {
    column: usize,
    widened: bool,
    default: Option<Value>,
}

fn column(e: &Expr) -> Option<Operand> {
    match &e.kind {
        ExprKind::Field(i) => Some(Operand {
            column: *i,
            widened: false,
            default: None,
        }),
        ExprKind::Cast(a, Scalar::Float) => match a.kind {
            ExprKind::Field(i) => Some(Operand {
                column: i,
                widened: true,
                default: None,
            }),
            _ => None,
        },
        ExprKind::Coalesce(a, d) => match (&a.kind, &d.kind) {
            (ExprKind::Field(i), ExprKind::Lit(v)) if *v != Value::Null => Some(Operand {
                column: *i,
                widened: false,
                default: Some(v.clone()),
            }),
            _ => None,
        },
        _ => None,
    }
}

/// `lit OP col` as `col OP' lit`.
fn flip(op: BinOp) -> Option<BinOp> {
    Some(match op {
        BinOp::Lt => BinOp::Gt,
        BinOp::Le => BinOp::Ge,
        BinOp::Gt => BinOp::Lt,
        BinOp::Ge => BinOp::Le,
        BinOp::Eq => BinOp::Eq,
        _ => return None,
    })
}

/// Whether `col OP lit` is false for every value the operand takes in the row group: its
/// non-null values (within the bounds), and its default if it has one and the group may hold
/// nulls.
fn compare_never(
    op: BinOp,
    c: &Operand,
    lit: &Value,
    stats: &dyn Fn(usize) -> Option<Stats>,
) -> bool {
    let Some(st) = stats(c.column) else {
        return false;
    };
    if let Some(d) = &c.default
        && st.nulls != Some(0)
        && !range_never(op, d, d, lit)
    {
        return false;
    }
    if c.default.is_some() && st.nulls == Some(st.rows) {
        return true; // every value is the default, just checked
    }
    let Some((min, max)) = st.bounds else {
        return false;
    };
    let (min, max) = if c.widened {
        match (min, max) {
            (Value::Int(a), Value::Int(b)) => (Value::Float(a as f64), Value::Float(b as f64)),
            _ => return false,
        }
    } else {
        (min, max)
    };
    range_never(op, &min, &max, lit)
}

/// Whether `v OP lit` is false for every `v` in `min..=max`.
fn range_never(op: BinOp, min: &Value, max: &Value, lit: &Value) -> bool {
    // Ordered exactly as the engines compare (`sem::compare`: IEEE for floats, bytes for str).
    let (Some(lo), Some(hi)) = (compare(min, lit), compare(max, lit)) else {
        return false;
    };
    match op {
        BinOp::Lt => lo != Ordering::Less,    // v >= min >= lit
        BinOp::Le => lo == Ordering::Greater, // v >= min > lit
        BinOp::Gt => hi != Ordering::Greater, // v <= max <= lit
        BinOp::Ge => hi == Ordering::Less,    // v <= max < lit
        BinOp::Eq => lo == Ordering::Greater || hi == Ordering::Less,
        _ => false,
    }
}

/// The bounds of a column chunk's non-null values as flow values, where they are trustworthy
/// for flow's order: not for unsigned 32-bit columns (stored as signed bits), not for old
/// files' deprecated byte-array bounds (signed byte order), not when a float bound is NaN.
fn bounds(s: &Statistics, kind: Kind) -> Option<(Value, Value)> {
    let ts = |a: i64, b: i64| {
        Some((
            Value::Timestamp(kind.micros(a)),
            Value::Timestamp(kind.micros(b)),
        ))
    };
    match (s, kind) {
        (Statistics::Boolean(v), Kind::Bool) => {
            Some((Value::Bool(*v.min_opt()?), Value::Bool(*v.max_opt()?)))
        }
        (Statistics::Int32(v), Kind::I32) => Some((
            Value::Int(i64::from(*v.min_opt()?)),
            Value::Int(i64::from(*v.max_opt()?)),
        )),
        (Statistics::Int32(v), Kind::Date) => {
            ts(i64::from(*v.min_opt()?), i64::from(*v.max_opt()?))
        }
        (Statistics::Int64(v), Kind::I64) => {
            Some((Value::Int(*v.min_opt()?), Value::Int(*v.max_opt()?)))
        }
        (Statistics::Int64(v), Kind::TsMillis | Kind::TsMicros | Kind::TsNanos) => {
            ts(*v.min_opt()?, *v.max_opt()?)
        }
        (Statistics::Float(v), Kind::F32) => {
            float_bounds(f64::from(*v.min_opt()?), f64::from(*v.max_opt()?))
        }
        (Statistics::Double(v), Kind::F64) => float_bounds(*v.min_opt()?, *v.max_opt()?),
        (Statistics::ByteArray(v), Kind::Str) if !s.is_min_max_deprecated() => {
            // Bounds may be truncated prefixes (a lower bound) or incremented ones (an upper
            // bound): still bounds. Compared bytewise, as flow compares strings.
            let lo = std::str::from_utf8(v.min_opt()?.data()).ok()?.to_string();
            let hi = std::str::from_utf8(v.max_opt()?.data()).ok()?.to_string();
            Some((Value::Str(lo), Value::Str(hi)))
        }
        _ => None,
    }
}

fn float_bounds(lo: f64, hi: f64) -> Option<(Value, Value)> {
    if lo.is_nan() || hi.is_nan() {
        return None;
    }
    Some((Value::Float(lo), Value::Float(hi)))
}
