//! Constant folding over `Expr` trees, run before code generation.
//!
//! A node whose operands are all literals is evaluated with the interpreter's semantics; if that
//! evaluation fails (e.g. `1 / 0`) the node is kept as is, so the error still happens for every
//! row at run time, exactly as without folding. Short-circuit forms with a literal condition are
//! reduced to the branch that would run; the skipped branch could never have failed.

use super::interp::{self, Row};
use crate::check::hir::{BinOp, Expr, ExprKind};
use crate::plan::ir::{FusedStep, Step};
use crate::stdlib::literal::Compiled;
use crate::types::Value;

pub fn fold_steps(steps: &[FusedStep]) -> Vec<FusedStep> {
    steps
        .iter()
        .map(|s| FusedStep {
            step: match &s.step {
                Step::Filter(p) => Step::Filter(fold(p)),
                Step::Map(es) => Step::Map(es.iter().map(fold).collect()),
            },
            policy: s.policy.clone(),
            row: s.row.clone(),
        })
        .collect()
}

fn lit(e: &Expr) -> Option<&Value> {
    match &e.kind {
        ExprKind::Lit(v) => Some(v),
        _ => None,
    }
}

fn with_kind(e: &Expr, kind: ExprKind) -> Expr {
    Expr::new(kind, e.ty, e.span)
}

/// Returns `b` retyped to `e`'s type (a reduced `Coalesce`/`If` keeps the node's type).
fn retype(e: &Expr, b: Expr) -> Expr {
    Expr::new(b.kind, e.ty, b.span)
}

pub fn fold(e: &Expr) -> Expr {
    let f = |x: &Expr| Box::new(fold(x));
    let folded = match &e.kind {
        ExprKind::Lit(_) | ExprKind::Field(_) | ExprKind::Local(_) => return e.clone(),
        ExprKind::Let { local, value, body } => {
            let value = f(value);
            if let Some(v) = lit(&value) {
                // A literal binding cannot fail: substitute it and fold the body again.
                return retype(e, fold(&subst(body, *local, v)));
            }
            with_kind(
                e,
                ExprKind::Let {
                    local: *local,
                    value,
                    body: f(body),
                },
            )
        }
        ExprKind::Unary(op, a) => with_kind(e, ExprKind::Unary(*op, f(a))),
        ExprKind::Binary(op @ (BinOp::And | BinOp::Or), a, b) => {
            let (a, b) = (f(a), f(b));
            let is_and = *op == BinOp::And;
            match lit(&a) {
                // `false && b` / `true || b`: b is never evaluated.
                Some(v) if interp::truthy(v) != is_and => {
                    return with_kind(e, ExprKind::Lit(Value::Bool(!is_and)));
                }
                // `true && b` / `false || b`: the value of b.
                Some(_) if matches!(lit(&b), Some(Value::Bool(_))) => return retype(e, *b),
                _ => with_kind(e, ExprKind::Binary(*op, a, b)),
            }
        }
        ExprKind::Binary(op, a, b) => with_kind(e, ExprKind::Binary(*op, f(a), f(b))),
        ExprKind::Cast(a, s) => with_kind(e, ExprKind::Cast(f(a), *s)),
        ExprKind::IsNull(a) => with_kind(e, ExprKind::IsNull(f(a))),
        ExprKind::Coalesce(a, b) => {
            let (a, b) = (f(a), f(b));
            match lit(&a) {
                Some(Value::Null) => return retype(e, *b),
                Some(_) => return retype(e, *a),
                None => with_kind(e, ExprKind::Coalesce(a, b)),
            }
        }
        ExprKind::If(c, t, x) => {
            let (c, t, x) = (f(c), f(t), f(x));
            match lit(&c) {
                Some(v) if interp::truthy(v) => return retype(e, *t),
                Some(_) => return retype(e, *x),
                None => with_kind(e, ExprKind::If(c, t, x)),
            }
        }
        ExprKind::Call(b, args) => {
            with_kind(e, ExprKind::Call(*b, args.iter().map(fold).collect()))
        }
    };
    if all_literal_operands(&folded)
        && let Ok(v) = interp::eval(&folded, &Row::Empty, &mut Vec::new(), &Compiled::default())
    {
        return with_kind(e, ExprKind::Lit(v));
    }
    folded
}

/// `e` with `Local(local)` replaced by the literal `v` (up to a `Let` that rebinds `local`).
fn subst(e: &Expr, local: usize, v: &Value) -> Expr {
    let s = |x: &Expr| Box::new(subst(x, local, v));
    let kind = match &e.kind {
        ExprKind::Local(l) if *l == local => ExprKind::Lit(v.clone()),
        ExprKind::Lit(_) | ExprKind::Field(_) | ExprKind::Local(_) => return e.clone(),
        ExprKind::Let {
            local: inner,
            value,
            body,
        } => ExprKind::Let {
            local: *inner,
            value: s(value),
            body: if *inner == local {
                body.clone()
            } else {
                s(body)
            },
        },
        ExprKind::Unary(op, a) => ExprKind::Unary(*op, s(a)),
        ExprKind::Binary(op, a, b) => ExprKind::Binary(*op, s(a), s(b)),
        ExprKind::Cast(a, sc) => ExprKind::Cast(s(a), *sc),
        ExprKind::IsNull(a) => ExprKind::IsNull(s(a)),
        ExprKind::Coalesce(a, b) => ExprKind::Coalesce(s(a), s(b)),
        ExprKind::If(c, t, f) => ExprKind::If(s(c), s(t), s(f)),
        ExprKind::Call(b, args) => {
            ExprKind::Call(*b, args.iter().map(|a| subst(a, local, v)).collect())
        }
    };
    with_kind(e, kind)
}

/// Whether every direct operand is a literal (and the node reads no row or local).
fn all_literal_operands(e: &Expr) -> bool {
    let is = |x: &Expr| lit(x).is_some();
    match &e.kind {
        ExprKind::Unary(_, a) | ExprKind::Cast(a, _) | ExprKind::IsNull(a) => is(a),
        ExprKind::Binary(_, a, b) => is(a) && is(b),
        ExprKind::Call(_, args) => args.iter().all(is),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;
    use crate::types::Type;

    fn e(kind: ExprKind, ty: Type) -> Expr {
        Expr::new(kind, ty, Span::default())
    }
    fn int(i: i64) -> Expr {
        e(ExprKind::Lit(Value::Int(i)), Type::INT)
    }
    fn bin(op: BinOp, a: Expr, b: Expr, ty: Type) -> Expr {
        e(ExprKind::Binary(op, Box::new(a), Box::new(b)), ty)
    }

    #[test]
    fn folds_constants_but_keeps_failing_ones() {
        let sum = bin(
            BinOp::Add,
            int(2),
            bin(BinOp::Mul, int(3), int(4), Type::INT),
            Type::INT,
        );
        assert_eq!(fold(&sum).kind, ExprKind::Lit(Value::Int(14)));
        let div = bin(BinOp::Div, int(1), int(0), Type::INT);
        assert_eq!(fold(&div), div);
        let of = bin(BinOp::Add, int(i64::MAX), int(1), Type::INT);
        assert_eq!(fold(&of), of);
    }

    #[test]
    fn substitutes_literal_lets_respecting_shadowing() {
        let local = |l| e(ExprKind::Local(l), Type::INT);
        let let_ = |l, v, b| {
            e(
                ExprKind::Let {
                    local: l,
                    value: Box::new(v),
                    body: Box::new(b),
                },
                Type::INT,
            )
        };
        // let a = 2 in (let a = field0 in a) + a  ==>  (let a = field0 in a) + 2
        let inner = let_(0, e(ExprKind::Field(0), Type::INT), local(0));
        let x = let_(
            0,
            int(2),
            bin(BinOp::Add, inner.clone(), local(0), Type::INT),
        );
        assert_eq!(fold(&x), bin(BinOp::Add, inner, int(2), Type::INT));
        let y = let_(1, int(2), bin(BinOp::Mul, local(1), int(5), Type::INT));
        assert_eq!(fold(&y).kind, ExprKind::Lit(Value::Int(10)));
    }

    #[test]
    fn short_circuits_with_literal_conditions() {
        let boom = bin(
            BinOp::Eq,
            bin(
                BinOp::Div,
                e(ExprKind::Field(0), Type::INT),
                int(0),
                Type::INT,
            ),
            int(1),
            Type::BOOL,
        );
        let f = e(ExprKind::Lit(Value::Bool(false)), Type::BOOL);
        let and = bin(BinOp::And, f.clone(), boom.clone(), Type::BOOL);
        assert_eq!(fold(&and).kind, ExprKind::Lit(Value::Bool(false)));
        // `false || boom` keeps the erroring side (it runs).
        let or = bin(BinOp::Or, f, boom.clone(), Type::BOOL);
        assert!(matches!(fold(&or).kind, ExprKind::Binary(BinOp::Or, _, _)));
        let iff = e(
            ExprKind::If(
                Box::new(e(ExprKind::Lit(Value::Bool(true)), Type::BOOL)),
                Box::new(int(1)),
                Box::new(boom),
            ),
            Type::INT,
        );
        assert_eq!(fold(&iff).kind, ExprKind::Lit(Value::Int(1)));
    }
}
