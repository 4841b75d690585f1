//! What each connector says about itself: its name, whether it reads or writes a file, its
//! options with their kinds and defaults. Plain data, no I/O: every connector describes itself
//! (`connectors::<name>::info`), `connectors::Registry::catalog` collects the descriptions, and
//! the checker validates a connector call against them — so the checker knows no connector by
//! name, and adding a connector touches only its own folder and one registration line.

use crate::types::Value;

/// The kind of value an option takes; the checker validates a call against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// `true` or `false`.
    Bool,
    /// A string of exactly one byte, such as `","` or `"\t"`.
    Byte,
    /// One of these strings.
    OneOf(&'static [&'static str]),
}

impl OptionKind {
    /// Checks a literal value; `Err` is the label shown under the bad value.
    pub fn accept(&self, v: &Value) -> Result<(), String> {
        match (self, v) {
            (OptionKind::Bool, Value::Bool(_)) => Ok(()),
            (OptionKind::Bool, _) => Err("expected `true` or `false`".into()),
            (OptionKind::Byte, Value::Str(s)) if s.len() == 1 => Ok(()),
            (OptionKind::Byte, _) => {
                Err("expected a one-byte string such as \",\" or \"\\t\"".into())
            }
            (OptionKind::OneOf(allowed), Value::Str(s)) if allowed.contains(&s.as_str()) => Ok(()),
            (OptionKind::OneOf(allowed), _) => Err(format!(
                "expected {}",
                allowed
                    .iter()
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
        }
    }
}

/// One named option of a connector.
#[derive(Clone, Debug, PartialEq)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: OptionKind,
    /// Filled in by the checker when the call does not give the option.
    pub default: Option<Value>,
    pub doc: &'static str,
}

impl OptionSpec {
    pub fn new(name: &'static str, kind: OptionKind, doc: &'static str) -> OptionSpec {
        OptionSpec {
            name,
            kind,
            default: None,
            doc,
        }
    }
    pub fn default(mut self, v: Value) -> OptionSpec {
        self.default = Some(v);
        self
    }
}

/// A connector's description of itself, for one direction (source or sink).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorInfo {
    pub name: &'static str,
    /// Takes a file path (or glob, for sources) as its first positional argument.
    pub takes_path: bool,
    /// What a source without a path reads, for messages ("standard input"); its schema cannot be
    /// inferred and must be declared.
    pub reads: &'static str,
    pub options: Vec<OptionSpec>,
    pub doc: &'static str,
}

impl ConnectorInfo {
    pub fn option(&self, name: &str) -> Option<&OptionSpec> {
        self.options.iter().find(|o| o.name == name)
    }
}

/// Every registered connector's description, by direction, in name order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    pub sources: Vec<ConnectorInfo>,
    pub sinks: Vec<ConnectorInfo>,
}

impl Catalog {
    pub fn source(&self, name: &str) -> Option<&ConnectorInfo> {
        self.sources.iter().find(|c| c.name == name)
    }
    pub fn sink(&self, name: &str) -> Option<&ConnectorInfo> {
        self.sinks.iter().find(|c| c.name == name)
    }
}
