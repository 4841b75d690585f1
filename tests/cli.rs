//! The command line's own promises: exit codes scripts can rely on, whatever happens to its
//! standard streams. Runs the real binary.

use std::fs::OpenOptions;
use std::process::{Command, Stdio};

fn flow(args: &[&str], stdout: Stdio, stderr: Stdio) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .output()
        .expect("the flow binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn dev_full() -> Stdio {
    Stdio::from(
        OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full exists on Linux"),
    )
}

const GOOD: &str = "examples/trips.flow";
const BAD: &str = "tests/diagnostics/020_unknown_field_filter.flow";

#[test]
fn explain_into_a_full_device_fails_instead_of_losing_the_plan() {
    let (code, err) = flow(&["explain", GOOD], dev_full(), Stdio::piped());
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot write standard output"), "{err}");
}

#[test]
fn check_json_into_a_full_device_fails() {
    let (code, err) = flow(
        &["check", "--format", "json", BAD],
        dev_full(),
        Stdio::piped(),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot write standard output"), "{err}");
}

#[test]
fn an_unwritable_stderr_never_panics() {
    // Diagnostics go to stderr; with stderr unwritable the exit code still tells (1, not 101).
    let (code, _) = flow(&["check", BAD], Stdio::null(), dev_full());
    assert_eq!(code, Some(1));
    let (code, _) = flow(&["check", GOOD], Stdio::null(), dev_full());
    assert_eq!(code, Some(0));
    let (code, _) = flow(&["explain-error", "E9999"], Stdio::null(), dev_full());
    assert_eq!(code, Some(2));
}

#[test]
fn a_closed_stdout_pipe_is_not_an_error() {
    // The reader is gone before flow writes, as with `| head -0`: every write gets EPIPE.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let (code, err) = flow(&["explain", GOOD], Stdio::from(writer), Stdio::piped());
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("cannot write"), "{err}");
}
