//! What the CSV connector says about itself, and its header probe for the checker.

use crate::catalog::{Argument, ConnectorInfo, OptionKind, OptionSpec};
use crate::connectors::{opt_bool, opt_delimiter};
use crate::job::Options;
use crate::types::Value;

/// `header` and `delimiter`, shared by the CSV source and sink (and standard input/output in
/// CSV format).
pub fn options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new(
            "header",
            OptionKind::Bool,
            "the first line names the columns (default true)",
        )
        .default(Value::Bool(true)),
        OptionSpec::new(
            "delimiter",
            OptionKind::Byte,
            "the field separator, one byte (default \",\")",
        )
        .default(Value::Str(",".into())),
    ]
}

pub fn source() -> ConnectorInfo {
    ConnectorInfo {
        name: "csv",
        argument: Argument::Path,
        reads: "a file",
        options: options(),
        one_of: Vec::new(),
        describes: false,
        doc: "reads RFC 4180 CSV files (a path or a glob), split by byte range across workers",
    }
}

pub fn sink() -> ConnectorInfo {
    ConnectorInfo {
        name: "csv",
        argument: Argument::Path,
        reads: "",
        options: options(),
        one_of: Vec::new(),
        describes: false,
        doc: "writes a CSV file atomically (temporary file renamed on success)",
    }
}

/// The column names of `file`'s header line, if the options say it has one.
pub fn header(file: &str, options: &Options) -> Result<Option<Vec<String>>, String> {
    if !opt_bool(options, "header", true) {
        return Ok(None);
    }
    let delimiter = opt_delimiter(options)?;
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_path(file)
        .map_err(|e| e.to_string())?;
    let mut rec = csv::ByteRecord::new();
    if !r.read_byte_record(&mut rec).map_err(|e| e.to_string())? {
        return Err(super::EMPTY.into());
    }
    super::header_names(&rec).map(Some)
}
