//! What the JSON lines connector says about itself.

use crate::catalog::{Argument, ConnectorInfo};

pub fn source() -> ConnectorInfo {
    ConnectorInfo {
        name: "jsonl",
        argument: Argument::Path,
        reads: "a file",
        options: vec![],
        one_of: Vec::new(),
        describes: false,
        doc: "reads JSON lines files (one object per line; a path or a glob)",
    }
}

pub fn sink() -> ConnectorInfo {
    ConnectorInfo {
        name: "jsonl",
        argument: Argument::Path,
        reads: "",
        options: vec![],
        one_of: Vec::new(),
        describes: false,
        doc: "writes one JSON object per row, atomically",
    }
}
