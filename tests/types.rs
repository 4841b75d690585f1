//! Data-driven "this type-checks to" tests: every `tests/types/*.flow` is checked (with its
//! relative paths resolved against `tests/types/`, where `data/` holds the inputs) and the lines
//! `flow check --types` prints for it are compared with `tests/snapshots/types/<case>.snap`. A
//! case must check without errors; warnings are listed after the types.
//! Run one case: `cargo test --test types narrowing`.

mod common;

use common::Case;
use flow::driver;
use libtest_mimic::Failed;

fn types(case: &Case) -> Result<String, Failed> {
    let c = driver::check_paths(&[&case.path]);
    if c.has_errors() {
        return Err(format!(
            "does not check:\n{}",
            flow::diagnostics::render(&c.sources, &c.diagnostics, false)
        )
        .into());
    }
    let mut out: String = c.types.iter().map(|l| format!("{l}\n")).collect();
    for d in &c.diagnostics {
        out.push_str(&format!("{} {}\n", d.code.as_str(), d.message));
    }
    Ok(out)
}

fn main() {
    common::run(common::suite("types", "tests/types", types))
}
