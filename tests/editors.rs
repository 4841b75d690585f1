//! Editors against the real server and tools:
//! - `nvim::*`: headless Neovim (the Debian package) with its built-in LSP client and the
//!   plugin of `editors/nvim` opens an example with an error: diagnostics and a hover arrive.
//! - `vscode::*`: the TextMate grammar checked by `vscode-tmgrammar-test` on the annotated
//!   samples of `editors/vscode/test/`, and the extension's TypeScript checked by `tsc`.
//!
//! The tools are installed by `.ci/setup/50-editors.sh` (neovim from Debian; the npm packages
//! into a cache, linked as `editors/vscode/node_modules`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Runs a command with a deadline (killed after it).
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e} (run .ci/setup/50-editors.sh)"));
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} did not finish within {limit:?}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn nvim_shows_diagnostics_and_hover_from_flow_lsp() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::copy(
        Path::new(REPO).join("examples/data/trips.csv"),
        dir.path().join("data/trips.csv"),
    )
    .unwrap();
    let script = std::fs::read_to_string(Path::new(REPO).join("examples/trips.flow")).unwrap();
    // One misspelt field, in a stage after a correct use of `fare`.
    let broken = script.replacen(
        "| filter",
        "| filter fare > 0.0 | filter distanse > 0.0 | filter",
        1,
    );
    assert_ne!(
        broken, script,
        "examples/trips.flow has no `| filter` any more"
    );
    let file = dir.path().join("trips.flow");
    std::fs::write(&file, &broken).unwrap();
    let out_file = dir.path().join("result.json");
    let out = run(
        Command::new("nvim")
            .args(["--headless", "--clean", "-u"])
            .arg(Path::new(REPO).join("tests/editors/nvim_init.lua"))
            .arg("-c")
            .arg(format!("luafile {REPO}/tests/editors/nvim_check.lua"))
            .env("FLOW_REPO", REPO)
            .env("FLOW_BIN", env!("CARGO_BIN_EXE_flow"))
            .env("FLOW_NVIM_FILE", &file)
            .env("FLOW_NVIM_OUT", &out_file),
        Duration::from_secs(60),
    );
    let text = std::fs::read_to_string(&out_file).unwrap_or_else(|_| {
        panic!(
            "nvim wrote no result\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    assert_eq!(r["filetype"], "flow", "{r}");
    assert_eq!(r["filter_syntax"], "flowStage", "{r}");
    let diags = r["diagnostics"].as_array().unwrap();
    let d = diags
        .iter()
        .find(|d| d["code"] == "E0011")
        .unwrap_or_else(|| panic!("{r}"));
    let line = broken[..broken.find("distanse").unwrap()]
        .matches('\n')
        .count();
    assert_eq!(d["lnum"], line, "{r}");
    let hover = r["hover"].as_array().unwrap();
    assert!(
        hover
            .iter()
            .any(|h| h.as_str().unwrap().contains("fare: float")),
        "{r}"
    );
}

fn vscode_dir() -> PathBuf {
    Path::new(REPO).join("editors/vscode")
}

fn node_bin(tool: &str) -> PathBuf {
    let p = vscode_dir().join("node_modules/.bin").join(tool);
    assert!(
        p.exists(),
        "{} is missing: run .ci/setup/50-editors.sh",
        p.display()
    );
    p
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn vscode_grammar_passes_tmgrammar_test_on_the_samples() {
    let out = run(
        Command::new(node_bin("vscode-tmgrammar-test"))
            .current_dir(vscode_dir())
            .args(["-g", "syntaxes/flow.tmLanguage.json", "test/*.flow"]),
        Duration::from_secs(120),
    );
    assert_ok("vscode-tmgrammar-test", &out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tokens.flow run successfuly"), "{text}");
}

#[test]
fn vscode_extension_type_checks_with_tsc() {
    let out = run(
        Command::new(node_bin("tsc"))
            .current_dir(vscode_dir())
            .args(["-p", ".", "--noEmit"]),
        Duration::from_secs(180),
    );
    assert_ok("tsc", &out);
}

/// The keywords of the lexer: every `#[token("word")]` that is a word.
fn lexer_keywords() -> Vec<String> {
    let lexer = std::fs::read_to_string(Path::new(REPO).join("src/syntax/lexer.rs")).unwrap();
    let words: Vec<String> = lexer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("#[token(\"")?.split('"').next())
        .filter(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
        .map(String::from)
        .collect();
    assert!(
        words.len() >= 15,
        "keywords not found in the lexer: {words:?}"
    );
    words
}

fn words(text: &str) -> std::collections::HashSet<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect()
}

#[test]
fn every_keyword_is_highlighted_sampled_and_completed() {
    let grammar: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(vscode_dir().join("syntaxes/flow.tmLanguage.json")).unwrap(),
    )
    .unwrap();
    let mut regexes = String::new();
    let mut stack = vec![&grammar];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(serde_json::Value::String(m)) = o.get("match") {
                    regexes.push_str(&m.replace("\\b", " "));
                    regexes.push(' ');
                }
                stack.extend(o.values());
            }
            serde_json::Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    let sample = std::fs::read_to_string(vscode_dir().join("test/tokens.flow")).unwrap();
    let sample: String = sample
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let vim = std::fs::read_to_string(Path::new(REPO).join("editors/vim/syntax/flow.vim")).unwrap();
    let vim_keywords: String = vim
        .lines()
        .filter(|l| l.starts_with("syn keyword"))
        .collect::<Vec<_>>()
        .join(" ");
    for k in lexer_keywords() {
        assert!(
            words(&regexes).contains(k.as_str()),
            "the TextMate grammar misses `{k}`"
        );
        assert!(
            words(&sample).contains(k.as_str()),
            "test/tokens.flow has no `{k}`"
        );
        assert!(
            words(&vim_keywords).contains(k.as_str()),
            "the vim syntax misses `{k}`"
        );
        assert!(
            flow::lsp::KEYWORDS.contains(&k.as_str()),
            "flow lsp does not complete `{k}`"
        );
    }
}
