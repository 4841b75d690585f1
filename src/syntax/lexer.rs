//! The lexer (logos). Lexing never fails: bad input becomes `Error` tokens (reported as
//! diagnostics and dropped before parsing), so the parser always gets a token stream.

use crate::diagnostics::{Code, Diagnostic};
use crate::span::{FileId, Span};
use logos::Logos;
use std::fmt;

#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
pub enum Tok {
    /// A `#` comment to the end of its line: kept as trivia beside the tokens (see
    /// [`lex_with_comments`]), never given to the parser.
    #[regex(r"#[^\n]*", allow_greedy = true)]
    Comment,
    #[token("mode")]
    Mode,
    #[token("use")]
    Use,
    #[token("schema")]
    Schema,
    #[token("source")]
    Source,
    #[token("fn")]
    Fn,
    #[token("let")]
    Let,
    #[token("filter")]
    Filter,
    #[token("map")]
    Map,
    #[token("group")]
    Group,
    #[token("union")]
    Union,
    #[token("limit")]
    Limit,
    #[token("sort")]
    Sort,
    #[token("distinct")]
    Distinct,
    #[token("join")]
    Join,
    #[token("sink")]
    Sink,
    #[token("if")]
    If,
    #[token("else")]
    Else,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("null")]
    Null,

    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice().to_string())]
    /// A back-quoted name, for columns that clash with keywords: `` `source` ``.
    #[regex(r"`[^`\n]+`", |lex| { let s = lex.slice(); s[1..s.len() - 1].to_string() })]
    Ident(String),
    /// The raw digits; converted (with a range check) by `lex`.
    #[regex(r"[0-9][0-9_]*", |lex| lex.slice().to_string())]
    Int(String),
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*([eE][+-]?[0-9]+)?", |lex| lex.slice().to_string())]
    #[regex(r"[0-9][0-9_]*[eE][+-]?[0-9]+", |lex| lex.slice().to_string())]
    Float(String),
    /// A complete string literal, quotes included; unescaped by `lex`.
    #[regex(r#""([^"\\\n]|\\[^\n])*""#, |lex| lex.slice().to_string())]
    Str(String),
    /// A single-quoted string (a habit: reported, then read as a string).
    #[regex(r#"'([^'\\\n]|\\[^\n])*'"#, |lex| lex.slice().to_string())]
    SqStr(String),
    /// A string literal missing its closing quote on its line.
    #[regex(r#""([^"\\\n]|\\[^\n])*"#, |lex| lex.slice().to_string(), priority = 1)]
    UnterminatedStr(String),

    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("=")]
    Assign,
    #[token("->")]
    Arrow,
    #[token("|")]
    Pipe,
    #[token("@")]
    At,
    #[token("?")]
    Question,
    #[token("??")]
    Coalesce,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("!")]
    Bang,
    // Habits, reported by `lex` and replaced by the flow form (or dropped).
    #[token(";")]
    Semi,
    #[token("//")]
    SlashSlash,
    #[token("--")]
    DashDash,
    #[token("&")]
    Amp,
    #[token("<>")]
    LtGt,
    #[token("===")]
    EqEqEq,
    #[token("!==")]
    NotEqEq,
    #[token("**")]
    StarStar,
}

/// A token after post-processing: literals converted to values.
#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    Kw(Tok),
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Ident(s) => write!(f, "identifier `{s}`"),
            Token::Int(i) => write!(f, "number `{i}`"),
            Token::Float(x) => write!(f, "number `{x}`"),
            Token::Str(s) => write!(f, "string {s:?}"),
            Token::Kw(t) => write!(f, "`{}`", tok_text(t)),
        }
    }
}

impl Tok {
    /// The keywords that start a stage (`| filter …`, `| sort …`), in the order messages list
    /// them.
    pub const STAGES: [Tok; 9] = [
        Tok::Filter,
        Tok::Map,
        Tok::Group,
        Tok::Join,
        Tok::Union,
        Tok::Sort,
        Tok::Distinct,
        Tok::Limit,
        Tok::Sink,
    ];

    /// Whether this keyword starts a stage.
    pub fn is_stage(&self) -> bool {
        Tok::STAGES.contains(self)
    }
}

/// The source text of a fixed token (for messages).
pub fn tok_text(t: &Tok) -> &'static str {
    match t {
        Tok::Mode => "mode",
        Tok::Use => "use",
        Tok::Schema => "schema",
        Tok::Source => "source",
        Tok::Fn => "fn",
        Tok::Let => "let",
        Tok::Filter => "filter",
        Tok::Map => "map",
        Tok::Group => "group",
        Tok::Union => "union",
        Tok::Limit => "limit",
        Tok::Sort => "sort",
        Tok::Distinct => "distinct",
        Tok::Join => "join",
        Tok::Sink => "sink",
        Tok::If => "if",
        Tok::Else => "else",
        Tok::True => "true",
        Tok::False => "false",
        Tok::Null => "null",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::Comma => ",",
        Tok::Colon => ":",
        Tok::Dot => ".",
        Tok::Assign => "=",
        Tok::Arrow => "->",
        Tok::Pipe => "|",
        Tok::At => "@",
        Tok::Question => "?",
        Tok::Coalesce => "??",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::Percent => "%",
        Tok::EqEq => "==",
        Tok::NotEq => "!=",
        Tok::Lt => "<",
        Tok::Le => "<=",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::AndAnd => "&&",
        Tok::OrOr => "||",
        Tok::Bang => "!",
        Tok::Semi => ";",
        Tok::SlashSlash => "//",
        Tok::DashDash => "--",
        Tok::Amp => "&",
        Tok::LtGt => "<>",
        Tok::EqEqEq => "===",
        Tok::NotEqEq => "!==",
        Tok::StarStar => "**",
        Tok::Comment => "#",
        Tok::Ident(_)
        | Tok::Int(_)
        | Tok::Float(_)
        | Tok::Str(_)
        | Tok::SqStr(_)
        | Tok::UnterminatedStr(_) => "literal",
    }
}

pub type Spanned = (usize, Token, usize);

/// Converts the text of a string literal (without quotes); bad escapes are reported.
fn unescape(raw: &str, start: usize, file: FileId, diags: &mut Vec<Diagnostic>) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, 'n')) => out.push('\n'),
            Some((_, 't')) => out.push('\t'),
            Some((_, 'r')) => out.push('\r'),
            Some((_, '"')) => out.push('"'),
            Some((_, '\\')) => out.push('\\'),
            Some((_, '0')) => out.push('\0'),
            Some((j, other)) => {
                let at = start + i;
                diags.push(
                    Diagnostic::error(
                        Code::InvalidEscape,
                        format!("invalid escape `\\{other}` in string"),
                    )
                    .label(
                        Span::new(file, at, start + j + other.len_utf8()),
                        "not a known escape",
                    )
                    .help("the escapes are \\n \\t \\r \\\" \\\\ and \\0"),
                );
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Lexes a whole file. Never fails: problems become diagnostics, and the offending text is
/// skipped (or, for an unterminated string, kept as a string token) so parsing can go on.
pub fn lex(text: &str, file: FileId, diags: &mut Vec<Diagnostic>) -> Vec<Spanned> {
    let mut fixed = Vec::new();
    let out = lex_with_habits(text, file, diags, &mut fixed);
    diags.append(&mut fixed);
    out
}

/// Is the text after a `//` (to the end of its line) the right operand of a floor division
/// (`x // 2`, `a // b }`) rather than a comment (`// keep long trips`)?
fn is_division_operand(rest: &str) -> bool {
    let rest = rest.trim_start();
    let word = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    word > 0
        && rest[word..]
            .trim()
            .chars()
            .next()
            .is_none_or(|c| ")},|+-*/%<>=!&".contains(c))
}

/// Like [`lex`], with the habits it recovers from (`'text'`, `;`, `//` comments, …) reported
/// into `fixed` rather than `diags`: a statement with only such diagnostics is still parsed and
/// its other syntax errors reported.
pub fn lex_with_habits(
    text: &str,
    file: FileId,
    diags: &mut Vec<Diagnostic>,
    fixed: &mut Vec<Diagnostic>,
) -> Vec<Spanned> {
    lex_with_comments(text, file, diags, fixed, &mut Vec::new())
}

/// Like [`lex_with_habits`], also returning the byte range of every `#` comment (to the end of
/// its line, without the line break) in `comments`, in order: the trivia `flow fmt` keeps.
pub fn lex_with_comments(
    text: &str,
    file: FileId,
    diags: &mut Vec<Diagnostic>,
    fixed: &mut Vec<Diagnostic>,
    comments: &mut Vec<(usize, usize)>,
) -> Vec<Spanned> {
    let mut out: Vec<Spanned> = Vec::new();
    let mut lexer = Tok::lexer(text);
    // The diagnostic of the current run of bad characters, where the run ends, its length.
    let mut run: Option<(usize, usize, usize)> = None;
    while let Some(res) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(file, range.start, range.end);
        let tok = match res {
            Ok(Tok::Ident(s)) => Token::Ident(s),
            Ok(Tok::Int(s)) => match s.replace('_', "").parse::<i64>() {
                Ok(i) => Token::Int(i),
                Err(_) => {
                    diags.push(
                        Diagnostic::error(Code::NumberOutOfRange, format!("integer `{s}` does not fit in 64 bits"))
                            .label(span, "out of range")
                            .help(format!("the largest int is {}; write a float (`{s}.0`) if you need a larger number", i64::MAX)),
                    );
                    Token::Int(0)
                }
            },
            Ok(Tok::Float(s)) => match s.replace('_', "").parse::<f64>() {
                Ok(x) if x.is_finite() => Token::Float(x),
                _ => {
                    diags.push(
                        Diagnostic::error(
                            Code::NumberOutOfRange,
                            format!("number `{s}` is too large for a float"),
                        )
                        .label(span, "out of range"),
                    );
                    Token::Float(0.0)
                }
            },
            Ok(Tok::Str(s)) => {
                Token::Str(unescape(&s[1..s.len() - 1], range.start + 1, file, diags))
            }
            Ok(Tok::UnterminatedStr(s)) => {
                diags.push(
                    Diagnostic::error(Code::UnterminatedString, "unterminated string")
                        .label(span, "this string has no closing `\"` on its line")
                        .help("add a `\"` at the end of the string; strings cannot span lines (use \\n)"),
                );
                Token::Str(unescape(&s[1..], range.start + 1, file, diags))
            }
            Ok(Tok::SqStr(s)) => {
                let inner = &s[1..s.len() - 1];
                fixed.push(
                    Diagnostic::error(Code::HabitSingleQuote, "strings are written in double quotes")
                        .label(span, "single quotes")
                        .help(format!("write \"{}\"", inner.replace('"', "\\\"")))
                        .note("in SQL 'x' is text and \"x\" a column; in flow \"x\" is text and a column is its bare name (or `x` in back-quotes)"),
                );
                Token::Str(unescape(inner, range.start + 1, file, diags))
            }
            Ok(Tok::Comment) => {
                comments.push((range.start, range.end));
                continue;
            }
            Ok(Tok::Semi) => {
                fixed.push(
                    Diagnostic::error(Code::HabitSemicolon, "flow statements end without `;`")
                        .label(span, "remove this `;`")
                        .help("a statement ends where the next one starts; a new line is enough"),
                );
                continue;
            }
            Ok(Tok::SlashSlash) => {
                let line_end = text[range.end..]
                    .find('\n')
                    .map_or(text.len(), |i| range.end + i);
                let rest = &text[range.end..line_end];
                let after_operand = out.last().is_some_and(|t| {
                    matches!(
                        t.1,
                        Token::Ident(_) | Token::Int(_) | Token::Float(_) | Token::Kw(Tok::RParen)
                    )
                });
                if after_operand && is_division_operand(rest) {
                    fixed.push(
                        Diagnostic::error(Code::HabitFloorDiv, "flow has no `//` operator")
                            .label(span, "floor division")
                            .help("between ints `/` already drops the fraction; for floats write `floor(a / b)`"),
                    );
                    Token::Kw(Tok::Slash)
                } else {
                    fixed.push(
                        Diagnostic::error(
                            Code::HabitSlashComment,
                            "comments start with `#`, not `//`",
                        )
                        .label(span, "write `#` here")
                        .help("e.g. `# keep long trips`"),
                    );
                    lexer.bump(rest.len());
                    continue;
                }
            }
            Ok(Tok::DashDash) => {
                let rest = &text[range.end..];
                if rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']) {
                    let line_end = rest.find('\n').unwrap_or(rest.len());
                    fixed.push(
                        Diagnostic::error(
                            Code::HabitDashComment,
                            "comments start with `#`, not `--`",
                        )
                        .label(span, "write `#` here")
                        .help("e.g. `# keep long trips`"),
                    );
                    lexer.bump(line_end);
                    continue;
                }
                // `--x` is two minus signs.
                out.push((range.start, Token::Kw(Tok::Minus), range.start + 1));
                Token::Kw(Tok::Minus)
            }
            Ok(Tok::Amp | Tok::LtGt | Tok::EqEqEq | Tok::NotEqEq | Tok::StarStar) => {
                let bad = lexer.slice();
                let (tok, msg, help) = match bad {
                    "&" => (
                        Tok::AndAnd,
                        "boolean and is written `&&`",
                        "e.g. `filter fare > 0.0 && tip > 0.0`",
                    ),
                    "<>" => (
                        Tok::NotEq,
                        "flow writes `!=`, not `<>`",
                        "e.g. `filter city != \"Boston\"`",
                    ),
                    "===" => (
                        Tok::EqEq,
                        "flow writes `==`, not `===`",
                        "flow never converts types in a comparison, so one `==` is strict",
                    ),
                    "!==" => (
                        Tok::NotEq,
                        "flow writes `!=`, not `!==`",
                        "flow never converts types in a comparison, so one `!=` is strict",
                    ),
                    _ => (
                        Tok::Star,
                        "flow has no `**` power operator",
                        "for a square write `x * x`; for a square root `sqrt(x)`",
                    ),
                };
                let code = match bad {
                    "&" => Code::HabitAmp,
                    "<>" => Code::HabitNotEqual,
                    "===" | "!==" => Code::HabitTripleEquals,
                    _ => Code::HabitPower,
                };
                fixed.push(
                    Diagnostic::error(code, msg)
                        .label(span, format!("write `{}` here", tok_text(&tok)))
                        .help(help),
                );
                if bad == "**" {
                    // Poisoned: the rewrite would change the meaning; report it as a lexical
                    // error of the statement.
                    if let Some(d) = fixed.pop() {
                        diags.push(d);
                    }
                }
                Token::Kw(tok)
            }
            Ok(t) => Token::Kw(t),
            Err(()) => {
                let bad = lexer.slice();
                // A UTF-8 byte order mark at the start of a script is not part of it.
                if range.start == 0 && bad == "\u{feff}" {
                    continue;
                }
                // A run of bad characters (a binary file, a paste of NULs) is one diagnostic.
                if let Some((at, end, count)) = run.as_mut()
                    && *end == range.start
                    && let Some(d) = diags.get_mut(*at)
                    && let Some(l) = d.labels.first_mut()
                {
                    *end = range.end;
                    *count += 1;
                    l.span.end = range.end as u32;
                    l.message = format!("{count} characters that are not part of the language");
                    if *count == 2 {
                        d.message = d.message.replacen("character", "characters", 1) + " …";
                        d.help.clear();
                    }
                    continue;
                }
                run = Some((diags.len(), range.end, 1));
                let shown: String = bad
                    .chars()
                    .next()
                    .map(|c| c.escape_debug().to_string())
                    .unwrap_or_default();
                let mut d = Diagnostic::error(
                    Code::UnexpectedChar,
                    format!("unexpected character `{shown}`"),
                )
                .label(span, "not part of the language");
                match bad {
                    "≥" => d = d.help("write `>=`"),
                    "≤" => d = d.help("write `<=`"),
                    "≠" => d = d.help("write `!=`"),
                    "“" | "”" => d = d.help("strings use plain double quotes: \"text\""),
                    "'" => d = d.help("strings use double quotes: \"text\""),
                    _ => {}
                }
                diags.push(d);
                continue;
            }
        };
        out.push((range.start, tok, range.end));
    }
    out
}
