//! Type checking of expressions: AST expression → typed `hir::Expr`.

use super::cx::{CALL_BASE, Call, Checker, FnScope};
use super::hir::{BinOp, Expr, ExprKind, UnOp};
use crate::diagnostics::suggest;
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;
use crate::stdlib::{Builtin, Literal, Param, Ret, literal};
use crate::syntax::ast::{self, BinaryOp, UnaryOp};
use crate::syntax::depth;
use crate::types::{RowType, Scalar, Type, Value};
use std::collections::HashSet;

/// A name whose value is proven non-null in some region (narrowing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NullKey {
    Column(usize),
    Local(usize),
}

/// What names mean inside an expression.
#[derive(Clone)]
pub enum Names<'r> {
    /// A stage expression: names are the columns of the input row.
    Row(&'r RowType),
    /// A function body: names are its parameters `(name, local, type)`.
    Params(Vec<(String, usize, Type)>),
}

pub struct ExprCx<'c, 'p, 'r> {
    pub ck: &'c mut Checker<'p>,
    pub names: Names<'r>,
    /// Borrowed for stage expressions: cloning a file's fn scope per expression made checking
    /// quadratic in the size of the file.
    pub scope: std::borrow::Cow<'r, FnScope>,
    pub nonnull: HashSet<NullKey>,
    pub next_local: usize,
    /// Nodes of `fn` bodies inlined into this expression so far (capped: `MAX_INLINED`).
    pub inlined: usize,
    /// In a `fn` body: its calls of `fn`s, left as leaves (see `check::inline`). `None` in a
    /// stage expression, where calls are inlined.
    pub calls: Option<Vec<Call>>,
}

/// The deepest typed expression: the language's limit plus a margin for the conversions the
/// checker inserts (`Cast`, the null test of a widened `int?`). Applied after `fn`s are inlined.
pub const MAX_HIR_DEPTH: usize = depth::MAX_DEPTH + 64;

/// The most nodes the `fn` calls of one expression may expand to (their bodies are inlined).
pub const MAX_INLINED: usize = 100_000;

/// `None` = an error was reported; callers propagate it without reporting more.
pub type Checked = Option<Expr>;

impl<'c, 'p, 'r> ExprCx<'c, 'p, 'r> {
    fn err(&mut self, d: Diagnostic) -> Checked {
        self.ck.diags.push(d);
        None
    }

    /// Checks a whole expression (a stage's): also its depth once `fn`s are inlined.
    pub fn check_root(&mut self, e: &ast::Expr) -> Checked {
        let checked = self.check(e)?;
        if let Some(at) = checked.deeper_than(MAX_HIR_DEPTH) {
            return self.err(depth::too_deep(
                at,
                "with the `fn`s it calls inlined, this is",
            ));
        }
        Some(checked)
    }

    pub fn check(&mut self, e: &ast::Expr) -> Checked {
        let checked = self.check_kind(e);
        if let Some(c) = &checked {
            let field = matches!(c.kind, ExprKind::Field(_));
            self.ck.index.expr(e.span, c.ty, field);
        }
        checked
    }

    fn check_kind(&mut self, e: &ast::Expr) -> Checked {
        let span = e.span;
        match &e.kind {
            ast::ExprKind::Int(i) => {
                Some(Expr::new(ExprKind::Lit(Value::Int(*i)), Type::INT, span))
            }
            ast::ExprKind::Float(x) => Some(Expr::new(
                ExprKind::Lit(Value::Float(*x)),
                Type::FLOAT,
                span,
            )),
            ast::ExprKind::Str(s) => Some(Expr::new(
                ExprKind::Lit(Value::Str(s.clone())),
                Type::STR,
                span,
            )),
            ast::ExprKind::Bool(b) => {
                Some(Expr::new(ExprKind::Lit(Value::Bool(*b)), Type::BOOL, span))
            }
            ast::ExprKind::Null => Some(Expr::new(ExprKind::Lit(Value::Null), Type::NULL, span)),
            ast::ExprKind::Error => None,
            ast::ExprKind::Name(id) => self.name(id),
            ast::ExprKind::Call { module, name, args } => {
                self.call(module.as_ref(), name, args, span)
            }
            ast::ExprKind::Unary(op, inner) => self.unary(*op, inner, span),
            ast::ExprKind::Binary(op, a, b) => self.binary(*op, a, b, span),
            ast::ExprKind::If(c, t, f) => self.if_expr(c, t, f, span),
        }
    }

    fn name(&mut self, id: &ast::Ident) -> Checked {
        match &self.names {
            Names::Row(row) => match row.index_of(&id.name) {
                Some(i) => {
                    let mut ty = row.fields[i].ty;
                    if self.nonnull.contains(&NullKey::Column(i)) {
                        ty.nullable = false;
                    }
                    Some(Expr::new(ExprKind::Field(i), ty, id.span))
                }
                None => {
                    let mut d = Diagnostic::error(
                        Code::UnknownField,
                        format!("unknown field `{}`", id.name),
                    )
                    .label(id.span, "the rows here have no such column");
                    if let Some(s) = suggest(&id.name, row.fields.iter().map(|f| f.name.as_str())) {
                        d = d.help(s);
                    }
                    d = d.note(format!("the rows here are {row}"));
                    self.err(d)
                }
            },
            Names::Params(params) => match params.iter().find(|(n, _, _)| *n == id.name) {
                Some((_, local, ty)) => {
                    let mut ty = *ty;
                    if self.nonnull.contains(&NullKey::Local(*local)) {
                        ty.nullable = false;
                    }
                    Some(Expr::new(ExprKind::Local(*local), ty, id.span))
                }
                None => {
                    let mut d = Diagnostic::error(
                        Code::UnknownField,
                        format!("unknown name `{}`", id.name),
                    )
                    .label(id.span, "not a parameter of this function");
                    if let Some(s) = suggest(&id.name, params.iter().map(|(n, _, _)| n.as_str())) {
                        d = d.help(s);
                    }
                    let d = d
                        .note("a function body sees only its parameters, not the columns of a row");
                    self.err(d)
                }
            },
        }
    }

    fn unary(&mut self, op: UnaryOp, inner: &ast::Expr, span: Span) -> Checked {
        let e = self.check(inner)?;
        match op {
            UnaryOp::Not => {
                self.require_present(&e, "`!`")?;
                if e.ty.scalar != Scalar::Bool {
                    return self.err(
                        Diagnostic::error(
                            Code::OperatorTypes,
                            format!("`!` needs a bool, found {}", e.ty),
                        )
                        .label(e.span, format!("this is {}", e.ty)),
                    );
                }
                Some(Expr::new(
                    ExprKind::Unary(UnOp::Not, Box::new(e)),
                    Type::BOOL,
                    span,
                ))
            }
            UnaryOp::Neg => {
                self.require_present(&e, "`-`")?;
                if !e.ty.scalar.is_numeric() {
                    return self.err(
                        Diagnostic::error(
                            Code::OperatorTypes,
                            format!("`-` needs a number, found {}", e.ty),
                        )
                        .label(e.span, format!("this is {}", e.ty)),
                    );
                }
                // Fold `-literal` so that `-9223372036854775808`-style bounds stay literals.
                if let ExprKind::Lit(Value::Float(x)) = e.kind {
                    return Some(Expr::new(ExprKind::Lit(Value::Float(-x)), e.ty, span));
                }
                let ty = e.ty;
                Some(Expr::new(ExprKind::Unary(UnOp::Neg, Box::new(e)), ty, span))
            }
        }
    }

    /// Reports E0022 if `e` may be null.
    fn require_present(&mut self, e: &Expr, what: &str) -> Option<()> {
        if e.ty.scalar == Scalar::Null {
            self.err(
                Diagnostic::error(
                    Code::NullableValue,
                    format!("{what} cannot be applied to `null`"),
                )
                .label(e.span, "this is always null"),
            );
            return None;
        }
        if e.ty.nullable {
            let mut d = Diagnostic::error(
                Code::NullableValue,
                format!("{what} needs a non-null value, but this is {}", e.ty),
            )
            .label(e.span, format!("this is {}, which may be null", e.ty));
            d = d.help(format!(
                "give a default with `??`, e.g. `… ?? {}`",
                default_literal(e.ty.scalar)
            ));
            d = d.help("or test it first: `if x != null { … } else { … }`, or drop such rows with `filter x != null`");
            self.err(d);
            return None;
        }
        Some(())
    }

    fn binary(&mut self, op: BinaryOp, a: &ast::Expr, b: &ast::Expr, span: Span) -> Checked {
        match op {
            BinaryOp::And | BinaryOp::Or => {
                let l = self.check(a)?;
                if op == BinaryOp::Or && l.ty.scalar == Scalar::Str {
                    return self.err(
                        Diagnostic::error(
                            Code::HabitSqlConcat,
                            "`||` is boolean or; it does not join text",
                        )
                        .label(span, "`||` between text")
                        .label(l.span, format!("this is {}", l.ty))
                        .help("join text with `concat(a, b)`")
                        .note("in SQL `a || b` concatenates; in flow it is `or`"),
                    );
                }
                self.bool_operand(&l, op)?;
                // `x != null && <x used>`: x is non-null on the right of &&; `x == null || …` likewise.
                let saved = self.nonnull.clone();
                self.nonnull.extend(facts(&l, op == BinaryOp::And));
                let r = self.check(b);
                self.nonnull = saved;
                let r = r?;
                self.bool_operand(&r, op)?;
                let hop = if op == BinaryOp::And {
                    BinOp::And
                } else {
                    BinOp::Or
                };
                Some(Expr::new(
                    ExprKind::Binary(hop, Box::new(l), Box::new(r)),
                    Type::BOOL,
                    span,
                ))
            }
            BinaryOp::Coalesce => {
                let l = self.check(a)?;
                let r = self.check(b)?;
                if l.ty.scalar == Scalar::Null {
                    return Some(r);
                }
                let Some(target) = unify(l.ty.with_nullable(false), r.ty) else {
                    return self.err(
                        Diagnostic::error(
                            Code::TypeMismatch,
                            format!("`??` default has type {}, but the value is {}", r.ty, l.ty),
                        )
                        .label(r.span, format!("this is {}", r.ty))
                        .label(l.span, format!("this is {}", l.ty)),
                    );
                };
                let l = coerce(l, target.with_nullable(true));
                let r = coerce(r, target);
                Some(Expr::new(
                    ExprKind::Coalesce(Box::new(l), Box::new(r)),
                    target,
                    span,
                ))
            }
            BinaryOp::Eq | BinaryOp::Ne if is_null_lit(a) || is_null_lit(b) => {
                let other = if is_null_lit(a) { b } else { a };
                let e = self.check(other)?;
                let is_null = Expr::new(ExprKind::IsNull(Box::new(e)), Type::BOOL, span);
                Some(if op == BinaryOp::Eq {
                    is_null
                } else {
                    Expr::new(
                        ExprKind::Unary(UnOp::Not, Box::new(is_null)),
                        Type::BOOL,
                        span,
                    )
                })
            }
            _ => {
                if matches!(
                    op,
                    BinaryOp::Eq
                        | BinaryOp::Ne
                        | BinaryOp::Lt
                        | BinaryOp::Le
                        | BinaryOp::Gt
                        | BinaryOp::Ge
                ) && let Some(d) = self
                    .len_of_nullable(a, b)
                    .or_else(|| self.len_of_nullable(b, a))
                {
                    return self.err(d);
                }
                let l = self.check(a)?;
                let r = self.check(b)?;
                let sym = op.symbol();
                self.require_present(&l, &format!("`{sym}`"))?;
                self.require_present(&r, &format!("`{sym}`"))?;
                let (hop, arith) = match op {
                    BinaryOp::Add => (BinOp::Add, true),
                    BinaryOp::Sub => (BinOp::Sub, true),
                    BinaryOp::Mul => (BinOp::Mul, true),
                    BinaryOp::Div => (BinOp::Div, true),
                    BinaryOp::Rem => (BinOp::Rem, true),
                    BinaryOp::Eq => (BinOp::Eq, false),
                    BinaryOp::Ne => (BinOp::Ne, false),
                    BinaryOp::Lt => (BinOp::Lt, false),
                    BinaryOp::Le => (BinOp::Le, false),
                    BinaryOp::Gt => (BinOp::Gt, false),
                    BinaryOp::Ge => (BinOp::Ge, false),
                    BinaryOp::And | BinaryOp::Or | BinaryOp::Coalesce => return None,
                };
                let common = unify(l.ty, r.ty).filter(|t| !arith || t.scalar.is_numeric());
                let ordered = matches!(hop, BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge);
                let Some(common) = common.filter(|t| !ordered || t.scalar != Scalar::Bool) else {
                    let text = |t: Type| t.scalar == Scalar::Str;
                    let number = |t: Type| t.scalar.is_numeric();
                    let code = if op == BinaryOp::Add && (text(l.ty) || text(r.ty)) {
                        Code::HabitStrPlus
                    } else if !arith
                        && ((text(l.ty) && number(r.ty)) || (number(l.ty) && text(r.ty)))
                    {
                        Code::HabitStrIntCompare
                    } else {
                        Code::OperatorTypes
                    };
                    let message = match code {
                        Code::HabitStrPlus => format!(
                            "`+` adds numbers; it does not join text ({} + {})",
                            l.ty, r.ty
                        ),
                        Code::HabitStrIntCompare => format!(
                            "`{sym}` cannot compare text with a number ({} {sym} {})",
                            l.ty, r.ty
                        ),
                        _ => format!("`{sym}` cannot be applied to {} and {}", l.ty, r.ty),
                    };
                    let mut d = Diagnostic::error(code, message)
                        .label(span, format!("{} {sym} {}", l.ty, r.ty))
                        .label(l.span, format!("this is {}", l.ty))
                        .label(r.span, format!("this is {}", r.ty));
                    if op == BinaryOp::Add
                        && (l.ty.scalar == Scalar::Str || r.ty.scalar == Scalar::Str)
                    {
                        d = d.help(if text(l.ty) && text(r.ty) {
                            "`+` adds numbers; join text with `concat(a, b)`"
                        } else {
                            "`+` adds numbers; join text with `concat(a, b)`, converting the number with `to_str(n)`"
                        });
                    } else if code == Code::HabitStrIntCompare {
                        let (s_side, n_side) = if text(l.ty) { (a, b) } else { (b, a) };
                        let num = if let ast::ExprKind::Int(i) = n_side.kind {
                            format!("\"{i}\"")
                        } else {
                            "to_str(n)".into()
                        };
                        let parse = if l.ty.scalar == Scalar::Float || r.ty.scalar == Scalar::Float
                        {
                            "parse_float"
                        } else {
                            "parse_int"
                        };
                        let _ = s_side;
                        d = d.help(format!("compare text with text (`… {sym} {num}`), or parse the text: `{parse}(s) ?? 0 {sym} …`"));
                        d = d.note("flow never converts between text and numbers implicitly, unlike SQL or JavaScript");
                    } else if arith {
                        d = d.help("arithmetic needs int or float on both sides");
                    } else {
                        d = d.help("convert one side: `to_float`, `to_int`, `to_str`, `parse_int`, `parse_float`");
                    }
                    return self.err(d);
                };
                let l = coerce(l, common);
                let r = coerce(r, common);
                let ty = if arith { common } else { Type::BOOL };
                Some(Expr::new(
                    ExprKind::Binary(hop, Box::new(l), Box::new(r)),
                    ty,
                    span,
                ))
            }
        }
    }

    /// `len(x) == 0` where `x` is `str?`: a test for missing text written the Python way.
    fn len_of_nullable(&mut self, call: &ast::Expr, other: &ast::Expr) -> Option<Diagnostic> {
        let ast::ExprKind::Call {
            module: None,
            name,
            args,
        } = &call.kind
        else {
            return None;
        };
        if name.name != "len" || args.len() != 1 || !matches!(other.kind, ast::ExprKind::Int(_)) {
            return None;
        }
        if self.scope.fns.contains_key("len") {
            return None;
        }
        let arg = &args[0].value;
        // Only a column or parameter: looking it up has no effect but a diagnostic, which is
        // dropped here (the normal path reports it).
        if !matches!(arg.kind, ast::ExprKind::Name(_)) {
            return None;
        }
        let before = self.ck.diags.len();
        let e = self.check(arg);
        self.ck.diags.truncate(before);
        let e = e?;
        (e.ty.scalar == Scalar::Str && e.ty.nullable).then(|| {
            Diagnostic::error(
                Code::HabitLenNullable,
                "`len` of a `str?` value: an empty-or-missing test needs the null case too",
            )
            .label(arg.span, "this is str?, which may be null")
            .label(call.span, "`len` needs text that is there")
            .help("for missing text write `x == null`; for missing or empty `(x ?? \"\") == \"\"`")
            .note("in flow a null is not an empty string (unlike SQL's NULL-tolerant functions or Python's falsy \"\")")
        })
    }

    fn bool_operand(&mut self, e: &Expr, op: BinaryOp) -> Option<()> {
        let sym = op.symbol();
        self.require_present(e, &format!("`{sym}`"))?;
        if e.ty.scalar != Scalar::Bool {
            self.err(
                Diagnostic::error(
                    Code::OperatorTypes,
                    format!("`{sym}` needs bool operands, found {}", e.ty),
                )
                .label(e.span, format!("this is {}", e.ty)),
            );
            return None;
        }
        Some(())
    }

    fn if_expr(&mut self, c: &ast::Expr, t: &ast::Expr, f: &ast::Expr, span: Span) -> Checked {
        let cond = self.check(c)?;
        if cond.ty.scalar != Scalar::Bool || cond.ty.nullable {
            if cond.ty.scalar == Scalar::Bool {
                self.require_present(&cond, "`if`")?;
            }
            return self.err(
                Diagnostic::error(
                    Code::TypeMismatch,
                    format!("`if` condition must be bool, found {}", cond.ty),
                )
                .label(cond.span, format!("this is {}", cond.ty)),
            );
        }
        let saved = self.nonnull.clone();
        self.nonnull.extend(facts(&cond, true));
        let then = self.check(t);
        self.nonnull = saved.clone();
        self.nonnull.extend(facts(&cond, false));
        let other = self.check(f);
        self.nonnull = saved;
        let (then, other) = (then?, other?);
        let Some(ty) = unify(then.ty, other.ty) else {
            return self.err(
                Diagnostic::error(
                    Code::BranchMismatch,
                    format!(
                        "`if` branches have different types: {} and {}",
                        then.ty, other.ty
                    ),
                )
                .label(then.span, format!("this is {}", then.ty))
                .label(other.span, format!("this is {}", other.ty))
                .help("both branches must have one type; convert one of them"),
            );
        };
        let then = coerce(then, ty);
        let other = coerce(other, ty);
        Some(Expr::new(
            ExprKind::If(Box::new(cond), Box::new(then), Box::new(other)),
            ty,
            span,
        ))
    }

    fn call(
        &mut self,
        module: Option<&ast::Ident>,
        name: &ast::Ident,
        args: &[ast::Arg],
        span: Span,
    ) -> Checked {
        if let Some(a) = args.iter().find(|a| a.name.is_some()) {
            let n = a.name.as_ref().map(|n| n.name.clone()).unwrap_or_default();
            return self.err(
                Diagnostic::error(
                    Code::WrongArgCount,
                    format!("functions take positional arguments, not `{n}: …`"),
                )
                .label(a.span, "named argument"),
            );
        }
        if module.is_none()
            && crate::check::hir::AggFunc::from_name(&name.name).is_some()
            && Builtin::from_name(&name.name).is_none()
        {
            return self.err(
                Diagnostic::error(
                    Code::AggregateOutsideGroup,
                    format!(
                        "`{}` is an aggregate and can only be used in `group`",
                        name.name
                    ),
                )
                .label(name.span, "aggregate outside group")
                .help(format!("e.g. `| group key {{ x: {}(…) }}`", name.name)),
            );
        }
        // User / module functions shadow builtins.
        let target = match module {
            Some(m) => match self.scope.modules.get(&m.name) {
                Some(fns) => match fns.get(&name.name) {
                    Some(id) => Some(*id),
                    None => {
                        let mut d = Diagnostic::error(
                            Code::UnknownFunction,
                            format!("module `{}` has no function `{}`", m.name, name.name),
                        )
                        .label(name.span, "unknown function");
                        if let Some(s) = suggest(&name.name, fns.keys().map(|k| k.as_str())) {
                            d = d.help(s);
                        }
                        return self.err(d);
                    }
                },
                None if Builtin::from_name(&name.name).is_some()
                    && !self.scope.fns.contains_key(&m.name) =>
                {
                    let call = if args.is_empty() {
                        format!("{}({})", name.name, m.name)
                    } else {
                        format!("{}({}, …)", name.name, m.name)
                    };
                    return self.err(
                        Diagnostic::error(
                            Code::HabitMethodCall,
                            format!("flow has no methods: write `{call}`"),
                        )
                        .label(span, "a method call")
                        .help(format!(
                            "functions take the value as their first argument: `{call}`"
                        ))
                        .note(format!(
                            "`{}.{}(…)` would call a function of a module named `{}`",
                            m.name, name.name, m.name
                        )),
                    );
                }
                None => {
                    return self.err(
                        Diagnostic::error(
                            Code::UnknownFunction,
                            format!("unknown module `{}`", m.name),
                        )
                        .label(m.span, "no module of this name is in scope")
                        .help(format!(
                            "bring a stdlib module in with `use std.{}`",
                            m.name
                        )),
                    );
                }
            },
            None => self.scope.fns.get(&name.name).copied(),
        };
        let mut checked = Vec::with_capacity(args.len());
        for a in args {
            checked.push(self.check(&a.value));
        }
        let checked: Vec<Expr> = checked.into_iter().collect::<Option<Vec<_>>>()?;
        if let Some(id) = target {
            return self.user_call(id, name, checked, span);
        }
        let Some(b) = Builtin::from_name(&name.name) else {
            let mut d = Diagnostic::error(
                Code::UnknownFunction,
                format!("unknown function `{}`", name.name),
            )
            .label(name.span, "not a builtin or a fn of this file");
            let mut candidates: Vec<&str> = crate::stdlib::ALL.iter().map(|b| b.name()).collect();
            candidates.extend(self.scope.fns.keys().map(|k| k.as_str()));
            if let Some(s) = suggest(&name.name, candidates) {
                d = d.help(s);
            }
            for (m, fns) in &self.scope.modules {
                if fns.contains_key(&name.name) {
                    d = d.help(format!("did you mean `{m}.{}`?", name.name));
                }
            }
            return self.err(d);
        };
        self.builtin_call(b, checked, span)
    }

    fn builtin_call(&mut self, b: Builtin, args: Vec<Expr>, span: Span) -> Checked {
        let sig = b.signature();
        let least = sig.params.len() - sig.optional;
        let count_ok = if sig.variadic {
            args.len() >= sig.params.len()
        } else {
            (least..=sig.params.len()).contains(&args.len())
        };
        if !count_ok {
            return self.err(
                Diagnostic::error(
                    Code::WrongArgCount,
                    format!(
                        "`{}` takes {}{} argument{}, but {} were given",
                        b.name(),
                        if sig.variadic { "at least " } else { "" },
                        if sig.optional > 0 {
                            format!("{least} or {}", sig.params.len())
                        } else {
                            sig.params.len().to_string()
                        },
                        if sig.params.len() == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .label(span, "wrong number of arguments")
                .note(format!("{}: {}", b.name(), sig.doc)),
            );
        }
        // The shared scalar of Numeric parameters.
        let numeric = args
            .iter()
            .zip(sig.params.iter())
            .filter(|(_, p)| **p == Param::Numeric)
            .fold(None::<Scalar>, |acc, (a, _)| match (acc, a.ty.scalar) {
                (Some(Scalar::Float), _) | (_, Scalar::Float) => Some(Scalar::Float),
                _ => Some(Scalar::Int),
            });
        let mut out = Vec::with_capacity(args.len());
        for (i, a) in args.into_iter().enumerate() {
            let p = sig.params[i.min(sig.params.len() - 1)];
            let ordinal = i + 1;
            match p {
                Param::AnyNullable => {
                    if a.ty.scalar == Scalar::Null {
                        out.push(coerce(a, Type::nullable(Scalar::Int)));
                    } else {
                        out.push(a);
                    }
                }
                Param::Any => {
                    self.require_present(&a, &format!("argument {ordinal} of `{}`", b.name()))?;
                    out.push(a);
                }
                Param::Numeric => {
                    self.require_present(&a, &format!("argument {ordinal} of `{}`", b.name()))?;
                    if !a.ty.scalar.is_numeric() {
                        return self.arg_mismatch(b.name(), ordinal, "a number", &a);
                    }
                    let target = Type::new(numeric.unwrap_or(Scalar::Int));
                    out.push(coerce(a, target));
                }
                Param::Is(s) => {
                    self.require_present(&a, &format!("argument {ordinal} of `{}`", b.name()))?;
                    let target = Type::new(s);
                    if unify(a.ty, target) != Some(target) {
                        return self.arg_mismatch(b.name(), ordinal, s.name(), &a);
                    }
                    out.push(coerce(a, target));
                }
            }
        }
        self.check_literals(b, &out)?;
        let ty = match sig.ret {
            Ret::Is(s) => Type::new(s),
            Ret::Nullable(s) => Type::nullable(s),
            Ret::SameNumeric => Type::new(numeric.unwrap_or(Scalar::Int)),
        };
        Some(Expr::new(ExprKind::Call(b, out), ty, span))
    }

    /// The literal parameters of a builtin (patterns, formats, units, zones): each must be a
    /// string literal and valid; an error points into the string at the offending part.
    fn check_literals(&mut self, b: Builtin, args: &[Expr]) -> Option<()> {
        for (i, kind) in b.literals() {
            let Some(a) = args.get(*i) else { continue };
            let what = match kind {
                Literal::Regex => "regular expression",
                Literal::TimeFormat => "time format",
                Literal::TruncUnit => "unit",
                Literal::TimeZone => "time zone",
            };
            let ExprKind::Lit(Value::Str(text)) = &a.kind else {
                self.err(
                    Diagnostic::error(
                        Code::LiteralArgumentRequired,
                        format!("the {what} of `{}` must be a string literal", b.name()),
                    )
                    .label(a.span, "not a literal")
                    .note(format!(
                        "it is checked and compiled once, before any row is read; to choose between {what}s, use `if c {{ {}(…) }} else {{ {}(…) }}`",
                        b.name(),
                        b.name()
                    )),
                );
                return None;
            };
            let code = match kind {
                Literal::Regex => Code::InvalidRegex,
                Literal::TimeFormat => Code::InvalidTimeFormat,
                Literal::TruncUnit => Code::UnknownTruncUnit,
                Literal::TimeZone => Code::UnknownTimeZone,
            };
            match literal::validate(*kind, text) {
                Ok(()) => {}
                Err(bad) => {
                    let at = span_in_literal(a.span, text, bad.range.clone());
                    let mut d = Diagnostic::error(code, format!("invalid {what}: {}", bad.message))
                        .label(at, "here");
                    if let Some(h) = bad.help {
                        d = d.help(h);
                    }
                    self.err(d);
                    return None;
                }
            }
            // A literal group of `extract` must exist in the pattern.
            if b == Builtin::Extract
                && let (Ok(re), Some(g)) = (literal::regex(text), args.get(2))
                && let ExprKind::Lit(Value::Int(n)) = g.kind
                && (n < 0 || n as u64 >= literal::group_count(&re) as u64)
            {
                let groups = literal::group_count(&re) - 1;
                self.err(
                    Diagnostic::error(
                        Code::NoSuchGroup,
                        format!("the pattern has no group {n}"),
                    )
                    .label(g.span, format!("the pattern has {groups} group{}", if groups == 1 { "" } else { "s" }))
                    .help("group 0 is the whole match; groups are numbered by their `(` from the left"),
                );
                return None;
            }
        }
        Some(())
    }

    fn arg_mismatch(&mut self, func: &str, ordinal: usize, expected: &str, a: &Expr) -> Checked {
        self.err(
            Diagnostic::error(
                Code::TypeMismatch,
                format!(
                    "argument {ordinal} of `{func}` must be {expected}, found {}",
                    a.ty
                ),
            )
            .label(a.span, format!("this is {}", a.ty)),
        )
    }

    fn user_call(&mut self, id: usize, name: &ast::Ident, args: Vec<Expr>, span: Span) -> Checked {
        let f = self.ck.fn_hir(id, name.span)?;
        if args.len() != f.params.len() {
            return self.err(
                Diagnostic::error(
                    Code::WrongArgCount,
                    format!(
                        "`{}` takes {} argument{}, but {} were given",
                        name.name,
                        f.params.len(),
                        if f.params.len() == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .label(span, "wrong number of arguments")
                .label(f.span, "defined here"),
            );
        }
        let (size, deep) = (f.size, f.depth);
        if deep + args.len() > MAX_HIR_DEPTH {
            return self.err(depth::too_deep(span, "this call's expansion is").label(
                f.span,
                format!("the body of `{}` is {deep} levels deep", name.name),
            ));
        }
        self.inlined += size + args.len();
        if self.inlined > MAX_INLINED {
            return self.err(
                Diagnostic::error(
                    Code::InliningTooLarge,
                    format!("`fn` calls expand to more than {MAX_INLINED} nodes here"),
                )
                .label(
                    span,
                    format!("this call inlines the {size} nodes of `{}`", name.name),
                )
                .label(f.span, "defined here")
                .help("call a function once and reuse its result (an earlier `map` stage), or simplify the functions"),
            );
        }
        let base = self.next_local;
        self.next_local += if self.calls.is_some() {
            f.params.len()
        } else {
            f.locals
        };
        let mut lets = Vec::with_capacity(args.len());
        for (i, (a, (pname, pty))) in args.into_iter().zip(f.params.iter()).enumerate() {
            if !pty.nullable {
                self.require_present(&a, &format!("parameter `{pname}` of `{}`", name.name))?;
            }
            if unify(a.ty, *pty).is_none_or(|t| t.scalar != pty.scalar) {
                return self.err(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        format!(
                            "argument {} of `{}` must be {}, found {}",
                            i + 1,
                            name.name,
                            pty,
                            a.ty
                        ),
                    )
                    .label(a.span, format!("this is {}", a.ty))
                    .label(
                        f.span,
                        format!("parameter `{pname}` is declared {pty} here"),
                    ),
                );
            };
            lets.push((base + i, coerce(a, *pty)));
        }
        let params: Vec<usize> = (base..base + f.params.len()).collect();
        let mut body = match &mut self.calls {
            Some(calls) => {
                calls.push(Call {
                    callee: f.clone(),
                    args: params,
                });
                Expr::new(ExprKind::Local(CALL_BASE + calls.len() - 1), f.ty, span)
            }
            None => {
                let mut next = base + f.params.len();
                super::inline::expand(&f, &params, &mut next, f.ty, span)
            }
        };
        for (local, value) in lets.into_iter().rev() {
            let ty = body.ty;
            body = Expr::new(
                ExprKind::Let {
                    local,
                    value: Box::new(value),
                    body: Box::new(body),
                },
                ty,
                span,
            );
        }
        Some(body)
    }
}

fn default_literal(s: Scalar) -> &'static str {
    match s {
        Scalar::Int => "0",
        Scalar::Float => "0.0",
        Scalar::Bool => "false",
        Scalar::Str => "\"\"",
        Scalar::Timestamp => "from_unix(0)",
        Scalar::Null => "…",
    }
}

fn is_null_lit(e: &ast::Expr) -> bool {
    matches!(e.kind, ast::ExprKind::Null)
}

/// The type both may take: int widens to float, `null` to any nullable type, `T` to `T?`.
pub fn unify(a: Type, b: Type) -> Option<Type> {
    let nullable = a.nullable || b.nullable;
    let scalar = match (a.scalar, b.scalar) {
        (x, y) if x == y => x,
        (Scalar::Null, y) => y,
        (x, Scalar::Null) => x,
        (Scalar::Int, Scalar::Float) | (Scalar::Float, Scalar::Int) => Scalar::Float,
        _ => return None,
    };
    Some(Type { scalar, nullable })
}

/// Converts `e` to `target` (which `unify` produced): types a `null` literal, widens int→float.
pub fn coerce(mut e: Expr, target: Type) -> Expr {
    if e.ty.scalar == target.scalar {
        if e.ty.nullable && !target.nullable {
            return e;
        }
        e.ty.nullable = e.ty.nullable || target.nullable;
        return e;
    }
    match e.ty.scalar {
        Scalar::Null => retype_null(e, target),
        Scalar::Int if target.scalar == Scalar::Float => {
            if let ExprKind::Lit(Value::Int(i)) = e.kind {
                return Expr::new(
                    ExprKind::Lit(Value::Float(i as f64)),
                    Type {
                        scalar: Scalar::Float,
                        nullable: target.nullable,
                    },
                    e.span,
                );
            }
            if !e.ty.nullable {
                let span = e.span;
                return Expr::new(
                    ExprKind::Cast(Box::new(e), Scalar::Float),
                    Type {
                        scalar: Scalar::Float,
                        nullable: target.nullable,
                    },
                    span,
                );
            }
            // A nullable int: null stays null, a value is widened.
            let span = e.span;
            let mut present = e.clone();
            present.ty.nullable = false;
            let test = Expr::new(ExprKind::IsNull(Box::new(e)), Type::BOOL, span);
            let null = Expr::new(
                ExprKind::Lit(Value::Null),
                Type::nullable(Scalar::Float),
                span,
            );
            let cast = Expr::new(
                ExprKind::Cast(Box::new(present), Scalar::Float),
                Type::FLOAT,
                span,
            );
            Expr::new(
                ExprKind::If(Box::new(test), Box::new(null), Box::new(cast)),
                Type::nullable(Scalar::Float),
                span,
            )
        }
        _ => e,
    }
}

fn retype_null(mut e: Expr, target: Type) -> Expr {
    let t = target.with_nullable(true);
    e.ty = t;
    match &mut e.kind {
        ExprKind::If(_, a, b) => {
            let a2 =
                std::mem::replace(a.as_mut(), Expr::new(ExprKind::Lit(Value::Null), t, e.span));
            **a = coerce(a2, t);
            let b2 =
                std::mem::replace(b.as_mut(), Expr::new(ExprKind::Lit(Value::Null), t, e.span));
            **b = coerce(b2, t);
        }
        ExprKind::Coalesce(a, b) => {
            let a2 =
                std::mem::replace(a.as_mut(), Expr::new(ExprKind::Lit(Value::Null), t, e.span));
            **a = coerce(a2, t);
            let b2 =
                std::mem::replace(b.as_mut(), Expr::new(ExprKind::Lit(Value::Null), t, e.span));
            **b = coerce(b2, t);
        }
        ExprKind::Let { body, .. } => {
            let b2 = std::mem::replace(
                body.as_mut(),
                Expr::new(ExprKind::Lit(Value::Null), t, e.span),
            );
            **body = coerce(b2, t);
        }
        _ => {}
    }
    e
}

/// Non-null facts that hold when `cond` evaluates to `when`.
pub fn facts(cond: &Expr, when: bool) -> Vec<NullKey> {
    match (&cond.kind, when) {
        (ExprKind::Unary(UnOp::Not, inner), _) => facts(inner, !when),
        (ExprKind::IsNull(inner), false) => match inner.kind {
            ExprKind::Field(i) => vec![NullKey::Column(i)],
            ExprKind::Local(l) => vec![NullKey::Local(l)],
            _ => vec![],
        },
        (ExprKind::Binary(BinOp::And, a, b), true) => {
            let mut v = facts(a, true);
            v.extend(facts(b, true));
            v
        }
        (ExprKind::Binary(BinOp::Or, a, b), false) => {
            let mut v = facts(a, false);
            v.extend(facts(b, false));
            v
        }
        _ => vec![],
    }
}

/// Number of locals an expression binds (max local index + 1).
pub fn locals_used(e: &Expr) -> usize {
    match &e.kind {
        ExprKind::Local(l) if *l >= CALL_BASE => 0, // a call leaf
        ExprKind::Local(l) => l + 1,
        ExprKind::Let { local, value, body } => {
            (local + 1).max(locals_used(value)).max(locals_used(body))
        }
        ExprKind::Lit(_) | ExprKind::Field(_) => 0,
        ExprKind::Unary(_, a) | ExprKind::Cast(a, _) | ExprKind::IsNull(a) => locals_used(a),
        ExprKind::Binary(_, a, b) | ExprKind::Coalesce(a, b) => locals_used(a).max(locals_used(b)),
        ExprKind::If(c, a, b) => locals_used(c).max(locals_used(a)).max(locals_used(b)),
        ExprKind::Call(_, args) => args.iter().map(locals_used).max().unwrap_or(0),
    }
}

/// The source span of bytes `range` of a string literal's value, for a literal spanning `lit`
/// (quotes included). Escapes (`\n`, `\"`, …) take two bytes in the source; if the literal's
/// length does not match that reading, the whole literal is pointed at.
fn span_in_literal(lit: Span, text: &str, range: std::ops::Range<usize>) -> Span {
    let escaped = |c: char| matches!(c, '\n' | '\t' | '\r' | '"' | '\\' | '\0');
    let source_len = |upto: usize| -> usize {
        text[..upto]
            .chars()
            .map(|c| c.len_utf8() + escaped(c) as usize)
            .sum()
    };
    let (start, end) = (range.start.min(text.len()), range.end.min(text.len()));
    let lit_len = (lit.end - lit.start) as usize;
    if !text.is_char_boundary(start)
        || !text.is_char_boundary(end)
        || lit_len != source_len(text.len()) + 2
    {
        return lit;
    }
    // At least one character: an error at the end of the pattern points at the closing quote.
    let s = source_len(start);
    let e = source_len(end).max(s + 1);
    let base = lit.start as usize + 1;
    Span::new(lit.file, base + s, base + e)
}
