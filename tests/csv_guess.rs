//! Guessed CSV split boundaries (`connectors::split`): a file with no quote near a cut is split
//! at the first line end after it, checked by the previous piece's reader; a wrong guess (the
//! cut inside a quoted field longer than the 64 KiB window) re-runs the job with exact
//! boundaries, and the output is the single reader's. Real files (above the 1 MiB split
//! minimum), real runs of the binary.

mod common;

use std::path::Path;

const NOTE: &str = "running the job again with exact split boundaries";

fn flow(dir: &Path, args: &[&str]) -> (i32, String, String) {
    common::flow_in(dir, args)
}

/// A job reading `in.csv` (`id: int, note: str`) into `out.csv`, with `options` on the source.
fn job(dir: &Path, options: &str, sink: &str) {
    let script = format!(
        "schema T {{ id: int, note: str }}\n\
         source t: T = csv(\"in.csv\", header: true{options})\n\
         t | sink {sink}\n"
    );
    std::fs::write(dir.join("job.flow"), script).unwrap();
}

/// Runs the job on `threads` threads (and `extra` arguments); returns exit code, sorted output
/// lines (header first), stderr.
fn run(dir: &Path, threads: &str, extra: &[&str]) -> (i32, Vec<String>, String) {
    let _ = std::fs::remove_file(dir.join("out.csv"));
    let mut args = vec!["run", "-q", "--threads", threads];
    args.extend_from_slice(extra);
    args.push("job.flow");
    let (code, _, err) = flow(dir, &args);
    let text = std::fs::read_to_string(dir.join("out.csv")).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if !lines.is_empty() {
        lines[1..].sort();
    }
    (code, lines, err)
}

/// `rows` plain records `i,note i` after a header, with `eol` line ends; the first note padded
/// by `pad` bytes (moves every cut relative to the line ends).
fn plain(rows: usize, pad: usize, eol: &str) -> String {
    let mut s = format!("id,note{eol}");
    for i in 0..rows {
        let fill = if i == 0 {
            "x".repeat(pad)
        } else {
            String::new()
        };
        s.push_str(&format!("{i},note {i}{fill}{eol}"));
    }
    s
}

/// Plain records with one quoted field of `lines` lines (`body` each, no quote) placed so that
/// the middle of the file (the cut with 2 threads) falls inside it.
fn with_long_field(body: &str, lines: usize, close: bool) -> String {
    let field = format!("\"{}", format!("{body}\n").repeat(lines));
    let field_len = field.len();
    let rec = |i: usize| format!("{i},note {i}\n");
    let mut s = String::from("id,note\n");
    let mut i = 0;
    // The field starts a quarter of its length before the middle of the whole file (half its
    // length into the file when it runs to the end).
    let total_guess = 2 * (1 << 20) + field_len;
    let before = if close {
        total_guess / 2 - field_len / 4
    } else {
        field_len / 2
    };
    while s.len() < before {
        s.push_str(&rec(i));
        i += 1;
    }
    s.push_str(&format!("{i},{field}"));
    if !close {
        return s;
    }
    s.push_str("\"\n");
    i += 1;
    while s.len() < total_guess {
        s.push_str(&rec(i));
        i += 1;
    }
    s
}

#[test]
fn a_quote_free_file_split_at_many_offsets_reads_like_one_reader() {
    let dir = tempfile::tempdir().unwrap();
    job(dir.path(), "", "csv(\"out.csv\", header: true)");
    for (k, pad) in [0usize, 1, 2, 5, 9, 13].into_iter().enumerate() {
        let eol = if k % 2 == 0 { "\n" } else { "\r\n" };
        std::fs::write(dir.path().join("in.csv"), plain(160_000, pad, eol)).unwrap();
        let (code, one, err) = run(dir.path(), "1", &[]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(one.len(), 160_001);
        for threads in ["2", "3"] {
            let (code, many, err) = run(dir.path(), threads, &[]);
            assert_eq!(code, 0, "{err}");
            assert!(!err.contains(NOTE), "a right guess re-ran: {err}");
            assert_eq!(many, one, "pad {pad}, eol {eol:?}, {threads} threads");
        }
    }
}

#[test]
fn a_tiny_file_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    job(dir.path(), "", "csv(\"out.csv\", header: true)");
    std::fs::write(dir.path().join("in.csv"), "id,note\r\n1,a\r\n2,b").unwrap();
    let (code, out, err) = run(dir.path(), "2", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, vec!["id,note", "1,a", "2,b"]);
}

/// Writes a file with a `lines`-line quoted field of `body` lines across the cut, runs the job
/// (source `options`) on one thread and then with `threads` and `extra`: the second run notes
/// the wrong guess once and re-runs exactly, and both outputs are equal. Returns the directory
/// and the second run's stderr.
fn reruns_like_one_reader(
    options: &str,
    body: &str,
    lines: usize,
    threads: &str,
    extra: &[&str],
) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    job(dir.path(), options, "csv(\"out.csv\", header: true)");
    std::fs::write(
        dir.path().join("in.csv"),
        with_long_field(body, lines, true),
    )
    .unwrap();
    let (code, one, err) = run(dir.path(), "1", &[]);
    assert_eq!(code, 0, "{err}");
    let (code, two, err) = run(dir.path(), threads, extra);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches(NOTE).count(), 1, "{err}");
    assert_eq!(two, one);
    (dir, err)
}

#[test]
fn a_quoted_field_over_64k_across_the_cut_reruns_exactly() {
    // `skip`: the wrong start's one-field lines would only be dropped; the reader before the
    // guess finds it wrong.
    let (_dir, err) = reruns_like_one_reader(", on_error: skip", "line", 40_000, "2", &[]);
    assert!(
        err.contains("in.csv: a guessed split boundary (byte "),
        "{err}"
    );
}

#[test]
fn under_the_fail_policy_a_bad_row_from_a_wrong_start_reruns_exactly() {
    // Lines inside the field read as records `abc,def` if a reader starts among them: `abc`
    // is not an int, which fails the job (default `on_error: fail`) — maybe before the reader
    // of the piece before reaches the guess.
    reruns_like_one_reader("", "abc,def", 20_000, "2", &[]);
}

#[test]
fn a_dead_letter_output_gets_no_row_of_a_wrong_start() {
    let (dir, _) = reruns_like_one_reader(
        ", on_error: dead_letter(\"bad.jsonl\")",
        "abc,def",
        20_000,
        "2",
        &[],
    );
    let bad = std::fs::read_to_string(dir.path().join("bad.jsonl")).unwrap_or_default();
    assert!(
        bad.is_empty(),
        "rows of the wrong start were committed: {bad:.300}"
    );
}

#[test]
fn a_file_ending_inside_an_unterminated_quoted_field_across_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        with_long_field("line", 300_000, false),
    )
    .unwrap();
    // Under `fail` the job fails as the single reader does, after the exact re-run.
    job(dir.path(), "", "csv(\"out.csv\", header: true)");
    let (code1, _, err1) = run(dir.path(), "1", &[]);
    assert_eq!(code1, 1, "{err1}");
    let (code2, _, err2) = run(dir.path(), "2", &[]);
    assert_eq!(code2, 1, "{err2}");
    assert_eq!(err2.matches(NOTE).count(), 1, "{err2}");
    let reason = |e: &str| {
        e.lines()
            .find(|l| l.contains("error: the job failed"))
            .map(str::to_string)
    };
    assert!(reason(&err1).is_some(), "{err1}");
    assert_eq!(reason(&err2), reason(&err1));
    assert!(!dir.path().join("out.csv").exists());
    // Under `skip` the rows before the unclosed field are the output, as with one reader.
    job(
        dir.path(),
        ", on_error: skip",
        "csv(\"out.csv\", header: true)",
    );
    let (code, one, err) = run(dir.path(), "1", &[]);
    assert_eq!(code, 0, "{err}");
    let (code, two, err) = run(dir.path(), "2", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches(NOTE).count(), 1, "{err}");
    assert_eq!(two, one);
}

#[test]
fn a_stdout_sink_gets_exact_boundaries_only() {
    exact_only("stdout(format: \"csv\")");
}

#[test]
fn a_sink_written_in_place_gets_exact_boundaries_only() {
    // `/dev/stdout` is a pipe here: written in place, not renamed into place on success.
    exact_only("csv(\"/dev/stdout\", header: false)");
}

/// A job whose output cannot be undone: no guess, so no re-run, and the single reader's rows.
fn exact_only(sink: &str) {
    let dir = tempfile::tempdir().unwrap();
    job(dir.path(), ", on_error: skip", sink);
    std::fs::write(
        dir.path().join("in.csv"),
        with_long_field("line", 40_000, true),
    )
    .unwrap();
    let read = |threads: &str| {
        let (code, out, err) = flow(dir.path(), &["run", "-q", "--threads", threads, "job.flow"]);
        assert_eq!(code, 0, "{err}");
        assert!(
            !err.contains(NOTE),
            "rows went to stdout before a re-run: {err}"
        );
        let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert_eq!(read("2"), read("1"));
}

#[test]
fn a_wrong_guess_in_a_worker_process_reruns_exactly() {
    reruns_like_one_reader(", on_error: skip", "line", 40_000, "1", &["--nodes", "2"]);
}
