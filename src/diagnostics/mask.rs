//! Passwords are never printed: [`mask_secrets`] hides the password of every URL
//! (`scheme://user:PASSWORD@host…`) and every `password=VALUE` parameter in a text, keeping
//! its length in bytes *and* in characters, so that spans into the text (a diagnostic's
//! labels, an editor's ranges) still point at the same places. Used on the source lines
//! ariadne prints, on diagnostics' messages (text and JSON), and by the LSP and the REPL on
//! what they show of a script.

use std::borrow::Cow;

/// A masking character of the same UTF-8 length as `c` (one column wide).
fn mask_char(c: char) -> char {
    match c.len_utf8() {
        1 => '*',
        2 => '×',
        3 => '∗',
        _ => '𝟎',
    }
}

/// Where a URL's authority ends: at a path, a query, a fragment, white space or a quote (a `"`
/// after a backslash is an escape inside a string literal, not its end).
fn authority_end(b: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'/' | b'?' | b'#' | b'\'' | b'`' | b'<' | b'>' => break,
            b'"' if i == start || b[i - 1] != b'\\' => break,
            c if c.is_ascii_whitespace() => break,
            _ => {}
        }
        i += 1;
    }
    i
}

/// The byte ranges of the secrets in `text`.
fn secrets(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(k) = text[from..].find("://") {
        let start = from + k + 3;
        let end = authority_end(b, start);
        let auth = &text[start..end];
        if let Some(at) = auth.rfind('@')
            && let Some(colon) = auth[..at].find(':')
            && colon + 1 < at
        {
            out.push((start + colon + 1, start + at));
        }
        from = end.max(start);
    }
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(k) = lower[from..].find("password=") {
        let start = from + k + "password=".len();
        let mut end = start;
        while end < b.len() && !matches!(b[end], b'&' | b'#' | b'\'' | b'`' | b';') {
            if b[end].is_ascii_whitespace()
                || (b[end] == b'"' && (end == start || b[end - 1] != b'\\'))
            {
                break;
            }
            end += 1;
        }
        if end > start {
            out.push((start, end));
        }
        from = end.max(start);
    }
    out
}

/// Whether `text` holds a password that [`mask_secrets`] would hide.
pub fn has_secrets(text: &str) -> bool {
    !secrets(text).is_empty()
}

/// `text` with every password replaced by masking characters of the same byte and character
/// length (see the module doc); borrowed when there is none.
pub fn mask_secrets(text: &str) -> Cow<'_, str> {
    let mut ranges = secrets(text);
    if ranges.is_empty() {
        return Cow::Borrowed(text);
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e) in ranges {
        if s < at {
            continue; // inside a range already masked
        }
        out.push_str(&text[at..s]);
        out.extend(text[s..e].chars().map(mask_char));
        at = e;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::mask_secrets;

    fn same_shape(a: &str, b: &str) {
        assert_eq!(a.len(), b.len(), "{a} / {b}");
        assert_eq!(a.chars().count(), b.chars().count(), "{a} / {b}");
    }

    #[test]
    fn masks_url_passwords_keeping_lengths() {
        let line = r#"source t = postgres("postgres://u:s3cr%40t@h:5/db", table: "t")"#;
        let m = mask_secrets(line);
        assert_eq!(
            m,
            r#"source t = postgres("postgres://u:********@h:5/db", table: "t")"#
        );
        same_shape(line, &m);
        let wide = "x = \"postgresql://ü:pä€𝄞@h/db\" and postgres://a:b@c";
        let m = mask_secrets(wide);
        same_shape(wide, &m);
        assert!(!m.contains("pä€𝄞") && m.contains("ü:") && m.ends_with("a:*@c"));
    }

    #[test]
    fn masks_password_parameters_and_escaped_quotes() {
        assert_eq!(
            mask_secrets("postgres://h/db?user=u&Password=xy&sslmode=disable"),
            "postgres://h/db?user=u&Password=**&sslmode=disable"
        );
        assert_eq!(
            mask_secrets("host=h password=abc dbname=d"),
            "host=h password=*** dbname=d"
        );
        let lit = r#"postgres("postgres://u:a\"b@h/db")"#;
        assert_eq!(mask_secrets(lit), r#"postgres("postgres://u:****@h/db")"#);
    }

    #[test]
    fn leaves_other_text_alone() {
        for t in [
            "postgres://u@h/db",
            "postgres://h:5432/db",
            "https://example.com/a:b@c",
            "no url: here@there",
            "",
        ] {
            assert!(
                matches!(mask_secrets(t), std::borrow::Cow::Borrowed(_)),
                "{t}"
            );
        }
    }
}
