//! The planner around joins (issue 15): filters moved below joins (and the ones that must not
//! move), conjunctions split, columns projected through joins into the sources, the build side
//! and broadcast chosen from row estimates, de-duplication of a shared joined prefix. Each case
//! is its own test with a snapshot (`tests/snapshots/join_plan/<case>.snap`): the `flow explain`
//! text without pushdown, then with the default optimizations; plus assertions on the plan.
//! The runtime side (results against DuckDB at 1/2/4 workers and on two processes) is in
//! tests/relational.rs.

mod common;

use flow::check::Probe;
use flow::driver::check_sources;
use flow::job::Options;
use flow::plan::{self, JoinSide, Op, Plan, PlanOptions, Sizes, explain};
use flow::types::RowType;

/// Inputs exist; `big.csv` holds a million rows, `mid.csv` 150,000, `small.csv` 500, and the
/// size of `unknown.csv` is not known. Schemas are declared.
struct Sized;
impl Probe for Sized {
    fn exists(&self, _: &str) -> bool {
        true
    }
    fn header(&self, _: &str, _: &str, _: &Options) -> Result<Option<Vec<String>>, String> {
        Ok(None)
    }
    fn infer(&self, _: &str, _: &str, _: &Options) -> Result<RowType, String> {
        Err("no files in tests".into())
    }
    fn rows(&self, _: &str, path: &str, _: &Options) -> Option<u64> {
        rows_of(path)
    }
}

fn rows_of(path: &str) -> Option<u64> {
    match path.rsplit('/').next()? {
        "big.csv" => Some(1_000_000),
        "mid.csv" => Some(150_000),
        "small.csv" => Some(500),
        _ => None,
    }
}

const HEAD: &str = r#"
schema O { id: int, cid: int?, amount: float, note: str, day: int }
schema C { cid: int, name: str?, country: str, score: int }
source orders: O = csv("big.csv", header: true)
source customers: C = csv("small.csv", header: true)
source more: O = csv("mid.csv", header: true)
source other: C = csv("unknown.csv", header: true)
"#;

fn plan_with(files: &[(&str, &str)], opts: PlanOptions) -> Plan {
    let c = check_sources(
        files
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect(),
        &Sized,
    );
    let Some(program) = c.program else {
        panic!("check failed: {:#?}", c.diagnostics);
    };
    let rows = |s: &plan::SourceSpec| s.path.as_deref().and_then(rows_of);
    let sizes = Sizes {
        rows: &rows,
        broadcast_rows: plan::BROADCAST_ROWS,
    };
    plan::build_sized(&program, opts, &sizes).unwrap_or_else(|e| panic!("plan failed: {e:?}"))
}

/// Plans `script` (after the shared declarations) with and without pushdown, compares the
/// explain texts with the case's snapshot, and returns the optimized plan.
fn case(name: &str, scripts: &[&str]) -> Plan {
    let texts: Vec<String> = scripts.iter().map(|s| format!("{HEAD}{s}")).collect();
    let names: Vec<String> = (0..texts.len()).map(|i| format!("job{i}.flow")).collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(texts.iter().map(String::as_str))
        .collect();
    let before = plan_with(
        &files,
        PlanOptions {
            pushdown: false,
            ..PlanOptions::default()
        },
    );
    let after = plan_with(&files, PlanOptions::default());
    let out = format!(
        "=== without pushdown\n{}\n=== with pushdown\n{}",
        explain::text(&before),
        explain::text(&after)
    );
    if let Err(e) = common::check("join_plan", name, &files, &out) {
        panic!("{}", e.message().unwrap_or_default());
    }
    after
}

/// The input of `node`'s port `port`.
fn input(plan: &Plan, node: plan::NodeId, port: usize) -> plan::NodeId {
    plan.inputs(node)[port]
}

fn joins(plan: &Plan) -> Vec<plan::NodeId> {
    plan.graph
        .node_indices()
        .filter(|&n| matches!(plan.graph[n].op, Op::Join { .. }))
        .collect()
}

/// The kernel steps (`filter …` / `map …`) of a node as explain prints them, or "" if it is
/// not a kernel.
fn steps_text(plan: &Plan, n: plan::NodeId) -> String {
    let j = explain::json(plan);
    j["nodes"][n.index()]["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

fn strategy(plan: &Plan, n: plan::NodeId) -> plan::JoinStrategy {
    match &plan.graph[n].op {
        Op::Join { strategy, .. } => *strategy,
        _ => panic!("n{} is not a join", n.index()),
    }
}

fn source_columns(plan: &Plan, name: &str) -> Vec<String> {
    plan.graph
        .node_weights()
        .find_map(|n| match &n.op {
            Op::Source(s) if s.name == name => Some(
                s.columns
                    .iter()
                    .map(|&c| s.schema.fields[c].name.clone())
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no source {name}"))
}

fn has_step(plan: &Plan, text: &str) -> bool {
    plan.graph
        .node_indices()
        .any(|n| steps_text(plan, n).contains(text))
}

#[test]
fn inner_join_left_filter_moves_below_onto_the_left_side() {
    let p = case(
        "inner_left_filter",
        &[
            "orders | join customers on cid == cid { name } | filter amount > 10.0 | sink csv(\"o.csv\")",
        ],
    );
    let [j] = joins(&p)[..] else { panic!() };
    assert_eq!(
        steps_text(&p, input(&p, j, 0)),
        "filter amount > 10.0",
        "the filter reads the left side only"
    );
    // Nothing is filtered after the join any more; the filter is the source's prune hint.
    assert!(p.outputs(j).iter().all(|&o| p.graph[o].op.kind() == "sink"));
    let pruned = p.graph.node_weights().any(|n| match &n.op {
        Op::Source(s) => s.name == "orders" && s.prune.is_some(),
        _ => false,
    });
    assert!(pruned);
}

#[test]
fn inner_join_right_filter_moves_below_onto_the_right_side() {
    let p = case(
        "inner_right_filter",
        &[
            "orders | join customers on cid == cid { name, country } | filter country == \"NO\" | sink csv(\"o.csv\")",
        ],
    );
    let [j] = joins(&p)[..] else { panic!() };
    assert_eq!(steps_text(&p, input(&p, j, 1)), "filter country == \"NO\"");
}

#[test]
fn conjunction_splits_left_right_and_rest() {
    let p = case(
        "mixed_conjunction",
        &[
            "orders | join customers on cid == cid { name, country } | filter amount > 10.0 && country != \"SE\" && note == country && day > 3 | sink csv(\"o.csv\")",
        ],
    );
    let [j] = joins(&p)[..] else { panic!() };
    assert_eq!(
        steps_text(&p, input(&p, j, 0)),
        "filter amount > 10.0 && day > 3"
    );
    assert_eq!(steps_text(&p, input(&p, j, 1)), "filter country != \"SE\"");
    // The conjunct reading both sides stays above the join.
    let [above] = p.outputs(j)[..] else { panic!() };
    assert_eq!(steps_text(&p, above), "filter note == country");
}

#[test]
fn left_join_right_side_filter_does_not_move() {
    let p = case(
        "left_join_right_filter_stays",
        &[
            "orders | left join customers on cid == cid { name, country } | filter (country ?? \"\") == \"NO\" && amount > 10.0 | sink csv(\"o.csv\")",
            "orders | left join customers on cid == cid { score } | filter score == null | sink csv(\"unmatched.csv\")",
        ],
    );
    let js = joins(&p);
    assert_eq!(js.len(), 2);
    for &j in &js {
        // Nothing moved onto the right side: null-extended rows would change its meaning.
        assert_eq!(p.graph[input(&p, j, 1)].op.kind(), "source");
    }
    // The left-side conjunct moved below, the right-side one stayed.
    assert_eq!(steps_text(&p, input(&p, js[0], 0)), "filter amount > 10.0");
    let [above] = p.outputs(js[0])[..] else {
        panic!()
    };
    assert_eq!(steps_text(&p, above), "filter country ?? \"\" == \"NO\"");
    let [above] = p.outputs(js[1])[..] else {
        panic!()
    };
    assert_eq!(steps_text(&p, above), "filter score == null");
}

#[test]
fn fallible_conjunct_keeps_the_later_ones_above() {
    let p = case(
        "fallible_conjunct",
        &[
            "orders | join customers on cid == cid { country } | filter 100 / day > 2 && country == \"NO\" | sink csv(\"a.csv\")",
            "orders | join customers on cid == cid { name } | filter amount > 1.0 && 100 / day > 2 && id > 5 | sink csv(\"b.csv\")",
        ],
    );
    let js = joins(&p);
    assert_eq!(js.len(), 2);
    // First: the division comes first, so nothing moves (a row it fails on must reach it).
    assert_eq!(p.graph[input(&p, js[0], 1)].op.kind(), "source");
    assert_eq!(p.graph[input(&p, js[0], 0)].op.kind(), "source");
    // Second: the conjunct before the division moves, the one after it stays.
    assert_eq!(steps_text(&p, input(&p, js[1], 0)), "filter amount > 1.0");
    let [above] = p.outputs(js[1])[..] else {
        panic!()
    };
    assert_eq!(steps_text(&p, above), "filter 100 / day > 2 && id > 5");
}

#[test]
fn narrowing_filter_moves_and_keeps_the_row_type() {
    let p = case(
        "narrowing_filter",
        &[
            "orders | join customers on cid == cid { name } | filter cid != null && cid > 3 | map { id, c: cid + 1 } | sink csv(\"o.csv\")",
        ],
    );
    let [j] = joins(&p)[..] else { panic!() };
    assert_eq!(
        steps_text(&p, input(&p, j, 0)),
        "filter !(cid == null) && cid > 3"
    );
    // The join's row has `cid` non-null, as the filter's had.
    assert_eq!(p.graph[j].row.to_string(), "{ id: int, cid: int }");
}

#[test]
fn projection_reads_only_the_columns_the_join_and_what_follows_need() {
    let p = case(
        "projection",
        &[
            "orders | join customers on cid == cid { name, country, score } | map { id, name } | sink csv(\"o.csv\")",
        ],
    );
    assert_eq!(source_columns(&p, "orders"), vec!["id", "cid"]);
    assert_eq!(source_columns(&p, "customers"), vec!["cid", "name"]);
    let [j] = joins(&p)[..] else { panic!() };
    assert_eq!(
        p.graph[j].row.to_string(),
        "{ id: int, cid: int?, name: str? }"
    );
}

#[test]
fn shared_joined_prefix_stays_one_node() {
    let shared = "orders | join customers on cid == cid { name, country } | filter amount > 10.0";
    let a = format!("{shared} | sink csv(\"a.csv\")");
    let b = format!("{shared} | map {{ id, name }} | sink csv(\"b.csv\")");
    let p = case("shared_prefix", &[&a, &b]);
    let js = joins(&p);
    assert_eq!(js.len(), 1, "one join for both scripts");
    assert_eq!(p.graph[js[0]].used_by.len(), 2);
    assert_eq!(steps_text(&p, input(&p, js[0], 0)), "filter amount > 10.0");
    // A different filter per script: the shared join cannot take either below it.
    let c = "orders | join customers on cid == cid { name } | filter amount > 1.0 | sink csv(\"c.csv\")";
    let d = "orders | join customers on cid == cid { name } | filter amount > 2.0 | sink csv(\"d.csv\")";
    let p = case("shared_join_two_filters", &[c, d]);
    let js = joins(&p);
    assert_eq!(js.len(), 1);
    assert_eq!(p.graph[input(&p, js[0], 0)].op.kind(), "source");
    assert_eq!(p.outputs(js[0]).len(), 2);
}

#[test]
fn build_side_is_the_smaller_and_a_small_side_is_broadcast() {
    let p = case(
        "build_side",
        &[
            "customers | join orders on cid == cid { amount } | sink csv(\"a.csv\")",
            "orders | join customers on cid == cid { name } | sink csv(\"b.csv\")",
            "customers | left join orders on cid == cid { amount } | sink csv(\"c.csv\")",
        ],
    );
    let js = joins(&p);
    assert_eq!(js.len(), 3);
    let s = strategy(&p, js[0]);
    assert_eq!((s.build, s.broadcast), (JoinSide::Left, true));
    assert_eq!((s.left_rows, s.right_rows), (Some(500), Some(1_000_000)));
    let s = strategy(&p, js[1]);
    assert_eq!((s.build, s.broadcast), (JoinSide::Right, true));
    // A left join builds its right side, however large: here too large to broadcast.
    let s = strategy(&p, js[2]);
    assert_eq!((s.build, s.broadcast), (JoinSide::Right, false));
    let text = explain::text(&p);
    assert!(text.contains("strategy: build left (~500 rows), stream right (~1000000 rows); on several workers: broadcast left"), "{text}");
    assert!(text.contains("both sides exchanged by key hash"), "{text}");
}

#[test]
fn large_sides_are_exchanged_and_a_filtered_side_is_estimated() {
    let p = case(
        "exchange_and_filtered_estimate",
        &[
            "orders | join more on cid == cid { more_amount: amount } | sink csv(\"a.csv\")",
            "let few = more | filter day == 1 | map { mc: cid, mday: day }\norders | join few on cid == mc { mday } | sink csv(\"b.csv\")",
            "orders | join other on cid == cid { name } | sink csv(\"c.csv\")",
        ],
    );
    let js = joins(&p);
    assert_eq!(js.len(), 3);
    let s = strategy(&p, js[0]);
    assert_eq!((s.build, s.broadcast), (JoinSide::Right, false));
    assert_eq!(s.right_rows, Some(150_000));
    // 150,000 rows filtered: estimated at half, under the broadcast limit.
    let s = strategy(&p, js[1]);
    assert_eq!((s.build, s.broadcast), (JoinSide::Right, true));
    assert_eq!(s.right_rows, Some(75_000));
    // Unknown size: build right, exchange both sides.
    let s = strategy(&p, js[2]);
    assert_eq!(
        (s.build, s.broadcast, s.right_rows),
        (JoinSide::Right, false, None)
    );
    assert!(has_step(&p, "filter day == 1"));
}

/// The estimates of real files, through the driver's probe: a CSV file's lines from its size
/// and a sample (exact for a small file, close for a large one), a Parquet file's rows exactly
/// from its footer (written by flow itself).
#[test]
fn estimates_come_from_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut big = String::from("id,word\n");
    for i in 0..200_000u64 {
        let w = "x".repeat((i % 17) as usize);
        big.push_str(&format!("{i},{w}\n"));
    }
    std::fs::write(d.join("big.csv"), big).expect("write");
    std::fs::write(d.join("small.csv"), "sid,name\n1,a\n2,b\n3,c\n").expect("write");
    std::fs::write(
        d.join("make.flow"),
        "source b = csv(\"big.csv\", header: true)\nb | filter id < 1234 | map { pid: id, word } | sink parquet(\"part.parquet\")\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["run", "-q"])
        .arg(d.join("make.flow"))
        .output()
        .expect("run flow");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = d.join("job.flow");
    std::fs::write(
        &job,
        "source b = csv(\"big.csv\", header: true)\n\
         source s = csv(\"small.csv\", header: true)\n\
         source p = parquet(\"part.parquet\")\n\
         b | join s on id == sid { name } | sink csv(\"o1.csv\")\n\
         b | join p on id == pid { w: word } | sink csv(\"o2.csv\")\n",
    )
    .expect("write");
    let c = flow::driver::check_paths(&[job]);
    let plan = c
        .plan
        .unwrap_or_else(|| panic!("does not plan: {:?}", c.diagnostics));
    let js = joins(&plan);
    assert_eq!(js.len(), 2);
    let s = strategy(&plan, js[0]);
    // Lines, the header included: the estimate is of lines, not records.
    assert_eq!(s.right_rows, Some(4));
    let big_rows = s.left_rows.expect("the big file's estimate");
    assert!(
        (190_000..=210_000).contains(&big_rows),
        "estimated {big_rows} rows for 200,001 lines"
    );
    assert_eq!((s.build, s.broadcast), (JoinSide::Right, true));
    let s = strategy(&plan, js[1]);
    assert_eq!(s.right_rows, Some(1234), "the Parquet footer's row count");
}
