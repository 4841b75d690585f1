//! `flow worker`: one worker process (seed 000's task manager). It listens for its coordinator,
//! checks the job token by challenge-response (a peer without it is refused and logged, and the
//! worker keeps waiting), receives its part of the job, opens the timely mesh with its peers,
//! runs its timely workers with a heartbeat every `heartbeat_ms` on the control connection, and
//! reports its outcome (ready) or its failure. It then waits to be released; a spawned worker
//! (`--once`) exits, a daemon waits for the next job.
//!
//! A panic (timely panics when a peer process dies: "MergeQueue poisoned") is caught and
//! reported as this worker's failure; the panic hook of a worker process prints nothing.

use super::protocol::{self, Assignment, ToCoordinator, ToWorker};
use super::trace::mark;
use crate::codegen::Kernel;
use crate::connectors::PendingOutput;
use crate::plan::ir::FusedStep;
use crate::runtime::commit::NodeCounts;
use crate::runtime::physical::PhysOp;
use crate::runtime::policy::Shared;
use crate::runtime::{KernelFactory, RunError, RunOptions, dataflow, execute_on};
use crate::types::RowType;
use std::io::{BufRead, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timely::communication::allocator::ProcessBuilder;
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::{AllocatorBuilder, Hooks};

/// How a worker process was started.
pub struct WorkerOptions {
    pub listen: String,
    /// Serve one job, then exit (a worker spawned by `flow run`).
    pub once: bool,
    /// Print `flow worker listening on ADDR` on standard output once listening (how a spawned
    /// worker tells its parent the port it got).
    pub announce: bool,
    pub token: String,
    /// Exit when standard input closes (the parent that spawned it is gone).
    pub exit_with_stdin: bool,
}

fn log(msg: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "flow worker (pid {}): {msg}",
        std::process::id()
    );
}

/// Reads the job token from the first line of standard input.
pub fn token_from_stdin() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the job token from standard input: {e}"))?;
    let t = line.trim().to_string();
    if t.is_empty() {
        return Err("no job token on standard input".into());
    }
    Ok(t)
}

/// Runs the worker until it is released (`once`) or forever (a daemon). Returns the exit code.
pub fn serve(opts: WorkerOptions) -> u8 {
    std::panic::set_hook(Box::new(|_| {}));
    let listener = match TcpListener::bind(&opts.listen) {
        Ok(l) => l,
        Err(e) => {
            log(&format!("cannot listen on {}: {e}", opts.listen));
            return 2;
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            log(&format!("cannot read the listening address: {e}"));
            return 2;
        }
    };
    mark("worker", || format!("listening on {local}"));
    if opts.announce {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "flow worker listening on {local}")
            .and_then(|_| out.flush())
            .is_err()
        {
            return 2;
        }
    }
    if opts.exit_with_stdin {
        // The parent holds our standard input open: when it is gone, so is the job.
        let _ = std::thread::Builder::new()
            .name("flow-parent-watch".into())
            .spawn(|| {
                let mut sink = Vec::new();
                let _ = std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut sink);
                std::process::exit(3);
            });
    }
    loop {
        let (mut conn, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) => {
                log(&format!("accept failed: {e}"));
                continue;
            }
        };
        if let Err(reason) = protocol::accept_coordinator(&mut conn, &opts.token) {
            log(&format!("refused a connection from {peer}: {reason}"));
            continue;
        }
        mark("worker", || "authenticated".into());
        if opts.once {
            let ok = serve_job(conn, local.ip(), &opts.token);
            return if ok { 0 } else { 1 };
        }
        // A daemon runs each job in a worker process of its own, so that whatever happens to
        // the job (a peer's death makes timely panic; a hung job is ended by the coordinator
        // closing the connection), the daemon is idle again afterwards.
        log(&format!("job from {peer}: starting its worker process"));
        match launch(conn, &opts.token) {
            Ok(status) => log(&format!("job from {peer} done ({status}); idle")),
            Err(e) => log(&format!("job from {peer} failed: {e}; idle")),
        }
    }
}

/// A daemon's side of one job: waits for [`ToWorker::Launch`], starts `flow worker --once` on
/// the address the coordinator reached this daemon at (so its mesh listener is reachable from
/// the peers), tells the coordinator where it listens, forwards its standard output, and ends
/// it when the coordinator closes this connection. Returns how the worker process ended.
fn launch(mut conn: TcpStream, token: &str) -> Result<String, String> {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    match protocol::read_frame::<ToWorker>(&mut conn) {
        Ok(ToWorker::Launch) => {}
        Ok(_) => return Err("the coordinator sent something other than Launch".into()),
        Err(e) => return Err(format!("no request from the coordinator: {e}")),
    }
    let _ = conn.set_read_timeout(None);
    let ip = conn
        .local_addr()
        .map_err(|e| format!("cannot read the connection's address: {e}"))?
        .ip();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut child, addr, stdout) = super::spawn_once(&ip.to_string(), token, deadline)?;
    let pid = child.child.id();
    let mut writer = conn
        .try_clone()
        .map_err(|e| format!("cannot use the connection: {e}"))?;
    let sent = protocol::write_frame(
        &mut writer,
        &ToCoordinator::Launched {
            address: addr.to_string(),
            pid,
        },
    );
    if let Err(e) = sent {
        child.end();
        return Err(format!("cannot answer the coordinator: {e}"));
    }
    // Events, without polling: `true` when the coordinator closed this connection (the job is
    // over, or it is gone), `false` when the worker's standard output closed (it is exiting).
    let (events, event) = mpsc::channel::<bool>();
    {
        let (gone, mut reader) = (events.clone(), conn.try_clone().map_err(|e| e.to_string())?);
        let _ = std::thread::Builder::new()
            .name("flow-daemon-watch".into())
            .spawn(move || {
                let _ = protocol::read_frame::<ToWorker>(&mut reader);
                let _ = gone.send(true);
            });
    }
    let forward = std::thread::Builder::new()
        .name("flow-daemon-output".into())
        .spawn(move || {
            let mut stdout = stdout;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match std::io::Read::read(&mut stdout, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let msg = ToCoordinator::Output {
                            bytes: buf[..n].to_vec(),
                        };
                        if protocol::write_frame(&mut writer, &msg).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = events.send(false);
            writer
        });
    let forward = match forward {
        Ok(f) => f,
        Err(e) => {
            child.end();
            return Err(format!("cannot start a thread: {e}"));
        }
    };
    let status = match event.recv() {
        // Its standard output closed: it is exiting.
        Ok(false) => child.reap(Duration::from_secs(2)),
        // The job is over: give a released worker a moment to exit on its own, then end it.
        _ => {
            let exiting = event.recv_timeout(Duration::from_secs(2));
            child.reap(if exiting == Ok(false) {
                Duration::from_secs(1)
            } else {
                Duration::ZERO
            })
        }
    };
    if let Ok(mut writer) = forward.join() {
        let _ = protocol::write_frame(
            &mut writer,
            &ToCoordinator::Exited {
                status: status.clone(),
            },
        );
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
    Ok(status)
}

/// Serves one job on an authenticated control connection; whether it succeeded.
fn serve_job(conn: TcpStream, ip: IpAddr, token: &str) -> bool {
    let mut reader = match conn.try_clone() {
        Ok(r) => r,
        Err(e) => {
            log(&format!("cannot use the control connection: {e}"));
            return false;
        }
    };
    let writer = Arc::new(Mutex::new(conn));
    let send = |msg: &ToCoordinator| -> bool {
        match writer.lock() {
            Ok(mut w) => protocol::write_frame(&mut *w, msg).is_ok(),
            Err(_) => false,
        }
    };
    let job: Assignment = match protocol::read_frame(&mut reader) {
        Ok(ToWorker::Job(a)) => *a,
        Ok(_) => {
            log("the coordinator sent something other than a job");
            return false;
        }
        Err(e) => {
            log(&format!("no job from the coordinator: {e}"));
            return false;
        }
    };
    mark("worker", || {
        format!("job received (process {})", job.process)
    });
    let fail = |error: RunError| {
        send(&ToCoordinator::Failed { error });
        false
    };
    if let Some(dir) = &job.cwd
        && let Err(e) = std::env::set_current_dir(dir)
        && super::has_relative_paths(&job.spec)
    {
        return fail(RunError::Plan(format!(
            "the coordinator's working directory {} is not usable on this host ({e}); the job's \
             relative paths are relative to it: inputs and outputs must be on storage every \
             host reaches at the same path",
            dir.display()
        )));
    }
    let mut opts = RunOptions::for_engine(job.spec.engine);
    // The kernels are compiled while the mesh connects, not after it.
    opts.kernel_factory = prebuild(&job.spec, opts.kernel_factory.clone());
    // The transactions of the sinks whose one writer runs here, opened before any data moves
    // and held until the coordinator's `Commit` (a lost coordinator or an abort drops the
    // connection: the server rolls back).
    let mut job = job;
    let mut pending = match open_transactions(&mut job, &opts) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if !pending.is_empty() {
        mark("worker", || "transactions opened".into());
    }
    let mesh = match TcpListener::bind((ip, 0)).and_then(|l| l.local_addr().map(|a| (l, a))) {
        Ok(x) => x,
        Err(e) => {
            return fail(RunError::Internal(format!(
                "cannot open a mesh listener: {e}"
            )));
        }
    };
    if !send(&ToCoordinator::MeshAddress {
        address: mesh.1.to_string(),
    }) {
        return false;
    }
    let addresses = match protocol::read_frame(&mut reader) {
        Ok(ToWorker::Peers { addresses }) => addresses,
        Ok(_) | Err(_) => {
            log("the coordinator did not send the peer addresses");
            return false;
        }
    };
    let deadline = Instant::now() + Duration::from_millis(job.connect_timeout_ms);
    let sockets = match protocol::mesh(
        job.process,
        &addresses,
        &mesh.0,
        token,
        deadline,
        &mut |m| log(&m),
    ) {
        Ok(s) => s,
        Err(e) => return fail(RunError::Internal(format!("the timely mesh: {e}"))),
    };
    drop(mesh);
    mark("worker", || "mesh connected".into());
    let threads = job.spec.plan.threads.max(1);
    let hooks = Hooks::default();
    let process_allocators =
        ProcessBuilder::new_typed_vector(threads, hooks.refill.clone(), hooks.spill.clone());
    let comms = match initialize_networking_from_sockets(
        process_allocators,
        sockets,
        job.process,
        threads,
        hooks,
    ) {
        Ok((builders, guard)) => (
            builders
                .into_iter()
                .map(AllocatorBuilder::Tcp)
                .collect::<Vec<_>>(),
            Box::new(guard) as Box<dyn std::any::Any + Send>,
        ),
        Err(e) => {
            return fail(RunError::Internal(format!(
                "cannot start the mesh network threads: {e}"
            )));
        }
    };

    // The reader thread passes on `Commit` and `Release` (after which it ends); a closed
    // connection (or anything else) before the job is done means the coordinator ended the job
    // (or died): stop at once. After it, the channel closes.
    let (control_tx, control) = mpsc::channel::<ToWorker>();
    let done = Arc::new(AtomicBool::new(false));
    {
        let done = done.clone();
        let _ = std::thread::Builder::new()
            .name("flow-control".into())
            .spawn(move || {
                loop {
                    match protocol::read_frame::<ToWorker>(&mut reader) {
                        Ok(m @ ToWorker::Commit) => {
                            if control_tx.send(m).is_err() {
                                break;
                            }
                        }
                        Ok(ToWorker::Release) => {
                            let _ = control_tx.send(ToWorker::Release);
                            break;
                        }
                        _ if !done.load(Ordering::SeqCst) => {
                            log("the coordinator ended the job");
                            std::process::exit(1);
                        }
                        _ => break,
                    }
                }
            });
    }
    let shared = Arc::new(Shared::new(job.spec.plan.nodes.len()));
    // The heartbeat thread beats every `heartbeat_ms` until `stop` is dropped, which wakes it at
    // once (a sleeping thread would hold the end of the job up by up to one interval).
    let (stop, stopped) = mpsc::channel::<()>();
    let heart = {
        let (shared, writer) = (shared.clone(), writer.clone());
        let every = Duration::from_millis(job.heartbeat_ms.max(10));
        std::thread::Builder::new()
            .name("flow-heartbeat".into())
            .spawn(move || {
                loop {
                    let beat = ToCoordinator::Heartbeat {
                        nodes: NodeCounts::snapshot(&shared),
                    };
                    let sent = match writer.lock() {
                        Ok(mut w) => protocol::write_frame(&mut *w, &beat).is_ok(),
                        Err(_) => false,
                    };
                    if !sent || stopped.recv_timeout(every) != Err(RecvTimeoutError::Timeout) {
                        break;
                    }
                }
            })
            .ok()
    };
    mark("worker", || "timely networking up; executing".into());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        execute_on(&job.spec, &opts, Some(comms), shared.clone())
    }))
    .unwrap_or_else(|p| {
        Err(RunError::Internal(format!(
            "the worker stopped: {}",
            dataflow::panic_message(p)
        )))
    });
    done.store(true, Ordering::SeqCst);
    mark("worker", || "executed".into());
    drop(stop);
    if let Some(h) = heart {
        let _ = h.join();
    }
    mark("worker", || "heartbeat thread stopped".into());
    let ok = match result {
        // The last heartbeat before it carries the final counts of every stage.
        Ok(outcome) => {
            send(&ToCoordinator::Heartbeat {
                nodes: outcome.nodes.clone(),
            }) && send(&ToCoordinator::Ready { outcome })
        }
        Err(error) => fail(error),
    };
    // Phase two is the coordinator's (it renames the outputs) and, for the transactions held
    // here, this process's on its word: wait for it, then to be released. Released without a
    // commit (or not at all), the transactions roll back when `pending` is dropped.
    // A coordinator that dies closes the connection (and a spawned worker's standard input),
    // which ends the wait at once; the bound is for one that hangs. A process holding a
    // transaction waits longer: the other processes may still be running.
    let wait = Duration::from_secs(if pending.is_empty() { 60 } else { 3600 });
    let mut ok = ok;
    while let Ok(m) = control.recv_timeout(wait) {
        let ToWorker::Commit = m else {
            break;
        };
        let mut sinks = Vec::new();
        let mut failed = None;
        for (sink, p) in &mut pending {
            match p.commit() {
                Ok(()) => sinks.push((*sink, p.describe())),
                Err(e) => {
                    failed = Some(RunError::Output {
                        path: e.place,
                        reason: e.reason,
                    });
                    break;
                }
            }
        }
        pending.clear();
        mark("worker", || "transactions committed".into());
        ok &= match failed {
            None => send(&ToCoordinator::Committed { sinks }),
            Some(error) => fail(error),
        };
    }
    drop(pending);
    mark("worker", || "released".into());
    ok
}

/// Starts building the job's kernels (its fused chains and group argument kernels) on a thread
/// of their own, so that the JIT overlaps with the mesh set-up; the factory returned hands
/// each one out once, to the first worker that asks for it (waiting for the thread if it is
/// not done), and builds any other as `factory` would.
fn prebuild(spec: &crate::runtime::JobSpec, factory: KernelFactory) -> KernelFactory {
    let wanted: Vec<(RowType, Vec<FusedStep>)> = spec
        .plan
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            PhysOp::Kernel { steps } => Some((n.input_row.clone(), steps.clone())),
            PhysOp::Group(g) => g
                .args
                .as_ref()
                .map(|(s, _)| (n.input_row.clone(), s.clone())),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return factory;
    }
    let f = factory.clone();
    let building = std::thread::Builder::new()
        .name("flow-jit".into())
        .spawn(move || {
            let built: Vec<_> = wanted
                .into_iter()
                .filter_map(|(row, steps)| {
                    // A kernel that cannot be built is built (and reported) again by its stage.
                    let k =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&row, &steps)));
                    k.ok().map(|k| (row, steps, k))
                })
                .collect();
            mark("worker", || "kernels built".into());
            built
        });
    let Ok(building) = building else {
        return factory;
    };
    type Built = Vec<(RowType, Vec<FusedStep>, Arc<dyn Kernel>)>;
    let state: Mutex<(Option<std::thread::JoinHandle<Built>>, Built)> =
        Mutex::new((Some(building), Vec::new()));
    Arc::new(move |row: &RowType, steps: &[FusedStep]| {
        let found = {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(h) = s.0.take() {
                s.1 = h.join().unwrap_or_default();
            }
            let at = s.1.iter().position(|(r, st, _)| r == row && st == steps);
            at.map(|i| s.1.swap_remove(i).2)
        };
        found.unwrap_or_else(|| factory(row, steps))
    })
}

/// A sink's transaction held by this process: its sink number and the open transaction.
type Held = (usize, Box<dyn PendingOutput>);

/// Opens the transaction of every sink whose one writer runs in this process (see
/// [`super::transaction_sinks`]) and hands its key to the writer through `job.spec`.
fn open_transactions(job: &mut Assignment, opts: &RunOptions) -> Result<Vec<Held>, RunError> {
    let mut pending = Vec::new();
    for (node, sink, process) in super::transaction_sinks(&job.spec, &opts.registry) {
        let Some(n) = job
            .spec
            .plan
            .nodes
            .get(node)
            .filter(|_| process == job.process)
        else {
            continue;
        };
        let PhysOp::Sink { spec, .. } = &n.op else {
            continue;
        };
        let conn = opts.registry.sink(&spec.connector).ok_or_else(|| {
            RunError::Plan(format!("unknown sink connector `{}`", spec.connector))
        })?;
        let p = conn.begin(spec, &n.row).map_err(|e| RunError::Output {
            path: e.place,
            reason: e.reason,
        })?;
        let tokens = &mut job.spec.sink_tokens;
        if tokens.len() <= sink {
            tokens.resize(sink + 1, None);
        }
        tokens[sink] = Some(p.token());
        pending.push((sink, p));
    }
    Ok(pending)
}
