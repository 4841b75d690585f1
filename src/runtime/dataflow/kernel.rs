//! The kernel operator: runs a fused filter/map chain (JIT or interpreter) on each batch, on the
//! worker that read it; row errors go to the stage's error policy. A chain of filters only
//! (`Kernel::run_shared`) passes its kept rows on with the input's string bytes, uncopied.

use super::{Cb, Ctx, Packet, S, panic_message};
use crate::batch::Batch;
use crate::codegen::{Kernel, RowError};
use crate::connectors::dead_letter;
use crate::job::ErrorPolicy;
use crate::plan::ir::{FusedStep, Step};
use crate::runtime::RunError;
use crate::runtime::policy::reject;
use crate::types::RowType;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

/// The source span of a fused step: its predicate, or its map expressions.
fn step_span(step: &Step) -> Option<crate::span::Span> {
    match step {
        Step::Filter(e) => Some(e.span),
        Step::Map(exprs) => {
            let first = exprs.first()?.span;
            let last = exprs.last()?.span;
            Some(if first.file == last.file {
                first.to(last)
            } else {
                first
            })
        }
    }
}

/// A filter's output shares its input's strings when it kept at least 1 / SHARE_ABOVE of the
/// input's rows, so a shared batch never pins more than that many times its own rows.
const SHARE_ABOVE: usize = 4;

/// Stands in for a kernel that could not be built, after the job has been failed.
struct Broken;
impl Kernel for Broken {
    fn run(&self, _: &Batch, _: &mut Batch, _: &mut Vec<RowError>) {}
    fn describe(&self) -> String {
        "broken".into()
    }
    fn compile_micros(&self) -> Option<u64> {
        None
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn kernel_op<'s>(
    input: S<'s>,
    i: usize,
    name: &str,
    in_row: &RowType,
    out_row: &RowType,
    steps: Vec<FusedStep>,
    count: bool,
    ctx: &Ctx,
) -> S<'s> {
    let ctx = ctx.clone();
    let name = name.to_string();
    let in_row = in_row.clone();
    let out_cols = out_row.len();
    let str_cols: Vec<usize> = (out_row.fields.iter().enumerate())
        .filter(|(_, f)| f.ty.scalar == crate::types::Scalar::Str)
        .map(|(c, _)| c)
        .collect();
    let factory = ctx.job.factory.clone();
    let kernel: Arc<dyn Kernel> = match catch_unwind(AssertUnwindSafe(|| factory(&in_row, &steps)))
    {
        Ok(k) => k,
        Err(p) => {
            ctx.shared.fail(RunError::Stage {
                stage: name.clone(),
                reason: format!("cannot build its kernel: {}", panic_message(p)),
            });
            Arc::new(Broken)
        }
    };
    input.unary::<Cb, _, _, _>(Pipeline, &name.clone(), move |_cap, _info| {
        let mut errors: Vec<RowError> = Vec::new();
        move |input, output| {
            input.for_each(|cap, data| {
                let mut session = output.session(&cap);
                for p in data.drain(..) {
                    let shared = &ctx.shared;
                    if shared.aborted() {
                        ctx.pool.recycle(p.batch);
                        continue;
                    }
                    let mut out = ctx.pool.take(out_cols);
                    errors.clear();
                    // A chain of filters only moves the kept rows' words and shares the
                    // input's string bytes; other chains write their rows out.
                    let ran = catch_unwind(AssertUnwindSafe(|| {
                        if kernel.run_shared(&p.batch, &mut out, &mut errors) {
                            // Kept under a quarter of the rows: copy their few strings rather
                            // than hold the whole input (e.g. while a join holds the batch).
                            if out.rows * SHARE_ABOVE < p.batch.rows {
                                out.own_strings(&str_cols);
                            }
                        } else {
                            kernel.run(&p.batch, &mut out, &mut errors)
                        }
                    }));
                    if let Err(e) = ran {
                        shared.fail(RunError::Stage {
                            stage: name.clone(),
                            reason: format!("kernel panicked: {}", panic_message(e)),
                        });
                        ctx.pool.recycle(p.batch);
                        ctx.pool.put(out);
                        continue;
                    }
                    if count {
                        shared.nodes[i].add(p.batch.rows as u64, out.rows as u64);
                    }
                    if !errors.is_empty() {
                        let mut dead = ctx.dead.borrow_mut();
                        let default = ErrorPolicy::default();
                        for e in errors.iter() {
                            let step = e.step as usize;
                            let policy = steps.get(step).map(|s| &s.policy).unwrap_or(&default);
                            let kind = match steps.get(step).map(|s| &s.step) {
                                Some(Step::Filter(_)) => "filter",
                                _ => "map",
                            };
                            let row = e.row as usize;
                            reject(
                                shared,
                                i,
                                &name,
                                policy,
                                &mut dead,
                                || RunError::RowEval {
                                    stage: format!("{name}, step {} ({kind})", step + 1),
                                    at: steps.get(step).and_then(|s| step_span(&s.step)),
                                    code: e.code,
                                    row: if row < p.batch.rows {
                                        crate::connectors::row_to_json(&p.batch, row, &in_row)
                                            .to_string()
                                    } else {
                                        String::new()
                                    },
                                },
                                || {
                                    let values = if row < p.batch.rows {
                                        crate::connectors::row_to_json(&p.batch, row, &in_row)
                                    } else {
                                        serde_json::Value::Null
                                    };
                                    dead_letter::stage_line(
                                        &name,
                                        step + 1,
                                        e.code.message(),
                                        values,
                                    )
                                },
                            );
                        }
                    }
                    ctx.pool.recycle(p.batch);
                    if out.rows > 0 && !shared.aborted() {
                        let mut q = Packet::new(0, out);
                        q.order = p.order;
                        session.give(q);
                    } else {
                        ctx.pool.put(out);
                    }
                }
            });
        }
    })
}
