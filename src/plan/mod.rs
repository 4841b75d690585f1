//! The planner: HIR → one de-duplicated, fused logical DAG (`ir::Plan`).
//!
//! Passes, in order: `lower` (hash-consing: identical nodes of all pipelines and files become
//! one, seed 001), `pushdown` (filters toward sources and below joins, column projection into
//! sources and through joins), `joins` (each join's build side and broadcast, from row
//! estimates), `fuse` (filter/map chains into one kernel node). `explain` renders the result.

mod canon;
mod dag;
mod error;
pub mod explain;
mod exprs;
mod fuse;
pub mod joins;

pub mod ir;
mod lower;
mod print;
mod pushdown;

pub use error::PlanError;
pub use ir::*;
pub use joins::{BROADCAST_ROWS, Sizes};

use crate::check::hir;

/// Plans a checked program without knowing the inputs' sizes (see [`build_sized`]).
pub fn build(program: &hir::Program, opts: PlanOptions) -> Result<Plan, Vec<PlanError>> {
    build_sized(program, opts, &Sizes::unknown())
}

/// Plans a checked program; `sizes` (asked of the driver) decide the joins' strategies.
/// Errors: two sinks writing one destination (`PlanError::DuplicateSink`), or an internal
/// invariant broken by the HIR.
pub fn build_sized(
    program: &hir::Program,
    opts: PlanOptions,
    sizes: &Sizes,
) -> Result<Plan, Vec<PlanError>> {
    let lowered = lower::lower(program, opts.dedup)?;
    let stats = PlanStats {
        nodes_before_dedup: lowered.nodes_before_dedup,
        nodes_after_dedup: lowered.dag.nodes.len(),
    };
    let mut dag = lowered.dag;
    if opts.pushdown {
        pushdown::push_filters(&mut dag);
        // Moving filters can make two pipelines identical: merge them again.
        dag = dag::rebuild(dag, opts.dedup).map_err(|e| vec![e])?;
        pushdown::project(&mut dag).map_err(|e| vec![e])?;
        pushdown::prune_hints(&mut dag);
    } else {
        pushdown::mark_unread(&mut dag).map_err(|e| vec![e])?;
    }
    joins::choose(&mut dag, sizes);
    if opts.fuse {
        dag = fuse::fuse(dag).map_err(|e| vec![e])?;
    }
    dag.into_plan(program.mode.clone(), stats)
        .map_err(|e| vec![e])
}

#[cfg(test)]
mod tests;
