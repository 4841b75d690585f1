//! Inlining of `fn` bodies, done once per call in a stage expression (issue 17, item 3).
//!
//! A checked `fn` body keeps its own calls of `fn`s as calls (a `Let` per argument around a leaf
//! naming the callee, see [`Body`]), so checking, sharing and measuring a body costs its own size,
//! not the size of everything it inlines: a chain of N functions each calling the previous one
//! checks in time linear in N. The sizes, depths and locals of the inlined form are known per
//! function (composed from the callees'), so the limits (E0007, E0028) apply as before. A stage
//! expression's call is inlined by [`expand`]: the callee's body copied with its locals numbered
//! afresh, each nested call expanded in place — the time of the HIR it produces.

use super::cx::{Body, CALL_BASE, Call, FnHir};
use super::hir::{Expr, ExprKind};
use crate::span::Span;
use crate::types::Type;
use std::rc::Rc;

/// The call leaf `e` stands for, if it is one.
pub fn leaf(e: &Expr) -> Option<usize> {
    match e.kind {
        ExprKind::Local(l) if l >= CALL_BASE => Some(l - CALL_BASE),
        _ => None,
    }
}

/// The function of a checked body: its inlined size, depth, locals and fallibility composed
/// from its callees'. `fallible` says whether a node's own operation can fail.
pub fn finish(
    params: Vec<(String, Type)>,
    body: Body,
    span: Span,
    fallible: impl Fn(&Expr) -> bool,
) -> FnHir {
    let ty = body.expr.ty;
    if let Some(i) = leaf(&body.expr)
        && params.is_empty()
        && let Some(c) = body.calls.get(i)
        && c.callee.params.is_empty()
    {
        // `fn f() = g()`: f is g (a chain of such never nests its expansion).
        let g = &c.callee;
        return FnHir {
            params,
            body: Rc::clone(&g.body),
            ty,
            locals: g.locals,
            span,
            size: g.size,
            depth: g.depth,
            fallible: g.fallible,
        };
    }
    let (mut size, mut deepest, mut lets, mut can_fail) = (0usize, 0usize, 0usize, false);
    let mut stack = vec![(&body.expr, 0usize)];
    while let Some((e, d)) = stack.pop() {
        if let Some(i) = leaf(e) {
            if let Some(Call { callee, .. }) = body.calls.get(i) {
                size += callee.size;
                deepest = deepest.max(d + callee.depth);
                lets += callee.locals - callee.params.len();
                can_fail |= callee.fallible;
            }
            continue;
        }
        size += 1;
        deepest = deepest.max(d);
        lets += matches!(e.kind, ExprKind::Let { .. }) as usize;
        can_fail |= fallible(e);
        stack.extend(e.children().map(|c| (c, d + 1)));
    }
    FnHir {
        locals: params.len() + lets,
        params,
        body: Rc::new(body),
        ty,
        span,
        size,
        depth: deepest,
        fallible: can_fail,
    }
}

/// The body of `f` inlined, its parameters read from the locals `params`, the locals it binds
/// numbered from `*next` in binding order (a `Let`'s value first); its root gets `ty` and `span`
/// (those of the call). Binds exactly `f.locals - f.params.len()` locals.
pub fn expand(f: &FnHir, params: &[usize], next: &mut usize, ty: Type, span: Span) -> Expr {
    let b = &f.body;
    let mut env: Vec<usize> = params.to_vec();
    env.resize(b.locals.max(params.len()), 0);
    let mut root = copy(&b.expr, b, &mut env, next);
    root.ty = ty;
    root.span = span;
    root
}

fn copy(e: &Expr, b: &Body, env: &mut Vec<usize>, next: &mut usize) -> Expr {
    let bx = |e: Expr| Box::new(e);
    let kind = match &e.kind {
        ExprKind::Local(_) if leaf(e).is_some() => {
            let c = leaf(e).and_then(|i| b.calls.get(i));
            if let Some(c) = c {
                let params: Vec<usize> = c.args.iter().map(|&a| local(env, a)).collect();
                return expand(&c.callee, &params, next, e.ty, e.span);
            }
            e.kind.clone()
        }
        ExprKind::Local(l) => ExprKind::Local(local(env, *l)),
        ExprKind::Let { local, value, body } => {
            let value = copy(value, b, env, next);
            let n = *next;
            *next += 1;
            if *local >= env.len() {
                env.resize(*local + 1, 0);
            }
            let saved = std::mem::replace(&mut env[*local], n);
            let body = copy(body, b, env, next);
            env[*local] = saved;
            ExprKind::Let {
                local: n,
                value: bx(value),
                body: bx(body),
            }
        }
        ExprKind::Lit(v) => ExprKind::Lit(v.clone()),
        ExprKind::Field(i) => ExprKind::Field(*i),
        ExprKind::Unary(op, a) => ExprKind::Unary(*op, bx(copy(a, b, env, next))),
        ExprKind::Cast(a, s) => ExprKind::Cast(bx(copy(a, b, env, next)), *s),
        ExprKind::IsNull(a) => ExprKind::IsNull(bx(copy(a, b, env, next))),
        ExprKind::Binary(op, l, r) => {
            let l = copy(l, b, env, next);
            ExprKind::Binary(*op, bx(l), bx(copy(r, b, env, next)))
        }
        ExprKind::Coalesce(l, r) => {
            let l = copy(l, b, env, next);
            ExprKind::Coalesce(bx(l), bx(copy(r, b, env, next)))
        }
        ExprKind::If(c, t, f) => {
            let c = copy(c, b, env, next);
            let t = copy(t, b, env, next);
            ExprKind::If(bx(c), bx(t), bx(copy(f, b, env, next)))
        }
        ExprKind::Call(f, args) => {
            ExprKind::Call(*f, args.iter().map(|a| copy(a, b, env, next)).collect())
        }
    };
    Expr::new(kind, e.ty, e.span)
}

/// What local `l` of a body is numbered in its expansion.
fn local(env: &[usize], l: usize) -> usize {
    env.get(l).copied().unwrap_or(l)
}
