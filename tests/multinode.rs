//! Multi-node mode end to end: the real `flow` binary starts real worker processes that talk
//! over real sockets on 127.0.0.1. Every example gives the same rows (as a multiset) on 2 and 3
//! worker processes as in one process; a killed or stopped worker fails the job fast, naming the
//! worker, with no output file and no process left; a wrong token is refused; a row error in a
//! worker fails the job with the row.

mod common;

use common::alive;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FLOW: &str = env!("CARGO_BIN_EXE_flow");

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A fresh copy of `examples/` (scripts and data) to run in.
fn examples_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir("examples").unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if e.file_type().unwrap().is_dir() {
            if name == "data" {
                copy_dir(&e.path(), &dir.path().join("data"));
            }
        } else {
            std::fs::copy(e.path(), dir.path().join(name)).unwrap();
        }
    }
    dir
}

/// Every file under `dir` (relative path → bytes).
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(base, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(base).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Rounds every decimal number in a line to 9 significant digits (sums of floats differ in the
/// last bits with the order rows were added in).
fn normalize(line: &str) -> String {
    let mut out = String::new();
    let mut num = String::new();
    let flush = |num: &mut String, out: &mut String| {
        if num.contains('.')
            && let Ok(x) = num.parse::<f64>()
        {
            out.push_str(&format!("{x:.9e}"));
        } else {
            out.push_str(num);
        }
        num.clear();
    };
    for c in line.chars() {
        if c.is_ascii_digit()
            || c == '.'
            || (c == '-' && num.is_empty())
            || c == 'e' && !num.is_empty()
        {
            num.push(c);
        } else {
            flush(&mut num, &mut out);
            out.push(c);
        }
    }
    flush(&mut num, &mut out);
    out
}

fn multiset(bytes: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(bytes)
        .lines()
        .map(normalize)
        .collect();
    lines.sort();
    lines
}

/// Runs `script` in `dir` with `args`; returns (exit code, stdout, stderr).
fn run(dir: &Path, script: &str, args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let out = Command::new(FLOW)
        .current_dir(dir)
        .arg("run")
        .args(args)
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The outputs (files created by the run, and stdout) of `script` with `args`, as multisets.
fn outputs(script: &str, args: &[&str]) -> BTreeMap<String, Vec<String>> {
    outputs_as(script, None, args)
}

/// [`outputs`] of `script` rewritten with `mode` (see [`with_hints`]).
fn outputs_as(script: &str, mode: Option<&str>, args: &[&str]) -> BTreeMap<String, Vec<String>> {
    outputs_hinted(script, mode, None, args)
}

/// [`outputs`] of `script` rewritten with `mode` and `@parallel(n)` hints ([`with_hints`]); a
/// rewritten script must run with no warning (every hint honoured).
fn outputs_hinted(
    script: &str,
    mode: Option<&str>,
    parallel: Option<u32>,
    args: &[&str],
) -> BTreeMap<String, Vec<String>> {
    let dir = examples_copy();
    if let Some(mode) = mode {
        let text = std::fs::read_to_string(dir.path().join(script)).unwrap();
        let hinted = with_hints(&text, mode, parallel);
        if parallel.is_some() {
            assert!(
                hinted.contains("@parallel("),
                "{script}: no stage got a hint"
            );
        }
        std::fs::write(dir.path().join(script), hinted).unwrap();
    }
    let before = files(dir.path());
    let (code, stdout, stderr) = run(dir.path(), script, args);
    assert_eq!(code, Some(0), "{script} {mode:?} {args:?}: {stderr}");
    if mode.is_some() {
        assert!(
            !stderr.contains("warning"),
            "{script} with {mode:?}: {stderr}"
        );
    }
    let mut out = BTreeMap::new();
    for (p, bytes) in files(dir.path()) {
        if !before.contains_key(&p) {
            out.insert(p.display().to_string(), multiset(&bytes));
        }
    }
    out.insert("<stdout>".into(), multiset(&stdout));
    out
}

fn same_as_single_node(script: &str, nodes: &str) {
    let single = outputs(script, &["--threads", "1", "-q"]);
    let multi = outputs(script, &["--nodes", nodes, "--threads", "1", "-q"]);
    assert_eq!(
        single.keys().collect::<Vec<_>>(),
        multi.keys().collect::<Vec<_>>(),
        "{script}: the same outputs"
    );
    for (k, v) in &single {
        assert_eq!(Some(v), multi.get(k), "{script} on {nodes} processes: {k}");
    }
}

macro_rules! example_cases {
    ($($name:ident: $script:literal, $nodes:literal;)*) => {
        $(
            #[test]
            fn $name() {
                same_as_single_node($script, $nodes);
            }
        )*
    };
}

example_cases! {
    enrich_on_2_processes: "enrich.flow", "2";
    enrich_on_3_processes: "enrich.flow", "3";
    fanout_on_2_processes: "fanout.flow", "2";
    fanout_on_3_processes: "fanout.flow", "3";
    logs_on_2_processes: "logs.flow", "2";
    logs_on_3_processes: "logs.flow", "3";
    ranking_on_2_processes: "ranking.flow", "2";
    ranking_on_3_processes: "ranking.flow", "3";
    sales_on_2_processes: "sales.flow", "2";
    sales_on_3_processes: "sales.flow", "3";
    stdlib_on_2_processes: "stdlib.flow", "2";
    stdlib_on_3_processes: "stdlib.flow", "3";
    trips_on_2_processes: "trips.flow", "2";
    trips_on_3_processes: "trips.flow", "3";
}

/// `script` with its mode replaced by `mode` and, when `parallel` is given, `@parallel(n)` on
/// every stage written on one line (appended to the line: it belongs to its last stage).
fn with_hints(text: &str, mode: &str, parallel: Option<u32>) -> String {
    let mut out = format!("{mode}\n");
    for line in text.lines() {
        if line.trim_start().starts_with("mode ") {
            continue;
        }
        let balanced = |open: char, close: char| {
            line.chars().filter(|&c| c == open).count()
                == line.chars().filter(|&c| c == close).count()
        };
        let stage = (line.trim_start().starts_with("| ") || line.contains(" | "))
            && !line.trim_start().starts_with('#')
            && !line.contains('@')
            && balanced('(', ')')
            && balanced('{', '}');
        out.push_str(line);
        if let (Some(n), true) = (parallel, stage) {
            out.push_str(&format!(" @parallel({n})"));
        }
        out.push('\n');
    }
    out
}

/// The outputs of `script` run with `mode` and `@parallel` hints (and `args`) are the outputs of
/// the script as written on one worker, as multisets; the run reports no warning.
fn hinted_same_as_default(script: &str, mode: &str, parallel: Option<u32>, args: &[&str]) {
    let single = outputs(script, &["--threads", "1", "-q"]);
    let hinted = outputs_hinted(script, Some(mode), parallel, args);
    assert_eq!(
        single.keys().collect::<Vec<_>>(),
        hinted.keys().collect::<Vec<_>>(),
        "{script}: the same outputs"
    );
    for (k, v) in &single {
        assert_eq!(
            Some(v),
            hinted.get(k),
            "{script} with {mode} {parallel:?}: {k}"
        );
    }
}

macro_rules! hint_cases {
    ($($name:ident: $script:literal, $mode:expr, $parallel:expr, $args:expr;)*) => {
        $(
            #[test]
            fn $name() {
                hinted_same_as_default($script, $mode, $parallel, $args);
            }
        )*
    };
}

const R1P3: &str = "mode single(readers: 1, processors: 3)";
const R2P1: &str = "mode single(readers: 2, processors: 1, batch: 7)";
const R1P2: &str = "mode single(readers: 1, processors: 2, batch: 5)";

hint_cases! {
    enrich_readers_1_processors_3: "enrich.flow", R1P3, None, &["-q"];
    enrich_readers_2_processors_1: "enrich.flow", R2P1, None, &["-q"];
    enrich_parallel_1: "enrich.flow", R1P3, Some(1), &["-q"];
    enrich_parallel_2_on_2_processes: "enrich.flow", R1P2, Some(2), &["-q", "--nodes", "2"];
    fanout_readers_1_processors_3: "fanout.flow", R1P3, None, &["-q"];
    fanout_readers_2_processors_1: "fanout.flow", R2P1, None, &["-q"];
    fanout_parallel_1: "fanout.flow", R1P3, Some(1), &["-q"];
    fanout_parallel_2_on_2_processes: "fanout.flow", R1P2, Some(2), &["-q", "--nodes", "2"];
    join_readers_1_processors_3: "join.flow", R1P3, None, &["-q"];
    join_readers_2_processors_1: "join.flow", R2P1, None, &["-q"];
    join_parallel_1: "join.flow", R1P3, Some(1), &["-q"];
    join_parallel_2_on_2_processes: "join.flow", R1P2, Some(2), &["-q", "--nodes", "2"];
    logs_readers_1_processors_3: "logs.flow", R1P3, None, &["-q"];
    logs_readers_2_processors_1: "logs.flow", R2P1, None, &["-q"];
    logs_parallel_1: "logs.flow", R1P3, Some(1), &["-q"];
    logs_parallel_2_on_2_processes: "logs.flow", R1P2, Some(2), &["-q", "--nodes", "2"];
    sales_readers_1_processors_3: "sales.flow", R1P3, None, &["-q"];
    sales_readers_2_processors_1: "sales.flow", R2P1, None, &["-q"];
    sales_parallel_1: "sales.flow", R1P3, Some(1), &["-q"];
    sales_parallel_2_on_2_processes: "sales.flow", R1P2, Some(2), &["-q", "--nodes", "2"];
    stdlib_readers_1_processors_3: "stdlib.flow", R1P3, None, &["-q"];
    stdlib_readers_2_processors_1: "stdlib.flow", R2P1, None, &["-q"];
    stdlib_parallel_1: "stdlib.flow", R1P3, Some(1), &["-q"];
    stdlib_parallel_2_on_2_processes: "stdlib.flow", R1P2, Some(2), &["-q", "--nodes", "2"];
    trips_readers_1_processors_3: "trips.flow", R1P3, None, &["-q"];
    trips_readers_2_processors_1: "trips.flow", R2P1, None, &["-q"];
    trips_parallel_1: "trips.flow", R1P3, Some(1), &["-q"];
    trips_parallel_2_on_2_processes: "trips.flow", R1P2, Some(2), &["-q", "--nodes", "2"];
    sales_readers_1_processors_3_scaled_to_threads_6: "sales.flow", R1P3, None, &["-q", "--threads", "6"];
    trips_readers_2_processors_1_scaled_to_threads_5: "trips.flow", R2P1, None, &["-q", "--threads", "5"];
}

/// sales.flow of `examples/` under `mode single(readers: 1, processors: 3)`: (its directory).
fn sales_r1p3() -> tempfile::TempDir {
    let dir = examples_copy();
    let text = std::fs::read_to_string(dir.path().join("sales.flow")).unwrap();
    std::fs::write(dir.path().join("sales.flow"), with_hints(&text, R1P3, None)).unwrap();
    dir
}

#[test]
fn threads_from_the_command_line_keep_the_readers_processors_split() {
    let dir = sales_r1p3();
    // 1 of 4 read: with --threads 6, 2 of 6 (rounded) read and 4 process.
    let out = Command::new(FLOW)
        .current_dir(dir.path())
        .args(["explain", "--layout", "--threads", "6", "sales.flow"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("threads 0..2 read and parse (readers), threads 2..6 run the other stages"),
        "{text}"
    );
    let (code, _, err) = run(
        dir.path(),
        "sales.flow",
        &["--threads", "6", "--summary", "json"],
    );
    assert_eq!(code, Some(0), "{err}");
    let summary: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    let layout = summary["layout"].as_str().unwrap();
    assert!(
        layout.contains("mode single(readers: 1, processors: 3) scaled to --threads 6: 2 reader threads reading and parsing, 4 processor threads"),
        "{layout}"
    );
    assert_eq!(summary["threads"], 6);
    assert!(summary["warnings"].as_array().unwrap().is_empty(), "{err}");
}

#[test]
fn threads_1_under_a_readers_processors_split_is_a_warning() {
    let dir = sales_r1p3();
    let before = files(dir.path());
    let (code, stdout, err) = run(dir.path(), "sales.flow", &["--threads", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("warning: --threads 1 runs mode single(readers: 1, processors: 3) on one worker that reads and processes"),
        "{err}"
    );
    // The same rows as the script as written.
    let mut got = BTreeMap::new();
    for (p, bytes) in files(dir.path()) {
        if !before.contains_key(&p) {
            got.insert(p.display().to_string(), multiset(&bytes));
        }
    }
    got.insert("<stdout>".to_string(), multiset(&stdout));
    assert_eq!(got, outputs("sales.flow", &["--threads", "1", "-q"]));
}

#[test]
fn every_example_is_covered() {
    let mut scripts: Vec<String> = std::fs::read_dir("examples")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".flow"))
        .collect();
    scripts.sort();
    assert_eq!(
        scripts,
        [
            "enrich.flow",
            "fanout.flow",
            "join.flow",
            "logs.flow",
            "ranking.flow",
            "sales.flow",
            "stdlib.flow",
            "trips.flow"
        ],
        "a new example needs its multi-node cases above"
    );
}

/// A directory with a generated input of `rows` rows and the scripts of the fault tests.
/// Rows of the input of the fault tests that stop, kill or watch `slow.flow` mid-run (at
/// `--batch 1`): enough that the job still runs when the signal comes (about 2 s on 2 cores;
/// 300k rows once were, before small batches got cheap).
const SLOW_ROWS: usize = 2_000_000;

fn big_job(rows: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,k,v\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},{},{}\n", i % 97, i * 7 % 1000));
    }
    std::fs::write(dir.path().join("big.csv"), csv).unwrap();
    std::fs::write(
        dir.path().join("slow.flow"),
        "schema R { id: int, k: int, v: int }\n\
         source r: R = csv(\"big.csv\", header: true)\n\
         r | filter v > 10 | map { id, k, w: v * 2 } | sink csv(\"out/slow.csv\", header: true)\n\
         r | group k { n: count(), s: sum(v) } | sink csv(\"out/groups.csv\", header: true)\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.flow"),
        "schema R { id: int, k: int, v: int }\n\
         source r: R = csv(\"big.csv\", header: true)\n\
         r | map { id, q: 1000 / (v - 500) } | sink csv(\"out/bad.csv\", header: true)\n",
    )
    .unwrap();
    dir
}

#[test]
fn a_large_input_is_read_by_every_process_and_grouped_across_them() {
    let dir = big_job(300_000);
    let (code, _, single_err) = run(dir.path(), "slow.flow", &["--threads", "1", "-q"]);
    assert_eq!(code, Some(0), "{single_err}");
    let single = multiset(&std::fs::read(dir.path().join("out/groups.csv")).unwrap());
    let single_rows = multiset(&std::fs::read(dir.path().join("out/slow.csv")).unwrap());
    let (code, _, err) = run(
        dir.path(),
        "slow.flow",
        &["--nodes", "3", "--threads", "1", "--summary", "json"],
    );
    assert_eq!(code, Some(0), "{err}");
    let summary: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    let procs = summary["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 3, "{err}");
    let total: u64 = procs.iter().map(|p| p["rows_read"].as_u64().unwrap()).sum();
    assert_eq!(total, 300_000);
    for p in procs {
        assert!(
            p["rows_read"].as_u64().unwrap() > 0,
            "every process reads: {err}"
        );
    }
    assert!(
        summary["layout"]
            .as_str()
            .unwrap()
            .starts_with("multi-node: 3 worker processes")
    );
    assert_eq!(
        multiset(&std::fs::read(dir.path().join("out/groups.csv")).unwrap()),
        single
    );
    assert_eq!(
        multiset(&std::fs::read(dir.path().join("out/slow.csv")).unwrap()),
        single_rows
    );
}

/// A slow multi-node run (batch 1) with `--verbose`, its stderr read line by line: returns the
/// child, the worker pids (by index) and a receiver of the remaining stderr.
struct Running {
    child: std::process::Child,
    pids: Vec<u32>,
    rest: std::sync::mpsc::Receiver<String>,
}

fn start_slow(dir: &Path, nodes: usize, extra: &[&str]) -> Running {
    let n = nodes.to_string();
    let mut child = Command::new(FLOW)
        .current_dir(dir)
        .args([
            "run",
            "--nodes",
            &n,
            "--threads",
            "1",
            "--batch",
            "1",
            "--verbose",
        ])
        .args(extra)
        .arg("slow.flow")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut pids = vec![0u32; nodes];
    let mut seen = 0;
    let until = Instant::now() + Duration::from_secs(20);
    while seen < nodes {
        let line = rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .expect("the coordinator reports its workers");
        if let Some(rest) = line.strip_prefix("flow: worker process ") {
            let (i, rest) = rest.split_once(": pid ").unwrap();
            let pid = rest.split_whitespace().next().unwrap();
            pids[i.parse::<usize>().unwrap()] = pid.parse().unwrap();
            seen += 1;
        }
    }
    Running {
        child,
        pids,
        rest: rx,
    }
}

/// Waits for the coordinator to exit; returns its exit code, stderr and the time it took.
fn finish(mut r: Running, from: Instant) -> (Option<i32>, String, Duration) {
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = r.child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let _ = r.child.kill();
            panic!("the coordinator did not exit");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = from.elapsed();
    let mut err = String::new();
    while let Ok(l) = r.rest.recv_timeout(Duration::from_millis(500)) {
        err.push_str(&l);
        err.push('\n');
    }
    for pid in &r.pids {
        assert!(!alive(*pid), "worker pid {pid} is still running");
    }
    (status.code(), err, took)
}

fn no_outputs(dir: &Path) {
    let left: Vec<_> = files(&dir.join("out")).into_keys().collect();
    assert!(left.is_empty(), "files left in out/: {left:?}");
}

/// Starts a slow job on `nodes` processes, sends `signal` to worker process 1 after 600 ms and
/// waits for the coordinator: (the worker's pid, exit code, stderr, time from the signal).
fn signal_worker(
    dir: &Path,
    nodes: usize,
    extra: &[&str],
    signal: &str,
) -> (u32, Option<i32>, String, Duration) {
    let r = start_slow(dir, nodes, extra);
    std::thread::sleep(Duration::from_millis(600));
    let victim = r.pids[1];
    let sent = Instant::now();
    Command::new("kill")
        .args([signal, &victim.to_string()])
        .status()
        .unwrap();
    let (code, err, took) = finish(r, sent);
    eprintln!("kill {signal} to the coordinator's exit: {took:?}");
    (victim, code, err, took)
}

#[test]
fn a_killed_worker_fails_the_job_within_two_seconds() {
    let dir = big_job(SLOW_ROWS);
    let (victim, code, err, took) = signal_worker(dir.path(), 3, &[], "-9");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("worker process 1 on 127.0.0.1 (pid {victim})"))
            && err.contains("killed by signal 9"),
        "{err}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(!err.contains("panicked"), "{err}");
    no_outputs(dir.path());
}

#[test]
fn a_stopped_worker_is_found_by_its_missed_heartbeats() {
    let dir = big_job(SLOW_ROWS);
    let (victim, code, err, took) =
        signal_worker(dir.path(), 2, &["--heartbeat-timeout", "1.5"], "-STOP");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("worker process 1 on 127.0.0.1 (pid {victim})"))
            && err.contains("no heartbeat"),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(1200) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    no_outputs(dir.path());
}

#[test]
fn a_row_error_in_a_worker_fails_the_job_with_the_row() {
    let dir = big_job(200_000);
    let (code, _, err) = run(dir.path(), "bad.flow", &["--nodes", "2", "--threads", "1"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("division by zero"), "{err}");
    assert!(err.contains("the row: {\"id\":"), "{err}");
    assert!(err.contains("in worker process "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    no_outputs(dir.path());
}

/// `flow worker --once --announce` with `token` in its environment, as a coordinator would
/// start one (its stderr as given): the process and the address it listens on.
fn once_worker(token: &str, stderr: Stdio) -> (std::process::Child, std::net::SocketAddr) {
    let mut worker = Command::new(FLOW)
        .args(["worker", "--listen", "127.0.0.1:0", "--once", "--announce"])
        .env(flow::runtime::cluster::protocol::TOKEN_VAR, token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(worker.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("flow worker listening on ")
        .unwrap()
        .parse()
        .unwrap();
    (worker, addr)
}

#[test]
fn a_wrong_token_is_refused_and_logged() {
    use flow::runtime::cluster::protocol;
    let (mut worker, addr) = once_worker("the-right-token", Stdio::piped());
    let deadline = Instant::now() + Duration::from_secs(5);
    let wrong = protocol::connect_worker(addr, "a-wrong-token", deadline);
    let e = wrong.expect_err("a wrong token is refused").to_string();
    assert!(
        e.contains("refused") && e.contains("wrong job token"),
        "{e}"
    );
    // The worker keeps waiting for its coordinator: the right token gets in.
    let right = protocol::connect_worker(addr, "the-right-token", deadline);
    let (conn, pid) = right.expect("the right token is accepted");
    assert_eq!(pid, worker.id());
    drop(conn);
    let status = worker.wait().unwrap();
    assert!(!status.success());
    let mut err = String::new();
    worker
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("refused a connection from 127.0.0.1:") && err.contains("wrong job token"),
        "{err}"
    );
}

#[test]
fn a_retry_succeeds_after_a_worker_is_killed() {
    let dir = big_job(SLOW_ROWS);
    let (_, code, err, _) = signal_worker(dir.path(), 2, &["--retries", "1"], "-9");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("attempt 1 failed: worker process 1 on 127.0.0.1")
            && err.contains("retrying from scratch (1 of 1)"),
        "{err}"
    );
    for line in err.lines() {
        if let Some(rest) = line.strip_prefix("flow: worker process ") {
            let pid: u32 = rest
                .split(": pid ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(!alive(pid), "second-attempt worker {pid} is still running");
        }
    }
    let rows = std::fs::read_to_string(dir.path().join("out/slow.csv")).unwrap();
    assert_eq!(rows.lines().count(), 1 + SLOW_ROWS - count_small(SLOW_ROWS));
}

/// Rows of `big_job(rows)` with `v <= 10` (dropped by the filter of slow.flow).
fn count_small(rows: usize) -> usize {
    (0..rows).filter(|i| i * 7 % 1000 <= 10).count()
}

/// A worker daemon (`flow worker --listen 127.0.0.1:0`, token from a file) on loopback; killed
/// when dropped.
struct Daemon {
    child: std::process::Child,
    addr: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn daemon(token_file: &Path) -> Daemon {
    let mut child = Command::new(FLOW)
        .args([
            "worker",
            "--listen",
            "127.0.0.1:0",
            "--announce",
            "--token-file",
        ])
        .arg(token_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("flow worker listening on ")
        .unwrap_or_else(|| panic!("no address: {line:?}"))
        .to_string();
    Daemon { child, addr }
}

/// The processes whose parent is `pid` (the job processes a daemon started).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat"))
            && let Some((_, rest)) = stat.rsplit_once(')')
            && rest.split_whitespace().nth(1) == Some(&pid.to_string())
            && alive(p)
        {
            out.push(p);
        }
    }
    out
}

/// Two daemons on loopback sharing a token file, and the hosts file that names them.
struct TwoDaemons {
    secrets: tempfile::TempDir,
    daemons: [Daemon; 2],
    hosts: PathBuf,
    token: PathBuf,
}

impl TwoDaemons {
    fn start() -> TwoDaemons {
        let secrets = tempfile::tempdir().unwrap();
        let token = secrets.path().join("token");
        std::fs::write(&token, "a-cluster-token\n").unwrap();
        let daemons = [daemon(&token), daemon(&token)];
        let hosts = secrets.path().join("hosts");
        std::fs::write(
            &hosts,
            format!("# two daemons\n{}\n{}\n", daemons[0].addr, daemons[1].addr),
        )
        .unwrap();
        TwoDaemons {
            secrets,
            daemons,
            hosts,
            token,
        }
    }

    /// `flow run` arguments that run a job on them, 1 thread each, quietly.
    fn args(&self) -> [&str; 7] {
        [
            "-q",
            "--threads",
            "1",
            "--hosts",
            self.hosts.to_str().unwrap(),
            "--token-file",
            self.token.to_str().unwrap(),
        ]
    }
}

#[test]
fn jobs_run_on_worker_daemons_one_after_another() {
    let two = TwoDaemons::start();
    let (secrets, daemons, hosts) = (&two.secrets, &two.daemons, &two.hosts);
    let args = two.args();
    // Twice: a daemon serves one job, then is idle again for the next.
    for script in ["sales.flow", "fanout.flow"] {
        let single = outputs(script, &["--threads", "1", "-q"]);
        let multi = outputs_as(script, Some("mode multi(nodes: 2)"), &args);
        assert_eq!(single, multi, "{script} on two daemons");
        for d in daemons {
            assert!(alive(d.child.id()), "the daemon keeps running");
            let until = Instant::now() + Duration::from_secs(5);
            while !children_of(d.child.id()).is_empty() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                children_of(d.child.id()).is_empty(),
                "the job's worker process on {} is gone",
                d.addr
            );
        }
    }
    // A coordinator with another token is refused by the daemon.
    let wrong = secrets.path().join("wrong");
    std::fs::write(&wrong, "another-token\n").unwrap();
    let dir = examples_copy();
    let text = std::fs::read_to_string(dir.path().join("sales.flow")).unwrap();
    std::fs::write(
        dir.path().join("multi.flow"),
        with_hints(&text, "mode multi(nodes: 2)", None),
    )
    .unwrap();
    let (code, _, stderr) = run(
        dir.path(),
        "multi.flow",
        &[
            "-q",
            "--hosts",
            hosts.to_str().unwrap(),
            "--token-file",
            wrong.to_str().unwrap(),
            "--connect-timeout",
            "2",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("wrong job token"), "{stderr}");
    no_outputs(dir.path());
}

#[test]
fn a_daemon_nobody_runs_fails_the_job_at_the_connect_deadline() {
    // A port that was free a moment ago: nobody listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secrets = tempfile::tempdir().unwrap();
    let hosts = secrets.path().join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1:{port}\n")).unwrap();
    let dir = examples_copy();
    let text = std::fs::read_to_string(dir.path().join("sales.flow")).unwrap();
    std::fs::write(
        dir.path().join("multi.flow"),
        with_hints(&text, "mode multi(nodes: 2)", None),
    )
    .unwrap();
    let before = files(dir.path());
    let started = Instant::now();
    let out = Command::new(FLOW)
        .current_dir(dir.path())
        .args(["run", "--hosts"])
        .arg(&hosts)
        .args(["--connect-timeout", "1", "multi.flow"])
        .env("FLOW_JOB_TOKEN", "a-cluster-token")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("worker process 0") || stderr.contains("worker 0"),
        "names the worker: {stderr}"
    );
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("cannot reach its daemon"), "{stderr}");
    assert!(took < Duration::from_secs(4), "failed after {took:?}");
    assert!(out.stdout.is_empty(), "no rows on stdout");
    assert_eq!(files(dir.path()), before, "no output written");
}

/// A tmux server of its own (`tmux -L NAME`, killed when dropped, however the test ends) whose
/// one pane runs `flow run ARGS slow.flow` in `dir` once Enter is pressed, every byte written to
/// the terminal logged to `dir/pane.log` (the bar is cleared at the end, so the screen alone
/// would not show it). Returns the log and the screen once the run printed its exit code.
struct Tmux {
    socket: String,
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux must be installed (apt-get install tmux) for this test");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn run_in_terminal(name: &str, dir: &Path, args: &[&str]) -> (String, String) {
    let t = Tmux {
        socket: format!("flow-mn-{name}-{}", std::process::id()),
    };
    let cmd = format!(
        "sh -c 'read go; {FLOW} run {} slow.flow > stdout.txt; echo EXIT=$?; sleep 60'",
        args.join(" ")
    );
    let status = Command::new("tmux")
        .args(["-L", &t.socket, "-f", "/dev/null", "new-session", "-d"])
        .args(["-x", "220", "-y", "40", "-c"])
        .arg(dir)
        .arg(&cmd)
        .status()
        .expect("tmux must be installed (apt-get install tmux) for this test");
    assert!(status.success(), "tmux new-session failed");
    let log = dir.join("pane.log");
    t.cmd(&["pipe-pane", "-o", &format!("cat >> '{}'", log.display())]);
    t.cmd(&["send-keys", "Enter"]);
    let until = Instant::now() + Duration::from_secs(30);
    let screen = loop {
        let s = t.cmd(&["capture-pane", "-p", "-S", "-100"]);
        if s.contains("EXIT=") {
            break s;
        }
        assert!(Instant::now() < until, "the run did not finish:\n{s}");
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(t);
    let bytes = std::fs::read(&log).unwrap_or_default();
    (String::from_utf8_lossy(&bytes).replace('\r', "\n"), screen)
}

/// The output rows of slow.flow are all there (300k input rows, the small `v` filtered out).
fn slow_outputs_complete(dir: &Path, rows: usize) {
    let out = std::fs::read_to_string(dir.join("out/slow.csv")).unwrap();
    assert_eq!(out.lines().count(), 1 + rows - count_small(rows));
    let groups = std::fs::read_to_string(dir.join("out/groups.csv")).unwrap();
    assert_eq!(groups.lines().count(), 1 + 97);
    let n: u64 = groups
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(n, rows as u64);
}

#[test]
fn a_multi_node_job_shows_one_progress_bar_on_a_terminal() {
    let dir = big_job(SLOW_ROWS);
    let args = ["--nodes", "2", "--threads", "1", "--batch", "4"];
    let (log, screen) = run_in_terminal("bar", dir.path(), &args);
    assert!(screen.contains("EXIT=0"), "{screen}");
    let bars: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" rows read (") && l.contains(" · 2 worker processes: "))
        .collect();
    assert!(!bars.is_empty(), "no progress bar drawn:\n{log}");
    // The bar counts the rows the workers' heartbeats report, each process's and the total.
    let moving = bars.iter().any(|l| {
        let each = l.split(" · 2 worker processes: ").nth(1).unwrap_or("");
        let counts: Vec<u64> = each
            .trim_end()
            .trim_end_matches(" rows")
            .split(" / ")
            .filter_map(|c| c.parse().ok())
            .collect();
        counts.len() == 2 && counts.iter().all(|c| *c > 0)
    });
    assert!(
        moving,
        "the bar never showed rows of both workers:\n{bars:?}"
    );
    // And the rows the sinks took, from the per-stage counts in the heartbeats.
    let written = bars.iter().any(|l| {
        l.split(" rows written · ")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    });
    assert!(written, "the bar never showed rows written:\n{bars:?}");
    // Cleared at the end: the summary, with its line per worker process, is what stays.
    assert!(!screen.contains(" rows read ("), "{screen}");
    for p in 0..2 {
        assert!(
            screen.contains(&format!("worker process {p} on 127.0.0.1 (pid ")),
            "{screen}"
        );
    }
    slow_outputs_complete(dir.path(), SLOW_ROWS);
}

#[test]
fn the_progress_bar_is_hidden_with_quiet_and_off_a_terminal() {
    let dir = big_job(SLOW_ROWS);
    let args = ["--nodes", "2", "--threads", "1", "--batch", "4", "-q"];
    let (log, screen) = run_in_terminal("quiet", dir.path(), &args);
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(!log.contains(" rows read ("), "a bar under -q:\n{log}");
    assert!(
        !log.contains("worker process 0"),
        "a summary under -q:\n{log}"
    );
    slow_outputs_complete(dir.path(), SLOW_ROWS);
    std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    // Standard error not a terminal: the summary, no bar.
    let (code, _, err) = run(dir.path(), "slow.flow", &args[..6]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("worker process 1 on 127.0.0.1"), "{err}");
    assert!(!err.contains(" rows read ("), "{err}");
    slow_outputs_complete(dir.path(), SLOW_ROWS);
}

/// slow.flow of `big_job` with `mode multi(nodes: 2, threads: 1, retries: 1)`.
fn with_retries_in_the_mode(dir: &Path) {
    let path = dir.join("slow.flow");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("mode multi(nodes: 2, threads: 1, retries: 1)\n{text}"),
    )
    .unwrap();
}

#[test]
fn a_retry_asked_for_in_the_mode_succeeds_after_a_worker_is_killed() {
    let dir = big_job(SLOW_ROWS);
    with_retries_in_the_mode(dir.path());
    let (_, code, err, _) = signal_worker(dir.path(), 2, &[], "-9");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("attempt 1 failed: worker process 1 on 127.0.0.1")
            && err.contains("retrying from scratch (1 of 1)"),
        "{err}"
    );
    let rows = std::fs::read_to_string(dir.path().join("out/slow.csv")).unwrap();
    assert_eq!(rows.lines().count(), 1 + SLOW_ROWS - count_small(SLOW_ROWS));
}

#[test]
fn retries_on_the_command_line_override_the_mode() {
    let dir = big_job(SLOW_ROWS);
    with_retries_in_the_mode(dir.path());
    let (victim, code, err, _) = signal_worker(dir.path(), 2, &["--retries", "0"], "-9");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("worker process 1 on 127.0.0.1 (pid {victim})")),
        "{err}"
    );
    assert!(!err.contains("retrying"), "{err}");
    no_outputs(dir.path());
}

#[test]
fn per_worker_stage_counts_sum_to_the_single_node_counts() {
    let dir = big_job(300_000);
    let json = |args: &[&str]| -> serde_json::Value {
        let (code, _, err) = run(dir.path(), "slow.flow", args);
        assert_eq!(code, Some(0), "{err}");
        serde_json::from_str(err.trim()).unwrap()
    };
    let single = json(&["--threads", "1", "--summary", "json"]);
    let multi = json(&["--nodes", "3", "--threads", "1", "--summary", "json"]);
    let stages = single["stages"].as_array().unwrap();
    let procs = multi["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 3, "{multi}");
    for st in stages {
        let node = st["node"].as_u64().unwrap();
        for field in ["rows_in", "rows_out"] {
            let each: Vec<u64> = procs
                .iter()
                .map(|p| {
                    let s = p["stages"].as_array().unwrap();
                    let s = s.iter().find(|s| s["node"].as_u64() == Some(node));
                    s.unwrap_or_else(|| panic!("no stage {node} in {p}"))[field]
                        .as_u64()
                        .unwrap()
                })
                .collect();
            assert_eq!(
                each.iter().sum::<u64>(),
                st[field].as_u64().unwrap(),
                "{} {field}: {each:?} over the processes vs single-node",
                st["name"]
            );
        }
    }
    // Every process read a part (the stage counts are really per process).
    for p in procs {
        assert!(p["rows_read"].as_u64().unwrap() > 0, "{p}");
    }
    // The human summary lists the stages under each worker process.
    let (code, _, err) = run(dir.path(), "slow.flow", &["--nodes", "2", "--threads", "1"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("  worker process 0 on 127.0.0.1"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(lines[at + 1].starts_with("    source #0 (r)"), "{err}");
}

#[test]
fn heartbeats_carry_the_counts_of_every_stage_while_the_job_runs() {
    use flow::runtime::cluster::protocol::{self, Assignment, ToCoordinator, ToWorker};
    use flow::runtime::physical::PhysOp;
    let dir = big_job(200_000);
    let script = dir.path().join("slow.flow");
    let mut session = flow::driver::Session::default();
    session.set_file(
        &script.to_string_lossy(),
        &std::fs::read_to_string(&script).unwrap(),
    );
    let plan = session.plan().expect("slow.flow checks");
    let mut opts = flow::runtime::RunOptions::for_engine(flow::codegen::Engine::Jit);
    opts.threads = Some(1);
    opts.batch = Some(1);
    let prepared = flow::runtime::prepare(plan, &opts).unwrap();
    let spec = prepared.spec.clone();
    let sinks: Vec<usize> = (spec.plan.nodes.iter().enumerate())
        .filter(|(_, n)| matches!(n.op, PhysOp::Sink { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(sinks.len(), 2);
    // A worker process as `flow run` starts one, driven here through the wire protocol.
    let token = "a-test-token";
    let (mut worker, addr) = once_worker(token, Stdio::null());
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut c, _) = protocol::connect_worker(addr, token, deadline).unwrap();
    let job = Assignment {
        spec: spec.clone(),
        process: 0,
        processes: 1,
        connect_timeout_ms: 5000,
        heartbeat_ms: 10,
        cwd: None,
    };
    protocol::write_frame(&mut c, &ToWorker::Job(Box::new(job))).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let ToCoordinator::MeshAddress { address } = protocol::read_frame(&mut c).unwrap() else {
        panic!("no mesh address")
    };
    let peers = ToWorker::Peers {
        addresses: vec![address],
    };
    protocol::write_frame(&mut c, &peers).unwrap();
    let mut beats = Vec::new();
    let outcome = loop {
        match protocol::read_frame(&mut c).unwrap() {
            ToCoordinator::Heartbeat { nodes } => beats.push(nodes),
            ToCoordinator::Ready { outcome } => break outcome,
            other => panic!("unexpected {other:?}"),
        }
    };
    protocol::write_frame(&mut c, &ToWorker::Release).unwrap();
    assert!(worker.wait().unwrap().success());
    prepared.abort();
    assert!(beats.len() >= 2, "{} heartbeats", beats.len());
    for b in &beats {
        assert_eq!(b.len(), spec.plan.nodes.len(), "a count for every stage");
    }
    // The counts only grow, and end at most at the final ones.
    let last = beats.len() - 1;
    for (k, b) in beats.iter().enumerate() {
        let next = if k == last {
            &outcome.nodes
        } else {
            &beats[k + 1]
        };
        for (x, y) in b.iter().zip(next) {
            assert!(
                x.rows_in <= y.rows_in && x.rows_out <= y.rows_out,
                "{x:?} {y:?}"
            );
        }
    }
    // Mid-run, a heartbeat showed rows reaching a sink: per-stage progress, not rows read only.
    let mid_run = beats.iter().any(|b| {
        sinks
            .iter()
            .any(|&s| b[s].rows_in > 0 && b[s].rows_in < outcome.nodes[s].rows_in)
    });
    assert!(mid_run, "no heartbeat showed a sink's rows mid-run");
    assert_eq!(outcome.nodes[0].rows_in, 200_000);
}

#[test]
fn dead_letters_from_daemon_workers_name_the_input_as_single_node_does() {
    // The daemons run in this test's directory, not the script's: their workers run in the
    // coordinator's directory, so every relative path names the same file as single-node.
    let two = TwoDaemons::start();
    let args = two.args();
    let single = outputs("logs.flow", &["--threads", "1", "-q"]);
    let multi = outputs_as("logs.flow", Some("mode multi(nodes: 2)"), &args);
    let (_, bad) = single
        .iter()
        .find(|(p, _)| p.ends_with("logs_bad_lines.jsonl"))
        .expect("logs.flow writes its bad lines");
    assert!(
        !bad.is_empty()
            && bad
                .iter()
                .all(|l| l.contains("\"file\":\"data/logs.jsonl\"")),
        "{bad:?}"
    );
    assert_eq!(single, multi, "logs.flow on two daemons");
}

#[test]
fn the_summary_states_the_layout_processes_times_threads() {
    let dir = big_job(1000);
    let done = |args: &[&str]| -> String {
        let (code, _, err) = run(dir.path(), "slow.flow", args);
        assert_eq!(code, Some(0), "{err}");
        let line = err.lines().find(|l| l.starts_with("done in "));
        line.unwrap_or_else(|| panic!("no summary line in {err}"))
            .to_string()
    };
    let multi = done(&["--nodes", "3", "--threads", "2"]);
    assert!(
        multi.contains(" on 3 processes × 2 threads (batch "),
        "{multi}"
    );
    let multi = done(&["--nodes", "2", "--threads", "1"]);
    assert!(
        multi.contains(" on 2 processes × 1 thread (batch "),
        "{multi}"
    );
    let single = done(&["--threads", "2"]);
    assert!(single.contains(" on 2 threads (batch "), "{single}");
}
