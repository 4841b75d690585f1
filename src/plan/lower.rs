//! HIR → `Dag`: every sink's stream tree is lowered bottom-up through the `Interner`, so equal
//! subtrees (a `let` used by several pipelines, the same chain written in several files) become
//! one node. Also checks that no two sinks write the same destination.

use super::canon::normalize_path;
use super::dag::{DNode, Dag, Interner};
use super::error::PlanError;
use super::ir::{Op, SinkSpec, SourceSpec};
use crate::check::hir::{Program, Sink, Stream, StreamKind};
use crate::span::Span;
use std::collections::BTreeMap;

pub struct Lowered {
    pub dag: Dag,
    /// The number of nodes if every sink's tree were planned on its own.
    pub nodes_before_dedup: usize,
}

pub fn lower(program: &Program, dedup: bool) -> Result<Lowered, Vec<PlanError>> {
    let mut errors = Vec::new();
    check_destinations(&program.sinks, &mut errors);
    let mut lowerer = Lowerer {
        program,
        interner: Interner::new(dedup),
    };
    let mut nodes_before_dedup = 0;
    for sink in &program.sinks {
        nodes_before_dedup += tree_size(&sink.input) + 1;
        if let Err(e) = lowerer.sink(sink) {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Lowered {
        dag: lowerer.interner.dag,
        nodes_before_dedup,
    })
}

/// Where a sink writes: a file path (normalized), or a stream such as stdout (one destination
/// per connector, whatever the options).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Destination {
    File(String),
    Stream(String),
}

/// Two sinks writing the same destination are an error. Files are compared by normalized path
/// regardless of the connector: a `csv` and a `jsonl` sink on one path would clobber each other.
fn check_destinations(sinks: &[Sink], errors: &mut Vec<PlanError>) {
    let mut first: BTreeMap<Destination, Span> = BTreeMap::new();
    for sink in sinks {
        let (dest, shown) = match &sink.path {
            Some(p) => (Destination::File(normalize_path(p)), p.clone()),
            // A database table (`postgres(url, table: …)`): the connector, server and table.
            None => match (sink.options.get("url"), sink.options.get("table")) {
                (Some(crate::types::Value::Str(url)), Some(crate::types::Value::Str(t))) => (
                    Destination::Stream(format!("{} {url} {t}", sink.connector)),
                    format!("table {t}"),
                ),
                _ => (
                    Destination::Stream(sink.connector.clone()),
                    sink.connector.clone(),
                ),
            },
        };
        match first.get(&dest) {
            Some(&span) => errors.push(PlanError::DuplicateSink {
                path: shown,
                first: span,
                second: sink.span,
            }),
            None => {
                first.insert(dest, sink.span);
            }
        }
    }
}

fn tree_size(s: &Stream) -> usize {
    1 + match &s.kind {
        StreamKind::Source(_) => 0,
        StreamKind::Filter { input, .. }
        | StreamKind::Map { input, .. }
        | StreamKind::Group { input, .. }
        | StreamKind::Limit { input, .. }
        | StreamKind::Sort { input, .. }
        | StreamKind::Distinct { input, .. } => tree_size(input),
        StreamKind::Union { inputs } => inputs.iter().map(tree_size).sum(),
        StreamKind::Join { left, right, .. } => tree_size(left) + tree_size(right),
    }
}

struct Lowerer<'a> {
    program: &'a Program,
    interner: Interner,
}

impl Lowerer<'_> {
    fn sink(&mut self, sink: &Sink) -> Result<usize, PlanError> {
        let input = self.stream(&sink.input)?;
        Ok(self.interner.add(DNode {
            op: Op::Sink(SinkSpec {
                connector: sink.connector.clone(),
                path: sink.path.clone(),
                options: sink.options.clone(),
                origin: sink.origin.clone(),
            }),
            row: sink.input.row.clone(),
            hints: sink.hints.clone(),
            labels: Vec::new(),
            span: sink.span,
            inputs: vec![input],
        }))
    }

    fn stream(&mut self, s: &Stream) -> Result<usize, PlanError> {
        let mut labels: Vec<String> = s.label.iter().cloned().collect();
        let (op, inputs) = match &s.kind {
            StreamKind::Source(i) => {
                let src = self.program.sources.get(*i).ok_or_else(|| {
                    PlanError::Internal(format!("stream refers to missing source #{i}"))
                })?;
                let columns = (0..src.schema.len()).collect();
                // The source's own name is shown with its parameters; once merged, the names
                // other files gave the same source become labels.
                labels.insert(0, src.name.clone());
                (
                    Op::Source(SourceSpec {
                        name: src.name.clone(),
                        connector: src.connector.clone(),
                        path: src.path.clone(),
                        options: src.options.clone(),
                        schema: src.schema.clone(),
                        columns,
                        unread: Vec::new(),
                        policy: src.policy.clone(),
                        prune: None,
                    }),
                    Vec::new(),
                )
            }
            StreamKind::Filter {
                input,
                pred,
                policy,
            } => (
                Op::Filter {
                    pred: pred.clone(),
                    policy: policy.clone(),
                },
                vec![self.stream(input)?],
            ),
            StreamKind::Map {
                input,
                fields,
                policy,
            } => (
                Op::Map {
                    fields: fields.clone(),
                    policy: policy.clone(),
                },
                vec![self.stream(input)?],
            ),
            StreamKind::Group { input, keys, aggs } => (
                Op::Group {
                    keys: keys.clone(),
                    aggs: aggs.clone(),
                },
                vec![self.stream(input)?],
            ),
            StreamKind::Union { inputs } => {
                let mut ids = Vec::with_capacity(inputs.len());
                for i in inputs {
                    ids.push(self.stream(i)?);
                }
                (Op::Union, ids)
            }
            StreamKind::Limit { input, n } => (Op::Limit(*n), vec![self.stream(input)?]),
            StreamKind::Sort { input, keys } => {
                (Op::Sort { keys: keys.clone() }, vec![self.stream(input)?])
            }
            StreamKind::Distinct { input, keys } => (
                Op::Distinct { keys: keys.clone() },
                vec![self.stream(input)?],
            ),
            StreamKind::Join {
                left,
                right,
                keys,
                fields,
                outer,
            } => (
                Op::Join {
                    keys: keys.clone(),
                    fields: fields.clone(),
                    outer: *outer,
                    strategy: Default::default(),
                },
                vec![self.stream(left)?, self.stream(right)?],
            ),
        };
        Ok(self.interner.add(DNode {
            op,
            row: s.row.clone(),
            hints: s.hints.clone(),
            labels,
            span: s.span,
            inputs,
        }))
    }
}
