//! Memory probe for the streaming runtime (used by `bench/mem/run.sh`): runs
//! `csv source → filter price > 50.0 → map { id, name, total: price * 2.0 } → csv sink`
//! on a plan built by hand, with a small hand-written kernel (the JIT is not needed to measure
//! the runtime's buffering).
//!
//! usage: mem_probe INPUT.csv OUTPUT.csv [THREADS]

use flow::batch::Batch;
use flow::codegen::{Kernel, RowError};
use flow::job::{ErrorPolicy, Hints, Mode, Options};
use flow::plan::ir::{FusedStep, Node, Op, Plan, PlanStats, SinkSpec, SourceSpec};
use flow::runtime::{RunOptions, run};
use flow::span::Span;
use flow::types::{Field, RowType, Scalar, Type};
use petgraph::graph::DiGraph;
use std::sync::Arc;

/// Input columns: id, name, price. Output: id, name, total.
struct FilterMap;

impl Kernel for FilterMap {
    fn run(&self, input: &Batch, out: &mut Batch, _errors: &mut Vec<RowError>) {
        for r in 0..input.rows {
            let price = input.get_float(r, 2);
            if price > 50.0 {
                let o = out.push_row();
                out.set_int(o, 0, input.get_int(r, 0));
                out.set_str(o, 1, input.get_str(r, 1));
                out.set_float(o, 2, price * 2.0);
            }
        }
    }
    fn compile_micros(&self) -> Option<u64> {
        None
    }
    fn describe(&self) -> String {
        "mem_probe filter+map".into()
    }
}

fn field(name: &str, scalar: Scalar) -> Field {
    Field {
        name: name.into(),
        ty: Type::new(scalar),
    }
}

fn node(op: Op, row: RowType) -> Node {
    Node {
        op,
        row,
        hints: Hints::default(),
        used_by: vec![],
        labels: vec![],
        span: Span::default(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: mem_probe INPUT.csv OUTPUT.csv [THREADS]");
        std::process::exit(2);
    }
    let threads = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(1);
    let schema = RowType::new(vec![
        field("id", Scalar::Int),
        field("name", Scalar::Str),
        field("price", Scalar::Float),
        field("qty", Scalar::Int),
    ]);
    let src_row = RowType::new(schema.fields[..3].to_vec());
    let out_row = RowType::new(vec![
        field("id", Scalar::Int),
        field("name", Scalar::Str),
        field("total", Scalar::Float),
    ]);
    let mut g: DiGraph<Node, usize, u32> = DiGraph::default();
    let s = g.add_node(node(
        Op::Source(SourceSpec {
            name: "rows".into(),
            connector: "csv".into(),
            path: Some(args[1].clone()),
            options: Options::new(),
            schema,
            columns: vec![0, 1, 2],
            unread: Vec::new(),
            policy: ErrorPolicy::default(),
            prune: None,
        }),
        src_row,
    ));
    // The probe's kernel ignores the steps; the plan still says what it computes.
    let k = g.add_node(node(
        Op::Fused {
            steps: Vec::<FusedStep>::new(),
        },
        out_row.clone(),
    ));
    let o = g.add_node(node(
        Op::Sink(SinkSpec {
            connector: "csv".into(),
            path: Some(args[2].clone()),
            options: Options::new(),
            origin: "mem_probe".into(),
        }),
        out_row,
    ));
    g.add_edge(s, k, 0);
    g.add_edge(k, o, 0);
    let plan = Plan {
        graph: g,
        mode: Mode::Single {
            readers: 1,
            processors: 0,
            batch: 4096,
        },
        stats: PlanStats::default(),
    };
    let mut opts = RunOptions::new(Arc::new(|_: &RowType, _: &[FusedStep]| {
        Arc::new(FilterMap) as Arc<dyn Kernel>
    }));
    opts.threads = Some(threads);
    match run(&plan, &opts) {
        Ok(s) => {
            let read = s.stages[0].rows_in;
            let written = s.sinks[0].rows_written;
            println!(
                "rows read {read}, rows written {written}, {:.2} s, {:.1} M rows/s",
                s.elapsed_secs,
                read as f64 / s.elapsed_secs / 1e6
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
