//! Fusion: maximal chains of filter/map nodes become one `Op::Fused` node (one kernel).
//!
//! A chain continues from a node to its consumer only when the node has exactly one consumer:
//! a shared stream ends a chain, and each of its consumers starts a new one, so shared work is
//! still computed once. Every filter/map ends up in a fused node, also a chain of one step, so
//! code generation only has one kind of kernel node to handle.

use super::dag::{DNode, Dag, merge_hints};
use super::error::PlanError;
use super::ir::{FusedStep, Op, Step};

fn is_step(op: &Op) -> bool {
    matches!(op, Op::Filter { .. } | Op::Map { .. })
}

pub fn fuse(dag: Dag) -> Result<Dag, PlanError> {
    let n = dag.nodes.len();
    let consumers = dag.consumers();
    // chain[i]: the chain (index into `chains`) node i belongs to.
    let mut chain: Vec<Option<usize>> = vec![None; n];
    let mut chains: Vec<Vec<usize>> = Vec::new();
    for i in 0..n {
        let node = &dag.nodes[i];
        if !is_step(&node.op) {
            continue;
        }
        let [p] = node.inputs[..] else {
            return Err(PlanError::Internal(format!("n{i} must have one input")));
        };
        let continues = consumers.get(p).is_some_and(|c| c.len() == 1);
        match chain.get(p).copied().flatten() {
            Some(c) if continues => {
                chains[c].push(i);
                chain[i] = Some(c);
            }
            _ => {
                chains.push(vec![i]);
                chain[i] = Some(chains.len() - 1);
            }
        }
    }
    let mut new_index: Vec<Option<usize>> = vec![None; n];
    let mut out = Dag::default();
    let mut nodes: Vec<Option<DNode>> = dag.nodes.into_iter().map(Some).collect();
    for i in 0..n {
        let remap = |inputs: &[usize], new_index: &[Option<usize>]| {
            inputs
                .iter()
                .map(|&p| new_index.get(p).copied().flatten())
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| PlanError::Internal(format!("n{i} reads a node not yet placed")))
        };
        match chain[i] {
            None => {
                let Some(mut node) = nodes[i].take() else {
                    continue;
                };
                node.inputs = remap(&node.inputs, &new_index)?;
                out.nodes.push(node);
                new_index[i] = Some(out.nodes.len() - 1);
            }
            // Interior members are emitted with their chain's last node.
            Some(c) if chains[c].last() != Some(&i) => {}
            Some(c) => {
                let members = &chains[c];
                let mut steps = Vec::with_capacity(members.len());
                let mut fused: Option<DNode> = None;
                for &k in members {
                    let Some(node) = nodes[k].take() else {
                        return Err(PlanError::Internal(format!("n{k} is in two chains")));
                    };
                    let step = match node.op {
                        Op::Filter { pred, policy } => FusedStep {
                            step: Step::Filter(pred),
                            policy,
                            row: node.row.clone(),
                        },
                        Op::Map { fields, policy } => FusedStep {
                            step: Step::Map(fields.into_iter().map(|(_, e)| e).collect()),
                            policy,
                            row: node.row.clone(),
                        },
                        _ => return Err(PlanError::Internal(format!("n{k} is not a step"))),
                    };
                    steps.push(step);
                    fused = Some(match fused {
                        None => DNode {
                            op: Op::Union, // replaced below
                            row: node.row,
                            hints: node.hints,
                            labels: node.labels,
                            span: node.span,
                            inputs: remap(&node.inputs, &new_index)?,
                        },
                        Some(mut f) => {
                            f.row = node.row;
                            f.hints = merge_hints(&f.hints, &node.hints);
                            for l in node.labels {
                                if !f.labels.contains(&l) {
                                    f.labels.push(l);
                                }
                            }
                            f
                        }
                    });
                }
                let Some(mut f) = fused else { continue };
                f.op = Op::Fused { steps };
                out.nodes.push(f);
                new_index[i] = Some(out.nodes.len() - 1);
            }
        }
    }
    Ok(out)
}
