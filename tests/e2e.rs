//! End-to-end runs of every example, like a user: the `flow` binary on a copy of `examples/` in a
//! temp dir (so `examples/out/` is never written). Each example gives five tests:
//!
//! - `EXAMPLE::one_worker`: with one worker the outputs (files under `out/` and standard output)
//!   must equal `tests/snapshots/e2e/<example>.snap` exactly, order included. These snapshots are
//!   the expected outputs of the examples.
//! - `EXAMPLE::unoptimized` (`--no-dedup --no-fuse --no-pushdown`), `EXAMPLE::interpreter_2_workers`,
//!   `EXAMPLE::2_workers`, `EXAMPLE::4_workers_unfused`: must give the same rows as one worker, as
//!   a multiset. Floats are compared to 9 significant digits there, since sums over several
//!   workers add in another order.
//!
//! Run one example: `cargo test --test e2e trips`.

mod common;

use libtest_mimic::{Failed, Trial};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == "out" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(&name));
        } else {
            std::fs::copy(&p, to.join(&name)).expect("copy");
        }
    }
}

fn examples() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("examples")
        .expect("examples/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "flow"))
        .map(|p| {
            p.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

type Outputs = BTreeMap<String, Vec<String>>;

/// Runs one example in a fresh copy; returns output name → lines (stdout as "<stdout>").
fn run(example: &str, args: &[&str]) -> Result<Outputs, Failed> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    copy_dir(Path::new("examples"), dir.path());
    let script: PathBuf = dir.path().join(format!("{example}.flow"));
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .arg("run")
        .arg("-q")
        .args(args)
        .arg(&script)
        .output()
        .map_err(|e| format!("cannot start flow: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "flow run {example} {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let mut result = BTreeMap::new();
    result.insert(
        "<stdout>".to_string(),
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    );
    if let Ok(entries) = std::fs::read_dir(dir.path().join("out")) {
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path())
                .map_err(|err| format!("{}: {err}", e.path().display()))?;
            // Dead-letter records name the file they came from: make it independent of the temp dir.
            let text = text.replace(&dir.path().to_string_lossy().into_owned(), "<dir>");
            result.insert(
                e.file_name().to_string_lossy().into_owned(),
                text.lines().map(str::to_string).collect(),
            );
        }
    }
    Ok(result)
}

fn render(r: &Outputs) -> String {
    let mut s = String::new();
    for (name, lines) in r {
        s.push_str(&format!("== {name} ({} lines)\n", lines.len()));
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
    }
    s
}

fn normalize_number(tok: &str) -> String {
    match tok.parse::<f64>() {
        Ok(x) if tok.contains('.') || tok.contains('e') => format!("{x:.9e}"),
        _ => tok.to_string(),
    }
}

/// Dead-letter records name the plan node that rejected them, which depends on the plan
/// (fused or not); and without de-duplication a source is read once per pipeline, so its
/// rejected records appear once per reading. Compare them by content, as a set.
fn strip_stage(line: &str) -> String {
    let Some(start) = line.find("{\"stage\":") else {
        return line.to_string();
    };
    match line[start..].find("\"reason\":") {
        Some(end) => format!("{}{{{}", &line[..start], &line[start + end..]),
        None => line.to_string(),
    }
}

/// Multiset form: lines sorted, numbers rounded to 9 significant digits, rejected records
/// as a set.
fn multiset(r: &Outputs) -> Outputs {
    r.iter()
        .map(|(k, lines)| {
            let rejects = lines.iter().any(|l| l.contains("\"reason\":"));
            let mut v: Vec<String> = lines
                .iter()
                .map(|l| strip_stage(l))
                .map(|l| {
                    l.split_inclusive([',', ':', '}', '"'])
                        .map(|t| {
                            let (body, end) = t.split_at(
                                t.len() - t.chars().last().map(|c| c.len_utf8()).unwrap_or(0),
                            );
                            if end.is_empty() {
                                normalize_number(t)
                            } else {
                                format!("{}{end}", normalize_number(body))
                            }
                        })
                        .collect()
                })
                .collect();
            v.sort();
            if rejects {
                v.dedup();
            }
            (k.clone(), v)
        })
        .collect()
}

/// With one worker the outputs equal the snapshot, which begins with the example's source.
fn one_worker(example: &str) -> Result<(), Failed> {
    let r = run(example, &["--threads", "1"])?;
    if r.len() <= 1 {
        return Err(format!("{example} wrote no files").into());
    }
    let path = format!("examples/{example}.flow");
    let source = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    common::check("e2e", example, &[(&path, &source)], &render(&r))
}

/// The other plan switches, engines and worker counts, each a test of every example.
const VARIANTS: &[(&str, &[&str])] = &[
    (
        "unoptimized",
        &["--threads", "1", "--no-dedup", "--no-fuse", "--no-pushdown"],
    ),
    (
        "interpreter_2_workers",
        &["--threads", "2", "--engine", "interpreter"],
    ),
    (
        "2_workers_unoptimized",
        &["--threads", "2", "--no-dedup", "--no-fuse", "--no-pushdown"],
    ),
    (
        "interpreter_unoptimized",
        &[
            "--threads",
            "2",
            "--engine",
            "interpreter",
            "--no-dedup",
            "--no-fuse",
            "--no-pushdown",
        ],
    ),
    ("2_workers", &["--threads", "2"]),
    ("4_workers_unfused", &["--threads", "4", "--no-fuse"]),
];

/// The rows with `args` equal those with one worker, as a multiset.
fn same_rows_as_one_worker(example: &str, args: &[&str]) -> Result<(), Failed> {
    let base = render(&multiset(&run(example, &["--threads", "1"])?));
    let other = render(&multiset(&run(example, args)?));
    if base == other {
        return Ok(());
    }
    Err(format!(
        "{example}: output differs with {args:?}:\n{}",
        similar::TextDiff::from_lines(&base, &other)
            .unified_diff()
            .header("one worker", &format!("{args:?}"))
    )
    .into())
}

/// Runs `flow run` on a script written into a temp dir with `in.csv`; returns (exit, stderr, dir).
fn run_script(script: &str, csv: &str) -> (i32, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.csv"), csv).expect("write csv");
    std::fs::write(dir.path().join("job.flow"), script).expect("write script");
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .arg("run")
        .arg(dir.path().join("job.flow"))
        .output()
        .expect("flow runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        dir,
    )
}

fn a_failing_row_points_at_the_stage_in_the_script_and_writes_nothing() {
    let script = "schema R { id: int, price: float }\nsource r: R = csv(\"in.csv\")\nr | map { id, q: 10 / (id - 1) } | sink csv(\"out/x.csv\")\n";
    let (code, stderr, dir) = run_script(script, "id,price\n2,1.0\n1,2.5\n3,4.0\n");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("[E0070]") && stderr.contains("division by zero"),
        "{stderr}"
    );
    assert!(stderr.contains("job.flow:3:"), "{stderr}");
    // The row as the stage sees it: only the columns the plan reads.
    assert!(stderr.contains(r#"the row: {"id":1}"#), "{stderr}");
    assert!(!dir.path().join("out/x.csv").exists());
}

fn a_malformed_row_names_file_line_and_column() {
    let script = "schema R { id: int, price: float }\nsource r: R = csv(\"in.csv\")\nr | filter price > 1.0 | sink csv(\"out/x.csv\")\n";
    let (code, stderr, dir) = run_script(script, "id,price\n1,2.5\n2,zz\n");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("in.csv:3:2") && stderr.contains("price") && stderr.contains("zz"),
        "{stderr}"
    );
    assert!(!dir.path().join("out/x.csv").exists());
    // The same under `skip` succeeds, and the summary counts the rejected row.
    let script = script.replace("csv(\"in.csv\")", "csv(\"in.csv\", on_error: skip)");
    let (code, stderr, dir) = run_script(&script, "id,price\n1,2.5\n2,zz\n");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/x.csv")).unwrap_or_default(),
        "id,price\n1,2.5\n"
    );
    assert!(stderr.contains("errored"), "{stderr}");
}

/// Runs one example with `--summary json`; returns each stage kind's total `errored` count
/// and the sinks' rows written (the summary's JSON is on stderr).
fn counts(example: &str, args: &[&str]) -> (BTreeMap<String, u64>, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(Path::new("examples"), dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .arg("run")
        .args(["--summary", "json"])
        .args(args)
        .arg(dir.path().join(format!("{example}.flow")))
        .output()
        .expect("flow runs");
    assert!(out.status.success(), "{example} {args:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value =
        serde_json::from_str(&stderr[stderr.find('{').unwrap_or(0)..]).expect("summary JSON");
    let mut errors = BTreeMap::new();
    for s in v["stages"].as_array().into_iter().flatten() {
        let kind = s["kind"].as_str().unwrap_or_default().to_string();
        *errors.entry(kind).or_default() += s["errored"].as_u64().unwrap_or_default();
    }
    // Fused and unfused kernels count the same row errors under different stage kinds.
    let kernel: u64 = ["fused", "filter", "map"]
        .iter()
        .filter_map(|k| errors.remove(*k))
        .sum();
    errors.insert("kernels".into(), kernel);
    let rows = v["sinks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["rows_written"].as_u64().unwrap_or_default())
        .sum();
    (errors, rows)
}

/// Error counts and rows written with `args` are those of one worker.
fn same_counts_as_one_worker(example: &str) -> Result<(), Failed> {
    let base = counts(example, &["--threads", "1"]);
    for args in [
        &["--threads", "1", "--no-dedup", "--no-fuse", "--no-pushdown"][..],
        &["--threads", "2", "--no-dedup", "--no-fuse", "--no-pushdown"][..],
        &["--threads", "2", "--engine", "interpreter"][..],
        &["--threads", "4", "--no-pushdown"][..],
        &["--threads", "4", "--no-dedup"][..],
    ] {
        let other = counts(example, args);
        if base != other {
            return Err(
                format!("{example}: counts differ with {args:?}: {base:?} vs {other:?}").into(),
            );
        }
    }
    Ok(())
}

fn main() {
    let examples = examples();
    let mut trials = Vec::new();
    if examples.len() < 5 {
        trials.push(Trial::test("examples_are_present", move || {
            Err("expected at least 5 examples".into())
        }));
    }
    for ex in &examples {
        let e = ex.clone();
        trials.push(Trial::test(format!("{ex}::one_worker"), move || {
            one_worker(&e)
        }));
        let e = ex.clone();
        trials.push(Trial::test(
            format!("{ex}::error_counts_agree"),
            move || same_counts_as_one_worker(&e),
        ));
        for (name, args) in VARIANTS {
            let e = ex.clone();
            trials.push(Trial::test(format!("{ex}::{name}"), move || {
                same_rows_as_one_worker(&e, args)
            }));
        }
    }
    trials.push(common::no_stale_snapshots("e2e", examples));
    trials.push(Trial::test(
        "a_failing_row_points_at_the_stage_in_the_script_and_writes_nothing",
        || {
            a_failing_row_points_at_the_stage_in_the_script_and_writes_nothing();
            Ok(())
        },
    ));
    trials.push(Trial::test(
        "a_malformed_row_names_file_line_and_column",
        || {
            a_malformed_row_names_file_line_and_column();
            Ok(())
        },
    ));
    common::run(trials)
}
