//! The language features over one file: pure functions of its text, its AST and the session's
//! last compilation (whose index maps spans to types). No I/O: the server does that.

use super::names::{self, Ns, Occ};
use crate::check::hir::AggFunc;
use crate::driver::Compilation;
use crate::span::{FileId, Span};
use crate::stdlib::{self, Builtin, Param, Ret};
use crate::syntax::lexer::{self, Tok, Token};
use crate::syntax::{self, ast};
use crate::types::RowType;

/// The keywords of the language (the lexer's fixed words).
pub const KEYWORDS: &[&str] = &[
    "mode", "use", "schema", "source", "fn", "let", "filter", "map", "group", "union", "limit",
    "sort", "distinct", "join", "sink", "if", "else", "true", "false", "null",
];

const AGGREGATES: &[&str] = &AggFunc::NAMES;

/// One open file as the features see it.
pub struct Doc<'a> {
    pub text: &'a str,
    pub file: FileId,
    pub comp: &'a Compilation,
    pub module: ast::Module,
    pub occs: Vec<Occ>,
    tokens: Vec<(usize, Token, usize)>,
}

impl<'a> Doc<'a> {
    pub fn new(text: &'a str, file: FileId, comp: &'a Compilation) -> Doc<'a> {
        let (module, _) = syntax::parse(text, file);
        let occs = names::occurrences(&module);
        let mut ignored = Vec::new();
        let tokens = lexer::lex(text, file, &mut ignored);
        Doc {
            text,
            file,
            comp,
            module,
            occs,
            tokens,
        }
    }

    fn in_file(&self, s: Span) -> bool {
        s.file == self.file
    }

    fn slice(&self, s: Span) -> &str {
        self.text.get(s.range()).unwrap_or("")
    }

    /// The index of the token under `offset` (or ending right at it).
    fn token_at(&self, offset: usize) -> Option<usize> {
        self.tokens
            .iter()
            .position(|(s, _, e)| *s <= offset && offset < *e)
            .or_else(|| self.tokens.iter().position(|(_, _, e)| *e == offset))
    }

    fn is_kw(&self, i: usize, tok: Tok) -> bool {
        matches!(self.tokens.get(i), Some((_, Token::Kw(t), _)) if *t == tok)
    }

    /// `module.name` around the identifier token `i`: the module's name.
    fn module_before(&self, i: usize) -> Option<&str> {
        if i >= 2
            && self.is_kw(i - 1, Tok::Dot)
            && let (_, Token::Ident(m), _) = &self.tokens[i - 2]
        {
            return Some(m);
        }
        None
    }

    /// A declaration's text as the checker recorded it, passwords masked.
    fn decl_text(&self, def: Span) -> Option<String> {
        self.comp
            .index
            .decls
            .iter()
            .rev()
            .find(|(s, _)| *s == def)
            .map(|(_, t)| crate::diagnostics::mask_secrets(t).into_owned())
    }

    /// The innermost stage of this file around `offset` that the checker saw.
    fn stage_at(&self, offset: usize) -> Option<&crate::check::index::StageEntry> {
        let o = offset as u32;
        self.comp
            .index
            .stages
            .iter()
            .filter(|st| self.in_file(st.span) && st.span.start <= o && o <= st.span.end)
            .min_by_key(|st| st.span.end - st.span.start)
    }
}

/// Hover text (markdown) at `offset`.
pub fn hover(doc: &Doc, offset: usize) -> Option<String> {
    if let Some(i) = doc.token_at(offset)
        && let (_, Token::Ident(name), _) = &doc.tokens[i]
    {
        if let Some(m) = doc.module_before(i) {
            return module_fn(m, name).map(|(sig, text)| code(&sig) + &text);
        }
        let called = doc.is_kw(i + 1, Tok::LParen);
        let user_fn = doc.occs.iter().any(|o| o.ns == Ns::Fn && o.name == *name);
        if called && !user_fn {
            if let Some(b) = Builtin::from_name(name) {
                let sig = b.signature();
                return Some(format!(
                    "{}{}\n\nexample: `{}`",
                    code(&builtin_sig(b)),
                    sig.doc,
                    sig.example
                ));
            }
            if AggFunc::from_name(name).is_some() {
                return Some(code(&format!("{name}(…)")) + "aggregate function of `group`");
            }
        }
        if let Some(text) = name_hover(doc, offset) {
            return Some(text);
        }
    }
    let o = offset as u32;
    let e = doc
        .comp
        .index
        .exprs
        .iter()
        .filter(|e| doc.in_file(e.span) && e.span.start <= o && o <= e.span.end)
        .min_by_key(|e| e.span.end - e.span.start)?;
    Some(code(&format!("{}: {}", one_line(doc.slice(e.span)), e.ty)))
}

fn name_hover(doc: &Doc, offset: usize) -> Option<String> {
    let occ = names::at(&doc.occs, offset as u32)?;
    let def = names::same(&doc.occs, occ).find(|o| o.def);
    match occ.ns {
        Ns::Stream | Ns::Fn => {
            if let Some(t) = def.and_then(|d| doc.decl_text(d.span)) {
                return Some(code(&t));
            }
            let row = doc
                .comp
                .index
                .streams
                .iter()
                .rev()
                .find(|(s, _)| *s == occ.span)?;
            Some(code(&format!("{}: {}", occ.name, row.1)))
        }
        Ns::Schema => {
            let d = def?;
            doc.module.items.iter().find_map(|i| match i {
                ast::Item::Schema(s) if s.name.span == d.span => Some(code(doc.slice(s.span))),
                _ => None,
            })
        }
        Ns::Field => {
            let o = occ.span;
            if let Some(e) = doc.comp.index.exprs.iter().rev().find(|e| e.span == o) {
                return Some(code(&format!("field {}: {}", occ.name, e.ty)));
            }
            let st = doc.stage_at(offset)?;
            let f = st
                .output
                .as_ref()
                .and_then(|r| r.get(&occ.name))
                .or_else(|| st.input.get(&occ.name))?;
            Some(code(&format!("field {}: {}", f.name, f.ty)))
        }
    }
}

fn code(s: &str) -> String {
    format!("```flow\n{s}\n```\n")
}

fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 60 {
        s.chars().take(57).collect::<String>() + "…"
    } else {
        s
    }
}

/// `round(number) -> number`: a builtin's signature as text.
pub fn builtin_sig(b: Builtin) -> String {
    let sig = b.signature();
    let mut params: Vec<String> = sig
        .params
        .iter()
        .map(|p| match p {
            Param::Is(s) => s.name().to_string(),
            Param::Numeric => "int|float".into(),
            Param::Any => "any".into(),
            Param::AnyNullable => "any?".into(),
        })
        .collect();
    if sig.variadic
        && let Some(last) = params.last_mut()
    {
        last.push('…');
    }
    let ret = match sig.ret {
        Ret::Is(s) => s.name().to_string(),
        Ret::Nullable(s) => format!("{}?", s.name()),
        Ret::SameNumeric => "int|float".into(),
    };
    format!("{}({}) -> {ret}", b.name(), params.join(", "))
}

/// The functions of stdlib module `std.<module>`: (name, signature, doc).
pub fn module_fns(module: &str) -> Vec<(String, String, String)> {
    let Some(text) = stdlib::modules::find(&format!("std.{module}")) else {
        return vec![];
    };
    let (m, _) = syntax::parse(text, FileId(0));
    let lines: Vec<&str> = text.lines().collect();
    let mut line_of = Vec::new();
    let mut at = 0;
    for (n, l) in lines.iter().enumerate() {
        line_of.push((at, n));
        at += l.len() + 1;
    }
    m.items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Fn(f) => Some(f),
            _ => None,
        })
        .map(|f| {
            let params: Vec<String> = f
                .params
                .iter()
                .map(|p| format!("{}: {}", p.name.name, type_text(&p.ty)))
                .collect();
            let sig = format!(
                "fn {module}.{}({}) -> {}",
                f.name.name,
                params.join(", "),
                type_text(&f.ret)
            );
            let line = line_of
                .iter()
                .rev()
                .find(|(start, _)| *start <= f.span.start as usize)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            let mut doc: Vec<&str> = lines[..line]
                .iter()
                .rev()
                .take_while(|l| l.starts_with("##"))
                .map(|l| l.trim_start_matches('#').trim())
                .collect();
            doc.reverse();
            (f.name.name.clone(), sig, doc.join("\n"))
        })
        .collect()
}

fn module_fn(module: &str, name: &str) -> Option<(String, String)> {
    module_fns(module)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, sig, doc)| (sig, doc))
}

fn type_text(t: &ast::TypeExpr) -> String {
    format!("{}{}", t.name.name, if t.nullable { "?" } else { "" })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    Field,
    Keyword,
    Function,
    Stream,
    Schema,
    Module,
    Variable,
}

#[derive(Clone, Debug)]
pub struct Completion {
    pub label: String,
    pub kind: ItemKind,
    pub detail: Option<String>,
    pub doc: Option<String>,
}

fn item(label: &str, kind: ItemKind, detail: Option<String>) -> Completion {
    Completion {
        label: label.to_string(),
        kind,
        detail,
        doc: None,
    }
}

/// Completions at `offset`. `recheck` compiles a text as this file (used to type the stages
/// before the cursor when the stage being typed does not parse yet).
pub fn completion(
    doc: &Doc,
    offset: usize,
    recheck: &mut dyn FnMut(&str) -> Option<(FileId, Compilation)>,
) -> Vec<Completion> {
    let offset = offset.min(doc.text.len());
    let before = &doc.text[..offset];
    let head = before[..word_start(before)].trim_end_matches([' ', '\t']);
    if let Some(m_end) = head.strip_suffix('.') {
        let module = &m_end[word_start(m_end)..];
        return module_fns(module)
            .into_iter()
            .map(|(name, sig, d)| Completion {
                label: name,
                kind: ItemKind::Function,
                detail: Some(sig),
                doc: Some(d),
            })
            .collect();
    }
    let mut out = Vec::new();
    if let Some(row) = row_at(doc, offset, recheck) {
        for f in &row.fields {
            out.push(item(&f.name, ItemKind::Field, Some(f.ty.to_string())));
        }
    }
    // Inside a fn body: its parameters.
    for i in &doc.module.items {
        if let ast::Item::Fn(f) = i
            && f.span.start as usize <= offset
            && offset <= f.span.end as usize
        {
            for p in &f.params {
                let t = type_text(&p.ty);
                out.push(item(&p.name.name, ItemKind::Variable, Some(t)));
            }
        }
    }
    for o in doc.occs.iter().filter(|o| o.def) {
        let (kind, detail) = match o.ns {
            Ns::Stream => (ItemKind::Stream, doc.decl_text(o.span)),
            Ns::Fn => (ItemKind::Function, doc.decl_text(o.span)),
            Ns::Schema => (ItemKind::Schema, Some("schema".to_string())),
            Ns::Field => continue,
        };
        out.push(item(&o.name, kind, detail));
    }
    for i in &doc.module.items {
        if let ast::Item::Use(u) = i
            && let Some(last) = u.path.last()
        {
            let path: Vec<&str> = u.path.iter().map(|p| p.name.as_str()).collect();
            out.push(item(&last.name, ItemKind::Module, Some(path.join("."))));
        }
    }
    for b in stdlib::ALL {
        let mut c = item(b.name(), ItemKind::Function, Some(builtin_sig(*b)));
        c.doc = Some(b.signature().doc.to_string());
        out.push(c);
    }
    for a in AGGREGATES
        .iter()
        .filter(|a| AggFunc::from_name(a).is_some())
    {
        if !out.iter().any(|c| c.label == *a) {
            out.push(item(
                a,
                ItemKind::Function,
                Some("aggregate (group)".into()),
            ));
        }
    }
    for k in KEYWORDS {
        out.push(item(k, ItemKind::Keyword, None));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert((c.label.clone(), c.kind as u8)));
    out
}

/// Where the identifier that `s` ends with starts.
fn word_start(s: &str) -> usize {
    let word: usize = s
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    s.len() - word
}

/// The row type the stage at `offset` reads: the input of the stage the checker saw there, or
/// else (a stage that does not parse yet) the row before the last `|` before the cursor.
fn row_at(
    doc: &Doc,
    offset: usize,
    recheck: &mut dyn FnMut(&str) -> Option<(FileId, Compilation)>,
) -> Option<RowType> {
    let last_pipe = doc
        .tokens
        .iter()
        .rev()
        .find(|(_, t, e)| *e <= offset && *t == Token::Kw(Tok::Pipe))
        .map(|(s, _, _)| *s);
    if let Some(st) = doc.stage_at(offset)
        && last_pipe.is_some_and(|p| p < st.span.start as usize)
    {
        return Some(st.input.clone());
    }
    let cut = last_pipe?;
    let (file, comp) = recheck(&doc.text[..cut])?;
    let ix = &comp.index;
    let rows = ix
        .stages
        .iter()
        .filter_map(|s| Some((s.span, s.output.as_ref()?)))
        .chain(ix.streams.iter().map(|(s, r)| (*s, r)));
    rows.filter(|(s, _)| s.file == file && s.end as usize <= cut)
        .max_by_key(|(s, _)| (s.end, std::cmp::Reverse(s.start)))
        .map(|(_, r)| r.clone())
}

/// The definition of the name at `offset`.
pub fn definition(doc: &Doc, offset: usize) -> Option<Span> {
    let occ = names::at(&doc.occs, offset as u32)?;
    names::same(&doc.occs, occ).find(|o| o.def).map(|o| o.span)
}

/// Every occurrence of the binding at `offset` (its definition too, if `with_def`).
pub fn references(doc: &Doc, offset: usize, with_def: bool) -> Vec<Span> {
    let Some(occ) = names::at(&doc.occs, offset as u32) else {
        return vec![];
    };
    names::same(&doc.occs, occ)
        .filter(|o| with_def || !o.def)
        .map(|o| o.span)
        .collect()
}

/// The edits renaming the let, fn, source, schema or field at `offset` to `new`.
pub fn rename(doc: &Doc, offset: usize, new: &str) -> Result<Vec<(Span, String)>, String> {
    let plain = new
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && new.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain || KEYWORDS.contains(&new) {
        return Err(format!(
            "`{new}` is not a name (letters, digits and `_`, not a keyword)"
        ));
    }
    let occ = names::at(&doc.occs, offset as u32).ok_or("no name to rename here")?;
    if let Some(clash) = doc
        .occs
        .iter()
        .find(|o| o.ns == occ.ns && o.name == new && o.ns != Ns::Field)
    {
        return Err(format!("`{}` is already defined in this file", clash.name));
    }
    Ok(names::same(&doc.occs, occ)
        .map(|o| {
            let quoted = doc.slice(o.span).starts_with('`');
            let text = if quoted {
                format!("`{new}`")
            } else {
                new.to_string()
            };
            (o.span, text)
        })
        .collect())
}

/// A symbol of the outline.
pub struct Symbol {
    pub name: String,
    pub kind: ItemKind,
    pub detail: Option<String>,
    pub span: Span,
    pub name_span: Span,
    pub children: Vec<Symbol>,
}

pub fn symbols(doc: &Doc) -> Vec<Symbol> {
    let sym = |id: &ast::Ident, kind, span, detail: Option<&str>| Symbol {
        name: id.name.clone(),
        kind,
        detail: detail.map(String::from),
        span,
        name_span: id.span,
        children: vec![],
    };
    let mut out = Vec::new();
    for i in &doc.module.items {
        match i {
            ast::Item::Schema(s) => {
                let mut parent = sym(&s.name, ItemKind::Schema, s.span, None);
                for f in &s.fields {
                    let t = type_text(&f.ty);
                    let span = f.name.span.to(f.ty.span);
                    parent
                        .children
                        .push(sym(&f.name, ItemKind::Field, span, Some(&t)));
                }
                out.push(parent);
            }
            ast::Item::Source(s) => {
                let d = doc.decl_text(s.name.span);
                let d = d.as_deref();
                out.push(sym(&s.name, ItemKind::Stream, s.span, d));
            }
            ast::Item::Let(l) => {
                let d = doc.decl_text(l.name.span);
                let d = d.as_deref();
                out.push(sym(&l.name, ItemKind::Variable, l.span, d));
            }
            ast::Item::Fn(f) => {
                let d = doc.decl_text(f.name.span);
                let d = d.as_deref();
                out.push(sym(&f.name, ItemKind::Function, f.span, d));
            }
            _ => {}
        }
    }
    out
}

/// Inlay hints: the row type after each stage that checked, at the stage's end, for stages
/// ending in `start..=end`.
pub fn inlay_hints(doc: &Doc, start: usize, end: usize) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for st in &doc.comp.index.stages {
        let e = st.span.end as usize;
        if !doc.in_file(st.span) || e < start || e > end {
            continue;
        }
        if let Some(row) = &st.output
            && !out.iter().any(|(o, _)| *o == e)
        {
            out.push((e, format!("{row}")));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::Session;

    /// Every feature at many offsets of every prefix of the examples and stdlib modules (and
    /// of a copy with multi-byte characters put in): no panic, whatever is half-typed.
    #[test]
    fn features_never_panic_on_prefixes_of_real_scripts() {
        let mut scripts: Vec<(String, String)> = Vec::new();
        for dir in ["examples", "stdlib"] {
            let mut paths: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "flow"))
                .collect();
            paths.sort();
            for p in paths {
                let text = std::fs::read_to_string(&p).unwrap();
                let name = p.to_string_lossy().into_owned();
                scripts.push((
                    name.clone(),
                    text.replace(" {", " é{").replace(", ", ",😀 "),
                ));
                scripts.push((name, text));
            }
        }
        let mut checked = 0;
        for (name, text) in &scripts {
            let cuts: Vec<usize> = (0..=text.len())
                .step_by(61)
                .chain([text.len()])
                .filter(|c| text.is_char_boundary(*c))
                .collect();
            for cut in cuts {
                let prefix = &text[..cut];
                let mut s = Session::default();
                s.set_file(name, prefix);
                let comp = s.compile().clone();
                let file = FileId(0);
                let doc = Doc::new(prefix, file, &comp);
                let mut recheck = |t: &str| {
                    let mut s = Session::default();
                    s.set_file(name, t);
                    Some((FileId(0), s.compile().clone()))
                };
                for off in (0..=prefix.len())
                    .step_by(17)
                    .filter(|o| prefix.is_char_boundary(*o))
                {
                    let _ = hover(&doc, off);
                    let _ = definition(&doc, off);
                    let _ = references(&doc, off, true);
                    let _ = rename(&doc, off, "renamed");
                    checked += 1;
                }
                let _ = completion(&doc, prefix.len(), &mut recheck);
                let _ = symbols(&doc);
                let _ = inlay_hints(&doc, 0, prefix.len());
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn word_start_handles_multibyte_characters() {
        assert_eq!(word_start("é abc"), 3);
        assert_eq!(word_start("😀x_1"), 4);
        assert_eq!(word_start("é"), 2);
    }
}
