//! Value-level semantics of operators and builtins, built on `stdlib::ops`. The interpreter and
//! the constant folder evaluate through here; the JIT's helpers call the same `ops` functions
//! (and the few text conversions defined below), so all engines agree.

use crate::check::hir::{BinOp, UnOp};
use crate::stdlib::Builtin;
use crate::stdlib::RowErrorCode;
use crate::stdlib::literal::{self, Compiled};
use crate::stdlib::ops::{self, RowResult, TsPart};
use crate::types::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

/// `to_str` of an int.
pub fn int_to_str(i: i64) -> String {
    itoa::Buffer::new().format(i).to_string()
}

/// `to_str` of a bool.
pub fn bool_to_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Unary operators. A null operand gives null (the checker never produces one).
pub fn unary(op: UnOp, v: Value) -> RowResult<Value> {
    Ok(match (op, v) {
        (_, Value::Null) => Value::Null,
        (UnOp::Neg, Value::Int(i)) => Value::Int(ops::int_neg(i)?),
        (UnOp::Neg, Value::Float(x)) => Value::Float(-x),
        (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
        // Ill-typed: not produced by the checker.
        _ => Value::Null,
    })
}

/// Orders two non-null values of one scalar: ints and timestamps numerically, floats by IEEE
/// (`None` when unordered: NaN), bools false < true, strings bytewise.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) | (Value::Timestamp(x), Value::Timestamp(y)) => {
            Some(x.cmp(y))
        }
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

/// Non-short-circuit binary operators (`And`/`Or` are evaluated by the caller). A null operand
/// gives null (the checker never produces one).
pub fn binary(op: BinOp, a: Value, b: Value) -> RowResult<Value> {
    if matches!(a, Value::Null) || matches!(b, Value::Null) {
        return Ok(Value::Null);
    }
    let cmp =
        |want: fn(Ordering) -> bool| -> Value { Value::Bool(compare(&a, &b).is_some_and(want)) };
    Ok(match op {
        BinOp::Eq => cmp(|o| o == Ordering::Equal),
        // IEEE: NaN != x is true.
        BinOp::Ne => Value::Bool(compare(&a, &b) != Some(Ordering::Equal)),
        BinOp::Lt => cmp(|o| o == Ordering::Less),
        BinOp::Le => cmp(|o| o != Ordering::Greater),
        BinOp::Gt => cmp(|o| o == Ordering::Greater),
        BinOp::Ge => cmp(|o| o != Ordering::Less),
        BinOp::And => match (a, b) {
            (Value::Bool(x), Value::Bool(y)) => Value::Bool(x && y),
            _ => Value::Null,
        },
        BinOp::Or => match (a, b) {
            (Value::Bool(x), Value::Bool(y)) => Value::Bool(x || y),
            _ => Value::Null,
        },
        _ => match (a, b) {
            (Value::Int(x), Value::Int(y)) => Value::Int(match op {
                BinOp::Add => ops::int_add(x, y)?,
                BinOp::Sub => ops::int_sub(x, y)?,
                BinOp::Mul => ops::int_mul(x, y)?,
                BinOp::Div => ops::int_div(x, y)?,
                BinOp::Rem => ops::int_rem(x, y)?,
                _ => return Ok(Value::Null),
            }),
            (Value::Float(x), Value::Float(y)) => Value::Float(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => ops::float_div(x, y)?,
                BinOp::Rem => ops::float_rem(x, y)?,
                _ => return Ok(Value::Null),
            }),
            _ => Value::Null,
        },
    })
}

fn str_arg(v: &Value) -> &str {
    match v {
        Value::Str(s) => s,
        _ => "",
    }
}

fn int_arg(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Timestamp(i) => *i,
        _ => 0,
    }
}

fn float_arg(v: &Value) -> f64 {
    match v {
        Value::Float(x) => *x,
        Value::Int(i) => *i as f64,
        _ => 0.0,
    }
}

/// `IsNull` accepts null; for every other builtin a
/// null argument gives null (the checker never produces one).
/// A regular expression literal: from the kernel's table, or compiled here (constant folding).
fn regex<'a>(lits: &'a Compiled, pattern: &str) -> RowResult<Cow<'a, regex::Regex>> {
    match lits.regex(pattern) {
        Some(r) => Ok(Cow::Borrowed(r)),
        None => literal::regex(pattern)
            .map(Cow::Owned)
            .map_err(|_| RowErrorCode::InvalidArgument),
    }
}

/// A time zone literal, likewise.
fn zone<'a>(lits: &'a Compiled, name: &str) -> RowResult<Cow<'a, jiff::tz::TimeZone>> {
    match lits.zone(name) {
        Some(z) => Ok(Cow::Borrowed(z)),
        None => literal::zone(name)
            .map(Cow::Owned)
            .map_err(|_| RowErrorCode::InvalidArgument),
    }
}

/// A builtin call over evaluated arguments, with the kernel's compiled literals.
pub fn call(b: Builtin, args: &[Value], lits: &Compiled) -> RowResult<Value> {
    if b == Builtin::IsNull {
        return Ok(Value::Bool(matches!(args.first(), Some(Value::Null))));
    }
    if args.iter().any(|a| matches!(a, Value::Null)) {
        return Ok(Value::Null);
    }
    let a0 = args.first().unwrap_or(&Value::Null);
    let a1 = args.get(1).unwrap_or(&Value::Null);
    let a2 = args.get(2).unwrap_or(&Value::Null);
    let s = |x: String| Value::Str(x);
    Ok(match b {
        Builtin::Len => Value::Int(ops::len(str_arg(a0))),
        Builtin::Upper => s(ops::upper(str_arg(a0))),
        Builtin::Lower => s(ops::lower(str_arg(a0))),
        Builtin::Trim => s(ops::trim(str_arg(a0)).to_string()),
        Builtin::Contains => Value::Bool(str_arg(a0).contains(str_arg(a1))),
        Builtin::StartsWith => Value::Bool(str_arg(a0).starts_with(str_arg(a1))),
        Builtin::EndsWith => Value::Bool(str_arg(a0).ends_with(str_arg(a1))),
        Builtin::Substr => s(ops::substr(str_arg(a0), int_arg(a1), int_arg(a2))?.to_string()),
        Builtin::Replace => s(ops::replace(str_arg(a0), str_arg(a1), str_arg(a2))),
        Builtin::Concat => s(args.iter().map(str_arg).collect()),
        Builtin::Abs => match a0 {
            Value::Int(i) => Value::Int(ops::int_abs(*i)?),
            v => Value::Float(float_arg(v).abs()),
        },
        Builtin::Round => Value::Float(float_arg(a0).round()),
        Builtin::Floor => Value::Float(float_arg(a0).floor()),
        Builtin::Ceil => Value::Float(float_arg(a0).ceil()),
        Builtin::Sqrt => Value::Float(float_arg(a0).sqrt()),
        Builtin::Min | Builtin::Max => match (a0, a1) {
            (Value::Int(x), Value::Int(y)) => Value::Int(if b == Builtin::Min {
                *x.min(y)
            } else {
                *x.max(y)
            }),
            (x, y) => {
                let (x, y) = (float_arg(x), float_arg(y));
                Value::Float(if b == Builtin::Min {
                    ops::float_min(x, y)
                } else {
                    ops::float_max(x, y)
                })
            }
        },
        Builtin::ToInt => match a0 {
            Value::Int(i) => Value::Int(*i),
            v => Value::Int(ops::float_to_int(float_arg(v))?),
        },
        Builtin::ToFloat => Value::Float(float_arg(a0)),
        Builtin::ToStr => s(match a0 {
            Value::Int(i) => int_to_str(*i),
            Value::Float(x) => ops::float_to_str(*x),
            Value::Bool(b) => bool_to_str(*b).to_string(),
            Value::Str(x) => x.clone(),
            Value::Timestamp(t) => ops::timestamp_to_str(*t),
            Value::Null => return Ok(Value::Null),
        }),
        Builtin::ParseInt => ops::parse_int(str_arg(a0)).map_or(Value::Null, Value::Int),
        Builtin::ParseFloat => ops::parse_float(str_arg(a0)).map_or(Value::Null, Value::Float),
        Builtin::ParseTimestamp if args.len() > 1 => {
            ops::parse_timestamp_format(str_arg(a0), str_arg(a1))
                .map_or(Value::Null, Value::Timestamp)
        }
        Builtin::ParseTimestamp => {
            ops::parse_timestamp(str_arg(a0)).map_or(Value::Null, Value::Timestamp)
        }
        Builtin::FromUnix => Value::Timestamp(ops::from_unix(int_arg(a0))?),
        Builtin::Unix => Value::Int(ops::unix(int_arg(a0))),
        Builtin::IsNull => Value::Bool(false),
        Builtin::Matches => {
            Value::Bool(ops::regex_matches(&*regex(lits, str_arg(a1))?, str_arg(a0)))
        }
        Builtin::Extract => {
            match ops::regex_extract(&*regex(lits, str_arg(a1))?, str_arg(a0), int_arg(a2))? {
                Some(t) => s(t.to_string()),
                None => Value::Null,
            }
        }
        Builtin::ReplaceAll => {
            s(
                ops::regex_replace_all(&*regex(lits, str_arg(a1))?, str_arg(a0), str_arg(a2))
                    .into_owned(),
            )
        }
        Builtin::FormatTimestamp if args.len() > 1 => {
            s(ops::format_timestamp(int_arg(a0), str_arg(a1))?)
        }
        Builtin::FormatTimestamp => s(ops::timestamp_to_str(int_arg(a0))),
        Builtin::DateTrunc => {
            let unit =
                literal::trunc_unit(str_arg(a0)).map_err(|_| RowErrorCode::InvalidArgument)?;
            Value::Timestamp(ops::date_trunc(unit, int_arg(a1)))
        }
        Builtin::Year
        | Builtin::Month
        | Builtin::Day
        | Builtin::Hour
        | Builtin::Minute
        | Builtin::Second
        | Builtin::DayOfWeek => Value::Int(ops::ts_part(int_arg(a0), ts_part_of(b))),
        Builtin::AddSeconds => Value::Timestamp(ops::add_seconds(int_arg(a0), int_arg(a1))?),
        Builtin::AddDays => Value::Timestamp(ops::add_days(int_arg(a0), int_arg(a1))?),
        Builtin::DiffSeconds => Value::Int(ops::diff_seconds(int_arg(a0), int_arg(a1))?),
        Builtin::UtcToLocal => {
            Value::Timestamp(ops::utc_to_local(int_arg(a0), &*zone(lits, str_arg(a1))?)?)
        }
        Builtin::LocalToUtc => {
            Value::Timestamp(ops::local_to_utc(int_arg(a0), &*zone(lits, str_arg(a1))?)?)
        }
    })
}

/// The calendar field a field builtin reads (`Year` for any other builtin).
pub fn ts_part_of(b: Builtin) -> TsPart {
    match b {
        Builtin::Month => TsPart::Month,
        Builtin::Day => TsPart::Day,
        Builtin::Hour => TsPart::Hour,
        Builtin::Minute => TsPart::Minute,
        Builtin::Second => TsPart::Second,
        Builtin::DayOfWeek => TsPart::DayOfWeek,
        _ => TsPart::Year,
    }
}
