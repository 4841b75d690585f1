//! Canonical keys: the identity of a plan node's operator and parameters, as a string.
//!
//! Two operators with the same key compute the same function of their inputs. Keys ignore
//! spans (they differ between files), `let` labels, source names and hints, but include every
//! parameter that changes the result: expression trees (with types), field names of maps,
//! connector, normalized path, options, schema, projected columns and error policies.
//! Floats take part by bit pattern (`Value::canonical`). Locals bound by `Let` are renamed by
//! binding depth, so two inlinings of the same function merge whatever numbers the checker gave
//! their locals.

use super::ir::{FusedStep, Op, Step};
use crate::check::hir::{Agg, Expr, ExprKind};
use crate::job::{ErrorPolicy, MaxErrors, OnError, Options};
use crate::types::{RowType, Type};
use std::fmt::Write;

/// The key of an operator producing rows of type `row`. Sinks get no special treatment here:
/// the planner never merges them.
pub fn op_key(op: &Op, row: &RowType) -> String {
    let mut out = String::new();
    match op {
        Op::Source(spec) => {
            out.push_str("source(");
            out.push_str(&spec.connector);
            out.push(',');
            match &spec.path {
                Some(p) => {
                    let _ = write!(out, "{:?}", normalize_path(p));
                }
                None => out.push('-'),
            }
            out.push(',');
            options_key(&spec.options, &mut out);
            out.push(',');
            row_key(&spec.schema, &mut out);
            let _ = write!(out, ",{:?},", spec.columns);
            policy_key(&spec.policy, &mut out);
            out.push(')');
        }
        Op::Filter { pred, policy } => {
            out.push_str("filter(");
            expr_key(pred, &mut out);
            out.push(',');
            policy_key(policy, &mut out);
            out.push(')');
        }
        Op::Map { fields, policy } => {
            out.push_str("map(");
            for (name, e) in fields {
                let _ = write!(out, "{name:?}=");
                expr_key(e, &mut out);
                out.push(';');
            }
            policy_key(policy, &mut out);
            out.push(')');
        }
        Op::Fused { steps } => {
            out.push_str("fused(");
            for s in steps {
                step_key(s, &mut out);
                out.push(';');
            }
            out.push(')');
        }
        Op::Group { keys, aggs } => {
            let _ = write!(out, "group({keys:?}");
            for a in aggs {
                out.push(',');
                agg_key(a, &mut out);
            }
            out.push(')');
        }
        Op::Union => out.push_str("union"),
        Op::Limit(n) => {
            let _ = write!(out, "limit({n})");
        }
        Op::Sort { keys } => {
            out.push_str("sort(");
            for k in keys {
                let _ = write!(out, "{}{},", k.col, if k.desc { "d" } else { "a" });
            }
            out.push(')');
        }
        Op::Distinct { keys } => {
            let _ = write!(out, "distinct({keys:?})");
        }
        Op::Join {
            keys,
            fields,
            outer,
            ..
        } => {
            out.push_str(if *outer { "leftjoin(" } else { "join(" });
            for k in keys {
                let _ = write!(
                    out,
                    "{}={}{},",
                    k.left,
                    k.right,
                    if k.float { "f" } else { "" }
                );
            }
            let _ = write!(out, "{fields:?})");
        }
        Op::Sink(spec) => {
            let _ = write!(
                out,
                "sink({},{:?},{:?})",
                spec.connector, spec.path, spec.origin
            );
            options_key(&spec.options, &mut out);
        }
    }
    out.push_str("->");
    row_key(row, &mut out);
    out
}

fn step_key(s: &FusedStep, out: &mut String) {
    match &s.step {
        Step::Filter(e) => {
            out.push_str("F:");
            expr_key(e, out);
        }
        Step::Map(es) => {
            out.push_str("M:");
            for e in es {
                expr_key(e, out);
                out.push(',');
            }
        }
    }
    out.push(',');
    policy_key(&s.policy, out);
    out.push(',');
    row_key(&s.row, out);
}

fn agg_key(a: &Agg, out: &mut String) {
    let _ = write!(out, "{:?}={}(", a.name, a.func.name());
    if let Some(e) = &a.arg {
        expr_key(e, out);
    }
    out.push(')');
    ty_key(a.ty, out);
}

fn ty_key(ty: Type, out: &mut String) {
    let _ = write!(out, ":{ty}");
}

pub fn row_key(row: &RowType, out: &mut String) {
    out.push('{');
    for f in &row.fields {
        let _ = write!(out, "{:?}:{},", f.name, f.ty);
    }
    out.push('}');
}

fn options_key(options: &Options, out: &mut String) {
    // `Options` is a BTreeMap: iteration order is the key order, so this is deterministic.
    out.push('[');
    for (k, v) in options {
        let _ = write!(out, "{k:?}={},", v.canonical());
    }
    out.push(']');
}

pub fn policy_key(p: &ErrorPolicy, out: &mut String) {
    match &p.on_error {
        OnError::Fail => out.push_str("fail"),
        OnError::Skip => out.push_str("skip"),
        OnError::DeadLetter(path) => {
            let _ = write!(out, "dead_letter({:?})", normalize_path(path));
        }
    }
    match p.max_errors {
        None => {}
        Some(MaxErrors::Count(n)) => {
            let _ = write!(out, "/max{n}");
        }
        Some(MaxErrors::Ratio(r)) => {
            let _ = write!(out, "/ratio{:016x}", r.to_bits());
        }
    }
}

/// A lexically normalized path: `./a//b` and `a/b` are the same file. `..` is kept as written
/// (resolving it would need the file system).
pub fn normalize_path(p: &str) -> String {
    let path = std::path::Path::new(p);
    let mut parts: Vec<String> = Vec::new();
    let mut absolute = false;
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::RootDir => absolute = true,
            other => parts.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// The key of an expression tree, spans ignored, locals renamed by binding depth.
pub fn expr_key(e: &Expr, out: &mut String) {
    let mut scope = Vec::new();
    expr_key_in(e, &mut scope, out);
}

fn expr_key_in(e: &Expr, scope: &mut Vec<usize>, out: &mut String) {
    match &e.kind {
        ExprKind::Lit(v) => {
            let _ = write!(out, "L({})", v.canonical());
        }
        ExprKind::Field(i) => {
            let _ = write!(out, "F{i}");
        }
        ExprKind::Local(l) => match scope.iter().rposition(|b| b == l) {
            Some(depth) => {
                let _ = write!(out, "V{depth}");
            }
            None => {
                let _ = write!(out, "V?{l}");
            }
        },
        ExprKind::Let { local, value, body } => {
            out.push_str("Let(");
            expr_key_in(value, scope, out);
            out.push(';');
            scope.push(*local);
            expr_key_in(body, scope, out);
            scope.pop();
            out.push(')');
        }
        ExprKind::Unary(op, a) => {
            let _ = write!(out, "U{op:?}(");
            expr_key_in(a, scope, out);
            out.push(')');
        }
        ExprKind::Binary(op, a, b) => {
            let _ = write!(out, "B{op:?}(");
            expr_key_in(a, scope, out);
            out.push(',');
            expr_key_in(b, scope, out);
            out.push(')');
        }
        ExprKind::Cast(a, s) => {
            let _ = write!(out, "C{s:?}(");
            expr_key_in(a, scope, out);
            out.push(')');
        }
        ExprKind::IsNull(a) => {
            out.push_str("N(");
            expr_key_in(a, scope, out);
            out.push(')');
        }
        ExprKind::Coalesce(a, b) => {
            out.push_str("Q(");
            expr_key_in(a, scope, out);
            out.push(',');
            expr_key_in(b, scope, out);
            out.push(')');
        }
        ExprKind::If(c, t, f) => {
            out.push_str("I(");
            expr_key_in(c, scope, out);
            out.push(',');
            expr_key_in(t, scope, out);
            out.push(',');
            expr_key_in(f, scope, out);
            out.push(')');
        }
        ExprKind::Call(b, args) => {
            let _ = write!(out, "K{b:?}(");
            for a in args {
                expr_key_in(a, scope, out);
                out.push(',');
            }
            out.push(')');
        }
    }
    ty_key(e.ty, out);
}
