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

/// `parse_timestamp(s, format)`: `s` (surrounding white space allowed) read with a strftime
/// format. With an offset (`%z`), a zone name (`%Q`) or Unix seconds (`%s`) the instant is exact;
/// otherwise the civil time is read as UTC (midnight when the format has no time).
/// Sub-microsecond digits are dropped.
pub fn parse_timestamp_format(s: &str, format: &str) -> Option<i64> {
    let tm = jiff::fmt::strtime::parse(format, s.trim()).ok()?;
    let ts = if tm.offset().is_some() || tm.timestamp().is_some() {
        tm.to_timestamp().ok()?
    } else if tm.iana_time_zone().is_some() {
        // `%Q`: a zone name in the text (looked up in the bundled database).
        tm.to_zoned_datetime().ok()?.timestamp()
    } else {
        jiff::tz::Offset::UTC
            .to_timestamp(tm.to_datetime().ok()?)
            .ok()?
    };
    Some(ts.as_microsecond())
}

/// A timestamp as a jiff instant: only years -9999–9999 exist there (conversion row error).
fn instant(micros: i64) -> RowResult<jiff::Timestamp> {
    jiff::Timestamp::from_microsecond(micros).map_err(|_| RowErrorCode::Conversion)
}

/// `format_timestamp(t, format)`: strftime text in UTC.
pub fn format_timestamp(micros: i64, format: &str) -> RowResult<String> {
    jiff::fmt::strtime::format(format, instant(micros)?).map_err(|_| RowErrorCode::InvalidArgument)
}

/// The wall-clock time of instant `micros` in `zone`, as a timestamp whose UTC fields read as it.
pub fn utc_to_local(micros: i64, zone: &jiff::tz::TimeZone) -> RowResult<i64> {
    let offset = zone.to_offset(instant(micros)?).seconds() as i64;
    micros
        .checked_add(offset * MICROS_PER_SEC)
        .ok_or(RowErrorCode::Overflow)
}

/// The instant at which the wall clock of `zone` shows `micros`' UTC fields (folds: the earlier
/// instant; gaps: read with the offset before the gap — jiff's "compatible" choice).
pub fn local_to_utc(micros: i64, zone: &jiff::tz::TimeZone) -> RowResult<i64> {
    let civil = jiff::tz::Offset::UTC.to_datetime(instant(micros)?);
    let ts = zone
        .to_ambiguous_timestamp(civil)
        .compatible()
        .map_err(|_| RowErrorCode::Conversion)?;
    Ok(ts.as_microsecond())
}

/// A calendar field of a timestamp (in UTC); the discriminant is part of the kernel ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TsPart {
    Year = 0,
    Month = 1,
    Day = 2,
    Hour = 3,
    Minute = 4,
    Second = 5,
    /// ISO: 1 = Monday … 7 = Sunday.
    DayOfWeek = 6,
}

impl TsPart {
    pub const ALL: [TsPart; 7] = [
        TsPart::Year,
        TsPart::Month,
        TsPart::Day,
        TsPart::Hour,
        TsPart::Minute,
        TsPart::Second,
        TsPart::DayOfWeek,
    ];
    pub fn from_code(c: u64) -> TsPart {
        TsPart::ALL.get(c as usize).copied().unwrap_or(TsPart::Year)
    }
}

pub fn ts_part(micros: i64, part: TsPart) -> i64 {
    let secs = micros.div_euclid(MICROS_PER_SEC);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    match part {
        TsPart::Year | TsPart::Month | TsPart::Day => {
            let (y, m, d) = civil_from_days(days);
            match part {
                TsPart::Year => y,
                TsPart::Month => m,
                _ => d,
            }
        }
        TsPart::Hour => tod / 3600,
        TsPart::Minute => tod / 60 % 60,
        TsPart::Second => tod % 60,
        // 1970-01-01 was a Thursday (4).
        TsPart::DayOfWeek => (days + 3).rem_euclid(7) + 1,
    }
}

/// A `date_trunc` unit; the discriminant is part of the kernel ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TruncUnit {
    Second = 0,
    Minute = 1,
    Hour = 2,
    Day = 3,
    Week = 4,
    Month = 5,
    Quarter = 6,
    Year = 7,
}

impl TruncUnit {
    pub const ALL: [TruncUnit; 8] = [
        TruncUnit::Second,
        TruncUnit::Minute,
        TruncUnit::Hour,
        TruncUnit::Day,
        TruncUnit::Week,
        TruncUnit::Month,
        TruncUnit::Quarter,
        TruncUnit::Year,
    ];
    pub fn name(self) -> &'static str {
        match self {
            TruncUnit::Second => "second",
            TruncUnit::Minute => "minute",
            TruncUnit::Hour => "hour",
            TruncUnit::Day => "day",
            TruncUnit::Week => "week",
            TruncUnit::Month => "month",
            TruncUnit::Quarter => "quarter",
            TruncUnit::Year => "year",
        }
    }
    pub fn from_code(c: u64) -> TruncUnit {
        TruncUnit::ALL
            .get(c as usize)
            .copied()
            .unwrap_or(TruncUnit::Second)
    }
}

/// `t` rounded down to the start of its `unit` (weeks start on Monday), in UTC. Never overflows:
/// the result is not after `t` and not before the start of `t`'s year.
pub fn date_trunc(unit: TruncUnit, micros: i64) -> i64 {
    let step = |n: i64| micros.div_euclid(n) * n;
    const DAY: i64 = 86_400 * MICROS_PER_SEC;
    match unit {
        TruncUnit::Second => step(MICROS_PER_SEC),
        TruncUnit::Minute => step(60 * MICROS_PER_SEC),
        TruncUnit::Hour => step(3600 * MICROS_PER_SEC),
        TruncUnit::Day => step(DAY),
        TruncUnit::Week => {
            let days = micros.div_euclid(DAY);
            (days - (days + 3).rem_euclid(7)) * DAY
        }
        TruncUnit::Month | TruncUnit::Quarter | TruncUnit::Year => {
            let (y, m, _) = civil_from_days(micros.div_euclid(DAY));
            let m = match unit {
                TruncUnit::Month => m,
                TruncUnit::Quarter => (m - 1) / 3 * 3 + 1,
                _ => 1,
            };
            days_from_civil(y, m, 1) * DAY
        }
    }
}

pub fn add_seconds(micros: i64, n: i64) -> RowResult<i64> {
    n.checked_mul(MICROS_PER_SEC)
        .and_then(|d| micros.checked_add(d))
        .ok_or(RowErrorCode::Overflow)
}

pub fn add_days(micros: i64, n: i64) -> RowResult<i64> {
    n.checked_mul(86_400 * MICROS_PER_SEC)
        .and_then(|d| micros.checked_add(d))
        .ok_or(RowErrorCode::Overflow)
}

/// `a - b` in whole seconds, truncated toward zero (overflow when the span exceeds i64 µs).
pub fn diff_seconds(a: i64, b: i64) -> RowResult<i64> {
    a.checked_sub(b)
        .map(|d| d / MICROS_PER_SEC)
        .ok_or(RowErrorCode::Overflow)
}

/// `matches(s, re)`.
pub fn regex_matches(re: &regex::Regex, s: &str) -> bool {
    re.is_match(s)
}

/// `extract(s, re, group)`: the group's text in the first match; null when there is no match or
/// the group did not take part; a group the pattern does not have is an invalid argument.
pub fn regex_extract<'a>(re: &regex::Regex, s: &'a str, group: i64) -> RowResult<Option<&'a str>> {
    if group < 0 || group as u64 >= re.captures_len() as u64 {
        return Err(RowErrorCode::InvalidArgument);
    }
    Ok(re
        .captures(s)
        .and_then(|c| c.get(group as usize))
        .map(|m| m.as_str()))
}

/// `replace_all(s, re, with)`: `$1`/`${name}` in `with` expand to groups.
pub fn regex_replace_all<'a>(
    re: &regex::Regex,
    s: &'a str,
    with: &str,
) -> std::borrow::Cow<'a, str> {
    re.replace_all(s, with)
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
    fn calendar_fields_and_truncation() {
        let t = parse_timestamp("2024-05-17T13:45:30.250000Z").unwrap();
        let parts: Vec<i64> = TsPart::ALL.iter().map(|p| ts_part(t, *p)).collect();
        assert_eq!(parts, [2024, 5, 17, 13, 45, 30, 5]);
        let tr = |u| timestamp_to_str(date_trunc(u, t));
        assert_eq!(tr(TruncUnit::Second), "2024-05-17T13:45:30Z");
        assert_eq!(tr(TruncUnit::Week), "2024-05-13T00:00:00Z");
        assert_eq!(tr(TruncUnit::Quarter), "2024-04-01T00:00:00Z");
        assert_eq!(tr(TruncUnit::Year), "2024-01-01T00:00:00Z");
        let before = parse_timestamp("1969-12-31T23:59:59.5Z").unwrap();
        assert_eq!(
            timestamp_to_str(date_trunc(TruncUnit::Second, before)),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(ts_part(before, TsPart::DayOfWeek), 3);
        assert_eq!(diff_seconds(before, 0), Ok(0));
        assert_eq!(diff_seconds(0, i64::MIN), Err(RowErrorCode::Overflow));
        assert_eq!(add_days(i64::MAX, 1), Err(RowErrorCode::Overflow));
    }

    #[test]
    fn formats_and_zones() {
        let t = parse_timestamp_format("17/05/2024 13:45", "%d/%m/%Y %H:%M").unwrap();
        assert_eq!(timestamp_to_str(t), "2024-05-17T13:45:00Z");
        let z = parse_timestamp_format("2024-05-17 13:45 +02:00", "%Y-%m-%d %H:%M %:z").unwrap();
        assert_eq!(timestamp_to_str(z), "2024-05-17T11:45:00Z");
        assert_eq!(parse_timestamp_format("2024-02-30", "%Y-%m-%d"), None);
        let q =
            parse_timestamp_format("2024-05-17 13:45 Europe/Oslo", "%Y-%m-%d %H:%M %Q").unwrap();
        assert_eq!(timestamp_to_str(q), "2024-05-17T11:45:00Z");
        assert_eq!(
            format_timestamp(t, "%Y%m%d %A").as_deref(),
            Ok("20240517 Friday")
        );
        assert_eq!(
            format_timestamp(i64::MAX, "%Y"),
            Err(RowErrorCode::Conversion)
        );
        let oslo = jiff::tz::TimeZone::get("Europe/Oslo").unwrap();
        let local = utc_to_local(t, &oslo).unwrap();
        assert_eq!(timestamp_to_str(local), "2024-05-17T15:45:00Z");
        assert_eq!(local_to_utc(local, &oslo), Ok(t));
    }

    #[test]
    fn float_text() {
        assert_eq!(float_to_str(2.0), "2.0");
        assert_eq!(float_to_str(0.1), "0.1");
        assert_eq!(float_to_str(-1.5e300), "-1.5e300");
    }
}
