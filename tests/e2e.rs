//! End-to-end runs of every example, like a user: the `flow` binary on a copy of `examples/`.
//!
//! - With one worker the outputs (files under `out/` and standard output) must equal the
//!   checked-in snapshots `tests/snapshots/e2e/<example>.snap` exactly, order included.
//! - The unoptimized plan (`--no-dedup --no-fuse --no-pushdown`), the interpreter instead of the
//!   JIT, and 2 and 4 workers must give the same rows as a multiset. Floats are compared to 9
//!   significant digits there, since sums over several workers add in another order.

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

/// Runs one example in a fresh copy; returns output name → lines (stdout as "<stdout>").
fn run(example: &str, args: &[&str]) -> BTreeMap<String, Vec<String>> {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(Path::new("examples"), dir.path());
    let script: PathBuf = dir.path().join(format!("{example}.flow"));
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .arg("run")
        .arg("-q")
        .args(args)
        .arg(&script)
        .output()
        .expect("flow runs");
    assert!(
        out.status.success(),
        "flow run {example} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
            let text = std::fs::read_to_string(e.path()).expect("output is UTF-8");
            // Dead-letter records name the file they came from: make it independent of the temp dir.
            let text = text.replace(&dir.path().to_string_lossy().into_owned(), "<dir>");
            result.insert(
                e.file_name().to_string_lossy().into_owned(),
                text.lines().map(str::to_string).collect(),
            );
        }
    }
    result
}

fn render(r: &BTreeMap<String, Vec<String>>) -> String {
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
fn multiset(r: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
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

#[test]
fn examples_match_snapshots_with_one_worker() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/e2e");
    settings.set_prepend_module_to_snapshot(false);
    let _guard = settings.bind_to_scope();
    let all = examples();
    assert!(all.len() >= 5);
    for ex in all {
        let r = run(&ex, &["--threads", "1"]);
        assert!(r.len() > 1, "{ex} wrote no files");
        insta::assert_snapshot!(ex.clone(), render(&r));
    }
}

#[test]
fn optimizations_engines_and_worker_counts_agree() {
    for ex in examples() {
        let base = multiset(&run(&ex, &["--threads", "1"]));
        for args in [
            &["--threads", "1", "--no-dedup", "--no-fuse", "--no-pushdown"][..],
            &["--threads", "2", "--no-dedup", "--no-fuse", "--no-pushdown"][..],
            &["--threads", "2", "--engine", "interpreter"][..],
            &[
                "--threads",
                "2",
                "--engine",
                "interpreter",
                "--no-dedup",
                "--no-fuse",
                "--no-pushdown",
            ][..],
            &["--threads", "2"][..],
            &["--threads", "4", "--no-fuse"][..],
        ] {
            let other = multiset(&run(&ex, args));
            assert_eq!(base, other, "{ex}: output differs with {args:?}");
        }
    }
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

#[test]
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

#[test]
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

/// Error counts and rows written are the same whatever the optimisation flags, engine and
/// worker count.
#[test]
fn error_counts_agree_across_flags_engines_and_workers() {
    for ex in examples() {
        let base = counts(&ex, &["--threads", "1"]);
        for args in [
            &["--threads", "1", "--no-dedup", "--no-fuse", "--no-pushdown"][..],
            &["--threads", "2", "--no-dedup", "--no-fuse", "--no-pushdown"][..],
            &["--threads", "2", "--engine", "interpreter"][..],
            &["--threads", "4", "--no-pushdown"][..],
            &["--threads", "4", "--no-dedup"][..],
        ] {
            assert_eq!(base, counts(&ex, args), "{ex}: counts differ with {args:?}");
        }
    }
}
