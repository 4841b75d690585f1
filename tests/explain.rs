//! Snapshots of `flow explain` text (the optimized, de-duplicated plan), one test per example
//! (`tests/snapshots/explain/<example>.snap`, which begins with the example's source) and one of
//! several files planned together. Run one: `cargo test --test explain trips`.

mod common;

use flow::driver;
use libtest_mimic::{Failed, Trial};

/// Plans the files together and compares the explain text with the snapshot `name`.
fn explain(name: &str, paths: &[String]) -> Result<(), Failed> {
    let mut sources = Vec::new();
    for p in paths {
        sources.push((
            p.as_str(),
            std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?,
        ));
    }
    let c = driver::check_paths(paths);
    let plan = c
        .plan
        .ok_or_else(|| format!("{paths:?} do not plan: {:?}", c.diagnostics))?;
    let sources: Vec<(&str, &str)> = sources.iter().map(|(p, t)| (*p, t.as_str())).collect();
    common::check("explain", name, &sources, &flow::plan::explain::text(&plan))
}

fn main() {
    let examples = common::cases("examples");
    let mut trials = Vec::new();
    if examples.len() < 5 {
        trials.push(Trial::test("examples_are_present", || {
            Err("expected at least 5 examples".into())
        }));
    }
    let mut names = Vec::new();
    for ex in examples {
        names.push(ex.name.clone());
        trials.push(Trial::test(ex.name.clone(), move || {
            explain(&ex.name, &[ex.path])
        }));
    }
    // Several files together: one job, one plan (the others also write stdout, so they cannot
    // run together: E0060).
    let together = "three_examples_together";
    names.push(together.to_string());
    trials.push(Trial::test(together, move || {
        explain(
            together,
            &[
                "examples/enrich.flow".into(),
                "examples/logs.flow".into(),
                "examples/trips.flow".into(),
            ],
        )
    }));
    trials.push(common::no_stale_snapshots("explain", names));
    common::run(trials)
}
