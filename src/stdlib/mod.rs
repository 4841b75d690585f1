//! The standard library: builtin functions implemented in Rust, and the flow-language modules in
//! `stdlib/*.flow` built on top of them.
//!
//! Each builtin has one signature (used by the checker) and one semantics, written here in Rust and
//! shared by the reference interpreter and the JIT's runtime helpers, so they cannot disagree.

pub mod literal;
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
    // regular expressions
    Matches,
    Extract,
    ReplaceAll,
    // dates and times
    FormatTimestamp,
    DateTrunc,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    DayOfWeek,
    AddSeconds,
    AddDays,
    DiffSeconds,
    UtcToLocal,
    LocalToUtc,
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
    /// How many trailing parameters may be left out (`parse_timestamp(s)` or `(s, format)`).
    pub optional: usize,
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
    Builtin::Matches,
    Builtin::Extract,
    Builtin::ReplaceAll,
    Builtin::FormatTimestamp,
    Builtin::DateTrunc,
    Builtin::Year,
    Builtin::Month,
    Builtin::Day,
    Builtin::Hour,
    Builtin::Minute,
    Builtin::Second,
    Builtin::DayOfWeek,
    Builtin::AddSeconds,
    Builtin::AddDays,
    Builtin::DiffSeconds,
    Builtin::UtcToLocal,
    Builtin::LocalToUtc,
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
            Builtin::Matches => "matches",
            Builtin::Extract => "extract",
            Builtin::ReplaceAll => "replace_all",
            Builtin::FormatTimestamp => "format_timestamp",
            Builtin::DateTrunc => "date_trunc",
            Builtin::Year => "year",
            Builtin::Month => "month",
            Builtin::Day => "day",
            Builtin::Hour => "hour",
            Builtin::Minute => "minute",
            Builtin::Second => "second",
            Builtin::DayOfWeek => "day_of_week",
            Builtin::AddSeconds => "add_seconds",
            Builtin::AddDays => "add_days",
            Builtin::DiffSeconds => "diff_seconds",
            Builtin::UtcToLocal => "utc_to_local",
            Builtin::LocalToUtc => "local_to_utc",
        }
    }

    pub fn signature(self) -> Signature {
        let s = |params, ret, doc, example| Signature {
            params,
            variadic: false,
            optional: 0,
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
                optional: 0,
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
            Builtin::ParseTimestamp => Signature {
                optional: 1,
                ..s(
                    &[Is(Str), Is(Str)],
                    Ret::Nullable(Timestamp),
                    "`parse_timestamp(s)`: an RFC 3339 / ISO 8601 date-time (`2024-05-01T12:00:00Z`, or a date `2024-05-01`) as timestamp, or null. `parse_timestamp(s, format)`: text in a strftime `format` literal (`%Y-%m-%d %H:%M:%S`; without an offset `%z` the time is UTC), or null.",
                    "parse_timestamp(\"01/05/2024 13:30\", \"%d/%m/%Y %H:%M\") ?? from_unix(0) == parse_timestamp(\"2024-05-01T13:30:00Z\") ?? from_unix(1)",
                )
            },
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
            Builtin::Matches => s(
                &[Is(Str), Is(Str)],
                Ret::Is(Bool),
                "`matches(s, pattern)`: whether the regular expression `pattern` (a literal, compiled when the script is checked; Rust `regex` syntax) matches somewhere in `s`. Anchor it with `^…$` to match the whole string.",
                "matches(\"order-1234\", \"^order-[0-9]+$\")",
            ),
            Builtin::Extract => s(
                &[Is(Str), Is(Str), Is(Int)],
                Ret::Nullable(Str),
                "`extract(s, pattern, group)`: the text of capture group `group` (0 = the whole match) of the first match of the regular expression literal `pattern`, or null when it does not match or the group took no part. A group the pattern does not have is a check error for a literal, a row error otherwise.",
                "extract(\"id=42;\", \"id=([0-9]+)\", 1) ?? \"\" == \"42\"",
            ),
            Builtin::ReplaceAll => s(
                &[Is(Str), Is(Str), Is(Str)],
                Ret::Is(Str),
                "`replace_all(s, pattern, with)`: every match of the regular expression literal `pattern` replaced by `with`, in which `$1` or `${name}` stand for a capture group (`$$` for a dollar sign).",
                "replace_all(\"a1b22c\", \"[0-9]+\", \"#\") == \"a#b#c\"",
            ),
            Builtin::FormatTimestamp => Signature {
                optional: 1,
                ..s(
                    &[Is(Timestamp), Is(Str)],
                    Ret::Is(Str),
                    "`format_timestamp(t)`: RFC 3339 text in UTC (as `to_str`). `format_timestamp(t, format)`: text in a strftime `format` literal (`%Y-%m-%d`, `%H:%M:%S`, `%A`, `%j`…), in UTC (see `utc_to_local`). A timestamp outside years -9999–9999 is a conversion row error with a format.",
                    "format_timestamp(from_unix(86400), \"%Y/%m/%d\") == \"1970/01/02\"",
                )
            },
            Builtin::DateTrunc => s(
                &[Is(Str), Is(Timestamp)],
                Ret::Is(Timestamp),
                "`date_trunc(unit, t)`: `t` rounded down to the start of its `unit` (a literal: `second`, `minute`, `hour`, `day`, `week` — weeks start on Monday —, `month`, `quarter` or `year`), in UTC.",
                "date_trunc(\"hour\", from_unix(5000)) == from_unix(3600)",
            ),
            Builtin::Year => s(
                &[Is(Timestamp)],
                Ret::Is(Int),
                "The year of a timestamp, in UTC.",
                "year(from_unix(0)) == 1970",
            ),
            Builtin::Month => s(
                &[Is(Timestamp)],
                Ret::Is(Int),
                "The month (1–12) of a timestamp, in UTC.",
                "month(from_unix(0)) == 1",
            ),
            Builtin::Day => s(
                &[Is(Timestamp)],
                Ret::Is(Int),
                "The day of the month (1–31) of a timestamp, in UTC.",
                "day(from_unix(86400)) == 2",
            ),
            Builtin::Hour => s(
                &[Is(Timestamp)],
                Ret::Is(Int),
                "The hour (0–23) of a timestamp, in UTC.",
                "hour(from_unix(7200)) == 2",
            ),
            Builtin::Minute => s(
                &[Is(Timestamp)],
                Ret::Is(Int),
                "The minute (0–59) of a timestamp.",
                "minute(from_unix(150)) == 2",
            ),
            Builtin::Second => s(
                &[Is(Timestamp)],
                Ret::Is(Int),
                "The second (0–59) of a timestamp (the fraction dropped).",
                "second(from_unix(150)) == 30",
            ),
            Builtin::DayOfWeek => s(
                &[Is(Timestamp)],
                Ret::Is(Int),
                "The ISO day of the week of a timestamp, in UTC: 1 = Monday … 7 = Sunday.",
                "day_of_week(from_unix(0)) == 4",
            ),
            Builtin::AddSeconds => s(
                &[Is(Timestamp), Is(Int)],
                Ret::Is(Timestamp),
                "`add_seconds(t, n)`: `n` seconds later (earlier for a negative `n`); out of range is an overflow row error.",
                "add_seconds(from_unix(10), -4) == from_unix(6)",
            ),
            Builtin::AddDays => s(
                &[Is(Timestamp), Is(Int)],
                Ret::Is(Timestamp),
                "`add_days(t, n)`: `n` days of 86,400 seconds later; out of range is an overflow row error.",
                "add_days(from_unix(0), 2) == from_unix(172800)",
            ),
            Builtin::DiffSeconds => s(
                &[Is(Timestamp), Is(Timestamp)],
                Ret::Is(Int),
                "`diff_seconds(a, b)`: the seconds from `b` to `a` (`a - b`), truncated toward zero, so `diff_seconds(b, a) == -diff_seconds(a, b)`.",
                "diff_seconds(from_unix(100), from_unix(40)) == 60",
            ),
            Builtin::UtcToLocal => s(
                &[Is(Timestamp), Is(Str)],
                Ret::Is(Timestamp),
                "`utc_to_local(t, zone)`: the wall-clock time of the instant `t` in the time zone `zone` (an IANA name literal such as `Europe/Oslo`, from the tz database built into flow), as a timestamp whose UTC fields read as that local time: `hour(utc_to_local(t, \"Asia/Tokyo\"))` is the hour in Tokyo. Outside years -9999–9999 a conversion row error.",
                "hour(utc_to_local(from_unix(0), \"Asia/Tokyo\")) == 9",
            ),
            Builtin::LocalToUtc => s(
                &[Is(Timestamp), Is(Str)],
                Ret::Is(Timestamp),
                "`local_to_utc(t, zone)`: the inverse of `utc_to_local`: reads `t`'s UTC fields as a wall-clock time in `zone` and gives that instant. A wall-clock time that occurs twice (clocks turned back) is the earlier; one skipped (clocks turned forward) is read with the offset before the change.",
                "local_to_utc(from_unix(32400), \"Asia/Tokyo\") == from_unix(0)",
            ),
        }
    }
}

/// A parameter that must be a literal, validated when the script is checked (see `literal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Literal {
    Regex,
    TimeFormat,
    TruncUnit,
    TimeZone,
}

impl Builtin {
    /// The parameters (by index) that must be string literals, and what they hold.
    pub fn literals(self) -> &'static [(usize, Literal)] {
        match self {
            Builtin::Matches | Builtin::Extract | Builtin::ReplaceAll => &[(1, Literal::Regex)],
            Builtin::ParseTimestamp | Builtin::FormatTimestamp => &[(1, Literal::TimeFormat)],
            Builtin::DateTrunc => &[(0, Literal::TruncUnit)],
            Builtin::UtcToLocal | Builtin::LocalToUtc => &[(1, Literal::TimeZone)],
            _ => &[],
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
