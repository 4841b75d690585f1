//! The logical plan: one DAG (petgraph) for all pipelines of all files of a job, de-duplicated
//! (seed 001), fused and with pushdown applied. Produced by `plan::build`, consumed by codegen
//! and the runtime.

use crate::check::hir::{Agg, Expr, JoinKey, SortKey};
use crate::job::{ErrorPolicy, Hints, Mode, Options};
use crate::span::Span;
use crate::types::RowType;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

pub type NodeId = NodeIndex<u32>;

/// A source after pushdown: it reads the file schema but produces only `columns`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceSpec {
    pub name: String,
    pub connector: String,
    pub path: Option<String>,
    pub options: Options,
    /// The full schema of the input (for locating columns in a record).
    pub schema: RowType,
    /// Indices into `schema` of the columns produced, in order: the node's `row`.
    pub columns: Vec<usize>,
    /// Indices into `schema` of produced columns that the job never reads (only without
    /// projection pushdown): a value there that does not convert is stored as null instead of
    /// rejecting the row, so that error counts do not depend on the optimizer's switches.
    #[serde(default)]
    pub unread: Vec<usize>,
    pub policy: ErrorPolicy,
    /// The predicate of the source's only consumer, when that is a filter that cannot fail
    /// (over the source's row, `columns`): a connector may skip parts of its input in which it
    /// is false for every row (Parquet row groups, by their statistics). Set by pushdown.
    #[serde(default)]
    pub prune: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SinkSpec {
    pub connector: String,
    pub path: Option<String>,
    pub options: Options,
    /// `file.flow:line` of the sink statement.
    pub origin: String,
}

/// One step of a fused row kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// Keeps the row when the predicate is true.
    Filter(Expr),
    /// Replaces the row by these columns, each computed over the current row.
    Map(Vec<Expr>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FusedStep {
    pub step: Step,
    /// What to do with a row whose evaluation fails in this step.
    pub policy: ErrorPolicy,
    /// The row type after this step.
    pub row: RowType,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    Source(SourceSpec),
    Filter {
        pred: Expr,
        policy: ErrorPolicy,
    },
    Map {
        fields: Vec<(String, Expr)>,
        policy: ErrorPolicy,
    },
    /// A chain of filters and maps on one unshared path; compiled into one kernel.
    Fused {
        steps: Vec<FusedStep>,
    },
    /// Output row: the key columns then the aggregates (see `hir::StreamKind::Group`).
    Group {
        keys: Vec<usize>,
        aggs: Vec<Agg>,
    },
    /// Inputs in edge-port order; all have the node's row type.
    Union,
    Limit(u64),
    /// The rows ordered by the keys (stable; see `hir::SortKey`).
    Sort {
        keys: Vec<SortKey>,
    },
    /// The first row in input order per key (`None`: whole rows).
    Distinct {
        keys: Option<Vec<usize>>,
    },
    /// A hash join (see `hir::StreamKind::Join`): input port 0 is the left side, port 1 the
    /// right side; the output is the left row then the right `fields`. Which side is built
    /// into the hash table and whether it is broadcast: `strategy`.
    Join {
        keys: Vec<JoinKey>,
        fields: Vec<usize>,
        outer: bool,
        #[serde(default)]
        strategy: JoinStrategy,
    },
    Sink(SinkSpec),
}

impl Op {
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Source(_) => "source",
            Op::Filter { .. } => "filter",
            Op::Map { .. } => "map",
            Op::Fused { .. } => "fused",
            Op::Group { .. } => "group",
            Op::Union => "union",
            Op::Limit(_) => "limit",
            Op::Sort { .. } => "sort",
            Op::Distinct { .. } => "distinct",
            Op::Join { .. } => "join",
            Op::Sink(_) => "sink",
        }
    }
}

/// A side of a join.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinSide {
    Left,
    #[default]
    Right,
}

/// How a join runs, chosen by the planner from its row estimates (`plan::joins`): the `build`
/// side goes into the hash table, the other is streamed past it. With several workers, a
/// `broadcast` build side is sent whole to every worker running the join and the streamed side
/// stays where it was read; otherwise both sides are exchanged by the hash of their keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinStrategy {
    pub build: JoinSide,
    pub broadcast: bool,
    /// The estimated rows of the left and right inputs (`None`: unknown).
    pub left_rows: Option<u64>,
    pub right_rows: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub op: Op,
    /// The type of the rows this node produces (for a sink: the rows it writes).
    pub row: RowType,
    pub hints: Hints,
    /// `file.flow` pipelines (sink origins) whose result depends on this node.
    pub used_by: Vec<String>,
    /// `let` names that denote this node.
    pub labels: Vec<String>,
    /// Where it was first written.
    pub span: Span,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStats {
    pub nodes_before_dedup: usize,
    pub nodes_after_dedup: usize,
}

/// Edges run from producer to consumer; the weight is the consumer's input port (0 for all but
/// `Union`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub graph: DiGraph<Node, usize, u32>,
    pub mode: Mode,
    pub stats: PlanStats,
}

impl Plan {
    /// The inputs of a node, in port order.
    pub fn inputs(&self, id: NodeId) -> Vec<NodeId> {
        let mut ins: Vec<(usize, NodeId)> = self
            .graph
            .edges_directed(id, petgraph::Direction::Incoming)
            .map(|e| (*e.weight(), petgraph::visit::EdgeRef::source(&e)))
            .collect();
        ins.sort();
        ins.into_iter().map(|(_, n)| n).collect()
    }
    /// The consumers of a node.
    pub fn outputs(&self, id: NodeId) -> Vec<NodeId> {
        let mut outs: Vec<NodeId> = self
            .graph
            .neighbors_directed(id, petgraph::Direction::Outgoing)
            .collect();
        outs.sort();
        outs
    }
}

/// Planner switches, so optimized and unoptimized plans can be compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    pub dedup: bool,
    pub fuse: bool,
    pub pushdown: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            dedup: true,
            fuse: true,
            pushdown: true,
        }
    }
}
