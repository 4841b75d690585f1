//! The coordinator (seed 000's job manager), inside `flow run`: prepares the job, starts the
//! worker processes, connects and authenticates, ships each its part, wires the timely mesh,
//! watches heartbeats, and commits the outputs only when every process reported ready (phase
//! two of the commit); any failure kills every worker process and removes every temporary file.

use super::Spawned;
use super::protocol::{self, Assignment, ToCoordinator, ToWorker};
use super::trace::mark;
use crate::plan::ir::Plan;
use crate::runtime::commit::{NodeCounts, Outcome};
use crate::runtime::progress::{Progress, Reading};
use crate::runtime::{
    JobSpec, ProcessStage, ProcessSummary, RunError, RunOptions, RunSummary, prepare,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
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
    /// Daemons (`flow worker --listen`) to run the job on, `host:port` each: one worker process
    /// per entry, in order (`nodes` is then ignored). Empty: start `nodes` processes here.
    pub hosts: Vec<String>,
    /// The daemons' token (from `--token-file` or `FLOW_JOB_TOKEN`), needed with `hosts`.
    pub token: Option<String>,
}

impl ClusterOptions {
    pub fn new(nodes: usize) -> ClusterOptions {
        ClusterOptions {
            nodes,
            heartbeat_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(10),
            verbose: false,
            hosts: Vec::new(),
            token: None,
        }
    }

    /// How many worker processes the job runs on.
    pub fn processes(&self) -> usize {
        if self.hosts.is_empty() {
            self.nodes
        } else {
            self.hosts.len()
        }
    }
}

/// The most worker processes `flow run` starts on one machine.
pub const MAX_NODES: usize = 64;

const HOST: &str = "127.0.0.1";

struct Proc {
    index: usize,
    /// Where it runs: 127.0.0.1, or the daemon's address as given in the hosts file.
    host: String,
    pid: u32,
    /// A worker process started here (`None`: started by a daemon on its host).
    local: Option<Spawned>,
    /// The connection to the daemon that started it; closing it ends the worker there.
    daemon: Option<TcpStream>,
    /// Copies the worker's standard output (rows of a stdout sink) to ours.
    forward: Option<JoinHandle<()>>,
    /// Disconnected when `forward` is done: the worker's standard output closed (a local
    /// worker is exiting) or its daemon said the worker exited.
    forwarded: mpsc::Receiver<()>,
    control: Option<TcpStream>,
}

/// The worker processes of a job; dropping it kills and reaps every one still running (and
/// closes the daemons' connections, which ends their workers).
struct Procs(Vec<Proc>);

impl Procs {
    fn kill_all(&mut self) {
        for p in &mut self.0 {
            if let Some(l) = p.local.as_mut() {
                let _ = l.child.kill();
            }
            for c in [&p.control, &p.daemon].into_iter().flatten() {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
        for p in &mut self.0 {
            if let Some(l) = p.local.as_mut() {
                l.end();
            }
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

fn worker_error(index: usize, host: &str, pid: Option<u32>, reason: impl Into<String>) -> RunError {
    RunError::Worker {
        index,
        host: host.to_string(),
        pid,
        reason: reason.into(),
        cause: None,
    }
}

/// Starts worker `index` on this machine (see [`super::spawn_once`]) and forwards its standard
/// output to ours.
fn spawn(index: usize, token: &str, deadline: Instant) -> Result<(Proc, SocketAddr), RunError> {
    let (local, addr, mut out) =
        super::spawn_once(HOST, token, deadline).map_err(|e| worker_error(index, HOST, None, e))?;
    let pid = local.child.id();
    let (done, forwarded) = mpsc::channel::<()>();
    let forward = std::thread::spawn(move || {
        let _done = done;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut o = std::io::stdout().lock();
                    if o.write_all(&buf[..n]).and_then(|_| o.flush()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let proc = Proc {
        index,
        host: HOST.to_string(),
        pid,
        local: Some(local),
        daemon: None,
        forward: Some(forward),
        forwarded,
        control: None,
    };
    Ok((proc, addr))
}

/// Asks the daemon at `host` (`flow worker --listen`, same token) to start worker `index`, by
/// `deadline`; its standard output comes back on the daemon's connection.
fn reach(
    index: usize,
    host: &str,
    token: &str,
    deadline: Instant,
) -> Result<(Proc, SocketAddr), RunError> {
    let fail = |pid: Option<u32>, reason: String| worker_error(index, host, pid, reason);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| fail(None, "cannot resolve the daemon's address".into()))?;
    let (mut d, daemon_pid) = protocol::connect_worker(addr, token, deadline)
        .map_err(|e| fail(None, format!("cannot reach its daemon: {e}")))?;
    protocol::write_frame(&mut d, &ToWorker::Launch)
        .map_err(|e| fail(Some(daemon_pid), format!("cannot ask the daemon: {e}")))?;
    let _ = d.set_read_timeout(Some(protocol::left(deadline)));
    let (address, pid) = match protocol::read_frame(&mut d) {
        Ok(ToCoordinator::Launched { address, pid }) => (address, pid),
        Ok(_) => {
            return Err(fail(
                Some(daemon_pid),
                "unexpected answer from the daemon".into(),
            ));
        }
        Err(e) => {
            return Err(fail(
                Some(daemon_pid),
                format!("the daemon started no worker process: {e}"),
            ));
        }
    };
    let _ = d.set_read_timeout(None);
    let addr: SocketAddr = address.parse().map_err(|_| {
        fail(
            Some(pid),
            format!("the daemon sent a bad address {address:?}"),
        )
    })?;
    let mut r = d
        .try_clone()
        .map_err(|e| fail(Some(pid), format!("daemon connection: {e}")))?;
    let (done, forwarded) = mpsc::channel::<()>();
    let forward = std::thread::spawn(move || {
        let _done = done;
        while let Ok(ToCoordinator::Output { bytes }) = protocol::read_frame(&mut r) {
            let mut o = std::io::stdout().lock();
            if o.write_all(&bytes).and_then(|_| o.flush()).is_err() {
                break;
            }
        }
    });
    let proc = Proc {
        index,
        host: host.to_string(),
        pid,
        local: None,
        daemon: Some(d),
        forward: Some(forward),
        forwarded,
        control: None,
    };
    Ok((proc, addr))
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
    crate::runtime::exact_again(opts, |o| run_multi_once(plan, o, copts))
}

fn run_multi_once(
    plan: &Plan,
    opts: &RunOptions,
    copts: &ClusterOptions,
) -> Result<RunSummary, RunError> {
    let n = copts.processes();
    if n == 0 || n > MAX_NODES {
        return Err(RunError::Plan(format!(
            "{n} worker processes asked for; it must be between 1 and {MAX_NODES}"
        )));
    }
    mark("coordinator", || "run_multi (checked and planned)".into());
    let token = job_token(copts)?;
    // Workers a daemon starts run in the coordinator's directory (same relative paths, same
    // names in messages and dead-letter records as single-node; see docs/MULTINODE.md).
    let cwd = if copts.hosts.is_empty() {
        None
    } else {
        Some(
            std::env::current_dir()
                .map_err(|e| RunError::Plan(format!("cannot read the working directory: {e}")))?,
        )
    };
    let deadline = Instant::now() + copts.connect_timeout;
    let mut o = opts.clone();
    o.processes = n;
    // Every worker process is brought up on a thread of its own, started first, so that their
    // start-up (exec, loading, listening) overlaps with each other and with preparing the job
    // here; each then gets its part of the job from that thread.
    let hb_ms = copts.heartbeat_interval.as_millis().max(10) as u64;
    let (prepared, brought) = std::thread::scope(|s| {
        let token = &token;
        let mut jobs = Vec::with_capacity(n);
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (job, next) = mpsc::channel::<Assignment>();
                jobs.push(job);
                std::thread::Builder::new()
                    .name(format!("flow-start-{i}"))
                    .spawn_scoped(s, move || bring_up(i, copts, token, deadline, next))
            })
            .collect();
        let prepared = prepare(plan, &o);
        mark("coordinator", || {
            "prepared (splits, temporary outputs)".into()
        });
        // Not prepared: no job is sent, and every thread ends with the process it started.
        if let Ok(p) = &prepared {
            for (i, job) in jobs.iter().enumerate() {
                let _ = job.send(Assignment {
                    spec: p.spec.clone(),
                    process: i,
                    processes: n,
                    connect_timeout_ms: 0,
                    heartbeat_ms: hb_ms,
                    cwd: cwd.clone(),
                });
            }
        }
        drop(jobs);
        let brought: Vec<(Option<Proc>, Result<String, RunError>)> = handles
            .into_iter()
            .map(|h| match h.map(|h| h.join()) {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => (
                    None,
                    Err(RunError::Internal("a start thread failed".into())),
                ),
                Err(e) => (
                    None,
                    Err(RunError::Internal(format!("cannot start a thread: {e}"))),
                ),
            })
            .collect();
        (prepared, brought)
    });
    let mut procs = Procs(Vec::with_capacity(n));
    let mut mesh = Vec::with_capacity(n);
    let mut first_error = None;
    for (p, r) in brought {
        procs.0.extend(p);
        match r {
            Ok(a) => mesh.push(a),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    // A job that cannot be prepared (a missing input) fails as in single-node; `procs` is
    // dropped on every early return: every worker started is killed.
    let prepared = prepared?;
    if let Some(e) = first_error {
        prepared.abort();
        return Err(e);
    }
    match coordinate(&prepared.spec, copts, opts.progress, procs, mesh) {
        Ok((mut procs, outcome, per_process)) => {
            // The processes that hold a sink's transaction commit it on our word (phase two),
            // after the end-of-job checks and before the files are renamed; the others are
            // released first and exit while the outputs are committed.
            let mut holders: Vec<usize> = super::transaction_sinks(&prepared.spec, &opts.registry)
                .into_iter()
                .map(|(_, _, p)| p)
                .collect();
            holders.sort_unstable();
            holders.dedup();
            release(&mut procs, |i| !holders.contains(&i));
            let committed = prepared.commit_with(&outcome, || {
                commit_remote(&mut procs, &holders, copts.heartbeat_timeout)
            });
            release(&mut procs, |i| holders.contains(&i));
            mark("coordinator", || "committed".into());
            reap(&mut procs);
            mark("coordinator", || {
                format!("every worker process reaped; {}", super::trace::own_cpu())
            });
            let mut summary = committed?;
            summary.processes = per_process;
            Ok(summary)
        }
        Err(e) => {
            // A worker's error (a wrong guess its reader found, or any other) is checked
            // against the guessed split boundaries here, from the plan.
            let e = prepared.check_guesses(&opts.registry, e);
            prepared.abort();
            Err(e)
        }
    }
}

/// The job's token: the daemons' (`--hosts`), or a fresh one for workers started here.
fn job_token(copts: &ClusterOptions) -> Result<String, RunError> {
    match (&copts.token, copts.hosts.is_empty()) {
        (_, true) => protocol::new_token()
            .map_err(|e| RunError::Internal(format!("cannot make a job token: {e}"))),
        (Some(t), false) => Ok(t.clone()),
        (None, false) => Err(RunError::Plan(format!(
            "reaching worker daemons needs their token: set {} or pass --token-file",
            protocol::TOKEN_VAR
        ))),
    }
}

/// Phase two for the transactions held by worker processes `holders`: each is told to
/// commit and answers by `within`; the sinks committed, with where their rows went.
fn commit_remote(
    procs: &mut Procs,
    holders: &[usize],
    within: Duration,
) -> Result<Vec<(usize, String)>, RunError> {
    let mut done = Vec::new();
    for &i in holders {
        let Some(p) = procs.0.get_mut(i) else {
            continue;
        };
        let (index, pid, host) = (p.index, p.pid, p.host.clone());
        let fail = |reason: String| worker_error(index, &host, Some(pid), reason);
        let Some(c) = p.control.as_mut() else {
            return Err(fail("no control connection to commit on".into()));
        };
        protocol::write_frame(c, &ToWorker::Commit)
            .map_err(|e| fail(format!("cannot ask it to commit: {e}")))?;
        let _ = c.set_read_timeout(Some(within));
        let answer = protocol::read_frame::<ToCoordinator>(c);
        let _ = c.set_read_timeout(None);
        match answer {
            Ok(ToCoordinator::Committed { sinks }) => done.extend(sinks),
            Ok(ToCoordinator::Failed { error }) => {
                return Err(RunError::Worker {
                    index,
                    host,
                    pid: Some(pid),
                    reason: String::new(),
                    cause: Some(Box::new(error)),
                });
            }
            Ok(_) => return Err(fail("unexpected message instead of its commit".into())),
            Err(e) => {
                return Err(fail(format!(
                    "no answer to the commit ({e}): its transaction may not be committed"
                )));
            }
        }
    }
    Ok(done)
}

/// Every worker is ready: releases those `which` selects (a released worker exits).
fn release(procs: &mut Procs, which: impl Fn(usize) -> bool) {
    for p in &mut procs.0 {
        if !which(p.index) {
            continue;
        }
        if let Some(c) = p.control.as_mut() {
            let _ = protocol::write_frame(c, &ToWorker::Release);
        }
    }
}

/// Waits (at most 5 s in all) for every released worker to be gone, without polling on a timer:
/// its forwarding ends when its standard output closes (a local worker exits) or its daemon
/// says it exited, after all its output was copied. Then reaps (or kills) every process.
fn reap(procs: &mut Procs) {
    let until = Instant::now() + Duration::from_secs(5);
    for p in &mut procs.0 {
        let _ = p.forwarded.recv_timeout(protocol::left(until));
        if let Some(l) = p.local.as_mut() {
            l.reap(protocol::left(until).min(Duration::from_secs(1)));
        }
    }
    procs.kill_all();
}

/// Rows and bytes read by the sources, from a process's node counters.
fn source_totals(spec: &JobSpec, nodes: &[NodeCounts]) -> (u64, u64) {
    let mut rows = 0;
    let mut bytes = 0;
    for i in spec.plan.sources() {
        if let Some(c) = nodes.get(i) {
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
fn exit_reason(p: &mut Proc) -> String {
    let Some(child) = p.local.as_mut().map(|l| &mut l.child) else {
        return format!("the worker process on {} is gone or cut off", p.host);
    };
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

/// Rows and bytes read and rows written (taken by the sinks) by each worker process, from its
/// heartbeats.
type Beats = Arc<Vec<[AtomicU64; 3]>>;

/// What a heartbeat (or the final outcome) of worker process `i` says, into `beats`.
fn beat(beats: &Beats, i: usize, spec: &JobSpec, nodes: &[NodeCounts]) {
    let (rows, bytes) = source_totals(spec, nodes);
    let written = spec
        .plan
        .nodes
        .iter()
        .zip(nodes)
        .filter(|(n, _)| matches!(n.op, crate::runtime::physical::PhysOp::Sink { .. }))
        .map(|(_, c)| c.rows_in)
        .sum();
    if let Some(b) = beats.get(i) {
        b[0].store(rows, Ordering::Relaxed);
        b[1].store(bytes, Ordering::Relaxed);
        b[2].store(written, Ordering::Relaxed);
    }
}

/// The job's one progress bar: totals over the worker processes, rows written by the sinks,
/// and each process's rows read.
fn reading(beats: &Beats) -> Reading {
    let rows: Vec<u64> = beats.iter().map(|b| b[0].load(Ordering::Relaxed)).collect();
    let bytes = beats.iter().map(|b| b[1].load(Ordering::Relaxed)).sum();
    let written: u64 = beats.iter().map(|b| b[2].load(Ordering::Relaxed)).sum();
    let each = if rows.len() <= 8 {
        let each: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        each.join(" / ")
    } else {
        let (lo, hi) = (rows.iter().min(), rows.iter().max());
        format!("{} to {}", lo.unwrap_or(&0), hi.unwrap_or(&0))
    };
    Reading {
        rows: rows.iter().sum(),
        bytes,
        detail: format!(
            " · {written} rows written · {} worker processes: {each} rows",
            rows.len()
        ),
    }
}

/// Starts worker process `i` here (or asks its daemon for it) and waits, by `deadline`, until
/// it listens.
fn start(
    i: usize,
    copts: &ClusterOptions,
    token: &str,
    deadline: Instant,
) -> Result<(Proc, SocketAddr), RunError> {
    mark("coordinator", || format!("starting worker process {i}"));
    let (p, a) = match copts.hosts.get(i) {
        Some(h) => reach(i, h, token, deadline)?,
        None => spawn(i, token, deadline)?,
    };
    mark("coordinator", || {
        format!("worker process {i} listening on {a}")
    });
    if copts.verbose {
        let _ = writeln!(
            std::io::stderr(),
            "flow: worker process {i}: pid {} listening on {a}",
            p.pid
        );
    }
    Ok((p, a))
}

/// Brings worker process `i` up: starts it, waits for its part of the job (none: the job could
/// not be prepared), connects and authenticates, sends it, and reads the address of its mesh
/// listener, all by `deadline`. The process, once started, comes back even on a failure, so
/// that it is ended.
fn bring_up(
    i: usize,
    copts: &ClusterOptions,
    token: &str,
    deadline: Instant,
    job: mpsc::Receiver<Assignment>,
) -> (Option<Proc>, Result<String, RunError>) {
    let (mut p, a) = match start(i, copts, token, deadline) {
        Ok(x) => x,
        Err(e) => return (None, Err(e)),
    };
    let r = match job.recv() {
        Ok(job) => ship(&mut p, a, token, deadline, job),
        Err(_) => Err(RunError::Internal("the job was not prepared".into())),
    };
    (Some(p), r)
}

/// Connects to worker process `p` at `a`, sends it `job`, and returns its mesh address.
fn ship(
    p: &mut Proc,
    a: SocketAddr,
    token: &str,
    deadline: Instant,
    mut job: Assignment,
) -> Result<String, RunError> {
    let (index, pid, host) = (p.index, p.pid, p.host.clone());
    let fail = |reason: String| worker_error(index, &host, Some(pid), reason);
    let (mut c, _pid) = protocol::connect_worker(a, token, deadline)
        .map_err(|e| fail(format!("cannot connect to it: {e}")))?;
    job.connect_timeout_ms = protocol::left(deadline).as_millis() as u64;
    protocol::write_frame(&mut c, &ToWorker::Job(Box::new(job)))
        .map_err(|e| fail(format!("cannot send the job: {e}")))?;
    mark("coordinator", || {
        format!("worker process {index}: authenticated, job sent")
    });
    let _ = c.set_read_timeout(Some(protocol::left(deadline)));
    let r = match protocol::read_frame(&mut c) {
        Ok(ToCoordinator::MeshAddress { address }) => {
            mark("coordinator", || {
                format!("worker process {index}: mesh address")
            });
            Ok(address)
        }
        Ok(ToCoordinator::Failed { error }) => Err(RunError::Worker {
            index,
            host: host.clone(),
            pid: Some(pid),
            reason: String::new(),
            cause: Some(Box::new(error)),
        }),
        Ok(_) => Err(fail("unexpected message".into())),
        Err(e) => Err(fail(format!("no mesh address: {e}"))),
    };
    let _ = c.set_read_timeout(None);
    p.control = Some(c);
    r
}

fn coordinate(
    spec: &JobSpec,
    copts: &ClusterOptions,
    progress: bool,
    mut procs: Procs,
    mesh: Vec<String>,
) -> Result<(Procs, Outcome, Vec<ProcessSummary>), RunError> {
    let n = procs.0.len();
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
        .map_err(|e| {
            worker_error(
                p.index,
                &p.host,
                Some(p.pid),
                format!("cannot send the peers: {e}"),
            )
        })?;
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
    mark("coordinator", || "peers sent".into());
    let beats: Beats = Arc::new((0..n).map(|_| Default::default()).collect());
    let _bar = {
        let beats = beats.clone();
        Progress::watch(progress, move || reading(&beats))
    };
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
                    ToCoordinator::Heartbeat { nodes } => beat(&beats, i, spec, &nodes),
                    ToCoordinator::Ready { outcome } => {
                        mark("coordinator", || format!("worker process {i}: ready"));
                        beat(&beats, i, spec, &outcome.nodes);
                        outcomes[i] = Some(outcome);
                    }
                    ToCoordinator::Failed { error } => {
                        let internal = matches!(error, RunError::Internal(_));
                        let e = RunError::Worker {
                            index: i,
                            host: procs.0[i].host.clone(),
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
                    let status = exit_reason(&mut procs.0[i]);
                    return Err(worker_error(
                        i,
                        &procs.0[i].host,
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
                    &procs.0[i].host,
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
        let (rows_read, bytes_read) = source_totals(spec, &o.nodes);
        per_process.push(ProcessSummary {
            index: i,
            host: procs.0[i].host.clone(),
            pid: procs.0[i].pid,
            threads: spec.plan.threads,
            rows_read,
            bytes_read,
            stages: o
                .nodes
                .iter()
                .enumerate()
                .map(|(node, c)| ProcessStage {
                    node,
                    rows_in: c.rows_in,
                    rows_out: c.rows_out,
                    errored: c.errors,
                })
                .collect(),
        });
    }
    Ok((procs, total, per_process))
}
