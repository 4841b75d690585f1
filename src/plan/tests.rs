//! Planner tests on hand-built HIR programs.

use super::*;
use crate::check::hir::{
    Agg, AggFunc, BinOp, Expr, ExprKind, Program, Sink, Source, Stream, StreamKind,
};
use crate::job::{ErrorPolicy, Hints, OnError, Options};
use crate::span::{FileId, Span};
use crate::stdlib::Builtin;
use crate::types::{Field, RowType, Type, Value};

// ---------- builders ----------

fn row(cols: &[(&str, Type)]) -> RowType {
    RowType::new(
        cols.iter()
            .map(|(n, t)| Field {
                name: n.to_string(),
                ty: *t,
            })
            .collect(),
    )
}

fn e(kind: ExprKind, ty: Type) -> Expr {
    Expr::new(kind, ty, Span::default())
}
fn col(i: usize, ty: Type) -> Expr {
    e(ExprKind::Field(i), ty)
}
fn int(v: i64) -> Expr {
    e(ExprKind::Lit(Value::Int(v)), Type::INT)
}
fn float(v: f64) -> Expr {
    e(ExprKind::Lit(Value::Float(v)), Type::FLOAT)
}
fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    let ty = match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => a.ty,
        _ => Type::BOOL,
    };
    e(ExprKind::Binary(op, Box::new(a), Box::new(b)), ty)
}
fn call(b: Builtin, args: Vec<Expr>, ty: Type) -> Expr {
    e(ExprKind::Call(b, args), ty)
}

/// The schema used by most tests: trips(id: int, vendor: str, distance: float, fare: float,
/// tip: float?, city: str).
fn trips_row() -> RowType {
    row(&[
        ("id", Type::INT),
        ("vendor", Type::STR),
        ("distance", Type::FLOAT),
        ("fare", Type::FLOAT),
        ("tip", Type::nullable(crate::types::Scalar::Float)),
        ("city", Type::STR),
    ])
}

fn source(name: &str, connector: &str, path: &str, schema: RowType) -> Source {
    Source {
        name: name.into(),
        connector: connector.into(),
        path: Some(path.into()),
        options: Options::new(),
        schema,
        policy: ErrorPolicy::default(),
        span: Span::default(),
    }
}

fn stream(kind: StreamKind, row: RowType) -> Stream {
    Stream {
        kind,
        row,
        hints: Hints::default(),
        label: None,
        span: Span::default(),
    }
}

fn src(p: &Program, i: usize) -> Stream {
    stream(StreamKind::Source(i), p.sources[i].schema.clone())
}
fn filter(input: Stream, pred: Expr) -> Stream {
    let row = input.row.clone();
    stream(
        StreamKind::Filter {
            input: Box::new(input),
            pred,
            policy: ErrorPolicy::default(),
        },
        row,
    )
}
fn map(input: Stream, fields: Vec<(&str, Expr)>) -> Stream {
    let row = RowType::new(
        fields
            .iter()
            .map(|(n, e)| Field {
                name: n.to_string(),
                ty: e.ty,
            })
            .collect(),
    );
    stream(
        StreamKind::Map {
            input: Box::new(input),
            fields: fields
                .into_iter()
                .map(|(n, e)| (n.to_string(), e))
                .collect(),
            policy: ErrorPolicy::default(),
        },
        row,
    )
}
fn group(input: Stream, keys: Vec<usize>, aggs: Vec<Agg>) -> Stream {
    let mut fields: Vec<Field> = keys.iter().map(|&k| input.row.fields[k].clone()).collect();
    for a in &aggs {
        fields.push(Field {
            name: a.name.clone(),
            ty: a.ty,
        });
    }
    stream(
        StreamKind::Group {
            input: Box::new(input),
            keys,
            aggs,
        },
        RowType::new(fields),
    )
}
fn agg(name: &str, func: AggFunc, arg: Option<Expr>, ty: Type) -> Agg {
    Agg {
        name: name.into(),
        func,
        arg,
        ty,
        span: Span::default(),
    }
}
fn union(inputs: Vec<Stream>) -> Stream {
    let row = inputs[0].row.clone();
    stream(StreamKind::Union { inputs }, row)
}
fn limit(input: Stream, n: u64) -> Stream {
    let row = input.row.clone();
    stream(
        StreamKind::Limit {
            input: Box::new(input),
            n,
        },
        row,
    )
}
fn labelled(mut s: Stream, label: &str) -> Stream {
    s.label = Some(label.into());
    s
}
fn sink(input: Stream, connector: &str, path: Option<&str>, origin: &str) -> Sink {
    Sink {
        connector: connector.into(),
        path: path.map(|p| p.to_string()),
        options: Options::new(),
        input,
        hints: Hints::default(),
        span: Span::default(),
        origin: origin.into(),
    }
}

/// Gives every span in `s` a distinct position in file `file`, as a second file would.
// `next` is passed on to `respan_expr` below, not called once (a false positive).
#[allow(clippy::redundant_closure_call)]
fn respan(s: &mut Stream, file: u32, counter: &mut u32) {
    let mut next = || {
        *counter += 7;
        Span::new(FileId(file), *counter as usize, *counter as usize + 3)
    };
    s.span = next();
    fn respan_expr(x: &mut Expr, next: &mut dyn FnMut() -> Span) {
        x.span = next();
        match &mut x.kind {
            ExprKind::Binary(_, a, b) | ExprKind::Coalesce(a, b) => {
                respan_expr(a, next);
                respan_expr(b, next);
            }
            ExprKind::Unary(_, a) | ExprKind::Cast(a, _) | ExprKind::IsNull(a) => {
                respan_expr(a, next)
            }
            ExprKind::Call(_, args) => args.iter_mut().for_each(|a| respan_expr(a, next)),
            _ => {}
        }
    }
    match &mut s.kind {
        StreamKind::Source(_) => {}
        StreamKind::Filter { input, pred, .. } => {
            respan_expr(pred, &mut next);
            respan(input, file, counter);
        }
        StreamKind::Map { input, fields, .. } => {
            for (_, x) in fields.iter_mut() {
                respan_expr(x, &mut next);
            }
            respan(input, file, counter);
        }
        StreamKind::Group { input, .. }
        | StreamKind::Limit { input, .. }
        | StreamKind::Sort { input, .. }
        | StreamKind::Distinct { input, .. } => respan(input, file, counter),
        StreamKind::Union { inputs } => {
            for i in inputs {
                respan(i, file, counter);
            }
        }
        StreamKind::Join { left, right, .. } => {
            respan(left, file, counter);
            respan(right, file, counter);
        }
    }
}

fn trips_program() -> Program {
    Program {
        sources: vec![source("trips", "csv", "data/trips.csv", trips_row())],
        ..Program::default()
    }
}

const RAW: PlanOptions = PlanOptions {
    dedup: true,
    fuse: false,
    pushdown: false,
};
const NOTHING: PlanOptions = PlanOptions {
    dedup: false,
    fuse: false,
    pushdown: false,
};

fn plan(p: &Program, opts: PlanOptions) -> Plan {
    match build(p, opts) {
        Ok(plan) => plan,
        Err(errs) => panic!("planning failed: {errs:?}"),
    }
}

fn count_kind(plan: &Plan, kind: &str) -> usize {
    plan.graph
        .node_weights()
        .filter(|n| n.op.kind() == kind)
        .count()
}

fn sinks(plan: &Plan) -> Vec<NodeId> {
    plan.graph
        .node_indices()
        .filter(|&n| matches!(plan.graph[n].op, Op::Sink(_)))
        .collect()
}

/// The chain of nodes above `n` following first inputs, `n` first.
fn upstream(plan: &Plan, n: NodeId) -> Vec<NodeId> {
    let mut out = vec![n];
    let mut cur = n;
    while let Some(&i) = plan.inputs(cur).first() {
        out.push(i);
        cur = i;
    }
    out
}

fn fare_gt(x: f64) -> Expr {
    bin(BinOp::Gt, col(3, Type::FLOAT), float(x))
}

// ---------- de-duplication ----------

/// Seed 001, figure 4: APP1 and APP2 both read data A and data B through a node of type M
/// (here a union) producing data C, then differ. C is computed once.
#[test]
fn seed_two_apps_share_m() {
    let mut p = Program {
        sources: vec![
            source("a", "csv", "data/a.csv", trips_row()),
            source("b", "csv", "data/b.csv", trips_row()),
        ],
        ..Program::default()
    };
    let c = || union(vec![src(&p, 0), src(&p, 1)]);
    let app1 = sink(filter(c(), fare_gt(10.0)), "csv", Some("e.csv"), "a.flow:5");
    let app2 = sink(
        map(c(), vec![("id", col(0, Type::INT))]),
        "csv",
        Some("f.csv"),
        "a.flow:6",
    );
    p.sinks = vec![app1, app2];

    let plan = plan(&p, RAW);
    assert_eq!(count_kind(&plan, "union"), 1);
    assert_eq!(count_kind(&plan, "source"), 2);
    // a, b, union, filter, map, two sinks
    assert_eq!(plan.graph.node_count(), 7);
    assert_eq!(plan.stats.nodes_before_dedup, 10);
    assert_eq!(plan.stats.nodes_after_dedup, 7);
    let u = plan
        .graph
        .node_indices()
        .find(|&n| plan.graph[n].op == Op::Union)
        .unwrap();
    assert_eq!(plan.outputs(u).len(), 2);
    assert_eq!(plan.graph[u].used_by, vec!["a.flow:5", "a.flow:6"]);

    // Without de-duplication each app has its own M; the sources are still read once.
    let plain = super::build(&p, NOTHING).unwrap();
    assert_eq!(count_kind(&plain, "union"), 2);
    assert_eq!(count_kind(&plain, "source"), 2);
    assert_eq!(plain.graph.node_count(), 8);
}

/// Seed 001, four applications: sharing at several depths.
#[test]
fn seed_four_apps() {
    let mut p = Program {
        sources: vec![
            source("a", "csv", "data/a.csv", trips_row()),
            source("b", "csv", "data/b.csv", trips_row()),
        ],
        ..Program::default()
    };
    let c = || union(vec![src(&p, 0), src(&p, 1)]);
    p.sinks = vec![
        sink(filter(c(), fare_gt(1.0)), "csv", Some("e1.csv"), "x.flow:1"),
        sink(
            map(c(), vec![("id", col(0, Type::INT))]),
            "csv",
            Some("e2.csv"),
            "x.flow:2",
        ),
        // Same filter as app 1 but on A alone: a different upstream, no merge with it.
        sink(
            filter(src(&p, 0), fare_gt(1.0)),
            "csv",
            Some("e3.csv"),
            "x.flow:3",
        ),
        // Shares C and app 1's filter.
        sink(
            limit(filter(c(), fare_gt(1.0)), 10),
            "csv",
            Some("e4.csv"),
            "x.flow:4",
        ),
    ];
    let plan = plan(&p, RAW);
    assert_eq!(plan.stats.nodes_before_dedup, 5 + 5 + 3 + 6);
    // a, b, union, filter(union), map, filter(a), limit, 4 sinks
    assert_eq!(plan.graph.node_count(), 11);
    assert_eq!(count_kind(&plan, "filter"), 2);
    assert_eq!(count_kind(&plan, "union"), 1);
    let s = sinks(&plan);
    let up1 = upstream(&plan, s[0]);
    let up4 = upstream(&plan, s[3]);
    assert_eq!(up1[1], up4[2], "app 4's limit reads app 1's filter");
    let a = up1.last().copied().unwrap();
    assert_eq!(plan.graph[a].used_by.len(), 4);
    let up3 = upstream(&plan, s[2]);
    assert_ne!(up3[1], up1[1]);
    assert_eq!(*up3.last().unwrap(), a, "app 3 reads the shared source a");
}

/// Two files: the first names the chain with `let`, the second writes it inline; spans and
/// origins differ. They merge, and both names show up.
#[test]
fn merges_across_files_let_and_inline() {
    let mut p = trips_program();
    let chain = || {
        map(
            filter(src(&p, 0), fare_gt(10.0)),
            vec![
                ("id", col(0, Type::INT)),
                (
                    "per_km",
                    bin(BinOp::Div, col(3, Type::FLOAT), col(2, Type::FLOAT)),
                ),
            ],
        )
    };
    let in_a = labelled(chain(), "long");
    let mut in_b = chain();
    let mut counter = 0;
    respan(&mut in_b, 1, &mut counter);
    let mut sink_b = sink(in_b, "jsonl", Some("out/b.jsonl"), "b.flow:3");
    sink_b.span = Span::new(FileId(1), 100, 120);
    p.sinks = vec![sink(in_a, "csv", Some("out/a.csv"), "a.flow:7"), sink_b];
    let plan = plan(&p, RAW);
    assert_eq!(plan.graph.node_count(), 5, "{}", explain::text(&plan));
    let s = sinks(&plan);
    assert_eq!(upstream(&plan, s[0])[1..], upstream(&plan, s[1])[1..]);
    let m = upstream(&plan, s[0])[1];
    assert_eq!(plan.graph[m].labels, vec!["long"]);
    assert_eq!(plan.graph[m].used_by, vec!["a.flow:7", "b.flow:3"]);
}

/// A source declared under another name in a second file (same connector, path, schema and
/// policy) is the same source; `./` in the path makes no difference.
#[test]
fn merges_sources_across_files() {
    let mut p = trips_program();
    let mut second = source("rides", "csv", "./data//trips.csv", trips_row());
    second.span = Span::new(FileId(1), 5, 50);
    p.sources.push(second);
    p.sinks = vec![
        sink(
            filter(src(&p, 0), fare_gt(1.0)),
            "csv",
            Some("x.csv"),
            "a.flow:2",
        ),
        sink(
            filter(src(&p, 1), fare_gt(1.0)),
            "csv",
            Some("y.csv"),
            "b.flow:2",
        ),
    ];
    let plan = plan(&p, RAW);
    assert_eq!(count_kind(&plan, "source"), 1);
    assert_eq!(count_kind(&plan, "filter"), 1);
    let s = upstream(&plan, sinks(&plan)[0]);
    assert_eq!(
        plan.graph[*s.last().unwrap()].labels,
        vec!["trips", "rides"]
    );
}

/// Each variation of one parameter keeps the two pipelines apart.
#[test]
fn no_merge_when_anything_differs() {
    type Variant = Box<dyn Fn(&mut Program)>;
    let base = |pred: Expr, p: &mut Program| {
        sink(filter(src(p, 0), pred), "csv", Some("x.csv"), "a.flow:1")
    };
    let variants: Vec<(&str, Variant)> = vec![
        (
            "literal",
            Box::new(move |p: &mut Program| {
                let s = sink(
                    filter(src(p, 0), fare_gt(10.5)),
                    "csv",
                    Some("y.csv"),
                    "a.flow:2",
                );
                p.sinks.push(s);
            }),
        ),
        (
            "float bits: 0.0 vs -0.0",
            Box::new(|p: &mut Program| {
                p.sinks[0] = sink(
                    filter(src(p, 0), fare_gt(0.0)),
                    "csv",
                    Some("x.csv"),
                    "a.flow:1",
                );
                let s = sink(
                    filter(src(p, 0), fare_gt(-0.0)),
                    "csv",
                    Some("y.csv"),
                    "a.flow:2",
                );
                p.sinks.push(s);
            }),
        ),
        (
            "field",
            Box::new(|p: &mut Program| {
                let pred = bin(BinOp::Gt, col(2, Type::FLOAT), float(10.0));
                let s = sink(filter(src(p, 0), pred), "csv", Some("y.csv"), "a.flow:2");
                p.sinks.push(s);
            }),
        ),
        (
            "operator",
            Box::new(|p: &mut Program| {
                let pred = bin(BinOp::Ge, col(3, Type::FLOAT), float(10.0));
                let s = sink(filter(src(p, 0), pred), "csv", Some("y.csv"), "a.flow:2");
                p.sinks.push(s);
            }),
        ),
        (
            "error policy",
            Box::new(|p: &mut Program| {
                let mut f = filter(src(p, 0), fare_gt(10.0));
                if let StreamKind::Filter { policy, .. } = &mut f.kind {
                    policy.on_error = OnError::Skip;
                }
                let s = sink(f, "csv", Some("y.csv"), "a.flow:2");
                p.sinks.push(s);
            }),
        ),
        (
            "connector option",
            Box::new(|p: &mut Program| {
                let mut other = p.sources[0].clone();
                other.options.insert("header".into(), Value::Bool(false));
                p.sources.push(other);
                let s = sink(
                    filter(src(p, 1), fare_gt(10.0)),
                    "csv",
                    Some("y.csv"),
                    "a.flow:2",
                );
                p.sinks.push(s);
            }),
        ),
        (
            "source path",
            Box::new(|p: &mut Program| {
                let mut other = p.sources[0].clone();
                other.path = Some("data/trips2.csv".into());
                p.sources.push(other);
                let s = sink(
                    filter(src(p, 1), fare_gt(10.0)),
                    "csv",
                    Some("y.csv"),
                    "a.flow:2",
                );
                p.sinks.push(s);
            }),
        ),
        (
            "source policy",
            Box::new(|p: &mut Program| {
                let mut other = p.sources[0].clone();
                other.policy.on_error = OnError::DeadLetter("bad.jsonl".into());
                p.sources.push(other);
                let s = sink(
                    filter(src(p, 1), fare_gt(10.0)),
                    "csv",
                    Some("y.csv"),
                    "a.flow:2",
                );
                p.sinks.push(s);
            }),
        ),
        (
            "upstream",
            Box::new(|p: &mut Program| {
                let up = limit(src(p, 0), 5);
                let s = sink(filter(up, fare_gt(10.0)), "csv", Some("y.csv"), "a.flow:2");
                p.sinks.push(s);
            }),
        ),
    ];
    for (what, variant) in variants {
        let mut p = trips_program();
        let first = base(fare_gt(10.0), &mut p);
        p.sinks.push(first);
        variant(&mut p);
        let plan = plan(&p, RAW);
        assert_eq!(
            count_kind(&plan, "filter"),
            2,
            "{what}: filters must stay apart"
        );
    }
    // And the control: the identical second pipeline merges.
    let mut p = trips_program();
    let a = base(fare_gt(10.0), &mut p);
    let mut b = base(fare_gt(10.0), &mut p);
    b.path = Some("y.csv".into());
    p.sinks = vec![a, b];
    assert_eq!(count_kind(&plan(&p, RAW), "filter"), 1);
}

#[test]
fn map_field_names_are_part_of_identity() {
    let mut p = trips_program();
    p.sinks = vec![
        sink(
            map(src(&p, 0), vec![("a", col(0, Type::INT))]),
            "csv",
            Some("x.csv"),
            "f:1",
        ),
        sink(
            map(src(&p, 0), vec![("b", col(0, Type::INT))]),
            "csv",
            Some("y.csv"),
            "f:2",
        ),
    ];
    assert_eq!(count_kind(&plan(&p, RAW), "map"), 2);
}

#[test]
fn group_and_aggregates_dedup() {
    let mut p = trips_program();
    let g = |p: &Program, f: AggFunc| {
        group(
            src(p, 0),
            vec![1],
            vec![agg("s", f, Some(col(3, Type::FLOAT)), Type::FLOAT)],
        )
    };
    p.sinks = vec![
        sink(g(&p, AggFunc::Sum), "csv", Some("x.csv"), "f:1"),
        sink(g(&p, AggFunc::Sum), "csv", Some("y.csv"), "f:2"),
        sink(g(&p, AggFunc::Max), "csv", Some("z.csv"), "f:3"),
    ];
    assert_eq!(count_kind(&plan(&p, RAW), "group"), 2);
}

// ---------- sink destinations ----------

#[test]
fn duplicate_sink_destination_is_an_error() {
    let mut p = trips_program();
    let mut a = sink(src(&p, 0), "csv", Some("out/x.csv"), "a.flow:1");
    a.span = Span::new(FileId(0), 10, 20);
    let mut b = sink(
        filter(src(&p, 0), fare_gt(1.0)),
        "jsonl",
        Some("./out/x.csv"),
        "b.flow:1",
    );
    b.span = Span::new(FileId(1), 30, 40);
    let mut c = sink(src(&p, 0), "csv", Some("out/y.csv"), "a.flow:2");
    c.span = Span::new(FileId(0), 50, 60);
    p.sinks = vec![a, b, c];
    let errs = build(&p, PlanOptions::default()).unwrap_err();
    assert_eq!(
        errs,
        vec![PlanError::DuplicateSink {
            path: "./out/x.csv".into(),
            first: Span::new(FileId(0), 10, 20),
            second: Span::new(FileId(1), 30, 40),
        }]
    );
}

#[test]
fn two_stdout_sinks_are_an_error_even_with_other_options() {
    let mut p = trips_program();
    let mut a = sink(src(&p, 0), "stdout", None, "a.flow:1");
    a.options.insert("format".into(), Value::Str("csv".into()));
    let b = sink(limit(src(&p, 0), 3), "stdout", None, "a.flow:2");
    p.sinks = vec![a, b];
    let errs = build(&p, PlanOptions::default()).unwrap_err();
    assert!(matches!(&errs[..], [PlanError::DuplicateSink { path, .. }] if path == "stdout"));
}

#[test]
fn bad_source_index_is_an_error_not_a_panic() {
    let mut p = trips_program();
    let s = stream(StreamKind::Source(7), trips_row());
    p.sinks = vec![sink(s, "stdout", None, "a.flow:1")];
    assert!(matches!(
        &build(&p, PlanOptions::default()).unwrap_err()[..],
        [PlanError::Internal(_)]
    ));
}

// ---------- determinism and explain ----------

fn example_program() -> Program {
    // The DESIGN.md example: `long` feeds three sinks.
    let mut p = trips_program();
    let long = || {
        let pred = bin(
            BinOp::And,
            bin(BinOp::Gt, col(2, Type::FLOAT), float(10.0)),
            bin(BinOp::Gt, col(3, Type::FLOAT), float(0.0)),
        );
        let tip_pct = bin(
            BinOp::Mul,
            bin(
                BinOp::Div,
                e(
                    ExprKind::Coalesce(
                        Box::new(col(4, Type::nullable(crate::types::Scalar::Float))),
                        Box::new(float(0.0)),
                    ),
                    Type::FLOAT,
                ),
                col(3, Type::FLOAT),
            ),
            float(100.0),
        );
        labelled(
            map(
                filter(src(&p, 0), pred),
                vec![
                    ("id", col(0, Type::INT)),
                    ("vendor", col(1, Type::STR)),
                    ("fare", col(3, Type::FLOAT)),
                    ("pct", tip_pct),
                    (
                        "city",
                        call(Builtin::Upper, vec![col(5, Type::STR)], Type::STR),
                    ),
                ],
            ),
            "long",
        )
    };
    p.sinks = vec![
        sink(long(), "csv", Some("out/long.csv"), "trips.flow:12"),
        sink(
            filter(long(), bin(BinOp::Gt, col(3, Type::FLOAT), float(20.0))),
            "jsonl",
            Some("out/generous.jsonl"),
            "trips.flow:13",
        ),
        sink(
            group(
                long(),
                vec![1],
                vec![
                    agg("trips", AggFunc::Count, None, Type::INT),
                    agg(
                        "revenue",
                        AggFunc::Sum,
                        Some(col(2, Type::FLOAT)),
                        Type::FLOAT,
                    ),
                ],
            ),
            "csv",
            Some("out/by_vendor.csv"),
            "trips.flow:14",
        ),
    ];
    p
}

#[test]
fn explain_is_deterministic() {
    let p = example_program();
    let first = explain::text(&plan(&p, PlanOptions::default()));
    for _ in 0..5 {
        assert_eq!(explain::text(&plan(&p, PlanOptions::default())), first);
    }
    let j = explain::json(&plan(&p, RAW));
    assert_eq!(j["stats"]["nodes_before_dedup"], 4 + 5 + 5);
    assert_eq!(j["stats"]["nodes_after_dedup"], 8);
    let nodes = j["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 8);
    let shared: Vec<&str> = nodes
        .iter()
        .filter(|n| n["shared"] == true)
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(shared, vec!["map"]);
}

#[test]
fn explain_text_raw_snapshot() {
    insta::assert_snapshot!(explain::text(&plan(&example_program(), RAW)));
}

#[test]
fn explain_dot_mentions_every_node_and_edge() {
    let plan = plan(&example_program(), RAW);
    let dot = explain::dot(&plan);
    assert!(dot.starts_with("digraph plan {"));
    assert_eq!(dot.matches(" -> ").count(), plan.graph.edge_count());
    for n in plan.graph.node_indices() {
        assert!(dot.contains(&format!("  n{} [label=", n.index())));
    }
}

#[test]
fn expression_printer_parenthesizes() {
    let row = trips_row();
    // (fare + 1.0) * 2.0 keeps its parentheses; fare + 1.0 * 2.0 needs none.
    let a = bin(
        BinOp::Mul,
        bin(BinOp::Add, col(3, Type::FLOAT), float(1.0)),
        float(2.0),
    );
    assert_eq!(print::expr(&a, &row), "(fare + 1.0) * 2.0");
    let b = bin(
        BinOp::Add,
        col(3, Type::FLOAT),
        bin(BinOp::Mul, float(1.0), float(2.0)),
    );
    assert_eq!(print::expr(&b, &row), "fare + 1.0 * 2.0");
    let c = bin(
        BinOp::Sub,
        col(3, Type::FLOAT),
        bin(BinOp::Sub, float(1.0), float(2.0)),
    );
    assert_eq!(print::expr(&c, &row), "fare - (1.0 - 2.0)");
    let d = bin(
        BinOp::And,
        bin(
            BinOp::Or,
            bin(BinOp::Gt, col(3, Type::FLOAT), float(1.0)),
            e(ExprKind::Lit(Value::Bool(true)), Type::BOOL),
        ),
        e(ExprKind::IsNull(Box::new(col(4, Type::FLOAT))), Type::BOOL),
    );
    assert_eq!(print::expr(&d, &row), "(fare > 1.0 || true) && tip == null");
}

// ---------- fusion ----------

fn fused_steps(plan: &Plan, n: NodeId) -> Vec<&'static str> {
    match &plan.graph[n].op {
        Op::Fused { steps } => steps
            .iter()
            .map(|s| match s.step {
                Step::Filter(_) => "filter",
                Step::Map(_) => "map",
            })
            .collect(),
        other => panic!("n{} is {}, not fused", n.index(), other.kind()),
    }
}

/// `long` (filter + map) is shared by three consumers: it is one fused node computed once, and
/// fusion stops there; the filter after it starts its own chain.
#[test]
fn fusion_stops_at_fan_out() {
    let plan = plan(&example_program(), PlanOptions::default());
    let s = sinks(&plan);
    assert_eq!(s.len(), 3);
    let long = upstream(&plan, s[0])[1];
    assert_eq!(fused_steps(&plan, long), vec!["filter", "map"]);
    assert_eq!(plan.outputs(long).len(), 3);
    assert_eq!(plan.graph[long].labels, vec!["long"]);
    let generous = upstream(&plan, s[1]);
    assert_eq!(fused_steps(&plan, generous[1]), vec!["filter"]);
    assert_eq!(generous[2], long);
    assert_eq!(upstream(&plan, s[2])[2], long);
    assert_eq!(count_kind(&plan, "fused"), 2);
    assert_eq!(count_kind(&plan, "filter") + count_kind(&plan, "map"), 0);
    // Each step keeps its row type.
    let Op::Fused { steps } = &plan.graph[long].op else {
        unreachable!()
    };
    assert_eq!(steps[0].row, trips_row());
    assert_eq!(steps[1].row.fields.len(), 5);
    insta::assert_snapshot!(explain::text(&plan));
}

#[test]
fn fusion_keeps_each_steps_policy_and_merges_long_chains() {
    let mut p = trips_program();
    let mut m = map(
        filter(src(&p, 0), fare_gt(1.0)),
        vec![("id", col(0, Type::INT)), ("fare", col(3, Type::FLOAT))],
    );
    if let StreamKind::Map { policy, .. } = &mut m.kind {
        policy.on_error = OnError::Skip;
    }
    let chain = filter(m, bin(BinOp::Gt, col(1, Type::FLOAT), float(2.0)));
    p.sinks = vec![sink(chain, "csv", Some("o.csv"), "f:1")];
    let opts = PlanOptions {
        pushdown: false,
        ..PlanOptions::default()
    };
    let plan = plan(&p, opts);
    assert_eq!(plan.graph.node_count(), 3);
    let f = upstream(&plan, sinks(&plan)[0])[1];
    assert_eq!(fused_steps(&plan, f), vec!["filter", "map", "filter"]);
    let Op::Fused { steps } = &plan.graph[f].op else {
        unreachable!()
    };
    let policies: Vec<&OnError> = steps.iter().map(|s| &s.policy.on_error).collect();
    assert_eq!(
        policies,
        vec![&OnError::Fail, &OnError::Skip, &OnError::Fail]
    );
    // --no-fuse keeps three separate nodes.
    let unfused = plan_nodes(&p, RAW);
    assert_eq!(unfused, 5);
}

fn plan_nodes(p: &Program, opts: PlanOptions) -> usize {
    plan(p, opts).graph.node_count()
}

// ---------- pushdown ----------

const PUSH: PlanOptions = PlanOptions {
    dedup: true,
    fuse: false,
    pushdown: true,
};

fn source_spec(plan: &Plan) -> &SourceSpec {
    plan.graph
        .node_weights()
        .find_map(|n| match &n.op {
            Op::Source(s) => Some(s),
            _ => None,
        })
        .expect("a source")
}

/// `map { id, fare, d: distance } | filter fare > 10.0`: the map only copies columns, so the
/// filter moves onto the source; the source reads only id, distance, fare and every expression
/// is re-indexed to the projected row.
#[test]
fn filter_moves_before_copying_map_and_columns_are_pruned() {
    let mut p = trips_program();
    let m = map(
        src(&p, 0),
        vec![
            ("id", col(0, Type::INT)),
            ("fare", col(3, Type::FLOAT)),
            ("d", col(2, Type::FLOAT)),
        ],
    );
    let f = filter(m, bin(BinOp::Gt, col(1, Type::FLOAT), float(10.0)));
    p.sinks = vec![sink(f, "csv", Some("o.csv"), "f:1")];
    let plan = plan(&p, PUSH);
    let up = upstream(&plan, sinks(&plan)[0]);
    let kinds: Vec<&str> = up.iter().map(|&n| plan.graph[n].op.kind()).collect();
    assert_eq!(kinds, vec!["sink", "map", "filter", "source"]);
    let spec = source_spec(&plan);
    assert_eq!(spec.columns, vec![0, 2, 3]);
    assert_eq!(
        plan.graph[up[3]].row,
        row(&[
            ("id", Type::INT),
            ("distance", Type::FLOAT),
            ("fare", Type::FLOAT)
        ])
    );
    let Op::Filter { pred, .. } = &plan.graph[up[2]].op else {
        unreachable!()
    };
    assert_eq!(
        pred.kind,
        bin(BinOp::Gt, col(2, Type::FLOAT), float(10.0)).kind
    );
    let Op::Map { fields, .. } = &plan.graph[up[1]].op else {
        unreachable!()
    };
    let idx: Vec<ExprKind> = fields.iter().map(|(_, e)| e.kind.clone()).collect();
    assert_eq!(
        idx,
        vec![ExprKind::Field(0), ExprKind::Field(2), ExprKind::Field(1)]
    );
    // The sink still writes what the program said.
    assert_eq!(
        plan.graph[up[0]].row,
        row(&[("id", Type::INT), ("fare", Type::FLOAT), ("d", Type::FLOAT)])
    );
    insta::assert_snapshot!(explain::text(&plan));
}

#[test]
fn filter_stays_after_a_map_that_can_fail() {
    let mut p = trips_program();
    let m = map(
        src(&p, 0),
        vec![
            ("id", col(0, Type::INT)),
            (
                "per_km",
                bin(BinOp::Div, col(3, Type::FLOAT), col(2, Type::FLOAT)),
            ),
        ],
    );
    let f = filter(m, bin(BinOp::Gt, col(0, Type::INT), int(3)));
    p.sinks = vec![sink(f, "csv", Some("o.csv"), "f:1")];
    let plan = plan(&p, PUSH);
    let kinds: Vec<&str> = upstream(&plan, sinks(&plan)[0])
        .iter()
        .map(|&n| plan.graph[n].op.kind())
        .collect();
    assert_eq!(kinds, vec!["sink", "filter", "map", "source"]);
}

#[test]
fn filter_stays_after_computed_column_and_shared_map() {
    let mut p = trips_program();
    let m = || {
        map(
            src(&p, 0),
            vec![
                ("id", col(0, Type::INT)),
                (
                    "up",
                    call(Builtin::Upper, vec![col(5, Type::STR)], Type::STR),
                ),
            ],
        )
    };
    // Reads the computed column `up`.
    let f1 = filter(
        m(),
        e(
            ExprKind::Call(
                Builtin::StartsWith,
                vec![
                    col(1, Type::STR),
                    e(ExprKind::Lit(Value::Str("O".into())), Type::STR),
                ],
            ),
            Type::BOOL,
        ),
    );
    // Reads the copied `id`, but the map is shared with the first pipeline.
    let f2 = filter(m(), bin(BinOp::Gt, col(0, Type::INT), int(3)));
    p.sinks = vec![
        sink(f1, "csv", Some("a.csv"), "f:1"),
        sink(f2, "csv", Some("b.csv"), "f:2"),
    ];
    let plan = plan(&p, PUSH);
    for s in sinks(&plan) {
        let kinds: Vec<&str> = upstream(&plan, s)
            .iter()
            .map(|&n| plan.graph[n].op.kind())
            .collect();
        assert_eq!(kinds, vec!["sink", "filter", "map", "source"]);
    }
    // Without de-duplication the second map is not shared, and its filter moves.
    let plain = plan_with(
        &p,
        PlanOptions {
            dedup: false,
            fuse: false,
            pushdown: true,
        },
    );
    let kinds: Vec<&str> = upstream(&plain, sinks(&plain)[1])
        .iter()
        .map(|&n| plain.graph[n].op.kind())
        .collect();
    assert_eq!(kinds, vec!["sink", "map", "filter", "source"]);
}

fn plan_with(p: &Program, opts: PlanOptions) -> Plan {
    plan(p, opts)
}

/// A source shared by two pipelines reads the union of the columns they need.
#[test]
fn shared_source_reads_union_of_columns() {
    let mut p = trips_program();
    p.sinks = vec![
        sink(
            map(src(&p, 0), vec![("city", col(5, Type::STR))]),
            "csv",
            Some("a.csv"),
            "f:1",
        ),
        sink(
            group(
                limit(src(&p, 0), 100),
                vec![1],
                vec![agg(
                    "m",
                    AggFunc::Max,
                    Some(col(3, Type::FLOAT)),
                    Type::FLOAT,
                )],
            ),
            "csv",
            Some("b.csv"),
            "f:2",
        ),
    ];
    let plan = plan(&p, PUSH);
    assert_eq!(count_kind(&plan, "source"), 1);
    assert_eq!(source_spec(&plan).columns, vec![1, 3, 5]);
    let s = sinks(&plan);
    let up_a = upstream(&plan, s[0]);
    let Op::Map { fields, .. } = &plan.graph[up_a[1]].op else {
        unreachable!()
    };
    assert_eq!(fields[0].1.kind, ExprKind::Field(2));
    let up_b = upstream(&plan, s[1]);
    let Op::Group { keys, aggs } = &plan.graph[up_b[1]].op else {
        unreachable!()
    };
    assert_eq!(keys, &vec![0]);
    assert_eq!(
        aggs[0].arg.as_ref().map(|e| e.kind.clone()),
        Some(ExprKind::Field(1))
    );
    // The limit passes the projected row on.
    assert_eq!(plan.graph[up_b[2]].row.fields.len(), 3);
    assert_eq!(
        plan.graph[up_b[1]].row,
        row(&[("vendor", Type::STR), ("m", Type::FLOAT)])
    );
}

#[test]
fn sinks_and_unions_read_every_column() {
    let mut p = trips_program();
    p.sources
        .push(source("b", "csv", "data/b.csv", trips_row()));
    p.sinks = vec![
        sink(
            filter(src(&p, 0), fare_gt(1.0)),
            "csv",
            Some("a.csv"),
            "f:1",
        ),
        sink(
            map(
                union(vec![src(&p, 1), limit(src(&p, 1), 3)]),
                vec![("id", col(0, Type::INT))],
            ),
            "csv",
            Some("b.csv"),
            "f:2",
        ),
    ];
    let plan = plan(&p, PlanOptions::default());
    for n in plan.graph.node_weights() {
        if let Op::Source(s) = &n.op {
            assert_eq!(s.columns, (0..6).collect::<Vec<_>>(), "{}", s.name);
        }
    }
}

/// `filter tip != null` after a map copying `tip` moves onto the source, and the non-null type
/// it proves comes along.
#[test]
fn moved_filter_keeps_narrowed_types() {
    let mut p = trips_program();
    let ftip = Type::nullable(crate::types::Scalar::Float);
    let m = map(
        src(&p, 0),
        vec![("id", col(0, Type::INT)), ("tip", col(4, ftip))],
    );
    let not_null = e(
        ExprKind::Unary(
            crate::check::hir::UnOp::Not,
            Box::new(e(ExprKind::IsNull(Box::new(col(1, ftip))), Type::BOOL)),
        ),
        Type::BOOL,
    );
    let mut f = filter(m, not_null);
    f.row.fields[1].ty = Type::FLOAT;
    p.sinks = vec![sink(f, "csv", Some("o.csv"), "f:1")];
    let plan = plan(&p, PUSH);
    let up = upstream(&plan, sinks(&plan)[0]);
    assert_eq!(plan.graph[up[2]].op.kind(), "filter");
    assert_eq!(
        plan.graph[up[2]].row,
        row(&[("id", Type::INT), ("tip", Type::FLOAT)])
    );
    assert_eq!(
        plan.graph[up[3]].row,
        row(&[("id", Type::INT), ("tip", ftip)])
    );
    assert_eq!(
        plan.graph[up[1]].row,
        row(&[("id", Type::INT), ("tip", Type::FLOAT)])
    );
    let Op::Map { fields, .. } = &plan.graph[up[1]].op else {
        unreachable!()
    };
    assert_eq!(fields[1].1.ty, Type::FLOAT);
}

/// After pushdown, a filter written after a copying map and the same filter written before it
/// are the same pipeline: they merge.
#[test]
fn pushdown_exposes_more_sharing() {
    let mut p = trips_program();
    let cols = || vec![("id", col(0, Type::INT)), ("fare", col(3, Type::FLOAT))];
    let a = filter(
        map(src(&p, 0), cols()),
        bin(BinOp::Gt, col(1, Type::FLOAT), float(5.0)),
    );
    let b = map(filter(src(&p, 0), fare_gt(5.0)), cols());
    p.sinks = vec![
        sink(a, "csv", Some("a.csv"), "f:1"),
        sink(b, "csv", Some("b.csv"), "f:2"),
    ];
    // source, filter, map, two sinks
    assert_eq!(plan_nodes(&p, PUSH), 5);
    assert_eq!(plan_nodes(&p, RAW), 7);
}
