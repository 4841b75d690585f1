//! A progress bar on standard error (only when it is a terminal): rows read, rows/s, bytes read.

use super::policy::Shared;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the bar if `enabled` and stderr is a terminal; `sources` are the source nodes.
    pub fn start(enabled: bool, shared: Arc<Shared>, sources: Vec<usize>) -> Progress {
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
                let (mut rows, mut bytes) = (0u64, 0u64);
                for &i in &sources {
                    rows += shared.nodes[i].rows_in.load(Ordering::Relaxed);
                    bytes += shared.nodes[i].bytes.load(Ordering::Relaxed);
                }
                let secs = start.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!(
                    "{rows} rows read ({:.0} rows/s), {:.1} MB read",
                    rows as f64 / secs,
                    bytes as f64 / 1e6
                ));
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

    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
