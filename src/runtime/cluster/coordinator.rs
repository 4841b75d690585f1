//! The coordinator (seed 000's job manager), inside `flow run`: prepares the job, starts the
//! worker processes, connects and authenticates, ships each its part, wires the timely mesh,
//! watches heartbeats, and commits the outputs only when every process reported ready (phase
//! two of the commit); any failure kills every worker process and removes every temporary file.

use super::protocol::{self, Assignment, ToCoordinator, ToWorker};
use crate::plan::ir::Plan;
use crate::runtime::commit::{NodeCounts, Outcome};
use crate::runtime::{JobSpec, ProcessSummary, RunError, RunOptions, RunSummary, prepare};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the coordinator runs a multi-node job.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Worker processes to start on this machine.
    pub nodes: usize,
    /// A worker with no message for this long is taken as hung and the job is ended.
    pub heartbeat_timeout: Duration,
    /// How often workers send a heartbeat.
    pub heartbeat_interval: Duration,
    /// How long starting, connecting and the mesh set-up may take.
    pub connect_timeout: Duration,
    /// Report each worker process (index, pid, address) on standard error.
    pub verbose: bool,
}

impl ClusterOptions {
    pub fn new(nodes: usize) -> ClusterOptions {
        ClusterOptions {
            nodes,
            heartbeat_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(10),
            verbose: false,
        }
    }
}

/// The most worker processes `flow run` starts on one machine.
pub const MAX_NODES: usize = 64;

const HOST: &str = "127.0.0.1";

struct Proc {
    index: usize,
    pid: u32,
    child: Child,
    /// Held open: a spawned worker exits when it closes (this process is gone).
    stdin: Option<ChildStdin>,
    /// Copies the worker's standard output (rows of a stdout sink) to ours.
    forward: Option<JoinHandle<()>>,
    control: Option<TcpStream>,
}

/// The worker processes of a job; dropping it kills and reaps every one still running.
struct Procs(Vec<Proc>);

impl Procs {
    fn kill_all(&mut self) {
        for p in &mut self.0 {
            let _ = p.child.kill();
        }
        for p in &mut self.0 {
            let _ = p.child.wait();
            p.stdin = None;
            if let Some(f) = p.forward.take() {
                let _ = f.join();
            }
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn worker_error(index: usize, pid: Option<u32>, reason: impl Into<String>) -> RunError {
    RunError::Worker {
        index,
        host: HOST.to_string(),
        pid,
        reason: reason.into(),
        cause: None,
    }
}

/// Starts worker `index`: `flow worker --listen 127.0.0.1:0 --once --announce --token-stdin`,
/// the token written on its standard input (never on its command line), its port read from the
/// first line of its standard output by `deadline`.
fn spawn(index: usize, token: &str, deadline: Instant) -> Result<(Proc, SocketAddr), RunError> {
    let exe = std::env::current_exe()
        .map_err(|e| worker_error(index, None, format!("cannot find the flow binary: {e}")))?;
    let mut child = Command::new(exe)
        .args([
            "worker",
            "--listen",
            &format!("{HOST}:0"),
            "--once",
            "--announce",
            "--token-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| worker_error(index, None, format!("cannot start a worker process: {e}")))?;
    let pid = child.id();
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let mut proc = Proc {
        index,
        pid,
        child,
        stdin: None,
        forward: None,
        control: None,
    };
    let wrote = stdin.as_mut().map(|s| {
        s.write_all(format!("{token}\n").as_bytes())
            .and_then(|_| s.flush())
    });
    proc.stdin = stdin;
    if !matches!(wrote, Some(Ok(()))) {
        let _ = proc.child.kill();
        let _ = proc.child.wait();
        return Err(worker_error(
            index,
            Some(pid),
            "cannot hand the job token to the worker",
        ));
    }
    let (tx, rx) = mpsc::channel::<Option<String>>();
    let Some(stdout) = stdout else {
        return Err(worker_error(index, Some(pid), "no standard output"));
    };
    proc.forward = Some(std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(n) if n > 0 => {
                let _ = tx.send(Some(line));
            }
            _ => {
                let _ = tx.send(None);
                return;
            }
        }
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut out = std::io::stdout().lock();
                    if out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    let _ = out.flush();
                }
            }
        }
    }));
    let line = rx.recv_timeout(protocol::left(deadline));
    let addr = match line {
        Ok(Some(ref l)) => l
            .trim()
            .strip_prefix("flow worker listening on ")
            .and_then(|a| a.parse::<SocketAddr>().ok()),
        _ => None,
    };
    match addr {
        Some(a) => Ok((proc, a)),
        None => {
            let _ = proc.child.kill();
            let _ = proc.child.wait();
            let why = match line {
                Err(_) => "did not start listening before the deadline",
                Ok(_) => "exited or printed no listening address",
            };
            Err(worker_error(index, Some(pid), why))
        }
    }
}

/// What one worker's control connection said, or that it closed.
enum Event {
    Msg(ToCoordinator),
    Lost(String),
}

/// Runs `plan` on `copts.nodes` local worker processes of `threads` workers each.
pub fn run_multi(
    plan: &Plan,
    opts: &RunOptions,
    copts: &ClusterOptions,
) -> Result<RunSummary, RunError> {
    if copts.nodes == 0 || copts.nodes > MAX_NODES {
        return Err(RunError::Plan(format!(
            "{} worker processes asked for; it must be between 1 and {MAX_NODES}",
            copts.nodes
        )));
    }
    let mut o = opts.clone();
    o.processes = copts.nodes;
    let prepared = prepare(plan, &o)?;
    match coordinate(&prepared.spec, copts) {
        Ok((mut procs, outcome, per_process)) => match prepared.commit(&outcome) {
            Ok(mut summary) => {
                release(&mut procs);
                summary.processes = per_process;
                Ok(summary)
            }
            Err(e) => Err(e), // `procs` is dropped: every worker is killed
        },
        Err(e) => {
            prepared.abort();
            Err(e)
        }
    }
}

/// Phase two done: releases every worker and waits (briefly) for it to exit.
fn release(procs: &mut Procs) {
    for p in &mut procs.0 {
        if let Some(c) = p.control.as_mut() {
            let _ = protocol::write_frame(c, &ToWorker::Release);
        }
    }
    let until = Instant::now() + Duration::from_secs(5);
    for p in &mut procs.0 {
        while Instant::now() < until {
            if let Ok(Some(_)) = p.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    procs.kill_all();
}

fn source_totals(spec: &JobSpec, o: &Outcome) -> (u64, u64) {
    let mut rows = 0;
    let mut bytes = 0;
    for i in spec.plan.sources() {
        if let Some(c) = o.nodes.get(i) {
            rows += c.rows_in;
            bytes += c.bytes;
        }
    }
    (rows, bytes)
}

fn add(total: &mut Outcome, o: &Outcome) {
    if total.nodes.len() < o.nodes.len() {
        total.nodes.resize(o.nodes.len(), NodeCounts::default());
    }
    for (t, c) in total.nodes.iter_mut().zip(&o.nodes) {
        t.rows_in += c.rows_in;
        t.rows_out += c.rows_out;
        t.errors += c.errors;
        t.bytes += c.bytes;
    }
    for (k, v) in &o.dead_rows {
        *total.dead_rows.entry(k.clone()).or_default() += v;
    }
}

/// How a lost worker went: its exit status if it has one within a moment.
fn exit_reason(child: &mut Child) -> String {
    let until = Instant::now() + Duration::from_millis(200);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                use std::os::unix::process::ExitStatusExt;
                return match status.signal() {
                    Some(sig) => format!("the process was killed by signal {sig}"),
                    None => format!("the process exited with {status}"),
                };
            }
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
            _ => return "the process is still running".into(),
        }
    }
}

fn coordinate(
    spec: &JobSpec,
    copts: &ClusterOptions,
) -> Result<(Procs, Outcome, Vec<ProcessSummary>), RunError> {
    let n = copts.nodes;
    let started = Instant::now();
    let deadline = started + copts.connect_timeout;
    let token = protocol::new_token()
        .map_err(|e| RunError::Internal(format!("cannot make a job token: {e}")))?;
    let mut procs = Procs(Vec::with_capacity(n));
    let mut addrs = Vec::with_capacity(n);
    for i in 0..n {
        let (p, a) = spawn(i, &token, deadline)?;
        if copts.verbose {
            let _ = writeln!(
                std::io::stderr(),
                "flow: worker process {i}: pid {} listening on {a}",
                p.pid
            );
        }
        procs.0.push(p);
        addrs.push(a);
    }
    let hb_ms = copts.heartbeat_interval.as_millis().max(10) as u64;
    for (p, a) in procs.0.iter_mut().zip(&addrs) {
        let (mut c, _pid) = protocol::connect_worker(*a, &token, deadline).map_err(|e| {
            worker_error(p.index, Some(p.pid), format!("cannot connect to it: {e}"))
        })?;
        let job = ToWorker::Job(Box::new(Assignment {
            spec: spec.clone(),
            process: p.index,
            processes: n,
            connect_timeout_ms: protocol::left(deadline).as_millis() as u64,
            heartbeat_ms: hb_ms,
        }));
        protocol::write_frame(&mut c, &job)
            .map_err(|e| worker_error(p.index, Some(p.pid), format!("cannot send the job: {e}")))?;
        p.control = Some(c);
    }
    let mut mesh = Vec::with_capacity(n);
    for p in &mut procs.0 {
        let (index, pid) = (p.index, p.pid);
        let Some(c) = p.control.as_mut() else {
            return Err(worker_error(index, Some(pid), "no control connection"));
        };
        let _ = c.set_read_timeout(Some(protocol::left(deadline)));
        match protocol::read_frame(c) {
            Ok(ToCoordinator::MeshAddress { address }) => mesh.push(address),
            Ok(ToCoordinator::Failed { error }) => {
                return Err(RunError::Worker {
                    index,
                    host: HOST.into(),
                    pid: Some(pid),
                    reason: String::new(),
                    cause: Some(Box::new(error)),
                });
            }
            Ok(_) => return Err(worker_error(index, Some(pid), "unexpected message")),
            Err(e) => {
                return Err(worker_error(
                    index,
                    Some(pid),
                    format!("no mesh address: {e}"),
                ));
            }
        }
        let _ = c.set_read_timeout(None);
    }
    let (tx, rx) = mpsc::channel::<(usize, Event)>();
    for p in &mut procs.0 {
        let Some(c) = p.control.as_mut() else {
            continue;
        };
        protocol::write_frame(
            c,
            &ToWorker::Peers {
                addresses: mesh.clone(),
            },
        )
        .map_err(|e| worker_error(p.index, Some(p.pid), format!("cannot send the peers: {e}")))?;
        let mut r = c
            .try_clone()
            .map_err(|e| RunError::Internal(format!("control connection: {e}")))?;
        let (tx, i) = (tx.clone(), p.index);
        std::thread::spawn(move || {
            loop {
                match protocol::read_frame::<ToCoordinator>(&mut r) {
                    Ok(m) => {
                        let last = matches!(
                            m,
                            ToCoordinator::Ready { .. } | ToCoordinator::Failed { .. }
                        );
                        if tx.send((i, Event::Msg(m))).is_err() || last {
                            break;
                        }
                    }
                    Err(e) => {
                        let why = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                            "closed".to_string()
                        } else {
                            format!("failed ({e})")
                        };
                        let _ = tx.send((i, Event::Lost(why)));
                        break;
                    }
                }
            }
        });
    }
    drop(tx);
    let mut last_seen = vec![Instant::now(); n];
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    // A worker's own failure report that may only be the echo of a peer's death (timely fails
    // every process when one dies): held for a moment in case a lost connection explains it.
    let mut pending: Option<(Instant, RunError)> = None;
    loop {
        if outcomes.iter().all(|o| o.is_some()) {
            break;
        }
        if let Some((at, _)) = &pending
            && at.elapsed() > Duration::from_millis(300)
        {
            let Some((_, e)) = pending.take() else {
                break;
            };
            return Err(e);
        }
        let ev = rx.recv_timeout(Duration::from_millis(20));
        let now = Instant::now();
        match ev {
            Ok((i, Event::Msg(m))) => {
                last_seen[i] = now;
                let pid = procs.0[i].pid;
                match m {
                    ToCoordinator::Ready { outcome } => outcomes[i] = Some(outcome),
                    ToCoordinator::Failed { error } => {
                        let internal = matches!(error, RunError::Internal(_));
                        let e = RunError::Worker {
                            index: i,
                            host: HOST.into(),
                            pid: Some(pid),
                            reason: String::new(),
                            cause: Some(Box::new(error)),
                        };
                        if !internal {
                            return Err(e);
                        }
                        pending.get_or_insert((now, e));
                    }
                    _ => {}
                }
            }
            Ok((i, Event::Lost(why))) => {
                if outcomes[i].is_none() {
                    let pid = procs.0[i].pid;
                    let status = exit_reason(&mut procs.0[i].child);
                    return Err(worker_error(
                        i,
                        Some(pid),
                        format!("its control connection {why}: {status}"),
                    ));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some((_, e)) = pending.take() {
                    return Err(e);
                }
                return Err(RunError::Internal(
                    "every worker connection closed before the job finished".into(),
                ));
            }
        }
        for i in 0..n {
            if outcomes[i].is_none() && now.duration_since(last_seen[i]) > copts.heartbeat_timeout {
                return Err(worker_error(
                    i,
                    Some(procs.0[i].pid),
                    format!(
                        "no heartbeat for {:.1} s (the timeout): the process is hung or cut off",
                        now.duration_since(last_seen[i]).as_secs_f64()
                    ),
                ));
            }
        }
    }
    let mut total = Outcome::default();
    let mut per_process = Vec::with_capacity(n);
    for (i, o) in outcomes.iter().enumerate() {
        let Some(o) = o else { continue };
        add(&mut total, o);
        let (rows_read, bytes_read) = source_totals(spec, o);
        per_process.push(ProcessSummary {
            index: i,
            host: HOST.into(),
            pid: procs.0[i].pid,
            threads: spec.plan.threads,
            rows_read,
            bytes_read,
        });
    }
    Ok((procs, total, per_process))
}
