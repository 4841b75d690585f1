//! The standard library: builtin functions implemented in Rust, and the flow-language modules in
//! `stdlib/*.flow` built on top of them.
//!
//! Each builtin has one signature (used by the checker) and one semantics, written here in Rust and
//! shared by the reference interpreter and the JIT's runtime helpers, so they cannot disagree.

pub mod modules;
pub mod ops;

use crate::types::Scalar;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Builtin {
    // strings
    Len,
    Upper,
    Lower,
    Trim,
    Contains,
    StartsWith,
    EndsWith,
    Substr,
    Replace,
    Concat,
    // math
    Abs,
    Round,
    Floor,
    Ceil,
    Sqrt,
    Min,
    Max,
    // conversions
    ToInt,
    ToFloat,
    ToStr,
    ParseInt,
    ParseFloat,
    ParseTimestamp,
    FromUnix,
    Unix,
    // nulls
    IsNull,
}

/// A parameter's accepted type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Exactly this scalar, non-null (an int is widened where a float is expected).
    Is(Scalar),
    /// int or float, non-null; all `Numeric` parameters of one call share one scalar
    /// (int widened to float if any of them is float).
    Numeric,
    /// Any non-null scalar.
    Any,
    /// Any scalar, nullable allowed.
    AnyNullable,
}

/// A builtin's result type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Is(Scalar),
    /// Nullable: the function returns null when it cannot produce a value (parse_*).
    Nullable(Scalar),
    /// The shared scalar of the `Numeric` parameters.
    SameNumeric,
}

pub struct Signature {
    pub params: &'static [Param],
    /// The last parameter may repeat (concat).
    pub variadic: bool,
    pub ret: Ret,
    pub doc: &'static str,
    pub example: &'static str,
}

use Param::*;
use Scalar::*;

pub const ALL: &[Builtin] = &[
    Builtin::Len,
    Builtin::Upper,
    Builtin::Lower,
    Builtin::Trim,
    Builtin::Contains,
    Builtin::StartsWith,
    Builtin::EndsWith,
    Builtin::Substr,
    Builtin::Replace,
    Builtin::Concat,
    Builtin::Abs,
    Builtin::Round,
    Builtin::Floor,
    Builtin::Ceil,
    Builtin::Sqrt,
    Builtin::Min,
    Builtin::Max,
    Builtin::ToInt,
    Builtin::ToFloat,
    Builtin::ToStr,
    Builtin::ParseInt,
    Builtin::ParseFloat,
    Builtin::ParseTimestamp,
    Builtin::FromUnix,
    Builtin::Unix,
    Builtin::IsNull,
];

impl Builtin {
    pub fn from_name(name: &str) -> Option<Builtin> {
        ALL.iter().copied().find(|b| b.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Builtin::Len => "len",
            Builtin::Upper => "upper",
            Builtin::Lower => "lower",
            Builtin::Trim => "trim",
            Builtin::Contains => "contains",
            Builtin::StartsWith => "starts_with",
            Builtin::EndsWith => "ends_with",
            Builtin::Substr => "substr",
            Builtin::Replace => "replace",
            Builtin::Concat => "concat",
            Builtin::Abs => "abs",
            Builtin::Round => "round",
            Builtin::Floor => "floor",
            Builtin::Ceil => "ceil",
            Builtin::Sqrt => "sqrt",
            Builtin::Min => "min",
            Builtin::Max => "max",
            Builtin::ToInt => "to_int",
            Builtin::ToFloat => "to_float",
            Builtin::ToStr => "to_str",
            Builtin::ParseInt => "parse_int",
            Builtin::ParseFloat => "parse_float",
            Builtin::ParseTimestamp => "parse_timestamp",
            Builtin::FromUnix => "from_unix",
            Builtin::Unix => "unix",
            Builtin::IsNull => "is_null",
        }
    }

    pub fn signature(self) -> Signature {
        let s = |params, ret, doc, example| Signature {
            params,
            variadic: false,
            ret,
            doc,
            example,
        };
        match self {
            Builtin::Len => s(
                &[Is(Str)],
                Ret::Is(Int),
                "Number of characters (Unicode scalar values) in a string.",
                "len(\"héllo\") == 5",
            ),
            Builtin::Upper => s(
                &[Is(Str)],
                Ret::Is(Str),
                "The string in upper case (Unicode).",
                "upper(\"oslo\") == \"OSLO\"",
            ),
            Builtin::Lower => s(
                &[Is(Str)],
                Ret::Is(Str),
                "The string in lower case (Unicode).",
                "lower(\"OSLO\") == \"oslo\"",
            ),
            Builtin::Trim => s(
                &[Is(Str)],
                Ret::Is(Str),
                "The string without leading and trailing white space.",
                "trim(\"  a b \") == \"a b\"",
            ),
            Builtin::Contains => s(
                &[Is(Str), Is(Str)],
                Ret::Is(Bool),
                "Whether the first string contains the second.",
                "contains(\"data flow\", \"a f\")",
            ),
            Builtin::StartsWith => s(
                &[Is(Str), Is(Str)],
                Ret::Is(Bool),
                "Whether the first string starts with the second.",
                "starts_with(\"flow\", \"fl\")",
            ),
            Builtin::EndsWith => s(
                &[Is(Str), Is(Str)],
                Ret::Is(Bool),
                "Whether the first string ends with the second.",
                "ends_with(\"flow\", \"ow\")",
            ),
            Builtin::Substr => s(
                &[Is(Str), Is(Int), Is(Int)],
                Ret::Is(Str),
                "`substr(s, start, count)`: up to `count` characters from character `start` (0-based). A negative start or count is a row error.",
                "substr(\"pipeline\", 4, 4) == \"line\"",
            ),
            Builtin::Replace => s(
                &[Is(Str), Is(Str), Is(Str)],
                Ret::Is(Str),
                "`replace(s, from, to)`: every occurrence of `from` replaced by `to` (an empty `from` changes nothing).",
                "replace(\"a-b-c\", \"-\", \"+\") == \"a+b+c\"",
            ),
            Builtin::Concat => Signature {
                params: &[Is(Str)],
                variadic: true,
                ret: Ret::Is(Str),
                doc: "The strings joined, in order (one or more arguments).",
                example: "concat(\"a\", \"b\", \"c\") == \"abc\"",
            },
            Builtin::Abs => s(
                &[Numeric],
                Ret::SameNumeric,
                "Absolute value; `abs` of the smallest int is an overflow row error.",
                "abs(-3) == 3",
            ),
            Builtin::Round => s(
                &[Is(Float)],
                Ret::Is(Float),
                "Nearest integer value, halves away from zero.",
                "round(2.5) == 3.0",
            ),
            Builtin::Floor => s(
                &[Is(Float)],
                Ret::Is(Float),
                "Largest integer value not above the argument.",
                "floor(-1.5) == -2.0",
            ),
            Builtin::Ceil => s(
                &[Is(Float)],
                Ret::Is(Float),
                "Smallest integer value not below the argument.",
                "ceil(1.2) == 2.0",
            ),
            Builtin::Sqrt => s(
                &[Is(Float)],
                Ret::Is(Float),
                "Square root (NaN for a negative argument).",
                "sqrt(9.0) == 3.0",
            ),
            Builtin::Min => s(
                &[Numeric, Numeric],
                Ret::SameNumeric,
                "The smaller of two numbers (NaN if either is NaN).",
                "min(2, 7) == 2",
            ),
            Builtin::Max => s(
                &[Numeric, Numeric],
                Ret::SameNumeric,
                "The larger of two numbers (NaN if either is NaN).",
                "max(2, 7) == 7",
            ),
            Builtin::ToInt => s(
                &[Numeric],
                Ret::Is(Int),
                "A number as int, truncated toward zero; NaN, infinite or out-of-range values are a conversion row error.",
                "to_int(3.9) == 3",
            ),
            Builtin::ToFloat => s(
                &[Numeric],
                Ret::Is(Float),
                "A number as float.",
                "to_float(2) == 2.0",
            ),
            Builtin::ToStr => s(
                &[Any],
                Ret::Is(Str),
                "Any value as text (floats in shortest round-trip form, timestamps in RFC 3339).",
                "to_str(1.5) == \"1.5\"",
            ),
            Builtin::ParseInt => s(
                &[Is(Str)],
                Ret::Nullable(Int),
                "The string as int, or null if it is not one (surrounding white space allowed).",
                "parse_int(\" 42 \") ?? 0 == 42",
            ),
            Builtin::ParseFloat => s(
                &[Is(Str)],
                Ret::Nullable(Float),
                "The string as float, or null if it is not one (surrounding white space allowed).",
                "parse_float(\"2.5\") ?? 0.0 == 2.5",
            ),
            Builtin::ParseTimestamp => s(
                &[Is(Str)],
                Ret::Nullable(Timestamp),
                "An RFC 3339 / ISO 8601 date-time (`2024-05-01T12:00:00Z`, or a date `2024-05-01`) as timestamp, or null.",
                "unix(parse_timestamp(\"1970-01-02\") ?? from_unix(0)) == 86400",
            ),
            Builtin::FromUnix => s(
                &[Is(Int)],
                Ret::Is(Timestamp),
                "A timestamp from seconds since the Unix epoch.",
                "unix(from_unix(60)) == 60",
            ),
            Builtin::Unix => s(
                &[Is(Timestamp)],
                Ret::Is(Int),
                "Seconds since the Unix epoch (rounded down).",
                "unix(from_unix(-1)) == -1",
            ),
            Builtin::IsNull => s(
                &[AnyNullable],
                Ret::Is(Bool),
                "Whether the value is null.",
                "is_null(parse_int(\"x\"))",
            ),
        }
    }
}

/// Kinds of per-row evaluation errors. Their numbers are part of the kernel ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u32)]
pub enum RowErrorCode {
    DivisionByZero = 1,
    Overflow = 2,
    /// A value that cannot be converted (to_int of NaN, out of range…).
    Conversion = 3,
    /// An argument outside a function's domain (negative substr start…).
    InvalidArgument = 4,
}

impl RowErrorCode {
    pub fn from_u32(code: u32) -> Option<RowErrorCode> {
        Some(match code {
            1 => RowErrorCode::DivisionByZero,
            2 => RowErrorCode::Overflow,
            3 => RowErrorCode::Conversion,
            4 => RowErrorCode::InvalidArgument,
            _ => return None,
        })
    }
    pub fn message(self) -> &'static str {
        match self {
            RowErrorCode::DivisionByZero => "division by zero",
            RowErrorCode::Overflow => "integer overflow",
            RowErrorCode::Conversion => "value cannot be converted",
            RowErrorCode::InvalidArgument => "invalid function argument",
        }
    }
}
