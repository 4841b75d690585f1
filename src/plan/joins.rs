//! Join strategy, after pushdown: for every join, which side is built into the hash table and
//! whether that side is broadcast to every worker (`ir::JoinStrategy`), from estimates of the
//! rows each node produces.
//!
//! Estimates: a source's rows come from the driver ([`Sizes::rows`]: for line-based formats
//! the files' bytes times the lines per byte of a sample, for Parquet the footers' row counts;
//! unknown for standard input); a filter keeps half its input (a guess: selectivities are not
//! known); map, sort and distinct keep their input's; a group at most its input's; `limit N` at
//! most N; a union the sum of its inputs; an inner join the larger input, a left join its left
//! input. Unknown when an input is unknown.
//!
//! Choice: an inner join builds the smaller side (the right one on a tie or when a size is
//! unknown) and streams the other. A left join always builds its right side: the left rows
//! without a match are found while they stream past the table. The build side is broadcast
//! when its estimate is at most [`Sizes::broadcast_rows`] (default [`BROADCAST_ROWS`],
//! `FLOW_BROADCAST_ROWS`): every worker then holds the whole table, and the streamed side is
//! not exchanged at all. Otherwise both sides are exchanged by the hash of their keys.

use super::dag::Dag;
use super::ir::{JoinSide, JoinStrategy, Op, SourceSpec};

/// The default broadcast limit: a join side estimated at no more rows than this is broadcast.
pub const BROADCAST_ROWS: u64 = 100_000;

/// What the planner knows of the inputs' sizes.
pub struct Sizes<'a> {
    /// The estimated rows of a source (`None`: unknown).
    pub rows: &'a dyn Fn(&SourceSpec) -> Option<u64>,
    /// A build side estimated at no more rows than this is broadcast.
    pub broadcast_rows: u64,
}

impl Sizes<'_> {
    /// No sizes known: every join builds its right side and exchanges both sides by key.
    pub fn unknown() -> Sizes<'static> {
        Sizes {
            rows: &|_| None,
            broadcast_rows: BROADCAST_ROWS,
        }
    }
}

/// The estimated rows of every node (in the dag's order).
fn estimates(dag: &Dag, sizes: &Sizes) -> Vec<Option<u64>> {
    let mut est: Vec<Option<u64>> = Vec::with_capacity(dag.nodes.len());
    for node in &dag.nodes {
        let input = |k: usize| {
            node.inputs
                .get(k)
                .and_then(|&p| est.get(p).copied().flatten())
        };
        let e = match &node.op {
            Op::Source(spec) => (sizes.rows)(spec),
            Op::Filter { .. } => input(0).map(|n| n.div_ceil(2)),
            Op::Fused { steps } => {
                let filters = steps
                    .iter()
                    .filter(|s| matches!(s.step, super::ir::Step::Filter(_)))
                    .count();
                input(0).map(|n| n >> filters.min(63))
            }
            Op::Map { .. } | Op::Sort { .. } | Op::Distinct { .. } | Op::Group { .. } => input(0),
            Op::Limit(k) => Some(input(0).map_or(*k, |n| n.min(*k))),
            Op::Union => (0..node.inputs.len())
                .map(input)
                .try_fold(0u64, |acc, n| n.map(|n| acc.saturating_add(n))),
            Op::Join { outer: true, .. } => input(0),
            Op::Join { .. } => input(0).zip(input(1)).map(|(a, b)| a.max(b)),
            Op::Sink(_) => None,
        };
        est.push(e);
    }
    est
}

/// Sets the strategy of every join.
pub fn choose(dag: &mut Dag, sizes: &Sizes) {
    let est = estimates(dag, sizes);
    for node in &mut dag.nodes {
        let rows = |k: usize| {
            node.inputs
                .get(k)
                .and_then(|&p| est.get(p).copied().flatten())
        };
        let (left_rows, right_rows) = (rows(0), rows(1));
        let Op::Join {
            outer, strategy, ..
        } = &mut node.op
        else {
            continue;
        };
        let build = match (left_rows, right_rows) {
            (Some(l), Some(r)) if !*outer && l < r => JoinSide::Left,
            _ => JoinSide::Right,
        };
        let built = match build {
            JoinSide::Left => left_rows,
            JoinSide::Right => right_rows,
        };
        *strategy = JoinStrategy {
            build,
            broadcast: built.is_some_and(|n| n <= sizes.broadcast_rows),
            left_rows,
            right_rows,
        };
    }
}
