//! `flow repl`: an interactive session on a terminal, or statements from standard input with
//! `--no-tty` (also when standard input is not a terminal).

use crate::repl::{Repl, editor};
use std::io::IsTerminal;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ReplArgs {
    /// Read statements from standard input and print results, without line editing (also the
    /// behaviour when standard input is not a terminal). Exit 1 if any statement had an error.
    #[arg(long)]
    no_tty: bool,
    /// Rows shown by a preview (`:limit N` changes it in the session).
    #[arg(long, value_name = "N", default_value_t = 20)]
    limit: usize,
    /// Script files whose declarations are loaded first (as `:load FILE`).
    files: Vec<std::path::PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    color: super::ColorChoice,
}

pub fn cmd_repl(args: ReplArgs) -> ExitCode {
    // Every input re-checks the session: database descriptions are reused for a while.
    crate::driver::cache_descriptions();
    let mut repl = Repl::new();
    repl.limit = args.limit.max(1);
    let tty = !args.no_tty && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let color = match args.color {
        super::ColorChoice::Always => true,
        super::ColorChoice::Never => false,
        super::ColorChoice::Auto => tty && std::env::var_os("NO_COLOR").is_none(),
    };
    repl.color = color;
    for f in &args.files {
        let out = repl.eval(&format!(":load {}", f.display())).text;
        print!("{out}");
    }
    let code = if tty {
        editor::run_tty(repl, color)
    } else {
        let stdin = std::io::stdin();
        let mut stdout = std::io::stdout();
        editor::run_plain(repl, stdin.lock(), &mut stdout)
    };
    ExitCode::from(code)
}
