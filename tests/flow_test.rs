//! `flow test`: the examples' tests pass; a deliberately wrong expectation fails with a readable
//! diff and exit code 1; a job failure fails the test; `--format json`; nothing is written.

use std::process::Command;

fn flow_test(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .arg("test")
        .args(args)
        .output()
        .expect("flow runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_examples_tests_pass() {
    let (code, out, err) = flow_test(&["examples/trips.flow", "examples/sales.flow"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 tests: 3 passed, 0 failed"), "{out}");
    assert!(
        out.contains("test examples/trips.flow \"a free ride is no long trip\" ... ok"),
        "{out}"
    );
}

#[test]
fn the_examples_directory_is_discovered() {
    let (code, out, err) = flow_test(&["examples"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("passed, 0 failed"), "{out}");
}

const SCRIPT: &str = r#"schema P { id: int, name: str, score: float? }
source people: P = csv("people.csv", header: true)
let good = people | filter (score ?? 0.0) > 1.0 | map { id, name, half: (score ?? 0.0) / 2.0 }
good | sink csv("out/good.csv")
people | map { id, ratio: 10 / id } | sink jsonl("out/ratio.jsonl")
"#;

fn script_dir(tests: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("people.csv"), "id,name,score\n1,a,3.0\n").expect("write");
    std::fs::write(dir.path().join("s.flow"), format!("{SCRIPT}\n{tests}")).expect("write");
    dir
}

#[test]
fn a_wrong_expectation_fails_with_a_diff_and_writes_nothing() {
    let dir = script_dir(
        r#"test "right" {
  given people {
    { id: 1, name: "a", score: 3.0 },
    { id: 2, name: "b" },
  }
  expect good { { id: 1, name: "a", half: 1.5 } }
}

test "wrong" {
  given people {
    { id: 1, name: "a", score: 3.0 },
    { id: 2, name: "b", score: 5.0 },
  }
  expect sink "out/good.csv" ordered {
    { id: 2, name: "b", half: 2.5 },
    { id: 1, name: "a", half: 9.0 },
  }
}
"#,
    );
    let path = dir.path().join("s.flow");
    let (code, out, err) = flow_test(&[&path.to_string_lossy()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("\"right\" ... ok"), "{out}");
    assert!(out.contains("\"wrong\" ... FAILED"), "{out}");
    assert!(
        out.contains("- { id: 1, name: \"a\", half: 9.0 }    (expected, missing)"),
        "{out}"
    );
    assert!(
        out.contains("+ { id: 1, name: \"a\", half: 1.5 }    (not expected)"),
        "{out}"
    );
    assert!(out.contains("2 tests: 1 passed, 1 failed"), "{out}");
    assert!(!dir.path().join("out").exists(), "a test wrote output");
}

#[test]
fn rows_in_another_order_fail_an_ordered_expectation_only() {
    let dir = script_dir(
        r#"test "any order" {
  given people { { id: 1, name: "a", score: 3.0 }, { id: 2, name: "b", score: 5.0 } }
  expect good { { id: 2, name: "b", half: 2.5 }, { id: 1, name: "a", half: 1.5 } }
}

test "in order" {
  given people { { id: 1, name: "a", score: 3.0 }, { id: 2, name: "b", score: 5.0 } }
  expect good ordered { { id: 2, name: "b", half: 2.5 }, { id: 1, name: "a", half: 1.5 } }
}
"#,
    );
    let path = dir.path().join("s.flow");
    let (code, out, _) = flow_test(&[&path.to_string_lossy()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"any order\" ... ok"), "{out}");
    assert!(out.contains("\"in order\" ... FAILED"), "{out}");
    assert!(out.contains("the rows came in another order"), "{out}");
}

#[test]
fn a_row_error_fails_the_test_naming_the_place() {
    let dir = script_dir(
        r#"test "division by zero" {
  given people { { id: 0, name: "z" } }
  expect sink "out/ratio.jsonl" {}
}
"#,
    );
    let path = dir.path().join("s.flow");
    let (code, out, _) = flow_test(&[&path.to_string_lossy()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the job failed"), "{out}");
    assert!(out.contains("division by zero"), "{out}");
}

#[test]
fn json_format_lists_every_result() {
    let dir = script_dir(
        r#"test "none" {
  given people {}
  expect good {}
}
"#,
    );
    let path = dir.path().join("s.flow");
    let (code, out, err) = flow_test(&["--format", "json", &path.to_string_lossy()]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v[0]["name"], "none");
    assert_eq!(v[0]["passed"], true);
}

#[test]
fn a_script_that_does_not_check_runs_no_test() {
    let dir = script_dir(
        r#"test "bad" {
  given people { { id: "x", name: "a" } }
  expect good {}
}
"#,
    );
    let path = dir.path().join("s.flow");
    let (code, out, err) = flow_test(&[&path.to_string_lossy()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("E0224"), "{err}");
    assert!(err.contains("does not check"), "{err}");
}
