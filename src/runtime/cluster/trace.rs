//! `FLOW_CLUSTER_TRACE=1`: one line on standard error per phase of a multi-node job, from the
//! coordinator and from every worker process (they inherit the variable), stamped with the wall
//! clock so that the lines of different processes compare (docs/MULTINODE.md, "Where the time
//! goes").

use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable that turns the phase trace on.
pub const TRACE_VAR: &str = "FLOW_CLUSTER_TRACE";

fn on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os(TRACE_VAR).is_some_and(|v| !v.is_empty() && v != "0"))
}

/// Prints `flow trace SSS.mmm.uuu pid P WHO: WHAT` when the trace is on (seconds within the
/// current 1000 s of the wall clock, to the microsecond).
pub fn mark(who: &str, what: impl FnOnce() -> String) {
    if !on() {
        return;
    }
    let us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() % 1_000_000_000)
        .unwrap_or(0);
    // One write, so that the lines of concurrent processes do not interleave.
    let line = format!(
        "flow trace {:03}.{:06} pid {} {who}: {}\n",
        us / 1_000_000,
        us % 1_000_000,
        std::process::id(),
        what()
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// This process's own CPU time so far (not its children's), for the trace: the coordinator
/// must not compete with its workers for the cores.
pub fn own_cpu() -> String {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return "own CPU time unknown".into();
    }
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    format!(
        "own CPU {:.1} ms user, {:.1} ms system",
        ms(u.ru_utime),
        ms(u.ru_stime)
    )
}
