//! Golden tests for diagnostics, one test per script: every `tests/diagnostics/*.flow` is checked
//! and its rendered diagnostics compared with `tests/snapshots/diagnostics/<name>.snap` (which
//! begins with the script's source; see `tests/common`). The first line `# expect: E0011[, E0022…]`
//! names codes that must be among the reported ones; a `# with: other.flow` line names a
//! companion file checked together with it; `# count: N` requires exactly N errors. Run one case: `cargo test --test diagnostics 022`.

mod common;

use common::{Case, header_values};
use flow::diagnostics::{self, Code};
use flow::driver;
use libtest_mimic::{Failed, Trial};
use std::collections::BTreeSet;
use std::path::Path;

const DIR: &str = "tests/diagnostics";

/// The script and its `# with:` companions, as `(path, text)`.
fn files(case: &Case) -> Result<Vec<(String, String)>, Failed> {
    let mut files = vec![(case.path.clone(), case.text.clone())];
    for other in header_values(&case.text, "with:") {
        let p = Path::new(DIR).join(other);
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        files.push((p.to_string_lossy().into_owned(), text));
    }
    Ok(files)
}

fn check_case(case: &Case) -> Result<(), Failed> {
    let files = files(case)?;
    let c = driver::check_paths(&files.iter().map(|(p, _)| p).collect::<Vec<_>>());
    let reported: BTreeSet<&str> = c.diagnostics.iter().map(|d| d.code.as_str()).collect();
    if !(c.has_errors() || reported.iter().any(|c| c.starts_with('W'))) {
        return Err("reports nothing".into());
    }
    let rendered = diagnostics::render(&c.sources, &c.diagnostics, false);
    let sources: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let snapshot = common::check("diagnostics", &case.name, &sources, &rendered);
    let missing: Vec<String> = header_values(&case.text, "expect:")
        .into_iter()
        .filter(|code| !reported.contains(code.as_str()))
        .collect();
    // `# count: N`: exactly N errors, no more (no cascades), no less (every mistake found).
    if let Some(n) = header_values(&case.text, "count:").first() {
        let want: usize = n.parse().map_err(|_| format!("bad `# count:` value {n}"))?;
        let got = c.diagnostics.iter().filter(|d| d.is_error()).count();
        if got != want {
            return Err(format!("expected exactly {want} errors, got {got}:\n{rendered}").into());
        }
    }
    if !missing.is_empty() {
        let snapshot = snapshot.err().and_then(|e| e.message().map(str::to_string));
        return Err(format!(
            "expected {missing:?} among the reported codes {reported:?}\n{}",
            snapshot.unwrap_or_default()
        )
        .into());
    }
    snapshot
}

/// Every error code is reported by at least one script.
fn every_code_is_covered(cases: &[Case]) -> Result<(), Failed> {
    if cases.len() < 40 {
        return Err(format!("expected at least 40 scripts, found {}", cases.len()).into());
    }
    let mut covered = BTreeSet::new();
    for case in cases {
        let files = files(case)?;
        let c = driver::check_paths(&files.iter().map(|(p, _)| p).collect::<Vec<_>>());
        covered.extend(c.diagnostics.iter().map(|d| d.code.as_str().to_string()));
    }
    let uncovered: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        // E0070 is a run-time error (tested in tests/e2e.rs), E0900 an internal error, E0008 the
        // rendering cap's summary line (tested in tests/hostile_scripts.rs).
        .filter(|c| !covered.contains(*c) && !matches!(*c, "E0070" | "E0900" | "E0008"))
        .collect();
    if uncovered.is_empty() {
        Ok(())
    } else {
        Err(format!("error codes no golden script covers: {uncovered:?}").into())
    }
}

fn json_diagnostics_have_the_documented_fields() -> Result<(), Failed> {
    let c = driver::check_text(
        "tests/inline.flow",
        "source s = csv(\"nope.csv\")\ns | filter x | sink stdout()\n",
    );
    let json = diagnostics::to_json(&c.sources, &c.diagnostics);
    let arr = json.as_array().ok_or("not an array")?;
    if arr.is_empty() {
        return Err("no diagnostics".into());
    }
    for d in arr {
        for key in [
            "code", "severity", "message", "file", "line", "column", "labels",
        ] {
            if d.get(key).is_none() {
                return Err(format!("missing {key} in {d}").into());
            }
        }
    }
    let first = (&arr[0]["code"], &arr[0]["line"], &arr[0]["column"]);
    if first != (&"E0033".into(), &1.into(), &16.into()) {
        return Err(format!("first diagnostic is {first:?}, expected E0033 at 1:16").into());
    }
    Ok(())
}

fn main() {
    let cases = std::sync::Arc::new(common::cases(DIR));
    let mut trials: Vec<Trial> = (0..cases.len())
        .map(|i| {
            let cases = cases.clone();
            Trial::test(cases[i].name.clone(), move || check_case(&cases[i]))
        })
        .collect();
    let names = cases.iter().map(|c| c.name.clone()).collect();
    trials.push(common::no_stale_snapshots("diagnostics", names));
    trials.push(Trial::test("every_code_is_covered", move || {
        every_code_is_covered(&cases)
    }));
    trials.push(Trial::test(
        "json_diagnostics_have_the_documented_fields",
        json_diagnostics_have_the_documented_fields,
    ));
    common::run(trials)
}
