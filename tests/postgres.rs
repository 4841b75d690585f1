//! Three engines, one script (issue 12): every example and every `tests/sql_cases/*.flow` runs
//! natively, on DuckDB (`flow run --target duckdb`, the CLI from `pip install duckdb-cli`) and on
//! PostgreSQL (`flow run --target $FLOW_TEST_PG_URL`); where the script translates, the outputs
//! (files under `out/` and standard output) must be the same multiset of rows (floats to 9
//! significant digits, JSON numbers by value); where it does not, `flow run --target` must fail with the documented
//! code (E0080/E0081, docs/SQL.md) and write nothing. Plus PostgreSQL's bad-input cases (wrong
//! URL, refused connection, wrong password, a COPY that fails half-way), each bounded in time.
//!
//! Needs a server: `source .ci/setup/30-postgres.sh` (a throw-away cluster; .ci/run does it)
//! sets `FLOW_TEST_PG_URL`. Without it the PostgreSQL tests fail and say so.
//!
//! One test per case: `cargo test --release --test postgres conformance::enrich`.

mod common;

use flow::driver::Session;
use flow::sql::{self, Dialect, DuckDb, Postgres};
use libtest_mimic::{Failed, Trial};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

type Outputs = BTreeMap<String, Vec<String>>;

fn pg_url() -> Result<String, Failed> {
    std::env::var("FLOW_TEST_PG_URL").map_err(|_| {
        Failed::from(
            "FLOW_TEST_PG_URL is not set: these tests need a PostgreSQL server. Start a throw-away one with \
             `source .ci/setup/30-postgres.sh` (as .ci/run does), then run `cargo test --release --test postgres`",
        )
    })
}

/// PATH with the DuckDB CLI's venv (where .ci/run installs it) appended.
fn duckdb_path() -> Result<String, Failed> {
    common::duckdb_path().map_err(Failed::from)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), Failed> {
    std::fs::create_dir_all(to).map_err(|e| format!("create {}: {e}", to.display()))?;
    for e in std::fs::read_dir(from)
        .map_err(|e| format!("read {}: {e}", from.display()))?
        .flatten()
    {
        let p = e.path();
        if e.file_name() == "out" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()))?;
        } else {
            std::fs::copy(&p, to.join(e.file_name()))
                .map_err(|e| format!("copy {}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// One value for comparison: ints as ints, other numbers to 9 significant digits.
fn norm(s: &str) -> String {
    if let Ok(i) = s.parse::<i64>() {
        return i.to_string();
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_nan() => "NaN".into(),
        Ok(x) if x.is_infinite() => format!("{x}"),
        Ok(x) => format!("{x:.8e}"),
        Err(_) => s.to_string(),
    }
}

/// The rows of an output as sorted normalized lines (JSON objects by key).
fn rows(text: &str, json: bool) -> Result<Vec<String>, Failed> {
    let mut v = Vec::new();
    if json {
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            let obj: BTreeMap<String, serde_json::Value> =
                serde_json::from_str(l).map_err(|e| format!("bad JSON line {l}: {e}"))?;
            let fields: Vec<String> = obj
                .iter()
                .map(|(k, v)| {
                    let s = match v {
                        serde_json::Value::String(s) => s.clone(),
                        // A JSON number by value: PostgreSQL writes 0 where flow writes 0.0.
                        serde_json::Value::Number(n) => match n.as_f64() {
                            Some(x) if x.fract() == 0.0 && x.abs() < 9e15 => {
                                format!("{}", x as i64)
                            }
                            _ => n.to_string(),
                        },
                        other => other.to_string(),
                    };
                    format!("{k}={}", norm(&s))
                })
                .collect();
            v.push(fields.join(","));
        }
    } else {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        for rec in r.records() {
            let rec = rec.map_err(|e| format!("bad CSV output: {e}"))?;
            v.push(rec.iter().map(norm).collect::<Vec<_>>().join("|"));
        }
    }
    v.sort();
    Ok(v)
}

struct Run {
    ok: bool,
    stderr: String,
    outputs: Outputs,
    /// Files left in `out/` that are not final outputs (temporary files).
    leftovers: Vec<String>,
}

/// Runs `script` in a fresh copy of `dir` with `args`.
fn run(dir: &Path, script: &str, args: &[&str], path: &str) -> Result<Run, Failed> {
    let work = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    copy_dir(dir, work.path())?;
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .arg("run")
        .args(args)
        .arg(work.path().join(script))
        .env("PATH", path)
        .output()
        .map_err(|e| format!("cannot start flow: {e}"))?;
    let mut outputs = BTreeMap::new();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = stdout.trim_start().starts_with('{');
    outputs.insert("<stdout>".to_string(), rows(&stdout, json)?);
    let mut leftovers = Vec::new();
    if let Ok(entries) = std::fs::read_dir(work.path().join("out")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                leftovers.push(name);
                continue;
            }
            let text = std::fs::read_to_string(e.path()).map_err(|e| format!("{name}: {e}"))?;
            outputs.insert(name.clone(), rows(&text, name.ends_with(".jsonl"))?);
        }
    }
    Ok(Run {
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs,
        leftovers,
    })
}

/// `sql::compile` of a script: Ok, or the codes of its refusals.
fn translates(file: &Path, d: &dyn Dialect) -> Result<Result<(), Vec<String>>, Failed> {
    let mut s = Session::default();
    if !s.load_paths(&[file]).is_empty() {
        return Err(format!("cannot read {}", file.display()).into());
    }
    let plan = s
        .plan()
        .map_err(|d| format!("{} does not check: {d:?}", file.display()))?;
    Ok(sql::compile(plan, d)
        .map(|_| ())
        .map_err(|errs| errs.iter().map(|e| e.code.as_str().to_string()).collect()))
}

/// Scripts whose engine runs stop on purpose where flow computes something (docs/SQL.md
/// "stops"): the expected message.
fn stops(case: &str) -> Option<&'static str> {
    match case {
        "upper_non_ascii" => Some("upper of non-ASCII text is not translated"),
        _ => None,
    }
}

fn conformance(group: &str, dir: &'static str, case: String) -> Trial {
    Trial::test(format!("conformance::{group}{case}"), move || {
        let url = pg_url()?;
        let path = duckdb_path()?;
        let script = format!("{case}.flow");
        let file = Path::new(dir).join(&script);
        let native = run(Path::new(dir), &script, &["-q"], &path)?;
        for (d, target) in [
            (&DuckDb as &dyn Dialect, "duckdb".to_string()),
            (&Postgres, url),
        ] {
            let name = d.name();
            let started = Instant::now();
            let engine = run(Path::new(dir), &script, &["-q", "--target", &target], &path)?;
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("{case} on {name} took {:?}", started.elapsed()).into());
            }
            if !engine.leftovers.is_empty() {
                return Err(format!("{case} on {name} left {:?}", engine.leftovers).into());
            }
            if engine.stderr.contains("panicked") {
                return Err(format!("{case} on {name}: {}", engine.stderr).into());
            }
            match translates(&file, d)? {
                Err(codes) => {
                    if let Some(c) = codes.iter().find(|c| *c != "E0080" && *c != "E0081") {
                        return Err(format!("{case} on {name}: undocumented refusal {c}").into());
                    }
                    if engine.ok {
                        return Err(
                            format!("{case} on {name} ran although it does not translate").into(),
                        );
                    }
                    for c in &codes {
                        if !engine.stderr.contains(&format!("[{c}]")) {
                            return Err(format!(
                                "{case} on {name}: expected diagnostic {c}, got:\n{}",
                                engine.stderr
                            )
                            .into());
                        }
                    }
                    if engine.outputs.values().any(|v| !v.is_empty()) || engine.outputs.len() > 1 {
                        return Err(format!("{case} on {name} wrote {:?}", engine.outputs).into());
                    }
                }
                Ok(()) => {
                    if let Some(msg) = stops(&case) {
                        if engine.ok || !engine.stderr.contains(msg) {
                            return Err(format!(
                                "{case} on {name}: expected the job to stop with {msg:?}; ok={}, stderr:\n{}",
                                engine.ok, engine.stderr
                            )
                            .into());
                        }
                    } else if !native.ok {
                        // Fails natively (e.g. division by zero): fails there too, no outputs.
                        if engine.ok {
                            return Err(format!(
                                "{case} fails natively ({}) but succeeded on {name}",
                                native.stderr.trim()
                            )
                            .into());
                        }
                        if engine.outputs.len() != native.outputs.len() {
                            return Err(
                                format!("{case} on {name} wrote {:?}", engine.outputs).into()
                            );
                        }
                    } else {
                        if !engine.ok {
                            return Err(
                                format!("{case} on {name} failed:\n{}", engine.stderr).into()
                            );
                        }
                        if native.outputs.keys().ne(engine.outputs.keys()) {
                            return Err(format!(
                                "{case} on {name}: outputs {:?}, natively {:?}",
                                engine.outputs.keys().collect::<Vec<_>>(),
                                native.outputs.keys().collect::<Vec<_>>()
                            )
                            .into());
                        }
                        for (k, want) in &native.outputs {
                            if want != &engine.outputs[k] {
                                return Err(format!(
                                    "{case} on {name}: output {k} differs\nnative: {want:?}\n{name}: {:?}",
                                    engine.outputs[k]
                                )
                                .into());
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    })
}

// ---- bad input ----

/// Runs `flow run --target URL` on the divzero case's copy, with `env`; must fail within
/// `limit` with `want` in its message, never showing `secret`, and write nothing.
fn bad_target(
    url: &str,
    env: &[(&str, &str)],
    want: &str,
    secret: Option<&str>,
    limit: Duration,
) -> Result<(), Failed> {
    let work = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    copy_dir(Path::new("tests/sql_cases"), work.path())?;
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flow"));
    cmd.args(["run", "-q", "--target", url])
        .arg(work.path().join("tricky.flow"))
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", work.path().join("no-such-pgpass"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start flow: {e}"))?;
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1) {
        return Err(format!("exit {:?}, expected 1: {stderr}", out.status.code()).into());
    }
    if !stderr.contains(want) {
        return Err(format!("expected {want:?} in:\n{stderr}").into());
    }
    if let Some(s) = secret
        && stderr.contains(s)
    {
        return Err(format!("the password is printed:\n{stderr}").into());
    }
    if took > limit {
        return Err(format!("took {took:?}, more than {limit:?}").into());
    }
    if work.path().join("out").exists()
        && std::fs::read_dir(work.path().join("out")).is_ok_and(|mut d| d.next().is_some())
    {
        return Err("an output was written".into());
    }
    Ok(())
}

/// The test server's URL with another password (and the real one).
fn with_password(url: &str, password: &str) -> Result<(String, String), Failed> {
    let (head, rest) = url
        .split_once("://")
        .ok_or("FLOW_TEST_PG_URL has no scheme")?;
    let (auth, host) = rest.split_once('@').ok_or("FLOW_TEST_PG_URL has no user")?;
    let (user, real) = auth
        .split_once(':')
        .ok_or("FLOW_TEST_PG_URL has no password")?;
    let url = if password.is_empty() {
        format!("{head}://{user}@{host}")
    } else {
        format!("{head}://{user}:{password}@{host}")
    };
    Ok((url, real.to_string()))
}

fn bad_input() -> Vec<Trial> {
    let secs = Duration::from_secs;
    vec![
        Trial::test("bad_input::malformed_url", move || {
            bad_target(
                "postgres://u:pw@[::1/db",
                &[],
                "is not a valid PostgreSQL URL",
                Some(":pw@"),
                secs(5),
            )
        }),
        Trial::test("bad_input::refused_connection", move || {
            // A port that was free a moment ago: nothing listens there.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("bind: {e}"))?
                .port();
            bad_target(
                &format!("postgres://u:hunter2@127.0.0.1:{port}/db"),
                &[],
                "Connection refused",
                Some("hunter2"),
                secs(5),
            )
        }),
        Trial::test("bad_input::unreachable_host_times_out", move || {
            // A non-routable address: the connect timeout bounds the wait.
            bad_target(
                "postgres://u:hunter2@10.255.255.1:5432/db",
                &[("FLOW_PG_CONNECT_TIMEOUT", "2")],
                "cannot connect to postgres://u:***@10.255.255.1:5432/db",
                Some("hunter2"),
                secs(8),
            )
        }),
        Trial::test("bad_input::wrong_password", move || {
            let (url, real) = with_password(&pg_url()?, "wrong-password")?;
            bad_target(
                &url,
                &[],
                "password authentication failed",
                Some("wrong-password"),
                secs(10),
            )?;
            if url.contains(&real) {
                return Err("test setup: the wrong password is the real one".into());
            }
            Ok(())
        }),
        Trial::test("bad_input::missing_password", move || {
            let (url, _) = with_password(&pg_url()?, "")?;
            bad_target(&url, &[], "password", None, secs(10))
        }),
        Trial::test("password_from_pgpassword", move || {
            let (url, real) = with_password(&pg_url()?, "")?;
            password_source(&url, &[("PGPASSWORD", real.as_str())], None)
        }),
        Trial::test("password_from_pgpass_file", move || {
            let (url, real) = with_password(&pg_url()?, "")?;
            password_source(&url, &[], Some(&real))
        }),
        Trial::test("bad_input::copy_fails_half_way", copy_fails_half_way),
        Trial::test("statement_timeout_stops_a_long_statement", move || {
            let url = pg_url()?;
            let started = Instant::now();
            let mut client =
                flow::sql::postgres::connect_with(&url, secs(10), Duration::from_millis(500))?;
            let e = client
                .batch_execute("SELECT pg_sleep(10)")
                .err()
                .ok_or("pg_sleep(10) finished despite a 0.5 s statement timeout")?;
            let text = flow::sql::postgres::error_text(&e);
            if !text.contains("statement timeout") {
                return Err(format!("unexpected error: {text}").into());
            }
            if started.elapsed() > secs(5) {
                return Err(format!("took {:?}", started.elapsed()).into());
            }
            Ok(())
        }),
        Trial::test(
            "limit_after_group_is_any_n_groups",
            limit_after_group_is_any_n_groups,
        ),
        Trial::test("engine_stop_points_at_the_expression", move || {
            let url = pg_url()?;
            let path = duckdb_path()?;
            for target in ["duckdb", url.as_str()] {
                let r = run(
                    Path::new("tests/sql_cases"),
                    "divzero.flow",
                    &["--target", target],
                    &path,
                )?;
                for want in ["[E0070]", "division by zero", "divzero.flow:4:14", "a / b"] {
                    if r.ok || !r.stderr.contains(want) {
                        return Err(format!("{target}: expected {want:?} in:\n{}", r.stderr).into());
                    }
                }
                if r.stderr.contains("[at ") {
                    return Err(format!("the raw place tag is shown:\n{}", r.stderr).into());
                }
            }
            Ok(())
        }),
    ]
}

/// `group … | filter … | limit N` translates on every dialect (flow's limit after a group is
/// any N groups): natively, on DuckDB and on PostgreSQL it writes N of the group's rows.
fn limit_after_group_is_any_n_groups() -> Result<(), Failed> {
    let url = pg_url()?;
    let path = duckdb_path()?;
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let mut csv = String::from("k,v\n");
    for i in 0..60 {
        csv.push_str(&format!("k{},{}\n", i % 6, i));
    }
    std::fs::write(dir.path().join("r.csv"), csv).map_err(|e| format!("write: {e}"))?;
    std::fs::write(
        dir.path().join("g.flow"),
        "schema R { k: str, v: int }\nsource r: R = csv(\"r.csv\", header: true)\n\
         let g = r | group k { n: count(), s: sum(v) }\n\
         g | sink csv(\"out/all.csv\", header: true)\n\
         g | filter n > 0 | map { k, s } | limit 3 | sink csv(\"out/some.csv\", header: true)\n",
    )
    .map_err(|e| format!("write: {e}"))?;
    for target in [None, Some("duckdb"), Some(url.as_str())] {
        let mut args = vec!["-q"];
        if let Some(t) = target {
            args.extend(["--target", t]);
        }
        let name = target.unwrap_or("native");
        let r = run(dir.path(), "g.flow", &args, &path)?;
        if !r.ok {
            return Err(format!("{name} failed:\n{}", r.stderr).into());
        }
        let all = &r.outputs["all.csv"];
        let some = &r.outputs["some.csv"];
        // Header and 6 groups; header and 3 of them (as `k|s`).
        if all.len() != 7 || some.len() != 4 {
            return Err(format!("{name}: all {all:?}, some {some:?}").into());
        }
        let pairs: Vec<String> = all
            .iter()
            .map(|l| {
                let f: Vec<&str> = l.split('|').collect();
                format!("{}|{}", f[0], f.get(2).unwrap_or(&""))
            })
            .collect();
        if let Some(x) = some.iter().find(|l| !pairs.contains(l)) {
            return Err(format!("{name}: {x} is not a group row of {pairs:?}").into());
        }
    }
    Ok(())
}

/// A run without a password in the URL succeeds with the password from the environment or a
/// password file.
fn password_source(url: &str, env: &[(&str, &str)], pgpass: Option<&str>) -> Result<(), Failed> {
    let work = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    copy_dir(Path::new("tests/sql_cases"), work.path())?;
    let pgpass_file = work.path().join("pgpass");
    let text = match pgpass {
        Some(pw) => format!("otherhost:*:*:*:nope\n*:*:*:flow_test:{pw}\n"),
        None => String::new(),
    };
    std::fs::write(&pgpass_file, text).map_err(|e| format!("write pgpass: {e}"))?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flow"));
    cmd.args(["run", "--target", url])
        .arg(work.path().join("tricky.flow"))
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", &pgpass_file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start flow: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("failed: {stderr}").into());
    }
    if !stderr.contains("on PostgreSQL (postgres://flow_test@") || !stderr.contains("wrote ") {
        return Err(format!("unexpected summary: {stderr}").into());
    }
    Ok(())
}

/// A bad value deep in a long input: the COPY has sent thousands of rows when the server
/// rejects line 3001; the message names the line and column, nothing is written.
fn copy_fails_half_way() -> Result<(), Failed> {
    let url = pg_url()?;
    let work = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let mut csv = String::from("a,b\n");
    for i in 0..3000 {
        csv.push_str(&format!("{i},{}\n", i % 7 + 1));
    }
    csv.push_str("oops,1\n");
    for i in 0..3000 {
        csv.push_str(&format!("{i},1\n"));
    }
    std::fs::write(work.path().join("big.csv"), csv).map_err(|e| format!("write: {e}"))?;
    std::fs::write(
        work.path().join("big.flow"),
        "schema T { a: int, b: int }\nsource t: T = csv(\"big.csv\")\nt | map { q: a / b } | sink csv(\"out/q.csv\")\n",
    )
    .map_err(|e| format!("write: {e}"))?;
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["run", "-q", "--target", &url])
        .arg(work.path().join("big.flow"))
        .output()
        .map_err(|e| format!("cannot start flow: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1) {
        return Err(format!("exit {:?}: {stderr}", out.status.code()).into());
    }
    for want in ["invalid input syntax for type bigint", "line 3002", "oops"] {
        if !stderr.contains(want) {
            return Err(format!("expected {want:?} in:\n{stderr}").into());
        }
    }
    let (_, real) = with_password(&url, "")?;
    if stderr.contains(&real) {
        return Err("the password is printed".into());
    }
    if started.elapsed() > Duration::from_secs(20) {
        return Err(format!("took {:?}", started.elapsed()).into());
    }
    let out_dir = work.path().join("out");
    if out_dir.exists() && std::fs::read_dir(&out_dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err("an output (or its temporary file) was left".into());
    }
    Ok(())
}

fn main() {
    let mut trials = Vec::new();
    for case in common::cases("examples") {
        trials.push(conformance("", "examples", case.name));
    }
    for case in common::cases("tests/sql_cases") {
        trials.push(conformance("sql_cases::", "tests/sql_cases", case.name));
    }
    trials.extend(bad_input());
    common::run(trials);
}
