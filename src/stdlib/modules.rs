//! The stdlib modules written in flow (`stdlib/*.flow`), embedded in the binary.

/// `(module path, source text)` of every stdlib module.
pub const MODULES: &[(&str, &str)] = &[];

pub fn find(path: &str) -> Option<&'static str> {
    MODULES.iter().find(|(p, _)| *p == path).map(|(_, t)| *t)
}
