//! `sort`, `distinct` and `join` (issue 15) end to end: the `flow` binary on generated inputs, compared
//! with DuckDB (the `duckdb` CLI, see tests/sql.rs) running the equivalent SQL on the same files,
//! each case at 1, 2 and 4 workers (its own test). The inputs are four CSV files read through one
//! glob (four splits, so several workers really share them), with nulls, NaN, -0.0, repeated
//! keys, empty and non-ASCII strings.
//!
//! A sorted output is compared in order (flow's sort is stable, so the SQL adds the input
//! position `id` as the last key); other outputs as multisets. Values are compared as numbers
//! to 9 significant digits where they parse as numbers; an empty cell is null on both sides.
//! Also here: a sort whose budget forces it to spill (output complete and sorted, no temporary
//! file left), and a top-N.

mod common;

use std::path::Path;
use std::process::Command;

fn duckdb_path() -> String {
    common::duckdb_path().unwrap_or_else(|e| panic!("{e}"))
}

/// Rows `0..n` over four files `in/p0.csv`…`in/p3.csv` (ids ascending across the files):
/// `id: int, k: int?, s: str?, x: float?`.
fn write_inputs(dir: &Path, n: usize) {
    let d = dir.join("in");
    std::fs::create_dir_all(&d).expect("mkdir");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let words = [
        "", "a", "B", "ab", "é", "zz", "a b", "Ωmega", "\"q\"", "x,y",
    ];
    let per = n.div_ceil(4);
    for f in 0..4 {
        let mut text = String::from("id,k,s,x\n");
        for id in f * per..((f + 1) * per).min(n) {
            let r = next();
            let k = if r % 11 == 0 {
                String::new()
            } else {
                ((r >> 8) % 13).to_string()
            };
            let s = match (r >> 16) % 12 {
                10 => String::new(), // null
                w => {
                    let w = words[w as usize % words.len()];
                    if w.contains(',') || w.contains('"') {
                        format!("\"{}\"", w.replace('"', "\"\""))
                    } else {
                        w.to_string()
                    }
                }
            };
            let x = match (r >> 24) % 17 {
                0 => String::new(),
                1 => "NaN".into(),
                2 => "-0.0".into(),
                3 => "0.0".into(),
                v => format!("{}.{}", (v as i64) - 8, (r >> 32) % 100),
            };
            text.push_str(&format!("{id},{k},{s},{x}\n"));
        }
        std::fs::write(d.join(format!("p{f}.csv")), text).expect("write input");
    }
}

const HEAD: &str = "schema R { id: int, k: int?, s: str?, x: float? }\n\
                    source r: R = csv(\"in/*.csv\", header: true)\n";

const DUCK_INPUT: &str = "read_csv('in/*.csv', header = true, \
     columns = {'id': 'BIGINT', 'k': 'BIGINT', 's': 'VARCHAR', 'x': 'DOUBLE'})";

fn norm(s: &str) -> String {
    if s.is_empty() {
        return "<null>".into();
    }
    if let Ok(i) = s.parse::<i64>() {
        return i.to_string();
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_nan() => "NaN".into(),
        Ok(0.0) => "0".into(),
        Ok(x) => format!("{x:.8e}"),
        Err(_) => s.to_string(),
    }
}

fn rows(text: &str) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    r.records()
        .map(|rec| {
            rec.expect("CSV output")
                .iter()
                .map(norm)
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// Runs `stages` over the input with `workers` workers; the output rows.
fn flow(dir: &Path, stages: &str, workers: usize, env: &[(&str, &str)]) -> Vec<String> {
    flow_with(dir, stages, &["--threads", &workers.to_string()], env)
}

/// Writes the script of `stages` (which may start with `let` statements, for a join's right
/// side: `lets ;; r …`) as `job.flow`.
fn write_script(dir: &Path, stages: &str) {
    let (lets, stages) = stages.split_once(";;").unwrap_or(("", stages));
    let script = format!("{HEAD}{lets}\nr {stages} | sink csv(\"out.csv\", header: true)\n");
    std::fs::write(dir.join("job.flow"), script).expect("write script");
}

/// Runs `stages` over the input with the extra `flow run` arguments; the output rows.
fn flow_with(dir: &Path, stages: &str, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    write_script(dir, stages);
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["run", "-q"])
        .args(args)
        .arg(dir.join("job.flow"))
        .envs(env.iter().copied())
        .output()
        .expect("run flow");
    assert!(
        out.status.success(),
        "flow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    rows(&std::fs::read_to_string(dir.join("out.csv")).expect("read output"))
}

/// Runs `query` (with `{input}` for the input relation) on DuckDB; the output rows.
fn duckdb(dir: &Path, query: &str) -> Vec<String> {
    let q = query.replace("{input}", DUCK_INPUT);
    let out = Command::new("duckdb")
        .args(["-csv", "-nullvalue", "", "-c", &q])
        .current_dir(dir)
        .env("PATH", duckdb_path())
        .output()
        .expect("run duckdb");
    assert!(
        out.status.success(),
        "duckdb failed on {q}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    rows(&String::from_utf8_lossy(&out.stdout))
}

fn case(stages: &str, query: &str, ordered: bool, workers: usize) {
    case_with(
        stages,
        query,
        ordered,
        &["--threads", &workers.to_string()],
        &[],
    );
}

fn case_with(stages: &str, query: &str, ordered: bool, args: &[&str], env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(dir.path(), 3000);
    let mut got = flow_with(dir.path(), stages, args, env);
    let mut want = duckdb(dir.path(), query);
    assert!(!want.is_empty());
    if !ordered {
        got.sort();
        want.sort();
    }
    if got != want {
        let at = got.iter().zip(&want).position(|(a, b)| a != b);
        panic!(
            "`{stages}` with {args:?} {env:?} differs from DuckDB ({} vs {} rows; first difference at {at:?}: {:?} vs {:?})",
            got.len(),
            want.len(),
            at.and_then(|i| got.get(i)),
            at.and_then(|i| want.get(i)),
        );
    }
}

macro_rules! cases {
    ($($name:ident: $stages:expr, $query:expr, $ordered:expr;)*) => {
        $(mod $name {
            #[test]
            fn one_worker() {
                super::case($stages, $query, $ordered, 1);
            }
            #[test]
            fn two_workers() {
                super::case($stages, $query, $ordered, 2);
            }
            #[test]
            fn four_workers() {
                super::case($stages, $query, $ordered, 4);
            }
        })*
    };
}

cases! {
    sort_keys_directions_nulls_nan:
        "| sort k desc, s, x desc",
        "SELECT * FROM {input} ORDER BY k DESC NULLS LAST, s ASC NULLS LAST, x DESC NULLS LAST, id",
        true;
    sort_float_key:
        "| sort x",
        "SELECT * FROM {input} ORDER BY x ASC NULLS LAST, id",
        true;
    sort_then_limit_is_top_n:
        "| sort x desc, s | limit 25",
        "SELECT * FROM {input} ORDER BY x DESC NULLS LAST, s NULLS LAST, id LIMIT 25",
        true;
    filter_after_sort:
        "| sort s desc | filter k != null && k > 6 | map { id, s, k2: k * 2 }",
        "SELECT id, s, k * 2 AS k2 FROM {input} WHERE k > 6 ORDER BY s DESC NULLS LAST, id",
        true;
    sort_after_group:
        "| group s { n: count(), top: max(k) } | sort n desc",
        "SELECT s, count(*) AS n, max(k) AS top FROM {input} GROUP BY s ORDER BY n DESC, s NULLS LAST, top NULLS LAST",
        true;
    distinct_whole_rows:
        "| map { k, s } | distinct",
        "SELECT DISTINCT k, s FROM {input}",
        false;
    distinct_keys_first_row:
        "| distinct k, s",
        "SELECT * FROM {input} QUALIFY row_number() OVER (PARTITION BY k, s ORDER BY id) = 1",
        false;
    distinct_float_key:
        "| distinct x",
        "SELECT * FROM {input} QUALIFY row_number() OVER (PARTITION BY x ORDER BY id) = 1",
        false;
    distinct_after_group:
        "| group s { n: count() } | distinct n",
        "SELECT * FROM (SELECT s, count(*) AS n FROM {input} GROUP BY s) QUALIFY row_number() OVER (PARTITION BY n ORDER BY s NULLS LAST) = 1",
        false;
    join_inner:
        "let t = r | filter id % 97 == 0 | map { tk: k, ts: s, tid: id };; | join t on k == tk { ts, tid }",
        "SELECT i.*, t.s AS ts, t.id AS tid FROM {input} i JOIN (SELECT * FROM {input} WHERE id % 97 = 0) t ON i.k = t.k",
        false;
    join_left_unmatched_and_null_keys:
        "let t = r | filter id % 89 == 0 && k != null && k < 7 | map { tk: k, tx: x };; | left join t on k == tk { tx }",
        "SELECT i.*, t.x AS tx FROM {input} i LEFT JOIN (SELECT * FROM {input} WHERE id % 89 = 0 AND k < 7) t ON i.k = t.k",
        false;
    join_two_keys:
        "let t = r | filter id % 7 == 0 | map { tk: k, tsv: s, tid: id };; | join t on k == tk && s == tsv { tid }",
        "SELECT i.*, t.id AS tid FROM {input} i JOIN (SELECT * FROM {input} WHERE id % 7 = 0) t ON i.k = t.k AND i.s = t.s",
        false;
    join_int_with_float_key:
        "let t = r | filter id < 40 && k != null | map { fk: to_float(k ?? 0), tid: id };; | join t on k == fk { tid }",
        "SELECT i.*, t.id AS tid FROM {input} i JOIN (SELECT * FROM {input} WHERE id < 40 AND k IS NOT NULL) t ON CAST(i.k AS DOUBLE) = CAST(t.k AS DOUBLE)",
        false;
    join_of_group_then_filter:
        "let g = r | group k { n: count() } | map { gk: k, n };; | left join g on k == gk { n } | filter n != null && n > 230 | map { id, k, n }",
        "SELECT i.id, i.k, g.n FROM {input} i LEFT JOIN (SELECT k, count(*) AS n FROM {input} GROUP BY k) g ON i.k = g.k WHERE g.n > 230",
        false;
    distinct_then_sort:
        "| distinct s | sort s | map { s, id }",
        "SELECT s, id FROM {input} QUALIFY row_number() OVER (PARTITION BY s ORDER BY id) = 1 ORDER BY s NULLS LAST",
        true;
}

/// `flow explain` of the case's script: each expectation `below:TEXT` must appear before the
/// join's line (a filter moved below it), `above:TEXT` after it, and anything else anywhere.
fn explain_case(stages: &str, expect: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(dir.path(), 3000);
    write_script(dir.path(), stages);
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .arg("explain")
        .arg(dir.path().join("job.flow"))
        .output()
        .expect("run flow explain");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let join_at = text
        .lines()
        .position(|l| l.contains(" join "))
        .expect("a join in the plan");
    for e in expect {
        let at = |t: &str| text.lines().position(|l| l.contains(t));
        match e.split_once(':') {
            Some(("below", t)) => assert!(
                at(t).is_some_and(|i| i < join_at),
                "`{t}` not below the join:\n{text}"
            ),
            Some(("above", t)) => assert!(
                at(t).is_some_and(|i| i > join_at),
                "`{t}` not above the join:\n{text}"
            ),
            _ => assert!(text.contains(e), "`{e}` not in:\n{text}"),
        }
    }
}

/// Each join case: against DuckDB at 1, 2 and 4 workers with the planner's strategy (a small
/// side broadcast), at 2 and 4 workers with broadcasting off (`FLOW_BROADCAST_ROWS=0`: both
/// sides exchanged by key), on two processes (`--nodes 2`) both ways, with the reference
/// interpreter, and its `flow explain` (where the filters went, the strategy).
macro_rules! join_cases {
    ($($name:ident: $stages:expr, $query:expr, $expect:expr;)*) => {
        $(mod $name {
            const NO_BROADCAST: &[(&str, &str)] = &[("FLOW_BROADCAST_ROWS", "0")];
            #[test]
            fn one_worker() {
                super::case($stages, $query, false, 1);
            }
            #[test]
            fn two_workers() {
                super::case($stages, $query, false, 2);
            }
            #[test]
            fn four_workers() {
                super::case($stages, $query, false, 4);
            }
            #[test]
            fn two_workers_keyed_exchange() {
                super::case_with($stages, $query, false, &["--threads", "2"], NO_BROADCAST);
            }
            #[test]
            fn four_workers_keyed_exchange() {
                super::case_with($stages, $query, false, &["--threads", "4"], NO_BROADCAST);
            }
            #[test]
            fn two_nodes() {
                super::case_with($stages, $query, false, &["--nodes", "2", "--threads", "2"], &[]);
            }
            #[test]
            fn two_nodes_keyed_exchange() {
                super::case_with($stages, $query, false, &["--nodes", "2", "--threads", "2"], NO_BROADCAST);
            }
            #[test]
            fn interpreter_two_workers() {
                super::case_with($stages, $query, false, &["--threads", "2", "--engine", "interpreter"], &[]);
            }
            #[test]
            fn explain() {
                super::explain_case($stages, $expect);
            }
        })*
    };
}

join_cases! {
    join_left_filter_moves_below:
        "let t = r | filter id % 97 == 0 | map { tk: k, ts: s, tid: id };; | join t on k == tk { ts, tid } | filter id > 1000 && id < 2500",
        "SELECT i.*, t.s AS ts, t.id AS tid FROM {input} i JOIN (SELECT * FROM {input} WHERE id % 97 = 0) t ON i.k = t.k WHERE i.id > 1000 AND i.id < 2500",
        &["below:filter id > 1000 && id < 2500", "build right", "broadcast right"];
    join_right_filter_moves_below:
        "let t = r | filter id % 97 == 0 | map { tk: k, ts: s, tid: id };; | join t on k == tk { ts, tid } | filter ts != null && ts != \"a\" && tid > 300",
        "SELECT i.*, t.s AS ts, t.id AS tid FROM {input} i JOIN (SELECT * FROM {input} WHERE id % 97 = 0) t ON i.k = t.k WHERE t.s IS NOT NULL AND t.s <> 'a' AND t.id > 300",
        &["below:s == null) && s != \"a\" && id > 300"];
    join_mixed_conjunction_splits:
        "let t = r | filter id % 97 == 0 | map { tk: k, ts: s, tid: id };; | join t on k == tk { ts, tid } | filter id > 500 && tid > 100 && id + tid > 3000 && s != null",
        "SELECT i.*, t.s AS ts, t.id AS tid FROM {input} i JOIN (SELECT * FROM {input} WHERE id % 97 = 0) t ON i.k = t.k WHERE i.id > 500 AND t.id > 100 AND i.id + t.id > 3000 AND i.s IS NOT NULL",
        &["below:filter id > 500", "below:filter id > 100", "above:filter id + tid > 3000 && !(s == null)"];
    left_join_right_filter_stays_above:
        "let t = r | filter id % 89 == 0 && k != null && k < 7 | map { tk: k, tx: x };; | left join t on k == tk { tx } | filter tx == null && id > 100",
        "SELECT i.*, t.x AS tx FROM {input} i LEFT JOIN (SELECT * FROM {input} WHERE id % 89 = 0 AND k < 7) t ON i.k = t.k WHERE t.x IS NULL AND i.id > 100",
        &["below:filter id > 100", "above:filter tx == null", "a left join always builds its right side"];
    join_builds_the_smaller_left_side:
        "let t = r | map { tk: k, ts: s, tid: id };; | filter id < 100 | join t on k == tk { tid }",
        "SELECT i.*, t.id AS tid FROM {input} i JOIN {input} t ON i.k = t.k WHERE i.id < 100",
        &["build left (~", "broadcast left to every worker"];
    join_projection_through_join:
        "let t = r | filter id % 97 == 0 | map { tk: k, ts: s, tid: id };; | join t on k == tk { ts, tid } | map { id, tid }",
        "SELECT i.id, t.id AS tid FROM {input} i JOIN (SELECT * FROM {input} WHERE id % 97 = 0) t ON i.k = t.k",
        &["reads: id, k, s (3 of 4)"];
}

/// A sort far over its budget spills many runs to temporary files and merges them: the output
/// is complete and sorted (as DuckDB sorts it), and no temporary file is left behind.
fn spilling_sort(workers: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(dir.path(), 40_000);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir");
    let tmp_s = tmp.to_string_lossy().into_owned();
    let got = flow(
        dir.path(),
        "| sort s desc, x, k desc",
        workers,
        &[("FLOW_SORT_BUDGET", "32K"), ("TMPDIR", &tmp_s)],
    );
    let want = duckdb(
        dir.path(),
        "SELECT * FROM {input} ORDER BY s DESC NULLS LAST, x NULLS LAST, k DESC NULLS LAST, id",
    );
    assert_eq!(got.len(), 40_000);
    assert!(got == want, "the spilled sort differs from DuckDB's order");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .expect("read tmp")
        .flatten()
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn spilling_sort_one_worker() {
    spilling_sort(1);
}

#[test]
fn spilling_sort_four_workers() {
    spilling_sort(4);
}

/// The SQL backend: whole-row `distinct` is `SELECT DISTINCT`; `sort` and keyed `distinct` are
/// refused with E0080 (their order and "first row" are not SQL's).
#[test]
fn sql_translates_whole_row_distinct_and_refuses_sort() {
    use flow::driver::Session;
    use flow::sql::{self, DuckDb};
    let compile = |stages: &str| {
        let dir = tempfile::tempdir().expect("tempdir");
        write_inputs(dir.path(), 10);
        let script = dir.path().join("job.flow");
        let text = format!("{HEAD}r {stages} | sink csv(\"out.csv\", header: true)\n");
        std::fs::write(&script, text).expect("write script");
        let mut s = Session::default();
        let path = script.to_string_lossy().into_owned();
        assert!(s.load_paths(&[path.as_str()]).is_empty());
        let plan = s.plan().expect("the script checks");
        sql::compile(plan, &DuckDb)
            .map(|st| sql::script(&st))
            .map_err(|errs| {
                errs.iter()
                    .map(|e| format!("{}: {}", e.code.as_str(), e.message))
                    .collect::<Vec<_>>()
            })
    };
    let ok = compile("| map { k, s } | distinct").expect("translates");
    assert!(ok.contains("SELECT DISTINCT *"), "{ok}");
    for stages in ["| sort k", "| distinct k"] {
        let errs = compile(stages).expect_err("refused");
        assert!(
            errs.len() == 1 && errs[0].starts_with("E0080"),
            "{stages}: {errs:?}"
        );
    }
}

/// A join whose right side is over `FLOW_MEMORY_BUDGET` fails with a clear error naming the
/// stage, and writes no output file.
#[test]
fn join_over_the_memory_budget_fails_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(dir.path(), 20000);
    let script = format!(
        "{HEAD}let t = r | map {{ tk: id, ts: s }}\nr | join t on id == tk {{ ts }} | sink csv(\"out.csv\", header: true)\n"
    );
    std::fs::write(dir.path().join("job.flow"), script).expect("write script");
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["run", "-q", "--threads", "2"])
        .arg(dir.path().join("job.flow"))
        .env("FLOW_MEMORY_BUDGET", "64K")
        .output()
        .expect("run flow");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the join should fail over budget");
    assert!(
        err.contains("join #")
            && err.contains("the join's hash table")
            && err.contains("memory budget"),
        "unclear error: {err}"
    );
    assert!(
        !dir.path().join("out.csv").exists(),
        "a partial output was left"
    );
}

/// The SQL backend translates `join` / `left join` to `JOIN … ON` / `LEFT JOIN … ON`.
#[test]
fn sql_translates_join() {
    use flow::driver::Session;
    use flow::sql::{self, DuckDb};
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(dir.path(), 10);
    let script = dir.path().join("job.flow");
    let text = format!(
        "{HEAD}let t = r | map {{ tk: k, ts: s }}\nr | left join t on k == tk {{ ts }} | sink csv(\"out.csv\", header: true)\n"
    );
    std::fs::write(&script, text).expect("write script");
    let mut s = Session::default();
    let path = script.to_string_lossy().into_owned();
    assert!(s.load_paths(&[path.as_str()]).is_empty());
    let plan = s.plan().expect("the script checks");
    let sql = sql::compile(plan, &DuckDb)
        .map(|st| sql::script(&st))
        .unwrap_or_else(|e| panic!("refused: {}", e.len()));
    assert!(
        sql.contains("LEFT JOIN") && sql.contains(" ON l.\"k\" = r.\"tk\""),
        "{sql}"
    );
}
