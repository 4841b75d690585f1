//! Pushdown, on the unfused DAG:
//!
//! 1. `push_filters`: a filter moves above a map when the map has no other consumer, every
//!    column the predicate reads is a plain copy (`a` or `b: a`) of an input column, and no
//!    expression of the map can fail. The last condition keeps error behaviour unchanged: the
//!    map would have been evaluated on every row anyway, and the filter sees the same rows. A
//!    filter never moves across group, limit, union, distinct, another filter (both could fail,
//!    in a different order) or a node with other consumers. A filter moves below a `sort` with
//!    no other consumer (same rows, same order, fewer rows sorted).
//! 2. `project`: every source is told which of its columns are read downstream
//!    (`SourceSpec::columns`; the union over all consumers when shared). Rows of filters and
//!    limits on top of a projected source shrink the same way, and the expressions reading them
//!    are re-indexed. Sinks and unions need every column of their input, so projection never
//!    changes what a sink writes or the row type a union sees.
//! 3. `prune_hints`: a source whose only consumer is a filter that cannot fail is given that
//!    predicate (`SourceSpec::prune`), so that its connector can skip input in which no row
//!    passes (Parquet row groups by their min/max statistics). The filter stays: it still
//!    decides every row, so skipping only ever removes rows it would have dropped, and since it
//!    cannot fail no row error goes missing.

use super::dag::{DNode, Dag};
use super::error::PlanError;
use super::exprs;
use super::ir::{FusedStep, Op, Step};
use crate::check::hir::{Expr, ExprKind};
use crate::types::RowType;
use std::collections::BTreeSet;

pub fn push_filters(dag: &mut Dag) {
    // Each swap moves one filter one step toward the sources, so this terminates; the bound is
    // a safety net.
    let limit = dag.nodes.len().saturating_mul(dag.nodes.len()) + 1;
    for _ in 0..limit {
        let consumers = dag.consumers();
        if let Some((f, s)) = (0..dag.nodes.len()).find_map(|f| below_sort(dag, &consumers, f)) {
            swap_sort(dag, f, s);
            continue;
        }
        let Some((f, m, new_pred)) = (0..dag.nodes.len())
            .find_map(|f| swappable(dag, &consumers, f).map(|(m, p)| (f, m, p)))
        else {
            return;
        };
        swap(dag, f, m, new_pred);
    }
}

/// If filter `f` can move above its input map, returns the map's index and the predicate
/// rewritten over the map's input.
fn swappable(dag: &Dag, consumers: &[Vec<usize>], f: usize) -> Option<(usize, Expr)> {
    let fnode = dag.nodes.get(f)?;
    let Op::Filter { pred, .. } = &fnode.op else {
        return None;
    };
    let [m] = fnode.inputs[..] else { return None };
    let mnode = dag.nodes.get(m)?;
    let Op::Map { fields, .. } = &mnode.op else {
        return None;
    };
    if mnode.inputs.len() != 1 || consumers.get(m)?.len() != 1 {
        return None;
    }
    if !fields.iter().all(|(_, e)| exprs::infallible(e)) {
        return None;
    }
    let source_of = |i: usize| match fields.get(i).map(|(_, e)| &e.kind) {
        Some(ExprKind::Field(j)) => Some(*j),
        _ => None,
    };
    let new_pred = exprs::remap(pred, &source_of)?;
    Some((m, new_pred))
}

/// If filter `f` reads a `sort` that has no other consumer, the sort's index: filtering before
/// sorting gives the same rows in the same order (the sort keeps the row type), sorts fewer rows,
/// and lets the filter move further toward the source.
fn below_sort(dag: &Dag, consumers: &[Vec<usize>], f: usize) -> Option<(usize, usize)> {
    let fnode = dag.nodes.get(f)?;
    if !matches!(fnode.op, Op::Filter { .. }) {
        return None;
    }
    let [s] = fnode.inputs[..] else { return None };
    let snode = dag.nodes.get(s)?;
    (matches!(snode.op, Op::Sort { .. }) && snode.inputs.len() == 1 && consumers.get(s)?.len() == 1)
        .then_some((f, s))
}

/// `X -> S(sort) -> F(filter)` becomes `X -> F -> S` in the same two slots. The filter's row
/// (possibly narrowed nullability) is the sort's row after the swap.
fn swap_sort(dag: &mut Dag, f: usize, s: usize) {
    let fnode = dag.nodes[f].clone();
    let snode = dag.nodes[s].clone();
    dag.nodes[s] = DNode {
        inputs: snode.inputs.clone(),
        labels: Vec::new(),
        ..fnode.clone()
    };
    dag.nodes[f] = DNode {
        row: fnode.row,
        inputs: vec![s],
        // The sort's own `let` name denoted the unfiltered rows, which no longer exist.
        labels: fnode.labels,
        ..snode
    };
}

/// `X -> M(map) -> F(filter)` becomes `X -> F' -> M'`, reusing the two slots so the order stays
/// topological and F's consumers now read M'.
fn swap(dag: &mut Dag, f: usize, m: usize, new_pred: Expr) {
    let fnode = dag.nodes[f].clone();
    let mnode = dag.nodes[m].clone();
    let (
        Op::Filter { policy, .. },
        Op::Map {
            fields,
            policy: mpol,
        },
    ) = (fnode.op, mnode.op)
    else {
        return;
    };
    let Some(&x) = mnode.inputs.first() else {
        return;
    };
    // The filter's output row may have narrowed nullability (`filter tip != null`); carry that
    // onto the input columns it came from, and onto the map's copies of them.
    let mut frow: RowType = dag.nodes[x].row.clone();
    let mut fields = fields;
    for (i, (_, e)) in fields.iter_mut().enumerate() {
        if let ExprKind::Field(j) = e.kind
            && let (Some(after), Some(target)) = (fnode.row.fields.get(i), frow.fields.get_mut(j))
        {
            if !after.ty.nullable {
                target.ty.nullable = false;
            }
            e.ty = after.ty;
        }
    }
    dag.nodes[m] = DNode {
        op: Op::Filter {
            pred: new_pred,
            policy,
        },
        row: frow,
        hints: fnode.hints,
        labels: Vec::new(),
        span: fnode.span,
        inputs: vec![x],
    };
    dag.nodes[f] = DNode {
        op: Op::Map {
            fields,
            policy: mpol,
        },
        row: fnode.row,
        hints: mnode.hints,
        // The map's own `let` name denoted the unfiltered rows, which no longer exist.
        labels: fnode.labels,
        span: mnode.span,
        inputs: vec![m],
    };
}

/// The columns of a node's input(s) it reads, given the columns of its own output that are
/// needed downstream.
fn demand(
    node: &DNode,
    needed_out: &BTreeSet<usize>,
    input_rows: &[&RowType],
) -> Vec<BTreeSet<usize>> {
    let all = |r: &RowType| (0..r.len()).collect::<BTreeSet<usize>>();
    match &node.op {
        Op::Source(_) => Vec::new(),
        Op::Sink(_) | Op::Union | Op::Distinct { .. } | Op::Join { .. } => {
            input_rows.iter().map(|r| all(r)).collect()
        }
        Op::Limit(_) => vec![needed_out.clone()],
        Op::Sort { keys } => {
            let mut d = needed_out.clone();
            d.extend(keys.iter().map(|k| k.col));
            vec![d]
        }
        Op::Filter { pred, .. } => {
            let mut d = needed_out.clone();
            exprs::fields(pred, &mut d);
            vec![d]
        }
        Op::Map { fields, .. } => {
            let mut d = BTreeSet::new();
            for (_, e) in fields {
                exprs::fields(e, &mut d);
            }
            vec![d]
        }
        Op::Group { keys, aggs } => {
            let mut d: BTreeSet<usize> = keys.iter().copied().collect();
            for a in aggs {
                if let Some(e) = &a.arg {
                    exprs::fields(e, &mut d);
                }
            }
            vec![d]
        }
        Op::Fused { steps } => {
            let mut d = needed_out.clone();
            for s in steps.iter().rev() {
                match &s.step {
                    Step::Filter(e) => exprs::fields(e, &mut d),
                    Step::Map(es) => {
                        d.clear();
                        for e in es {
                            exprs::fields(e, &mut d);
                        }
                    }
                }
            }
            vec![d]
        }
    }
}

fn internal(msg: impl Into<String>) -> PlanError {
    PlanError::Internal(msg.into())
}

/// Backward: which output columns of each node are read by its consumers.
fn needed_columns(dag: &Dag) -> Result<Vec<BTreeSet<usize>>, PlanError> {
    let n = dag.nodes.len();
    let mut needed: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for i in (0..n).rev() {
        let node = &dag.nodes[i];
        let input_rows: Vec<&RowType> = node
            .inputs
            .iter()
            .map(|&p| dag.nodes.get(p).map(|x| &x.row))
            .collect::<Option<_>>()
            .ok_or_else(|| internal(format!("node {i} has a missing input")))?;
        let d = demand(node, &needed[i], &input_rows);
        for (&p, cols) in node.inputs.iter().zip(d) {
            if p >= i {
                return Err(internal(format!("node {i} reads node {p} out of order")));
            }
            needed[p].extend(cols);
        }
    }
    Ok(needed)
}

/// Without projection (`--no-pushdown`) every source still converts all its columns, but a
/// value that does not convert in a column the job never reads must not reject the row: with
/// projection that column is not even read, and the flags must never change the error counts.
/// Marks those columns `SourceSpec::unread`.
pub fn mark_unread(dag: &mut Dag) -> Result<(), PlanError> {
    let needed = needed_columns(dag)?;
    for (i, node) in dag.nodes.iter_mut().enumerate() {
        if let Op::Source(spec) = &mut node.op {
            spec.unread = (0..spec.columns.len())
                .filter(|c| !needed[i].contains(c))
                .map(|c| spec.columns[c])
                .collect();
        }
    }
    Ok(())
}

pub fn prune_hints(dag: &mut Dag) {
    let consumers = dag.consumers();
    for i in 0..dag.nodes.len() {
        let pred = match consumers.get(i).map(|c| &c[..]) {
            Some(&[c]) => match dag.nodes.get(c).map(|n| &n.op) {
                Some(Op::Filter { pred, .. }) if exprs::infallible(pred) => Some(pred.clone()),
                _ => None,
            },
            _ => None,
        };
        if let Op::Source(spec) = &mut dag.nodes[i].op {
            spec.prune = pred;
        }
    }
}

pub fn project(dag: &mut Dag) -> Result<(), PlanError> {
    let n = dag.nodes.len();
    let needed = needed_columns(dag)?;
    // Forward: `kept[i]` = the original columns of node i still present, in order, for nodes
    // whose row is a projection (sources and the filters/limits on top of them); `None` = all.
    let mut kept: Vec<Option<Vec<usize>>> = vec![None; n];
    for i in 0..n {
        let input_kept: Option<Vec<usize>> = dag.nodes[i]
            .inputs
            .first()
            .and_then(|&p| kept.get(p).cloned().flatten());
        let colmap = |k: &Option<Vec<usize>>| {
            let k = k.clone();
            move |c: usize| match &k {
                None => Some(c),
                Some(cols) => cols.iter().position(|&x| x == c),
            }
        };
        let map_in = colmap(&input_kept);
        let node = &mut dag.nodes[i];
        match &mut node.op {
            Op::Source(spec) => {
                let cols: Vec<usize> = needed[i].iter().copied().collect();
                if cols.len() < node.row.len() {
                    let mut columns = Vec::with_capacity(cols.len());
                    for &c in &cols {
                        columns.push(*spec.columns.get(c).ok_or_else(|| {
                            internal(format!("source {} has no column {c}", spec.name))
                        })?);
                    }
                    spec.columns = columns;
                    node.row = project_row(&node.row, &cols)?;
                    kept[i] = Some(cols);
                }
            }
            Op::Filter { pred, .. } => {
                *pred = exprs::remap(pred, &map_in)
                    .ok_or_else(|| internal(format!("filter n{i} reads a dropped column")))?;
                if let Some(cols) = &input_kept {
                    node.row = project_row(&node.row, cols)?;
                }
                kept[i] = input_kept;
            }
            Op::Limit(_) => {
                if let Some(cols) = &input_kept {
                    node.row = project_row(&node.row, cols)?;
                }
                kept[i] = input_kept;
            }
            Op::Sort { keys } => {
                for k in keys.iter_mut() {
                    k.col = map_in(k.col)
                        .ok_or_else(|| internal(format!("sort n{i} reads a dropped column")))?;
                }
                if let Some(cols) = &input_kept {
                    node.row = project_row(&node.row, cols)?;
                }
                kept[i] = input_kept;
            }
            Op::Map { fields, .. } => {
                for (_, e) in fields.iter_mut() {
                    *e = exprs::remap(e, &map_in)
                        .ok_or_else(|| internal(format!("map n{i} reads a dropped column")))?;
                }
            }
            Op::Group { keys, aggs } => {
                for k in keys.iter_mut() {
                    *k = map_in(*k)
                        .ok_or_else(|| internal(format!("group n{i} reads a dropped column")))?;
                }
                for a in aggs.iter_mut() {
                    if let Some(e) = &mut a.arg {
                        *e = exprs::remap(e, &map_in).ok_or_else(|| {
                            internal(format!("group n{i} reads a dropped column"))
                        })?;
                    }
                }
            }
            Op::Fused { steps } => {
                // Only the first step reads the input row.
                if let Some(first) = steps.first_mut() {
                    remap_step(first, &map_in)
                        .ok_or_else(|| internal(format!("n{i} reads a dropped column")))?;
                }
                if input_kept.is_some() {
                    return Err(internal("projection under a fused chain is not supported"));
                }
            }
            Op::Union | Op::Sink(_) | Op::Distinct { .. } | Op::Join { .. } => {
                // They demand every column, so their inputs are never projected.
                let projected = node
                    .inputs
                    .iter()
                    .any(|&p| kept.get(p).is_some_and(|k| k.is_some()));
                if projected {
                    return Err(internal(format!("n{i} reads a projected row")));
                }
            }
        }
    }
    Ok(())
}

fn remap_step(s: &mut FusedStep, map: &impl Fn(usize) -> Option<usize>) -> Option<()> {
    match &mut s.step {
        Step::Filter(e) => *e = exprs::remap(e, map)?,
        Step::Map(es) => {
            for e in es.iter_mut() {
                *e = exprs::remap(e, map)?;
            }
        }
    }
    Some(())
}

fn project_row(row: &RowType, cols: &[usize]) -> Result<RowType, PlanError> {
    cols.iter()
        .map(|&c| {
            row.fields
                .get(c)
                .cloned()
                .ok_or_else(|| internal(format!("row {row} has no column {c}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(RowType::new)
}
