//! Runs a job's Spark SQL statements on a local Spark with its `spark-sql` command-line program
//! (`bin/spark-sql` of a Spark installation, e.g. the `pyspark` PyPI package, on Java 17+):
//! one JVM per job reading the same SQL `flow compile --target sql:spark` prints, from a file.
//! Why not `spark-submit` of a Python driver or Spark Connect: `spark-sql -f` needs no Python
//! process, no py4j and no server, it stops at the first failing statement with exit code 1 and
//! its error on standard error, and the query results (the row counts) on standard output.
//!
//! Where Spark is: `FLOW_SPARK_HOME` (a Spark home: `bin/spark-sql` inside; set but without it
//! is an error), else `SPARK_HOME`, else `spark-sql` on `PATH`, else the `pyspark` package in
//! `~/.cache/flow-spark/venv` (where `scripts/spark_conformance.sh` installs it). Java:
//! `JAVA_HOME/bin/java`, else `java` on `PATH`.
//!
//! Outputs stay atomic (`outputs`): each sink is cached (`CACHE TABLE`, its row count), written
//! with `INSERT OVERWRITE DIRECTORY` into a work directory, and after the whole job succeeded
//! flow writes the sink's file beside its final name (flow's CSV header, then the part files)
//! and renames it into place; on failure, timeout or interrupt nothing is renamed. Spark runs
//! in its own process group with a deadline on the whole submission (`FLOW_SPARK_TIMEOUT`
//! seconds, default 3600); on the deadline or SIGINT/SIGTERM/SIGHUP the group is killed
//! (`interrupt`: an interrupt exits 130/143/129 with the work directory and the temporary
//! outputs removed, and the directories created for them).
//! Spark binds to 127.0.0.1 only, without its web UI; its catalog is in memory.

use super::dialect::{Dialect, Format};
use super::interrupt::{Interrupt, deadline, guarded, supervise};
use super::outputs::{Outputs, SinkRows};
use super::spark::Spark;
use super::{Statement, StatementKind};
use crate::connectors::RowWriter;
use crate::connectors::csv::CsvWriter;
use crate::types::{Field, RowType, Type};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where the `pyspark` package is looked for last (under `~`).
pub const DEFAULT_VENV: &str = ".cache/flow-spark/venv";

const INSTALL: &str = "install Spark with `python3 -m venv ~/.cache/flow-spark/venv && ~/.cache/flow-spark/venv/bin/pip install pyspark` (flow looks there), or set FLOW_SPARK_HOME to a Spark home (the directory with bin/spark-sql), or put spark-sql on PATH";

/// A Spark installation: its `spark-sql` program and, when known, its home.
#[derive(Debug)]
pub struct Install {
    pub spark_sql: PathBuf,
    pub home: Option<PathBuf>,
    pub java: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|c| c.is_file())
}

fn home_with_cli(home: &Path) -> Option<PathBuf> {
    let cli = home.join("bin").join("spark-sql");
    cli.is_file().then_some(cli)
}

/// The `pyspark` package directories of the default venv (`lib/python3.*/site-packages/pyspark`).
fn default_home() -> Option<PathBuf> {
    let venv = Path::new(&std::env::var_os("HOME")?).join(DEFAULT_VENV);
    let mut libs: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .ok()?
        .flatten()
        .map(|e| e.path().join("site-packages").join("pyspark"))
        .filter(|p| home_with_cli(p).is_some())
        .collect();
    libs.sort();
    libs.pop()
}

/// Finds Spark and Java (see the module doc); the error names what to install or set.
pub fn find() -> Result<Install, String> {
    let (spark_sql, home) = if let Some(h) = std::env::var_os("FLOW_SPARK_HOME") {
        let h = PathBuf::from(h);
        match home_with_cli(&h) {
            Some(cli) => (cli, Some(h)),
            None => {
                return Err(format!(
                    "FLOW_SPARK_HOME is {} but there is no bin/spark-sql in it; {INSTALL}",
                    h.display()
                ));
            }
        }
    } else if let Some((cli, h)) = std::env::var_os("SPARK_HOME")
        .map(PathBuf::from)
        .and_then(|h| home_with_cli(&h).map(|c| (c, h)))
    {
        (cli, Some(h))
    } else if let Some(cli) = on_path("spark-sql") {
        (cli, None)
    } else if let Some(h) = default_home() {
        (home_with_cli(&h).unwrap_or_default(), Some(h))
    } else {
        return Err(format!("Spark was not found; {INSTALL}"));
    };
    let java = match std::env::var_os("JAVA_HOME") {
        Some(j) => {
            let java = Path::new(&j).join("bin").join("java");
            if !java.is_file() {
                return Err(format!(
                    "JAVA_HOME is {} but there is no bin/java in it; Spark needs Java 17 or later: install it (e.g. `apt-get install openjdk-17-jre-headless`) or fix JAVA_HOME",
                    Path::new(&j).display()
                ));
            }
            java
        }
        None => on_path("java").ok_or_else(|| {
            "Java was not found on PATH; Spark needs Java 17 or later: install it (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME".to_string()
        })?,
    };
    Ok(Install {
        spark_sql,
        home,
        java,
    })
}

/// The deadline of the whole submission: `FLOW_SPARK_TIMEOUT` seconds (default 3600).
pub fn timeout() -> Result<Duration, String> {
    deadline("FLOW_SPARK_TIMEOUT")
}

/// One sink of the run: where Spark writes its part files, how flow assembles them.
struct SinkDir {
    dir: PathBuf,
    /// A CSV header's column names and delimiter.
    header: Option<(Vec<String>, u8)>,
}

/// Writes the header line of `columns` to `out` with flow's own CSV writer (no rows).
fn write_header(out: &std::fs::File, columns: &[String], delimiter: u8) -> std::io::Result<()> {
    let row = RowType::new(
        columns
            .iter()
            .map(|c| Field {
                name: c.clone(),
                ty: Type::STR,
            })
            .collect(),
    );
    let mut w = CsvWriter::new(Box::new(out.try_clone()?), &row, delimiter, true);
    w.finish()
}

/// Writes `tmp`: the header, then every `part-*` file of `dir` in name order.
fn assemble(sink: &SinkDir, tmp: &Path) -> Result<(), String> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(&sink.dir)
        .map_err(|e| format!("Spark wrote no output in {}: {e}", sink.dir.display()))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
        .map(|e| e.path())
        .collect();
    parts.sort();
    let mut out =
        std::fs::File::create(tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let write_err = |e: std::io::Error| format!("cannot write {}: {e}", tmp.display());
    if let Some((columns, delimiter)) = &sink.header {
        write_header(&out, columns, *delimiter).map_err(write_err)?;
    }
    for p in parts {
        let mut f =
            std::fs::File::open(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        std::io::copy(&mut f, &mut out).map_err(write_err)?;
    }
    out.flush().map_err(write_err)
}

/// The message of a failed run: standard error without Spark's log lines and stack frames.
fn spark_error(stderr: &str) -> String {
    let noise = [
        "WARNING: Using incubator modules",
        "Using Spark's default log4j profile",
        "Setting default log level",
        "To adjust logging level",
        "Setting Spark log level",
        "Time taken:",
    ];
    let log = regex::Regex::new(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARN|ERROR) ").ok();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !noise.iter().any(|n| l.starts_with(n)))
        .filter(|l| !l.trim_start().starts_with("at ") && !l.trim_start().starts_with("..."))
        .filter(|l| !log.as_ref().is_some_and(|r| r.is_match(l)))
        .filter(|l| !l.starts_with("org.apache.spark.") && !l.starts_with("Caused by:"))
        .take(12)
        .collect();
    if lines.is_empty() {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    } else {
        lines.join("\n")
    }
}

/// Runs `statements` (from `compile(plan, &Spark)`) on a local Spark; standard-output sinks are
/// written to `stdout` after the job succeeded.
pub fn run(statements: &[Statement], stdout: &mut dyn Write) -> Result<Vec<SinkRows>, String> {
    guarded("Spark", |stop| run_until(statements, stdout, stop))
}

fn run_until(
    statements: &[Statement],
    stdout: &mut dyn Write,
    stop: &Interrupt,
) -> Result<Vec<SinkRows>, String> {
    let install = find()?;
    let deadline = timeout()?;
    let work = tempfile::Builder::new()
        .prefix("flow-spark-")
        .tempdir()
        .map_err(|e| format!("cannot create a work directory for Spark: {e}"))?;
    let d = Spark;
    let mut outputs = Outputs::new("spark");
    let mut sinks = Vec::new();
    let mut script = String::new();
    for st in statements {
        match &st.kind {
            StatementKind::Insert { origin, .. } => {
                return Err(format!(
                    "sink {origin}: a PostgreSQL table cannot be loaded by Spark"
                ));
            }
            StatementKind::Setup | StatementKind::Load { .. } => {
                script.push_str(&st.sql);
                script.push_str(";\n");
            }
            StatementKind::Sink {
                origin,
                path,
                format,
                query,
                columns,
            } => {
                let k = sinks.len();
                outputs.add(origin, path.as_deref())?;
                let table = d.ident(&format!("flow_sink_{k}"));
                let dir = work.path().join(format!("sink_{k}"));
                script.push_str(&format!("CACHE TABLE {table} AS {query};\n"));
                script.push_str(&format!(
                    "SELECT 'flow-rows', {k}, count(*) FROM {table};\n"
                ));
                let dir_text = dir.to_string_lossy().into_owned();
                let write = d.write(&format!("SELECT * FROM {table}"), Some(&dir_text), *format)?;
                script.push_str(&write);
                script.push_str(";\n");
                let header = match format {
                    Format::Csv {
                        header: true,
                        delimiter,
                    } => Some((columns.clone(), *delimiter)),
                    _ => None,
                };
                sinks.push(SinkDir { dir, header });
            }
        }
    }
    let job = work.path().join("job.sql");
    std::fs::write(&job, &script).map_err(|e| format!("cannot write {}: {e}", job.display()))?;
    let out_path = work.path().join("stdout.txt");
    let err_path = work.path().join("stderr.txt");
    let open = |p: &Path| {
        std::fs::File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
    };
    let (out_file, err_file) = (open(&out_path)?, open(&err_path)?);
    let warehouse = work.path().join("warehouse");
    let mut cmd = Command::new(&install.spark_sql);
    cmd.args(["-S", "--master", "local[*]"]);
    for conf in [
        "spark.ui.enabled=false".to_string(),
        "spark.log.level=ERROR".into(),
        "spark.sql.catalogImplementation=in-memory".into(),
        format!("spark.sql.warehouse.dir={}", warehouse.display()),
        "spark.driver.bindAddress=127.0.0.1".into(),
        "spark.driver.host=127.0.0.1".into(),
        "spark.sql.session.timeZone=UTC".into(),
    ] {
        cmd.arg("--conf").arg(conf);
    }
    cmd.arg("--driver-java-options")
        .arg(format!("-Dderby.system.home={}", work.path().display()));
    cmd.arg("-f").arg(&job);
    cmd.env("SPARK_LOCAL_IP", "127.0.0.1");
    if let Some(h) = &install.home {
        cmd.env("SPARK_HOME", h);
    }
    cmd.stdin(Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .process_group(0);
    // Interrupts stop Spark (in its own process group, so the terminal's Ctrl-C reaches only
    // flow) and leave no output.
    stop.check()?;
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start {}: {e}; {INSTALL}",
            install.spark_sql.display()
        )
    })?;
    let result = supervise(&mut child, "Spark", (deadline, "FLOW_SPARK_TIMEOUT"), stop);
    let status = result?;
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "the job failed in Spark ({status}): {}",
            spark_error(&stderr)
        ));
    }
    let text = std::fs::read_to_string(&out_path)
        .map_err(|e| format!("cannot read {}: {e}", out_path.display()))?;
    let mut rows = vec![None; sinks.len()];
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if let [tag, k, n] = f[..]
            && tag == "flow-rows"
            && let (Ok(k), Ok(n)) = (k.trim().parse::<usize>(), n.trim().parse::<u64>())
            && k < rows.len()
        {
            rows[k] = Some(n);
        }
    }
    if rows.iter().any(Option::is_none) {
        return Err(format!(
            "Spark did not report the row counts of the sinks; it printed: {}",
            text.trim()
        ));
    }
    for (sink, p) in sinks.iter().zip(&outputs.pending) {
        assemble(sink, &p.tmp)?;
    }
    let rows: Vec<u64> = rows.into_iter().map(|n| n.unwrap_or(0)).collect();
    stop.check()?;
    outputs.commit(&rows, stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_flows_csv_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("h.csv");
        let f = std::fs::File::create(&p).expect("create");
        let cols = vec!["a".to_string(), "b,c".into(), "d\"e".into()];
        write_header(&f, &cols, b',').expect("write");
        assert_eq!(
            std::fs::read(&p).expect("read"),
            b"a,\"b,c\",\"d\"\"e\"\n".to_vec()
        );
    }

    #[test]
    fn errors_keep_the_message_and_drop_the_logs() {
        let err = "WARNING: Using incubator modules: jdk.incubator.vector\n\
                   26/12/01 13:26:22 ERROR Executor: Exception in task 0.0\n\
                   org.apache.spark.SparkRuntimeException: [USER_RAISED_EXCEPTION] x\n\
                   \tat org.apache.Foo(Foo.scala:1)\n\
                   [USER_RAISED_EXCEPTION] flow: boom [at 0:1-2] SQLSTATE: P0001\n";
        assert_eq!(
            spark_error(err),
            "[USER_RAISED_EXCEPTION] flow: boom [at 0:1-2] SQLSTATE: P0001"
        );
    }
}
