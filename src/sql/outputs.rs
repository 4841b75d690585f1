//! Atomic sink outputs of a job run on another engine (DuckDB, PostgreSQL, Spark): every sink
//! is first written to a temporary file beside its final name (standard output: a temporary
//! file too); only when the whole job succeeded are the files renamed (and standard output
//! copied); on failure — or when the `Outputs` is dropped uncommitted, e.g. on an interrupt —
//! they are removed, and so is every directory `add` created for them, so a failed run leaves
//! nothing behind: an output is complete or absent.
//!
//! The files and directories that exist right now are also in a process-wide registry, for
//! the interrupt path that exits without unwinding ([`remove_live`]).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Temporary files (and created directories) of the engine runs of this process.
static LIVE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn live() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every live temporary file, then the directories created for them (deepest
/// first, only when empty). For an exit on a signal; the registry stays locked.
pub fn remove_live() {
    let l = live();
    let mut dirs = Vec::new();
    for p in l.iter() {
        if p.is_dir() {
            dirs.push(p.clone());
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
    remove_dirs(&mut dirs);
    std::mem::forget(l);
}

/// Removes the (empty) directories `dirs`, deepest first.
fn remove_dirs(dirs: &mut [PathBuf]) {
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs.iter() {
        let _ = std::fs::remove_dir(d);
    }
}

/// Creates `dir` and its missing parents; returns the directories created, outermost first.
fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut missing = Vec::new();
    let mut d = Some(dir);
    while let Some(p) = d.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(p.to_path_buf());
        d = p.parent();
    }
    missing.reverse();
    for (k, m) in missing.iter().enumerate() {
        if let Err(e) = std::fs::create_dir(m)
            && !m.is_dir()
        {
            remove_dirs(&mut missing[..k].to_vec());
            return Err(format!("cannot create {}: {e}", m.display()));
        }
    }
    Ok(missing)
}

/// One sink's result.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkRows {
    pub origin: String,
    /// `None`: standard output.
    pub path: Option<String>,
    pub rows: u64,
}

/// A sink whose rows go to `tmp` first.
pub struct Pending {
    pub origin: String,
    pub path: Option<String>,
    pub tmp: PathBuf,
}

/// The temporary files of the sinks of one run (`engine` names them, e.g. `duckdb`).
pub struct Outputs {
    engine: &'static str,
    pub pending: Vec<Pending>,
    /// Directories created for the outputs, removed again unless the run commits.
    created: Vec<PathBuf>,
}

impl Outputs {
    pub fn new(engine: &'static str) -> Outputs {
        Outputs {
            engine,
            pending: Vec::new(),
            created: Vec::new(),
        }
    }

    /// Registers sink `origin` writing `path` (`None`: standard output); returns its temporary
    /// file (the final file's directory is created).
    pub fn add(&mut self, origin: &str, path: Option<&str>) -> Result<PathBuf, String> {
        let k = self.pending.len();
        let pid = std::process::id();
        let tmp = match path {
            Some(p) => {
                let p = Path::new(p);
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let made = create_dirs(dir)?;
                    live().extend(made.iter().cloned());
                    self.created.extend(made);
                }
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "out".into());
                let tmp = format!(".{name}.flow-{}-{pid}-{k}.tmp", self.engine);
                match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.join(tmp),
                    _ => PathBuf::from(tmp),
                }
            }
            None => std::env::temp_dir().join(format!("flow-{}-stdout-{pid}-{k}.tmp", self.engine)),
        };
        live().insert(tmp.clone());
        self.pending.push(Pending {
            origin: origin.to_string(),
            path: path.map(str::to_string),
            tmp: tmp.clone(),
        });
        Ok(tmp)
    }

    /// Removes every temporary file and the directories created for them (the job failed).
    pub fn discard(&mut self) {
        let mut l = live();
        for p in self.pending.drain(..) {
            let _ = std::fs::remove_file(&p.tmp);
            l.remove(&p.tmp);
        }
        for d in &self.created {
            l.remove(d);
        }
        drop(l);
        remove_dirs(&mut self.created);
        self.created.clear();
    }

    /// The job succeeded with `rows[k]` rows in sink `k`: renames the files into place and
    /// copies standard-output sinks to `stdout`.
    pub fn commit(mut self, rows: &[u64], stdout: &mut dyn Write) -> Result<Vec<SinkRows>, String> {
        let mut result = Vec::new();
        for k in 0..self.pending.len() {
            let p = &self.pending[k];
            let done = match &p.path {
                Some(path) => std::fs::rename(&p.tmp, path)
                    .map_err(|e| format!("cannot rename {} to {path}: {e}", p.tmp.display())),
                None => match std::fs::read(&p.tmp) {
                    Ok(bytes) => {
                        let _ = std::fs::remove_file(&p.tmp);
                        stdout
                            .write_all(&bytes)
                            .and_then(|_| stdout.flush())
                            .map_err(|e| format!("cannot write standard output: {e}"))
                    }
                    Err(e) => Err(format!("cannot read {}: {e}", p.tmp.display())),
                },
            };
            let sink = SinkRows {
                origin: p.origin.clone(),
                path: p.path.clone(),
                rows: rows.get(k).copied().unwrap_or(0),
            };
            live().remove(&p.tmp);
            if let Err(e) = done {
                // The outputs renamed so far stay (their directories are not empty).
                self.pending.drain(..k);
                self.discard();
                return Err(e);
            }
            result.push(sink);
        }
        // Committed: the directories hold the outputs now.
        let mut l = live();
        for d in self.created.drain(..) {
            l.remove(&d);
        }
        self.pending.clear();
        Ok(result)
    }
}

impl Drop for Outputs {
    /// An uncommitted run (an error returned early, an interrupt) leaves nothing behind.
    fn drop(&mut self) {
        self.discard();
    }
}

#[cfg(test)]
mod tests {
    use super::Outputs;

    #[test]
    fn an_uncommitted_run_removes_its_files_and_the_directories_it_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keep = dir.path().join("kept");
        std::fs::create_dir(&keep).expect("mkdir");
        let a = dir.path().join("out/deep/a.csv");
        let b = keep.join("new/b.csv");
        {
            let mut o = Outputs::new("test");
            for p in [&a, &b] {
                let tmp = o.add("s", Some(&p.to_string_lossy())).expect("add");
                std::fs::write(&tmp, "partial").expect("write");
            }
            assert!(dir.path().join("out/deep").is_dir());
        }
        assert!(!dir.path().join("out").exists());
        assert!(keep.is_dir() && !keep.join("new").exists());
    }

    #[test]
    fn a_committed_run_keeps_its_outputs_and_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("out/a.csv");
        let mut o = Outputs::new("test");
        let tmp = o.add("s", Some(&a.to_string_lossy())).expect("add");
        std::fs::write(&tmp, "x\n").expect("write");
        let rows = o.commit(&[1], &mut Vec::new()).expect("commit");
        assert_eq!(rows[0].rows, 1);
        assert_eq!(std::fs::read_to_string(&a).expect("read"), "x\n");
        assert!(!tmp.exists());
    }
}
