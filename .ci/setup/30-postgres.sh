# A throw-away PostgreSQL cluster for tests/postgres.rs (issue 12): the server from Debian
# (`postgresql`) when missing, `initdb` in a temp dir as a non-root user (initdb refuses root),
# its own port on 127.0.0.1 only, scram-sha-256 password auth on TCP for the role `flow_test`
# (so a wrong-password test is real), and `FLOW_TEST_PG_URL` exported for the tests.
#
# Sourced by .ci/run (which provides ci_apt_install and ci_on_exit). To run the PostgreSQL tests
# by hand:   source .ci/setup/30-postgres.sh && cargo test --release --test postgres
# (when sourced outside .ci/run, stop it later with `pg_stop_flow_test`).

if ! declare -F ci_on_exit >/dev/null 2>&1; then
  pg_flow_cleanups=()
  ci_on_exit() { pg_flow_cleanups+=("$1"); }
  pg_stop_flow_test() {
    local c
    for c in "${pg_flow_cleanups[@]}"; do eval "$c" || true; done
    pg_flow_cleanups=()
  }
fi
if ! declare -F ci_apt_install >/dev/null 2>&1; then
  ci_apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
fi

pg_bin=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/initdb" ] && pg_bin="$d"
done
if [ -z "$pg_bin" ]; then
  ci_apt_install postgresql
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && pg_bin="$d"
  done
fi
if [ -z "$pg_bin" ]; then
  echo "30-postgres.sh: no initdb found after installing postgresql" >&2
  return 1 2>/dev/null || exit 1
fi

# The server runs as this user: the invoking user when not root, else `flowpg` (created once).
pg_user=$(id -un)
pg_run() { "$@"; }
if [ "$(id -u)" = 0 ]; then
  pg_user=flowpg
  id -u "$pg_user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$pg_user"
  pg_run() { runuser -u "$pg_user" -- "$@"; }
fi

pg_dir=$(mktemp -d /tmp/flow-pg.XXXXXX)
chmod 755 "$pg_dir"
[ "$(id -u)" = 0 ] && chown "$pg_user" "$pg_dir"
# A free port: ask the kernel for one (a small race, but the cluster is ours alone).
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
pg_pass=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
printf '%s\n' "$pg_pass" >"$pg_dir/pw"
[ "$(id -u)" = 0 ] && chown "$pg_user" "$pg_dir/pw"

pg_run "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --pwfile="$pg_dir/pw" -E UTF8 --locale=C.UTF-8 >"$pg_dir/initdb.log" 2>&1 || {
  cat "$pg_dir/initdb.log" >&2
  return 1 2>/dev/null || exit 1
}
# TCP on loopback only (password auth), the Unix socket in our dir (trust, for the setup here).
pg_run "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null || {
  cat "$pg_dir/server.log" >&2
  return 1 2>/dev/null || exit 1
}
ci_on_exit "runuser -u '$pg_user' -- '$pg_bin/pg_ctl' -D '$pg_dir/data' -m immediate -w stop >/dev/null 2>&1 || '$pg_bin/pg_ctl' -D '$pg_dir/data' -m immediate -w stop >/dev/null 2>&1; rm -rf '$pg_dir'"

pg_run "$pg_bin/psql" -h "$pg_dir" -p "$pg_port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE flow_test LOGIN PASSWORD '$pg_pass'" \
  -c "CREATE DATABASE flow_test OWNER flow_test" >/dev/null || {
  echo "30-postgres.sh: cannot create the test role" >&2
  return 1 2>/dev/null || exit 1
}
export FLOW_TEST_PG_URL="postgres://flow_test:${pg_pass}@127.0.0.1:${pg_port}/flow_test"
echo "30-postgres.sh: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port (FLOW_TEST_PG_URL set)"
unset pg_pass
