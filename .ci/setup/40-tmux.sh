# tmux, for the real-terminal REPL tests (tests/repl_tmux.rs): the Debian package when missing.
if ! command -v tmux >/dev/null 2>&1; then
  ci_apt_install tmux
fi
