//! The H2O.ai group-by questions of bench/h2o (issue 19): each job file, run by `flow` on a small
//! table from bench/gen_h2o.rs, must give the groups and values of a plain Rust fold over the
//! same CSV (computed here, independently of flow). Each question runs without and with 5% empty
//! cells (nulls in keys and values).

#[path = "../bench/gen_h2o.rs"]
#[allow(dead_code)]
mod gen_h2o;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const COLS: [&str; 9] = ["id1", "id2", "id3", "id4", "id5", "id6", "v1", "v2", "v3"];

#[derive(Clone, Copy)]
enum Agg {
    Count,
    Sum(&'static str),
    Avg(&'static str),
    Min(&'static str),
    Max(&'static str),
}

/// Running state of one aggregate: (sum or best, count of non-null values).
type State = (f64, u64);

fn col(name: &str) -> usize {
    COLS.iter().position(|c| *c == name).unwrap()
}

fn fold(st: &mut State, a: Agg, row: &[&str]) {
    let v = |c: &str| row[col(c)].parse::<f64>().ok();
    match a {
        Agg::Count => st.1 += 1,
        Agg::Sum(c) | Agg::Avg(c) => {
            if let Some(x) = v(c) {
                st.0 += x;
                st.1 += 1;
            }
        }
        Agg::Min(c) | Agg::Max(c) => {
            if let Some(x) = v(c) {
                let better = st.1 == 0
                    || if matches!(a, Agg::Min(_)) {
                        x < st.0
                    } else {
                        x > st.0
                    };
                if better {
                    st.0 = x;
                }
                st.1 += 1;
            }
        }
    }
}

fn finish(st: State, a: Agg) -> Option<f64> {
    match a {
        Agg::Count => Some(st.1 as f64),
        Agg::Sum(_) => Some(st.0),
        Agg::Avg(_) | Agg::Min(_) | Agg::Max(_) => (st.1 > 0).then(|| match a {
            Agg::Avg(_) => st.0 / st.1 as f64,
            _ => st.0,
        }),
    }
}

type Groups = BTreeMap<Vec<String>, Vec<Option<f64>>>;

/// The reference: group `csv` by `keys` and fold `aggs`; `range` replaces the two aggregates by
/// their difference (q7), null if either is null.
fn reference(csv: &str, keys: &[&str], aggs: &[Agg], range: bool) -> Groups {
    let mut groups: BTreeMap<Vec<String>, Vec<State>> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let row: Vec<&str> = line.split(',').collect();
        assert_eq!(row.len(), 9, "{line}");
        let key = keys.iter().map(|k| row[col(k)].to_string()).collect();
        let st = groups
            .entry(key)
            .or_insert_with(|| vec![(0.0, 0); aggs.len()]);
        for (s, &a) in st.iter_mut().zip(aggs) {
            fold(s, a, &row);
        }
    }
    groups
        .into_iter()
        .map(|(k, st)| {
            let vals: Vec<Option<f64>> = st.iter().zip(aggs).map(|(&s, &a)| finish(s, a)).collect();
            let vals = if range {
                vec![match (vals[0], vals[1]) {
                    (Some(hi), Some(lo)) => Some(hi - lo),
                    _ => None,
                }]
            } else {
                vals
            };
            (k, vals)
        })
        .collect()
}

/// Flow's output CSV read back: keys are the first `nkeys` columns.
fn read_output(path: &Path, nkeys: usize) -> Groups {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Groups::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let key: Vec<String> = f[..nkeys].iter().map(|s| s.to_string()).collect();
        let vals = f[nkeys..]
            .iter()
            .map(|s| {
                if s.is_empty() {
                    None
                } else {
                    Some(s.parse::<f64>().unwrap())
                }
            })
            .collect();
        assert!(
            out.insert(key.clone(), vals).is_none(),
            "group {key:?} written twice"
        );
    }
    out
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flow-h2o-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs bench/h2o/`q`.flow on a generated table of 20,000 rows (K=10) with `na`% empty cells,
/// with `threads` worker threads (0: the job's own mode; more: pre-aggregation per worker and
/// merged partial states), and compares with the reference.
fn check(q: &str, na: u64, threads: usize, keys: &[&str], aggs: &[Agg], range: bool) {
    let dir = tmp_dir(&format!("{q}-{na}-{threads}"));
    let mut csv = Vec::new();
    gen_h2o::generate(&mut csv, 20_000, 10, na, 7 + na).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    std::fs::write(dir.join("h2o.csv"), &csv).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let job = std::fs::read_to_string(root.join(format!("bench/h2o/{q}.flow"))).unwrap();
    let out_path = format!("../data/out/flow/{q}.csv");
    assert!(
        job.contains("\"../data/h2o.csv\"") && job.contains(&out_path),
        "{q}.flow paths"
    );
    let job = job
        .replace("../data/h2o.csv", "h2o.csv")
        .replace(&out_path, "out.csv");
    std::fs::write(dir.join("job.flow"), job).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flow"));
    cmd.args(["run", "-q"]);
    if threads > 0 {
        cmd.args(["--threads", &threads.to_string(), "--batch", "1000"]);
    }
    let run = cmd.arg(dir.join("job.flow")).output().unwrap();
    assert!(
        run.status.success(),
        "flow run {q}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let got = read_output(&dir.join("out.csv"), keys.len());
    let want = reference(&csv, keys, aggs, range);
    assert_eq!(got.len(), want.len(), "{q}: group count");
    assert!(want.len() > 1, "{q}: a degenerate input");
    for (k, w) in &want {
        let g = got
            .get(k)
            .unwrap_or_else(|| panic!("{q}: group {k:?} missing"));
        assert_eq!(g.len(), w.len(), "{q} {k:?}: columns");
        for (x, y) in g.iter().zip(w) {
            match (x, y) {
                (Some(x), Some(y)) => assert!(
                    (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                    "{q} {k:?}: flow {x}, reference {y}"
                ),
                _ => assert_eq!(x, y, "{q} {k:?}"),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

macro_rules! question {
    ($name:ident, $name_na:ident, $name_par:ident, $q:literal, [$($k:literal),*], [$($a:expr),*], $range:expr) => {
        #[test]
        fn $name() {
            check($q, 0, 0, &[$($k),*], &[$($a),*], $range);
        }
        #[test]
        fn $name_na() {
            check($q, 5, 0, &[$($k),*], &[$($a),*], $range);
        }
        #[test]
        fn $name_par() {
            check($q, 5, 4, &[$($k),*], &[$($a),*], $range);
        }
    };
}

use Agg::*;
question!(
    q1_sum_v1_by_id1,
    q1_with_5pct_nulls,
    q1_with_nulls_on_4_threads,
    "q1",
    ["id1"],
    [Sum("v1")],
    false
);
question!(
    q2_sum_v1_by_id1_id2,
    q2_with_5pct_nulls,
    q2_with_nulls_on_4_threads,
    "q2",
    ["id1", "id2"],
    [Sum("v1")],
    false
);
question!(
    q3_sum_v1_mean_v3_by_id3,
    q3_with_5pct_nulls,
    q3_with_nulls_on_4_threads,
    "q3",
    ["id3"],
    [Sum("v1"), Avg("v3")],
    false
);
question!(
    q4_mean_v1_v2_v3_by_id4,
    q4_with_5pct_nulls,
    q4_with_nulls_on_4_threads,
    "q4",
    ["id4"],
    [Avg("v1"), Avg("v2"), Avg("v3")],
    false
);
question!(
    q5_sum_v1_v2_v3_by_id6,
    q5_with_5pct_nulls,
    q5_with_nulls_on_4_threads,
    "q5",
    ["id6"],
    [Sum("v1"), Sum("v2"), Sum("v3")],
    false
);
question!(
    q7_max_v1_minus_min_v2_by_id3,
    q7_with_5pct_nulls,
    q7_with_nulls_on_4_threads,
    "q7",
    ["id3"],
    [Max("v1"), Min("v2")],
    true
);
question!(
    q10_sum_v3_count_by_all_ids,
    q10_with_5pct_nulls,
    q10_with_nulls_on_4_threads,
    "q10",
    ["id1", "id2", "id3", "id4", "id5", "id6"],
    [Sum("v3"), Count],
    false
);
