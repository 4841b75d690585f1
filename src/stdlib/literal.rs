//! Literal arguments of builtins: regular expressions, time formats, `date_trunc` units and time
//! zone names. The checker validates each one (an error names the offending part of the string);
//! each engine compiles them once per kernel into a [`Compiled`] table, never per row.

use super::Literal;
use super::ops::{self, TruncUnit};
use jiff::tz::TimeZone;
use regex::Regex;
use std::ops::Range;

/// Why a literal is rejected: the offending byte range of the (unescaped) string and a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid {
    pub range: Range<usize>,
    pub message: String,
    pub help: Option<String>,
}

impl Invalid {
    fn whole(text: &str, message: String) -> Invalid {
        Invalid {
            range: 0..text.len(),
            message,
            help: None,
        }
    }
}

/// Checks a literal of kind `kind` as the checker does.
pub fn validate(kind: Literal, text: &str) -> Result<(), Invalid> {
    match kind {
        Literal::Regex => regex(text).map(|_| ()),
        Literal::TimeFormat => time_format(text),
        Literal::TruncUnit => trunc_unit(text).map(|_| ()),
        Literal::TimeZone => zone(text).map(|_| ()),
    }
}

/// Compiles a regular expression; a syntax error names its span within the pattern.
pub fn regex(pattern: &str) -> Result<Regex, Invalid> {
    if let Err(e) = regex_syntax::Parser::new().parse(pattern) {
        let (span, message) = match &e {
            regex_syntax::Error::Parse(e) => (*e.span(), e.kind().to_string()),
            regex_syntax::Error::Translate(e) => (*e.span(), e.kind().to_string()),
            _ => return Err(Invalid::whole(pattern, e.to_string())),
        };
        let (start, end) = (span.start.offset, span.end.offset.max(span.start.offset));
        return Err(Invalid {
            range: start.min(pattern.len())..end.min(pattern.len()),
            message,
            help: Some(
                "the syntax is that of the Rust `regex` crate (no look-around, no back-references)"
                    .into(),
            ),
        });
    }
    // Past the syntax, only the compiled size can fail.
    Regex::new(pattern).map_err(|e| Invalid::whole(pattern, e.to_string()))
}

/// The number of groups of a compiled pattern, group 0 (the whole match) included.
pub fn group_count(re: &Regex) -> usize {
    re.captures_len()
}

/// A sample instant (2024-05-17T13:45:30.123456Z) a time format is tried on.
const SAMPLE_MICROS: i64 = 1_715_953_530_123_456;

/// Checks a strftime format: each `%` directive is tried on its own, so an unknown one is named;
/// a format whose output cannot be read back as a date (no year, month and day) is refused too,
/// as `parse_timestamp` could never succeed with it.
pub fn time_format(fmt: &str) -> Result<(), Invalid> {
    let sample = jiff::Timestamp::from_microsecond(SAMPLE_MICROS)
        .map_err(|e| Invalid::whole(fmt, e.to_string()))?;
    let b = fmt.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            i += 1;
            continue;
        }
        let mut k = i + 1;
        while k < b.len() && b"-_0^#".contains(&b[k]) {
            k += 1;
        }
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        while k < b.len() && (b[k] == b':' || b[k] == b'.') {
            k += 1;
            while k < b.len() && b[k].is_ascii_digit() {
                k += 1;
            }
        }
        // The conversion character (a whole UTF-8 character).
        let end = fmt[k.min(fmt.len())..]
            .chars()
            .next()
            .map_or(fmt.len(), |c| k + c.len_utf8());
        let directive = &fmt[i..end];
        if let Err(e) = jiff::fmt::strtime::format(directive, sample) {
            return Err(Invalid {
                range: i..end,
                message: format!("`{directive}`: {e}"),
                help: Some(
                    "directives: %Y %m %d %H %M %S %f %z %A %a %B %b %j %e %p %s %% (strftime)"
                        .into(),
                ),
            });
        }
        i = end;
    }
    let text =
        jiff::fmt::strtime::format(fmt, sample).map_err(|e| Invalid::whole(fmt, e.to_string()))?;
    if ops::parse_timestamp_format(&text, fmt).is_none() {
        return Err(Invalid {
            range: 0..fmt.len(),
            message: "this format does not give a date to read (it needs a year, a month and a day, e.g. `%Y-%m-%d`)".into(),
            help: None,
        });
    }
    Ok(())
}

/// A `date_trunc` unit by name.
pub fn trunc_unit(name: &str) -> Result<TruncUnit, Invalid> {
    TruncUnit::ALL
        .iter()
        .copied()
        .find(|u| u.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = TruncUnit::ALL.iter().map(|u| u.name()).collect();
            Invalid {
                range: 0..name.len(),
                message: format!("`{name}` is not a unit of `date_trunc`"),
                help: Some(format!("the units are {}", names.join(", "))),
            }
        })
}

/// A time zone of the tz database built into flow, by IANA name.
pub fn zone(name: &str) -> Result<TimeZone, Invalid> {
    // "UTC" and fixed zones are in the database too; the host's files are never read.
    TimeZone::get(name).map_err(|_| {
        let best = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_string())
            .map(|n| {
                (
                    strsim::jaro_winkler(&n.to_lowercase(), &name.to_lowercase()),
                    n,
                )
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        Invalid {
            range: 0..name.len(),
            message: format!("`{name}` is not a time zone of the tz database"),
            help: Some(match best {
                Some((score, n)) if score > 0.8 => format!("did you mean `{n}`?"),
                _ => "time zones are IANA names such as `Europe/Oslo`, `America/New_York` or `UTC`"
                    .into(),
            }),
        }
    })
}

/// The literals of one kernel, compiled once. Engines look them up by their text; a literal not
/// in the table (constant folding, which runs once) is compiled on the spot.
#[derive(Default)]
pub struct Compiled {
    regexes: Vec<(String, Regex)>,
    zones: Vec<(String, TimeZone)>,
}

impl Compiled {
    /// Adds literal `text` of kind `kind` (invalid ones are skipped: the checker rejected them,
    /// and a lookup then fails as a row error).
    pub fn add(&mut self, kind: Literal, text: &str) {
        match kind {
            Literal::Regex if !self.regexes.iter().any(|(t, _)| t == text) => {
                if let Ok(re) = regex(text) {
                    self.regexes.push((text.to_string(), re));
                }
            }
            Literal::TimeZone if !self.zones.iter().any(|(t, _)| t == text) => {
                if let Ok(z) = zone(text) {
                    self.zones.push((text.to_string(), z));
                }
            }
            _ => {}
        }
    }

    pub fn regex(&self, text: &str) -> Option<&Regex> {
        self.regexes.iter().find(|(t, _)| t == text).map(|(_, r)| r)
    }

    pub fn zone(&self, text: &str) -> Option<&TimeZone> {
        self.zones.iter().find(|(t, _)| t == text).map(|(_, z)| z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_errors_point_into_the_pattern() {
        let e = regex("ab(c").unwrap_err();
        assert_eq!(e.range, 2..3, "{e:?}");
        let e = regex("a{2,1}").unwrap_err();
        assert!(e.range.start >= 1, "{e:?}");
        assert!(regex("^[a-z]+\\d*$").is_ok());
    }

    #[test]
    fn formats_units_and_zones() {
        assert!(time_format("%Y-%m-%d %H:%M:%S").is_ok());
        let e = time_format("%Y-%m-%d %K").unwrap_err();
        assert_eq!(e.range, 9..11, "{e:?}");
        assert!(time_format("%H:%M").is_err());
        assert_eq!(trunc_unit("day").map(|u| u.name()), Ok("day"));
        assert!(trunc_unit("fortnight").is_err());
        assert!(zone("Europe/Oslo").is_ok());
        let e = zone("Europe/Olso").unwrap_err();
        assert_eq!(e.help.as_deref(), Some("did you mean `Europe/Oslo`?"));
    }
}
