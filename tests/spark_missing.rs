//! `flow run --target spark` without Spark or Java (issue 12): a clear error naming what to
//! install and the variable to set, exit code 1, no output. Fast and needs no Spark, so it runs
//! in CI; the runs on a real Spark are `scripts/spark_conformance.sh` (README, heavy suites).

use std::path::Path;
use std::process::{Command, Output};

fn job(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("q.csv"), "a,b\n1,x\n2,y\n").expect("write q.csv");
    let script = dir.join("q.flow");
    std::fs::write(
        &script,
        "schema Q { a: int, b: str }\nsource q: Q = csv(\"q.csv\")\nq | filter a > 1 | sink csv(\"out/q.csv\")\n",
    )
    .expect("write q.flow");
    script
}

fn run(dir: &Path, envs: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flow"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("SPARK_HOME")
        .env_remove("JAVA_HOME")
        .env("HOME", dir); // no ~/.cache/flow-spark to fall back on
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run flow")
}

fn assert_nothing_written(dir: &Path) {
    let out = dir.join("out");
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "files left in {}: {left:?}", out.display());
}

#[test]
fn spark_home_without_spark_sql_names_what_to_install() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("tempdir");
    let script = job(dir.path());
    let out = run(
        dir.path(),
        &[("FLOW_SPARK_HOME", empty.path())],
        &["run", "--target", "spark", &script.to_string_lossy()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for want in [
        "FLOW_SPARK_HOME is",
        "no bin/spark-sql",
        "pip install pyspark",
        "no file output was written",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in: {stderr}");
    }
    assert_nothing_written(dir.path());
}

#[test]
fn missing_java_names_java_17_and_java_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    let no_java = tempfile::tempdir().expect("tempdir");
    // A Spark home as far as the lookup goes (never started: Java is looked for first).
    std::fs::create_dir(home.path().join("bin")).expect("mkdir");
    std::fs::write(home.path().join("bin/spark-sql"), "").expect("write");
    let script = job(dir.path());
    let out = run(
        dir.path(),
        &[
            ("FLOW_SPARK_HOME", home.path()),
            ("JAVA_HOME", no_java.path()),
        ],
        &["run", "--target", "spark", &script.to_string_lossy()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for want in ["JAVA_HOME is", "no bin/java", "Java 17 or later"] {
        assert!(stderr.contains(want), "missing {want:?} in: {stderr}");
    }
    assert_nothing_written(dir.path());
}

#[test]
fn untranslatable_job_is_refused_before_looking_for_spark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("tempdir");
    job(dir.path());
    let script = dir.path().join("l.flow");
    std::fs::write(
        &script,
        "schema Q { a: int, b: str }\nsource q: Q = csv(\"q.csv\")\nq | limit 1 | sink csv(\"out/l.csv\")\n",
    )
    .expect("write l.flow");
    let out = run(
        dir.path(),
        &[("FLOW_SPARK_HOME", empty.path())],
        &["run", "--target", "spark", &script.to_string_lossy()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("E0080") && stderr.contains("`limit`"),
        "{stderr}"
    );
    assert!(!stderr.contains("FLOW_SPARK_HOME"), "{stderr}");
    assert_nothing_written(dir.path());
}
