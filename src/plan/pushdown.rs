//! Pushdown, on the unfused DAG:
//!
//! 1. `push_filters`: a filter moves above a map when the map has no other consumer, every
//!    column the predicate reads is a plain copy (`a` or `b: a`) of an input column, and no
//!    expression of the map can fail. The last condition keeps error behaviour unchanged: the
//!    map would have been evaluated on every row anyway, and the filter sees the same rows. A
//!    filter never moves across group, limit, union, distinct, another filter (both could fail,
//!    in a different order) or a node with other consumers. A filter moves below a `sort` with
//!    no other consumer (same rows, same order, fewer rows sorted). Below a join with no other
//!    consumer, the predicate is split into its `&&` conjuncts: a conjunct over the left
//!    columns only moves onto the left input, for an inner join one over the brought fields only
//!    onto the right input (rewritten over its row); the rest stay above. A left join keeps its
//!    right-side conjuncts above (its null-extended rows would change their meaning). Only
//!    conjuncts that cannot fail move, and none after the first that can (so every row a
//!    fallible conjunct met, and failed on, still reaches it: a join repeats and drops rows), nor
//!    one reading a column as non-null that only a conjunct staying behind proves present.
//! 2. `project`: every source is told which of its columns are read downstream
//!    (`SourceSpec::columns`; the union over all consumers when shared). Rows of filters and
//!    limits on top of a projected source shrink the same way, and the expressions reading them
//!    are re-indexed. A join reads its keys, the left columns and the brought fields read after
//!    it: its inputs shrink (when projected) and so does its own row. Sinks and unions need
//!    every column of their input, so projection never changes what a sink writes or the row
//!    type a union sees.
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
        if let Some(push) = (0..dag.nodes.len()).find_map(|f| through_join(dag, &consumers, f)) {
            push_through_join(dag, push);
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

/// The conjuncts of a filter above a join that move below it: `left` onto the left input,
/// `right` (rewritten over the right input's row) onto the right one, `rest` stay above.
struct JoinPush {
    f: usize,
    j: usize,
    left: Vec<Expr>,
    right: Vec<Expr>,
    rest: Vec<Expr>,
}

/// If filter `f` reads a join with no other consumer and some conjuncts of its predicate read
/// only one side, those conjuncts (see the module doc for which may move).
fn through_join(dag: &Dag, consumers: &[Vec<usize>], f: usize) -> Option<JoinPush> {
    let fnode = dag.nodes.get(f)?;
    let Op::Filter { pred, .. } = &fnode.op else {
        return None;
    };
    let [j] = fnode.inputs[..] else { return None };
    let jnode = dag.nodes.get(j)?;
    let Op::Join { fields, outer, .. } = &jnode.op else {
        return None;
    };
    let [l, r] = jnode.inputs[..] else {
        return None;
    };
    if consumers.get(j)?.len() != 1 {
        return None;
    }
    let (lrow, rrow) = (&dag.nodes.get(l)?.row, &dag.nodes.get(r)?.row);
    let nleft = lrow.len();
    let to_right = |c: usize| c.checked_sub(nleft).and_then(|k| fields.get(k).copied());
    let mut push = JoinPush {
        f,
        j,
        left: Vec::new(),
        right: Vec::new(),
        rest: Vec::new(),
    };
    let (mut lproven, mut rproven) = (BTreeSet::new(), BTreeSet::new());
    let mut fallible_seen = false;
    for c in exprs::conjuncts(pred) {
        // Past the first conjunct that can fail, nothing moves: a row it would have failed on
        // must still reach it.
        fallible_seen = fallible_seen || !exprs::infallible(&c);
        let mut cols = BTreeSet::new();
        exprs::fields(&c, &mut cols);
        let side = if fallible_seen || cols.is_empty() {
            None
        } else if cols.iter().all(|&k| k < nleft) {
            exprs::reads_only_present(&c, lrow, &lproven).then(|| (c.clone(), true))
        } else if !*outer && cols.iter().all(|&k| k >= nleft) {
            // A left join's null-extended rows would change the meaning of a right-side test.
            exprs::remap(&c, &to_right)
                .filter(|e| exprs::reads_only_present(e, rrow, &rproven))
                .map(|e| (e, false))
        } else {
            None
        };
        match side {
            Some((e, true)) => {
                exprs::non_null(&e, true, &mut lproven);
                push.left.push(e);
            }
            Some((e, false)) => {
                exprs::non_null(&e, true, &mut rproven);
                push.right.push(e);
            }
            None => push.rest.push(c),
        }
    }
    if push.left.is_empty() && push.right.is_empty() {
        return None;
    }
    if push.rest.is_empty() && joined_row(dag, &push)? != fnode.row {
        // The filter's row would not be reproduced exactly: leave it where it is.
        return None;
    }
    Some(push)
}

/// `row` with the columns the predicate proves present made non-null.
fn narrowed(row: &RowType, pred: Option<&Expr>) -> RowType {
    let mut row = row.clone();
    if let Some(p) = pred {
        let mut proven = BTreeSet::new();
        exprs::non_null(p, true, &mut proven);
        for c in proven {
            if let Some(f) = row.fields.get_mut(c) {
                f.ty.nullable = false;
            }
        }
    }
    row
}

/// The row of the join once the pushed conjuncts filter its inputs.
fn joined_row(dag: &Dag, push: &JoinPush) -> Option<RowType> {
    let jnode = dag.nodes.get(push.j)?;
    let Op::Join { fields, outer, .. } = &jnode.op else {
        return None;
    };
    let [l, r] = jnode.inputs[..] else {
        return None;
    };
    let lrow = narrowed(
        &dag.nodes.get(l)?.row,
        exprs::conjunction(push.left.clone()).as_ref(),
    );
    let rrow = narrowed(
        &dag.nodes.get(r)?.row,
        exprs::conjunction(push.right.clone()).as_ref(),
    );
    let mut row = jnode.row.clone();
    for (c, f) in row.fields.iter_mut().enumerate() {
        f.ty.nullable = match c.checked_sub(lrow.len()) {
            None => lrow.fields.get(c)?.ty.nullable,
            Some(k) => *outer || rrow.fields.get(*fields.get(k)?)?.ty.nullable,
        };
    }
    Some(row)
}

/// `L, R -> J(join) -> F(filter)` becomes `L -> FL, R -> FR, (FL, FR) -> J' -> F'` with the
/// moved conjuncts in FL and FR and the others in F' (no F' if none is left).
fn push_through_join(dag: &mut Dag, push: JoinPush) {
    let Some(row) = joined_row(dag, &push) else {
        return;
    };
    let JoinPush {
        f,
        j,
        left,
        right,
        rest,
    } = push;
    let fnode = dag.nodes[f].clone();
    let Op::Filter { policy, .. } = &fnode.op else {
        return;
    };
    let old = std::mem::take(&mut dag.nodes);
    let mut nodes: Vec<DNode> = Vec::with_capacity(old.len() + 2);
    let mut new_index: Vec<usize> = Vec::with_capacity(old.len());
    for (i, mut node) in old.into_iter().enumerate() {
        node.inputs = node.inputs.iter().map(|&p| new_index[p]).collect();
        if i == j {
            let mut inputs = node.inputs.clone();
            for (port, part) in [left.clone(), right.clone()].into_iter().enumerate() {
                let (Some(pred), Some(&input)) = (exprs::conjunction(part), inputs.get(port))
                else {
                    continue;
                };
                nodes.push(DNode {
                    row: narrowed(&nodes[input].row, Some(&pred)),
                    op: Op::Filter {
                        pred,
                        policy: policy.clone(),
                    },
                    hints: fnode.hints.clone(),
                    labels: Vec::new(),
                    span: fnode.span,
                    inputs: vec![input],
                });
                inputs[port] = nodes.len() - 1;
            }
            node.inputs = inputs;
            node.row = row.clone();
            // The join's own `let` name denoted the unfiltered rows, which no longer exist.
            node.labels = Vec::new();
            nodes.push(node);
        } else if i == f {
            match exprs::conjunction(rest.clone()) {
                Some(pred) => {
                    node.op = Op::Filter {
                        pred,
                        policy: policy.clone(),
                    };
                    nodes.push(node);
                }
                None => {
                    // Every conjunct moved: the join is the filter's place, and its name.
                    let at = new_index[j];
                    nodes[at].labels = node.labels;
                    new_index.push(at);
                    continue;
                }
            }
        } else {
            nodes.push(node);
        }
        new_index.push(nodes.len() - 1);
    }
    dag.nodes = nodes;
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
        Op::Sink(_) | Op::Union | Op::Distinct { .. } => {
            input_rows.iter().map(|r| all(r)).collect()
        }
        Op::Join { keys, fields, .. } => {
            // The keys of both sides, the left columns and the brought fields read downstream.
            let nleft = input_rows.first().map_or(0, |r| r.len());
            let mut l: BTreeSet<usize> = needed_out.range(..nleft).copied().collect();
            l.extend(keys.iter().map(|k| k.left));
            let mut r: BTreeSet<usize> = keys.iter().map(|k| k.right).collect();
            r.extend(
                needed_out
                    .range(nleft..)
                    .filter_map(|&c| fields.get(c - nleft).copied()),
            );
            vec![l, r]
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
        let right_kept: Option<Vec<usize>> = dag.nodes[i]
            .inputs
            .get(1)
            .and_then(|&p| kept.get(p).cloned().flatten());
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
            Op::Join { keys, fields, .. } => {
                let map_right = colmap(&right_kept);
                for k in keys.iter_mut() {
                    k.left = map_in(k.left)
                        .ok_or_else(|| internal(format!("join n{i} reads a dropped column")))?;
                    k.right = map_right(k.right)
                        .ok_or_else(|| internal(format!("join n{i} reads a dropped column")))?;
                }
                // The output: the left columns still present, then the brought fields that are
                // read downstream.
                let nleft = node.row.len().saturating_sub(fields.len());
                let mut out: Vec<usize> = match &input_kept {
                    Some(cols) => cols.clone(),
                    None => (0..nleft).collect(),
                };
                let mut kept_fields = Vec::new();
                for (k, &f) in fields.iter().enumerate() {
                    if needed[i].contains(&(nleft + k)) {
                        out.push(nleft + k);
                        kept_fields.push(map_right(f).ok_or_else(|| {
                            internal(format!("join n{i} brings a dropped column"))
                        })?);
                    }
                }
                *fields = kept_fields;
                if out.len() < node.row.len() {
                    node.row = project_row(&node.row, &out)?;
                    kept[i] = Some(out);
                }
            }
            Op::Union | Op::Sink(_) | Op::Distinct { .. } => {
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
