//! What the JSON lines connector says about itself.

use crate::catalog::ConnectorInfo;

pub fn source() -> ConnectorInfo {
    ConnectorInfo {
        name: "jsonl",
        takes_path: true,
        reads: "a file",
        options: vec![],
        doc: "reads JSON lines files (one object per line; a path or a glob)",
    }
}

pub fn sink() -> ConnectorInfo {
    ConnectorInfo {
        name: "jsonl",
        takes_path: true,
        reads: "",
        options: vec![],
        doc: "writes one JSON object per row, atomically",
    }
}
