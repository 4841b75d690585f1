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
        // rendering cap's summary line (tested in tests/hostile_scripts.rs), E0080/E0081 errors of
        // the SQL backend, not of `check` (tested in tests/sql.rs); E0271–E0274 need a
        // PostgreSQL server that answers (tested in tests/postgres_connector.rs).
        .filter(|c| {
            !covered.contains(*c)
                && !matches!(
                    *c,
                    "E0070"
                        | "E0900"
                        | "E0008"
                        | "E0080"
                        | "E0081"
                        | "E0271"
                        | "E0272"
                        | "E0273"
                        | "E0274"
                )
        })
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

/// The passwords written in the `*_password_not_echoed` scripts appear nowhere in their
/// rendered diagnostics (text and JSON), and the labels still point at the right columns.
fn passwords_are_never_rendered() -> Result<(), Failed> {
    for (name, secret, at) in [
        ("270_password_not_echoed", "Sup3r-s3cret", (3, 26)),
        ("031_password_not_echoed", "pä$$wörd", (3, 95)),
    ] {
        let path = format!("{DIR}/{name}.flow");
        let c = driver::check_paths(&[&path]);
        let text = diagnostics::render(&c.sources, &c.diagnostics, false);
        let json = diagnostics::to_json(&c.sources, &c.diagnostics).to_string();
        if text.contains(secret)
            || json.contains(secret)
            || !text.contains(":1/shop") && !text.contains("db.example")
        {
            return Err(format!(
                "{name}: the password is shown (or the URL is gone):\n{text}\n{json}"
            )
            .into());
        }
        let first = diagnostics::to_json(&c.sources, &c.diagnostics);
        let got = (&first[0]["line"], &first[0]["column"]);
        if got != (&at.0.into(), &at.1.into()) {
            return Err(format!("{name}: the diagnostic is at {got:?}, expected {at:?}").into());
        }
    }
    Ok(())
}

/// The table of every code in docs/ERRORS.md, generated from the registry.
fn errors_table() -> String {
    let mut codes: Vec<Code> = Code::ALL.to_vec();
    codes.sort_by_key(|c| c.as_str());
    let mut t = String::from(
        "# Error codes\n\nEvery diagnostic code with its one-line title; `flow explain-error CODE` prints the long\nexplanation (for the habits E0100 and up: the habit, the flow form, an example and its fix).\nGenerated from `src/diagnostics/codes.rs` by `tests/diagnostics.rs` (`errors_table_is_up_to_date`;\n`UPDATE_SNAPSHOTS=1 cargo test --release --test diagnostics` rewrites it).\n\n| code | title |\n|---|---|\n",
    );
    for c in codes {
        t.push_str(&format!(
            "| {} | {} |\n",
            c.as_str(),
            c.title().replace('|', "\\|")
        ));
    }
    t
}

fn errors_table_is_up_to_date() -> Result<(), Failed> {
    let path = "docs/ERRORS.md";
    let want = errors_table();
    if std::fs::read_to_string(path).ok().as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v != "0" && !v.is_empty()) {
        return std::fs::write(path, want).map_err(|e| format!("{path}: {e}").into());
    }
    Err(format!("{path} is out of date (run with UPDATE_SNAPSHOTS=1 to rewrite it)").into())
}

/// `flow check --max-errors N` shows N diagnostics and counts the rest.
fn max_errors_flag_caps_the_report() -> Result<(), Failed> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["check", "--max-errors", "2", "--color", "never"])
        .arg(Path::new(DIR).join("161_count_over_statements.flow"))
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stderr);
    let shown = text.matches("] Error:").count();
    if out.status.code() != Some(1) || shown != 2 || !text.contains("[E0008] … and 6 more errors")
    {
        return Err(format!("exit {:?}, {shown} shown:\n{text}", out.status.code()).into());
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
    trials.push(Trial::test(
        "passwords_are_never_rendered",
        passwords_are_never_rendered,
    ));
    trials.push(Trial::test(
        "errors_table_is_up_to_date",
        errors_table_is_up_to_date,
    ));
    trials.push(Trial::test(
        "max_errors_flag_caps_the_report",
        max_errors_flag_caps_the_report,
    ));
    common::run(trials)
}
