//! Names of one file, read from its AST: every definition and use of a schema, a stream (source
//! or let), a fn and a field, for go to definition, references, rename and document symbols.
//! Streams, fns and schemas are unique per file (a second definition is an error), so a name
//! and its namespace identify the binding; fields are matched by name across the file.

use crate::span::Span;
use crate::syntax::ast::{self, ExprKind, Item, MapItem, StageKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    Schema,
    Stream,
    Fn,
    Field,
}

#[derive(Clone, Debug)]
pub struct Occ {
    pub ns: Ns,
    pub name: String,
    pub span: Span,
    pub def: bool,
}

/// Every occurrence of a name in the module, in source order.
pub fn occurrences(module: &ast::Module) -> Vec<Occ> {
    let fns: Vec<&str> = module
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Fn(f) => Some(f.name.name.as_str()),
            _ => None,
        })
        .collect();
    let mut w = Walker { out: vec![], fns };
    for item in &module.items {
        match item {
            Item::Schema(s) => {
                w.push(Ns::Schema, &s.name, true);
                for f in &s.fields {
                    w.push(Ns::Field, &f.name, true);
                }
            }
            Item::Source(s) => {
                w.push(Ns::Stream, &s.name, true);
                if let Some(schema) = &s.schema {
                    w.push(Ns::Schema, schema, false);
                }
            }
            Item::Fn(f) => {
                w.push(Ns::Fn, &f.name, true);
                // Names in a body are its parameters, not fields.
                w.expr(&f.body, false);
            }
            Item::Let(l) => {
                w.push(Ns::Stream, &l.name, true);
                w.pipeline(&l.pipeline);
            }
            Item::Pipeline(p) => w.pipeline(p),
            Item::Test(t) => {
                // `given NAME` / `expect NAME` are uses of a source or let.
                for c in &t.clauses {
                    if let ast::TestTarget::Stream(name) = &c.target {
                        w.push(Ns::Stream, name, false);
                    }
                }
            }
            Item::Mode(_) | Item::Use(_) | Item::Error(_) => {}
        }
    }
    w.out.sort_by_key(|o| o.span.start);
    w.out
}

struct Walker<'m> {
    out: Vec<Occ>,
    fns: Vec<&'m str>,
}

impl Walker<'_> {
    fn push(&mut self, ns: Ns, id: &ast::Ident, def: bool) {
        self.out.push(Occ {
            ns,
            name: id.name.clone(),
            span: id.span,
            def,
        });
    }

    fn pipeline(&mut self, p: &ast::Pipeline) {
        self.push(Ns::Stream, &p.head, false);
        for stage in &p.stages {
            match &stage.kind {
                StageKind::Filter(e) | StageKind::Limit(e) => self.expr(e, true),
                StageKind::Map(items) => self.items(items),
                StageKind::Group(keys, items) => {
                    for k in keys {
                        self.push(Ns::Field, k, false);
                    }
                    self.items(items);
                }
                StageKind::Union(names) => {
                    for n in names {
                        self.push(Ns::Stream, n, false);
                    }
                }
                StageKind::Sort(keys) => {
                    for k in keys {
                        self.expr(&k.expr, true);
                    }
                }
                StageKind::Distinct(keys) => {
                    for k in keys {
                        self.push(Ns::Field, k, false);
                    }
                }
                StageKind::Join(j) => {
                    // The right-hand key and fields name another stream's columns: only the
                    // stream and the left keys are names of this scope.
                    self.push(Ns::Stream, &j.right, false);
                    for (k, _) in &j.keys {
                        self.push(Ns::Field, k, false);
                    }
                }
                StageKind::Sink(_) => {}
            }
        }
    }

    fn items(&mut self, items: &[MapItem]) {
        for item in items {
            match item {
                MapItem::Star(_) => {}
                MapItem::Field(id) => self.push(Ns::Field, id, false),
                MapItem::Named(id, e) => {
                    self.push(Ns::Field, id, true);
                    self.expr(e, true);
                }
            }
        }
    }

    /// Iterative (expressions may be deep).
    fn expr(&mut self, e: &ast::Expr, fields: bool) {
        let mut stack = vec![e];
        while let Some(e) = stack.pop() {
            match &e.kind {
                ExprKind::Name(id) if fields => self.push(Ns::Field, id, false),
                ExprKind::Call { module, name, args } => {
                    if module.is_none() && self.fns.contains(&name.name.as_str()) {
                        self.push(Ns::Fn, name, false);
                    }
                    stack.extend(args.iter().map(|a| &a.value));
                }
                ExprKind::Unary(_, a) => stack.push(a),
                ExprKind::Binary(_, a, b) => stack.extend([&**a, &**b]),
                ExprKind::If(c, t, f) => stack.extend([&**c, &**t, &**f]),
                _ => {}
            }
        }
    }
}

/// The occurrence under `offset` (an identifier's span touches it).
pub fn at(occs: &[Occ], offset: u32) -> Option<&Occ> {
    occs.iter()
        .find(|o| o.span.start <= offset && offset < o.span.end)
        .or_else(|| occs.iter().find(|o| o.span.end == offset))
}

/// All occurrences of the binding of `target`.
pub fn same<'a>(occs: &'a [Occ], target: &Occ) -> impl Iterator<Item = &'a Occ> {
    let (ns, name) = (target.ns, target.name.clone());
    occs.iter().filter(move |o| o.ns == ns && o.name == name)
}
