//! Snapshots of `flow explain` text for every example (the optimized, de-duplicated plan).

use flow::driver;

#[test]
fn explain_text_of_every_example() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/explain");
    settings.set_prepend_module_to_snapshot(false);
    let _guard = settings.bind_to_scope();
    let mut paths: Vec<_> = std::fs::read_dir("examples")
        .expect("examples/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "flow"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 5);
    for p in &paths {
        let c = driver::check_paths(&[p]);
        let plan = c
            .plan
            .unwrap_or_else(|| panic!("{} does not plan: {:?}", p.display(), c.diagnostics));
        let name = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        insta::assert_snapshot!(name, flow::plan::explain::text(&plan));
    }
    // Several files together: one job, one plan (the others also write stdout, so they cannot
    // run together: E0060).
    let c = driver::check_paths(&[
        "examples/enrich.flow",
        "examples/logs.flow",
        "examples/trips.flow",
    ]);
    let plan = c.plan.expect("the examples plan together");
    insta::assert_snapshot!("three_examples_together", flow::plan::explain::text(&plan));
}
