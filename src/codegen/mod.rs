//! Row kernels: a fused chain of filter/map steps (`plan::Step`) compiled to native code with
//! Cranelift, or run by the reference interpreter (`interp`) with the same semantics.

use crate::batch::Batch;
use crate::stdlib::RowErrorCode;
use serde::{Deserialize, Serialize};

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

    /// "jit" or "interpreter: <reason>" (shown by `flow explain` and `flow run --verbose`).
    fn describe(&self) -> String;
}
