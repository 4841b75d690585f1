//! A tiny interpreting kernel for the runtime's tests: `Field`, `Lit`, `Binary` arithmetic,
//! comparisons and `&&`/`||`, using the stdlib semantics (division by zero is a row error).

use crate::batch::Batch;
use crate::check::hir::{BinOp, Expr, ExprKind};
use crate::codegen::{Kernel, RowError};
use crate::plan::ir::{FusedStep, Step};
use crate::stdlib::{RowErrorCode, ops};
use crate::types::{RowType, Value};
use std::sync::Arc;

pub struct TestKernel {
    input: RowType,
    steps: Vec<FusedStep>,
}

pub fn factory() -> super::KernelFactory {
    Arc::new(|input: &RowType, steps: &[FusedStep]| {
        Arc::new(TestKernel {
            input: input.clone(),
            steps: steps.to_vec(),
        }) as Arc<dyn Kernel>
    })
}

fn eval(e: &Expr, row: &[Value]) -> Result<Value, RowErrorCode> {
    Ok(match &e.kind {
        ExprKind::Lit(v) => v.clone(),
        ExprKind::Field(i) => row.get(*i).cloned().unwrap_or(Value::Null),
        ExprKind::Binary(op, a, b) => {
            let (a, b) = (eval(a, row)?, eval(b, row)?);
            use Value::*;
            match (op, a, b) {
                (BinOp::Add, Int(x), Int(y)) => Int(ops::int_add(x, y)?),
                (BinOp::Sub, Int(x), Int(y)) => Int(ops::int_sub(x, y)?),
                (BinOp::Mul, Int(x), Int(y)) => Int(ops::int_mul(x, y)?),
                (BinOp::Div, Int(x), Int(y)) => Int(ops::int_div(x, y)?),
                (BinOp::Add, Float(x), Float(y)) => Float(x + y),
                (BinOp::Sub, Float(x), Float(y)) => Float(x - y),
                (BinOp::Mul, Float(x), Float(y)) => Float(x * y),
                (BinOp::Div, Float(x), Float(y)) => Float(ops::float_div(x, y)?),
                (BinOp::And, Bool(x), Bool(y)) => Bool(x && y),
                (BinOp::Or, Bool(x), Bool(y)) => Bool(x || y),
                (op, x, y) => {
                    let ord = match (&x, &y) {
                        (Int(a), Int(b)) => a.partial_cmp(b),
                        (Float(a), Float(b)) => a.partial_cmp(b),
                        (Str(a), Str(b)) => a.partial_cmp(b),
                        (Bool(a), Bool(b)) => a.partial_cmp(b),
                        _ => None,
                    };
                    let Some(o) = ord else {
                        return Err(RowErrorCode::InvalidArgument);
                    };
                    use std::cmp::Ordering::*;
                    Bool(match op {
                        BinOp::Eq => o == Equal,
                        BinOp::Ne => o != Equal,
                        BinOp::Lt => o == Less,
                        BinOp::Le => o != Greater,
                        BinOp::Gt => o == Greater,
                        BinOp::Ge => o != Less,
                        _ => return Err(RowErrorCode::InvalidArgument),
                    })
                }
            }
        }
        _ => return Err(RowErrorCode::InvalidArgument),
    })
}

impl Kernel for TestKernel {
    fn compile_micros(&self) -> Option<u64> {
        None
    }
    fn run(&self, input: &Batch, out: &mut Batch, errors: &mut Vec<RowError>) {
        'rows: for r in 0..input.rows {
            let mut row: Vec<Value> = (0..self.input.len())
                .map(|c| input.get_value(r, c, self.input.fields[c].ty.scalar))
                .collect();
            for (s, step) in self.steps.iter().enumerate() {
                let fail = |code| RowError {
                    row: r as u32,
                    step: s as u32,
                    code,
                };
                match &step.step {
                    Step::Filter(p) => match eval(p, &row) {
                        Ok(Value::Bool(true)) => {}
                        Ok(_) => continue 'rows,
                        Err(c) => {
                            errors.push(fail(c));
                            continue 'rows;
                        }
                    },
                    Step::Map(es) => {
                        let mut next = Vec::with_capacity(es.len());
                        for e in es {
                            match eval(e, &row) {
                                Ok(v) => next.push(v),
                                Err(c) => {
                                    errors.push(fail(c));
                                    continue 'rows;
                                }
                            }
                        }
                        row = next;
                    }
                }
            }
            let o = out.push_row();
            for (c, v) in row.iter().enumerate() {
                out.set_value(o, c, v);
            }
        }
    }

    fn describe(&self) -> String {
        "test interpreter".into()
    }
}
