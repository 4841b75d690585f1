//! `flow test [PATH…]`: runs the `test "name" { … }` items of scripts (a directory: its `*.flow`
//! files; no path: those of the working directory). Exit 0 when every test passes, 1 when one
//! fails or a script does not check, 2 on usage errors.

use crate::testing::{self, TestResult};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TestArgs {
    /// Scripts, or directories whose `*.flow` files are tested.
    paths: Vec<PathBuf>,
    /// `json` prints one JSON array of results for tools.
    #[arg(long, value_enum, default_value = "text")]
    format: super::Format,
    #[arg(long, value_enum, default_value = "auto")]
    color: super::ColorChoice,
}

fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths.to_vec()
    };
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "flow") && f.is_file())
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

pub fn cmd_test(args: TestArgs) -> ExitCode {
    let files = match files(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            super::err(&format!("flow test: {e}"));
            return ExitCode::from(2);
        }
    };
    let color = super::use_color(args.color);
    let json = args.format == super::Format::Json;
    let mut results: Vec<TestResult> = Vec::new();
    let mut broken = 0;
    for f in &files {
        match testing::run_file(f, color) {
            Ok(rs) => {
                if !json {
                    for r in &rs {
                        let status = if r.passed() { "ok" } else { "FAILED" };
                        let line = format!("test {} {:?} ... {status}", r.file, r.name);
                        if let Err(code) = super::out(&line) {
                            return code;
                        }
                        if !r.passed()
                            && let Err(code) = super::out(testing::describe(&r.failures).trim_end())
                        {
                            return code;
                        }
                    }
                }
                results.extend(rs);
            }
            Err(diags) => {
                broken += 1;
                super::err(&diags);
                super::err(&format!(
                    "flow test: {} does not check; its tests did not run",
                    f.display()
                ));
            }
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    if json {
        let all: Vec<serde_json::Value> = results.iter().map(testing::to_json).collect();
        if let Err(code) = super::out(&serde_json::to_string_pretty(&all).unwrap_or_default()) {
            return code;
        }
    } else {
        let summary = format!(
            "{} test{}: {} passed, {failed} failed{}",
            results.len(),
            if results.len() == 1 { "" } else { "s" },
            results.len() - failed,
            if broken > 0 {
                format!(
                    "; {broken} file{} did not check",
                    if broken == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            }
        );
        if let Err(code) = super::out(&summary) {
            return code;
        }
    }
    if failed > 0 || broken > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
