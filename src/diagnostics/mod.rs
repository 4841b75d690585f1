//! Diagnostics: the error-code registry (`codes`), the `Diagnostic` type every stage reports
//! with, and its two renderings: ariadne text (for people) and JSON (for tools).

mod codes;
mod mask;

pub use codes::Code;
pub use mask::{has_secrets, mask_secrets};

use crate::span::{SourceMap, Span};
use ariadne::{Color, Config, IndexType, Label as ALabel, Report, ReportKind};
use serde::Serialize;

/// "did you mean `x`?" for a misspelt name: the closest candidate (Jaro-Winkler above 0.8), if
/// any. Shared by every stage that names things (stages in the parser, names in the checker).
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        if score > 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// The first label is the primary one.
    pub labels: Vec<Label>,
    pub help: Vec<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            labels: vec![],
            help: vec![],
            notes: vec![],
        }
    }
    pub fn warning(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }
    /// Adds a label; the first one added is the primary label.
    pub fn label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        let primary = self.labels.is_empty();
        self.labels.push(Label {
            span,
            message: message.into(),
            primary,
        });
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help.push(help.into());
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }
}

/// Sorts diagnostics by file and position (stable for the same input).
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| d.primary_span().map(|s| (s.file, s.start, s.end)));
}

/// How many diagnostics `render` and `to_json` show by default.
pub const DEFAULT_MAX_ERRORS: usize = 100;

/// The diagnostics shown under a cap of `max` and the summary of the rest: "… and N more errors".
fn capped(diags: &[Diagnostic], max: usize) -> (&[Diagnostic], Option<String>) {
    if diags.len() <= max {
        return (diags, None);
    }
    let (shown, rest) = diags.split_at(max);
    let errors = rest.iter().filter(|d| d.is_error()).count();
    let warnings = rest.len() - errors;
    let count = |n: usize, what: &str| format!("{n} more {what}{}", if n == 1 { "" } else { "s" });
    let summary = match (errors, warnings) {
        (e, 0) => format!("… and {}", count(e, "error")),
        (0, w) => format!("… and {}", count(w, "warning")),
        (e, w) => format!("… and {} and {}", count(e, "error"), count(w, "warning")),
    };
    (shown, Some(summary))
}

/// Renders diagnostics as ariadne reports, at most [`DEFAULT_MAX_ERRORS`] of them.
/// `color: false` for files and snapshots.
pub fn render(sources: &SourceMap, diags: &[Diagnostic], color: bool) -> String {
    render_capped(sources, diags, color, DEFAULT_MAX_ERRORS)
}

/// Renders the first `max_errors` diagnostics, then one line `… and N more errors` (E0008).
pub fn render_capped(
    sources: &SourceMap,
    diags: &[Diagnostic],
    color: bool,
    max_errors: usize,
) -> String {
    let (diags, rest) = capped(diags, max_errors);
    let mut text = render_all(sources, diags, color);
    if let Some(rest) = rest {
        text.push_str(&format!("[{}] {rest}\n", Code::TooManyErrors.as_str()));
    }
    text
}

/// `d` with the passwords of its texts masked ([`mask_secrets`]).
fn masked(d: &Diagnostic) -> Diagnostic {
    let m = |t: &String| mask_secrets(t).into_owned();
    Diagnostic {
        code: d.code,
        severity: d.severity,
        message: m(&d.message),
        labels: d
            .labels
            .iter()
            .map(|l| Label {
                message: m(&l.message),
                ..l.clone()
            })
            .collect(),
        help: d.help.iter().map(m).collect(),
        notes: d.notes.iter().map(m).collect(),
    }
}

fn render_all(sources: &SourceMap, diags: &[Diagnostic], color: bool) -> String {
    let mut out = Vec::new();
    // The source lines ariadne prints, passwords masked (same lengths: the spans still fit).
    let mut cache = ariadne::sources(
        sources
            .files
            .iter()
            .map(|f| (f.name.clone(), mask_secrets(&f.text).into_owned())),
    );
    for d in diags {
        let d = &masked(d);
        let kind = match d.severity {
            Severity::Error => ReportKind::Error,
            Severity::Warning => ReportKind::Warning,
        };
        let file_name = |s: Span| sources.get(s.file).name.clone();
        let anchor = d.primary_span().map(|s| (file_name(s), s.range()));
        match anchor {
            Some(anchor) => {
                let mut report = Report::build(kind, anchor)
                    .with_config(
                        Config::default()
                            .with_color(color)
                            .with_index_type(IndexType::Byte),
                    )
                    .with_code(d.code.as_str())
                    .with_message(&d.message);
                for l in &d.labels {
                    let color_of = if l.primary { Color::Red } else { Color::Blue };
                    report = report.with_label(
                        ALabel::new((file_name(l.span), l.span.range()))
                            .with_message(&l.message)
                            .with_color(color_of),
                    );
                }
                for h in &d.help {
                    report = report.with_help(h);
                }
                for n in &d.notes {
                    report = report.with_note(n);
                }
                // Writing into a Vec cannot fail for I/O reasons; a cache miss would be our bug.
                if report.finish().write(&mut cache, &mut out).is_err() {
                    out.extend_from_slice(plain_line(d).as_bytes());
                }
            }
            None => {
                out.extend_from_slice(plain_line(d).as_bytes());
                for h in &d.help {
                    out.extend_from_slice(format!("  help: {h}\n").as_bytes());
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `[E0033] error: message` — for diagnostics without a place in a source file.
fn plain_line(d: &Diagnostic) -> String {
    format!(
        "[{}] {}: {}\n",
        d.code.as_str(),
        severity_word(d),
        d.message
    )
}

fn severity_word(d: &Diagnostic) -> &'static str {
    match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// The JSON form of at most [`DEFAULT_MAX_ERRORS`] diagnostics: see [`to_json_capped`].
pub fn to_json(sources: &SourceMap, diags: &[Diagnostic]) -> serde_json::Value {
    to_json_capped(sources, diags, DEFAULT_MAX_ERRORS)
}

/// The JSON form: one object per diagnostic with code, severity, message, file, line, column
/// (1-based), end_line, end_column, labels, help and notes; the first `max_errors` of them, then
/// (if some were left out) one object of code E0008 whose message is `… and N more errors`.
pub fn to_json_capped(
    sources: &SourceMap,
    diags: &[Diagnostic],
    max_errors: usize,
) -> serde_json::Value {
    let (diags, rest) = capped(diags, max_errors);
    let pos = |s: Span| {
        let (line, column) = sources.line_col(s.file, s.start);
        let (end_line, end_column) = sources.line_col(s.file, s.end);
        (
            sources.get(s.file).name.clone(),
            line,
            column,
            end_line,
            end_column,
        )
    };
    let items: Vec<serde_json::Value> = diags
        .iter()
        .map(|d| {
            let d = &masked(d);
            let labels: Vec<serde_json::Value> = d
                .labels
                .iter()
                .map(|l| {
                    let (file, line, column, end_line, end_column) = pos(l.span);
                    serde_json::json!({
                        "file": file, "line": line, "column": column,
                        "end_line": end_line, "end_column": end_column,
                        "message": l.message, "primary": l.primary,
                    })
                })
                .collect();
            let (file, line, column, end_line, end_column) = match d.primary_span() {
                Some(s) => {
                    let (f, l, c, el, ec) = pos(s);
                    (Some(f), Some(l), Some(c), Some(el), Some(ec))
                }
                None => (None, None, None, None, None),
            };
            serde_json::json!({
                "code": d.code.as_str(),
                "severity": d.severity,
                "message": d.message,
                "file": file, "line": line, "column": column,
                "end_line": end_line, "end_column": end_column,
                "labels": labels,
                "help": d.help,
                "notes": d.notes,
            })
        })
        .collect();
    let mut items = items;
    if let Some(rest) = rest {
        items.push(serde_json::json!({
            "code": Code::TooManyErrors.as_str(),
            "severity": Severity::Error,
            "message": rest,
            "file": null, "line": null, "column": null, "end_line": null, "end_column": null,
            "labels": [], "help": [], "notes": [],
        }));
    }
    serde_json::Value::Array(items)
}
