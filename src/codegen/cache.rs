//! Process-wide kernel cache: identical (engine, input row type, steps) compile once. The key is a
//! canonical text of the chain that ignores spans (and error policies, which the runtime applies).

use super::{Engine, Kernel};
use crate::check::hir::{Expr, ExprKind};
use crate::plan::ir::{FusedStep, Step};
use crate::types::{RowType, Type};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, OnceLock};

type Map = HashMap<String, Arc<dyn Kernel>>;

fn cache() -> &'static Mutex<Map> {
    static CACHE: OnceLock<Mutex<Map>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Returns the cached kernel for `key`, or builds, stores and returns one.
pub fn get_or_build(key: String, build: impl FnOnce() -> Arc<dyn Kernel>) -> Arc<dyn Kernel> {
    if let Ok(map) = cache().lock()
        && let Some(k) = map.get(&key)
    {
        return k.clone();
    }
    // Compile outside the lock; if two threads race, the first stored kernel wins.
    let k = build();
    match cache().lock() {
        Ok(mut map) => map.entry(key).or_insert(k).clone(),
        Err(_) => k,
    }
}

fn ty(t: Type, s: &mut String) {
    let _ = write!(s, "{t}");
}

fn row(r: &RowType, s: &mut String) {
    s.push('{');
    for f in &r.fields {
        let _ = write!(s, "{:?}:", f.name);
        ty(f.ty, s);
        s.push(',');
    }
    s.push('}');
}

fn expr(e: &Expr, s: &mut String) {
    s.push('(');
    match &e.kind {
        ExprKind::Lit(v) => s.push_str(&v.canonical()),
        ExprKind::Field(c) => {
            let _ = write!(s, "f{c}");
        }
        ExprKind::Local(l) => {
            let _ = write!(s, "l{l}");
        }
        ExprKind::Let { local, value, body } => {
            let _ = write!(s, "let{local}");
            expr(value, s);
            expr(body, s);
        }
        ExprKind::Unary(op, a) => {
            let _ = write!(s, "{op:?}");
            expr(a, s);
        }
        ExprKind::Binary(op, a, b) => {
            let _ = write!(s, "{op:?}");
            expr(a, s);
            expr(b, s);
        }
        ExprKind::Cast(a, sc) => {
            let _ = write!(s, "cast{}", sc.name());
            expr(a, s);
        }
        ExprKind::IsNull(a) => {
            s.push_str("isnull");
            expr(a, s);
        }
        ExprKind::Coalesce(a, b) => {
            s.push_str("??");
            expr(a, s);
            expr(b, s);
        }
        ExprKind::If(c, t, f) => {
            s.push_str("if");
            expr(c, s);
            expr(t, s);
            expr(f, s);
        }
        ExprKind::Call(b, args) => {
            s.push_str(b.name());
            for a in args {
                expr(a, s);
            }
        }
    }
    s.push(':');
    ty(e.ty, s);
    s.push(')');
}

/// The canonical cache key of a chain.
pub fn key(engine: Engine, input: &RowType, steps: &[FusedStep]) -> String {
    let mut s = format!("{engine:?}");
    row(input, &mut s);
    for st in steps {
        match &st.step {
            Step::Filter(e) => {
                s.push_str("|filter");
                expr(e, &mut s);
            }
            Step::Map(es) => {
                s.push_str("|map");
                for e in es {
                    expr(e, &mut s);
                }
            }
        }
        row(&st.row, &mut s);
    }
    s
}
