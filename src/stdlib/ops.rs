//! The semantics of builtins and operators, in Rust. The reference interpreter calls these
//! directly; the JIT calls them through `extern "C"` helpers (or emits the same operation inline).
//! Any change here changes both, which the differential tests then check.

use super::RowErrorCode;

pub type RowResult<T> = Result<T, RowErrorCode>;

pub fn int_add(a: i64, b: i64) -> RowResult<i64> {
    a.checked_add(b).ok_or(RowErrorCode::Overflow)
}
pub fn int_sub(a: i64, b: i64) -> RowResult<i64> {
    a.checked_sub(b).ok_or(RowErrorCode::Overflow)
}
pub fn int_mul(a: i64, b: i64) -> RowResult<i64> {
    a.checked_mul(b).ok_or(RowErrorCode::Overflow)
}
pub fn int_div(a: i64, b: i64) -> RowResult<i64> {
    if b == 0 {
        return Err(RowErrorCode::DivisionByZero);
    }
    a.checked_div(b).ok_or(RowErrorCode::Overflow)
}
pub fn int_rem(a: i64, b: i64) -> RowResult<i64> {
    if b == 0 {
        return Err(RowErrorCode::DivisionByZero);
    }
    // `x % -1` is 0 for every x, i64::MIN included (only the quotient overflows there).
    Ok(a.wrapping_rem(b))
}
pub fn int_neg(a: i64) -> RowResult<i64> {
    a.checked_neg().ok_or(RowErrorCode::Overflow)
}
pub fn int_abs(a: i64) -> RowResult<i64> {
    a.checked_abs().ok_or(RowErrorCode::Overflow)
}
pub fn float_div(a: f64, b: f64) -> RowResult<f64> {
    if b == 0.0 {
        Err(RowErrorCode::DivisionByZero)
    } else {
        Ok(a / b)
    }
}
pub fn float_rem(a: f64, b: f64) -> RowResult<f64> {
    if b == 0.0 {
        Err(RowErrorCode::DivisionByZero)
    } else {
        Ok(a % b)
    }
}
/// NaN if either argument is NaN (the IEEE 754-2019 `minimum`), else the smaller; -0.0 < +0.0.
pub fn float_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}
/// NaN if either argument is NaN, else the larger; +0.0 > -0.0.
pub fn float_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_positive() { a } else { b }
    } else if a > b {
        a
    } else {
        b
    }
}
/// Truncation toward zero; NaN, infinities and values outside i64 are conversion errors.
pub fn float_to_int(x: f64) -> RowResult<i64> {
    // 2^63 is exactly representable; every float in [-2^63, 2^63) truncates into i64.
    // NaN is in no range, so it is an error too.
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&x) {
        Err(RowErrorCode::Conversion)
    } else {
        Ok(x.trunc() as i64)
    }
}

pub fn len(s: &str) -> i64 {
    s.chars().count() as i64
}
pub fn upper(s: &str) -> String {
    s.to_uppercase()
}
pub fn lower(s: &str) -> String {
    s.to_lowercase()
}
pub fn trim(s: &str) -> &str {
    s.trim()
}
pub fn substr(s: &str, start: i64, count: i64) -> RowResult<&str> {
    if start < 0 || count < 0 {
        return Err(RowErrorCode::InvalidArgument);
    }
    let mut indices = s
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()));
    let begin = indices.nth(start as usize).unwrap_or(s.len());
    let end = if count == 0 {
        begin
    } else {
        indices.nth(count as usize - 1).unwrap_or(s.len())
    };
    Ok(&s[begin..end.max(begin)])
}
pub fn replace(s: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        s.to_string()
    } else {
        s.replace(from, to)
    }
}

pub fn float_to_str(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        let mut b = ryu::Buffer::new();
        b.format_finite(x).to_string()
    }
}

pub fn parse_int(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}
pub fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    // Rust also accepts "inf"/"nan"/"infinity"; data files rarely mean those, but we accept them
    // as the float formatter writes them back. A number too large for a float (`1e400`) does
    // not parse: it is not infinity.
    let v: f64 = t.parse().ok()?;
    if v.is_infinite() && !t.bytes().any(|b| b.eq_ignore_ascii_case(&b'i')) {
        return None;
    }
    Some(v)
}

/// Whether `s` is a number too large for a float (`1e400`), for error messages.
pub fn float_out_of_range(s: &str) -> bool {
    s.trim().parse::<f64>().is_ok_and(f64::is_infinite) && parse_float(s).is_none()
}

pub const MICROS_PER_SEC: i64 = 1_000_000;

pub fn from_unix(secs: i64) -> RowResult<i64> {
    secs.checked_mul(MICROS_PER_SEC)
        .ok_or(RowErrorCode::Overflow)
}
pub fn unix(micros: i64) -> i64 {
    micros.div_euclid(MICROS_PER_SEC)
}

/// The number of days of month `m` (1–12) of year `y` (proleptic Gregorian).
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses `YYYY-MM-DD`, optionally followed by `T` or a space, `HH:MM[:SS[.ffffff]]`, and `Z` or
/// `±HH:MM`. Returns microseconds since the epoch, UTC.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None; // an impossible date (2023-02-30) is not rolled over into the next month
    }
    let mut micros = days_from_civil(y, mo, d) * 86_400 * MICROS_PER_SEC;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(micros);
    }
    let rb = rest.as_bytes();
    if rb[0] != b'T' && rb[0] != b' ' || rb.len() < 6 || rb[3] != b':' {
        return None;
    }
    let off = 10;
    let (h, mi) = (num(off + 1..off + 3)?, num(off + 4..off + 6)?);
    if h > 23 || mi > 59 {
        return None;
    }
    let mut pos = off + 6;
    let mut sec = 0;
    let mut frac = 0;
    if b.get(pos) == Some(&b':') {
        sec = num(pos + 1..pos + 3)?;
        // `:60` only as a leap second (23:59:60, read as the next day's 00:00:00).
        if sec > 60 || sec == 60 && (h, mi) != (23, 59) {
            return None;
        }
        pos += 3;
        if b.get(pos) == Some(&b'.') {
            let start = pos + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            if end == start {
                return None;
            }
            let digits = &s[start..end.min(start + 6)];
            frac = digits.parse::<i64>().ok()? * 10i64.pow(6 - digits.len() as u32);
            pos = end;
        }
    }
    micros += ((h * 60 + mi) * 60 + sec) * MICROS_PER_SEC + frac;
    match &s[pos..] {
        "" | "Z" | "z" => Some(micros),
        tz if tz.len() == 6
            && (tz.starts_with('+') || tz.starts_with('-'))
            && tz.as_bytes()[3] == b':' =>
        {
            let th = num(pos + 1..pos + 3)?;
            let tm = num(pos + 4..pos + 6)?;
            if th > 23 || tm > 59 {
                return None;
            }
            let offset = (th * 60 + tm) * 60 * MICROS_PER_SEC;
            Some(if tz.starts_with('+') {
                micros - offset
            } else {
                micros + offset
            })
        }
        _ => None,
    }
}

/// RFC 3339 in UTC: `2024-05-01T12:00:00Z`, with `.ffffff` only when there are microseconds.
pub fn timestamp_to_str(micros: i64) -> String {
    let secs = micros.div_euclid(MICROS_PER_SEC);
    let frac = micros.rem_euclid(MICROS_PER_SEC);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s) = (tod / 3600, tod / 60 % 60, tod % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
            "1969-12-31T23:59:59.500000Z",
        ] {
            let t = parse_timestamp(s).unwrap();
            assert_eq!(timestamp_to_str(t), s);
        }
        assert_eq!(parse_timestamp("1970-01-02"), Some(86_400 * MICROS_PER_SEC));
        assert_eq!(
            parse_timestamp("2024-01-01T01:00:00+01:00"),
            parse_timestamp("2024-01-01T00:00:00Z")
        );
        assert_eq!(parse_timestamp("2024-13-01"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    /// Issue 16 item 6: a date parses exactly when it exists (no rolling 2023-02-30 over into
    /// March): checked against the calendar round trip for every day number 1–31 of every
    /// month of 1896–2104 (leap years, century rules).
    #[test]
    fn impossible_dates_are_null() {
        for y in 1896..=2104 {
            for m in 1..=12 {
                for d in 1..=31 {
                    let exists = civil_from_days(days_from_civil(y, m, d)) == (y, m, d);
                    let s = format!("{y:04}-{m:02}-{d:02}");
                    assert_eq!(parse_timestamp(&s).is_some(), exists, "{s}");
                    let t = format!("{s}T12:30:00Z");
                    assert_eq!(parse_timestamp(&t).is_some(), exists, "{t}");
                }
            }
        }
        for s in [
            "2023-02-30",
            "2024-04-31",
            "2024-06-31",
            "2023-02-29",
            "1900-02-29",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
        assert!(parse_timestamp("2024-02-29").is_some());
        assert!(parse_timestamp("2000-02-29").is_some());
        // Impossible times and offsets are null too; 23:59:60 is a leap second.
        for s in [
            "2024-01-01T24:00:00Z",
            "2024-01-01T10:60:00Z",
            "2024-01-01T10:00:60Z",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
        assert_eq!(parse_timestamp("2024-01-01T10:00:00+24:00"), None);
        assert_eq!(parse_timestamp("2024-01-01T10:00:00+01:60"), None);
        assert_eq!(
            parse_timestamp("2016-12-31T23:59:60Z"),
            parse_timestamp("2017-01-01T00:00:00Z")
        );
    }

    /// Issue 16 item 10: `x % -1` is 0 for every x, `i64::MIN` included; only `/` overflows.
    #[test]
    fn remainder_by_minus_one_is_zero() {
        for a in [i64::MIN, i64::MIN + 1, -7, 0, 7, i64::MAX] {
            assert_eq!(int_rem(a, -1), Ok(0), "{a}");
        }
        assert_eq!(int_rem(i64::MIN, 3), Ok(i64::MIN % 3));
        assert_eq!(int_rem(-7, 3), Ok(-1));
        assert_eq!(int_rem(1, 0), Err(RowErrorCode::DivisionByZero));
        assert_eq!(int_div(i64::MIN, -1), Err(RowErrorCode::Overflow));
    }

    #[test]
    fn substr_counts_characters() {
        assert_eq!(substr("héllo", 1, 3), Ok("éll"));
        assert_eq!(substr("abc", 5, 2), Ok(""));
        assert_eq!(substr("abc", 1, 10), Ok("bc"));
        assert_eq!(substr("abc", -1, 1), Err(RowErrorCode::InvalidArgument));
    }

    #[test]
    fn float_text() {
        assert_eq!(float_to_str(2.0), "2.0");
        assert_eq!(float_to_str(0.1), "0.1");
        assert_eq!(float_to_str(-1.5e300), "-1.5e300");
    }
}
