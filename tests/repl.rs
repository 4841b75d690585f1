//! `flow repl --no-tty` sessions: every `tests/repl/*.repl` is piped through the binary's
//! standard input (from the crate root, so `:load examples/…` works) and its standard output and
//! exit code are compared with `tests/snapshots/repl/<case>.snap`. One test per file:
//! `cargo test --release --test repl preview`. `UPDATE_SNAPSHOTS=1` rewrites the snapshots.

mod common;

use libtest_mimic::{Failed, Trial};
use std::io::Write;
use std::process::{Command, Stdio};

fn session(input: &str, env: &[(&str, &str)]) -> Result<(String, i32), Failed> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flow"));
    cmd.args(["repl", "--no-tty"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start flow: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("cannot write the session: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("flow repl did not finish: {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.is_empty() {
        text.push_str("----- STDERR\n");
        text.push_str(&err);
    }
    Ok((text, out.status.code().unwrap_or(-1)))
}

fn cases() -> Vec<(String, String, String)> {
    let mut paths: Vec<_> = std::fs::read_dir("tests/repl")
        .expect("tests/repl")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "repl"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&p).expect("readable case");
            (name, p.to_string_lossy().into_owned(), text)
        })
        .collect()
}

/// `:save` writes the declarations as a formatted script that `flow check` accepts.
fn save_writes_a_formatted_script() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("saved.flow");
    let input = format!(
        "schema P {{ x: int }}\nfn   twice(v: int) -> int = v*2\nfn twice(v: int) -> int = v * 2\n:save {}\n",
        path.display()
    );
    let (out, code) = session(&input, &[])?;
    if code != 0 || !out.contains("saved 2 declarations") {
        return Err(format!("exit {code}: {out}").into());
    }
    let saved = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let want = "schema P { x: int }\n\nfn twice(v: int) -> int = v * 2\n";
    if saved != want {
        return Err(format!("saved:\n{saved}\nwanted:\n{want}").into());
    }
    let c = flow::driver::check_paths(&[&path]);
    if c.has_errors() {
        return Err("the saved script does not check".into());
    }
    Ok(())
}

fn main() {
    let cases = cases();
    let names = cases.iter().map(|c| c.0.clone()).collect();
    let mut trials: Vec<Trial> = cases
        .into_iter()
        .map(|(name, path, text)| {
            Trial::test(name.clone(), move || {
                let (out, code) = session(&text, &[])?;
                let out = format!("{out}----- EXIT {code}\n");
                common::check("repl", &name, &[(&path, &text)], &out)
            })
        })
        .collect();
    trials.push(Trial::test(
        "save_writes_a_formatted_script",
        save_writes_a_formatted_script,
    ));
    trials.push(common::no_stale_snapshots("repl", names));
    common::run(trials)
}
