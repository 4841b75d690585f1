//! A progress bar on standard error (only when it is a terminal): rows read, rows/s, bytes read.
//! One bar per job: a single-node job reads its sources' counters, a multi-node coordinator the
//! counters its workers' heartbeats carry ([`Progress::watch`]).

use super::policy::Shared;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the bar shows at one moment: rows and bytes read so far, and text after them (for a
/// multi-node job, the rows of each worker process).
pub struct Reading {
    pub rows: u64,
    pub bytes: u64,
    pub detail: String,
}

/// The bar's text for `r` after `secs` seconds.
pub fn message(r: &Reading, secs: f64) -> String {
    format!(
        "{} rows read ({:.0} rows/s), {:.1} MB read{}",
        r.rows,
        r.rows as f64 / secs.max(1e-3),
        r.bytes as f64 / 1e6,
        r.detail
    )
}

/// The bar; cleared from the terminal when finished or dropped (also when the job fails).
pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the bar if `enabled` and stderr is a terminal; `sources` are the source nodes.
    pub fn start(enabled: bool, shared: Arc<Shared>, sources: Vec<usize>) -> Progress {
        Progress::watch(enabled, move || {
            let (mut rows, mut bytes) = (0u64, 0u64);
            for &i in &sources {
                rows += shared.nodes[i].rows_in.load(Ordering::Relaxed);
                bytes += shared.nodes[i].bytes.load(Ordering::Relaxed);
            }
            Reading {
                rows,
                bytes,
                detail: String::new(),
            }
        })
    }

    /// Starts the bar if `enabled` and stderr is a terminal, showing what `read` says every
    /// 100 ms.
    pub fn watch(enabled: bool, read: impl Fn() -> Reading + Send + 'static) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress { stop, handle: None };
        }
        let s2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
                bar.set_style(style);
            }
            let start = Instant::now();
            while !s2.load(Ordering::Relaxed) {
                bar.set_message(message(&read(), start.elapsed().as_secs_f64()));
                bar.tick();
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Progress {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops and clears the bar (dropping it does the same).
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_rows_rate_bytes_and_the_detail() {
        let r = Reading {
            rows: 2000,
            bytes: 3_500_000,
            detail: " · 2 worker processes: 1200 / 800 rows".into(),
        };
        assert_eq!(
            message(&r, 2.0),
            "2000 rows read (1000 rows/s), 3.5 MB read · 2 worker processes: 1200 / 800 rows"
        );
    }
}
