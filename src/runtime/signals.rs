//! Interrupts: SIGINT (Ctrl-C), SIGTERM and SIGHUP stop a `flow run` cleanly.
//!
//! [`install`] starts one thread that waits for those signals (`signal-hook`; the handler only
//! wakes the thread, all work happens on it). On a signal it removes every temporary part file
//! of the process (the registry of `connectors::sink`; no output appears under its final name,
//! and an output being moved into place is either complete or not moved), prints one line to
//! standard error and exits with 128 + the signal number: 130 (INT), 143 (TERM), 129 (HUP).
//! Workers are not waited for: the process exits under them, which is what stops them (their
//! open part files are already unlinked). A second signal during the cleanup is ignored.
//! SIGKILL cannot be handled: see `connectors::sink::remove_stale` for how the next run cleans up.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::Write;

/// Installs the handler (once per process; later calls do nothing). An error (signals cannot be
/// registered) is returned for the caller to report; the job can still run without it.
pub fn install() -> std::io::Result<()> {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    let mut result = Ok(());
    INSTALLED.call_once(|| {
        result = Signals::new([SIGINT, SIGTERM, SIGHUP]).and_then(|mut signals| {
            std::thread::Builder::new()
                .name("flow-signals".into())
                .spawn(move || {
                    if let Some(sig) = signals.forever().next() {
                        stop(sig);
                    }
                })
                .map(|_| ())
        });
    });
    result
}

/// The name of a signal handled here, for messages.
pub fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Removes the temporaries and exits with 128 + `sig`.
fn stop(sig: i32) -> ! {
    let removed = crate::connectors::sink::remove_live_temporaries();
    // Statements run in PostgreSQL for this job (a part placed there) are cancelled; their
    // transactions roll back when the process's connections close.
    crate::connectors::postgres::client::cancel_live();
    let files = if removed == 1 { "file" } else { "files" };
    let _ = writeln!(
        std::io::stderr(),
        "flow: interrupted by {}: stopped; {removed} temporary {files} removed; no output file was completed",
        name(sig)
    );
    std::process::exit(128 + sig)
}
