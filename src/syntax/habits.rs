//! Habits from SQL, Python, JavaScript and friends: mistakes that are valid elsewhere. Each gets
//! its own code (E0100 and up), a label on the habit and a help line with the flow form.
//!
//! This pass runs on one statement's tokens before parsing. Where the flow form is clear it
//! rewrites the tokens into it ("recovered": the statement is then parsed and checked as
//! written the flow way, so independent mistakes after the habit are still reported and nothing
//! cascades from it). Where it is not (a SQL query, a ternary) the statement is "poisoned": the
//! habit is its one message, and the statement is not parsed or checked further.

use super::lexer::{Spanned, Tok, Token, tok_text};
use crate::diagnostics::{Code, Diagnostic, suggest};
use crate::span::{FileId, Span};

/// The outcome of the pass on one statement.
pub struct Rewritten {
    pub tokens: Vec<Spanned>,
    /// A habit that could not be rewritten was reported; do not parse the statement.
    pub poisoned: bool,
}

struct Pass<'a> {
    text: &'a str,
    file: FileId,
    diags: &'a mut Vec<Diagnostic>,
    poisoned: bool,
}

fn kw(t: &Spanned) -> Option<&Tok> {
    match &t.1 {
        Token::Kw(k) => Some(k),
        _ => None,
    }
}

/// Does this token end an operand (so an operator may follow)?
fn ends_operand(t: Option<&Spanned>) -> bool {
    matches!(
        t.map(|t| &t.1),
        Some(
            Token::Ident(_)
                | Token::Int(_)
                | Token::Float(_)
                | Token::Str(_)
                | Token::Kw(Tok::RParen | Tok::True | Tok::False | Tok::Null | Tok::RBrace)
        )
    )
}

/// Can this token start an operand?
fn starts_operand(t: Option<&Spanned>) -> bool {
    matches!(
        t.map(|t| &t.1),
        Some(
            Token::Ident(_)
                | Token::Int(_)
                | Token::Float(_)
                | Token::Str(_)
                | Token::Kw(
                    Tok::LParen
                        | Tok::Bang
                        | Tok::Minus
                        | Tok::True
                        | Tok::False
                        | Tok::Null
                        | Tok::If
                )
        )
    )
}

fn is_stage_kw(t: &Spanned) -> bool {
    kw(t).is_some_and(Tok::is_stage)
}

/// The conversion function for a SQL or Python type name in a cast.
fn cast_fn(ty: &str) -> Option<&'static str> {
    match ty.to_ascii_lowercase().as_str() {
        "int" | "integer" | "bigint" | "smallint" | "int64" | "int32" | "long" => Some("to_int"),
        "float" | "double" | "real" | "numeric" | "decimal" | "float64" | "float32" => {
            Some("to_float")
        }
        "str" | "string" | "text" | "varchar" | "char" => Some("to_str"),
        _ => None,
    }
}

/// Words that, at the start of a line, continue the statement before them (so the statement
/// splitter does not cut there): they are habits this pass reports.
pub fn continues_statement(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "and"
            | "or"
            | "not"
            | "is"
            | "as"
            | "then"
            | "elif"
            | "elsif"
            | "elseif"
            | "in"
            | "like"
            | "where"
            | "order"
            | "having"
            | "join"
    )
}

impl Pass<'_> {
    fn span(&self, l: usize, r: usize) -> Span {
        Span::new(self.file, l, r)
    }

    /// The identifier's name, unless it was back-quoted (a column that clashes with a word).
    fn word<'t>(&self, t: Option<&'t Spanned>) -> Option<&'t str> {
        match t {
            Some((l, Token::Ident(s), _)) if !self.text[*l..].starts_with('`') => Some(s),
            _ => None,
        }
    }

    fn report(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn poison(&mut self, d: Diagnostic) {
        self.diags.push(d);
        self.poisoned = true;
    }

    fn habit(
        &self,
        code: Code,
        msg: impl Into<String>,
        at: (usize, usize),
        label: &str,
    ) -> Diagnostic {
        Diagnostic::error(code, msg).label(self.span(at.0, at.1), label)
    }
}

/// Runs the pass on one statement (see the module doc).
pub fn rewrite(
    text: &str,
    file: FileId,
    stmt: Vec<Spanned>,
    diags: &mut Vec<Diagnostic>,
) -> Rewritten {
    let mut p = Pass {
        text,
        file,
        diags,
        poisoned: false,
    };
    let tokens = statement_forms(&mut p, stmt);
    let tokens = if p.poisoned {
        tokens
    } else {
        expression_forms(&mut p, tokens)
    };
    Rewritten {
        tokens,
        poisoned: p.poisoned,
    }
}

/// Habits that concern the statement as a whole: SQL queries, `def`, `fn` forms.
fn statement_forms(p: &mut Pass, mut toks: Vec<Spanned>) -> Vec<Spanned> {
    let Some(first) = toks.first().cloned() else {
        return toks;
    };
    let at = (first.0, first.2);
    if let Some(w) = p.word(Some(&first)) {
        match w.to_ascii_lowercase().as_str() {
            "select" | "with" => {
                let from = toks
                    .windows(2)
                    .find(|w| {
                        p.word(Some(&w[0]))
                            .is_some_and(|s| s.eq_ignore_ascii_case("from"))
                    })
                    .and_then(|w| p.word(Some(&w[1])).map(str::to_string));
                let src = from.unwrap_or_else(|| "trips".into());
                let d = p
                    .habit(Code::HabitSqlQuery, "this is a SQL query; a flow pipeline starts from its source", at, "a SQL query")
                    .help(format!("write the steps in order: `{src} | filter … | map {{ … }} | sink csv(\"out.csv\")`"))
                    .note("`where` is `filter`, `select` is `map { … }`, `group by k` is `group k { … }`");
                p.poison(d);
                return toks;
            }
            "from" if p.word(toks.get(1)).is_some() => {
                let name = p.word(toks.get(1)).unwrap_or_default().to_string();
                let d = p
                    .habit(
                        Code::HabitFrom,
                        "a pipeline starts with the source's name, without `from`",
                        at,
                        "not needed",
                    )
                    .help(format!("write `{name} | …`"));
                p.report(d);
                toks.remove(0);
                return toks;
            }
            "def" => {
                let d = p
                    .habit(Code::HabitDef, "functions are declared with `fn`, not `def`", at, "a Python function")
                    .help("write `fn name(x: int) -> int = x + 1`: typed parameters, a return type, `=` and one expression");
                p.poison(d);
                return toks;
            }
            _ => {}
        }
    }
    if is_stage_kw(&first) {
        let d = p
            .habit(
                Code::HabitStageFirst,
                format!(
                    "a pipeline cannot start with `{}`",
                    super::lexer::tok_text(kw(&first).unwrap_or(&Tok::Filter))
                ),
                at,
                "a stage needs a stream before it",
            )
            .help("start from a source or a let: `trips | filter … | limit 10 | sink …`");
        p.poison(d);
        return toks;
    }
    if kw(&first) == Some(&Tok::Fn) {
        return fn_forms(p, toks);
    }
    toks
}

/// The index of the token closing the bracket opened at `open`.
fn matching(toks: &[Spanned], open: usize) -> Option<usize> {
    let (o, c) = match kw(&toks[open])? {
        Tok::LParen => (Tok::LParen, Tok::RParen),
        Tok::LBrace => (Tok::LBrace, Tok::RBrace),
        _ => return None,
    };
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if kw(t) == Some(&o) {
            depth += 1;
        } else if kw(t) == Some(&c) {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// `fn f(x: int) -> int { body }`, `fn f(x: int): int = …`, `fn f(x: int) = …`.
fn fn_forms(p: &mut Pass, mut toks: Vec<Spanned>) -> Vec<Spanned> {
    let Some(close) = toks
        .iter()
        .position(|t| kw(t) == Some(&Tok::LParen))
        .and_then(|o| matching(&toks, o))
    else {
        return toks;
    };
    let after = close + 1;
    match toks.get(after).and_then(kw) {
        Some(Tok::Colon) => {
            let t = &toks[after];
            let d = p
                .habit(
                    Code::HabitFnColonReturn,
                    "a function's return type follows `->`, not `:`",
                    (t.0, t.2),
                    "write `->` here",
                )
                .help("e.g. `fn tip_pct(tip: float, fare: float) -> float = tip / fare`");
            p.report(d);
            toks[after].1 = Token::Kw(Tok::Arrow);
        }
        Some(Tok::Assign) => {
            let t = &toks[after];
            let d = p
                .habit(
                    Code::HabitFnNoReturnType,
                    "a function needs its return type",
                    (t.0, t.0),
                    "add `-> TYPE` before `=`",
                )
                .help("e.g. `fn double(x: int) -> int = x * 2`")
                .note("flow does not infer return types: they are the function's contract");
            p.poison(d);
            return toks;
        }
        _ => {}
    }
    // `-> T {`, `-> T? {`: a body in braces instead of after `=`.
    let mut i = after + 1;
    if p.word(toks.get(i)).is_some() {
        i += 1;
        if toks.get(i).and_then(kw) == Some(&Tok::Question) {
            i += 1;
        }
        if toks.get(i).and_then(kw) == Some(&Tok::LBrace) {
            let t = toks[i].clone();
            let d = p
                .habit(Code::HabitFnBraces, "a function's body follows `=`, not braces", (t.0, t.2), "expected `=` here")
                .help("write `fn name(x: int) -> bool = x >= 65`: the body is one expression after `=`")
                .note("braces make a block in Rust or JavaScript; in flow a body is an expression (use `if c { a } else { b }` for choices)");
            p.report(d);
            if matching(&toks, i) == Some(toks.len() - 1) {
                toks.pop();
                toks[i].1 = Token::Kw(Tok::Assign);
            } else {
                toks.insert(i, (t.0, Token::Kw(Tok::Assign), t.0));
            }
        }
    }
    toks
}

/// What a `{` opened.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    Paren,
    /// The items of a `map` or `group` (entries `name: expr`).
    Items,
    Block,
}

/// Habits inside a statement's stages and expressions.
fn expression_forms(p: &mut Pass, toks: Vec<Spanned>) -> Vec<Spanned> {
    let first = toks.first().and_then(kw).cloned();
    let is_pipeline =
        matches!(toks.first().map(|t| &t.1), Some(Token::Ident(_))) || first == Some(Tok::Let);
    let in_types = matches!(first, Some(Tok::Schema | Tok::Mode | Tok::Use));
    if in_types {
        return toks;
    }
    // Where a `=` is part of the declaration (`source x = …`, `let x = …`, `fn … -> T = …`).
    let decl_eq: Option<usize> = if matches!(first, Some(Tok::Source | Tok::Let | Tok::Fn)) {
        let mut depth = 0i32;
        toks.iter().position(|t| {
            match kw(t) {
                Some(Tok::LParen | Tok::LBrace) => depth += 1,
                Some(Tok::RParen | Tok::RBrace) => depth -= 1,
                _ => {}
            }
            depth == 0 && kw(t) == Some(&Tok::Assign)
        })
    } else {
        None
    };
    // In a fn statement, `?` is a type's before the body.
    let body_start = decl_eq.map(|i| i + 1).unwrap_or(0);

    let mut out: Vec<Spanned> = Vec::with_capacity(toks.len());
    let mut opens: Vec<(Open, usize)> = Vec::new();
    let mut stage: Option<Tok> = None;
    // Close a `select`'s inserted `{` before the next `|` at this depth.
    let mut close_select: Option<usize> = None;
    let mut i = 0;
    while i < toks.len() {
        if p.poisoned {
            return toks;
        }
        let t = toks[i].clone();
        let at = (t.0, t.2);
        let prev = out.last().cloned();
        let next = toks.get(i + 1).cloned();
        let after_pipe = prev.as_ref().and_then(kw) == Some(&Tok::Pipe);
        let depth = opens.len();
        // A `select` item list ends at the next stage.
        if close_select == Some(depth) && kw(&t) == Some(&Tok::Pipe) {
            out.push((t.0, Token::Kw(Tok::RBrace), t.0));
            opens.pop();
            close_select = None;
            continue;
        }
        match &t.1 {
            Token::Kw(Tok::LParen) => opens.push((Open::Paren, out.len())),
            Token::Kw(Tok::LBrace) => {
                let items = opens.is_empty() && matches!(stage, Some(Tok::Map | Tok::Group));
                opens.push((if items { Open::Items } else { Open::Block }, out.len()));
            }
            Token::Kw(Tok::RParen | Tok::RBrace) => {
                opens.pop();
            }
            _ => {}
        }
        if is_stage_kw(&t) && opens.is_empty() {
            stage = kw(&t).cloned();
            // `| left join …`: the word before `join` is its kind, checked by the checker.
            let join_kind = kw(&t) == Some(&Tok::Join)
                && matches!(prev, Some((_, Token::Ident(_), _)))
                && out.len() >= 2
                && kw(&out[out.len() - 2]) == Some(&Tok::Pipe);
            if is_pipeline
                && !after_pipe
                && !join_kind
                && i > 0
                && !(first == Some(Tok::Let) && i <= 3)
            {
                let d = p
                    .habit(
                        Code::HabitMissingPipe,
                        format!(
                            "missing `|` before `{}`",
                            super::lexer::tok_text(kw(&t).unwrap_or(&Tok::Map))
                        ),
                        (t.0, t.2),
                        "this stage is not joined to the one before",
                    )
                    .help(format!(
                        "stages are joined with `|`: `… | {} …`",
                        super::lexer::tok_text(kw(&t).unwrap_or(&Tok::Map))
                    ));
                p.report(d);
                out.push((t.0, Token::Kw(Tok::Pipe), t.0));
            }
        }
        match &t.1 {
            // A trailing `|`, or two in a row.
            Token::Kw(Tok::Pipe)
                if opens.is_empty()
                    && (i + 1 == toks.len() || next.as_ref().and_then(kw) == Some(&Tok::Pipe)) =>
            {
                let d = p
                    .habit(
                        Code::HabitTrailingPipe,
                        "a `|` with no stage after it",
                        at,
                        "nothing follows this `|`",
                    )
                    .help(
                        "remove it, or add the stage it was meant for: `| sink csv(\"out.csv\")`",
                    );
                p.report(d);
                i += 1;
                continue;
            }
            Token::Kw(Tok::Assign) if Some(i) != decl_eq => {
                let prev2 = out
                    .len()
                    .checked_sub(2)
                    .and_then(|j| out.get(j))
                    .and_then(kw)
                    .cloned();
                let named = matches!(prev.as_ref().map(|t| &t.1), Some(Token::Ident(_)))
                    && matches!(prev2, Some(Tok::LParen | Tok::Comma | Tok::LBrace));
                let inner = opens.last().map(|o| o.0);
                let name = p.word(prev.as_ref()).unwrap_or("name").to_string();
                if named && inner == Some(Open::Items) {
                    let d = p
                        .habit(
                            Code::HabitMapAssign,
                            format!("a map entry is written `{name}: …`, not `{name} = …`"),
                            at,
                            "write `:` here",
                        )
                        .help(format!("e.g. `map {{ {name}: fare * 2.0 }}`"));
                    p.report(d);
                    out.push((t.0, Token::Kw(Tok::Colon), t.2));
                } else if named && inner == Some(Open::Paren) {
                    let d = p
                        .habit(
                            Code::HabitOptionAssign,
                            format!("an option is written `{name}: …`, not `{name}=…`"),
                            at,
                            "write `:` here",
                        )
                        .help(format!("e.g. `csv(\"data/trips.csv\", {name}: true)`"));
                    p.report(d);
                    out.push((t.0, Token::Kw(Tok::Colon), t.2));
                } else {
                    let d = p
                        .habit(
                            Code::HabitSingleEquals,
                            "`=` is not a comparison; equality is `==`",
                            at,
                            "write `==` here",
                        )
                        .help("e.g. `filter city == \"Boston\"`")
                        .note("`=` only binds a name in `source`, `let` and `fn` declarations");
                    p.report(d);
                    out.push((t.0, Token::Kw(Tok::EqEq), t.2));
                }
                i += 1;
                continue;
            }
            Token::Kw(Tok::Question)
                if i >= body_start
                    && ends_operand(prev.as_ref())
                    && starts_operand(next.as_ref()) =>
            {
                let d = p
                    .habit(
                        Code::HabitTernary,
                        "flow has no `c ? a : b`",
                        at,
                        "a C-style conditional",
                    )
                    .help("write `if c { a } else { b }`");
                p.poison(d);
                continue;
            }
            Token::Kw(Tok::If)
                if ends_operand(prev.as_ref())
                    && prev.as_ref().and_then(kw) != Some(&Tok::RBrace) =>
            {
                let d = p
                    .habit(
                        Code::HabitPythonTernary,
                        "flow has no `a if c else b`",
                        at,
                        "a Python conditional expression",
                    )
                    .help("write `if c { a } else { b }`: the condition comes first");
                p.poison(d);
                continue;
            }
            Token::Ident(name) if p.word(Some(&t)).is_some() => {
                let lower = name.to_ascii_lowercase();
                let lower = lower.as_str();
                let op_position = ends_operand(prev.as_ref()) && starts_operand(next.as_ref());
                // A name used as a value or a call stays itself when followed by `(` or `:`.
                let value_position =
                    !matches!(next.as_ref().and_then(kw), Some(Tok::LParen | Tok::Colon))
                        && prev.as_ref().and_then(kw) != Some(&Tok::Dot);
                match lower {
                    "and" | "or" if op_position => {
                        let (code, flow, tok) = if lower == "and" {
                            (Code::HabitAnd, "&&", Tok::AndAnd)
                        } else {
                            (Code::HabitOr, "||", Tok::OrOr)
                        };
                        let d = p
                            .habit(
                                code,
                                format!("flow writes `{flow}`, not `{name}`"),
                                at,
                                format!("write `{flow}` here").as_str(),
                            )
                            .help(format!("e.g. `filter distance > 10.0 {flow} fare > 0.0`"));
                        p.report(d);
                        out.push((t.0, Token::Kw(tok), t.2));
                        i += 1;
                        continue;
                    }
                    "not" if !ends_operand(prev.as_ref()) && starts_operand(next.as_ref()) => {
                        let d = p
                            .habit(
                                Code::HabitNot,
                                format!("flow writes `!`, not `{name}`"),
                                at,
                                "write `!` here",
                            )
                            .help("e.g. `filter !(fare > 0.0)` or `filter fare <= 0.0`");
                        p.report(d);
                        out.push((t.0, Token::Kw(Tok::Bang), t.2));
                        i += 1;
                        continue;
                    }
                    "is" if ends_operand(prev.as_ref()) => {
                        let negated = p
                            .word(next.as_ref())
                            .is_some_and(|w| w.eq_ignore_ascii_case("not"));
                        let target = toks.get(i + 1 + negated as usize);
                        let null = target.is_some_and(|t| {
                            kw(t) == Some(&Tok::Null)
                                || p.word(Some(t))
                                    .is_some_and(|w| matches!(w, "NULL" | "None" | "nil" | "Null"))
                        });
                        if null && let Some(target) = target.cloned() {
                            let flow = if negated { "!= null" } else { "== null" };
                            let d = p
                                .habit(Code::HabitIsNull, format!("flow writes `x {flow}`, not `x {name} {}null`", if negated { "not " } else { "" }), (t.0, target.2), format!("write `{flow}`").as_str())
                                .help(format!("e.g. `filter tip {flow}`"))
                                .note("after `filter tip != null` the column is non-null in the later stages");
                            p.report(d);
                            out.push((
                                t.0,
                                Token::Kw(if negated { Tok::NotEq } else { Tok::EqEq }),
                                t.2,
                            ));
                            out.push((target.0, Token::Kw(Tok::Null), target.2));
                            i += 2 + negated as usize;
                            continue;
                        }
                    }
                    "none" | "nil" | "null" | "undefined" if value_position && name != "none" => {
                        let d = p
                            .habit(Code::HabitNullSpelling, format!("the missing value is written `null`, not `{name}`"), at, "write `null` here")
                            .help("e.g. `filter tip != null`; to read a column of that name write it in back-quotes")
                            .note("with no column of that name, this would be an unknown name");
                        p.report(d);
                        out.push((t.0, Token::Kw(Tok::Null), t.2));
                        i += 1;
                        continue;
                    }
                    "true" | "false" if value_position => {
                        let d = p
                            .habit(
                                Code::HabitBoolCase,
                                format!("booleans are written `{lower}`, not `{name}`"),
                                at,
                                format!("write `{lower}` here").as_str(),
                            )
                            .help(format!("e.g. `csv(\"data/trips.csv\", header: {lower})`"));
                        p.report(d);
                        out.push((
                            t.0,
                            Token::Kw(if lower == "true" {
                                Tok::True
                            } else {
                                Tok::False
                            }),
                            t.2,
                        ));
                        i += 1;
                        continue;
                    }
                    "elif" | "elsif" | "elseif"
                        if prev.as_ref().and_then(kw) == Some(&Tok::RBrace) =>
                    {
                        let d = p
                            .habit(Code::HabitElif, format!("flow writes `else if`, not `{name}`"), at, "write `else if` here")
                            .help("e.g. `if d > 10.0 { \"long\" } else if d > 2.0 { \"mid\" } else { \"short\" }`");
                        p.report(d);
                        out.push((t.0, Token::Kw(Tok::Else), t.2));
                        out.push((t.0, Token::Kw(Tok::If), t.2));
                        i += 1;
                        continue;
                    }
                    "then" if ends_operand(prev.as_ref()) => {
                        let d = p
                            .habit(
                                Code::HabitThen,
                                "`if` takes braces, not `then`",
                                at,
                                "a `then` from SQL, Haskell or Lua",
                            )
                            .help("write `if c { a } else { b }`");
                        p.poison(d);
                        continue;
                    }
                    "case"
                        if p.word(next.as_ref())
                            .is_some_and(|w| w.eq_ignore_ascii_case("when")) =>
                    {
                        let d = p
                            .habit(
                                Code::HabitCase,
                                "flow has no `CASE WHEN`",
                                at,
                                "a SQL CASE expression",
                            )
                            .help("write `if c1 { a } else if c2 { b } else { d }`");
                        p.poison(d);
                        continue;
                    }
                    "in" | "like" | "ilike" | "between" if ends_operand(prev.as_ref()) => {
                        let help = match lower {
                            "in" => {
                                "compare with each value: `city == \"Boston\" || city == \"Austin\"`"
                            }
                            "between" => "write both bounds: `fare >= 5.0 && fare <= 10.0`",
                            _ => {
                                "use `contains(s, \"x\")`, `starts_with(s, \"x\")` or `ends_with(s, \"x\")`"
                            }
                        };
                        let d = p
                            .habit(
                                Code::HabitSqlOperator,
                                format!("flow has no `{name}` operator"),
                                at,
                                "a SQL operator",
                            )
                            .help(help);
                        p.poison(d);
                        continue;
                    }
                    "as" if ends_operand(prev.as_ref()) => {
                        // In a map entry without a name, `… as word` is an alias.
                        let unnamed_item = match opens.last() {
                            Some(&(Open::Items, open)) => {
                                let start = item_start(&out, open);
                                out.get(start + 1).and_then(kw) != Some(&Tok::Colon)
                            }
                            _ => false,
                        };
                        if !unnamed_item
                            && let Some(ty) = p.word(next.as_ref()).map(str::to_string)
                            && let Some(f) = cast_fn(&ty)
                            && !matches!(toks.get(i + 2).and_then(kw), Some(Tok::Colon))
                        {
                            // Wrap the operand before `as` in `to_T(…)`.
                            let start = operand_start(&out);
                            let d = p
                                .habit(Code::HabitAsCast, format!("flow converts with `{f}(x)`, not `x as {ty}`"), (t.0, toks[i + 1].2), "a cast")
                                .help(format!("write `{f}(…)` around the value; `parse_int`/`parse_float` turn text into numbers"));
                            p.report(d);
                            let l = out.get(start).map(|t| t.0).unwrap_or(t.0);
                            out.insert(start, (l, Token::Kw(Tok::LParen), l));
                            out.insert(start, (l, Token::Ident(f.into()), l));
                            out.push((t.0, Token::Kw(Tok::RParen), t.0));
                            i += 2;
                            continue;
                        }
                        if let Some(alias) = p.word(next.as_ref()).map(str::to_string)
                            && let Some(&(Open::Items, open)) = opens.last()
                        {
                            let start = item_start(&out, open);
                            let d = p
                                .habit(
                                    Code::HabitAsAlias,
                                    format!(
                                        "a map entry is named `{alias}: …`, not `… as {alias}`"
                                    ),
                                    (t.0, toks[i + 1].2),
                                    "an alias from SQL",
                                )
                                .help(format!(
                                    "write the name first: `map {{ {alias}: fare * 2.0 }}`"
                                ));
                            p.report(d);
                            let l = out.get(start).map(|t| t.0).unwrap_or(t.0);
                            out.insert(start, (l, Token::Kw(Tok::Colon), l));
                            out.insert(start, toks[i + 1].clone());
                            i += 2;
                            continue;
                        }
                    }
                    "cast" if next.as_ref().and_then(kw) == Some(&Tok::LParen) => {
                        if let Some(close) = matching(&toks, i + 1)
                            && close >= 3
                            && p.word(toks.get(close - 2))
                                .is_some_and(|w| w.eq_ignore_ascii_case("as"))
                            && let Some(f) = p.word(toks.get(close - 1)).and_then(cast_fn)
                        {
                            let ty = p.word(toks.get(close - 1)).unwrap_or_default().to_string();
                            let d = p
                                .habit(
                                    Code::HabitCastCall,
                                    format!("flow converts with `{f}(x)`, not `CAST(x AS {ty})`"),
                                    (t.0, toks[close].2),
                                    "a SQL cast",
                                )
                                .help(format!("write `{f}(x)`"));
                            p.report(d);
                            out.push((t.0, Token::Ident(f.into()), t.2));
                            out.extend(toks[i + 1..close - 2].iter().cloned());
                            out.push(toks[close].clone());
                            i = close + 1;
                            continue;
                        }
                    }
                    "count"
                        if next.as_ref().and_then(kw) == Some(&Tok::LParen)
                            && toks.get(i + 2).and_then(kw) == Some(&Tok::Star)
                            && toks.get(i + 3).and_then(kw) == Some(&Tok::RParen) =>
                    {
                        let d = p
                            .habit(Code::HabitCountStar, "flow counts rows with `count()`, not `count(*)`", (t.0, toks[i + 3].2), "write `count()`")
                            .help("e.g. `group vendor { trips: count() }`")
                            .note("`count()` counts the rows of each group; `*` is only for keeping all columns in `map { *, … }`");
                        p.report(d);
                        out.push((t.0, Token::Ident("count".into()), t.2));
                        out.push(toks[i + 1].clone());
                        out.push(toks[i + 3].clone());
                        i += 4;
                        continue;
                    }
                    _ => {}
                }
                // Upper-case builtins: `SUM(fare)`, `UPPER(city)`.
                if name.len() > 1
                    && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                    && next.as_ref().and_then(kw) == Some(&Tok::LParen)
                    && (crate::stdlib::Builtin::from_name(lower).is_some()
                        || crate::check::hir::AggFunc::from_name(lower).is_some())
                {
                    let d = p
                        .habit(
                            Code::HabitUpperCaseCall,
                            format!("function names are lower case: `{lower}`, not `{name}`"),
                            at,
                            format!("write `{lower}`").as_str(),
                        )
                        .help("flow names are case-sensitive; every builtin is lower case");
                    p.report(d);
                    let mut t = t.clone();
                    t.1 = Token::Ident(lower.to_string());
                    out.push(t);
                    i += 1;
                    // Re-examine `count(*)` after the case fix.
                    if lower == "count"
                        && toks.get(i + 1).and_then(kw) == Some(&Tok::Star)
                        && toks.get(i + 2).and_then(kw) == Some(&Tok::RParen)
                    {
                        let d = p
                            .habit(
                                Code::HabitCountStar,
                                "flow counts rows with `count()`, not `count(*)`",
                                (toks[i + 1].0, toks[i + 1].2),
                                "remove the `*`",
                            )
                            .help("e.g. `group vendor { trips: count() }`");
                        p.report(d);
                        out.push(toks[i].clone());
                        out.push(toks[i + 2].clone());
                        i += 3;
                    }
                    continue;
                }
                // SQL and dataframe words used as stages.
                let after_group =
                    prev.as_ref().and_then(kw) == Some(&Tok::RBrace) && lower == "having";
                if opens.is_empty() && (after_pipe || after_group || (i == 1 && is_pipeline)) {
                    let need_pipe = !after_pipe;
                    match lower {
                        "where" | "having" => {
                            let d = p
                                .habit(
                                    if lower == "where" {
                                        Code::HabitWhere
                                    } else {
                                        Code::HabitHaving
                                    },
                                    format!("flow keeps rows with `filter`, not `{name}`"),
                                    at,
                                    "write `filter` here",
                                )
                                .help("e.g. `trips | filter distance > 10.0`");
                            let d = if lower == "having" {
                                d.note("after a `group`, `filter` sees the group's output columns, like HAVING")
                            } else {
                                d
                            };
                            p.report(d);
                            push_stage(&mut out, need_pipe, t.0, t.2, Tok::Filter);
                            stage = Some(Tok::Filter);
                            i += 1;
                            continue;
                        }
                        "select" => {
                            let d = p
                                .habit(Code::HabitSelect, format!("flow picks columns with `map {{ … }}`, not `{name}`"), at, "write `map { … }` here")
                                .help("e.g. `trips | map { id, fare, pct: tip / fare * 100.0 }`; `*` keeps every column");
                            p.report(d);
                            push_stage(&mut out, need_pipe, t.0, t.2, Tok::Map);
                            out.push((t.2, Token::Kw(Tok::LBrace), t.2));
                            opens.push((Open::Items, out.len() - 1));
                            stage = Some(Tok::Map);
                            close_select = Some(opens.len());
                            i += 1;
                            continue;
                        }
                        "order" | "order_by" | "sort_by" | "orderby" | "sortby" => {
                            let d = p
                                .habit(Code::HabitOrderBy, format!("flow sorts with `sort`, not `{}`", if lower == "order" { "order by" } else { name }), at, "write `sort` here")
                                .help("e.g. `trips | sort fare desc, id`; a key is `name`, `name asc` or `name desc`");
                            p.report(d);
                            push_stage(&mut out, need_pipe, t.0, t.2, Tok::Sort);
                            stage = Some(Tok::Sort);
                            i += 1;
                            // `order by fare`: drop `by`.
                            if p.word(toks.get(i))
                                .is_some_and(|w| w.eq_ignore_ascii_case("by"))
                            {
                                i += 1;
                            }
                            continue;
                        }
                        "drop_duplicates" | "unique" | "dedup" | "dedupe" | "uniq" => {
                            let d = p
                                .habit(Code::HabitDistinct, format!("flow drops repeated rows with `distinct`, not `{name}`"), at, "write `distinct` here")
                                .help("`distinct` keeps the first of equal rows; `distinct a, b` the first row per key");
                            p.report(d);
                            push_stage(&mut out, need_pipe, t.0, t.2, Tok::Distinct);
                            stage = Some(Tok::Distinct);
                            i += 1;
                            continue;
                        }
                        "merge" => {
                            let d = p
                                .habit(Code::HabitJoin, "flow combines streams by key with `join`, not `merge`", at, "write `join` here")
                                .help("`join customers on customer_id == id { name }` brings columns of `customers` in");
                            p.report(d);
                            push_stage(&mut out, need_pipe, t.0, t.2, Tok::Join);
                            stage = Some(Tok::Join);
                            i += 1;
                            continue;
                        }
                        "take" | "head" | "top"
                            if matches!(next.as_ref().map(|t| &t.1), Some(Token::Int(_))) =>
                        {
                            let d = p
                                .habit(
                                    Code::HabitLimit,
                                    format!(
                                        "flow keeps the first rows with `limit N`, not `{name} N`"
                                    ),
                                    at,
                                    "write `limit` here",
                                )
                                .help("e.g. `trips | sort fare desc | limit 10`");
                            p.report(d);
                            push_stage(&mut out, need_pipe, t.0, t.2, Tok::Limit);
                            stage = Some(Tok::Limit);
                            i += 1;
                            continue;
                        }
                        "group_by" | "groupby" => {
                            let d = p
                                .habit(
                                    Code::HabitGroupBy,
                                    format!("flow writes `group key {{ … }}`, not `{name}`"),
                                    at,
                                    "write `group` here",
                                )
                                .help(
                                    "e.g. `| group vendor { trips: count(), revenue: sum(fare) }`",
                                );
                            p.report(d);
                            out.push((t.0, Token::Kw(Tok::Group), t.2));
                            stage = Some(Tok::Group);
                            i += 1;
                            continue;
                        }
                        _ if after_pipe
                            && !matches!(next.as_ref().and_then(kw), Some(Tok::Join))
                            && !continues_statement(lower) =>
                        {
                            // Not a stage, nor the kind of a join (`left join …`): the parser
                            // would say "expected `join`".
                            let stages = Tok::STAGES.map(|s| tok_text(&s));
                            let d = Diagnostic::error(
                                Code::UnknownStage,
                                format!("unknown stage `{name}`"),
                            )
                            .label(
                                p.span(at.0, at.1),
                                suggest(name, stages).unwrap_or_else(|| "not a stage".into()),
                            )
                            .help(format!(
                                "a stage is one of {}; a join's kind comes before `join`, as in \
                                 `left join customers on id == customer_id {{ name }}`",
                                stages.map(|s| format!("`{s}`")).join(", ")
                            ));
                            p.poison(d);
                            i += 1;
                            continue;
                        }
                        _ => {}
                    }
                }
                // `group by vendor`: drop `by`.
                if lower == "by"
                    && prev.as_ref().and_then(kw) == Some(&Tok::Group)
                    && p.word(next.as_ref()).is_some()
                {
                    let d = p
                        .habit(
                            Code::HabitGroupBy,
                            "flow writes `group key { … }`, not `group by key`",
                            at,
                            "remove `by`",
                        )
                        .help("e.g. `| group vendor { trips: count(), revenue: sum(fare) }`");
                    p.report(d);
                    i += 1;
                    continue;
                }
            }
            _ => {}
        }
        out.push(t);
        i += 1;
    }
    if close_select.is_some() {
        let end = out.last().map(|t| t.2).unwrap_or(0);
        out.push((end, Token::Kw(Tok::RBrace), end));
    }
    out
}

/// Where the operand that ends `out` starts: a name, literal, call or parenthesized group.
fn operand_start(out: &[Spanned]) -> usize {
    let Some(last) = out.len().checked_sub(1) else {
        return 0;
    };
    if kw(&out[last]) != Some(&Tok::RParen) {
        return last;
    }
    let mut depth = 0usize;
    let mut j = last;
    loop {
        match kw(&out[j]) {
            Some(Tok::RParen) => depth += 1,
            Some(Tok::LParen) => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        if j == 0 {
            return 0;
        }
        j -= 1;
    }
    // A call: `f(…)` or `m.f(…)`.
    if j > 0 && matches!(out[j - 1].1, Token::Ident(_)) {
        j -= 1;
        if j >= 2 && kw(&out[j - 1]) == Some(&Tok::Dot) {
            j -= 2;
        }
    }
    j
}

/// Where the map entry that ends `out` starts: after the last `,` at the level of the `{` at
/// `open`.
fn item_start(out: &[Spanned], open: usize) -> usize {
    let mut depth = 0i32;
    for j in (open + 1..out.len()).rev() {
        match kw(&out[j]) {
            Some(Tok::RParen | Tok::RBrace) => depth += 1,
            Some(Tok::LParen | Tok::LBrace) => depth -= 1,
            Some(Tok::Comma) if depth == 0 => return j + 1,
            _ => {}
        }
    }
    open + 1
}

/// Pushes the stage keyword a habit is rewritten to (at `start..end`), after the `|` the
/// habit left out when `need_pipe`.
fn push_stage(out: &mut Vec<Spanned>, need_pipe: bool, start: usize, end: usize, kw: Tok) {
    if need_pipe {
        out.push((start, Token::Kw(Tok::Pipe), start));
    }
    out.push((start, Token::Kw(kw), end));
}
