//! The reference interpreter: evaluates a fused chain row by row over `Value`s. It defines the
//! semantics the JIT must reproduce, and is the fallback when the JIT cannot compile a chain.

use super::sem;
use super::{Kernel, RowError};
use crate::batch::Batch;
use crate::check::hir::{BinOp, Expr, ExprKind};
use crate::plan::ir::{FusedStep, Step};
use crate::stdlib::literal::Compiled;
use crate::stdlib::ops::RowResult;
use crate::types::{RowType, Scalar, Value};

/// Where `Field(i)` reads from: the input batch (first step) or the previous step's values.
pub enum Row<'a> {
    Batch {
        batch: &'a Batch,
        row: usize,
        types: &'a RowType,
    },
    Values(&'a [Value]),
    /// No row at all (constant folding); a `Field` evaluates to null.
    Empty,
}

impl Row<'_> {
    fn field(&self, col: usize) -> Value {
        match self {
            Row::Batch { batch, row, types } => match types.fields.get(col) {
                Some(f) if col < batch.layout.columns => batch.get_value(*row, col, f.ty.scalar),
                _ => Value::Null,
            },
            Row::Values(v) => v.get(col).cloned().unwrap_or(Value::Null),
            Row::Empty => Value::Null,
        }
    }
}

/// The values of the `Local`s in scope, innermost last.
pub type Locals = Vec<(usize, Value)>;

/// Evaluates `e` over `row`. `locals` holds the bindings of the enclosing `Let`s. `Let`
/// evaluates its value eagerly (an error in it is a row error even if the body never uses it).
pub fn eval(e: &Expr, row: &Row, locals: &mut Locals, lits: &Compiled) -> RowResult<Value> {
    Ok(match &e.kind {
        ExprKind::Lit(v) => v.clone(),
        ExprKind::Field(c) => row.field(*c),
        ExprKind::Local(l) => locals
            .iter()
            .rev()
            .find(|(id, _)| id == l)
            .map_or(Value::Null, |(_, v)| v.clone()),
        ExprKind::Let { local, value, body } => {
            let v = eval(value, row, locals, lits)?;
            locals.push((*local, v));
            let r = eval(body, row, locals, lits);
            locals.pop();
            r?
        }
        ExprKind::Unary(op, a) => sem::unary(*op, eval(a, row, locals, lits)?)?,
        ExprKind::Binary(BinOp::And, a, b) => {
            if truthy(&eval(a, row, locals, lits)?) {
                Value::Bool(truthy(&eval(b, row, locals, lits)?))
            } else {
                Value::Bool(false)
            }
        }
        ExprKind::Binary(BinOp::Or, a, b) => {
            if truthy(&eval(a, row, locals, lits)?) {
                Value::Bool(true)
            } else {
                Value::Bool(truthy(&eval(b, row, locals, lits)?))
            }
        }
        ExprKind::Binary(op, a, b) => {
            let x = eval(a, row, locals, lits)?;
            let y = eval(b, row, locals, lits)?;
            sem::binary(*op, x, y)?
        }
        ExprKind::Cast(a, Scalar::Float) => match eval(a, row, locals, lits)? {
            Value::Int(i) => Value::Float(i as f64),
            v => v,
        },
        ExprKind::Cast(a, _) => eval(a, row, locals, lits)?,
        ExprKind::IsNull(a) => Value::Bool(matches!(eval(a, row, locals, lits)?, Value::Null)),
        ExprKind::Coalesce(a, b) => match eval(a, row, locals, lits)? {
            Value::Null => eval(b, row, locals, lits)?,
            v => v,
        },
        ExprKind::If(c, t, f) => {
            if truthy(&eval(c, row, locals, lits)?) {
                eval(t, row, locals, lits)?
            } else {
                eval(f, row, locals, lits)?
            }
        }
        ExprKind::Call(b, args) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, row, locals, lits)?);
            }
            sem::call(*b, &vals, lits)?
        }
    })
}

/// A condition's value: only `true` counts (null is false).
pub fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}

/// What happened to one row.
pub enum Outcome {
    Kept(Vec<Value>),
    Dropped,
    Failed {
        step: u32,
        code: crate::stdlib::RowErrorCode,
    },
}

/// Runs the chain over row `row` of `input`.
pub fn run_row(
    input: &Batch,
    row: usize,
    types: &RowType,
    steps: &[FusedStep],
    lits: &Compiled,
) -> Outcome {
    let mut locals = Vec::new();
    let mut current: Option<Vec<Value>> = None;
    for (i, step) in steps.iter().enumerate() {
        let view = match &current {
            None => Row::Batch {
                batch: input,
                row,
                types,
            },
            Some(v) => Row::Values(v),
        };
        let fail = |code| Outcome::Failed {
            step: i as u32,
            code,
        };
        match &step.step {
            Step::Filter(pred) => match eval(pred, &view, &mut locals, lits) {
                Ok(v) if truthy(&v) => {}
                Ok(_) => return Outcome::Dropped,
                Err(code) => return fail(code),
            },
            Step::Map(exprs) => {
                let mut vals = Vec::with_capacity(exprs.len());
                for e in exprs {
                    match eval(e, &view, &mut locals, lits) {
                        Ok(v) => vals.push(v),
                        Err(code) => return fail(code),
                    }
                }
                current = Some(vals);
            }
        }
    }
    Outcome::Kept(match current {
        Some(v) => v,
        None => (0..types.len())
            .map(|c| {
                Row::Batch {
                    batch: input,
                    row,
                    types,
                }
                .field(c)
            })
            .collect(),
    })
}

pub struct InterpKernel {
    pub input: RowType,
    pub steps: Vec<FusedStep>,
    /// Why the JIT was not used ("requested" when the interpreter was asked for).
    pub reason: String,
    /// The chain's literal patterns and zones, compiled once, on the first run (a JIT kernel's
    /// fallback that never runs compiles nothing).
    lits: std::sync::OnceLock<Compiled>,
}

impl InterpKernel {
    pub fn new(input: RowType, steps: Vec<FusedStep>, reason: String) -> InterpKernel {
        InterpKernel {
            input,
            steps,
            reason,
            lits: std::sync::OnceLock::new(),
        }
    }
}

/// Compiles the literal arguments (regular expressions, time zones) of a chain's calls.
pub fn compile_literals(steps: &[FusedStep]) -> Compiled {
    fn walk(e: &Expr, lits: &mut Compiled) {
        if let ExprKind::Call(b, args) = &e.kind {
            for (i, kind) in b.literals() {
                if let Some(ExprKind::Lit(Value::Str(text))) = args.get(*i).map(|a| &a.kind) {
                    lits.add(*kind, text);
                }
            }
        }
        e.children().for_each(|c| walk(c, lits));
    }
    let mut lits = Compiled::default();
    for s in steps {
        match &s.step {
            Step::Filter(p) => walk(p, &mut lits),
            Step::Map(es) => es.iter().for_each(|e| walk(e, &mut lits)),
        }
    }
    lits
}

impl Kernel for InterpKernel {
    fn run(&self, input: &Batch, out: &mut Batch, errors: &mut Vec<RowError>) {
        let lits = self.lits.get_or_init(|| compile_literals(&self.steps));
        for r in 0..input.rows {
            match run_row(input, r, &self.input, &self.steps, lits) {
                Outcome::Kept(vals) => {
                    let dst = out.push_row();
                    for (c, v) in vals.iter().enumerate() {
                        if c < out.layout.columns {
                            out.set_value(dst, c, v);
                        }
                    }
                }
                Outcome::Dropped => {}
                Outcome::Failed { step, code } => errors.push(RowError {
                    row: r as u32,
                    step,
                    code,
                }),
            }
        }
    }

    fn run_shared(
        &self,
        input: &std::sync::Arc<Batch>,
        out: &mut Batch,
        errors: &mut Vec<RowError>,
    ) -> bool {
        let filters_only = self.steps.iter().all(|s| matches!(s.step, Step::Filter(_)));
        if !filters_only || out.rows != 0 || !out.arena.is_empty() || out.layout != input.layout {
            return false;
        }
        let lits = self.lits.get_or_init(|| compile_literals(&self.steps));
        let stride = input.layout.stride;
        for (r, words) in input
            .words
            .chunks_exact(stride)
            .take(input.rows)
            .enumerate()
        {
            match run_row(input, r, &self.input, &self.steps, lits) {
                Outcome::Kept(_) => out.push_words(words),
                Outcome::Dropped => {}
                Outcome::Failed { step, code } => errors.push(RowError {
                    row: r as u32,
                    step,
                    code,
                }),
            }
        }
        out.arena.share(input);
        true
    }

    fn describe(&self) -> String {
        format!("interpreter: {}", self.reason)
    }

    fn compile_micros(&self) -> Option<u64> {
        None
    }
}
