# The DuckDB CLI for the differential SQL tests (tests/sql.rs): the `duckdb-cli` wheel (~21 MB)
# into a venv under ~/.cache, put on PATH for the test run; skipped when already there.
duckdb_venv="${HOME}/.cache/flow-duckdb/venv"
if ! command -v duckdb >/dev/null 2>&1 && [ ! -x "$duckdb_venv/bin/duckdb" ]; then
  python3 -m venv "$duckdb_venv"
  "$duckdb_venv/bin/pip" install -q duckdb-cli
fi
export PATH="$PATH:$duckdb_venv/bin"
