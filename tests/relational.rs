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

/// As `case`, with the `flow run` arguments `args` (e.g. `--nodes 2`).
fn case_args(stages: &str, query: &str, ordered: bool, args: &[&str]) {
    case_with(stages, query, ordered, args, &[]);
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
    sort_by_string_expression:
        "| sort lower(s ?? \"~\") desc, k",
        "SELECT * FROM {input} ORDER BY lower(COALESCE(s, '~')) DESC, k NULLS LAST, id",
        true;
    sort_by_float_expression_with_nan:
        "| sort (x ?? 0.5) * 2.0 desc, s",
        "SELECT * FROM {input} ORDER BY COALESCE(x, 0.5) * 2.0 DESC, s NULLS LAST, id",
        true;
    sort_by_nullable_expression_and_negation:
        "| sort if k != null { k % 4 } else { null }, -id",
        "SELECT * FROM {input} ORDER BY k % 4 NULLS LAST, -id",
        true;
    sort_by_expression_then_limit_is_top_n:
        "| sort abs(id - 1500), id desc | limit 20",
        "SELECT * FROM {input} ORDER BY abs(id - 1500), id DESC LIMIT 20",
        true;
    sort_by_expression_after_group:
        "| group s { n: count(), f: first(id) } | sort n % 7, f",
        "SELECT s, count(*) AS n, first(id ORDER BY id) AS f FROM {input} GROUP BY s ORDER BY n % 7, f",
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
    count_distinct_of_strings_floats_ints:
        "| group k { n: count(), ds: count_distinct(s), dx: count_distinct(x), dk: count_distinct(id % 50) }",
        "SELECT k, count(*), count(DISTINCT s), count(DISTINCT x), count(DISTINCT id % 50) FROM {input} GROUP BY k",
        false;
    count_distinct_by_string_key:
        "| group s { dk: count_distinct(k), dx: count_distinct((x ?? 1.0) * 2.0) }",
        "SELECT s, count(DISTINCT k), count(DISTINCT COALESCE(x, 1.0) * 2.0) FROM {input} GROUP BY s",
        false;
    first_last_keep_nulls_in_input_order:
        "| group k { fs: first(s), ls: last(s), fx: first(x), lx: last(x), fi: first(id), li: last(id) }",
        "SELECT k, first(s ORDER BY id), last(s ORDER BY id), first(x ORDER BY id), last(x ORDER BY id), first(id ORDER BY id), last(id ORDER BY id) FROM {input} GROUP BY k",
        false;
    first_last_of_computed_values_after_filter:
        "| filter id % 3 != 0 | group s { f: first((k ?? -1) * 10), l: last(s ?? \"-\"), n: count_distinct(k) }",
        "SELECT s, first(COALESCE(k, -1) * 10 ORDER BY id), last(COALESCE(s, '-') ORDER BY id), count(DISTINCT k) FROM {input} WHERE id % 3 <> 0 GROUP BY s",
        false;
    groups_of_only_nulls:
        "| filter s == null && x == null | group k { n: count(), ds: count_distinct(s), fs: first(s), lx: last(x) }",
        "SELECT k, count(*), count(DISTINCT s), first(s ORDER BY id), last(x ORDER BY id) FROM {input} WHERE s IS NULL AND x IS NULL GROUP BY k",
        false;
    distinct_then_sort:
        "| distinct s | sort s | map { s, id }",
        "SELECT s, id FROM {input} QUALIFY row_number() OVER (PARTITION BY s ORDER BY id) = 1 ORDER BY s NULLS LAST",
        true;
}

/// `first`/`last`/`count_distinct` across two `flow worker` processes: partial states from the
/// two nodes merge by input position to DuckDB's answer.
#[test]
fn first_last_on_two_nodes() {
    case_args(
        "| group k { fs: first(s), lx: last(x), li: last(id), ds: count_distinct(s) }",
        "SELECT k, first(s ORDER BY id), last(x ORDER BY id), last(id ORDER BY id), count(DISTINCT s) FROM {input} GROUP BY k",
        false,
        &["--nodes", "2", "--threads", "2"],
    );
}

/// The reference interpreter (`--engine interpreter`) evaluates computed sort keys and
/// aggregate arguments to the same rows as the JIT (the other cases) and DuckDB.
#[test]
fn interpreter_sort_keys_and_aggregate_arguments() {
    case_args(
        "| sort lower(s ?? \"~\") desc, (x ?? 0.5) * 2.0",
        "SELECT * FROM {input} ORDER BY lower(COALESCE(s, '~')) DESC, COALESCE(x, 0.5) * 2.0, id",
        true,
        &["--engine", "interpreter", "--threads", "2"],
    );
    case_args(
        "| group k { d: count_distinct(id % 9), f: first((x ?? 1.0) * 3.0), l: last(lower(s ?? \"-\")) }",
        "SELECT k, count(DISTINCT id % 9), first(COALESCE(x, 1.0) * 3.0 ORDER BY id), last(lower(COALESCE(s, '-')) ORDER BY id) FROM {input} GROUP BY k",
        false,
        &["--engine", "interpreter", "--threads", "4"],
    );
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

/// A join whose build side is large enough for the probe loop to prefetch, also on each of 2
/// workers (30k keys, a third of them on two build rows; with a string key too): the rows
/// DuckDB gives.
fn large_join(workers: usize, on: &str, query: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(dir.path(), 40_000);
    let stages = format!(
        "let t = r | map {{ tk: id % 30000, tks: s ?? \"-\", tid: id }};; | join t on {on} {{ tid }}"
    );
    let mut got = flow(dir.path(), &stages, workers, &[]);
    let mut want = duckdb(dir.path(), query);
    got.sort();
    want.sort();
    assert!(want.len() > 5_000, "{} rows", want.len());
    assert!(got == want, "{} rows vs DuckDB's {}", got.len(), want.len());
}

const LARGE_JOIN_INT: &str =
    "SELECT i.*, t.id AS tid FROM {input} i JOIN {input} t ON i.id = t.id % 30000";

#[test]
fn large_join_on_int_keys_one_worker() {
    large_join(1, "id == tk", LARGE_JOIN_INT);
}

#[test]
fn large_join_on_int_keys_two_workers() {
    large_join(2, "id == tk", LARGE_JOIN_INT);
}

#[test]
fn large_join_on_int_and_string_keys_two_workers() {
    large_join(
        2,
        "id == tk && s == tks",
        "SELECT i.*, t.id AS tid FROM {input} i JOIN {input} t ON i.id = t.id % 30000 AND i.s = coalesce(t.s, '-')",
    );
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

/// A distinct far over its spill budget (`FLOW_SORT_BUDGET`) writes partition files and merges
/// them back: the first row of each key as DuckDB picks it (in input order with one worker),
/// and no temporary file is left behind. The memory budget is set below what the whole table
/// needs (the same job without spilling fails), so the spill really happened.
fn spilling_distinct(workers: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(dir.path(), 40_000);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir");
    let tmp_s = tmp.to_string_lossy().into_owned();
    let stages = "| map { id, g: id % 15000, s, x } | distinct g, s";
    let env = [
        ("FLOW_SORT_BUDGET", "32K"),
        ("FLOW_MEMORY_BUDGET", "1M"),
        ("TMPDIR", tmp_s.as_str()),
    ];
    let mut got = flow(dir.path(), stages, workers, &env);
    let mut want = duckdb(
        dir.path(),
        "SELECT id, id % 15000 AS g, s, x FROM {input} QUALIFY row_number() OVER (PARTITION BY id % 15000, s ORDER BY id) = 1 ORDER BY id",
    );
    assert!(want.len() > 14_000, "{}", want.len());
    if workers > 1 {
        got.sort();
        want.sort();
    }
    assert!(
        got == want,
        "the spilled distinct differs from DuckDB's rows ({} vs {})",
        got.len(),
        want.len()
    );
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .expect("read tmp")
        .flatten()
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    // Without spilling, the table does not fit the memory budget.
    std::fs::write(
        dir.path().join("job.flow"),
        format!("{HEAD}r {stages} | sink csv(\"out.csv\", header: true)\n"),
    )
    .expect("write script");
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["run", "-q", "--threads", &workers.to_string()])
        .arg(dir.path().join("job.flow"))
        .envs([("FLOW_SORT_BUDGET", "1G"), ("FLOW_MEMORY_BUDGET", "1M")])
        .output()
        .expect("run flow");
    assert!(
        !out.status.success(),
        "the unspilled distinct should be over budget"
    );
}

#[test]
fn spilling_distinct_one_worker() {
    spilling_distinct(1);
}

#[test]
fn spilling_distinct_two_workers() {
    spilling_distinct(2);
}

#[test]
fn spilling_distinct_four_workers() {
    spilling_distinct(4);
}

/// A session holding the job `stages` over a small input (the directory lives as long as the
/// returned guard).
fn session_for(stages: &str) -> (tempfile::TempDir, flow::driver::Session) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(dir.path(), 10);
    let script = dir.path().join("job.flow");
    let text = format!("{HEAD}r {stages} | sink csv(\"out.csv\", header: true)\n");
    std::fs::write(&script, text).expect("write script");
    let mut s = flow::driver::Session::default();
    let path = script.to_string_lossy().into_owned();
    assert!(s.load_paths(&[path.as_str()]).is_empty());
    (dir, s)
}

/// The SQL backend: whole-row `distinct` is `SELECT DISTINCT`, `count_distinct` is
/// `count(DISTINCT …)`; `sort`, keyed `distinct` and `first`/`last` are refused with E0080 (their
/// order and "first row" are not SQL's).
#[test]
fn sql_translates_whole_row_distinct_and_refuses_sort() {
    use flow::sql::{self, DuckDb};
    let compile = |stages: &str| {
        let (_dir, mut s) = session_for(stages);
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
    let cd = compile("| group k { d: count_distinct(s) }").expect("translates");
    assert!(cd.contains("count(DISTINCT "), "{cd}");
    for stages in [
        "| sort k",
        "| distinct k",
        "| group k { f: first(s) }",
        "| group k { l: last(x) }",
    ] {
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

/// `sort <expression> | limit N` stays a top-N: the projection that drops the computed key
/// between the sort and the limit does not hide the limit from the sort.
#[test]
fn sort_by_expression_then_limit_plans_a_top_n() {
    use flow::runtime::physical::{PhysOp, PhysicalPlan};
    for (stages, want) in [
        ("| sort abs(id - 5) | limit 7", Some(7)),
        ("| sort k | limit 3", Some(3)),
        ("| sort abs(id - 5) | map { id, x: 1 } | limit 7", None),
    ] {
        let (_dir, mut s) = session_for(stages);
        let plan = s.plan().expect("the script checks");
        let phys = PhysicalPlan::from_plan(plan, 2, 100).expect("physical plan");
        let limits: Vec<Option<u64>> = phys
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                PhysOp::Sort { limit, .. } => Some(*limit),
                _ => None,
            })
            .collect();
        assert_eq!(limits, vec![want], "{stages}");
    }
}
