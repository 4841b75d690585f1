//! What each connector says about itself: its name, whether it reads or writes a file, its
//! options with their kinds and defaults. Plain data, no I/O: every connector describes itself
//! (`connectors::<name>::info`), `connectors::Registry::catalog` collects the descriptions, and
//! the checker validates a connector call against them — so the checker knows no connector by
//! name, and adding a connector touches only its own folder and one registration line.

use crate::diagnostics::Code;
use crate::types::{Type, Value};

/// The kind of value an option takes; the checker validates a call against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// `true` or `false`.
    Bool,
    /// A string of exactly one byte, such as `","` or `"\t"`.
    Byte,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// Any non-empty string (a table name, a query, a URL): the connector validates the rest.
    Text,
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
            (OptionKind::Text, Value::Str(s)) if !s.trim().is_empty() => Ok(()),
            (OptionKind::Text, Value::Str(_)) => Err("expected a non-empty string".into()),
            (OptionKind::Text, _) => Err("expected a string".into()),
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

/// What a connector's first positional argument is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Argument {
    /// It takes none (standard input and output).
    None,
    /// A file path (or glob, for sources), resolved against the script's directory; a source's
    /// must exist at check time.
    Path,
    /// The value of this option (of kind `Text`), given without its name: `postgres(url, …)`
    /// is `postgres(url: url, …)`. Not a file: never resolved or probed as one.
    Option(&'static str),
}

/// A connector's description of itself, for one direction (source or sink).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorInfo {
    pub name: &'static str,
    /// What its first positional argument is.
    pub argument: Argument,
    /// What a source without a path reads, for messages ("standard input"); its schema cannot be
    /// inferred and must be declared.
    pub reads: &'static str,
    pub options: Vec<OptionSpec>,
    /// Groups of options of which a call must give exactly one (`table:` or `query:`).
    pub one_of: Vec<&'static [&'static str]>,
    /// The connector describes its input itself (a database's catalog, asked through the
    /// checker's `Probe::describe`): a declared schema is compared with that description.
    pub describes: bool,
    pub doc: &'static str,
}

impl ConnectorInfo {
    pub fn option(&self, name: &str) -> Option<&OptionSpec> {
        self.options.iter().find(|o| o.name == name)
    }
    /// Takes a file path (or glob, for sources) as its first positional argument.
    pub fn takes_path(&self) -> bool {
        self.argument == Argument::Path
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

/// One column as a connector describes its input: its name and flow type, or the input's own
/// name of a type flow cannot read.
#[derive(Clone, Debug, PartialEq)]
pub struct DescribedColumn {
    pub name: String,
    pub ty: Result<Type, String>,
}

/// What a connector that describes its input (`ConnectorInfo::describes`) says of it at check
/// time: a database table's or query's columns, asked of the server by the driver's probe.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    /// The input for messages: "table `public.trips`", "the query".
    pub what: String,
    /// The option whose argument names the input: column errors are shown under it.
    pub option: &'static str,
    pub columns: Vec<DescribedColumn>,
}

/// Why a connector could not describe its input (or accept a sink's target): a diagnostic the
/// checker shows under the argument the connector blames.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub code: Code,
    /// The option whose argument is at fault; `None`: the whole call.
    pub option: Option<&'static str>,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

impl Refusal {
    pub fn new(
        code: Code,
        option: Option<&'static str>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Refusal {
        Refusal {
            code,
            option,
            message: message.into(),
            label: label.into(),
            help: None,
        }
    }
    pub fn help(mut self, help: impl Into<String>) -> Refusal {
        self.help = Some(help.into());
        self
    }
}
