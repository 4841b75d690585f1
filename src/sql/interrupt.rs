//! Interrupts and deadlines of a job run on another engine (`flow run --target …`), as the
//! native runtime's `runtime::signals` does for its own runs: SIGINT, SIGTERM or SIGHUP stop
//! the engine — its process group killed (DuckDB, Spark: started in their own group, so the
//! terminal's Ctrl-C reaches only flow), or the running statement cancelled on the server
//! (PostgreSQL: the transaction is then rolled back) —, every temporary output and every
//! directory the run created are removed (`outputs`), one line goes to standard error and flow
//! exits with 128 + the signal: 130 (INT), 143 (TERM), 129 (HUP).
//!
//! The signal handler only records the signal ([`Interrupt`]); the runner notices it (polling
//! its child, or a [`PgWatch`] thread that cancels the query), unwinds normally — so temporary
//! directories and files are dropped — and [`Interrupt::finish`] exits. A signal that arrives
//! once the outputs are being renamed into place is too late: the job completes.

use super::outputs;
use crate::runtime::signals::name;
use signal_hook::SigId;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::io::Write;
use std::process::{Child, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The signals of one engine run, recorded while it lasts.
pub struct Interrupt {
    sig: Arc<AtomicUsize>,
    ids: Vec<SigId>,
}

/// Exits with 128 + `sig` after one line naming the signal and the engine.
fn exit_interrupted(sig: i32, engine: &str) -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "flow: interrupted by {}: {engine} was stopped; its temporary outputs were removed; no output file was completed",
        name(sig)
    );
    std::process::exit(128 + sig)
}

impl Interrupt {
    /// Starts recording SIGINT, SIGTERM and SIGHUP (instead of dying at once).
    pub fn install() -> Interrupt {
        let sig = Arc::new(AtomicUsize::new(0));
        let ids = [SIGINT, SIGTERM, SIGHUP]
            .iter()
            .filter_map(|&s| {
                signal_hook::flag::register_usize(s, Arc::clone(&sig), s as usize).ok()
            })
            .collect();
        Interrupt { sig, ids }
    }

    /// The signal received, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.sig.load(Ordering::SeqCst) {
            0 => None,
            s => i32::try_from(s).ok(),
        }
    }

    /// `Err` when a signal arrived: for the runner to stop between two steps.
    pub fn check(&self) -> Result<(), String> {
        match self.signal() {
            Some(s) => Err(format!("interrupted by {}", name(s))),
            None => Ok(()),
        }
    }

    /// The end of a run on `engine`: a run that failed after a signal exits 128 + the signal
    /// (everything it made was dropped already); otherwise `result` as it is.
    pub fn finish<T>(self, engine: &str, result: Result<T, String>) -> Result<T, String> {
        match (self.signal(), result) {
            (Some(sig), Err(_)) => {
                outputs::remove_live();
                exit_interrupted(sig, engine)
            }
            (_, r) => r,
        }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// Runs `f` (one engine run) with signals recorded: [`Interrupt::install`], then
/// [`Interrupt::finish`] on its result.
pub fn guarded<T>(
    engine: &str,
    f: impl FnOnce(&Interrupt) -> Result<T, String>,
) -> Result<T, String> {
    let stop = Interrupt::install();
    let result = f(&stop);
    stop.finish(engine, result)
}

/// The deadline of a whole engine run: the environment variable `var` in seconds (above 0),
/// default 3600.
pub fn deadline(var: &str) -> Result<Duration, String> {
    match std::env::var(var) {
        Err(_) => Ok(Duration::from_secs(3600)),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Duration::from_secs_f64(s)),
            _ => Err(format!(
                "{var} is {v:?}; it takes a number of seconds above 0"
            )),
        },
    }
}

/// Kills the process group `pgid` (an engine's launcher and everything it started).
pub fn kill_group(pgid: u32) {
    if let Ok(p) = i32::try_from(pgid)
        && p > 0
    {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
        unsafe {
            libc::kill(-p, libc::SIGKILL);
        }
    }
}

/// Waits for `child` (started as the leader of its own process group) until it ends, until
/// `limit` (`(deadline, the variable that sets it)`) or until a signal; then kills its group.
pub fn supervise(
    child: &mut Child,
    engine: &str,
    limit: (Duration, &str),
    stop: &Interrupt,
) -> Result<ExitStatus, String> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(e) => {
                kill_group(child.id());
                let _ = child.wait();
                return Err(format!("cannot wait for {engine}: {e}"));
            }
        }
        let why = if let Err(e) = stop.check() {
            Some(format!("{e}: {engine} was stopped"))
        } else if start.elapsed() >= limit.0 {
            Some(format!(
                "the job did not finish within {:.0} s ({}): {engine} was stopped",
                limit.0.as_secs_f64(),
                limit.1
            ))
        } else {
            None
        };
        if let Some(why) = why {
            kill_group(child.id());
            let _ = child.wait();
            return Err(why);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long a cancelled PostgreSQL statement may take to give up before flow exits anyway.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// A thread that cancels the running PostgreSQL statement when a signal arrives (the
/// synchronous client blocks the runner's thread in the statement). If the runner has not
/// unwound [`CANCEL_GRACE`] after that, the thread removes the temporary outputs and exits
/// itself (the server rolls back the transaction of a connection that went away).
pub struct PgWatch {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PgWatch {
    pub fn start(stop: &Interrupt, token: postgres::CancelToken) -> PgWatch {
        let done = Arc::new(AtomicBool::new(false));
        let (sig, d) = (Arc::clone(&stop.sig), Arc::clone(&done));
        let thread = std::thread::Builder::new()
            .name("flow-pg-cancel".into())
            .spawn(move || {
                let sig = loop {
                    if d.load(Ordering::SeqCst) {
                        return;
                    }
                    if let s @ 1.. = sig.load(Ordering::SeqCst) {
                        break i32::try_from(s).unwrap_or(SIGTERM);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                };
                // A failed cancel (server gone) leaves the deadline below to end the run.
                let _ = token.cancel_query(postgres::NoTls);
                let cancelled = Instant::now();
                while cancelled.elapsed() < CANCEL_GRACE {
                    if d.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                outputs::remove_live();
                exit_interrupted(sig, "PostgreSQL")
            })
            .ok();
        PgWatch { done, thread }
    }
}

impl Drop for PgWatch {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
