//! The line editor around [`Repl::eval`] (rustyline): history in a file, multi-line input while
//! the parser says the statement is incomplete, highlighting, completion, hints from history;
//! and the plain loop of `--no-tty`.

use super::{Action, Repl, complete, incomplete};
use crate::diagnostics::has_secrets;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};
use std::borrow::Cow;
use std::cell::RefCell;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::rc::Rc;

/// Environment variable naming the history file.
pub const HISTORY_VAR: &str = "FLOW_REPL_HISTORY";

/// `$FLOW_REPL_HISTORY`, else `~/.flow_history`; `None` without a home directory.
pub fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(HISTORY_VAR).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".flow_history"))
}

struct FlowHelper {
    repl: Rc<RefCell<Repl>>,
    hinter: HistoryHinter,
    color: bool,
}

impl Helper for FlowHelper {}

impl Completer for FlowHelper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        match self.repl.try_borrow_mut() {
            Ok(mut r) => Ok(complete::complete(&mut r, line, pos)),
            Err(_) => Ok((pos, Vec::new())),
        }
    }
}

impl Hinter for FlowHelper {
    type Hint = String;
    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        self.hinter.hint(line, pos, ctx)
    }
}

impl Validator for FlowHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if incomplete(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Highlighter for FlowHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.color {
            return Cow::Borrowed(line);
        }
        Cow::Owned(highlight(line))
    }
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if !self.color {
            return Cow::Borrowed(hint);
        }
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

/// ANSI colors by token: keywords bold blue, strings green, numbers yellow, comments dim.
pub fn highlight(line: &str) -> String {
    use crate::syntax::lexer::{self, Tok, Token};
    let mut diags = Vec::new();
    let mut fixed = Vec::new();
    let mut comments = Vec::new();
    let toks = lexer::lex_with_comments(
        line,
        crate::span::FileId(0),
        &mut diags,
        &mut fixed,
        &mut comments,
    );
    let mut spans: Vec<(usize, usize, &str)> = toks
        .iter()
        .filter_map(|(l, t, r)| {
            let c = match t {
                Token::Kw(
                    Tok::Mode
                    | Tok::Use
                    | Tok::Schema
                    | Tok::Source
                    | Tok::Fn
                    | Tok::Let
                    | Tok::Filter
                    | Tok::Map
                    | Tok::Group
                    | Tok::Union
                    | Tok::Limit
                    | Tok::Sink
                    | Tok::If
                    | Tok::Else
                    | Tok::True
                    | Tok::False
                    | Tok::Null,
                ) => "\x1b[1;34m",
                Token::Str(_) => "\x1b[32m",
                Token::Int(_) | Token::Float(_) => "\x1b[33m",
                _ => return None,
            };
            Some((*l, *r, c))
        })
        .collect();
    spans.extend(comments.iter().map(|(l, r)| (*l, *r, "\x1b[2m")));
    spans.sort();
    let mut out = String::new();
    let mut at = 0;
    for (l, r, c) in spans {
        if l < at || r > line.len() || !line.is_char_boundary(l) || !line.is_char_boundary(r) {
            continue;
        }
        out.push_str(&line[at..l]);
        out.push_str(c);
        out.push_str(&line[l..r]);
        out.push_str("\x1b[0m");
        at = r;
    }
    out.push_str(&line[at..]);
    out
}

/// The history file is readable by its owner only (as bash and psql keep theirs): it holds
/// the queries and paths of every session.
fn private(h: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(h)
        && m.permissions().mode() & 0o077 != 0
    {
        let _ = std::fs::set_permissions(h, std::fs::Permissions::from_mode(0o600));
    }
}

/// The interactive loop on a terminal. Returns the process exit code.
pub fn run_tty(mut repl: Repl, color: bool) -> u8 {
    repl.color = color;
    let cancel = repl.cancel_flag();
    // Ctrl-C while a preview runs stops it (the editor reads keys in raw mode, so it sees
    // Ctrl-C at the prompt itself).
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, cancel);
    let repl = Rc::new(RefCell::new(repl));
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .completion_type(rustyline::CompletionType::List)
        .max_history_size(1000)
        .map(|b| b.build())
        .unwrap_or_default();
    let mut ed: Editor<FlowHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            crate::cli::err(&format!("flow repl: cannot start the line editor: {e}"));
            return 1;
        }
    };
    ed.set_helper(Some(FlowHelper {
        repl: repl.clone(),
        hinter: HistoryHinter::new(),
        color,
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = ed.load_history(h);
    }
    println!("flow repl — `:help` for help, Ctrl-D to quit");
    loop {
        match ed.readline("flow> ") {
            Ok(line) => {
                // A line with a password in it (a URL's or a `password=` parameter) is kept
                // out of the history, as MySQL's client does: the file would hold it in clear.
                if !line.trim().is_empty() && !has_secrets(&line) {
                    let _ = ed.add_history_entry(line.as_str());
                    if let Some(h) = &history {
                        let _ = ed.append_history(h);
                        private(h);
                    }
                }
                let reply = repl.borrow_mut().eval(&line);
                let (out, action) = (reply.text, reply.action);
                print!("{out}");
                let _ = std::io::stdout().flush();
                if action == Action::Quit {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => {
                // Ctrl-C: the input is dropped; the session goes on.
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                crate::cli::err(&format!("flow repl: {e}"));
                return 1;
            }
        }
    }
    0
}

/// `--no-tty`: statements from `input` (a statement continues over lines while incomplete),
/// results on `out`. Returns the exit code: 0, or 1 if any input had an error.
pub fn run_plain(mut repl: Repl, input: impl BufRead, out: &mut dyn Write) -> u8 {
    let mut buf = String::new();
    let mut failed = false;
    for line in input.lines() {
        let Ok(line) = line else { break };
        if !buf.is_empty() {
            buf.push('\n');
        }
        buf.push_str(&line);
        if incomplete(&buf) {
            continue;
        }
        let (quit, err) = eval_plain(&mut repl, &mut buf, out);
        failed |= err;
        if quit {
            return u8::from(failed);
        }
    }
    if !buf.trim().is_empty() {
        failed |= eval_plain(&mut repl, &mut buf, out).1;
    }
    u8::from(failed)
}

/// Evaluates and prints the buffered statement: (quit, had an error).
fn eval_plain(repl: &mut Repl, buf: &mut String, out: &mut dyn Write) -> (bool, bool) {
    let reply = repl.eval(buf);
    buf.clear();
    let _ = out.write_all(reply.text.as_bytes());
    let _ = out.flush();
    (reply.action == Action::Quit, reply.failed)
}
