//! Data-driven parser tests: every `tests/syntax/*.flow` is parsed and its AST dump
//! (`flow::syntax::dump`, span-free, every operator parenthesised), followed by its syntax
//! diagnostics, is compared with `tests/snapshots/syntax/<case>.snap`. A case parses without
//! diagnostics unless its header says `# expect: E0002[, …]`; then it reports exactly those.
//! Run one case: `cargo test --test syntax precedence`.

mod common;

use common::{Case, header_values};
use flow::span::SourceMap;
use libtest_mimic::Failed;
use std::collections::BTreeSet;

fn parse_and_dump(case: &Case) -> Result<String, Failed> {
    let mut sources = SourceMap::default();
    let id = sources.add(case.path.clone(), case.text.clone());
    let (module, diagnostics) = flow::syntax::parse(&sources.get(id).text, id);
    let mut out = flow::syntax::dump::module(&module);
    for d in &diagnostics {
        let (line, col) = d
            .primary_span()
            .map(|s| sources.line_col(s.file, s.start))
            .unwrap_or_default();
        out.push_str(&format!(
            "diagnostic {} at {line}:{col}: {}\n",
            d.code.as_str(),
            d.message
        ));
    }
    let reported: BTreeSet<String> = diagnostics
        .iter()
        .map(|d| d.code.as_str().to_string())
        .collect();
    let expected: BTreeSet<String> = header_values(&case.text, "expect:").into_iter().collect();
    if reported != expected {
        return Err(format!(
            "expected the codes {expected:?}, got {reported:?}; the dump is:\n{out}"
        )
        .into());
    }
    Ok(out)
}

fn main() {
    common::run(common::suite("syntax", "tests/syntax", parse_and_dump))
}
