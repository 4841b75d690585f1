//! `flow fmt`: one canonical layout for a script. The AST (with the lexer's comments) becomes a
//! [`doc::Doc`], rendered in [`WIDTH`] columns: a group (a pipeline, a map, an argument list,
//! an `if`) is on one line when it fits and otherwise breaks every one of its lines. Literals
//! and names are printed as written; parentheses only where precedence needs them.
//!
//! Comments are re-inserted: a comment on its own line goes before the item, stage, field,
//! argument or parameter it precedes; a comment after code on a line stays at the end of that
//! line (and keeps its group broken). A comment inside an expression moves before the next
//! such element. Blank lines between items are kept (at most one).

pub mod doc;

use crate::diagnostics::Diagnostic;
use crate::span::{FileId, Span};
use crate::syntax::ast::*;
use doc::{Doc, concat, group, if_break, nest, text};

/// The line width.
pub const WIDTH: usize = 100;

/// Why a script was not formatted.
#[derive(Debug)]
pub enum FmtError {
    /// It does not parse cleanly (the diagnostics, with errors among them).
    Syntax(Vec<Diagnostic>),
    /// The formatted text would not parse to the same program (a bug in the formatter); the
    /// file is left alone.
    Changed(String),
}

/// The canonical layout of `source` (the text of file `file`).
pub fn format(source: &str, file: FileId) -> Result<String, FmtError> {
    let (module, diags, comments) = crate::syntax::parse_with_comments(source, file);
    if diags.iter().any(Diagnostic::is_error)
        || module.items.iter().any(|i| matches!(i, Item::Error(_)))
    {
        return Err(FmtError::Syntax(diags));
    }
    let mut f = Formatter {
        src: source,
        used: vec![false; comments.len()],
        comments,
    };
    let d = f.module(&module);
    let out = doc::render(&d, WIDTH);
    let out = out.trim_end();
    let out = if out.is_empty() {
        String::new()
    } else {
        format!("{out}\n")
    };
    // The guard: the output must be the same program, with every comment.
    let (again, diags2) = crate::syntax::parse(&out, file);
    if diags2.iter().any(Diagnostic::is_error)
        || crate::syntax::dump::module(&again) != crate::syntax::dump::module(&module)
    {
        return Err(FmtError::Changed(
            "the formatted text would parse differently; the file is left unchanged".into(),
        ));
    }
    Ok(out)
}

struct Formatter<'a> {
    src: &'a str,
    comments: Vec<(usize, usize)>,
    used: Vec<bool>,
}

fn start(s: Span) -> usize {
    s.start as usize
}

fn end(s: Span) -> usize {
    s.end as usize
}

/// An element of a delimited list: where it starts and ends in the source, and how to build
/// its document (built in order, after the comments before it are placed).
struct Elem<'e, 's> {
    start: usize,
    end: usize,
    doc: Box<dyn FnOnce(&mut Formatter<'s>) -> Doc + 'e>,
}

/// `name: type`, a schema field or a fn parameter.
fn typed<'e, 's>(name: &'e Ident, ty: &'e TypeExpr) -> Elem<'e, 's> {
    Elem {
        start: start(name.span),
        end: end(ty.span),
        doc: Box::new(move |me: &mut Formatter<'s>| {
            concat([me.ident(name), text(": "), me.ty(ty)])
        }),
    }
}

/// Binding strength: higher binds tighter.
fn prec(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary(op, ..) => op_prec(*op),
        ExprKind::Unary(..) => 7,
        _ => 8,
    }
}

fn op_prec(op: BinaryOp) -> u8 {
    use BinaryOp::*;
    match op {
        Or => 1,
        And => 2,
        Eq | Ne | Lt | Le | Gt | Ge => 3,
        Coalesce => 4,
        Add | Sub => 5,
        Mul | Div | Rem => 6,
    }
}

fn newlines(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'\n').count()
}

impl<'s> Formatter<'s> {
    fn slice(&self, s: Span) -> Option<&str> {
        self.src.get(start(s)..end(s))
    }

    fn comment(&self, i: usize) -> Doc {
        let (a, b) = self.comments[i];
        text(self.src.get(a..b).unwrap_or("#").trim_end())
    }

    /// Every comment not yet placed that starts before `pos`, each on its own line.
    fn leading(&mut self, pos: usize) -> Doc {
        let mut parts = Vec::new();
        for i in 0..self.comments.len() {
            if !self.used[i] && self.comments[i].0 < pos {
                self.used[i] = true;
                parts.push(self.comment(i));
                parts.push(Doc::HardLine);
            }
        }
        concat(parts)
    }

    /// The comment after `pos` on the same line (only spaces and commas between), if any.
    fn trailing(&mut self, pos: usize) -> Doc {
        for i in 0..self.comments.len() {
            let (a, _) = self.comments[i];
            if self.used[i] || a < pos {
                continue;
            }
            let gap = self.src.get(pos..a).unwrap_or("\n");
            if gap.chars().all(|c| c == ' ' || c == '\t' || c == ',') {
                self.used[i] = true;
                return concat([text(" "), self.comment(i), Doc::BreakParent]);
            }
            break;
        }
        concat([])
    }

    /// Where the next code after `pos` starts (past spaces, commas and comments).
    fn next_code(&self, mut pos: usize) -> usize {
        let bytes = self.src.as_bytes();
        while pos < bytes.len() {
            match bytes[pos] {
                b' ' | b'\t' | b'\r' | b'\n' | b',' => pos += 1,
                b'#' => {
                    pos = self.src[pos..]
                        .find('\n')
                        .map_or(self.src.len(), |i| pos + i)
                }
                _ => break,
            }
        }
        pos
    }

    fn ident(&self, i: &Ident) -> Doc {
        // As written: a back-quoted name keeps its quotes.
        text(self.slice(i.span).unwrap_or(&i.name))
    }

    fn module(&mut self, m: &Module) -> Doc {
        let mut parts = Vec::new();
        let mut last: Option<usize> = None;
        for item in &m.items {
            let span = item_span(item);
            self.top_comments(&mut parts, &mut last, start(span));
            self.blank(&mut parts, last, start(span));
            parts.push(self.item(item));
            parts.push(self.trailing(end(span)));
            parts.push(Doc::HardLine);
            last = Some(end(span).max(last.unwrap_or(0)));
        }
        self.top_comments(&mut parts, &mut last, usize::MAX);
        concat(parts)
    }

    /// A blank line before what starts at `pos` if the source has one there.
    fn blank(&self, parts: &mut Vec<Doc>, last: Option<usize>, pos: usize) {
        if let Some(l) = last
            && l <= pos
            && newlines(self.src.get(l..pos).unwrap_or("")) >= 2
        {
            parts.push(Doc::HardLine);
        }
    }

    /// Comments at the top level before `pos`, keeping blank lines between them.
    fn top_comments(&mut self, parts: &mut Vec<Doc>, last: &mut Option<usize>, pos: usize) {
        for i in 0..self.comments.len() {
            let (a, b) = self.comments[i];
            if self.used[i] || a >= pos {
                continue;
            }
            self.used[i] = true;
            self.blank(parts, *last, a);
            parts.push(self.comment(i));
            parts.push(Doc::HardLine);
            *last = Some(b.max(last.unwrap_or(0)));
        }
    }

    fn item(&mut self, item: &Item) -> Doc {
        match item {
            Item::Mode(m) => {
                let mut parts = vec![text("mode "), self.ident(&m.kind)];
                if !m.args.is_empty() {
                    parts.push(self.args(&m.args));
                }
                concat(parts)
            }
            Item::Use(u) => {
                let mut parts = vec![text("use ")];
                for (i, p) in u.path.iter().enumerate() {
                    if i > 0 {
                        parts.push(text("."));
                    }
                    parts.push(self.ident(p));
                }
                concat(parts)
            }
            Item::Schema(s) => {
                let fields = s.fields.iter().map(|f| typed(&f.name, &f.ty)).collect();
                concat([
                    text("schema "),
                    self.ident(&s.name),
                    text(" "),
                    self.braced(fields),
                ])
            }
            Item::Source(s) => {
                let mut parts = vec![text("source "), self.ident(&s.name)];
                if let Some(schema) = &s.schema {
                    parts.push(text(": "));
                    parts.push(self.ident(schema));
                }
                parts.push(text(" = "));
                parts.push(self.connector(&s.connector));
                concat(parts)
            }
            Item::Fn(f) => {
                let params = f.params.iter().map(|p| typed(&p.name, &p.ty)).collect();
                let params = self.parens(params);
                let body = self.expr(&f.body);
                concat([
                    text("fn "),
                    self.ident(&f.name),
                    params,
                    text(" -> "),
                    self.ty(&f.ret),
                    text(" ="),
                    group(nest(2, concat([Doc::Line, body]))),
                ])
            }
            Item::Let(l) => concat([
                text("let "),
                self.ident(&l.name),
                text(" = "),
                self.pipeline(&l.pipeline),
            ]),
            Item::Pipeline(p) => self.pipeline(p),
            Item::Test(t) => self.test(t),
            // Never reached: a module with an error item is not formatted.
            Item::Error(e) => text(self.slice(e.span).unwrap_or("")),
        }
    }

    /// `test "name" {`, each clause on its own line, each row on its own line in its clause.
    fn test(&mut self, t: &TestDecl) -> Doc {
        let mut clauses = Vec::new();
        for c in &t.clauses {
            clauses.push(Doc::HardLine);
            clauses.push(self.leading(start(c.span)));
            let target = match &c.target {
                TestTarget::Stream(i) => self.ident(i),
                TestTarget::Sink(_, sp) => {
                    concat([text("sink "), text(self.slice(*sp).unwrap_or("\"\""))])
                }
            };
            let mut head = vec![self.ident(&c.word), text(" "), target];
            if let Some(o) = &c.ordered {
                head.push(text(" "));
                head.push(self.ident(o));
            }
            clauses.push(concat(head));
            if c.rows.is_empty() {
                clauses.push(text(" {}"));
                continue;
            }
            let mut rows = Vec::new();
            for r in &c.rows {
                rows.push(Doc::HardLine);
                rows.push(self.leading(start(r.span)));
                // A row stays on one line, however long: the rows read as a table.
                let mut row = vec![text("{ ")];
                for (i, (n, e)) in r.fields.iter().enumerate() {
                    if i > 0 {
                        row.push(text(", "));
                    }
                    row.push(self.ident(n));
                    row.push(text(": "));
                    row.push(self.expr(e));
                }
                row.push(text(if r.fields.is_empty() { "}" } else { " }" }));
                rows.push(concat(row));
                rows.push(text(","));
            }
            clauses.push(concat([
                text(" {"),
                nest(2, concat(rows)),
                Doc::HardLine,
                text("}"),
            ]));
        }
        concat([
            self.ident(&t.keyword),
            text(" "),
            text(self.slice(t.name_span).unwrap_or("\"\"")),
            text(" {"),
            nest(2, concat(clauses)),
            Doc::HardLine,
            text("}"),
        ])
    }

    fn ty(&self, t: &TypeExpr) -> Doc {
        concat([self.ident(&t.name), text(if t.nullable { "?" } else { "" })])
    }

    /// `{ a, b }`, or one element per line (with a trailing comma) when it does not fit.
    fn braced(&mut self, elems: Vec<Elem<'_, 's>>) -> Doc {
        self.delimited(elems, "{", "}", || Doc::Line)
    }

    /// `(a, b)`, or one element per line (with a trailing comma) when it does not fit.
    fn parens(&mut self, elems: Vec<Elem<'_, 's>>) -> Doc {
        self.delimited(elems, "(", ")", || Doc::SoftLine)
    }

    /// The elements between `open` and `close`, with `edge` inside each delimiter.
    fn delimited(
        &mut self,
        elems: Vec<Elem<'_, 's>>,
        open: &str,
        close: &str,
        edge: fn() -> Doc,
    ) -> Doc {
        if elems.is_empty() {
            return text(format!("{open}{close}"));
        }
        let last = elems.last().map_or(0, |e| e.end);
        let mut inner = vec![edge(), self.elems(elems)];
        // Comments on their own lines after the last element stay inside the delimiters.
        let close_at = self.next_code(last);
        if self.src[close_at..].starts_with(close) {
            for i in 0..self.comments.len() {
                if !self.used[i] && self.comments[i].0 < close_at {
                    self.used[i] = true;
                    inner.push(Doc::HardLine);
                    inner.push(self.comment(i));
                }
            }
        }
        group(concat([
            text(open),
            nest(2, concat(inner)),
            edge(),
            text(close),
        ]))
    }

    fn elems(&mut self, elems: Vec<Elem<'_, 's>>) -> Doc {
        let n = elems.len();
        let mut parts = Vec::new();
        for (i, e) in elems.into_iter().enumerate() {
            parts.push(self.leading(e.start));
            parts.push((e.doc)(self));
            parts.push(if i + 1 < n {
                text(",")
            } else {
                if_break(text(","), text(""))
            });
            parts.push(self.trailing(e.end));
            if i + 1 < n {
                parts.push(Doc::Line);
            }
        }
        concat(parts)
    }

    fn args(&mut self, args: &[Arg]) -> Doc {
        let elems = args
            .iter()
            .map(|a| Elem {
                start: start(a.span),
                end: end(a.span),
                doc: Box::new(move |me: &mut Formatter| match &a.name {
                    Some(n) => concat([me.ident(n), text(": "), me.expr(&a.value)]),
                    None => me.expr(&a.value),
                }),
            })
            .collect();
        self.parens(elems)
    }

    fn connector(&mut self, c: &ConnectorCall) -> Doc {
        concat([self.ident(&c.name), self.args(&c.args)])
    }

    fn pipeline(&mut self, p: &Pipeline) -> Doc {
        let mut stages = Vec::new();
        stages.push(self.trailing(end(p.head.span)));
        if p.stages.len() >= 3 {
            stages.push(Doc::BreakParent);
        }
        for s in &p.stages {
            stages.push(Doc::Line);
            stages.push(self.leading(start(s.span)));
            stages.push(text("| "));
            stages.push(self.stage(s));
            stages.push(self.trailing(end(s.span)));
        }
        group(concat([self.ident(&p.head), nest(2, concat(stages))]))
    }

    fn map_items(&mut self, items: &[MapItem]) -> Doc {
        let elems = items
            .iter()
            .map(|it| match it {
                MapItem::Star(s) => Elem {
                    start: start(*s),
                    end: end(*s),
                    doc: Box::new(|_: &mut Formatter| text("*")),
                },
                MapItem::Field(i) => Elem {
                    start: start(i.span),
                    end: end(i.span),
                    doc: Box::new(move |me: &mut Formatter| me.ident(i)),
                },
                MapItem::Named(n, e) => Elem {
                    start: start(n.span),
                    end: end(e.span),
                    doc: Box::new(move |me: &mut Formatter| {
                        concat([me.ident(n), text(": "), me.expr(e)])
                    }),
                },
            })
            .collect();
        self.braced(elems)
    }

    fn names(&self, names: &[Ident]) -> Doc {
        let mut parts = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                parts.push(text(", "));
            }
            parts.push(self.ident(n));
        }
        concat(parts)
    }

    fn stage(&mut self, s: &Stage) -> Doc {
        let mut parts = vec![match &s.kind {
            StageKind::Filter(e) => concat([text("filter "), self.expr(e)]),
            StageKind::Map(items) => concat([text("map "), self.map_items(items)]),
            StageKind::Group(keys, items) => {
                let keys = if keys.is_empty() {
                    text("")
                } else {
                    concat([self.names(keys), text(" ")])
                };
                concat([text("group "), keys, self.map_items(items)])
            }
            StageKind::Union(names) => concat([text("union "), self.names(names)]),
            StageKind::Limit(e) => concat([text("limit "), self.expr(e)]),
            StageKind::Sort(keys) => {
                let mut parts = vec![text("sort ")];
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        parts.push(text(", "));
                    }
                    parts.push(self.expr(&k.expr));
                    if let Some(d) = &k.dir {
                        parts.push(text(" "));
                        parts.push(self.ident(d));
                    }
                }
                concat(parts)
            }
            StageKind::Distinct(keys) if keys.is_empty() => text("distinct"),
            StageKind::Distinct(keys) => concat([text("distinct "), self.names(keys)]),
            StageKind::Join(j) => {
                let mut parts = Vec::new();
                if let Some(k) = &j.kind {
                    parts.push(self.ident(k));
                    parts.push(text(" "));
                }
                parts.push(text("join "));
                parts.push(self.ident(&j.right));
                parts.push(text(" "));
                parts.push(self.ident(&j.on));
                for (n, (a, b)) in j.keys.iter().enumerate() {
                    parts.push(text(if n == 0 { " " } else { " && " }));
                    parts.push(self.ident(a));
                    parts.push(text(" == "));
                    parts.push(self.ident(b));
                }
                parts.push(text(" { "));
                for (n, f) in j.fields.iter().enumerate() {
                    if n > 0 {
                        parts.push(text(", "));
                    }
                    if f.name.name != f.field.name {
                        parts.push(self.ident(&f.name));
                        parts.push(text(": "));
                    }
                    parts.push(self.ident(&f.field));
                }
                parts.push(text(" }"));
                concat(parts)
            }
            StageKind::Sink(c) => concat([text("sink "), self.connector(c)]),
        }];
        for h in &s.hints {
            parts.push(text(" @"));
            parts.push(self.ident(&h.name));
            if !h.args.is_empty() {
                parts.push(self.args(&h.args));
            }
        }
        concat(parts)
    }

    /// `e`, in parentheses if it binds less tightly than `min`.
    /// An `if` as an operand is always parenthesised, for the reader.
    fn operand(&mut self, e: &Expr, min: u8) -> Doc {
        let d = self.expr(e);
        if prec(e) < min || matches!(e.kind, ExprKind::If(..)) {
            concat([text("("), d, text(")")])
        } else {
            d
        }
    }

    fn expr(&mut self, e: &Expr) -> Doc {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_) => {
                text(self.slice(e.span).unwrap_or(""))
            }
            ExprKind::Bool(b) => text(if *b { "true" } else { "false" }),
            ExprKind::Null => text("null"),
            ExprKind::Name(i) => self.ident(i),
            ExprKind::Call { module, name, args } => {
                let mut parts = Vec::new();
                if let Some(m) = module {
                    parts.push(self.ident(m));
                    parts.push(text("."));
                }
                parts.push(self.ident(name));
                parts.push(self.args(args));
                concat(parts)
            }
            ExprKind::Unary(op, a) => {
                let sign = match op {
                    UnaryOp::Neg => "-",
                    UnaryOp::Not => "!",
                };
                // `--x` would read as a comment habit; `-(-x)` is the same tree.
                let min =
                    if *op == UnaryOp::Neg && matches!(a.kind, ExprKind::Unary(UnaryOp::Neg, _)) {
                        8
                    } else {
                        7
                    };
                concat([text(sign), self.operand(a, min)])
            }
            ExprKind::Binary(op, ..) => self.binary(e, *op),
            ExprKind::If(..) => self.if_chain(e),
            ExprKind::Error => text(""),
        }
    }

    /// A chain of one left-associative precedence level (`a + b - c`) breaks before every
    /// operator; comparisons and `??` are single operations.
    fn binary(&mut self, e: &Expr, op: BinaryOp) -> Doc {
        let p = op_prec(op);
        let (left_min, right_min) = match op_prec(op) {
            3 => (4, 4),
            4 => (5, 4),
            _ => (p, p + 1),
        };
        // A long `&&`/`||` chain the parser rebalanced prints as the flat chain it was.
        if matches!(op, BinaryOp::And | BinaryOp::Or) {
            let mut leaves = Vec::new();
            chain_leaves(e, op, &mut leaves);
            if leaves.len() > crate::syntax::depth::REBALANCE_OVER
                && balanced_shape(e, op, leaves.len())
            {
                let mut rest = Vec::new();
                let mut leaves = leaves.into_iter();
                let first = leaves.next().map(|l| self.operand(l, p + 1));
                for l in leaves {
                    rest.push(Doc::Line);
                    rest.push(text(format!("{} ", op.symbol())));
                    rest.push(self.operand(l, p + 1));
                }
                return group(concat([first.unwrap_or(text("")), nest(2, concat(rest))]));
            }
        }
        // Collect the chain: its leftmost operand, then (operator, right operand) pairs.
        let mut rights = Vec::new();
        let mut cur = e;
        while let ExprKind::Binary(o, l, r) = &cur.kind
            && op_prec(*o) == p
            && (rights.is_empty() || p != 3 && p != 4)
        {
            rights.push((*o, &**r));
            cur = l;
        }
        let first = self.operand(cur, left_min);
        let mut rest = Vec::new();
        for (o, r) in rights.into_iter().rev() {
            rest.push(Doc::Line);
            rest.push(text(format!("{} ", o.symbol())));
            rest.push(self.operand(r, right_min));
        }
        group(concat([first, nest(2, concat(rest))]))
    }

    /// `if c { a } else if d { b } else { c }`, or broken with each branch on its own lines.
    fn if_chain(&mut self, e: &Expr) -> Doc {
        let mut parts = Vec::new();
        let mut cur = e;
        let mut first = true;
        while let ExprKind::If(c, t, f) = &cur.kind {
            parts.push(text(if first { "if " } else { " else if " }));
            first = false;
            parts.push(self.operand(c, 0));
            parts.push(text(" {"));
            let t = self.expr(t);
            parts.push(nest(2, concat([Doc::Line, t])));
            parts.push(Doc::Line);
            parts.push(text("}"));
            cur = f;
        }
        parts.push(text(" else {"));
        let f = self.expr(cur);
        parts.push(nest(2, concat([Doc::Line, f])));
        parts.push(Doc::Line);
        parts.push(text("}"));
        group(concat(parts))
    }
}

/// The operands of the `op` chain `e`, through both sides, left to right (iterative: chains
/// may be long).
fn chain_leaves<'e>(e: &'e Expr, op: BinaryOp, out: &mut Vec<&'e Expr>) {
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match &e.kind {
            ExprKind::Binary(o, a, b) if *o == op => {
                stack.push(b);
                stack.push(a);
            }
            _ => out.push(e),
        }
    }
}

/// Is `e` exactly the balanced tree of `n` operands that `syntax::depth` builds from a long
/// chain (the left half at least as large as the right)?
fn balanced_shape(e: &Expr, op: BinaryOp, n: usize) -> bool {
    match &e.kind {
        ExprKind::Binary(o, a, b) if *o == op => {
            let left = n.div_ceil(2);
            n > 1 && balanced_shape(a, op, left) && balanced_shape(b, op, n - left)
        }
        _ => n == 1,
    }
}

fn item_span(item: &Item) -> Span {
    match item {
        Item::Mode(m) => m.span,
        Item::Use(u) => u.span,
        Item::Schema(s) => s.span,
        Item::Source(s) => s.span,
        Item::Fn(f) => f.span,
        Item::Let(l) => l.span,
        Item::Pipeline(p) => p.span,
        Item::Test(t) => t.span,
        Item::Error(e) => e.span,
    }
}
