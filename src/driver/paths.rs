//! The output-path check: no sink or dead-letter file of a job may be one of its inputs.
//!
//! Writing an output replaces the file under its final name when the job succeeds, so a sink
//! (or a dead-letter file) that names one of the job's own inputs would destroy it: via the same
//! path, `../` detours, a symlink, a hard link, or a file matched by a source's glob. This check
//! runs after the checker, before any data moves, and compares every output with every input
//! that a sink reads (unused sources are never read): two paths overlap when they are the same
//! file (same device and inode) or resolve to the same absolute path (symlinks followed, `..`
//! resolved, for files that do not exist yet), or when the output would be matched by an input
//! glob (the next run would read it). It also rejects two outputs that are the same file under
//! different names (`out.csv` and `./x/../out.csv`; identical strings are the planner's
//! `DuplicateSink`).
//!
//! It does file-system I/O, so it lives in the driver and not in the pure checker.

use crate::check::hir::{Program, StreamKind};
use crate::diagnostics::{Code, Diagnostic};
use crate::job::{ErrorPolicy, OnError};
use crate::span::Span;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// One file a job reads or writes, with where the script names it.
struct Place {
    /// As written (after the checker joined it to the script's directory).
    path: String,
    span: Span,
    what: String,
    /// Resolved absolute path (symlinks followed as far as they exist).
    resolved: PathBuf,
    /// Device and inode, if the file exists.
    id: Option<(u64, u64)>,
    /// Exists and is not a regular file (a device, a FIFO).
    special: bool,
}

impl Place {
    fn new(path: &str, span: Span, what: String) -> Place {
        let p = Path::new(path);
        let meta = std::fs::metadata(p).ok();
        Place {
            path: path.to_string(),
            span,
            what,
            resolved: resolve(p, 0),
            id: meta.as_ref().map(|m| (m.dev(), m.ino())),
            special: meta.is_some_and(|m| !m.is_file()),
        }
    }

    fn same_file(&self, other: &Place) -> bool {
        match (self.id, other.id) {
            (Some(a), Some(b)) => a == b,
            _ => self.resolved == other.resolved,
        }
    }

    /// Equal for two places exactly when `same_file` says so (two existing files by inode; a
    /// missing file's resolved path can only equal another missing one's), so outputs can be
    /// grouped by hashing instead of compared in pairs.
    fn identity(&self) -> (Option<(u64, u64)>, Option<&Path>) {
        match self.id {
            Some(id) => (Some(id), None),
            None => (None, Some(&self.resolved)),
        }
    }
}

/// The absolute form of `p` with every existing symlink followed and `.`/`..` resolved, also
/// when (a tail of) the path does not exist yet.
fn resolve(p: &Path, depth: usize) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    // A dangling symlink: writing to it creates its target.
    if depth < 40
        && let Ok(m) = std::fs::symlink_metadata(&abs)
        && m.file_type().is_symlink()
        && let Ok(target) = std::fs::read_link(&abs)
    {
        let base = abs.parent().unwrap_or(Path::new("/"));
        return resolve(&base.join(target), depth + 1);
    }
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) if parent != abs => resolve(parent, depth + 1).join(name),
        _ => lexical(&abs),
    }
}

/// `.` and `..` removed without touching the file system.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// The files an input path or glob names now, plus the pattern itself (resolved) for a glob.
fn expand_input(path: &str) -> (Vec<PathBuf>, Option<glob::Pattern>) {
    if !path.contains(['*', '?', '[']) {
        return (vec![PathBuf::from(path)], None);
    }
    let files = crate::connectors::split::expand(path).unwrap_or_default();
    // Resolve the literal directory prefix so that the pattern compares with resolved paths.
    let p = Path::new(path);
    let mut prefix = PathBuf::new();
    let mut rest = PathBuf::new();
    for c in p.components() {
        let s = c.as_os_str().to_string_lossy();
        if rest.as_os_str().is_empty() && !s.contains(['*', '?', '[']) {
            prefix.push(c);
        } else {
            rest.push(c);
        }
    }
    let base = if prefix.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        prefix
    };
    // Escape the resolved prefix (it may contain `[`); keep the glob part as written.
    let pre = glob::Pattern::escape(&resolve(&base, 0).to_string_lossy());
    let pattern = glob::Pattern::new(&format!("{pre}/{}", rest.to_string_lossy())).ok();
    (files, pattern)
}

/// Adds the overlap errors of `program` to `diagnostics`; drops the program if there are any.
pub fn reject_overlaps(program: &mut Option<Program>, diagnostics: &mut Vec<Diagnostic>) {
    let found = program.as_ref().map(check_output_paths).unwrap_or_default();
    if !found.is_empty() {
        *program = None;
        diagnostics.extend(found);
    }
}

/// Overlaps between the outputs and inputs of a checked program (see the module docs).
pub fn check_output_paths(program: &Program) -> Vec<Diagnostic> {
    let mut outputs: Vec<Place> = Vec::new();
    let mut used_sources: Vec<bool> = vec![false; program.sources.len()];
    let mut dead_seen: HashSet<String> = HashSet::new();
    let mut dead = |policy: &ErrorPolicy, span: Span, outputs: &mut Vec<Place>| {
        if let OnError::DeadLetter(p) = &policy.on_error
            && dead_seen.insert(p.clone())
        {
            outputs.push(Place::new(p, span, "dead-letter file".into()));
        }
    };
    for sink in &program.sinks {
        if let Some(p) = &sink.path {
            outputs.push(Place::new(p, sink.span, "sink".into()));
        }
        // Iterative: a script may chain thousands of stages.
        let mut stack = vec![&sink.input];
        while let Some(s) = stack.pop() {
            match &s.kind {
                StreamKind::Source(i) => {
                    if let Some(u) = used_sources.get_mut(*i) {
                        *u = true;
                    }
                }
                StreamKind::Filter { input, policy, .. }
                | StreamKind::Map { input, policy, .. } => {
                    dead(policy, s.span, &mut outputs);
                    stack.push(input);
                }
                StreamKind::Group { input, .. }
                | StreamKind::Limit { input, .. }
                | StreamKind::Sort { input, .. }
                | StreamKind::Distinct { input, .. } => stack.push(input),
                StreamKind::Union { inputs } => stack.extend(inputs.iter()),
                StreamKind::Join { left, right, .. } => {
                    stack.push(left);
                    stack.push(right);
                }
            }
        }
    }
    for (i, src) in program.sources.iter().enumerate() {
        if used_sources[i] {
            dead(&src.policy, src.span, &mut outputs);
        }
    }
    // The inputs of the used sources by the file they name, and the globs: each output is
    // looked up, not compared with every input (a job may have thousands of both).
    let mut places: Vec<Vec<Place>> = Vec::new();
    let mut patterns: Vec<(usize, glob::Pattern)> = Vec::new();
    for (i, src) in program.sources.iter().enumerate() {
        let files = match src.path.as_deref().filter(|_| used_sources[i]) {
            Some(path) => {
                let (files, pattern) = expand_input(path);
                patterns.extend(pattern.map(|p| (i, p)));
                files
            }
            None => Vec::new(),
        };
        let here = files
            .iter()
            .map(|f| Place::new(&f.to_string_lossy(), src.span, String::new()));
        places.push(here.collect());
    }
    let mut inputs: HashMap<_, Vec<(usize, usize)>> = HashMap::new();
    for (i, here) in places.iter().enumerate() {
        for (k, inp) in here.iter().enumerate() {
            inputs.entry(inp.identity()).or_default().push((i, k));
        }
    }
    // (source, output, the first input of that source that is the output's file, if any).
    let mut overlaps: Vec<(usize, usize, Option<usize>)> = Vec::new();
    for (o, out) in outputs.iter().enumerate() {
        let mut hits = inputs.get(&out.identity()).cloned().unwrap_or_default();
        hits.dedup_by_key(|(src, _)| *src);
        for (src, p) in &patterns {
            if !hits.iter().any(|(s, _)| s == src) && p.matches_path(&out.resolved) {
                overlaps.push((*src, o, None));
            }
        }
        overlaps.extend(hits.into_iter().map(|(src, k)| (src, o, Some(k))));
    }
    overlaps.sort();
    let mut diags = Vec::new();
    for (i, o, hit) in overlaps {
        let (src, out) = (&program.sources[i], &outputs[o]);
        let path = src.path.as_deref().unwrap_or_default();
        let hit = hit.and_then(|k| places[i].get(k));
        let detail = match hit {
            Some(inp) if inp.path == path => format!("`{path}`"),
            Some(inp) => format!("`{}` (matched by `{path}`)", inp.path),
            None => format!("the pattern `{path}`"),
        };
        diags.push(
            Diagnostic::error(
                Code::OutputOverwritesInput,
                format!(
                    "the {} `{}` would overwrite the input {detail} of source `{}`",
                    out.what, out.path, src.name
                ),
            )
            .label(out.span, format!("this {} writes `{}`…", out.what, out.path))
            .label(src.span, "…which this source reads")
            .help(if hit.is_some() {
                "write the output to another file; to replace the input, rename the output afterwards"
            } else {
                "the next run would read this output as an input; write it outside the pattern"
            }),
        );
    }
    // Outputs grouped by the file they name (hashing, not pairs: a job may have thousands).
    let mut groups: HashMap<_, Vec<usize>> = HashMap::new();
    for (i, o) in outputs.iter().enumerate() {
        groups.entry(o.identity()).or_default().push(i);
    }
    let mut shared: Vec<&Vec<usize>> = groups.values().filter(|g| g.len() > 1).collect();
    shared.sort();
    for group in shared {
        for (k, &i) in group.iter().enumerate() {
            let a = &outputs[i];
            for b in group[k + 1..].iter().map(|&j| &outputs[j]) {
                // Identical sink paths are reported by the planner (`DuplicateSink`); devices and
                // FIFOs (`/dev/null`) are written in place and may be shared.
                let planner_reports = a.path == b.path && a.what == "sink" && b.what == "sink";
                if !planner_reports && !a.special && a.same_file(b) {
                    diags.push(
                        Diagnostic::error(
                            Code::DuplicateSink,
                            format!(
                                "the {} `{}` and the {} `{}` are the same file",
                                a.what, a.path, b.what, b.path
                            ),
                        )
                        .label(b.span, format!("this {} writes `{}`…", b.what, b.path))
                        .label(a.span, format!("…which is where this {} writes", a.what))
                        .help("give each output its own file"),
                    );
                }
            }
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_dotdot_and_missing_tails() {
        let dir = tempfile::tempdir().unwrap();
        let d = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(d.join("a")).unwrap();
        assert_eq!(resolve(&d.join("a/../x/y.csv"), 0), d.join("x/y.csv"));
        std::os::unix::fs::symlink(d.join("a"), d.join("l")).unwrap();
        assert_eq!(resolve(&d.join("l/new.csv"), 0), d.join("a/new.csv"));
        std::os::unix::fs::symlink(d.join("a/target.csv"), d.join("dangling")).unwrap();
        assert_eq!(resolve(&d.join("dangling"), 0), d.join("a/target.csv"));
    }
}
