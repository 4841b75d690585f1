//! Row kernels: a fused chain of filter/map steps (`plan::Step`) compiled to native code with
//! Cranelift (`jit`), or run by the reference interpreter (`interp`) with the same semantics.
//!
//! `build_kernel` folds constants (`fold`), then compiles; any construct the JIT does not handle
//! yet, or any Cranelift error, falls back to the interpreter with the reason in `describe()`.
//! Kernels are cached per (engine, input row type, steps) (`cache`).

pub mod cache;
pub mod demo;
pub mod fold;
pub mod interp;
pub mod jit;
pub mod sem;

use crate::batch::Batch;
use crate::plan::ir::FusedStep;
use crate::stdlib::RowErrorCode;
use crate::types::RowType;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One failed row: its index in the input batch, the step that failed, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub row: u32,
    pub step: u32,
    pub code: RowErrorCode,
}

/// A compiled (or interpreted) fused chain.
pub trait Kernel: Send + Sync {
    /// Runs the chain over every row of `input` (whose layout is the chain's input row type),
    /// appending each surviving row to `out` (layout of the chain's output row type) in input
    /// order. A row whose evaluation fails is not written; it is reported in `errors`.
    fn run(&self, input: &Batch, out: &mut Batch, errors: &mut Vec<RowError>);

    /// `run` for a chain of filters only, into an empty `out`: each kept row's words are
    /// copied unchanged and `out` shares `input`'s string bytes (`batch::Arena::share`)
    /// instead of copying them. Returns false, writing nothing, for any other chain or a
    /// non-empty `out` (then use `run`).
    fn run_shared(
        &self,
        _input: &std::sync::Arc<Batch>,
        _out: &mut Batch,
        _errors: &mut Vec<RowError>,
    ) -> bool {
        false
    }

    /// "jit" or "interpreter: <reason>" (shown by `flow explain` and `flow run --verbose`).
    fn describe(&self) -> String;

    /// JIT compile time in microseconds (`None` for the interpreter).
    fn compile_micros(&self) -> Option<u64>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Engine {
    Jit,
    Interpreter,
}

/// Never fails: falls back to the interpreter (with the reason in describe()) if JIT compilation
/// fails or a construct is unsupported.
pub fn build_kernel(input: &RowType, steps: &[FusedStep], engine: Engine) -> Arc<dyn Kernel> {
    let key = cache::key(engine, input, steps);
    cache::get_or_build(key, || build_uncached(input, steps, engine))
}

/// Builds a kernel without consulting the cache (tests, benchmarks of compile time).
///
/// Folding and JIT compilation recurse over the expressions (up to
/// `check::expr::MAX_HIR_DEPTH` deep); they run on a thread of their own with a stack sized for
/// that, since the caller is usually a timely worker (2 MB of stack).
pub fn build_uncached(input: &RowType, steps: &[FusedStep], engine: Engine) -> Arc<dyn Kernel> {
    on_compile_stack(|| build_here(input, steps, engine))
}

/// The stack of the compile thread: the JIT needs ~1 KB per level of expression depth.
const COMPILE_STACK: usize = 64 << 20;

/// Runs `f` on a thread with a [`COMPILE_STACK`]-byte stack (or here, if no thread can be
/// started).
fn on_compile_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let mut job = Some(f);
    let spawned = std::thread::scope(|s| {
        let job = &mut job;
        std::thread::Builder::new()
            .name("flow-compile".into())
            .stack_size(COMPILE_STACK)
            .spawn_scoped(s, move || job.take().map(|f| f()))
            .map(|h| h.join())
    });
    match spawned {
        Ok(Ok(Some(out))) => out,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Ok(Ok(None)) | Err(_) => match job.take() {
            Some(f) => f(),
            None => unreachable!("the compile thread took the job and returned nothing"),
        },
    }
}

fn build_here(input: &RowType, steps: &[FusedStep], engine: Engine) -> Arc<dyn Kernel> {
    let folded = fold::fold_steps(steps);
    let interp = |reason: String| -> Arc<dyn Kernel> {
        Arc::new(interp::InterpKernel::new(
            input.clone(),
            folded.clone(),
            reason,
        ))
    };
    match engine {
        Engine::Interpreter => interp("requested".into()),
        Engine::Jit => match jit::compile(input, &folded) {
            Ok(k) => Arc::new(k),
            Err(reason) => interp(format!("JIT fallback: {reason}")),
        },
    }
}
