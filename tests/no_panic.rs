//! The front end must never panic, whatever text it is given.
//!
//! Every `examples/*.flow`, `stdlib/*.flow` and `tests/diagnostics/**/*.flow` script is checked
//! as is, then thousands of mutated versions of them are fed to `flow::driver::check_text`:
//! random character insertions (biased toward the language's punctuation), byte-range deletions,
//! swaps of whitespace-separated tokens, duplicated lines, truncation at a random byte, random
//! bytes (invalid UTF-8 included, converted lossily). A panic fails the test, and proptest
//! shrinks it to a small reproducing mutation.
//!
//! This is the stable, in-CI counterpart of the cargo-fuzz target in `fuzz/`. Each corpus file
//! and each degenerate input is its own test (`corpus::examples/trips.flow`, `degenerate::7`).

use libtest_mimic::{Arguments, Failed, Trial};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::path::{Path, PathBuf};

/// `(file name, text)` of every corpus script, sorted by path so runs are reproducible.
fn corpus() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<PathBuf> = Vec::new();
    for dir in [
        "examples",
        "stdlib",
        "tests/diagnostics",
        "tests/diagnostics/multi",
        "tests/syntax",
        "tests/types",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "flow") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let bytes = std::fs::read(&p).ok()?;
            // The full path, so relative data paths resolve as they do for `flow check FILE`.
            let name = p.to_string_lossy().into_owned();
            Some((name, String::from_utf8_lossy(&bytes).into_owned()))
        })
        .collect()
}

/// Characters that matter to the lexer and parser, inserted more often than random ones.
const INTERESTING: &[char] = &[
    '{', '}', '(', ')', '|', '"', '\\', '#', '@', '?', ':', ',', '.', '*', '=', '!', '<', '>', '&',
    '-', '+', '/', '%', '\n', ' ', '0', '9', 'e', '_', '\u{0}', '\u{feff}', 'é', '≥', '🦀',
];

#[derive(Clone, Debug)]
enum Mutation {
    /// Insert a character at a byte position (rounded down to a char boundary).
    InsertChar(usize, char),
    /// Delete up to `len` bytes from a position (the result is converted lossily).
    DeleteBytes(usize, usize),
    /// Swap two whitespace-separated tokens.
    SwapTokens(usize, usize),
    /// Duplicate a line in place.
    DuplicateLine(usize),
    /// Delete a whole line.
    DeleteLine(usize),
    /// Keep only the text before a byte position.
    Truncate(usize),
    /// Overwrite or insert random bytes (may be invalid UTF-8; converted lossily).
    RandomBytes(usize, Vec<u8>, bool),
    /// Replace a token with a keyword or operator.
    ReplaceToken(usize, &'static str),
}

const TOKENS: &[&str] = &[
    "mode",
    "use",
    "schema",
    "source",
    "fn",
    "let",
    "filter",
    "map",
    "group",
    "union",
    "limit",
    "sink",
    "if",
    "else",
    "null",
    "true",
    "false",
    "int",
    "float",
    "str",
    "bool",
    "timestamp",
    "|",
    "||",
    "&&",
    "??",
    "==",
    "->",
    "=",
    "{",
    "}",
    "(",
    ")",
    ":",
    ",",
    "*",
    "@parallel(2)",
    "@on_error(skip)",
    "csv(\"x.csv\")",
    "count()",
    "sum(x)",
    "std.text",
    "text.slug(",
    "\"",
    "1e999",
    "99999999999999999999",
    "-",
    "!",
    "?",
    "0.",
    ".5",
    "##",
    "#",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let any_pos = any::<usize>();
    prop_oneof![
        4 => (any_pos, prop_oneof![3 => prop::sample::select(INTERESTING), 1 => any::<char>()])
            .prop_map(|(p, c)| Mutation::InsertChar(p, c)),
        3 => (any_pos, 1usize..12).prop_map(|(p, n)| Mutation::DeleteBytes(p, n)),
        3 => (any_pos, any::<usize>()).prop_map(|(a, b)| Mutation::SwapTokens(a, b)),
        2 => any_pos.prop_map(Mutation::DuplicateLine),
        2 => any_pos.prop_map(Mutation::DeleteLine),
        1 => any_pos.prop_map(Mutation::Truncate),
        2 => (any_pos, prop::collection::vec(any::<u8>(), 1..8), any::<bool>())
            .prop_map(|(p, b, o)| Mutation::RandomBytes(p, b, o)),
        3 => (any_pos, prop::sample::select(TOKENS))
            .prop_map(|(p, t)| Mutation::ReplaceToken(p, t)),
    ]
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte ranges of the whitespace-separated tokens of `s`.
fn token_spans(s: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(b)) => {
                spans.push((b, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(b) = start {
        spans.push((b, s.len()));
    }
    spans
}

fn apply(text: &str, m: &Mutation) -> String {
    let len = text.len();
    // Positions are taken modulo the length (+1 so the end is reachable).
    let at = |p: usize| floor_char_boundary(text, p % (len + 1));
    match m {
        Mutation::InsertChar(p, c) => {
            let i = at(*p);
            let mut s = String::with_capacity(len + 4);
            s.push_str(&text[..i]);
            s.push(*c);
            s.push_str(&text[i..]);
            s
        }
        Mutation::DeleteBytes(p, n) => {
            let i = *p % (len + 1);
            let j = (i + n).min(len);
            let mut b = text.as_bytes()[..i].to_vec();
            b.extend_from_slice(&text.as_bytes()[j..]);
            String::from_utf8_lossy(&b).into_owned()
        }
        Mutation::SwapTokens(a, b) => {
            let spans = token_spans(text);
            if spans.len() < 2 {
                return text.to_string();
            }
            let (mut x, mut y) = (a % spans.len(), b % spans.len());
            if x == y {
                return text.to_string();
            }
            if x > y {
                std::mem::swap(&mut x, &mut y);
            }
            let (xs, xe) = spans[x];
            let (ys, ye) = spans[y];
            let mut s = String::with_capacity(len);
            s.push_str(&text[..xs]);
            s.push_str(&text[ys..ye]);
            s.push_str(&text[xe..ys]);
            s.push_str(&text[xs..xe]);
            s.push_str(&text[ye..]);
            s
        }
        Mutation::DuplicateLine(p) | Mutation::DeleteLine(p) => {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            if lines.is_empty() {
                return text.to_string();
            }
            let k = p % lines.len();
            let mut s = String::with_capacity(len * 2);
            for (i, line) in lines.iter().enumerate() {
                if i == k {
                    if matches!(m, Mutation::DeleteLine(_)) {
                        continue;
                    }
                    s.push_str(line);
                    if !line.ends_with('\n') {
                        s.push('\n');
                    }
                }
                s.push_str(line);
            }
            s
        }
        Mutation::Truncate(p) => text[..at(*p)].to_string(),
        Mutation::RandomBytes(p, bytes, overwrite) => {
            let i = *p % (len + 1);
            let mut b = text.as_bytes()[..i].to_vec();
            b.extend_from_slice(bytes);
            let rest = if *overwrite {
                (i + bytes.len()).min(len)
            } else {
                i
            };
            b.extend_from_slice(&text.as_bytes()[rest..]);
            String::from_utf8_lossy(&b).into_owned()
        }
        Mutation::ReplaceToken(p, t) => {
            let spans = token_spans(text);
            if spans.is_empty() {
                return t.to_string();
            }
            let (s0, e0) = spans[p % spans.len()];
            format!("{}{}{}", &text[..s0], t, &text[e0..])
        }
    }
}

fn degenerate_inputs() -> Vec<String> {
    let long_pipe = "x | ".repeat(10_000);
    let deep_parens = format!("{}{}", "(".repeat(200), ")".repeat(200));
    let deep_if = "fn f(x: int) -> int = ".to_string()
        + &"if x > 0 { ".repeat(100)
        + "1"
        + &" } else { 0 }".repeat(100);
    vec![
        String::new(),
        " ".into(),
        "\n\n\n".into(),
        "#".into(),
        "##".into(),
        "\"".into(),
        "\"\\".into(),
        "@".into(),
        "|".into(),
        "\u{feff}".into(),
        "\u{0}".into(),
        "source".into(),
        "source x".into(),
        "source x =".into(),
        "source x = csv(".into(),
        "let".into(),
        "let x = x".into(),
        "fn".into(),
        "fn f(".into(),
        "schema S {".into(),
        "mode".into(),
        "mode single(".into(),
        "use std.".into(),
        "x | sink".into(),
        "99999999999999999999999999999999".into(),
        "1e99999".into(),
        "0x".into(),
        long_pipe,
        format!("fn f(x: int) -> int = {deep_parens}"),
        deep_if,
        "fn a(x: int) -> int = b(x) fn b(x: int) -> int = a(x)".into(),
        "fn a(x: int) -> int = a(a(a(a(x))))".into(),
    ]
}

/// ~3000 mutated scripts; proptest catches a panic and shrinks it to a small mutation.
fn mutated_scripts_do_not_panic() -> Result<(), Failed> {
    let files = corpus_cached();
    if files.is_empty() {
        return Err("no corpus".into());
    }
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    });
    let strategy = (
        any::<prop::sample::Index>(),
        prop::collection::vec(mutation(), 1..6),
    );
    runner
        .run(&strategy, |(file, mutations)| {
            let (name, text) = &files[file.index(files.len())];
            let mut mutated = text.clone();
            for m in &mutations {
                mutated = apply(&mutated, m);
            }
            let _ = flow::driver::check_text(name, &mutated);
            Ok(())
        })
        .map_err(|e| Failed::from(e.to_string()))
}

/// The soak (issue 17; not in CI: `cargo test --release --test no_panic -- --ignored soak`,
/// `FLOW_SOAK_CASES` mutated scripts, 100,000 by default). Every mutated script is checked; one
/// that checks cleanly is also run, in process, on a temporary copy of the examples (its outputs
/// must stay inside that copy, or it is not run). A panic anywhere — including one caught inside
/// a worker and reported as an internal error — fails the soak; the counts are printed.
fn soak_check_and_run() -> Result<(), Failed> {
    let cases: u64 = std::env::var("FLOW_SOAK_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let work = tmp.path().join("examples");
    copy_dir(&root.join("examples"), &work).map_err(|e| e.to_string())?;
    let work = work.canonicalize().map_err(|e| e.to_string())?;
    let files: Vec<(String, String)> = corpus_cached()
        .iter()
        .filter(|(name, _)| name.contains("/examples/"))
        .cloned()
        .collect();
    let mut runner = TestRunner::new(Config {
        cases: cases as u32,
        failure_persistence: None,
        max_shrink_iters: 500,
        ..Config::default()
    });
    let strategy = (
        any::<prop::sample::Index>(),
        prop::collection::vec(mutation(), 1..4),
    );
    let stats = std::cell::RefCell::new([0u64; 4]); // checked, clean, run, run failed cleanly
    let result = runner.run(&strategy, |(file, mutations)| {
        let (name, text) = &files[file.index(files.len())];
        let mut mutated = text.clone();
        for m in &mutations {
            mutated = apply(&mutated, m);
        }
        let script = work.join(Path::new(name).file_name().unwrap_or_default());
        let mut session = flow::driver::Session::default();
        session.set_file(&script.to_string_lossy(), &mutated);
        let clean = session.plan().is_ok();
        let mut st = stats.borrow_mut();
        st[0] += 1;
        if !clean {
            return Ok(());
        }
        st[1] += 1;
        // Every output path (sinks and dead letters, wherever they are in the program).
        let inside = session.compile().program.as_ref().is_some_and(|p| {
            let mut paths: Vec<String> = p.sinks.iter().filter_map(|s| s.path.clone()).collect();
            if let Ok(v) = serde_json::to_value(p) {
                dead_letter_paths(&v, &mut paths);
            }
            paths.iter().all(|path| Path::new(path).starts_with(&work))
        });
        if !inside {
            return Ok(());
        }
        let mut opts = flow::runtime::RunOptions::for_engine(flow::codegen::Engine::Jit);
        opts.threads = Some(1);
        st[2] += 1;
        match session.run(&opts) {
            Ok(_) => Ok(()),
            Err(flow::driver::RunFailure::Job { error, .. })
                if matches!(*error, flow::runtime::RunError::Internal(_)) =>
            {
                Err(proptest::test_runner::TestCaseError::fail(format!(
                    "internal error (a caught panic) running a mutated {name}: {error}"
                )))
            }
            Err(_) => {
                st[3] += 1;
                Ok(())
            }
        }
    });
    let st = stats.borrow();
    println!(
        "soak: {} mutated scripts checked, {} checked cleanly, {} run ({} of them failed cleanly), 0 crashes",
        st[0], st[1], st[2], st[3]
    );
    result.map_err(|e| Failed::from(e.to_string()))
}

/// The `DeadLetter` paths anywhere in a serialized program.
fn dead_letter_paths(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("DeadLetter", serde_json::Value::String(p)) => out.push(p.clone()),
                    _ => dead_letter_paths(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| dead_letter_paths(x, out)),
        _ => {}
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            if e.file_name() != "out" {
                copy_dir(&e.path(), &target)?;
            }
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

fn main() {
    let mut trials = Vec::new();
    let files = corpus_cached();
    trials.push(Trial::test("corpus_is_present", move || {
        if files.len() >= 10 {
            Ok(())
        } else {
            Err(format!(
                "expected the example and diagnostics scripts, found {} files",
                files.len()
            )
            .into())
        }
    }));
    let root = format!("{}/", env!("CARGO_MANIFEST_DIR"));
    for (name, text) in files {
        let short = name.strip_prefix(&root).unwrap_or(name);
        trials.push(Trial::test(format!("corpus::{short}"), move || {
            let _ = flow::driver::check_text(name, text);
            Ok(())
        }));
    }
    for (i, text) in degenerate_inputs().into_iter().enumerate() {
        trials.push(Trial::test(format!("degenerate::{i}"), move || {
            let _ = flow::driver::check_text("degenerate.flow", &text);
            Ok(())
        }));
    }
    trials.push(Trial::test(
        "mutated_scripts_do_not_panic",
        mutated_scripts_do_not_panic,
    ));
    trials.push(Trial::test("soak_check_and_run", soak_check_and_run).with_ignored_flag(true));
    libtest_mimic::run(&Arguments::from_args(), trials).exit()
}

/// The corpus, read once per test binary (not once per case).
fn corpus_cached() -> &'static [(String, String)] {
    static CORPUS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(corpus)
}
