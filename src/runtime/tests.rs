//! Runtime tests on hand-built plans (no stdin), with the test kernel.

use super::test_kernel::factory;
use super::{RunError, RunOptions, RunSummary, run};
use crate::check::hir::{Agg, AggFunc, BinOp, Expr, ExprKind};
use crate::job::{ErrorPolicy, Hints, MaxErrors, Mode, OnError, Options};
use crate::plan::ir::{FusedStep, Node, NodeId, Op, Plan, PlanStats, SinkSpec, SourceSpec, Step};
use crate::span::Span;
use crate::types::{Field, RowType, Scalar, Type, Value};
use petgraph::graph::DiGraph;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn f(name: &str, ty: Type) -> Field {
    Field {
        name: name.into(),
        ty,
    }
}

/// `id: int, name: str, price: float, qty: int?`
fn schema() -> RowType {
    RowType::new(vec![
        f("id", Type::INT),
        f("name", Type::STR),
        f("price", Type::FLOAT),
        f("qty", Type::nullable(Scalar::Int)),
    ])
}

fn e(kind: ExprKind, ty: Type) -> Expr {
    Expr::new(kind, ty, Span::default())
}
fn field(i: usize, ty: Type) -> Expr {
    e(ExprKind::Field(i), ty)
}
fn lit(v: Value) -> Expr {
    let ty = Type::new(v.scalar());
    e(ExprKind::Lit(v), ty)
}
fn bin(op: BinOp, a: Expr, b: Expr, ty: Type) -> Expr {
    e(ExprKind::Binary(op, Box::new(a), Box::new(b)), ty)
}

struct Builder {
    g: DiGraph<Node, usize, u32>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            g: DiGraph::default(),
        }
    }
    fn add(&mut self, op: Op, row: RowType, inputs: &[NodeId]) -> NodeId {
        let id = self.g.add_node(Node {
            op,
            row,
            hints: Hints::default(),
            used_by: vec![],
            labels: vec![],
            span: Span::default(),
        });
        for (port, &i) in inputs.iter().enumerate() {
            self.g.add_edge(i, id, port);
        }
        id
    }
    fn source(
        &mut self,
        connector: &str,
        path: &Path,
        columns: Vec<usize>,
        policy: ErrorPolicy,
    ) -> NodeId {
        let s = schema();
        let row = RowType::new(columns.iter().map(|&c| s.fields[c].clone()).collect());
        self.add(
            Op::Source(SourceSpec {
                name: "items".into(),
                connector: connector.into(),
                path: Some(path.display().to_string()),
                options: Options::new(),
                schema: s,
                columns,
                unread: Vec::new(),
                policy,
                prune: None,
            }),
            row,
            &[],
        )
    }
    fn sink(&mut self, connector: &str, path: &Path, input: NodeId) -> NodeId {
        let row = self.g[input].row.clone();
        self.add(
            Op::Sink(SinkSpec {
                connector: connector.into(),
                path: Some(path.display().to_string()),
                options: BTreeMap::new(),
                origin: format!("test.flow:{}", self.g.node_count()),
            }),
            row,
            &[input],
        )
    }
    fn plan(self) -> Plan {
        Plan {
            graph: self.g,
            mode: Mode::Single {
                readers: 1,
                processors: 0,
                batch: 7,
            },
            stats: PlanStats::default(),
        }
    }
}

fn opts(threads: usize) -> RunOptions {
    let mut o = RunOptions::new(factory());
    o.threads = Some(threads);
    o
}

fn skip() -> ErrorPolicy {
    ErrorPolicy {
        on_error: OnError::Skip,
        max_errors: None,
    }
}

/// Rows of the generated input: (id, name, price, qty).
fn gen_rows(n: usize) -> Vec<(i64, String, f64, Option<i64>)> {
    (0..n)
        .map(|i| {
            let name = match i % 5 {
                0 => "plain".to_string(),
                1 => "with, comma".to_string(),
                2 => "with \"quotes\"".to_string(),
                3 => "multi\nline".to_string(),
                _ => format!("n{}", i % 7),
            };
            let qty = if i % 4 == 0 {
                None
            } else {
                Some((i % 13) as i64)
            };
            (i as i64, name, (i % 10) as f64 * 0.5, qty)
        })
        .collect()
}

fn write_csv(path: &Path, rows: &[(i64, String, f64, Option<i64>)]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(["id", "name", "price", "qty"]).unwrap();
    for (id, name, price, qty) in rows {
        w.write_record([
            id.to_string(),
            name.clone(),
            price.to_string(),
            qty.map(|q| q.to_string()).unwrap_or_default(),
        ])
        .unwrap();
    }
    w.flush().unwrap();
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap();
    r.records()
        .map(|x| x.unwrap().iter().map(|s| s.to_string()).collect())
        .collect()
}

fn fmt_f(x: f64) -> String {
    crate::stdlib::ops::float_to_str(x)
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("flow-tmp"))
        .collect()
}

/// source → filter price > 2.0 → map { id, name, total: price * 2.0 } → csv sink.
fn filter_map_plan(input: &Path, out: &Path) -> Plan {
    let mut b = Builder::new();
    let src = b.source("csv", input, vec![0, 1, 2], ErrorPolicy::default());
    let row = b.g[src].row.clone();
    let pred = bin(
        BinOp::Gt,
        field(2, Type::FLOAT),
        lit(Value::Float(2.0)),
        Type::BOOL,
    );
    let out_row = RowType::new(vec![
        f("id", Type::INT),
        f("name", Type::STR),
        f("total", Type::FLOAT),
    ]);
    let k = b.add(
        Op::Fused {
            steps: vec![
                FusedStep {
                    step: Step::Filter(pred),
                    policy: ErrorPolicy::default(),
                    row: row.clone(),
                },
                FusedStep {
                    step: Step::Map(vec![
                        field(0, Type::INT),
                        field(1, Type::STR),
                        bin(
                            BinOp::Mul,
                            field(2, Type::FLOAT),
                            lit(Value::Float(2.0)),
                            Type::FLOAT,
                        ),
                    ]),
                    policy: ErrorPolicy::default(),
                    row: out_row.clone(),
                },
            ],
        },
        out_row,
        &[src],
    );
    b.sink("csv", out, k);
    b.plan()
}

fn expected_filter_map(rows: &[(i64, String, f64, Option<i64>)]) -> Vec<Vec<String>> {
    rows.iter()
        .filter(|r| r.2 > 2.0)
        .map(|r| vec![r.0.to_string(), r.1.clone(), fmt_f(r.2 * 2.0)])
        .collect()
}

#[test]
fn csv_filter_map_csv_keeps_input_order_with_one_worker() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let rows = gen_rows(100);
    write_csv(&input, &rows);
    let out = dir.path().join("sub/dir/out.csv");
    let s = run(&filter_map_plan(&input, &out), &opts(1)).unwrap();
    let got = read_csv(&out);
    assert_eq!(got[0], vec!["id", "name", "total"]);
    assert_eq!(got[1..].to_vec(), expected_filter_map(&rows));
    assert_eq!(s.sinks[0].rows_written as usize, got.len() - 1);
    assert_eq!(s.stages[0].rows_in, 100);
    assert!(leftovers(out.parent().unwrap()).is_empty());
}

fn sorted(mut v: Vec<Vec<String>>) -> Vec<Vec<String>> {
    v.sort();
    v
}

#[test]
fn one_two_and_four_workers_give_the_same_multiset_on_a_split_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.csv");
    // Large enough to be split in 4 (quoted newlines and commas included).
    let rows = gen_rows(30_000);
    write_csv(&input, &rows);
    assert!(
        std::fs::metadata(&input).unwrap().len()
            > 4 * super::super::connectors::split::MIN_SPLIT_BYTES
    );
    let expected = sorted(expected_filter_map(&rows));
    for threads in [1, 2, 4] {
        let out = dir.path().join(format!("out{threads}.csv"));
        let mut o = opts(threads);
        o.batch = Some(500);
        let s = run(&filter_map_plan(&input, &out), &o).unwrap();
        let got = read_csv(&out);
        assert_eq!(got[0], vec!["id", "name", "total"], "{threads} workers");
        assert_eq!(sorted(got[1..].to_vec()), expected, "{threads} workers");
        assert_eq!(s.stages[0].rows_in, rows.len() as u64);
        assert_eq!(s.total_errored(), 0);
    }
}

fn group_plan(input: &Path, out: &Path) -> Plan {
    let mut b = Builder::new();
    let src = b.source("csv", input, vec![1, 2, 3], ErrorPolicy::default());
    let aggs = vec![
        Agg {
            name: "n".into(),
            func: AggFunc::Count,
            arg: None,
            ty: Type::INT,
            span: Span::default(),
        },
        Agg {
            name: "q".into(),
            func: AggFunc::Sum,
            arg: Some(field(2, Type::nullable(Scalar::Int))),
            ty: Type::INT,
            span: Span::default(),
        },
        Agg {
            name: "hi".into(),
            func: AggFunc::Max,
            arg: Some(field(1, Type::FLOAT)),
            ty: Type::FLOAT,
            span: Span::default(),
        },
        Agg {
            name: "avg2".into(),
            func: AggFunc::Avg,
            arg: Some(bin(
                BinOp::Mul,
                field(1, Type::FLOAT),
                lit(Value::Float(2.0)),
                Type::FLOAT,
            )),
            ty: Type::FLOAT,
            span: Span::default(),
        },
    ];
    let row = RowType::new(vec![
        f("name", Type::STR),
        f("n", Type::INT),
        f("q", Type::INT),
        f("hi", Type::FLOAT),
        f("avg2", Type::FLOAT),
    ]);
    let g = b.add(
        Op::Group {
            keys: vec![0],
            aggs,
        },
        row,
        &[src],
    );
    b.sink("csv", out, g);
    b.plan()
}

/// The rows `group_plan` gives for `rows`, sorted: per name, count, sum of qty, max price,
/// mean of 2 × price.
fn expected_groups(rows: &[(i64, String, f64, Option<i64>)]) -> Vec<Vec<String>> {
    let mut exp: BTreeMap<&str, (i64, i64, f64, f64)> = BTreeMap::new();
    for r in rows {
        let x = exp.entry(&r.1).or_insert((0, 0, f64::MIN, 0.0));
        x.0 += 1;
        x.1 += r.3.unwrap_or(0);
        x.2 = x.2.max(r.2);
        x.3 += r.2 * 2.0;
    }
    sorted(
        exp.iter()
            .map(|(k, v)| {
                vec![
                    k.to_string(),
                    v.0.to_string(),
                    v.1.to_string(),
                    fmt_f(v.2),
                    fmt_f(v.3 / v.0 as f64),
                ]
            })
            .collect(),
    )
}

#[test]
fn group_gives_the_same_groups_with_1_2_4_workers() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("g.csv");
    let rows = gen_rows(2000);
    write_csv(&input, &rows);
    let expected = expected_groups(&rows);
    let mut first_seen: Vec<String> = Vec::new();
    for r in &rows {
        if !first_seen.contains(&r.1) {
            first_seen.push(r.1.clone());
        }
    }
    for threads in [1, 2, 4] {
        let out = dir.path().join(format!("g{threads}.csv"));
        let s = run(&group_plan(&input, &out), &opts(threads)).unwrap();
        let got = read_csv(&out);
        assert_eq!(got[0], vec!["name", "n", "q", "hi", "avg2"]);
        assert_eq!(sorted(got[1..].to_vec()), expected, "{threads} workers");
        if threads == 1 {
            let order: Vec<String> = got[1..].iter().map(|r| r[0].clone()).collect();
            assert_eq!(order, first_seen);
        }
        assert_eq!(s.stages[1].rows_in, rows.len() as u64);
        assert_eq!(s.stages[1].rows_out, expected.len() as u64);
    }
}

/// A group whose input turns, block by block, from new keys on every row to keys that repeat
/// (and back): at 2 workers each pre-aggregation table fills, finds its rows do not reduce,
/// passes rows through, is tried again on a small table (which does not reduce in a block of
/// new keys, and does in a block of repeated ones, then grows on): the groups are those of the
/// plain fold whichever way each row went.
#[test]
fn group_is_right_when_pre_aggregation_turns_off_and_on_again() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("turns.csv");
    let mut rows = Vec::new();
    for block in 0..4i64 {
        for i in 0..300_000i64 {
            let name = if block % 2 == 0 {
                format!("u{block}-{i}")
            } else {
                // 60k keys, each 4 times in a row: a small table reduces 4 to 1.
                format!("r{}", (i / 4) % 60_000)
            };
            let qty = (i % 7 != 0).then_some(i % 13);
            rows.push((block * 300_000 + i, name, (i % 10) as f64 * 0.5, qty));
        }
    }
    write_csv(&input, &rows);
    let out = dir.path().join("out.csv");
    let mut o = opts(2);
    o.batch = Some(1000);
    let s = run(&group_plan(&input, &out), &o).unwrap();
    let got = read_csv(&out);
    let expected = expected_groups(&rows);
    assert_eq!(got.len() - 1, expected.len());
    assert!(
        sorted(got[1..].to_vec()) == expected,
        "groups differ from the fold"
    );
    assert_eq!(s.stages[1].rows_in, rows.len() as u64);
}

#[test]
fn int_sum_overflow_is_a_job_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("o.csv");
    let rows = vec![
        (1, "a".to_string(), 1.0, Some(i64::MAX)),
        (2, "a".to_string(), 1.0, Some(1)),
    ];
    write_csv(&input, &rows);
    let out = dir.path().join("o_out.csv");
    let err = run(&group_plan(&input, &out), &opts(1)).unwrap_err();
    assert!(matches!(err, RunError::Stage { .. }), "{err}");
    assert!(err.to_string().contains("overflow"), "{err}");
    assert!(!out.exists());
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn union_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    let c = dir.path().join("c.csv");
    let ra = gen_rows(30);
    let rc: Vec<_> = gen_rows(45).into_iter().skip(30).collect();
    write_csv(&a, &ra);
    write_csv(&c, &rc);
    for threads in [1, 2, 4] {
        let mut b = Builder::new();
        let s1 = b.source("csv", &a, vec![0, 1], ErrorPolicy::default());
        let s2 = b.source("csv", &c, vec![0, 1], ErrorPolicy::default());
        let row = b.g[s1].row.clone();
        let u = b.add(Op::Union, row.clone(), &[s1, s2]);
        let l = b.add(Op::Limit(20), row.clone(), &[s1]);
        let out_u = dir.path().join(format!("u{threads}.csv"));
        let out_l = dir.path().join(format!("l{threads}.jsonl"));
        b.sink("csv", &out_u, u);
        b.sink("jsonl", &out_l, l);
        let s = run(&b.plan(), &opts(threads)).unwrap();
        let got = read_csv(&out_u);
        let all: Vec<Vec<String>> = ra
            .iter()
            .chain(rc.iter())
            .map(|r| vec![r.0.to_string(), r.1.clone()])
            .collect();
        assert_eq!(sorted(got[1..].to_vec()), sorted(all.clone()));
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out_l)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 20, "{threads} workers");
        for l in &lines {
            let id = l["id"].as_i64().unwrap();
            assert_eq!(l["name"].as_str().unwrap(), ra[id as usize].1);
        }
        if threads == 1 {
            let ids: Vec<i64> = lines.iter().map(|l| l["id"].as_i64().unwrap()).collect();
            assert_eq!(ids, (0..20).collect::<Vec<_>>());
        }
        assert_eq!(s.sinks.iter().map(|s| s.rows_written).sum::<u64>(), 20 + 45);
    }
}

#[test]
fn fan_out_feeds_two_sinks_without_recomputation() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let rows = gen_rows(60);
    write_csv(&input, &rows);
    let mut b = Builder::new();
    let src = b.source("csv", &input, vec![0, 1, 2], ErrorPolicy::default());
    let row = b.g[src].row.clone();
    let pred = bin(
        BinOp::Ge,
        field(2, Type::FLOAT),
        lit(Value::Float(3.0)),
        Type::BOOL,
    );
    let flt = b.add(
        Op::Filter {
            pred,
            policy: ErrorPolicy::default(),
        },
        row,
        &[src],
    );
    let o1 = dir.path().join("o1.csv");
    let o2 = dir.path().join("o2.jsonl");
    b.sink("csv", &o1, flt);
    b.sink("jsonl", &o2, flt);
    let s = run(&b.plan(), &opts(2)).unwrap();
    let expected: Vec<&(i64, String, f64, Option<i64>)> =
        rows.iter().filter(|r| r.2 >= 3.0).collect();
    let filter = &s.stages[1];
    assert_eq!(filter.kind, "filter");
    assert_eq!(
        filter.rows_in, 60,
        "the shared filter ran once over the input"
    );
    assert_eq!(filter.rows_out, expected.len() as u64);
    let c = read_csv(&o1);
    assert_eq!(c.len() - 1, expected.len());
    let j = std::fs::read_to_string(&o2).unwrap();
    assert_eq!(j.lines().count(), expected.len());
    let mut ids_c: Vec<String> = c[1..].iter().map(|r| r[0].clone()).collect();
    let mut ids_j: Vec<String> = j
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    ids_c.sort();
    ids_j.sort();
    assert_eq!(ids_c, ids_j);
}

#[test]
fn jsonl_in_and_out() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let rows = gen_rows(6000);
    let mut text = String::new();
    for r in &rows {
        let v =
            serde_json::json!({"id": r.0, "name": r.1, "price": r.2, "qty": r.3, "extra": [1, 2]});
        text.push_str(&v.to_string());
        text.push('\n');
    }
    std::fs::write(&input, text).unwrap();
    assert!(
        std::fs::metadata(&input).unwrap().len() > 3 * crate::connectors::split::MIN_SPLIT_BYTES
    );
    for threads in [1, 3] {
        let out = dir.path().join(format!("out{threads}.jsonl"));
        let mut b = Builder::new();
        let src = b.source("jsonl", &input, vec![0, 1, 2, 3], ErrorPolicy::default());
        b.sink("jsonl", &out, src);
        let mut o = opts(threads);
        o.batch = Some(256);
        run(&b.plan(), &o).unwrap();
        let mut got: Vec<serde_json::Value> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got.len(), rows.len());
        got.sort_by_key(|g| g["id"].as_i64());
        for (g, r) in got.iter().zip(&rows) {
            assert_eq!(g["id"].as_i64(), Some(r.0));
            assert_eq!(g["name"].as_str(), Some(r.1.as_str()));
            assert_eq!(g["price"].as_f64(), Some(r.2));
            assert_eq!(g["qty"].as_i64(), r.3);
            assert!(g.get("extra").is_none());
        }
    }
}

// ---- bad input --------------------------------------------------------------------------------

/// A CSV file with 4 good rows and one of each kind of bad row; returns (path, bad line numbers).
fn bad_csv(dir: &Path) -> PathBuf {
    let p = dir.join("bad.csv");
    let mut b: Vec<u8> = Vec::new();
    b.extend_from_slice(b"id,name,price,qty\n"); // line 1
    b.extend_from_slice(b"1,ok,1.5,2\n"); // 2
    b.extend_from_slice(b"2,short,1.5\n"); // 3: wrong field count
    b.extend_from_slice(b"3,x,abc,1\n"); // 4: unparsable float
    b.extend_from_slice(b"4,\"multi\nline\",2.5,\n"); // 5-6: good, quoted newline
    b.extend_from_slice(b"5,bad\"quote,1.0,1\n"); // 7: bad quoting
    b.extend_from_slice(b"6,\xff\xfe,1.0,1\n"); // 8: invalid UTF-8
    b.extend_from_slice(b"7,ok,,1\n"); // 9: missing non-nullable float
    b.extend_from_slice(b"8,fine,3.5,4\n"); // 10
    b.extend_from_slice(b"9,\"a,b\",4.5,5\n"); // 11
    std::fs::write(&p, b).unwrap();
    p
}

const BAD_LINES: [u64; 5] = [3, 4, 7, 8, 9];

fn copy_plan(input: &Path, out: &Path, policy: ErrorPolicy) -> Plan {
    let mut b = Builder::new();
    let src = b.source("csv", input, vec![0, 1, 2, 3], policy);
    b.sink("csv", out, src);
    b.plan()
}

#[test]
fn malformed_rows_under_fail_stop_the_job_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let input = bad_csv(dir.path());
    let out = dir.path().join("out.csv");
    let err = run(&copy_plan(&input, &out, ErrorPolicy::default()), &opts(1)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("{}:3", input.display())), "{msg}");
    assert!(msg.contains("expected 4 fields, found 3"), "{msg}");
    assert!(!out.exists());
    assert!(leftovers(dir.path()).is_empty());
    // The float error names line and column.
    let p2 = dir.path().join("b2.csv");
    std::fs::write(&p2, "id,name,price,qty\n1,a,1.0,1\n2,b,zz,1\n").unwrap();
    let err = run(&copy_plan(&p2, &out, ErrorPolicy::default()), &opts(1)).unwrap_err();
    assert_eq!(
        err,
        RunError::Input {
            file: p2.display().to_string(),
            line: Some(3),
            column: Some((3, "price".into())),
            reason: "cannot parse \"zz\" as float".into()
        }
    );
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3:3: column `price`", p2.display()))
    );
}

#[test]
fn malformed_rows_under_skip_are_counted_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let input = bad_csv(dir.path());
    let out = dir.path().join("out.csv");
    let s = run(&copy_plan(&input, &out, skip()), &opts(1)).unwrap();
    assert_eq!(s.stages[0].errored, 5);
    assert_eq!(s.stages[0].rows_in, 9);
    assert_eq!(s.stages[0].rows_out, 4);
    let got = read_csv(&out);
    let ids: Vec<&str> = got[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids, vec!["1", "4", "8", "9"]);
    assert_eq!(got[2][1], "multi\nline");
    assert_eq!(got[2][3], "");
}

#[test]
fn malformed_rows_under_dead_letter_are_written_with_place_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let input = bad_csv(dir.path());
    let out = dir.path().join("out.csv");
    let dl = dir.path().join("dead/bad.jsonl");
    let policy = ErrorPolicy {
        on_error: OnError::DeadLetter(dl.display().to_string()),
        max_errors: None,
    };
    let s = run(&copy_plan(&input, &out, policy), &opts(1)).unwrap();
    assert_eq!(s.dead_letters[0].rows, 5);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&dl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    let got_lines: Vec<u64> = lines.iter().map(|l| l["line"].as_u64().unwrap()).collect();
    assert_eq!(got_lines, BAD_LINES.to_vec());
    assert_eq!(lines[0]["record"], "2,short,1.5");
    assert_eq!(lines[1]["column"], "price");
    assert!(lines[2]["reason"].as_str().unwrap().contains("quoting"));
    assert!(lines[3]["reason"].as_str().unwrap().contains("UTF-8"));
    assert!(
        lines[4]["reason"]
            .as_str()
            .unwrap()
            .contains("missing value")
    );
    for l in &lines {
        assert_eq!(l["file"], input.display().to_string());
        assert_eq!(l["source"], "items");
    }
    assert_eq!(read_csv(&out).len(), 5);
}

#[test]
fn max_errors_count_and_ratio_fail_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let input = bad_csv(dir.path());
    let out = dir.path().join("out.csv");
    let dl = dir.path().join("dl.jsonl");
    for (policy, ok) in [
        (
            ErrorPolicy {
                on_error: OnError::Skip,
                max_errors: Some(MaxErrors::Count(4)),
            },
            false,
        ),
        (
            ErrorPolicy {
                on_error: OnError::Skip,
                max_errors: Some(MaxErrors::Count(5)),
            },
            true,
        ),
        (
            ErrorPolicy {
                on_error: OnError::DeadLetter(dl.display().to_string()),
                max_errors: Some(MaxErrors::Count(2)),
            },
            false,
        ),
        (
            ErrorPolicy {
                on_error: OnError::Skip,
                max_errors: Some(MaxErrors::Ratio(0.5)),
            },
            false,
        ),
        (
            ErrorPolicy {
                on_error: OnError::Skip,
                max_errors: Some(MaxErrors::Ratio(0.6)),
            },
            true,
        ),
    ] {
        let r = run(&copy_plan(&input, &out, policy.clone()), &opts(1));
        assert_eq!(r.is_ok(), ok, "{policy:?}: {r:?}");
        if !ok {
            let err = r.unwrap_err();
            assert!(matches!(err, RunError::TooManyErrors { .. }), "{err}");
            assert!(!out.exists());
            assert!(!dl.exists());
        } else {
            assert!(out.exists());
            std::fs::remove_file(&out).unwrap();
        }
        assert!(leftovers(dir.path()).is_empty());
    }
}

#[test]
fn missing_input_and_unwritable_output_fail_before_data_moves() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let missing = dir.path().join("nope.csv");
    let err = run(&copy_plan(&missing, &out, ErrorPolicy::default()), &opts(1)).unwrap_err();
    assert!(matches!(err, RunError::Input { .. }));
    assert!(err.to_string().contains("nope.csv"), "{err}");
    assert!(!out.exists());
    let glob = dir.path().join("*.missing");
    let err = run(&copy_plan(&glob, &out, ErrorPolicy::default()), &opts(1)).unwrap_err();
    assert!(err.to_string().contains("no file matches"), "{err}");

    let input = dir.path().join("in.csv");
    write_csv(&input, &gen_rows(5));
    // A regular file where a directory is needed.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "x").unwrap();
    let bad_out = blocker.join("out.csv");
    let err = run(
        &copy_plan(&input, &bad_out, ErrorPolicy::default()),
        &opts(1),
    )
    .unwrap_err();
    assert!(matches!(err, RunError::Output { .. }), "{err}");
    assert!(err.to_string().contains("cannot create directory"), "{err}");
    assert!(leftovers(dir.path()).is_empty());
}

/// source → map { id, r: qty / (id - 3) } with a division by zero at id 3.
fn div_plan(input: &Path, out: &Path, policy: ErrorPolicy) -> Plan {
    let mut b = Builder::new();
    let src = b.source("csv", input, vec![0, 2], ErrorPolicy::default());
    let row = RowType::new(vec![f("id", Type::INT), f("r", Type::INT)]);
    let m = b.add(
        Op::Map {
            fields: vec![
                ("id".into(), field(0, Type::INT)),
                (
                    "r".into(),
                    bin(
                        BinOp::Div,
                        lit(Value::Int(12)),
                        bin(
                            BinOp::Sub,
                            field(0, Type::INT),
                            lit(Value::Int(3)),
                            Type::INT,
                        ),
                        Type::INT,
                    ),
                ),
            ],
            policy,
        },
        row,
        &[src],
    );
    b.sink("csv", out, m);
    b.plan()
}

#[test]
fn kernel_errors_follow_the_stage_policy() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    write_csv(&input, &gen_rows(8));
    let out = dir.path().join("out.csv");
    // fail
    let err = run(&div_plan(&input, &out, ErrorPolicy::default()), &opts(1)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RunError::RowEval { .. }), "{msg}");
    assert!(
        msg.contains("map #1") && msg.contains("division by zero"),
        "{msg}"
    );
    assert!(!out.exists());
    // skip
    let s = run(&div_plan(&input, &out, skip()), &opts(2)).unwrap();
    assert_eq!(s.stages[1].errored, 1);
    assert_eq!(s.stages[1].rows_out, 7);
    let got = sorted(read_csv(&out)[1..].to_vec());
    let expected = sorted(
        (0..8i64)
            .filter(|i| *i != 3)
            .map(|i| vec![i.to_string(), (12 / (i - 3)).to_string()])
            .collect(),
    );
    assert_eq!(got, expected);
    std::fs::remove_file(&out).unwrap();
    // dead letter
    let dl = dir.path().join("k.jsonl");
    let policy = ErrorPolicy {
        on_error: OnError::DeadLetter(dl.display().to_string()),
        max_errors: None,
    };
    run(&div_plan(&input, &out, policy), &opts(1)).unwrap();
    let text = std::fs::read_to_string(&dl).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["reason"], "division by zero");
    assert_eq!(lines[0]["record"]["id"], 3);
    assert!(lines[0]["stage"].as_str().unwrap().contains("map"));
}

#[test]
fn a_job_failing_half_way_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut rows = gen_rows(20_000);
    rows.truncate(20_000);
    write_csv(&input, &rows);
    // Append a bad row at the end: the job has written thousands of rows before it fails.
    let mut text = std::fs::read(&input).unwrap();
    text.extend_from_slice(b"99999,x,notanumber,1\n");
    std::fs::write(&input, text).unwrap();
    for threads in [1, 3] {
        let out = dir.path().join("final/out.csv");
        let s = run(&filter_map_plan(&input, &out), &opts(threads));
        assert!(s.is_err());
        assert!(!out.exists(), "{threads} workers");
        assert!(leftovers(&dir.path().join("final")).is_empty());
    }
}

#[test]
fn summary_serializes_and_reports_hints() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    write_csv(&input, &gen_rows(10));
    let out = dir.path().join("o.csv");
    let mut plan = filter_map_plan(&input, &out);
    let k = plan
        .graph
        .node_indices()
        .find(|&n| plan.graph[n].op.kind() == "fused")
        .unwrap();
    plan.graph[k].hints.parallel = Some(3);
    let s: RunSummary = run(&plan, &opts(1)).unwrap();
    assert!(
        s.warnings.iter().any(|w| w.contains("@parallel(3)")),
        "{:?}",
        s.warnings
    );
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["sinks"][0]["rows_written"], s.sinks[0].rows_written);
}

#[test]
fn kernel_errors_count_against_max_errors() {
    let dir = tempfile::tempdir().unwrap();
    // The plan divides by (id - 3): one row per file fails; 4 files read through a glob.
    for k in 0..4 {
        write_csv(&dir.path().join(format!("in{k}.csv")), &gen_rows(8));
    }
    let pattern = dir.path().join("in*.csv");
    let out = dir.path().join("out.csv");
    let limit = |n| ErrorPolicy {
        on_error: OnError::Skip,
        max_errors: Some(MaxErrors::Count(n)),
    };
    let err = run(&div_plan(&pattern, &out, limit(3)), &opts(2)).unwrap_err();
    assert!(
        matches!(err, RunError::TooManyErrors { errors: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("division by zero"), "{err}");
    assert!(!out.exists());
    let s = run(&div_plan(&pattern, &out, limit(4)), &opts(2)).unwrap();
    assert_eq!(s.stages[1].errored, 4);
    assert_eq!(s.stages[0].rows_in, 32);
    assert_eq!(read_csv(&out).len() - 1, 28);
}

#[test]
fn glob_delimiter_and_headerless_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p1.txt"), "1;a;1.5;\n2;\"b;c\";2.5;7\n").unwrap();
    std::fs::write(dir.path().join("p2.txt"), "3;d;3.5;1\n").unwrap();
    let out = dir.path().join("out.csv");
    let mut b = Builder::new();
    let src = b.source(
        "csv",
        &dir.path().join("p?.txt"),
        vec![3, 1],
        ErrorPolicy::default(),
    );
    if let Op::Source(spec) = &mut b.g[src].op {
        spec.options.insert("header".into(), Value::Bool(false));
        spec.options
            .insert("delimiter".into(), Value::Str(";".into()));
    }
    let o = b.sink("csv", &out, src);
    if let Op::Sink(spec) = &mut b.g[o].op {
        spec.options.insert("header".into(), Value::Bool(false));
    }
    run(&b.plan(), &opts(1)).unwrap();
    assert_eq!(
        read_csv(&out),
        vec![vec!["", "a"], vec!["7", "b;c"], vec!["1", "d"]]
    );
}

#[test]
fn a_panicking_kernel_becomes_a_run_error() {
    struct Boom;
    impl crate::codegen::Kernel for Boom {
        fn run(
            &self,
            _: &crate::batch::Batch,
            _: &mut crate::batch::Batch,
            _: &mut Vec<crate::codegen::RowError>,
        ) {
            panic!("boom");
        }
        fn describe(&self) -> String {
            "boom".into()
        }
        fn compile_micros(&self) -> Option<u64> {
            None
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    write_csv(&input, &gen_rows(20));
    let out = dir.path().join("out.csv");
    let mut o = opts(2);
    o.kernel_factory = std::sync::Arc::new(|_: &RowType, _: &[FusedStep]| {
        std::sync::Arc::new(Boom) as std::sync::Arc<dyn crate::codegen::Kernel>
    });
    let err = run(&filter_map_plan(&input, &out), &o).unwrap_err();
    assert!(err.to_string().contains("kernel panicked: boom"), "{err}");
    assert!(!out.exists());
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn two_outputs_to_one_path_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    write_csv(&input, &gen_rows(3));
    let out = dir.path().join("same.csv");
    let mut b = Builder::new();
    let src = b.source("csv", &input, vec![0], ErrorPolicy::default());
    b.sink("csv", &out, src);
    b.sink("jsonl", &out, src);
    let err = run(&b.plan(), &opts(1)).unwrap_err();
    assert!(err.to_string().contains("written by both"), "{err}");
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn malformed_jsonl_rows_go_to_the_dead_letter_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\":1,\"name\":\"a\",\"price\":1.0}\n\
         {\"id\":2,\"name\":\"b\",\"price\":\"x\"}\n\
         not json\n\
         \n\
         {\"id\":4,\"price\":2.0}\n\
         {\"id\":5,\"name\":\"e\",\"price\":3}\n",
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let dl = dir.path().join("dl.jsonl");
    let mut b = Builder::new();
    let policy = ErrorPolicy {
        on_error: OnError::DeadLetter(dl.display().to_string()),
        max_errors: None,
    };
    let src = b.source("jsonl", &input, vec![0, 1, 2], policy);
    b.sink("jsonl", &out, src);
    let s = run(&b.plan(), &opts(1)).unwrap();
    assert_eq!(s.stages[0].errored, 3);
    assert_eq!(s.stages[0].rows_out, 2);
    let dead: Vec<serde_json::Value> = std::fs::read_to_string(&dl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines: Vec<u64> = dead.iter().map(|d| d["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![2, 3, 5]);
    assert_eq!(dead[0]["column"], "price");
    assert_eq!(dead[1]["record"], "not json");
    assert_eq!(dead[2]["column"], "name");
    let ok = std::fs::read_to_string(&out).unwrap();
    assert_eq!(ok.lines().count(), 2);
    assert!(
        ok.contains("\"price\":3.0") || ok.contains("\"price\":3"),
        "{ok}"
    );
}

#[test]
fn a_satisfied_limit_stops_its_sources_early() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let rows = gen_rows(40_000);
    write_csv(&input, &rows);
    for threads in [1, 2] {
        let mut b = Builder::new();
        let src = b.source("csv", &input, vec![0, 1], ErrorPolicy::default());
        let row = b.g[src].row.clone();
        let l = b.add(Op::Limit(5), row, &[src]);
        let out = dir.path().join(format!("l{threads}.csv"));
        b.sink("csv", &out, l);
        let mut o = opts(threads);
        o.batch = Some(100);
        let s = run(&b.plan(), &o).unwrap();
        assert_eq!(read_csv(&out).len(), 6);
        assert_eq!(s.sinks[0].rows_written, 5);
        assert!(
            s.stages[0].rows_in < rows.len() as u64 / 2,
            "read {} rows",
            s.stages[0].rows_in
        );
    }
}

#[test]
fn a_job_spec_shipped_as_json_runs_like_the_original() {
    // A coordinator prepares the job and ships its description; a worker process rebuilds
    // everything from the bytes alone. Here both ends are this process, with a JSON round trip
    // in between: the rows and counts must be the same as from `run`.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let rows = gen_rows(500);
    write_csv(&input, &rows);
    let out = dir.path().join("out.csv");
    let plan = group_plan(&input, &out);
    let o = opts(2);
    let prepared = super::prepare(&plan, &o).unwrap();
    let bytes = serde_json::to_vec(&prepared.spec).unwrap();
    let shipped: super::JobSpec = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(shipped, prepared.spec);
    let outcome = super::execute(&shipped, &o).unwrap();
    let summary = prepared.commit(&outcome).unwrap();
    let got = sorted(read_csv(&out));

    let out2 = dir.path().join("out2.csv");
    let direct = run(&group_plan(&input, &out2), &o).unwrap();
    assert_eq!(got, sorted(read_csv(&out2)));
    assert_eq!(summary.sinks[0].rows_written, direct.sinks[0].rows_written);
    assert!(summary.sinks[0].rows_written > 0);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn an_aborted_job_leaves_no_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    write_csv(&input, &gen_rows(50));
    let out = dir.path().join("out.csv");
    let prepared = super::prepare(&filter_map_plan(&input, &out), &opts(1)).unwrap();
    assert!(
        !leftovers(dir.path()).is_empty(),
        "prepare creates the temporary output"
    );
    prepared.abort();
    assert!(leftovers(dir.path()).is_empty());
    assert!(!out.exists());
}
