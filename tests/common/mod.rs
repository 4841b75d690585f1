//! Shared by the data-driven suites (each a `harness = false` test run by `libtest-mimic`, so
//! every case is its own named test): finding the cases, and `check`, which compares a case's
//! output with its snapshot.
//!
//! A snapshot is `tests/snapshots/<suite>/<case>.snap`: the case's source text (each file under a
//! `----- SOURCE <path>` line), then `----- OUTPUT` and the output. With `UPDATE_SNAPSHOTS=1` in
//! the environment a missing or different snapshot is written; without it, it fails the case
//! with a line diff.

#![allow(dead_code)] // each suite uses a part

pub mod pg;

use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};

/// One input file of a data-driven suite.
pub struct Case {
    /// The file name without `.flow`: the test's name.
    pub name: String,
    /// The path from the crate root, e.g. `tests/syntax/001_source.flow`.
    pub path: String,
    pub text: String,
}

/// The `*.flow` files directly under `dir` (relative to the crate root), sorted by name.
pub fn cases(dir: &str) -> Vec<Case> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "flow"))
            .collect(),
        Err(e) => panic!("cannot read {dir}: {e}"),
    };
    paths.sort();
    paths
        .into_iter()
        .map(|p| Case {
            name: p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            path: p.to_string_lossy().into_owned(),
            text: std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display())),
        })
        .collect()
}

/// The values of `# key: a, b` lines in the comment block at the top of a script.
pub fn header_values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| {
            l.trim_start_matches('#')
                .trim()
                .strip_prefix(key)
                .map(|r| r.trim().to_string())
        })
        .flat_map(|v| {
            v.split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The snapshot file of a case.
pub fn snapshot_path(suite: &str, case: &str) -> PathBuf {
    Path::new("tests/snapshots")
        .join(suite)
        .join(format!("{case}.snap"))
}

fn with_newline(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

/// The text of a snapshot: every source `(path, text)`, then the output.
pub fn snapshot_text(sources: &[(&str, &str)], output: &str) -> String {
    let mut s = String::new();
    for (path, text) in sources {
        s.push_str(&format!("----- SOURCE {path}\n"));
        s.push_str(&with_newline(text));
    }
    s.push_str("----- OUTPUT\n");
    s.push_str(&with_newline(output));
    s
}

/// Compares `output` of the case `suite/case` with its snapshot (see the module doc).
pub fn check(
    suite: &str,
    case: &str,
    sources: &[(&str, &str)],
    output: &str,
) -> Result<(), Failed> {
    let path = snapshot_path(suite, case);
    let actual = snapshot_text(sources, output);
    let expected = std::fs::read_to_string(&path).ok();
    if expected.as_deref() == Some(actual.as_str()) {
        return Ok(());
    }
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v != "0" && !v.is_empty()) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, &actual).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("updated {}", path.display());
        return Ok(());
    }
    Err(match expected {
        None => format!(
            "no snapshot {} (run with UPDATE_SNAPSHOTS=1 to write it); the output is:\n{actual}",
            path.display()
        ),
        Some(expected) => format!(
            "{} differs (run with UPDATE_SNAPSHOTS=1 to accept):\n{}",
            path.display(),
            similar::TextDiff::from_lines(&expected, &actual)
                .unified_diff()
                .context_radius(3)
                .header("snapshot", "actual")
        ),
    }
    .into())
}

/// A case that checks that every snapshot of `suite` belongs to one of `names` (a renamed or
/// removed case must not leave its old snapshot behind).
pub fn no_stale_snapshots(suite: &'static str, names: Vec<String>) -> Trial {
    Trial::test("snapshots_all_have_a_case", move || {
        let dir = Path::new("tests/snapshots").join(suite);
        let mut stale = Vec::new();
        for e in std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .flatten()
        {
            let p = e.path();
            let stem = p.file_stem().unwrap_or_default().to_string_lossy();
            if p.extension().is_some_and(|x| x == "snap") && !names.iter().any(|n| *n == stem) {
                stale.push(p.display().to_string());
            }
        }
        if stale.is_empty() {
            Ok(())
        } else {
            Err(format!("snapshots without a case: {stale:?}").into())
        }
    })
}

/// The data-driven suite `suite`: one test per `*.flow` under `dir`, named after the file, whose
/// `output` is compared with `tests/snapshots/<suite>/<case>.snap`; plus the stale-snapshot test.
pub fn suite(
    suite: &'static str,
    dir: &str,
    output: fn(&Case) -> Result<String, Failed>,
) -> Vec<Trial> {
    let cases = cases(dir);
    let names = cases.iter().map(|c| c.name.clone()).collect();
    let mut trials: Vec<Trial> = cases
        .into_iter()
        .map(|case| {
            Trial::test(case.name.clone(), move || {
                let out = output(&case)?;
                check(suite, &case.name, &[(&case.path, &case.text)], &out)
            })
        })
        .collect();
    trials.push(no_stale_snapshots(suite, names));
    trials
}

/// Runs the trials with the command-line arguments (`cargo test --test SUITE FILTER`).
pub fn run(trials: Vec<Trial>) -> ! {
    libtest_mimic::run(&Arguments::from_args(), trials).exit()
}

/// Runs the flow binary in `dir`: its exit code (-1 when killed), stdout and stderr.
pub fn flow_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the flow binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `PATH` with the DuckDB CLI's venv (`~/.cache/flow-duckdb/venv/bin`, where
/// `.ci/setup/20-duckdb.sh` installs it) appended; an error saying what to install when no
/// `duckdb` is found on it.
pub fn duckdb_path() -> Result<String, String> {
    let mut parts: Vec<PathBuf> =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    if let Some(home) = std::env::var_os("HOME") {
        parts.push(Path::new(&home).join(".cache/flow-duckdb/venv/bin"));
    }
    if !parts.iter().any(|d| d.join("duckdb").is_file()) {
        return Err("these tests need the DuckDB CLI: `pip install duckdb-cli` (.ci/setup/20-duckdb.sh installs it into ~/.cache/flow-duckdb/venv)".into());
    }
    let joined = std::env::join_paths(parts).map_err(|e| format!("PATH: {e}"))?;
    Ok(joined.to_string_lossy().into_owned())
}

/// Whether process `pid` is running: a process that exited and was reaped has no /proc entry; a
/// zombie is not running.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
