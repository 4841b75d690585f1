//! Atomic sink outputs of a job run on another engine (DuckDB, PostgreSQL): every sink is first
//! written to a temporary file beside its final name (standard output: a temporary file too);
//! only when the whole job succeeded are the files renamed (and standard output copied); on
//! failure they are removed, so an output is complete or absent.

use std::io::Write;
use std::path::{Path, PathBuf};

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
}

impl Outputs {
    pub fn new(engine: &'static str) -> Outputs {
        Outputs {
            engine,
            pending: Vec::new(),
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
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
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
        self.pending.push(Pending {
            origin: origin.to_string(),
            path: path.map(str::to_string),
            tmp: tmp.clone(),
        });
        Ok(tmp)
    }

    /// Removes every temporary file (the job failed).
    pub fn discard(&self) {
        for p in &self.pending {
            let _ = std::fs::remove_file(&p.tmp);
        }
    }

    /// The job succeeded with `rows[k]` rows in sink `k`: renames the files into place and
    /// copies standard-output sinks to `stdout`.
    pub fn commit(self, rows: &[u64], stdout: &mut dyn Write) -> Result<Vec<SinkRows>, String> {
        let mut result = Vec::new();
        for (k, p) in self.pending.iter().enumerate() {
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
            if let Err(e) = done {
                self.discard();
                return Err(e);
            }
            result.push(SinkRows {
                origin: p.origin.clone(),
                path: p.path.clone(),
                rows: rows.get(k).copied().unwrap_or(0),
            });
        }
        Ok(result)
    }
}
