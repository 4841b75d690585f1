//! `flow explain`: the plan as readable text, Graphviz DOT, or JSON.
//!
//! Nodes are named `n0`, `n1`… by their index, which is a topological order (inputs first) and
//! deterministic: the same program always gives the same names.

use super::ir::{JoinSide, NodeId, Op, Plan, Step};
use super::print;
use crate::types::RowType;
use serde_json::json;

fn id(n: NodeId) -> String {
    format!("n{}", n.index())
}

fn ids(ns: &[NodeId]) -> Vec<String> {
    ns.iter().map(|&n| id(n)).collect()
}

/// The row type of a node's first input (what its expressions read), or an empty row.
fn input_row(plan: &Plan, n: NodeId) -> RowType {
    plan.inputs(n)
        .first()
        .and_then(|&i| plan.graph.node_weight(i))
        .map(|node| node.row.clone())
        .unwrap_or_default()
}

/// The node's parameters in flow syntax (one line), and for a fused node its steps.
fn params(plan: &Plan, n: NodeId) -> (String, Vec<String>) {
    let node = &plan.graph[n];
    let input = input_row(plan, n);
    match &node.op {
        Op::Source(spec) => (print::source(spec), Vec::new()),
        Op::Filter { pred, policy } => (
            format!(
                "{}{}",
                print::expr(pred, &input),
                print::stage_policy(policy)
            ),
            Vec::new(),
        ),
        Op::Map { fields, policy } => (
            format!(
                "{}{}",
                print::map_fields(fields.iter().map(|(n, e)| (n.as_str(), e)), &input),
                print::stage_policy(policy)
            ),
            Vec::new(),
        ),
        Op::Fused { steps } => {
            let mut row = input;
            let mut lines = Vec::new();
            for s in steps {
                let text = match &s.step {
                    Step::Filter(e) => format!("filter {}", print::expr(e, &row)),
                    Step::Map(es) => format!(
                        "map {}",
                        print::map_fields(
                            s.row.fields.iter().map(|f| f.name.as_str()).zip(es.iter()),
                            &row
                        )
                    ),
                };
                lines.push(format!("{text}{}", print::stage_policy(&s.policy)));
                row = s.row.clone();
            }
            let plural = if steps.len() == 1 { "" } else { "s" };
            (format!("({} step{plural})", steps.len()), lines)
        }
        Op::Group { keys, aggs } => {
            let g = print::group(keys, aggs, &input);
            (g.trim_start_matches("group ").to_string(), Vec::new())
        }
        Op::Union => (String::new(), Vec::new()),
        Op::Limit(k) => (k.to_string(), Vec::new()),
        Op::Sort { keys } => (print::sort_keys(keys, &input), Vec::new()),
        Op::Distinct { keys } => (print::distinct_keys(keys, &input), Vec::new()),
        Op::Join {
            keys,
            fields,
            outer,
            ..
        } => {
            let right = plan
                .inputs(n)
                .get(1)
                .and_then(|&i| plan.graph.node_weight(i))
                .map(|node| node.row.clone())
                .unwrap_or_default();
            (
                print::join(keys, fields, *outer, &input, &right),
                Vec::new(),
            )
        }
        Op::Sink(spec) => (print::sink(spec), Vec::new()),
    }
}

fn source_columns(plan: &Plan, n: NodeId) -> Option<String> {
    let Op::Source(spec) = &plan.graph[n].op else {
        return None;
    };
    if spec.columns.len() == spec.schema.len()
        && spec.columns.iter().enumerate().all(|(i, &c)| i == c)
    {
        return None;
    }
    let names: Vec<String> = spec
        .columns
        .iter()
        .map(|&c| {
            spec.schema
                .fields
                .get(c)
                .map(|f| f.name.clone())
                .unwrap_or_else(|| format!("#{c}"))
        })
        .collect();
    Some(format!(
        "{} ({} of {})",
        names.join(", "),
        spec.columns.len(),
        spec.schema.len()
    ))
}

/// A join's strategy in words: which side is built, which streamed, and how rows meet across
/// workers.
fn join_strategy(plan: &Plan, n: NodeId) -> Option<String> {
    let Op::Join {
        outer, strategy, ..
    } = &plan.graph[n].op
    else {
        return None;
    };
    let rows = |r: Option<u64>| match r {
        Some(n) => format!("~{n} rows"),
        None => "size unknown".to_string(),
    };
    let (build, built, stream, streamed) = match strategy.build {
        JoinSide::Left => ("left", strategy.left_rows, "right", strategy.right_rows),
        JoinSide::Right => ("right", strategy.right_rows, "left", strategy.left_rows),
    };
    let mut s = format!(
        "build {build} ({}), stream {stream} ({})",
        rows(built),
        rows(streamed)
    );
    if *outer {
        s.push_str(" (a left join always builds its right side)");
    }
    if strategy.broadcast {
        s.push_str(&format!(
            "; on several workers: broadcast {build} to every worker, {stream} stays where it is"
        ));
    } else {
        s.push_str("; on several workers: both sides exchanged by key hash");
    }
    Some(s)
}

/// Labels worth showing: a source's own name is already in its parameters.
fn labels(plan: &Plan, n: NodeId) -> Vec<String> {
    let node = &plan.graph[n];
    node.labels
        .iter()
        .filter(|l| !matches!(&node.op, Op::Source(s) if &s.name == *l))
        .cloned()
        .collect()
}

pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "plan: {} nodes; de-duplication: {} -> {} nodes\n",
        plan.graph.node_count(),
        plan.stats.nodes_before_dedup,
        plan.stats.nodes_after_dedup
    ));
    for n in plan.graph.node_indices() {
        let node = &plan.graph[n];
        let inputs = plan.inputs(n);
        let outputs = plan.outputs(n);
        let (p, steps) = params(plan, n);
        let mut head = format!("{} {}", id(n), node.op.kind());
        if !p.is_empty() {
            head.push(' ');
            head.push_str(&p);
        }
        head.push_str(&print::hints(&node.hints));
        if !inputs.is_empty() {
            head.push_str(&format!(" <- {}", ids(&inputs).join(", ")));
        }
        if outputs.len() > 1 {
            head.push_str(&format!("  [shared by {}]", outputs.len()));
        }
        out.push_str(&head);
        out.push('\n');
        for (k, s) in steps.iter().enumerate() {
            out.push_str(&format!("    {}. {s}\n", k + 1));
        }
        if let Some(cols) = source_columns(plan, n) {
            out.push_str(&format!("    reads: {cols}\n"));
        }
        if let Some(j) = join_strategy(plan, n) {
            out.push_str(&format!("    strategy: {j}\n"));
        }
        if !matches!(node.op, Op::Sink(_)) {
            out.push_str(&format!("    row: {}\n", node.row));
        }
        let labels = labels(plan, n);
        if !labels.is_empty() {
            out.push_str(&format!("    labels: {}\n", labels.join(", ")));
        }
        if !outputs.is_empty() {
            out.push_str(&format!("    outputs: {}\n", ids(&outputs).join(", ")));
        }
        out.push_str(&format!("    used by: {}\n", node.used_by.join(", ")));
    }
    out
}

fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\l"),
            '{' | '}' | '<' | '>' | '|' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

pub fn dot(plan: &Plan) -> String {
    let mut out = String::from(
        "digraph plan {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    for n in plan.graph.node_indices() {
        let node = &plan.graph[n];
        let (p, steps) = params(plan, n);
        let mut label = format!("{} {}", id(n), node.op.kind());
        if !p.is_empty() {
            label.push(' ');
            label.push_str(&p);
        }
        label.push('\n');
        for s in &steps {
            label.push_str(&format!("  {s}\n"));
        }
        let labels = labels(plan, n);
        if !labels.is_empty() {
            label.push_str(&format!("labels: {}\n", labels.join(", ")));
        }
        let style = if plan.outputs(n).len() > 1 {
            ", style=bold, color=blue"
        } else {
            ""
        };
        out.push_str(&format!(
            "  {} [label=\"{}\"{style}];\n",
            id(n),
            dot_escape(&label)
        ));
    }
    for e in plan.graph.edge_indices() {
        if let Some((a, b)) = plan.graph.edge_endpoints(e) {
            out.push_str(&format!(
                "  {} -> {} [label=\"{}\"];\n",
                id(a),
                id(b),
                dot_escape(&plan.graph[a].row.to_string())
            ));
        }
    }
    out.push_str("}\n");
    out
}

pub fn json(plan: &Plan) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = plan
        .graph
        .node_indices()
        .map(|n| {
            let node = &plan.graph[n];
            let outputs = plan.outputs(n);
            let (p, steps) = params(plan, n);
            let mut v = json!({
                "id": id(n),
                "kind": node.op.kind(),
                "params": p,
                "inputs": ids(&plan.inputs(n)),
                "outputs": ids(&outputs),
                "shared": outputs.len() > 1,
                "used_by": node.used_by,
                "row": node.row.to_string(),
                "labels": labels(plan, n),
            });
            if !steps.is_empty() {
                v["steps"] = json!(steps);
            }
            if let Some(j) = join_strategy(plan, n) {
                v["strategy"] = json!(j);
            }
            if let Op::Source(spec) = &node.op {
                let cols: Vec<&str> = node.row.fields.iter().map(|f| f.name.as_str()).collect();
                v["columns"] = json!(cols);
                v["schema"] = json!(spec.schema.to_string());
            }
            v
        })
        .collect();
    json!({
        "nodes": nodes,
        "stats": {
            "nodes_before_dedup": plan.stats.nodes_before_dedup,
            "nodes_after_dedup": plan.stats.nodes_after_dedup,
        }
    })
}
