//! Prints plan parameters back in flow syntax, with column names from the input row.

use super::ir::{SinkSpec, SourceSpec};
use crate::check::hir::{Agg, BinOp, Expr, ExprKind, JoinKey, SortKey, UnOp};
use crate::job::{ErrorPolicy, Hints, MaxErrors, OnError};
use crate::types::{RowType, Scalar};

// Binding strength, loosest first, as in the grammar.
const OR: u8 = 1;
const AND: u8 = 2;
const CMP: u8 = 3;
const COALESCE: u8 = 4;
const ADD: u8 = 5;
const MUL: u8 = 6;
const PREFIX: u8 = 7;
const ATOM: u8 = 8;

/// `e` in flow syntax; `Field(i)` is printed as the name of column `i` of `row`.
pub fn expr(e: &Expr, row: &RowType) -> String {
    let mut out = String::new();
    write_expr(e, row, 0, &mut out);
    out
}

fn column(row: &RowType, i: usize) -> String {
    match row.fields.get(i) {
        Some(f) => f.name.clone(),
        None => format!("#{i}"),
    }
}

fn bin_prec(op: BinOp) -> u8 {
    match op {
        BinOp::Or => OR,
        BinOp::And => AND,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => CMP,
        BinOp::Add | BinOp::Sub => ADD,
        BinOp::Mul | BinOp::Div | BinOp::Rem => MUL,
    }
}

fn prec(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary(op, _, _) => bin_prec(*op),
        ExprKind::IsNull(_) => CMP,
        ExprKind::Coalesce(_, _) => COALESCE,
        ExprKind::Unary(_, _) => PREFIX,
        ExprKind::Lit(v) if matches!(v.scalar(), Scalar::Int | Scalar::Float) => {
            // A negative literal binds like a prefix minus.
            if v.to_string().starts_with('-') {
                PREFIX
            } else {
                ATOM
            }
        }
        _ => ATOM,
    }
}

/// Writes `e`, parenthesized when it binds looser than `min`.
fn write_expr(e: &Expr, row: &RowType, min: u8, out: &mut String) {
    let p = prec(e);
    let paren = p < min;
    if paren {
        out.push('(');
    }
    match &e.kind {
        ExprKind::Lit(v) => out.push_str(&v.to_string()),
        ExprKind::Field(i) => out.push_str(&column(row, *i)),
        ExprKind::Local(l) => out.push_str(&format!("_{l}")),
        ExprKind::Let { local, value, body } => {
            // Inlined function parameters have no flow syntax of their own.
            out.push_str(&format!("{{ let _{local} = "));
            write_expr(value, row, 0, out);
            out.push_str("; ");
            write_expr(body, row, 0, out);
            out.push_str(" }");
        }
        ExprKind::Unary(op, a) => {
            out.push_str(match op {
                UnOp::Neg => "-",
                UnOp::Not => "!",
            });
            write_expr(a, row, PREFIX, out);
        }
        ExprKind::Binary(op, a, b) => {
            let q = bin_prec(*op);
            // Comparisons do not associate; the others associate to the left.
            let left = if q == CMP { q + 1 } else { q };
            write_expr(a, row, left, out);
            out.push_str(&format!(" {} ", op.symbol()));
            write_expr(b, row, q + 1, out);
        }
        ExprKind::Cast(a, s) => {
            let f = match s {
                Scalar::Float => "to_float",
                Scalar::Int => "to_int",
                Scalar::Str => "to_str",
                _ => "cast",
            };
            out.push_str(f);
            out.push('(');
            write_expr(a, row, 0, out);
            out.push(')');
        }
        ExprKind::IsNull(a) => {
            write_expr(a, row, CMP + 1, out);
            out.push_str(" == null");
        }
        ExprKind::Coalesce(a, b) => {
            write_expr(a, row, COALESCE + 1, out);
            out.push_str(" ?? ");
            write_expr(b, row, COALESCE, out);
        }
        ExprKind::If(c, t, f) => {
            out.push_str("if ");
            write_expr(c, row, 0, out);
            out.push_str(" { ");
            write_expr(t, row, 0, out);
            out.push_str(" } else { ");
            write_expr(f, row, 0, out);
            out.push_str(" }");
        }
        ExprKind::Call(b, args) => {
            out.push_str(b.name());
            out.push('(');
            for (k, a) in args.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                write_expr(a, row, 0, out);
            }
            out.push(')');
        }
    }
    if paren {
        out.push(')');
    }
}

/// `{ a, b: expr }`: columns computed over `input`, shorthand where a column is copied under its
/// own name.
pub fn map_fields<'a>(
    names_exprs: impl Iterator<Item = (&'a str, &'a Expr)>,
    input: &RowType,
) -> String {
    let parts: Vec<String> = names_exprs
        .map(|(name, e)| match e.kind {
            ExprKind::Field(i) if input.fields.get(i).is_some_and(|f| f.name == name) => {
                name.to_string()
            }
            _ => format!("{name}: {}", expr(e, input)),
        })
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

/// `fare desc, id` (keys in flow syntax).
pub fn sort_keys(keys: &[SortKey], input: &RowType) -> String {
    let keys: Vec<String> = keys
        .iter()
        .map(|k| {
            let c = column(input, k.col);
            if k.desc { format!("{c} desc") } else { c }
        })
        .collect();
    keys.join(", ")
}

/// `a, b`, or `(whole rows)` for `distinct` without keys.
/// A join's parameters: `[left] on a == b && … { fields }`.
pub fn join(
    keys: &[JoinKey],
    fields: &[usize],
    outer: bool,
    left: &RowType,
    right: &RowType,
) -> String {
    let keys: Vec<String> = keys
        .iter()
        .map(|k| format!("{} == {}", column(left, k.left), column(right, k.right)))
        .collect();
    let fields: Vec<String> = fields.iter().map(|&f| column(right, f)).collect();
    format!(
        "{}on {} {{ {} }}",
        if outer { "left " } else { "" },
        keys.join(" && "),
        fields.join(", ")
    )
}

pub fn distinct_keys(keys: &Option<Vec<usize>>, input: &RowType) -> String {
    match keys {
        None => "(whole rows)".to_string(),
        Some(ks) => ks
            .iter()
            .map(|&k| column(input, k))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

pub fn group(keys: &[usize], aggs: &[Agg], input: &RowType) -> String {
    let keys: Vec<String> = keys.iter().map(|&k| column(input, k)).collect();
    let aggs: Vec<String> = aggs
        .iter()
        .map(|a| {
            let arg = a.arg.as_ref().map(|e| expr(e, input)).unwrap_or_default();
            format!("{}: {}({arg})", a.name, a.func.name())
        })
        .collect();
    format!("group {} {{ {} }}", keys.join(", "), aggs.join(", "))
}

fn call(connector: &str, path: &Option<String>, options: &[String]) -> String {
    let mut args: Vec<String> = Vec::new();
    if let Some(p) = path {
        args.push(format!("{p:?}"));
    }
    args.extend(options.iter().cloned());
    format!("{connector}({})", args.join(", "))
}

fn options(opts: &crate::job::Options) -> Vec<String> {
    opts.iter()
        .map(|(k, v)| match v {
            crate::types::Value::Str(s) if s.contains("://") => {
                format!(
                    "{k}: {}",
                    crate::types::Value::Str(crate::job::redact_url(s))
                )
            }
            v => format!("{k}: {v}"),
        })
        .collect()
}

pub fn on_error(o: &OnError) -> String {
    match o {
        OnError::Fail => "fail".into(),
        OnError::Skip => "skip".into(),
        OnError::DeadLetter(p) => format!("dead_letter({p:?})"),
    }
}

fn max_errors(m: &MaxErrors) -> String {
    match m {
        MaxErrors::Count(n) => n.to_string(),
        MaxErrors::Ratio(r) => r.to_string(),
    }
}

pub fn source(spec: &SourceSpec) -> String {
    let mut opts = options(&spec.options);
    if spec.policy.on_error != OnError::Fail {
        opts.push(format!("on_error: {}", on_error(&spec.policy.on_error)));
    }
    if let Some(m) = &spec.policy.max_errors {
        opts.push(format!("max_errors: {}", max_errors(m)));
    }
    format!(
        "{} = {}",
        spec.name,
        call(&spec.connector, &spec.path, &opts)
    )
}

pub fn sink(spec: &SinkSpec) -> String {
    call(&spec.connector, &spec.path, &options(&spec.options))
}

/// ` @on_error(skip)` etc. for a stage's policy; empty for the default.
pub fn stage_policy(p: &ErrorPolicy) -> String {
    let mut out = String::new();
    if p.on_error != OnError::Fail {
        out.push_str(&format!(" @on_error({})", on_error(&p.on_error)));
    }
    if let Some(m) = &p.max_errors {
        out.push_str(&format!(" @max_errors({})", max_errors(m)));
    }
    out
}

pub fn hints(h: &Hints) -> String {
    let mut out = String::new();
    if let Some(n) = h.parallel {
        out.push_str(&format!(" @parallel({n})"));
    }
    if let Some(n) = h.batch {
        out.push_str(&format!(" @batch({n})"));
    }
    out
}
