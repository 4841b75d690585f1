//! The planner: HIR → one de-duplicated, fused logical DAG (`ir::Plan`).

pub mod ir;
pub use ir::*;
