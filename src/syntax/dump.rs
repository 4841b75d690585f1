//! A readable, span-free dump of a parsed `Module`, for the data-driven syntax tests
//! (`tests/syntax/*.flow`). One item per unindented line, its parts indented below it; every
//! binary and unary expression is parenthesised, so precedence and associativity are visible:
//! `a + b * c` dumps as `(a + (b * c))`.

use super::ast::*;
use std::fmt::Write;

/// The dump of every item of `m`, in order.
pub fn module(m: &Module) -> String {
    let mut out = String::new();
    for item in &m.items {
        self::item(&mut out, item);
    }
    out
}

fn line(out: &mut String, depth: usize, text: &str) {
    let _ = writeln!(out, "{:width$}{text}", "", width = depth * 2);
}

fn ty(t: &TypeExpr) -> String {
    format!("{}{}", t.name.name, if t.nullable { "?" } else { "" })
}

fn item(out: &mut String, item: &Item) {
    match item {
        Item::Mode(m) => {
            line(out, 0, &format!("mode {}", m.kind.name));
            for a in &m.args {
                line(out, 1, &arg(a));
            }
        }
        Item::Use(u) => {
            let path: Vec<&str> = u.path.iter().map(|i| i.name.as_str()).collect();
            line(out, 0, &format!("use {}", path.join(".")));
        }
        Item::Schema(s) => {
            line(out, 0, &format!("schema {}", s.name.name));
            for f in &s.fields {
                line(out, 1, &format!("{}: {}", f.name.name, ty(&f.ty)));
            }
        }
        Item::Source(s) => {
            let schema = s
                .schema
                .as_ref()
                .map(|i| format!(": {}", i.name))
                .unwrap_or_default();
            let head = format!("source {}{schema} = {}", s.name.name, s.connector.name.name);
            connector_args(out, 0, &head, &s.connector);
        }
        Item::Fn(f) => {
            let params: Vec<String> = f
                .params
                .iter()
                .map(|p| format!("{}: {}", p.name.name, ty(&p.ty)))
                .collect();
            line(
                out,
                0,
                &format!(
                    "fn {}({}) -> {}",
                    f.name.name,
                    params.join(", "),
                    ty(&f.ret)
                ),
            );
            line(out, 1, &format!("= {}", expr(&f.body)));
        }
        Item::Let(l) => {
            line(out, 0, &format!("let {}", l.name.name));
            pipeline(out, 1, &l.pipeline);
        }
        Item::Pipeline(p) => {
            line(out, 0, "pipeline");
            pipeline(out, 1, p);
        }
        Item::Test(t) => {
            line(out, 0, &format!("test {:?}", t.name));
            for c in &t.clauses {
                let target = match &c.target {
                    TestTarget::Stream(i) => i.name.clone(),
                    TestTarget::Sink(p, _) => format!("sink {p:?}"),
                };
                let ordered = if c.ordered.is_some() { " ordered" } else { "" };
                line(out, 1, &format!("{} {target}{ordered}", c.word.name));
                for r in &c.rows {
                    line(out, 2, "row");
                    for (name, value) in &r.fields {
                        line(out, 3, &format!("{}: {}", name.name, expr(value)));
                    }
                }
            }
        }
        Item::Error(e) => match &e.declares {
            Some((kind, name)) => line(out, 0, &format!("error (declares {kind:?} {})", name.name)),
            None => line(out, 0, "error"),
        },
    }
}

/// `head` (which names the connector), then the connector's arguments one per line below it.
fn connector_args(out: &mut String, depth: usize, head: &str, c: &ConnectorCall) {
    line(out, depth, head);
    for a in &c.args {
        line(out, depth + 2, &arg(a));
    }
}

fn pipeline(out: &mut String, depth: usize, p: &Pipeline) {
    line(out, depth, &format!("from {}", p.head.name));
    for s in &p.stages {
        stage(out, depth, s);
    }
}

fn join_text(j: &JoinStage) -> String {
    let kind = j
        .kind
        .as_ref()
        .map(|k| format!("{} ", k.name))
        .unwrap_or_default();
    let keys: Vec<String> = j
        .keys
        .iter()
        .map(|(a, b)| format!("{} == {}", a.name, b.name))
        .collect();
    let fields: Vec<String> = j
        .fields
        .iter()
        .map(|f| {
            if f.name.name == f.field.name {
                f.name.name.clone()
            } else {
                format!("{}: {}", f.name.name, f.field.name)
            }
        })
        .collect();
    format!(
        "| {kind}join {} {} {} {{ {} }}",
        j.right.name,
        j.on.name,
        keys.join(" && "),
        fields.join(", ")
    )
}

fn names(ids: &[Ident]) -> String {
    ids.iter()
        .map(|i| i.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn stage(out: &mut String, depth: usize, s: &Stage) {
    match &s.kind {
        StageKind::Filter(e) => line(out, depth, &format!("| filter {}", expr(e))),
        StageKind::Map(items) => {
            line(out, depth, "| map");
            map_items(out, depth + 2, items);
        }
        StageKind::Group(keys, items) => {
            line(out, depth, &format!("| group {}", names(keys)));
            map_items(out, depth + 2, items);
        }
        StageKind::Union(inputs) => line(out, depth, &format!("| union {}", names(inputs))),
        StageKind::Limit(e) => line(out, depth, &format!("| limit {}", expr(e))),
        StageKind::Sort(keys) => {
            let keys: Vec<String> = keys
                .iter()
                .map(|k| match &k.dir {
                    Some(d) => format!("{} {}", expr(&k.expr), d.name),
                    None => expr(&k.expr),
                })
                .collect();
            line(out, depth, &format!("| sort {}", keys.join(", ")))
        }
        StageKind::Distinct(keys) if keys.is_empty() => line(out, depth, "| distinct"),
        StageKind::Distinct(keys) => line(out, depth, &format!("| distinct {}", names(keys))),
        StageKind::Join(j) => line(out, depth, &join_text(j)),
        StageKind::Sink(c) => {
            connector_args(out, depth, &format!("| sink {}", c.name.name), c);
        }
    }
    for h in &s.hints {
        let args = if h.args.is_empty() {
            String::new()
        } else {
            format!("({})", args(&h.args))
        };
        line(out, depth + 2, &format!("@{}{args}", h.name.name));
    }
}

fn map_items(out: &mut String, depth: usize, items: &[MapItem]) {
    for i in items {
        match i {
            MapItem::Star(_) => line(out, depth, "*"),
            MapItem::Field(f) => line(out, depth, &f.name),
            MapItem::Named(n, e) => line(out, depth, &format!("{}: {}", n.name, expr(e))),
        }
    }
}

fn arg(a: &Arg) -> String {
    match &a.name {
        Some(n) => format!("{}: {}", n.name, expr(&a.value)),
        None => expr(&a.value),
    }
}

fn args(a: &[Arg]) -> String {
    a.iter().map(arg).collect::<Vec<_>>().join(", ")
}

/// One expression on one line, every operator application in parentheses.
pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(i) => i.to_string(),
        ExprKind::Float(x) => format!("{x:?}"),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Null => "null".into(),
        ExprKind::Name(n) => n.name.clone(),
        ExprKind::Call { module, name, args } => {
            let module = module
                .as_ref()
                .map(|m| format!("{}.", m.name))
                .unwrap_or_default();
            format!("{module}{}({})", name.name, self::args(args))
        }
        ExprKind::Unary(op, x) => {
            let op = match op {
                UnaryOp::Neg => "-",
                UnaryOp::Not => "!",
            };
            format!("({op}{})", expr(x))
        }
        ExprKind::Binary(op, a, b) => format!("({} {} {})", expr(a), op.symbol(), expr(b)),
        ExprKind::If(c, t, f) => {
            format!("(if {} {{ {} }} else {{ {} }})", expr(c), expr(t), expr(f))
        }
        ExprKind::Error => "<error>".into(),
    }
}
