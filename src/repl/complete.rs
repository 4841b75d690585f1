//! Tab completion and `:help FUNCTION`: keywords, builtins, stdlib functions, names in scope,
//! and the fields of the row type at the cursor (after `|` in a pipeline, asked of the checker
//! through the session).

use super::Repl;
use crate::stdlib::{self, Builtin};

const KEYWORDS: &[&str] = &[
    "mode", "use", "schema", "source", "fn", "let", "filter", "map", "group", "union", "limit",
    "sink", "if", "else", "true", "false", "null",
];
const STAGES: &[&str] = &["filter", "map", "group", "union", "limit", "sink"];
const AGGREGATES: &[&str] = &crate::check::hir::AggFunc::NAMES;
const COMMANDS: &[&str] = &[
    ":help", ":type", ":schema", ":explain", ":run", ":load", ":save", ":decls", ":limit",
    ":reset", ":quit",
];

/// A stdlib module function: (module, name, signature line, doc, examples).
pub struct StdFn {
    pub module: &'static str,
    pub name: String,
    pub signature: String,
    pub doc: String,
    pub examples: Vec<String>,
}

/// Every `fn` of the stdlib modules, with its `##` doc lines.
pub fn std_functions() -> Vec<StdFn> {
    let mut out = Vec::new();
    for (path, text) in stdlib::modules::MODULES {
        let module = path.trim_start_matches("std.");
        let mut doc = Vec::new();
        let mut examples = Vec::new();
        for line in text.lines() {
            let l = line.trim_start();
            if let Some(ex) = l.strip_prefix("## example:") {
                examples.push(ex.trim().to_string());
            } else if let Some(d) = l.strip_prefix("##") {
                doc.push(d.trim().to_string());
            } else if let Some(rest) = l.strip_prefix("fn ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let sig = rest.split(" =").next().unwrap_or(rest).trim().to_string();
                out.push(StdFn {
                    module,
                    name,
                    signature: format!("{module}.{sig}"),
                    doc: std::mem::take(&mut doc).join(" "),
                    examples: std::mem::take(&mut examples),
                });
            } else if !l.starts_with('#') {
                doc.clear();
                examples.clear();
            }
        }
    }
    out
}

fn param_name(p: stdlib::Param) -> String {
    match p {
        stdlib::Param::Is(s) => s.name().to_string(),
        stdlib::Param::Numeric => "int|float".into(),
        stdlib::Param::Any => "any".into(),
        stdlib::Param::AnyNullable => "any?".into(),
    }
}

/// The signature line of a builtin: `substr(str, int, int) -> str`.
pub fn builtin_signature(b: Builtin) -> String {
    let sig = b.signature();
    let mut params: Vec<String> = sig.params.iter().map(|p| param_name(*p)).collect();
    if sig.variadic
        && let Some(last) = params.last_mut()
    {
        last.push_str(", …");
    }
    let ret = match sig.ret {
        stdlib::Ret::Is(s) => s.name().to_string(),
        stdlib::Ret::Nullable(s) => format!("{}?", s.name()),
        stdlib::Ret::SameNumeric => "int|float".into(),
    };
    format!("{}({}) -> {ret}", b.name(), params.join(", "))
}

/// `:help NAME`: a builtin's or a stdlib function's signature, doc and example; `Err` (the
/// message) when there is no such function.
pub fn help_for(name: &str) -> Result<String, String> {
    if let Some(b) = Builtin::from_name(name) {
        let sig = b.signature();
        let mut s = format!("{}\n  {}\n", builtin_signature(b), sig.doc);
        if !sig.example.is_empty() {
            s.push_str(&format!("  example: {}\n", sig.example));
        }
        return Ok(s);
    }
    let (module, fname) = match name.split_once('.') {
        Some((m, f)) => (Some(m.trim_start_matches("std.")), f),
        None => (None, name),
    };
    let found: Vec<StdFn> = std_functions()
        .into_iter()
        .filter(|f| f.name == fname && module.is_none_or(|m| m == f.module))
        .collect();
    if found.is_empty() {
        if AGGREGATES.contains(&name) {
            return Ok(format!(
                "{name}: an aggregate of `group`, e.g. `| group vendor {{ n: count(), total: sum(fare) }}`\n"
            ));
        }
        let mut s = format!("error: no function `{name}`");
        let all: Vec<String> = stdlib::ALL
            .iter()
            .map(|b| b.name().to_string())
            .chain(
                std_functions()
                    .iter()
                    .map(|f| format!("{}.{}", f.module, f.name)),
            )
            .collect();
        if let Some(best) = all
            .iter()
            .map(|c| (strsim::levenshtein(c, name), c))
            .filter(|(d, _)| *d <= 2)
            .min()
        {
            s.push_str(&format!(" (did you mean `{}`?)", best.1));
        }
        s.push('\n');
        return Err(s);
    }
    let mut s = String::new();
    for f in found {
        s.push_str(&format!(
            "{}    (use std.{})\n  {}\n",
            f.signature, f.module, f.doc
        ));
        for ex in f.examples {
            s.push_str(&format!("  example: {}.{ex}\n", f.module));
        }
    }
    Ok(s)
}

/// Completions for the word ending at `pos` in `line`: the word's start and the candidates
/// (sorted, de-duplicated).
pub fn complete(repl: &mut Repl, line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == '.' || *c == ':')
        .last()
        .map(|(i, _)| i)
        .unwrap_or(pos);
    let word = &before[start..];
    let mut cands: Vec<String> = Vec::new();
    if before.trim_start().starts_with(':') {
        if start == before.len() - before.trim_start().len() {
            cands.extend(COMMANDS.iter().map(|c| c.to_string()));
        } else if before.trim_start().starts_with(":help") {
            cands.extend(function_names());
        } else if let Some(rest) = before.trim_start().split_once(char::is_whitespace) {
            // `:type …`, `:explain …`: as in a statement.
            cands.extend(statement_candidates(repl, rest.1, word));
        }
    } else {
        cands.extend(statement_candidates(repl, before, word));
    }
    let mut cands: Vec<String> = cands
        .into_iter()
        .filter(|c| c.starts_with(word) && !c.starts_with("__"))
        .collect();
    cands.sort();
    cands.dedup();
    (start, cands)
}

fn function_names() -> Vec<String> {
    stdlib::ALL
        .iter()
        .map(|b| b.name().to_string())
        .chain(
            std_functions()
                .into_iter()
                .map(|f| format!("{}.{}", f.module, f.name)),
        )
        .collect()
}

/// Candidates inside a statement: right after `|` the stages; inside a stage the fields of the
/// row type before that `|` first; everywhere keywords, functions and names in scope.
fn statement_candidates(repl: &mut Repl, before: &str, word: &str) -> Vec<String> {
    let mut out = Vec::new();
    let head = &before[..before.len() - word.len()];
    if let Some(bar) = last_pipe(head) {
        let after = head[bar + 1..].trim();
        if after.is_empty() {
            return STAGES.iter().map(|s| s.to_string()).collect();
        }
        let prefix = strip_let(&head[..bar]);
        if let Ok(row) = repl.row_type_of(prefix) {
            out.extend(row.fields.iter().map(|f| f.name.clone()));
        }
        if after.starts_with("group") {
            out.extend(AGGREGATES.iter().map(|s| s.to_string()));
        }
        if after.starts_with("union") {
            out.extend(
                repl.names()
                    .into_iter()
                    .filter(|(_, k)| *k == "stream")
                    .map(|(n, _)| n),
            );
            return out;
        }
    }
    out.extend(KEYWORDS.iter().map(|s| s.to_string()));
    out.extend(stdlib::ALL.iter().map(|b| b.name().to_string()));
    let used = repl.used_modules();
    out.extend(
        std_functions()
            .into_iter()
            .filter(|f| used.iter().any(|m| m == f.module) || word.contains('.'))
            .map(|f| format!("{}.{}", f.module, f.name)),
    );
    out.extend(repl.names().into_iter().map(|(n, _)| n));
    out
}

/// The byte offset of the last `|` that is a pipe (not `||`, not in a string or a comment).
fn last_pipe(text: &str) -> Option<usize> {
    let mut diags = Vec::new();
    let toks = crate::syntax::lexer::lex(text, crate::span::FileId(0), &mut diags);
    toks.iter()
        .rev()
        .find(|t| t.1 == crate::syntax::lexer::Token::Kw(crate::syntax::lexer::Tok::Pipe))
        .map(|t| t.0)
}

/// `let name = PIPELINE` → `PIPELINE`.
fn strip_let(text: &str) -> &str {
    let t = text.trim_start();
    if let Some(rest) = t.strip_prefix("let ")
        && let Some(eq) = rest.find('=')
    {
        return &rest[eq + 1..];
    }
    t
}
