//! The nesting limit of expressions, applied right after a statement is parsed, so that no later
//! pass (checker, planner, folder, JIT, interpreter, explain — all recursive over expressions)
//! ever sees a tree deeper than [`MAX_DEPTH`].
//!
//! Long `&&` / `||` chains (`a == 0 || a == 1 || … || a == 4199`, the usual generated "in list")
//! are left-deep trees as parsed; they are rebalanced first, which keeps their meaning (both
//! operators are associative, and short-circuit evaluation still visits the operands left to
//! right), so such chains of any length are accepted. Other chains (`+`, `-`, `??`, comparisons)
//! are not associative in flow (int overflow is a row error, floats round, int widens to float),
//! so they count one level per operator, like any other nesting.
//!
//! Everything here is iterative: a too-deep tree must not overflow the stack while it is
//! measured or reported (and `ast::Expr` drops iteratively).

use super::ast::{self, BinaryOp, Expr, ExprKind, Item, MapItem, StageKind};
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;

/// The deepest expression accepted, in levels of nesting (`a` is 0 deep, `-a` 1, `-(a + b)` 2):
/// unary operators, binary operators (a chain of `n` terms is `n - 1` levels deep, except
/// `&&`/`||`), `if`s and call arguments; parentheses do not count. Documented in docs/LANGUAGE.md. The same limit applies after `fn`s are inlined (a
/// small margin for the conversions the checker inserts: see `check::expr`).
pub const MAX_DEPTH: usize = 1000;

/// The most stages a stream may have on any path from a source to a sink, counting the stages
/// of the `let`s it uses.
pub const MAX_STAGES: usize = 1000;

/// `&&`/`||` chains longer than this are rebalanced (shorter ones keep the parsed shape, so that
/// `explain` prints them as written).
pub(crate) const REBALANCE_OVER: usize = 16;

/// The diagnostic for an expression deeper than [`MAX_DEPTH`], `at` being its too-deep part.
pub fn too_deep(at: Span, what: &str) -> Diagnostic {
    Diagnostic::error(Code::NestedTooDeeply, "expression nested too deeply")
        .label(at, format!("{what} more than {MAX_DEPTH} levels deep"))
        .help("split it: compute parts in earlier `map` stages, or into `fn`s of their own")
}

/// Rebalances long `&&`/`||` chains of `item` and checks its expressions against [`MAX_DEPTH`].
/// On `Err` the caller replaces the item with `Item::Error` (dropping an AST is iterative: see
/// `ast::Expr`'s `Drop`).
pub fn limit(item: &mut Item) -> Result<(), Diagnostic> {
    roots(item).into_iter().try_for_each(limit_expr)
}

/// [`limit`] for one expression.
pub fn limit_expr(e: &mut Expr) -> Result<(), Diagnostic> {
    rebalance(e);
    match too_deep_part(e) {
        None => Ok(()),
        Some(at) => Err(too_deep(at, "this is")),
    }
}

/// The top-level expressions of a statement.
fn roots(item: &mut Item) -> Vec<&mut Expr> {
    fn args<'a>(out: &mut Vec<&'a mut Expr>, args: &'a mut [ast::Arg]) {
        out.extend(args.iter_mut().map(|a| &mut a.value));
    }
    fn pipeline<'a>(out: &mut Vec<&'a mut Expr>, p: &'a mut ast::Pipeline) {
        for s in &mut p.stages {
            for h in &mut s.hints {
                args(out, &mut h.args);
            }
            match &mut s.kind {
                StageKind::Filter(e) | StageKind::Limit(e) => out.push(e),
                StageKind::Map(items) | StageKind::Group(_, items) => {
                    for it in items {
                        if let MapItem::Named(_, e) = it {
                            out.push(e);
                        }
                    }
                }
                StageKind::Sort(keys) => out.extend(keys.iter_mut().map(|k| &mut k.expr)),
                StageKind::Union(_) | StageKind::Distinct(_) | StageKind::Join(_) => {}
                StageKind::Sink(c) => args(out, &mut c.args),
            }
        }
    }
    let mut out = Vec::new();
    match item {
        Item::Mode(m) => args(&mut out, &mut m.args),
        Item::Source(s) => args(&mut out, &mut s.connector.args),
        Item::Fn(f) => out.push(&mut f.body),
        Item::Let(l) => pipeline(&mut out, &mut l.pipeline),
        Item::Pipeline(p) => pipeline(&mut out, p),
        Item::Test(t) => {
            for c in &mut t.clauses {
                for r in &mut c.rows {
                    out.extend(r.fields.iter_mut().map(|(_, e)| e));
                }
            }
        }
        Item::Use(_) | Item::Schema(_) | Item::Error(_) => {}
    }
    out
}

/// The children of an expression node.
fn children(e: &Expr) -> impl Iterator<Item = &Expr> {
    let (fixed, args): ([Option<&Expr>; 3], &[ast::Arg]) = match &e.kind {
        ExprKind::Unary(_, a) => ([Some(a), None, None], &[]),
        ExprKind::Binary(_, a, b) => ([Some(a), Some(b), None], &[]),
        ExprKind::If(c, t, f) => ([Some(c), Some(t), Some(f)], &[]),
        ExprKind::Call { args, .. } => ([None, None, None], args),
        _ => ([None, None, None], &[]),
    };
    fixed
        .into_iter()
        .flatten()
        .chain(args.iter().map(|a| &a.value))
}

/// The span of the outermost node deeper than [`MAX_DEPTH`] (the first in source order), if any.
fn too_deep_part(root: &Expr) -> Option<Span> {
    let mut stack = vec![(root, 0usize)];
    let mut found: Option<Span> = None;
    while let Some((e, d)) = stack.pop() {
        if d > MAX_DEPTH {
            if found.is_none_or(|s| e.span.start < s.start) {
                found = Some(e.span);
            }
            continue;
        }
        stack.extend(children(e).map(|c| (c, d + 1)));
    }
    found
}

/// Rebalances every `&&`/`||` chain (a left spine of one operator) longer than
/// [`REBALANCE_OVER`] operands inside `root`. Iterative over the tree; the rebuilt chains are
/// balanced, so building them recurses only `log2(n)` deep.
fn rebalance(root: &mut Expr) {
    let mut stack: Vec<&mut Expr> = vec![root];
    while let Some(e) = stack.pop() {
        if let ExprKind::Binary(op @ (BinaryOp::And | BinaryOp::Or), _, _) = e.kind {
            let mut n = 1;
            let mut at: &Expr = e;
            while let ExprKind::Binary(o, a, _) = &at.kind {
                if *o != op {
                    break;
                }
                n += 1;
                at = a;
            }
            if n > REBALANCE_OVER {
                let mut operands = Vec::with_capacity(n);
                let mut cur = std::mem::replace(
                    e,
                    Expr {
                        kind: ExprKind::Error,
                        span: e.span,
                    },
                );
                loop {
                    match std::mem::replace(&mut cur.kind, ExprKind::Error) {
                        ExprKind::Binary(o, a, b) if o == op => {
                            operands.push(*b);
                            cur = *a;
                        }
                        kind => {
                            operands.push(Expr {
                                kind,
                                span: cur.span,
                            });
                            break;
                        }
                    }
                }
                operands.reverse();
                *e = balanced(op, operands);
            }
        }
        match &mut e.kind {
            ExprKind::Unary(_, a) => stack.push(a),
            ExprKind::Binary(_, a, b) => {
                stack.push(a);
                stack.push(b);
            }
            ExprKind::If(c, t, f) => {
                stack.push(c);
                stack.push(t);
                stack.push(f);
            }
            ExprKind::Call { args, .. } => stack.extend(args.iter_mut().map(|a| &mut a.value)),
            _ => {}
        }
    }
}

/// `ops[0] op ops[1] op …` as a balanced tree (the left half at least as large as the right).
fn balanced(op: BinaryOp, mut ops: Vec<Expr>) -> Expr {
    if ops.len() == 1 {
        return ops.pop().unwrap_or(Expr {
            kind: ExprKind::Error,
            span: Span::default(),
        });
    }
    let right = ops.split_off(ops.len().div_ceil(2));
    let (a, b) = (balanced(op, ops), balanced(op, right));
    let span = a.span.to(b.span);
    Expr {
        kind: ExprKind::Binary(op, Box::new(a), Box::new(b)),
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::FileId;

    fn leaves(e: &Expr, out: &mut Vec<String>) {
        match &e.kind {
            ExprKind::Name(id) => out.push(id.name.clone()),
            _ => children(e).for_each(|c| leaves(c, out)),
        }
    }

    #[test]
    fn rebalanced_or_chain_keeps_operand_order_and_is_shallow() {
        let text: Vec<String> = (0..1000).map(|i| format!("a{i}")).collect();
        let (e, diags) = crate::syntax::parse_expr(&text.join(" || "), FileId::default());
        assert!(diags.is_empty(), "{diags:?}");
        let e = e.expect("parsed");
        let mut names = Vec::new();
        leaves(&e, &mut names);
        assert_eq!(names, text);
        let mut stack = vec![(&e, 0usize)];
        let mut deepest = 0;
        while let Some((e, d)) = stack.pop() {
            deepest = deepest.max(d);
            stack.extend(children(e).map(|c| (c, d + 1)));
        }
        assert!(deepest <= 11, "depth {deepest}");
    }

    #[test]
    fn short_or_chain_keeps_its_parsed_shape() {
        let (e, _) = crate::syntax::parse_expr("a || b || c", FileId::default());
        let Some(Expr {
            kind: ExprKind::Binary(BinaryOp::Or, l, _),
            ..
        }) = &e
        else {
            panic!("{e:?}")
        };
        assert!(matches!(l.kind, ExprKind::Binary(BinaryOp::Or, _, _)));
    }

    #[test]
    fn dropping_a_million_deep_ast_does_not_overflow_the_stack() {
        let mut e = Expr {
            kind: ExprKind::Int(1),
            span: Span::default(),
        };
        for _ in 0..1_000_000 {
            e = Expr {
                kind: ExprKind::Unary(ast::UnaryOp::Neg, Box::new(e)),
                span: Span::default(),
            };
        }
        assert!(too_deep_part(&e).is_some());
        drop(e);
    }
}
