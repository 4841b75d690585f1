//! Lexer, AST and parser. Invariant: parsing never fails — it returns a `Module` (with
//! `Item::Error` for statements it could not parse) and a list of diagnostics.

pub mod ast;
pub mod depth;
pub mod dump;
pub mod habits;
pub mod lexer;

#[allow(clippy::all, unused_parens, unused_imports, dead_code)]
mod grammar {
    lalrpop_util::lalrpop_mod!(pub flow, "/flow.rs");
}

use crate::diagnostics::{Code, Diagnostic};
use crate::span::{FileId, Span};
use ast::{Item, Module};
use lalrpop_util::ParseError;
use lexer::{Spanned, Tok, Token};

/// Parses one file.
pub fn parse(text: &str, file: FileId) -> (Module, Vec<Diagnostic>) {
    let (module, diags, _) = parse_with_comments(text, file);
    (module, diags)
}

/// Like [`parse`], also returning the byte range of every `#` comment, in order (the trivia
/// `flow fmt` re-inserts).
pub fn parse_with_comments(
    text: &str,
    file: FileId,
) -> (Module, Vec<Diagnostic>, Vec<(usize, usize)>) {
    let mut diags = Vec::new();
    // Habits the lexer and the habit pass recover from: reported, but the statement is parsed.
    let mut fixed = Vec::new();
    let mut comments = Vec::new();
    let tokens = lexer::lex_with_comments(text, file, &mut diags, &mut fixed, &mut comments);
    let statements = split_statements(text, &tokens);
    let statements: Vec<habits::Rewritten> = statements
        .into_iter()
        .map(|stmt| {
            let mut found = Vec::new();
            let r = habits::rewrite(text, file, stmt, &mut found);
            if r.poisoned {
                diags.append(&mut found);
            } else {
                fixed.append(&mut found);
            }
            r
        })
        .collect();
    // Statements with a lexical error get no syntax error too: it would only echo the first.
    let lex_errors: Vec<u32> = diags
        .iter()
        .filter_map(|d| d.primary_span())
        .map(|s| s.start)
        .collect();
    diags.append(&mut fixed);
    let parser = grammar::flow::ItemParser::new();
    let mut module = Module::default();
    let n = statements.len();
    for (i, r) in statements.into_iter().enumerate() {
        let stmt = r.tokens;
        let start = stmt.first().map(|t| t.0).unwrap_or(0);
        let end = stmt.last().map(|t| t.2).unwrap_or(0);
        let next_start = if i + 1 < n { None } else { Some(text.len()) };
        if r.poisoned {
            module.items.push(Item::Error(ast::ErrorItem {
                span: Span::new(file, start, end),
                declares: declares(&stmt, file),
            }));
            continue;
        }
        match parser.parse(file, stmt.iter().cloned().map(Ok::<Spanned, ()>)) {
            Ok(mut item) => match depth::limit(&mut item) {
                Ok(()) => module.items.push(item),
                Err(d) => {
                    diags.push(d);
                    module.items.push(Item::Error(ast::ErrorItem {
                        span: Span::new(file, start, end),
                        declares: declares(&stmt, file),
                    }));
                }
            },
            Err(e) => {
                if !lex_errors
                    .iter()
                    .any(|&at| (start as u32) <= at && at <= end as u32)
                {
                    diags.push(syntax_error(e, file, end, next_start.is_some(), &stmt));
                }
                module.items.push(Item::Error(ast::ErrorItem {
                    span: Span::new(file, start, end),
                    declares: declares(&stmt, file),
                }));
            }
        }
    }
    (module, diags, comments)
}

/// The name a statement that could not be used evidently declares (`source x …`, `let x …`,
/// `fn x …`, `schema x …`), so that its uses are not reported as unknown.
fn declares(stmt: &[Spanned], file: FileId) -> Option<(ast::DeclKind, ast::Ident)> {
    let (Some(Token::Kw(kw)), Some((l, Token::Ident(name), r))) =
        (stmt.first().map(|t| &t.1), stmt.get(1))
    else {
        return None;
    };
    let kind = match kw {
        Tok::Source | Tok::Let => ast::DeclKind::Stream,
        Tok::Fn => ast::DeclKind::Function,
        Tok::Schema => ast::DeclKind::Schema,
        _ => return None,
    };
    Some((
        kind,
        ast::Ident {
            name: name.clone(),
            span: Span::new(file, *l, *r),
        },
    ))
}

/// Parses a single expression, with the depth limit applied (the syntax module's own tests).
#[cfg(test)]
pub(crate) fn parse_expr(text: &str, file: FileId) -> (Option<ast::Expr>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let tokens = lex_and_check(text, file, &mut diags);
    let end = tokens.last().map(|t| t.2).unwrap_or(0);
    match grammar::flow::ExprParser::new().parse(file, tokens.into_iter().map(Ok::<Spanned, ()>)) {
        Ok(mut e) => match depth::limit_expr(&mut e) {
            Ok(()) => (Some(e), diags),
            Err(d) => {
                diags.push(d);
                (None, diags)
            }
        },
        Err(e) => {
            diags.push(syntax_error(e, file, end, true, &[]));
            (None, diags)
        }
    }
}

#[cfg(test)]
fn lex_and_check(text: &str, file: FileId, diags: &mut Vec<Diagnostic>) -> Vec<Spanned> {
    lexer::lex(text, file, diags)
}

/// Does this token end an expression or a statement (so a line-initial identifier after it
/// starts a new statement)?
fn ends_statement(t: &Token) -> bool {
    matches!(
        t,
        Token::Ident(_)
            | Token::Int(_)
            | Token::Float(_)
            | Token::Str(_)
            | Token::Kw(
                Tok::RParen | Tok::RBrace | Tok::True | Tok::False | Tok::Null | Tok::Question
            )
    )
}

/// Splits the token stream into statements: a statement starts at a declaration keyword, or at
/// an identifier that begins a line after a token that can end a statement. Newlines are not
/// otherwise significant; this only decides where error recovery resumes.
fn split_statements(text: &str, tokens: &[Spanned]) -> Vec<Vec<Spanned>> {
    let mut out: Vec<Vec<Spanned>> = Vec::new();
    let mut current: Vec<Spanned> = Vec::new();
    // Inside the braces of a `test "name" { … }` item nothing starts a statement (its clauses
    // begin with names on their own lines).
    let mut test_depth: Option<usize> = None;
    for tok in tokens {
        if let [(_, Token::Ident(w), _)] = current.as_slice()
            && w == "test"
            && matches!(tok.1, Token::Str(_))
        {
            test_depth = Some(0);
            current.push(tok.clone());
            continue;
        }
        if let Some(d) = test_depth.as_mut() {
            match tok.1 {
                Token::Kw(Tok::LBrace) => *d += 1,
                Token::Kw(Tok::RBrace) => *d = d.saturating_sub(1),
                _ => {}
            }
            let inside = *d > 0 || matches!(tok.1, Token::Kw(Tok::RBrace | Tok::LBrace));
            if inside {
                current.push(tok.clone());
                continue;
            }
            test_depth = None;
        }
        let starts = match &tok.1 {
            Token::Kw(Tok::Mode | Tok::Use | Tok::Schema | Tok::Source | Tok::Fn | Tok::Let) => {
                true
            }
            // A stage keyword at the very start of a line starts a (mistaken) statement:
            // `limit 10 trips`; indented, it is a stage missing its `|`.
            Token::Kw(t) if t.is_stage() => current
                .last()
                .is_some_and(|prev| ends_statement(&prev.1) && text[..tok.0].ends_with('\n')),
            // Habit words (`and`, `where`, …) at a line's start continue the statement; they
            // are reported by the habit pass.
            Token::Ident(w) if habits::continues_statement(w) => current.is_empty(),
            Token::Ident(_) => match current.last() {
                Some(prev) => {
                    (ends_statement(&prev.1) || prev.1 == Token::Kw(Tok::Pipe))
                        && text[prev.2..tok.0].contains('\n')
                }
                None => true,
            },
            _ => false,
        };
        if starts && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        current.push(tok.clone());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn describe_expected(expected: &[String]) -> String {
    let has = |t: &str| expected.iter().any(|e| e == t);
    if has("int") && has("string") && has("ident") {
        return "expected an expression".into();
    }
    if has("\"|\"") && has("\"+\"") {
        return "expected an operator, `|` or the end of the pipeline".into();
    }
    if has("\"+\"") && has("\"&&\"") {
        return "expected an operator".into();
    }
    let mut names: Vec<String> = expected
        .iter()
        .map(|e| match e.as_str() {
            "ident" => "a name".to_string(),
            "int" | "float" => "a number".to_string(),
            "string" => "a string".to_string(),
            other => format!("`{}`", other.trim_matches('"')),
        })
        .collect();
    names.dedup();
    match names.len() {
        0 => String::new(),
        1 => format!("expected {}", names[0]),
        n if n <= 6 => format!("expected one of {}", names.join(", ")),
        _ => format!("expected one of {}, …", names[..6].join(", ")),
    }
}

fn syntax_error(
    e: ParseError<usize, Token, ()>,
    file: FileId,
    stmt_end: usize,
    last: bool,
    stmt: &[Spanned],
) -> Diagnostic {
    match e {
        ParseError::UnrecognizedToken {
            token: (l, tok, r),
            expected,
        } => {
            let exp = describe_expected(&expected);
            let mut d = Diagnostic::error(Code::UnexpectedToken, format!("unexpected {tok}"))
                .label(
                    Span::new(file, l, r),
                    if exp.is_empty() {
                        "not allowed here".to_string()
                    } else {
                        exp
                    },
                );
            if matches!(tok, Token::Kw(Tok::Pipe)) && expected.iter().any(|e| e == "\"filter\"") {
                d = d.help("after `|` comes a stage: filter, map, group, union, limit or sink");
            }
            if let Token::Kw(Tok::Assign) = tok {
                // `name = value` right after `(` or `,` is an option written with `=`.
                let pos = stmt.iter().position(|t| t.0 == l).unwrap_or(0);
                let option_like = pos >= 2
                    && matches!(stmt[pos - 1].1, Token::Ident(_))
                    && matches!(stmt[pos - 2].1, Token::Kw(Tok::LParen | Tok::Comma));
                d = d.help(if option_like {
                    "options are written `name: value`"
                } else {
                    "to compare values use `==`"
                });
            }
            d
        }
        ParseError::UnrecognizedEof { location, expected } => {
            let exp = describe_expected(&expected);
            let at = Span::new(file, stmt_end.max(location), stmt_end.max(location));
            if last {
                Diagnostic::error(Code::UnexpectedEof, "unexpected end of file").label(at, exp)
            } else {
                Diagnostic::error(Code::UnexpectedToken, "this statement is incomplete")
                    .label(at, exp)
                    .help("a new statement starts on the next line; finish this one first")
            }
        }
        ParseError::ExtraToken { token: (l, tok, r) } => {
            Diagnostic::error(Code::UnexpectedToken, format!("unexpected {tok}"))
                .label(Span::new(file, l, r), "expected the end of the statement")
        }
        ParseError::InvalidToken { location } => {
            Diagnostic::error(Code::UnexpectedChar, "invalid token")
                .label(Span::new(file, location, location + 1), "here")
        }
        ParseError::User { .. } => Diagnostic::error(Code::UnexpectedToken, "syntax error")
            .label(Span::new(file, stmt_end, stmt_end), "here"),
    }
}
