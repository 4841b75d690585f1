//! What the standard input and output connectors say about themselves.

use crate::catalog::{Argument, ConnectorInfo, OptionKind, OptionSpec};
use crate::types::Value;

fn options() -> Vec<OptionSpec> {
    let mut o = vec![
        OptionSpec::new(
            "format",
            OptionKind::OneOf(&["csv", "jsonl"]),
            "\"csv\" (the default) or \"jsonl\"",
        )
        .default(Value::Str("csv".into())),
    ];
    o.extend(crate::connectors::csv::describe::options());
    o
}

pub fn source() -> ConnectorInfo {
    ConnectorInfo {
        name: "stdin",
        argument: Argument::None,
        reads: "standard input",
        options: options(),
        one_of: Vec::new(),
        describes: false,
        doc: "reads standard input as CSV or JSON lines; its schema must be declared",
    }
}

pub fn sink() -> ConnectorInfo {
    ConnectorInfo {
        name: "stdout",
        argument: Argument::None,
        reads: "",
        options: options(),
        one_of: Vec::new(),
        describes: false,
        doc: "writes standard output (not atomic: a failing job may have printed rows)",
    }
}
