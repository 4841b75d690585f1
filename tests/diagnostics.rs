//! Golden tests for diagnostics: every `tests/diagnostics/*.flow` is checked and its rendered
//! diagnostics compared with `tests/snapshots/diagnostics/<name>.snap` (insta). The first line
//! `# expect: E0011[, E0022…]` names codes that must be among the reported ones; a
//! `# with: other.flow` line names a companion file checked together with it.

use flow::diagnostics::{self, Code};
use flow::driver;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn scripts() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("tests/diagnostics")
        .expect("tests/diagnostics exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "flow"))
        .collect();
    v.sort();
    v
}

fn header_values(text: &str, key: &str) -> Vec<String> {
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

#[test]
fn diagnostics_match_their_snapshots_and_expected_codes() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/diagnostics");
    settings.set_prepend_module_to_snapshot(false);
    let _guard = settings.bind_to_scope();
    let mut missing = Vec::new();
    let mut covered = BTreeSet::new();
    let all = scripts();
    assert!(
        all.len() >= 40,
        "expected at least 40 diagnostic scripts, found {}",
        all.len()
    );
    for path in all {
        let text = std::fs::read_to_string(&path).expect("readable script");
        let mut files = vec![path.clone()];
        for other in header_values(&text, "with:") {
            files.push(path.parent().unwrap_or(Path::new(".")).join(other));
        }
        let c = driver::check_paths(&files);
        let reported: BTreeSet<&str> = c.diagnostics.iter().map(|d| d.code.as_str()).collect();
        covered.extend(reported.iter().map(|s| s.to_string()));
        for code in header_values(&text, "expect:") {
            if !reported.contains(code.as_str()) {
                missing.push(format!(
                    "{}: expected {code}, got {reported:?}",
                    path.display()
                ));
            }
        }
        assert!(
            c.has_errors() || reported.iter().any(|c| c.starts_with('W')),
            "{} reports nothing",
            path.display()
        );
        let rendered = diagnostics::render(&c.sources, &c.diagnostics, false);
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        insta::assert_snapshot!(name, rendered);
    }
    assert!(
        missing.is_empty(),
        "scripts missing their expected codes:\n{}",
        missing.join("\n")
    );
    let uncovered: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        // E0070 is a run-time error (tested in tests/e2e.rs), E0900 an internal error, E0008 the
        // rendering cap's summary line (tested in tests/hostile_scripts.rs).
        .filter(|c| !covered.contains(*c) && !matches!(*c, "E0070" | "E0900" | "E0008"))
        .collect();
    assert!(
        uncovered.is_empty(),
        "error codes no golden script covers: {uncovered:?}"
    );
}

#[test]
fn json_diagnostics_have_the_documented_fields() {
    let c = driver::check_text(
        "tests/inline.flow",
        "source s = csv(\"nope.csv\")\ns | filter x | sink stdout()\n",
    );
    let json = diagnostics::to_json(&c.sources, &c.diagnostics);
    let arr = json.as_array().expect("an array");
    assert!(!arr.is_empty());
    for d in arr {
        for key in [
            "code", "severity", "message", "file", "line", "column", "labels",
        ] {
            assert!(d.get(key).is_some(), "missing {key} in {d}");
        }
    }
    assert_eq!(arr[0]["code"], "E0033");
    assert_eq!(arr[0]["line"], 1);
    assert_eq!(arr[0]["column"], 16);
}
