//! From flow source text to plans: de-duplication across pipelines and files, fusion, pushdown.

use flow::check::Probe;
use flow::driver::check_sources;
use flow::job::Options;
use flow::plan::{self, Op, Plan, PlanError, PlanOptions, explain};
use flow::types::RowType;

/// Every input exists and every CSV header is that of `Trip`; schemas must be declared.
struct NoFiles;
impl Probe for NoFiles {
    fn exists(&self, _: &str) -> bool {
        true
    }
    fn csv_header(&self, _: &str, _: u8) -> Result<Vec<String>, String> {
        Ok([
            "id",
            "vendor",
            "pickup_ts",
            "distance",
            "fare",
            "tip",
            "city",
            "note",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect())
    }
    fn infer(&self, _: &str, _: &str, _: &Options) -> Result<RowType, String> {
        Err("no files in tests".into())
    }
}

const TRIPS: &str = r#"
schema Trip {
  id: int, vendor: str, pickup_ts: int,
  distance: float, fare: float, tip: float?,
  city: str, note: str,
}
source trips: Trip = csv("data/trips.csv", header: true)
"#;

fn plan_files(files: &[(&str, &str)], opts: PlanOptions) -> Result<Plan, Vec<PlanError>> {
    let c = check_sources(
        files
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect(),
        &NoFiles,
    );
    let Some(program) = c.program else {
        panic!("check failed: {:#?}", c.diagnostics);
    };
    plan::build(&program, opts)
}

fn ok(files: &[(&str, &str)], opts: PlanOptions) -> Plan {
    match plan_files(files, opts) {
        Ok(p) => p,
        Err(e) => panic!("plan failed: {e:?}"),
    }
}

fn count(plan: &Plan, kind: &str) -> usize {
    plan.graph
        .node_weights()
        .filter(|n| n.op.kind() == kind)
        .count()
}

const RAW: PlanOptions = PlanOptions {
    dedup: true,
    fuse: false,
    pushdown: false,
};

#[test]
fn design_example_shares_long() {
    let text = format!(
        "{TRIPS}
fn tip_pct(tip: float?, fare: float) -> float =
  if fare > 0.0 {{ (tip ?? 0.0) / fare * 100.0 }} else {{ 0.0 }}

let long = trips
  | filter distance > 10.0 && fare > 0.0
  | map {{ id, vendor, fare, pct: tip_pct(tip, fare), city: upper(city) }}

long | sink csv(\"out/long.csv\")
long | filter pct > 20.0 | sink jsonl(\"out/generous.jsonl\") @parallel(2)
long | group vendor {{ trips: count(), revenue: sum(fare) }} | sink csv(\"out/by_vendor.csv\")
"
    );
    let files = [("trips.flow", text.as_str())];
    let raw = ok(&files, RAW);
    assert_eq!(count(&raw, "map"), 1);
    assert_eq!(count(&raw, "source"), 1);
    assert_eq!(raw.stats.nodes_before_dedup, 14);
    assert_eq!(raw.graph.node_count(), 8);

    let full = ok(&files, PlanOptions::default());
    let text = explain::text(&full);
    assert!(text.contains("[shared by 3]"), "{text}");
    // pickup_ts and note are never read.
    let spec = full
        .graph
        .node_weights()
        .find_map(|n| match &n.op {
            Op::Source(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    let names: Vec<&str> = spec
        .columns
        .iter()
        .map(|&c| spec.schema.fields[c].name.as_str())
        .collect();
    assert_eq!(
        names,
        vec!["id", "vendor", "distance", "fare", "tip", "city"]
    );
    insta::assert_snapshot!(text);
}

#[test]
fn let_in_one_file_and_inline_chain_in_another_merge() {
    let a = format!(
        "{TRIPS}
let cheap = trips | filter fare < 5.0 | map {{ id, city }}
cheap | sink csv(\"out/a.csv\")
"
    );
    let b = format!(
        "# a different layout, so every span differs
{TRIPS}

trips
  | filter fare < 5.0
  | map {{ id, city }}
  | sink jsonl(\"out/b.jsonl\")
"
    );
    let files = [("a.flow", a.as_str()), ("b.flow", b.as_str())];
    let plan = ok(&files, RAW);
    assert_eq!(count(&plan, "source"), 1);
    assert_eq!(count(&plan, "filter"), 1);
    assert_eq!(count(&plan, "map"), 1);
    assert_eq!(plan.stats.nodes_before_dedup, 8);
    let m = plan
        .graph
        .node_weights()
        .find(|n| n.op.kind() == "map")
        .unwrap();
    assert_eq!(m.labels, vec!["cheap"]);
    assert_eq!(m.used_by.len(), 2);
    assert!(m.used_by[0].starts_with("a.flow:"), "{:?}", m.used_by);
    assert!(m.used_by[1].starts_with("b.flow:"), "{:?}", m.used_by);

    // A different literal in the second file: only the source is shared.
    let b2 = b.replace("5.0", "6.0");
    let plan = ok(&[("a.flow", a.as_str()), ("b.flow", b2.as_str())], RAW);
    assert_eq!(count(&plan, "source"), 1);
    assert_eq!(count(&plan, "filter"), 2);
    assert_eq!(count(&plan, "map"), 2);
}

#[test]
fn same_destination_in_two_files_is_an_error() {
    let a = format!("{TRIPS}\ntrips | sink csv(\"out/x.csv\")\n");
    let b = format!("{TRIPS}\ntrips | limit 3 | sink csv(\"out/x.csv\")\n");
    // The driver plans every checked program, so the error arrives as diagnostic E0060
    // pointing into both files.
    let c = check_sources(vec![("a.flow".into(), a), ("b.flow".into(), b)], &NoFiles);
    assert!(c.program.is_none());
    let [d] = &c.diagnostics[..] else {
        panic!("{:#?}", c.diagnostics);
    };
    assert_eq!(d.code.as_str(), "E0060");
    assert_eq!(d.labels.len(), 2);
    assert_ne!(d.labels[0].span.file, d.labels[1].span.file);
}

#[test]
fn no_dedup_and_no_fuse_switches() {
    let text = format!(
        "{TRIPS}
let big = trips | filter fare > 50.0
big | map {{ id }} | sink csv(\"out/a.csv\")
big | map {{ city }} | sink csv(\"out/b.csv\")
"
    );
    let files = [("t.flow", text.as_str())];
    let on = ok(&files, PlanOptions::default());
    let off = ok(
        &files,
        PlanOptions {
            dedup: false,
            ..PlanOptions::default()
        },
    );
    assert_eq!(count(&on, "source"), 1);
    assert_eq!(count(&off, "source"), 2);
    // Shared filter: its own kernel, each map another. Unshared: one kernel per pipeline.
    assert_eq!(count(&on, "fused"), 3);
    assert_eq!(count(&off, "fused"), 2);
    let unfused = ok(
        &files,
        PlanOptions {
            fuse: false,
            ..PlanOptions::default()
        },
    );
    assert_eq!(count(&unfused, "fused"), 0);
    assert_eq!(count(&unfused, "filter"), 1);
    let j = explain::json(&on);
    assert_eq!(j["stats"]["nodes_before_dedup"], 8);
    assert_eq!(j["stats"]["nodes_after_dedup"], 6);
}
