//! Where each part of a job runs (issue 12, "the engine follows the data"): the one placement
//! decision. It reads a `plan::Plan` and returns, per part (a weakly connected component of the
//! de-duplicated plan: a pipeline, or pipelines that share nodes),
//!
//! - **in PostgreSQL** when every source and sink of the part is a `postgres` table or query on
//!   one server and the SQL backend translates every stage faithfully (`compile_on`): the part's
//!   statements (its `INSERT … SELECT`s), run there in one transaction, no rows through flow;
//! - **in flow** otherwise, with a note saying why, and for each `postgres` source the longest
//!   translatable chain of stages right after it pushed into the query it sends (`select_of`),
//!   so flow reads only the result rows.
//!
//! `native_plan` is the plan flow runs itself: the parts in flow, each pushed chain replaced by
//! a `postgres` source of its query. `text` / `json` are what `flow explain` shows. No I/O here:
//! the driver (`driver::place`) executes the placement.

use super::{Postgres, SqlError, Statement, compile_on, select_of};
use crate::connectors::opt_str;
use crate::connectors::postgres::client::resolve;
use crate::plan::ir::SourceSpec;
use crate::plan::{Node, NodeId, Op, Plan};
use crate::types::Value;
use petgraph::visit::EdgeRef;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

pub use crate::connectors::postgres::SETUP_OPTION;

/// A PostgreSQL server as the placement compares and shows it.
#[derive(Clone, PartialEq)]
pub struct Server {
    /// The resolved URL, for comparison only (it may hold a password: never shown).
    key: String,
    /// `host:port/db`, without user or password.
    pub shown: String,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Server({})", self.shown)
    }
}

impl Server {
    /// The URL to connect to (it may hold a password: never show it).
    pub fn url(&self) -> &str {
        &self.key
    }

    /// The server of a connector's `url` option (`$NAME` resolved).
    pub fn of(url: &str) -> Result<Server, String> {
        let key = resolve(url)?;
        let shown = match key.parse::<postgres::Config>() {
            Ok(c) => {
                let host = match c.get_hosts().first() {
                    Some(postgres::config::Host::Tcp(h)) => h.clone(),
                    Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
                    None => "localhost".into(),
                };
                let port = c.get_ports().first().copied().unwrap_or(5432);
                format!("{host}:{port}/{}", c.get_dbname().unwrap_or("?"))
            }
            Err(_) => crate::job::redact_url(&key),
        };
        Ok(Server { key, shown })
    }
}

/// A chain of stages pushed into a `postgres` source's query.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub source: NodeId,
    /// The stages covered, in order (the last one's rows are what flow reads).
    pub stages: Vec<NodeId>,
    pub server: Server,
    /// The statements run before the query on the reader's connection.
    pub setup: Vec<String>,
    /// The query sent.
    pub sql: String,
    /// Why the chain stops where it does, when a next stage exists but is not pushed.
    pub stop: Option<String>,
    /// The fused node after `stages` whose first `k` steps are pushed too (its other steps run
    /// in flow): `(node, k)`.
    pub split: Option<(NodeId, usize)>,
}

impl Pushed {
    /// The first node of the chain (a consumer of the source).
    fn first(&self) -> Option<NodeId> {
        self.stages.first().copied().or(self.split.map(|s| s.0))
    }
}

#[derive(Clone, Debug)]
pub enum Run {
    /// Inside PostgreSQL: `statements` (setup, then one `INSERT … SELECT` per sink) in one
    /// transaction on `server`.
    Database {
        server: Server,
        statements: Vec<Statement>,
    },
    /// In flow's runtime; `note`: why not in the database (`None`: it reads or writes files, so
    /// the question does not arise); `pushed`: chains sent to `postgres` sources.
    Flow {
        note: Option<String>,
        pushed: Vec<Pushed>,
    },
}

#[derive(Clone, Debug)]
pub struct Part {
    /// The plan nodes of the part, in index order.
    pub nodes: Vec<NodeId>,
    pub run: Run,
}

#[derive(Clone, Debug, Default)]
pub struct Placement {
    pub parts: Vec<Part>,
}

impl Placement {
    /// Whether everything runs in flow exactly as planned (nothing in the database, nothing
    /// pushed): the original plan is run unchanged.
    pub fn all_in_flow(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(&p.run, Run::Flow { pushed, .. } if pushed.is_empty()))
    }

    /// The parts that run in the database, grouped by server (in order of first appearance).
    pub fn in_database(&self) -> Vec<(&Server, Vec<&Part>)> {
        let mut out: Vec<(&Server, Vec<&Part>)> = Vec::new();
        for p in &self.parts {
            if let Run::Database { server, .. } = &p.run {
                match out.iter_mut().find(|(s, _)| *s == server) {
                    Some((_, v)) => v.push(p),
                    None => out.push((server, vec![p])),
                }
            }
        }
        out
    }
}

/// Whether the plan reads or writes PostgreSQL at all (`flow explain` shows the placement then).
pub fn uses_database(plan: &Plan) -> bool {
    plan.graph.node_weights().any(|n| match &n.op {
        Op::Source(s) => s.connector == "postgres",
        Op::Sink(s) => s.connector == "postgres",
        _ => false,
    })
}

/// The parts of the plan: weakly connected components, each in index order, ordered by their
/// first node.
fn parts(plan: &Plan) -> Vec<Vec<NodeId>> {
    let mut part: BTreeMap<NodeId, usize> = BTreeMap::new();
    let mut out: Vec<Vec<NodeId>> = Vec::new();
    for start in plan.graph.node_indices() {
        if part.contains_key(&start) {
            continue;
        }
        let k = out.len();
        let mut nodes = Vec::new();
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            if part.contains_key(&n) {
                continue;
            }
            part.insert(n, k);
            nodes.push(n);
            stack.extend(plan.graph.neighbors_undirected(n));
        }
        nodes.sort();
        out.push(nodes);
    }
    out
}

/// The plan of `nodes` only (in index order, edges between them kept).
fn subplan(plan: &Plan, nodes: &[NodeId]) -> Plan {
    let mut graph = petgraph::graph::DiGraph::new();
    let mut map = BTreeMap::new();
    for &n in nodes {
        map.insert(n, graph.add_node(plan.graph[n].clone()));
    }
    for e in plan.graph.edge_references() {
        if let (Some(&a), Some(&b)) = (map.get(&e.source()), map.get(&e.target())) {
            graph.add_edge(a, b, *e.weight());
        }
    }
    Plan {
        graph,
        mode: plan.mode.clone(),
        stats: plan.stats,
    }
}

fn connector_of(node: &Node) -> Option<(&str, &crate::job::Options)> {
    match &node.op {
        Op::Source(s) => Some((s.connector.as_str(), &s.options)),
        Op::Sink(s) => Some((s.connector.as_str(), &s.options)),
        _ => None,
    }
}

fn what(node: &Node) -> String {
    match &node.op {
        Op::Source(s) => format!("source `{}`", s.name),
        Op::Sink(s) => format!("the sink at {}", s.origin),
        _ => node.op.kind().to_string(),
    }
}

fn refusal(errors: &[SqlError]) -> String {
    match errors.first() {
        Some(e) => format!("[{}] {} ({})", e.code.as_str(), e.message, e.label),
        None => "not translated".into(),
    }
}

/// Where each part of `plan` runs. `native`: everything in flow (`flow run --native`).
pub fn place(plan: &Plan, native: bool) -> Placement {
    let mut out = Placement::default();
    for nodes in parts(plan) {
        let run = if native {
            Run::Flow {
                note: uses_database_in(plan, &nodes)
                    .then(|| "--native: every stage runs in flow".to_string()),
                pushed: Vec::new(),
            }
        } else {
            match in_database(plan, &nodes) {
                Ok(Some((server, statements))) => Run::Database { server, statements },
                Ok(None) => Run::Flow {
                    note: None,
                    pushed: pushes(plan, &nodes),
                },
                Err(note) => Run::Flow {
                    note: Some(note),
                    pushed: pushes(plan, &nodes),
                },
            }
        };
        out.parts.push(Part { nodes, run });
    }
    out
}

fn uses_database_in(plan: &Plan, nodes: &[NodeId]) -> bool {
    nodes
        .iter()
        .any(|&n| matches!(connector_of(&plan.graph[n]), Some(("postgres", _))))
}

/// The part's server and statements when it runs in the database; `Ok(None)` when it touches no
/// database; `Err(why not)` otherwise.
fn in_database(plan: &Plan, nodes: &[NodeId]) -> Result<Option<(Server, Vec<Statement>)>, String> {
    if !uses_database_in(plan, nodes) {
        return Ok(None);
    }
    let mut server: Option<Server> = None;
    for &n in nodes {
        let node = &plan.graph[n];
        let Some((connector, options)) = connector_of(node) else {
            continue;
        };
        if connector != "postgres" {
            let how = if matches!(node.op, Op::Source(_)) {
                "reads"
            } else {
                "writes"
            };
            return Err(format!(
                "{} {how} {connector}, not a PostgreSQL table",
                what(node)
            ));
        }
        let s = Server::of(opt_str(options, "url").unwrap_or_default())?;
        match &server {
            None => server = Some(s),
            Some(first) if *first == s => {}
            Some(first) => {
                return Err(format!(
                    "its tables are on more than one server ({} and {})",
                    first.shown, s.shown
                ));
            }
        }
    }
    let Some(server) = server else {
        return Ok(None);
    };
    let sub = subplan(plan, nodes);
    match compile_on(&sub, &Postgres, Some(&server.key)) {
        Ok(statements) => Ok(Some((server, statements))),
        Err(errors) => Err(format!("not translated to SQL: {}", refusal(&errors))),
    }
}

/// The chain of stages from `first` (a consumer of a source) on: each with one input, each but
/// the last with one consumer, no sink; and why it ends where it does, when that is not the sink.
fn chain(plan: &Plan, first: NodeId) -> (Vec<NodeId>, Option<String>) {
    let mut out = Vec::new();
    let mut n = first;
    loop {
        let node = &plan.graph[n];
        if matches!(node.op, Op::Sink(_)) {
            return (out, None);
        }
        if plan.inputs(n).len() != 1 {
            let stop = format!("n{} {} has more than one input", n.index(), node.op.kind());
            return (out, Some(stop));
        }
        out.push(n);
        let next = plan.outputs(n);
        if next.len() != 1 {
            let stop = (next.len() > 1).then(|| {
                format!(
                    "n{} feeds {} consumers: its rows are computed once for all of them",
                    n.index(),
                    next.len()
                )
            });
            return (out, stop);
        }
        n = next[0];
    }
}

/// The pushed chains of the part's `postgres` sources: per consumer of a source, the longest
/// translatable chain after it (a source shared by several consumers is read once per pushed
/// chain, and once more by flow for the consumers that push nothing).
fn pushes(plan: &Plan, nodes: &[NodeId]) -> Vec<Pushed> {
    let mut out = Vec::new();
    for &n in nodes {
        let Op::Source(spec) = &plan.graph[n].op else {
            continue;
        };
        if spec.connector != "postgres" {
            continue;
        }
        let Ok(server) = Server::of(opt_str(&spec.options, "url").unwrap_or_default()) else {
            continue;
        };
        for first in plan.outputs(n) {
            let (candidates, mut stop) = chain(plan, first);
            let select = |k: usize| select_of(plan, &Postgres, Some(&server.key), candidates[k]);
            // A chain translates if its longer chains do: the longest one is found by bisection
            // (a chain may be up to 1,000 stages long).
            let (mut lo, mut hi) = (0, candidates.len());
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if select(mid - 1).is_ok() {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            let mut best: Option<(usize, String)> = None;
            if lo > 0
                && let Ok(sql) = select(lo - 1)
            {
                best = Some((lo, sql));
            }
            if let Some(&at) = candidates.get(lo)
                && let Err(errors) = select(lo)
            {
                stop = Some(format!(
                    "n{} {} is not translated: {}",
                    at.index(),
                    plan.graph[at].op.kind(),
                    refusal(&errors)
                ));
            }
            let pushed = best.as_ref().map_or(0, |b| b.0);
            let mut split = None;
            if let Some(&at) = candidates.get(pushed)
                && let Some((k, sql)) = fused_prefix(plan, &server, at)
            {
                split = Some((at, k));
                best = Some((pushed, sql));
            }
            if let Some((k, sql)) = best {
                out.push(Pushed {
                    source: n,
                    stages: candidates[..k].to_vec(),
                    server: server.clone(),
                    setup: super::Dialect::prelude(&Postgres),
                    sql,
                    stop,
                    split,
                });
            }
        }
    }
    out
}

/// The fused node `at` (not translated as a whole) cut to its longest translated first steps:
/// how many, and the query of their rows.
fn fused_prefix(plan: &Plan, server: &Server, at: NodeId) -> Option<(usize, String)> {
    let Op::Fused { steps } = &plan.graph[at].op else {
        return None;
    };
    let select = |k: usize| {
        let mut cut = plan.clone();
        let node = &mut cut.graph[at];
        node.row = steps[k - 1].row.clone();
        node.op = Op::Fused {
            steps: steps[..k].to_vec(),
        };
        select_of(&cut, &Postgres, Some(&server.key), at)
    };
    // The longest translated first steps, by bisection (fewer steps translate if more do).
    let (mut lo, mut hi) = (0, steps.len().saturating_sub(1));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if select(mid).is_ok() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        return None;
    }
    select(lo).ok().map(|sql| (lo, sql))
}

/// The `postgres` source that reads a pushed chain's query: rows `row`, in the place of `at`.
fn query_source(plan: &Plan, push: &Pushed, at: &Node, row: crate::types::RowType) -> Node {
    let mut options = crate::job::Options::new();
    let (name, policy) = match &plan.graph[push.source].op {
        Op::Source(orig) => {
            if let Some(url) = orig.options.get("url") {
                options.insert("url".into(), url.clone());
            }
            (orig.name.clone(), orig.policy.clone())
        }
        _ => (String::new(), Default::default()),
    };
    options.insert("query".into(), Value::Str(push.sql.clone()));
    options.insert(SETUP_OPTION.into(), Value::Str(push.setup.join(";\n")));
    Node {
        op: Op::Source(SourceSpec {
            name,
            connector: "postgres".into(),
            path: None,
            options,
            schema: row.clone(),
            columns: (0..row.len()).collect(),
            unread: Vec::new(),
            policy,
            prune: None,
        }),
        row,
        hints: Default::default(),
        used_by: at.used_by.clone(),
        labels: Vec::new(),
        span: at.span,
    }
}

/// The plan flow runs itself: the parts in flow (`None`: there are none), each pushed chain
/// replaced by a `postgres` source of its query (in the place of the chain's last node, with
/// its labels; before the rest of a split fused node).
pub fn native_plan(plan: &Plan, placement: &Placement) -> Option<Plan> {
    let mut keep = Vec::new();
    let mut covered = BTreeSet::new();
    // Each pushed chain by the node it ends in: its last stage, or the split fused node.
    let mut ends: BTreeMap<NodeId, &Pushed> = BTreeMap::new();
    for p in &placement.parts {
        let Run::Flow { pushed, .. } = &p.run else {
            continue;
        };
        keep.extend(p.nodes.iter().copied());
        for push in pushed {
            match (push.split, push.stages.split_last()) {
                (Some((at, _)), _) => {
                    covered.extend(push.stages.iter().copied());
                    ends.insert(at, push);
                }
                (None, Some((&last, init))) => {
                    covered.extend(init.iter().copied());
                    ends.insert(last, push);
                }
                (None, None) => {}
            }
        }
    }
    if keep.is_empty() {
        return None;
    }
    // A source stays when a consumer of it is not the start of a pushed chain.
    for p in ends.values() {
        let firsts: BTreeSet<NodeId> = ends
            .values()
            .filter(|q| q.source == p.source)
            .filter_map(|q| q.first())
            .collect();
        if plan.outputs(p.source).iter().all(|o| firsts.contains(o)) {
            covered.insert(p.source);
        }
    }
    keep.sort();
    keep.retain(|n| !covered.contains(n));
    let mut graph = petgraph::graph::DiGraph::new();
    let mut map = BTreeMap::new();
    // New nodes whose inputs are the query now: no edge of the plan comes into them.
    let mut cut = BTreeSet::new();
    for &old in &keep {
        let node = &plan.graph[old];
        let Some(push) = ends.get(&old) else {
            map.insert(old, graph.add_node(node.clone()));
            continue;
        };
        let at = match (push.split, &node.op) {
            (Some((_, k)), Op::Fused { steps }) => {
                let src = graph.add_node(query_source(plan, push, node, steps[k - 1].row.clone()));
                let mut rest = node.clone();
                rest.op = Op::Fused {
                    steps: steps[k..].to_vec(),
                };
                let at = graph.add_node(rest);
                graph.add_edge(src, at, 0);
                at
            }
            _ => {
                let mut q = query_source(plan, push, node, node.row.clone());
                q.labels = node.labels.clone();
                q.hints = node.hints.clone();
                graph.add_node(q)
            }
        };
        cut.insert(at);
        map.insert(old, at);
    }
    for e in plan.graph.edge_references() {
        if let (Some(&a), Some(&b)) = (map.get(&e.source()), map.get(&e.target()))
            && !cut.contains(&b)
        {
            graph.add_edge(a, b, *e.weight());
        }
    }
    Some(Plan {
        graph,
        mode: plan.mode.clone(),
        stats: plan.stats,
    })
}

fn ids(nodes: &[NodeId]) -> String {
    let v: Vec<String> = nodes.iter().map(|n| format!("n{}", n.index())).collect();
    v.join(", ")
}

/// The nodes a pushed chain covers, in words: `n1, n2` and `the first 2 steps of n3`.
pub fn covers(push: &Pushed) -> String {
    let mut v: Vec<String> = push
        .stages
        .iter()
        .map(|n| format!("n{}", n.index()))
        .collect();
    if let Some((n, k)) = push.split {
        let plural = if k == 1 { "step" } else { "steps" };
        v.push(format!("the first {k} {plural} of n{}", n.index()));
    }
    v.join(", ")
}

/// The placement as `flow explain` prints it after the plan (node names as in the plan).
pub fn text(placement: &Placement) -> String {
    let mut out = String::from("placement:\n");
    for (k, p) in placement.parts.iter().enumerate() {
        out.push_str(&format!("  part {} ({}): ", k + 1, ids(&p.nodes)));
        match &p.run {
            Run::Database { server, statements } => {
                out.push_str(&format!(
                    "runs in PostgreSQL (server {}), one transaction, no rows through flow\n",
                    server.shown
                ));
                for st in statements {
                    if let super::StatementKind::Insert { table, .. } = &st.kind {
                        out.push_str(&format!("    {table}: {}\n", st.sql));
                    }
                }
            }
            Run::Flow { note, pushed } => {
                out.push_str("runs in flow\n");
                if let Some(note) = note {
                    out.push_str(&format!("    note: not in the database: {note}\n"));
                }
                for push in pushed {
                    out.push_str(&format!(
                        "    n{} source pushed into PostgreSQL (server {}) with {}; flow reads the result of:\n      {}\n",
                        push.source.index(),
                        push.server.shown,
                        covers(push),
                        push.sql
                    ));
                    if let Some(stop) = &push.stop {
                        out.push_str(&format!("    the rest runs in flow: {stop}\n"));
                    }
                }
            }
        }
    }
    out
}

/// The placement as `flow explain --format json` adds it.
pub fn json(placement: &Placement) -> serde_json::Value {
    let nodes =
        |ns: &[NodeId]| -> Vec<String> { ns.iter().map(|n| format!("n{}", n.index())).collect() };
    let parts: Vec<serde_json::Value> = placement
        .parts
        .iter()
        .map(|p| match &p.run {
            Run::Database { server, statements } => json!({
                "nodes": nodes(&p.nodes),
                "runs_in": "postgres",
                "server": server.shown,
                "statements": statements.iter().map(|s| s.sql.clone()).collect::<Vec<_>>(),
            }),
            Run::Flow { note, pushed } => json!({
                "nodes": nodes(&p.nodes),
                "runs_in": "flow",
                "note": note,
                "pushed": pushed.iter().map(|x| json!({
                    "source": format!("n{}", x.source.index()),
                    "stages": nodes(&x.stages),
                    "split": x.split.map(|(n, k)| json!({ "node": format!("n{}", n.index()), "steps": k })),
                    "server": x.server.shown,
                    "sql": x.sql,
                    "stop": x.stop,
                })).collect::<Vec<_>>(),
            }),
        })
        .collect();
    json!({ "parts": parts })
}

#[cfg(test)]
mod tests {
    use super::Server;

    #[test]
    fn a_server_is_shown_without_user_or_password() {
        let s = Server::of("postgres://ann:s3cret@db.example:6543/shop").unwrap();
        assert_eq!(s.shown, "db.example:6543/shop");
        assert!(!format!("{s:?}").contains("s3cret"));
        let d = Server::of("postgresql://ann@localhost/shop").unwrap();
        assert_eq!(d.shown, "localhost:5432/shop");
        assert_ne!(s, d);
    }
}
