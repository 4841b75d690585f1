//! The planner's working form: nodes in a vector, inputs by index, always in topological order
//! (every input index is smaller than the node's own). Passes rewrite it; `into_plan` turns it
//! into the petgraph `Plan` at the end, keeping the indices (so `n3` is node index 3).

use super::canon;
use super::error::PlanError;
use super::ir::{Node, Op, Plan, PlanStats};
use crate::job::{Hints, Mode};
use crate::span::Span;
use crate::types::RowType;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug)]
pub struct DNode {
    pub op: Op,
    pub row: RowType,
    pub hints: Hints,
    pub labels: Vec<String>,
    pub span: Span,
    /// Producers, in port order.
    pub inputs: Vec<usize>,
}

#[derive(Clone, Debug, Default)]
pub struct Dag {
    pub nodes: Vec<DNode>,
}

impl Dag {
    /// For every node, its consumers (one entry per edge, in index order).
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &p in &n.inputs {
                if let Some(c) = out.get_mut(p) {
                    c.push(i);
                }
            }
        }
        out
    }

    pub fn into_plan(self, mode: Mode, stats: PlanStats) -> Result<Plan, PlanError> {
        let n = self.nodes.len();
        // used_by: the origins of the sinks downstream of each node, in sink (program) order.
        // Linear in the size of the result: `seen` holds the index of the sink that last visited
        // a node (no per-sink clearing), and `listed` which origins a node already lists (no
        // scan of its list per sink: a source read by 10k sinks made that quadratic).
        let mut used_by: Vec<Vec<String>> = vec![Vec::new(); n];
        let mut seen: Vec<usize> = vec![usize::MAX; n];
        let mut listed: HashSet<(usize, &str)> = HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let Op::Sink(spec) = &node.op else { continue };
            let mut stack = vec![i];
            while let Some(k) = stack.pop() {
                if seen[k] == i {
                    continue;
                }
                seen[k] = i;
                if listed.insert((k, spec.origin.as_str())) {
                    used_by[k].push(spec.origin.clone());
                }
                for &p in &self.nodes[k].inputs {
                    if p >= k {
                        return Err(PlanError::Internal(format!(
                            "node {k} has input {p} out of topological order"
                        )));
                    }
                    stack.push(p);
                }
            }
        }
        let mut graph: DiGraph<Node, usize, u32> = DiGraph::with_capacity(n, n);
        let mut edges = Vec::new();
        for ((i, node), used_by) in self.nodes.into_iter().enumerate().zip(used_by) {
            for (port, &p) in node.inputs.iter().enumerate() {
                edges.push((p, i, port));
            }
            graph.add_node(Node {
                op: node.op,
                row: node.row,
                hints: node.hints,
                used_by,
                labels: node.labels,
                span: node.span,
            });
        }
        for (p, i, port) in edges {
            graph.add_edge(NodeIndex::new(p), NodeIndex::new(i), port);
        }
        Ok(Plan { graph, mode, stats })
    }
}

/// Adds nodes to a `Dag`, merging a new node into an existing identical one when `dedup` is on:
/// identity = (canonical operator key, identities of the inputs), as in seed 001, where a node's
/// output is identified by the node type and the identifiers of its upstream data.
pub struct Interner {
    pub dag: Dag,
    dedup: bool,
    memo: HashMap<(String, Vec<usize>), usize>,
}

impl Interner {
    pub fn new(dedup: bool) -> Interner {
        Interner {
            dag: Dag::default(),
            dedup,
            memo: HashMap::new(),
        }
    }

    /// Adds `node` (whose inputs must already be in the dag) and returns its index, or the index
    /// of the identical node already present. Sinks are never merged. Sources are merged even
    /// without dedup: a source read by several consumers must be read once (standard input can
    /// only be read once, and a bad row must count once), so the flag never changes results.
    pub fn add(&mut self, node: DNode) -> usize {
        let merge = self.dedup || matches!(node.op, Op::Source(_));
        if !merge || matches!(node.op, Op::Sink(_)) {
            self.dag.nodes.push(node);
            return self.dag.nodes.len() - 1;
        }
        let key = (canon::op_key(&node.op, &node.row), node.inputs.clone());
        if let Some(&id) = self.memo.get(&key) {
            let existing = &mut self.dag.nodes[id];
            merge_meta(existing, node);
            return id;
        }
        self.dag.nodes.push(node);
        let id = self.dag.nodes.len() - 1;
        self.memo.insert(key, id);
        id
    }
}

/// Merges what distinguishes two identical nodes without changing the result: labels are
/// collected (first occurrence first), hints take the larger value, the first span is kept.
pub fn merge_meta(into: &mut DNode, other: DNode) {
    for l in other.labels {
        if !into.labels.contains(&l) {
            into.labels.push(l);
        }
    }
    into.hints = merge_hints(&into.hints, &other.hints);
}

pub fn merge_hints(a: &Hints, b: &Hints) -> Hints {
    Hints {
        parallel: a.parallel.max(b.parallel),
        batch: a.batch.max(b.batch),
    }
}

/// Re-interns every node reachable from a sink, in order: drops dead nodes and, with `dedup`,
/// merges nodes that became identical after a rewrite.
pub fn rebuild(dag: Dag, dedup: bool) -> Result<Dag, PlanError> {
    let n = dag.nodes.len();
    let mut live = vec![false; n];
    for i in (0..n).rev() {
        if matches!(dag.nodes[i].op, Op::Sink(_)) {
            live[i] = true;
        }
        if live[i] {
            for &p in &dag.nodes[i].inputs {
                if p < n {
                    live[p] = true;
                }
            }
        }
    }
    let mut new_index: Vec<Option<usize>> = vec![None; n];
    let mut interner = Interner::new(dedup);
    for (i, mut node) in dag.nodes.into_iter().enumerate() {
        if !live[i] {
            continue;
        }
        let mut inputs = Vec::with_capacity(node.inputs.len());
        for &p in &node.inputs {
            match new_index.get(p).copied().flatten() {
                Some(q) if p < i => inputs.push(q),
                _ => {
                    return Err(PlanError::Internal(format!(
                        "node {i} has input {p} out of topological order"
                    )));
                }
            }
        }
        node.inputs = inputs;
        new_index[i] = Some(interner.add(node));
    }
    Ok(interner.dag)
}
