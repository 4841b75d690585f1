//! The stdlib modules written in flow (`stdlib/*.flow`), embedded in the binary. A module's
//! path is `std.` + its file name.

/// `(module path, source text)` of every stdlib module.
pub const MODULES: &[(&str, &str)] = &[
    ("std.math", include_str!("../../stdlib/math.flow")),
    ("std.text", include_str!("../../stdlib/text.flow")),
];

pub fn find(path: &str) -> Option<&'static str> {
    MODULES.iter().find(|(p, _)| *p == path).map(|(_, t)| *t)
}
