//! `hir::Expr` → SQL text with flow's semantics: every operand parenthesized, identifiers
//! quoted, literals escaped by the dialect, and a guard wherever the engine would silently
//! differ from `stdlib::ops` (NULL or NaN where flow fails, NaN ordering, case mapping…).
//! What has no faithful form is an error naming it (`SqlError`), never other SQL.

use super::SqlError;
use super::dialect::Dialect;
use crate::check::hir::{Agg, AggFunc, BinOp, Expr, ExprKind, UnOp};
use crate::diagnostics::Code;
use crate::stdlib::Builtin;
use crate::types::{Scalar, Value};

/// Rust's `char::is_whitespace` (the Unicode White_Space property), what `trim` removes.
const WHITE_SPACE: &[u32] = &[
    9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005,
    0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
];

/// Translates expressions over one input relation whose columns are `cols` (quoted).
pub struct ExprCx<'a> {
    pub d: &'a dyn Dialect,
    pub cols: &'a [String],
    pub errors: &'a mut Vec<SqlError>,
    /// SQL of the values bound by enclosing `Let`s (inlined `fn` parameters).
    locals: Vec<(usize, String)>,
}

/// Whether evaluating `e` can stop the job (a guard or an engine error): decides where `&&`,
/// `||` need the lazy `CASE` form.
fn fallible(e: &Expr) -> bool {
    let here = match &e.kind {
        ExprKind::Binary(op, a, _) => {
            matches!(op, BinOp::Div | BinOp::Rem)
                || (a.ty.scalar == Scalar::Int
                    && matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul))
        }
        ExprKind::Unary(UnOp::Neg, a) => a.ty.scalar == Scalar::Int,
        ExprKind::Call(b, _) => matches!(
            b,
            Builtin::Substr | Builtin::Abs | Builtin::ToInt | Builtin::Upper | Builtin::Lower
        ),
        _ => false,
    };
    here || e.children().any(fallible)
}

fn uses_local(e: &Expr, l: usize) -> bool {
    matches!(e.kind, ExprKind::Local(x) if x == l) || e.children().any(|c| uses_local(c, l))
}

impl<'a> ExprCx<'a> {
    pub fn new(d: &'a dyn Dialect, cols: &'a [String], errors: &'a mut Vec<SqlError>) -> Self {
        ExprCx {
            d,
            cols,
            errors,
            locals: Vec::new(),
        }
    }

    fn refuse(&mut self, e: &Expr, what: String) -> String {
        self.errors.push(SqlError {
            code: Code::NotTranslatable,
            message: format!(
                "{what} cannot be translated to {} SQL faithfully",
                self.d.name()
            ),
            span: e.span,
            label: "this expression".into(),
        });
        "NULL".into()
    }

    /// The SQL of `e`, parenthesized.
    pub fn expr(&mut self, e: &Expr) -> String {
        let s = self.bare(e);
        match &e.kind {
            // Already atoms (a local's value is parenthesized where it was bound).
            ExprKind::Field(_) | ExprKind::Local(_) => s,
            ExprKind::Lit(v) if !matches!(v, Value::Int(i) if *i < 0) => s,
            _ => format!("({s})"),
        }
    }

    fn bare(&mut self, e: &Expr) -> String {
        let d = self.d;
        match &e.kind {
            ExprKind::Lit(v) => match v {
                Value::Null => "NULL".into(),
                Value::Int(i) => d.int_lit(*i),
                Value::Float(x) => d.float_lit(*x),
                Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
                Value::Str(s) => d.string(s),
                Value::Timestamp(_) => self.refuse(e, "a timestamp literal".into()),
            },
            ExprKind::Field(i) => match self.cols.get(*i) {
                Some(c) => c.clone(),
                None => self.refuse(e, format!("column #{i} (outside the input row)")),
            },
            ExprKind::Local(l) => match self.locals.iter().rev().find(|(x, _)| x == l) {
                Some((_, s)) => s.clone(),
                None => self.refuse(e, format!("local _{l} (unbound)")),
            },
            ExprKind::Let { local, value, body } => {
                if !uses_local(body, *local) && fallible(value) {
                    // flow evaluates an argument eagerly, even unused, and it may fail.
                    return self.refuse(
                        value,
                        "an unused function argument that can fail (flow evaluates it anyway)"
                            .into(),
                    );
                }
                let v = self.expr(value);
                self.locals.push((*local, v));
                let b = self.bare(body);
                self.locals.pop();
                b
            }
            ExprKind::Unary(UnOp::Not, a) => format!("NOT {}", self.expr(a)),
            ExprKind::Unary(UnOp::Neg, a) => format!("- {}", self.expr(a)),
            ExprKind::Binary(op, a, b) => self.binary(e, *op, a, b),
            ExprKind::Cast(a, s) => {
                let x = self.expr(a);
                match d.type_name(*s) {
                    Some(t) if a.ty.scalar == Scalar::Int && *s == Scalar::Float => {
                        format!("CAST({x} AS {t})")
                    }
                    _ => self.refuse(e, format!("a conversion to {}", s.name())),
                }
            }
            ExprKind::IsNull(a) => format!("{} IS NULL", self.expr(a)),
            ExprKind::Coalesce(a, b) => format!("COALESCE({}, {})", self.expr(a), self.expr(b)),
            ExprKind::If(c, t, f) => format!(
                "CASE WHEN {} THEN {} ELSE {} END",
                self.expr(c),
                self.expr(t),
                self.expr(f)
            ),
            ExprKind::Call(b, args) => self.call(e, *b, args),
        }
    }

    fn binary(&mut self, e: &Expr, op: BinOp, a: &Expr, b: &Expr) -> String {
        let d = self.d;
        let float = a.ty.scalar == Scalar::Float;
        let str_cmp = a.ty.scalar == Scalar::Str;
        let (x, y) = (self.expr(a), self.expr(b));
        match op {
            BinOp::And if fallible(b) => format!("CASE WHEN {x} THEN {y} ELSE FALSE END"),
            BinOp::Or if fallible(b) => format!("CASE WHEN {x} THEN TRUE ELSE {y} END"),
            BinOp::And => format!("{x} AND {y}"),
            BinOp::Or => format!("{x} OR {y}"),
            BinOp::Add => format!("{x} + {y}"),
            BinOp::Sub => format!("{x} - {y}"),
            BinOp::Mul => format!("{x} * {y}"),
            BinOp::Div if float => match d.float_div(&x, &y, &super::at(e.span)) {
                Some(s) => s,
                None => self.refuse(e, "float division".into()),
            },
            BinOp::Rem if float => match d.float_rem(&x, &y, &super::at(e.span)) {
                Some(s) => s,
                None => self.refuse(e, "float remainder `%`".into()),
            },
            BinOp::Div => d.int_div(&x, &y, &super::at(e.span)),
            BinOp::Rem => d.int_rem(&x, &y, &super::at(e.span)),
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let sym = match op {
                    BinOp::Eq => "=",
                    BinOp::Ne => "<>",
                    BinOp::Lt => "<",
                    BinOp::Le => "<=",
                    BinOp::Gt => ">",
                    _ => ">=",
                };
                let coll = if str_cmp { d.bytewise() } else { "" };
                let cmp = format!("{x}{coll} {sym} {y}{coll}");
                if !float {
                    cmp
                } else if op == BinOp::Ne {
                    // IEEE: NaN is unequal to everything; SQL engines order NaN above all.
                    format!("{cmp} OR {} OR {}", d.is_nan(&x), d.is_nan(&y))
                } else {
                    format!("{cmp} AND NOT {} AND NOT {}", d.is_nan(&x), d.is_nan(&y))
                }
            }
        }
    }

    fn whitespace(&self) -> String {
        let parts: Vec<String> = WHITE_SPACE.iter().map(|&c| self.d.chr(c)).collect();
        format!("({})", parts.join(" || "))
    }

    fn call(&mut self, e: &Expr, b: Builtin, args: &[Expr]) -> String {
        let d = self.d;
        let a: Vec<String> = args.iter().map(|x| self.expr(x)).collect();
        let arg = |i: usize| a.get(i).cloned().unwrap_or_else(|| "NULL".into());
        let scalar0 = args.first().map(|x| x.ty.scalar);
        match b {
            Builtin::Len => d.char_len(&arg(0)),
            Builtin::Upper | Builtin::Lower => {
                // Engines map case one character to one; Rust's full mapping turns ß into SS.
                // ASCII text maps alike everywhere; other text stops the job, never differs.
                let s = arg(0);
                let f = if b == Builtin::Upper {
                    "upper"
                } else {
                    "lower"
                };
                format!(
                    "CASE WHEN {} <> {} THEN {} ELSE {f}({s}) END",
                    d.byte_len(&s),
                    d.char_len(&s),
                    d.raise(
                        &format!(
                            "{f} of non-ASCII text is not translated{}",
                            super::at(e.span)
                        ),
                        Scalar::Str
                    )
                )
            }
            Builtin::Trim => d.trim_chars(&arg(0), &self.whitespace()),
            Builtin::Contains => d.contains(&arg(0), &arg(1)),
            Builtin::StartsWith => d.starts_with(&arg(0), &arg(1)),
            Builtin::EndsWith => d.ends_with(&arg(0), &arg(1)),
            Builtin::Substr => {
                let (s, start, count) = (arg(0), arg(1), arg(2));
                format!(
                    "CASE WHEN {start} < 0 OR {count} < 0 THEN {} WHEN {start} >= {} THEN '' ELSE {} END",
                    d.raise(
                        &format!("invalid function argument (substr){}", super::at(e.span)),
                        Scalar::Str
                    ),
                    d.char_len(&s),
                    d.substr(&s, &format!("{start} + 1"), &count)
                )
            }
            Builtin::Replace => format!("replace({}, {}, {})", arg(0), arg(1), arg(2)),
            Builtin::Concat => a.join(" || "),
            Builtin::Abs => format!("abs({})", arg(0)),
            Builtin::Round => d.round(&arg(0)),
            Builtin::Floor => d.floor(&arg(0)),
            Builtin::Ceil => d.ceil(&arg(0)),
            Builtin::Sqrt => {
                let x = arg(0);
                format!(
                    "CASE WHEN {x} < 0 THEN {} ELSE sqrt({x}) END",
                    d.float_lit(f64::NAN)
                )
            }
            Builtin::Min | Builtin::Max => {
                let (x, y) = (arg(0), arg(1));
                let (f, lt) = if b == Builtin::Min {
                    ("least", "<")
                } else {
                    ("greatest", ">")
                };
                if scalar0 != Some(Scalar::Float) {
                    return format!("{f}({x}, {y})");
                }
                // NaN if either is; -0.0 below +0.0.
                let neg_first = if b == Builtin::Min {
                    d.signbit(&x)
                } else {
                    format!("NOT {}", d.signbit(&x))
                };
                format!(
                    "CASE WHEN {} OR {} THEN {} WHEN {x} {lt} {y} THEN {x} WHEN {x} = {y} AND {neg_first} THEN {x} ELSE {y} END",
                    d.is_nan(&x),
                    d.is_nan(&y),
                    d.float_lit(f64::NAN)
                )
            }
            Builtin::ToInt => match scalar0 {
                Some(Scalar::Int) => arg(0),
                _ => d.float_to_int(&arg(0)),
            },
            Builtin::ToFloat => format!(
                "CAST({} AS {})",
                arg(0),
                d.type_name(Scalar::Float).unwrap_or("DOUBLE")
            ),
            Builtin::ToStr => match scalar0 {
                Some(Scalar::Str) => arg(0),
                Some(Scalar::Int) => format!(
                    "CAST({} AS {})",
                    arg(0),
                    d.type_name(Scalar::Str).unwrap_or("VARCHAR")
                ),
                Some(Scalar::Bool) => format!("CASE WHEN {} THEN 'true' ELSE 'false' END", arg(0)),
                Some(s) => self.refuse(
                    e,
                    format!(
                        "to_str of a {} (the engines format them differently)",
                        s.name()
                    ),
                ),
                None => self.refuse(e, "to_str without an argument".into()),
            },
            Builtin::ParseInt | Builtin::ParseFloat => {
                let t = d.trim_chars(&arg(0), &self.whitespace());
                let (pattern, ty) = if b == Builtin::ParseInt {
                    ("[+-]?[0-9]+", Scalar::Int)
                } else {
                    (
                        "[+-]?(([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?|[iI][nN][fF]|[iI][nN][fF][iI][nN][iI][tT][yY]|[nN][aA][nN])",
                        Scalar::Float,
                    )
                };
                let Some(cast) = d.try_cast(&t, ty) else {
                    return self.refuse(e, b.name().to_string());
                };
                let checked = if ty == Scalar::Float {
                    // A number too large for a float is null in flow, not infinity.
                    format!(
                        "CASE WHEN {} AND NOT {} THEN NULL ELSE {cast} END",
                        d.is_inf(&cast),
                        d.partial_match(&t, "'[iI]'")
                    )
                } else {
                    cast
                };
                format!(
                    "CASE WHEN {} THEN {checked} END",
                    d.full_match(&t, &d.string(pattern))
                )
            }
            Builtin::ParseTimestamp | Builtin::FromUnix | Builtin::Unix => self.refuse(
                e,
                format!("{} (timestamps are not translated yet)", b.name()),
            ),
            // Engines' regular expressions (RE2, POSIX) differ from Rust's `regex` (Unicode
            // classes, replacement syntax), and timestamps are not translated yet.
            Builtin::Matches | Builtin::Extract | Builtin::ReplaceAll => self.refuse(
                e,
                format!("{} (the engine's regular expressions differ)", b.name()),
            ),
            Builtin::FormatTimestamp
            | Builtin::DateTrunc
            | Builtin::Year
            | Builtin::Month
            | Builtin::Day
            | Builtin::Hour
            | Builtin::Minute
            | Builtin::Second
            | Builtin::DayOfWeek
            | Builtin::AddSeconds
            | Builtin::AddDays
            | Builtin::DiffSeconds
            | Builtin::UtcToLocal
            | Builtin::LocalToUtc => self.refuse(
                e,
                format!("{} (timestamps are not translated yet)", b.name()),
            ),
            Builtin::IsNull => format!("{} IS NULL", arg(0)),
        }
    }

    /// One aggregate of a `group`.
    pub fn agg(&mut self, a: &Agg) -> String {
        let d = self.d;
        let Some(arg) = &a.arg else {
            return "count(*)".into();
        };
        let scalar = arg.ty.scalar;
        let x = self.expr(arg);
        let coll = if scalar == Scalar::Str {
            d.bytewise()
        } else {
            ""
        };
        match a.func {
            AggFunc::Count => "count(*)".into(),
            AggFunc::Sum if scalar == Scalar::Int => {
                // The engines sum bigints into a wider type: the cast raises where flow's sum
                // overflows. No non-null value: 0.
                format!(
                    "CAST(COALESCE(sum({x}), 0) AS {})",
                    d.type_name(Scalar::Int).unwrap_or("BIGINT")
                )
            }
            AggFunc::Sum => format!("COALESCE(sum({x}), {})", d.float_lit(0.0)),
            AggFunc::Avg => format!(
                "CAST(avg({x}) AS {})",
                d.type_name(Scalar::Float).unwrap_or("DOUBLE")
            ),
            // Nulls are not counted, as flow's; floats by value (-0.0 = 0.0, NaN = NaN) in
            // both engines.
            AggFunc::CountDistinct => format!("count(DISTINCT {x})"),
            AggFunc::First | AggFunc::Last => self.refuse(
                arg,
                format!(
                    "`{}` (a group's {} row in input order, and SQL has no input order)",
                    a.func.name(),
                    a.func.name()
                ),
            ),
            AggFunc::Min | AggFunc::Max => {
                let f = if a.func == AggFunc::Min { "min" } else { "max" };
                if scalar == Scalar::Float {
                    // One NaN makes the group's min and max NaN (runtime/group.rs).
                    format!(
                        "CASE WHEN bool_or({}) THEN {} ELSE {f}({x}) END",
                        d.is_nan(&x),
                        d.float_lit(f64::NAN)
                    )
                } else {
                    format!("{f}({x}{coll})")
                }
            }
        }
    }
}
