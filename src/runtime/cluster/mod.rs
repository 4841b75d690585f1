//! Multi-node mode: a coordinator (`flow run`) and worker processes (`flow worker`) on one
//! timely cluster whose mesh sockets we open ourselves (see `shared/notes/timely.md`).
//!
//! - [`coordinator`]: starts `nodes` local worker processes (or asks daemons on other hosts to
//!   start one each: `flow run --hosts FILE`), authenticates, ships the
//!   [`JobSpec`](super::JobSpec), broadcasts the mesh addresses, watches heartbeats, and commits
//!   (renames the outputs) only when every process reported ready.
//! - [`worker`]: one worker process serving one job (`--once`), or a daemon that starts one
//!   such process per job, one job at a time, and is idle again after it.
//! - [`protocol`]: length-prefixed JSON frames, the token challenge-response, the mesh.
//!
//! Outputs on one machine: every worker of every process appends whole records to the one
//! temporary file the coordinator prepared (opened with `O_APPEND`), as threads do in one
//! process; the coordinator renames it when all are ready, so the result is the same single file
//! as single-node. Workers on other hosts read the inputs and append to that file at the same paths:
//! they need storage all of them reach (docs/MULTINODE.md); stdout rows come back to the
//! coordinator through the daemon.

pub mod coordinator;
pub mod protocol;
pub mod trace;
pub mod worker;

pub use coordinator::{ClusterOptions, MAX_NODES, run_multi};

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A `flow worker --once` process started by this one (the coordinator on this machine, or a
/// daemon for a job it was asked to run). It exits when its standard input (held here) closes.
pub struct Spawned {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
}

impl Spawned {
    /// Kills and reaps the process; how it ended.
    pub fn end(&mut self) -> String {
        self.stdin = None;
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(s) => s.to_string(),
            Err(e) => format!("cannot wait for it: {e}"),
        }
    }

    /// Reaps a process that is exiting (its standard output closed, or it was released):
    /// waits up to `within` for it to be gone, then ends it; how it ended.
    pub fn reap(&mut self, within: Duration) -> String {
        let until = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => return s.to_string(),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(1)),
                _ => return self.end(),
            }
        }
    }
}

/// Whether the job opens any file by a relative path (relative to the coordinator's directory).
pub fn has_relative_paths(spec: &super::JobSpec) -> bool {
    let splits = spec.plan.nodes.iter().flat_map(|n| match &n.op {
        super::physical::PhysOp::Source { splits, .. } => splits.as_slice(),
        _ => &[],
    });
    splits
        .flatten()
        .filter_map(|s| s.path.as_deref())
        .chain(spec.sink_files.iter().flatten().map(|p| p.as_path()))
        .chain(spec.dead_parts.values().flatten().map(|p| p.as_path()))
        .any(|p| p.is_relative())
}

/// The sinks that write in a transaction (`SinkTarget::Transaction`, e.g. `postgres`), as
/// (node, sink number, worker process), the process being the one that opens it: the process of the sink's one writer (its first worker, to
/// which all its rows are routed). Multi-node, that process holds the transaction from before
/// the job's data moves until the coordinator's `Commit` (docs/MULTINODE.md).
pub fn transaction_sinks(
    spec: &super::JobSpec,
    registry: &crate::connectors::Registry,
) -> Vec<(usize, usize, usize)> {
    let threads = spec.plan.threads.max(1);
    let workers = threads * spec.processes.max(1);
    let mut out = Vec::new();
    for (i, n) in spec.plan.nodes.iter().enumerate() {
        let super::physical::PhysOp::Sink { spec: s, sink } = &n.op else {
            continue;
        };
        let transactional = registry
            .sink(&s.connector)
            .is_some_and(|c| c.target(s) == crate::connectors::SinkTarget::Transaction);
        if transactional {
            let writer = spec.plan.workers_of(i, workers).first().copied();
            out.push((i, *sink, writer.unwrap_or(0) / threads));
        }
    }
    out
}

/// Starts `flow worker --listen IP:0 --once --announce --token-stdin`: the token goes on its
/// standard input (never on its command line), its port is read from the first line of its
/// standard output by `deadline`. Returns the process, its address, and the rest of its
/// standard output (the rows of a stdout sink).
pub fn spawn_once(
    ip: &str,
    token: &str,
    deadline: Instant,
) -> Result<(Spawned, SocketAddr, BufReader<ChildStdout>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the flow binary: {e}"))?;
    let mut child = Command::new(exe)
        .args(["worker", "--listen", &format!("{ip}:0")])
        .args(["--once", "--announce", "--token-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start a worker process: {e}"))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let mut p = Spawned { child, stdin };
    let wrote = p.stdin.as_mut().map(|s| {
        s.write_all(format!("{token}\n").as_bytes())
            .and_then(|_| s.flush())
    });
    let Some(stdout) = stdout.filter(|_| matches!(wrote, Some(Ok(())))) else {
        p.end();
        return Err("cannot hand the job token to the worker".into());
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let ok = matches!(r.read_line(&mut line), Ok(n) if n > 0);
        let _ = tx.send(ok.then_some((line, r)));
    });
    match rx.recv_timeout(protocol::left(deadline)) {
        Ok(Some((line, r))) => {
            let addr = line
                .trim()
                .strip_prefix("flow worker listening on ")
                .and_then(|a| a.parse::<SocketAddr>().ok());
            match addr {
                Some(a) => Ok((p, a, r)),
                None => {
                    p.end();
                    Err("printed no listening address".into())
                }
            }
        }
        Ok(None) => {
            let status = p.end();
            Err(format!("exited before listening ({status})"))
        }
        Err(_) => {
            p.end();
            Err("did not start listening before the deadline".into())
        }
    }
}

/// The `host:port` lines of a hosts file (`flow run --hosts FILE`), without blank lines and
/// `#` comments.
pub fn read_hosts(file: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the hosts file {}: {e}", file.display()))?;
    let mut hosts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if !line.contains(':') || line.contains(char::is_whitespace) {
            return Err(format!(
                "{}:{}: expected `host:port`, found `{line}`",
                file.display(),
                i + 1
            ));
        }
        hosts.push(line.to_string());
    }
    if hosts.is_empty() || hosts.len() > MAX_NODES {
        return Err(format!(
            "the hosts file {} names {} hosts; it must name 1 to {MAX_NODES}",
            file.display(),
            hosts.len()
        ));
    }
    Ok(hosts)
}

/// A daemon's token: the first line of `file`, else the `FLOW_JOB_TOKEN` environment variable
/// (never a command-line argument, which other users can read).
pub fn read_token(file: Option<&std::path::Path>) -> Result<String, String> {
    let t = match file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| format!("cannot read the token file {}: {e}", f.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        None => std::env::var(protocol::TOKEN_VAR).unwrap_or_default(),
    };
    if t.is_empty() {
        return Err(format!(
            "no job token: pass --token-file FILE or set {}",
            protocol::TOKEN_VAR
        ));
    }
    Ok(t)
}
