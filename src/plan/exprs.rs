//! Small expression utilities used by the passes: which columns an expression reads, rewriting
//! column indices, and whether evaluation can fail.

use crate::check::hir::{BinOp, Expr, ExprKind, UnOp};
use crate::stdlib::Builtin;
use crate::types::Scalar;
use std::collections::BTreeSet;

/// Adds the input columns `e` reads to `out`.
pub fn fields(e: &Expr, out: &mut BTreeSet<usize>) {
    visit(e, &mut |e| {
        if let ExprKind::Field(i) = e.kind {
            out.insert(i);
        }
    });
}

fn visit(e: &Expr, f: &mut impl FnMut(&Expr)) {
    f(e);
    match &e.kind {
        ExprKind::Lit(_) | ExprKind::Field(_) | ExprKind::Local(_) => {}
        ExprKind::Let { value, body, .. } => {
            visit(value, f);
            visit(body, f);
        }
        ExprKind::Unary(_, a) | ExprKind::Cast(a, _) | ExprKind::IsNull(a) => visit(a, f),
        ExprKind::Binary(_, a, b) | ExprKind::Coalesce(a, b) => {
            visit(a, f);
            visit(b, f);
        }
        ExprKind::If(c, t, e) => {
            visit(c, f);
            visit(t, f);
            visit(e, f);
        }
        ExprKind::Call(_, args) => {
            for a in args {
                visit(a, f);
            }
        }
    }
}

/// `e` with every `Field(i)` replaced by `map(i)`; `None` when `map` fails for some column.
pub fn remap(e: &Expr, map: &impl Fn(usize) -> Option<usize>) -> Option<Expr> {
    let kind = match &e.kind {
        ExprKind::Field(i) => ExprKind::Field(map(*i)?),
        ExprKind::Lit(_) | ExprKind::Local(_) => e.kind.clone(),
        ExprKind::Let { local, value, body } => ExprKind::Let {
            local: *local,
            value: Box::new(remap(value, map)?),
            body: Box::new(remap(body, map)?),
        },
        ExprKind::Unary(op, a) => ExprKind::Unary(*op, Box::new(remap(a, map)?)),
        ExprKind::Binary(op, a, b) => {
            ExprKind::Binary(*op, Box::new(remap(a, map)?), Box::new(remap(b, map)?))
        }
        ExprKind::Cast(a, s) => ExprKind::Cast(Box::new(remap(a, map)?), *s),
        ExprKind::IsNull(a) => ExprKind::IsNull(Box::new(remap(a, map)?)),
        ExprKind::Coalesce(a, b) => {
            ExprKind::Coalesce(Box::new(remap(a, map)?), Box::new(remap(b, map)?))
        }
        ExprKind::If(c, t, f) => ExprKind::If(
            Box::new(remap(c, map)?),
            Box::new(remap(t, map)?),
            Box::new(remap(f, map)?),
        ),
        ExprKind::Call(b, args) => ExprKind::Call(
            *b,
            args.iter()
                .map(|a| remap(a, map))
                .collect::<Option<Vec<_>>>()?,
        ),
    };
    Some(Expr {
        kind,
        ty: e.ty,
        span: e.span,
    })
}

/// Whether evaluating `e` can never produce a row error (conservative: `false` when unsure).
/// Integer arithmetic can overflow, any division or remainder can divide by zero, and a few
/// builtins reject arguments (see `RowErrorCode`).
pub fn infallible(e: &Expr) -> bool {
    let mut ok = true;
    visit(e, &mut |e| {
        let fails = match &e.kind {
            ExprKind::Unary(UnOp::Neg, _) => e.ty.scalar != Scalar::Float,
            ExprKind::Binary(op, a, _) => match op {
                BinOp::Add | BinOp::Sub | BinOp::Mul => a.ty.scalar != Scalar::Float,
                BinOp::Div | BinOp::Rem => true,
                _ => false,
            },
            ExprKind::Call(b, args) => match b {
                Builtin::Abs => args.first().is_none_or(|a| a.ty.scalar != Scalar::Float),
                Builtin::Substr | Builtin::ToInt | Builtin::FromUnix => true,
                // Row errors: a group out of range, a time outside jiff's years, overflow.
                Builtin::Extract
                | Builtin::FormatTimestamp
                | Builtin::AddSeconds
                | Builtin::AddDays
                | Builtin::DiffSeconds
                | Builtin::UtcToLocal
                | Builtin::LocalToUtc => true,
                _ => false,
            },
            _ => false,
        };
        if fails {
            ok = false;
        }
    });
    ok
}

/// The conjuncts of `e` (`a && b && c` → `[a, b, c]`, in evaluation order).
pub fn conjuncts(e: &Expr) -> Vec<Expr> {
    match &e.kind {
        ExprKind::Binary(BinOp::And, a, b) => {
            let mut v = conjuncts(a);
            v.extend(conjuncts(b));
            v
        }
        _ => vec![e.clone()],
    }
}

/// `a && b && …` of non-empty `parts` (left-associated, in order).
pub fn conjunction(parts: Vec<Expr>) -> Option<Expr> {
    parts.into_iter().reduce(|a, b| {
        let span = a.span;
        Expr::new(
            ExprKind::Binary(BinOp::And, Box::new(a), Box::new(b)),
            crate::types::Type::BOOL,
            span,
        )
    })
}

/// The input columns proven non-null when `cond` evaluates to `when` (the checker's narrowing of
/// a filter's row, for the columns: `x != null`, through `!`, `&&` when true, `||` when false).
pub fn non_null(cond: &Expr, when: bool, out: &mut BTreeSet<usize>) {
    match (&cond.kind, when) {
        (ExprKind::Unary(UnOp::Not, inner), _) => non_null(inner, !when, out),
        (ExprKind::IsNull(inner), false) => {
            if let ExprKind::Field(i) = inner.kind {
                out.insert(i);
            }
        }
        (ExprKind::Binary(BinOp::And, a, b), true) | (ExprKind::Binary(BinOp::Or, a, b), false) => {
            non_null(a, when, out);
            non_null(b, when, out);
        }
        _ => {}
    }
}

/// Whether every read of a column that `e` treats as non-null is of a column non-null in `row`
/// or in `proven`: `e` may be evaluated on rows of `row` once the rows failing `proven` are gone.
pub fn reads_only_present(e: &Expr, row: &crate::types::RowType, proven: &BTreeSet<usize>) -> bool {
    let mut ok = true;
    visit(e, &mut |e| {
        if let ExprKind::Field(i) = e.kind
            && !e.ty.nullable
            && row.fields.get(i).is_none_or(|f| f.ty.nullable)
            && !proven.contains(&i)
        {
            ok = false;
        }
    });
    ok
}
