//! `flow repl` in a real terminal: each test starts its own tmux server (`tmux -L NAME`, killed
//! when the test ends, however it ends), types with `send-keys` and reads the screen with
//! `capture-pane`, waiting at most a few seconds for each expected text. Needs tmux (CI installs
//! it: `.ci/setup/40-tmux.sh`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

struct Tmux {
    socket: String,
}

impl Tmux {
    /// A tmux server of its own running `flow repl` in the crate root, with `history` as the
    /// history file.
    fn start(name: &str, history: &Path) -> Tmux {
        let socket = format!("flow-repl-{name}-{}", std::process::id());
        let flow = env!("CARGO_BIN_EXE_flow");
        let cmd = format!(
            "env FLOW_REPL_HISTORY='{}' '{flow}' repl",
            history.display()
        );
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "150",
                "-y",
                "50",
            ])
            .args(["-c", env!("CARGO_MANIFEST_DIR"), &cmd])
            .status()
            .expect("tmux must be installed (apt-get install tmux) for these tests");
        assert!(status.success(), "tmux new-session failed");
        let t = Tmux { socket };
        t.wait_for("flow>");
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally (no key names).
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]);
    }

    fn key(&self, key: &str) {
        self.tmux(&["send-keys", key]);
    }

    fn line(&self, text: &str) {
        self.type_text(text);
        self.key("Enter");
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-S", "-200"])
    }

    /// Waits until the screen shows `text`; panics with the screen after the timeout.
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            if start.elapsed() > WAIT {
                panic!("timed out waiting for {text:?}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `text` shows `n` times.
    fn wait_for_count(&self, text: &str, n: usize) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.matches(text).count() >= n {
                return s;
            }
            if start.elapsed() > WAIT {
                panic!("timed out waiting for {n}× {text:?}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn history() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[test]
fn tab_completes_a_field_after_a_pipe() {
    let dir = history();
    let t = Tmux::start("complete", &dir.path().join("h"));
    t.line(":load examples/trips.flow");
    t.wait_for("defined let long");
    t.type_text("trips | filter dis");
    t.key("Tab");
    t.wait_for("trips | filter distance");
    t.line(" > 10.0 | map { id, distance }");
    let s = t.wait_for("id | distance");
    assert!(s.contains("{ id: int, distance: float }"), "{s}");
    assert!(!s.contains("(no rows)"), "{s}");
}

#[test]
fn a_multi_line_fn_continues_until_complete() {
    let dir = history();
    let t = Tmux::start("multiline", &dir.path().join("h"));
    t.line("fn next(x: int) -> int =");
    // Incomplete: the editor continues the input instead of evaluating it.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!t.screen().contains("defined fn next"), "{}", t.screen());
    t.line("  x + 1");
    t.wait_for("defined fn next");
    t.line("next(41)");
    t.wait_for("42 : int");
}

#[test]
fn a_pipeline_without_sink_prints_a_preview_table() {
    let dir = history();
    let t = Tmux::start("preview", &dir.path().join("h"));
    t.line(":load examples/trips.flow");
    t.wait_for("defined let long");
    t.line("long | limit 2");
    let s = t.wait_for("(2 rows)");
    assert!(
        s.contains("{ id: int, vendor: str, fare: float, pct: float, city: str }"),
        "{s}"
    );
    assert!(s.contains("id | vendor | fare"), "{s}");
}

#[test]
fn an_error_leaves_the_session_alive() {
    let dir = history();
    let t = Tmux::start("error", &dir.path().join("h"));
    t.line("nope + 1");
    t.wait_for("unknown field `nope`");
    t.line("1 + 1");
    t.wait_for("2 : int");
}

#[test]
fn load_of_an_example_defines_its_declarations() {
    let dir = history();
    let t = Tmux::start("load", &dir.path().join("h"));
    t.line(":load examples/sales.flow");
    t.wait_for("skipped");
    t.line(":decls");
    let s = t.wait_for_count("source", 2);
    assert!(s.contains("defined source"), "{s}");
}

#[test]
fn history_is_kept_across_two_sessions() {
    let dir = history();
    let h = dir.path().join("h");
    {
        let t = Tmux::start("hist1", &h);
        t.line("upper(\"from the first session\")");
        t.wait_for("\"FROM THE FIRST SESSION\" : str");
        t.line(":quit");
        let start = Instant::now();
        while !std::fs::read_to_string(&h).is_ok_and(|s| s.contains("first session")) {
            assert!(start.elapsed() < WAIT, "history file not written");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let t = Tmux::start("hist2", &h);
    // The last entry is `:quit`; the one before it the expression.
    t.key("Up");
    t.wait_for("flow> :quit");
    t.key("Up");
    t.wait_for("flow> upper(\"from the first session\")");
    t.key("Enter");
    t.wait_for("\"FROM THE FIRST SESSION\" : str");
}

/// A line with a password is evaluated but kept out of the history file (the lines around it
/// are kept), and the file is readable by its owner only.
#[test]
fn a_line_with_a_password_stays_out_of_the_history() {
    use std::os::unix::fs::PermissionsExt;
    let dir = history();
    let h = dir.path().join("h");
    let t = Tmux::start("secret", &h);
    t.line("upper(\"before\")");
    t.wait_for("\"BEFORE\" : str");
    t.line("len(\"postgres://ann:hunter2@db.example/x\")");
    t.wait_for("35 : int");
    t.line("upper(\"after\")");
    t.wait_for("\"AFTER\" : str");
    let start = Instant::now();
    while !std::fs::read_to_string(&h).is_ok_and(|s| s.contains("after")) {
        assert!(start.elapsed() < WAIT, "history file not written");
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&h).unwrap();
    assert!(text.contains("before"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let mode = std::fs::metadata(&h).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "history file mode {mode:o}");
}

#[test]
fn ctrl_c_drops_the_input_and_ctrl_d_quits() {
    let dir = history();
    let t = Tmux::start("ctrlc", &dir.path().join("h"));
    t.type_text("upper(\"dropped\"");
    t.key("C-c");
    t.line("2 + 2");
    let s = t.wait_for("4 : int");
    assert!(!s.contains("DROPPED"), "{s}");
    t.key("C-d");
    let start = Instant::now();
    // The pane's command ends, so the session (and the server) go away.
    while t.tmux(&["list-panes"]).contains('[') {
        assert!(
            start.elapsed() < WAIT,
            "Ctrl-D did not quit:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
