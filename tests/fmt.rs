//! `flow fmt`. Two kinds of cases, each its own named test:
//! - `[layout] <case>`: every `tests/fmt/*.flow` formatted, compared with
//!   `tests/snapshots/fmt/<case>.snap` (tricky layouts: long pipelines, nested `if`, long maps,
//!   comments between stages, a long fn signature);
//! - `roundtrip::<path>`: every `.flow` file of the repo (examples, stdlib, the syntax, types and
//!   diagnostics suites, bench jobs). One that parses cleanly must format idempotently, to the
//!   same AST (the span-free `flow::syntax::dump`), with the same comments in the same order;
//!   one with syntax errors must be refused. Examples and stdlib modules must already be
//!   formatted.
//!
//! Plus `readme::snippet_N`: every ```` ```flow ```` block of README.md is formatted; and `cli::*`: `flow fmt` on stdin, in place, `--check`, and a file with errors.

mod common;

use common::Case;
use flow::fmt::{FmtError, format};
use flow::span::FileId;
use libtest_mimic::{Failed, Trial};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn comments(text: &str) -> Vec<String> {
    let (_, _, spans) = flow::syntax::parse_with_comments(text, FileId(0));
    spans
        .iter()
        .map(|&(a, b)| text[a..b].trim_end().to_string())
        .collect()
}

fn dump(text: &str) -> String {
    flow::syntax::dump::module(&flow::syntax::parse(text, FileId(0)).0)
}

/// Checks the properties of formatting a clean file; returns the formatted text.
fn formatted(path: &str, text: &str) -> Result<String, Failed> {
    let once = match format(text, FileId(0)) {
        Ok(t) => t,
        Err(FmtError::Syntax(d)) => return Err(format!("{path}: not formatted: {d:?}").into()),
        Err(FmtError::Changed(why)) => return Err(format!("{path}: {why}").into()),
    };
    let twice = format(&once, FileId(0)).map_err(|e| format!("{path}: second pass: {e:?}"))?;
    if twice != once {
        return Err(format!(
            "{path}: not idempotent:\n{}",
            similar::TextDiff::from_lines(&once, &twice).unified_diff()
        )
        .into());
    }
    if dump(&once) != dump(text) {
        return Err(format!("{path}: the formatted text parses differently:\n{once}").into());
    }
    if comments(&once) != comments(text) {
        return Err(format!(
            "{path}: comments changed: {:?} became {:?}",
            comments(text),
            comments(&once)
        )
        .into());
    }
    if once.lines().any(|l| l.ends_with(' ')) {
        return Err(format!("{path}: a line ends in a space:\n{once}").into());
    }
    Ok(once)
}

fn flow_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            flow_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "flow") {
            out.push(p);
        }
    }
}

fn roundtrip(path: &Path) -> Result<(), Failed> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let (module, diags) = flow::syntax::parse(&text, FileId(0));
    let clean = !diags.iter().any(|d| d.is_error())
        && !module
            .items
            .iter()
            .any(|i| matches!(i, flow::syntax::ast::Item::Error(_)));
    if !clean {
        return match format(&text, FileId(0)) {
            Err(FmtError::Syntax(d)) if !d.is_empty() => Ok(()),
            other => Err(format!("{name} has syntax errors but fmt gave {other:?}").into()),
        };
    }
    let out = formatted(&name, &text)?;
    let must_be_formatted = name.starts_with("examples") || name.starts_with("stdlib");
    if must_be_formatted && out != text {
        return Err(format!(
            "{name} is not formatted (run `flow fmt {name}`):\n{}",
            similar::TextDiff::from_lines(&text, &out).unified_diff()
        )
        .into());
    }
    Ok(())
}

fn layout(case: &Case) -> Result<String, Failed> {
    formatted(&case.path, &case.text)
}

fn flow_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flow"))
}

const UGLY: &str = "source t = csv(\"t.csv\")   # the trips\nt|filter x>1|sink stdout()\n";
const PRETTY: &str = "source t = csv(\"t.csv\") # the trips\nt | filter x > 1 | sink stdout()\n";

fn cli_stdin_to_stdout() -> Result<(), Failed> {
    let mut child = flow_bin()
        .arg("fmt")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    use std::io::Write;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(UGLY.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() || String::from_utf8_lossy(&out.stdout) != PRETTY {
        return Err(format!(
            "status {:?}, stdout {:?}, stderr {:?}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

fn cli_check_then_in_place() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let ugly = dir.path().join("ugly.flow");
    let pretty = dir.path().join("pretty.flow");
    std::fs::write(&ugly, UGLY)?;
    std::fs::write(&pretty, PRETTY)?;
    let out = flow_bin()
        .arg("fmt")
        .arg("--check")
        .arg(&ugly)
        .arg(&pretty)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.code() != Some(1) || stdout.trim() != ugly.display().to_string() {
        return Err(format!("--check: status {:?}, stdout {stdout:?}", out.status).into());
    }
    if std::fs::read_to_string(&ugly)? != UGLY {
        return Err("--check changed the file".into());
    }
    let out = flow_bin().arg("fmt").arg(&ugly).arg(&pretty).output()?;
    if !out.status.success() || std::fs::read_to_string(&ugly)? != PRETTY {
        return Err(format!("in place: status {:?}", out.status).into());
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())?.flatten().collect();
    if left.len() != 2 {
        return Err(format!("temporary files left behind: {left:?}").into());
    }
    let out = flow_bin().arg("fmt").arg("--check").arg(&ugly).output()?;
    if !out.status.success() || !out.stdout.is_empty() {
        return Err(format!("--check after fmt: status {:?}", out.status).into());
    }
    Ok(())
}

fn cli_syntax_error_is_not_formatted() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad.flow");
    let text = "source t = csv(\"t.csv\")\nt |  filter x >\n";
    std::fs::write(&bad, text)?;
    let out = flow_bin().arg("fmt").arg(&bad).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1)
        || !stderr.contains("E0004")
        || !stderr.contains("not formatted")
    {
        return Err(format!("status {:?}, stderr {stderr}", out.status).into());
    }
    if std::fs::read_to_string(&bad)? != text {
        return Err("the file with errors was changed".into());
    }
    Ok(())
}

/// The ```` ```flow ```` blocks of README.md.
fn readme_snippets() -> Vec<String> {
    let readme = std::fs::read_to_string("README.md").unwrap_or_default();
    let mut out = Vec::new();
    let mut rest = readme.as_str();
    while let Some(start) = rest.find("```flow\n") {
        let body = &rest[start + "```flow\n".len()..];
        let Some(end) = body.find("```") else { break };
        out.push(body[..end].to_string());
        rest = &body[end..];
    }
    assert!(!out.is_empty(), "README.md has no flow snippet");
    out
}

fn main() {
    let mut trials: Vec<Trial> = common::suite("fmt", "tests/fmt", layout)
        .into_iter()
        .map(|t| t.with_kind("layout"))
        .collect();
    let mut files = Vec::new();
    for dir in [
        "examples",
        "stdlib",
        "tests/syntax",
        "tests/types",
        "tests/diagnostics",
        "tests/fmt",
        "bench/jobs",
    ] {
        flow_files(Path::new(dir), &mut files);
    }
    files.sort();
    for f in files {
        let name = format!("roundtrip::{}", f.display());
        trials.push(Trial::test(name, move || roundtrip(&f)));
    }
    for (i, snippet) in readme_snippets().into_iter().enumerate() {
        trials.push(Trial::test(
            format!("readme::snippet_{}", i + 1),
            move || {
                let want = format(&snippet, FileId(0))
                    .map_err(|e| format!("README.md snippet {}: not formatted: {e:?}", i + 1))?;
                if want != snippet {
                    return Err(format!(
                        "README.md snippet {} is not formatted (`flow fmt` gives):\n{want}",
                        i + 1
                    )
                    .into());
                }
                Ok(())
            },
        ));
    }
    trials.push(Trial::test("cli::stdin_to_stdout", cli_stdin_to_stdout));
    trials.push(Trial::test(
        "cli::check_then_in_place",
        cli_check_then_in_place,
    ));
    trials.push(Trial::test(
        "cli::syntax_error_is_not_formatted",
        cli_syntax_error_is_not_formatted,
    ));
    common::run(trials)
}
