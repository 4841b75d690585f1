//! Runs a job's PostgreSQL statements over one connection (the `postgres` crate, synchronous:
//! no server-side program to install, no `psql` process, the same SQL `flow compile` prints).
//!
//! File inputs are sent with `COPY … FROM STDIN` into temporary tables; every sink is
//! materialized into a temporary table (its row count), then `COPY (…) TO STDOUT` streams it
//! into a temporary file that is renamed into place only when the whole job succeeded
//! (`outputs`): complete or absent.
//!
//! Every wait has a deadline: the connection (`connect_timeout`, default 10 s), the socket
//! (`tcp_user_timeout` and keepalives, so a dead server is noticed) and each statement
//! (`statement_timeout`, `FLOW_PG_STATEMENT_TIMEOUT` seconds, default 3600). The password comes
//! from the URL, else `PGPASSWORD`, else the password file (`PGPASSFILE` or `~/.pgpass`); it is
//! never printed: messages show the URL through [`redact`].

use super::dialect::Dialect;
use super::outputs::{Outputs, SinkRows};
use super::{Statement, StatementKind};
use postgres::config::Host;
use postgres::{Client, Config, NoTls};
use std::io::Write;
use std::str::FromStr;
use std::time::Duration;

/// Whether a `--target` value names a PostgreSQL server.
pub fn is_url(target: &str) -> bool {
    target.starts_with("postgres://") || target.starts_with("postgresql://")
}

/// The URL with its password (in the authority or a `password=` parameter) replaced by `***`.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let (a, b) = (scheme_end + 3 + colon + 1, scheme_end + 3 + at);
            out.replace_range(a..b, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let params: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k == "password" => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", params.join("&"));
    }
    out
}

/// The text of a driver error: the server's message and context, or the client's cause.
pub fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        // Where it happened (a COPY's line and column), unless it is our own raising helper.
        if let Some(w) = db.where_().filter(|w| !w.contains("pg_temp")) {
            s.push_str(&format!(" [{w}]"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(&format!(": {t}"));
        }
        src = c.source();
    }
    s
}

/// One entry of a password file line, with `\:` and `\\` unescaped.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next()
                    && let Some(last) = fields.last_mut()
                {
                    last.push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(last) = fields.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    fields
}

/// The password for (host, port, db, user) in a `.pgpass` text (`*` matches anything).
pub fn pgpass_lookup(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(pgpass_fields)
        .find(|f| {
            f.len() == 5
                && [host, port.as_str(), db, user]
                    .iter()
                    .zip(f.iter())
                    .all(|(want, have)| have == "*" || have == want)
        })
        .and_then(|f| f.into_iter().nth(4))
}

fn env_seconds(name: &str, default: u64) -> Duration {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(default))
}

/// Connects to `url` with deadlines (see the module doc); errors name the redacted URL.
pub fn connect(url: &str) -> Result<Client, String> {
    connect_with(
        url,
        env_seconds("FLOW_PG_CONNECT_TIMEOUT", 10),
        env_seconds("FLOW_PG_STATEMENT_TIMEOUT", 3600),
    )
}

/// [`connect`] with these deadlines (the URL's `connect_timeout` wins over `connect_timeout`).
pub fn connect_with(
    url: &str,
    connect_timeout: Duration,
    statement_timeout: Duration,
) -> Result<Client, String> {
    let shown = redact(url);
    let mut config = Config::from_str(url)
        .map_err(|e| format!("{shown} is not a valid PostgreSQL URL: {}", error_text(&e)))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(30));
    }
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    config.application_name("flow");
    let user = config
        .get_user()
        .map(str::to_string)
        .or_else(|| std::env::var("PGUSER").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "postgres".into());
    config.user(&user);
    if config.get_password().is_none() {
        if let Ok(p) = std::env::var("PGPASSWORD") {
            config.password(p);
        } else {
            let file = std::env::var_os("PGPASSFILE")
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".pgpass"))
                });
            if let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) {
                let host = match config.get_hosts().first() {
                    Some(Host::Tcp(h)) => h.clone(),
                    _ => "localhost".into(),
                };
                let port = config.get_ports().first().copied().unwrap_or(5432);
                let db = config.get_dbname().unwrap_or(&user).to_string();
                if let Some(p) = pgpass_lookup(&text, &host, port, &db, &user) {
                    config.password(p);
                }
            }
        }
    }
    let mut client = config
        .connect(NoTls)
        .map_err(|e| format!("cannot connect to {shown}: {}", error_text(&e)))?;
    client
        .batch_execute(&format!(
            "SET statement_timeout = {}; SET client_min_messages = warning",
            statement_timeout.as_millis()
        ))
        .map_err(|e| format!("{shown}: {}", error_text(&e)))?;
    Ok(client)
}

/// The files of a source path: a glob's matches in order, or the path itself.
fn input_files(path: &str) -> Result<Vec<String>, String> {
    if !path.contains(['*', '?', '[']) {
        return Ok(vec![path.to_string()]);
    }
    let paths = glob::glob(path).map_err(|e| format!("bad pattern {path}: {e}"))?;
    let mut v: Vec<String> = paths
        .filter_map(Result::ok)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(format!("no input file matches {path}"));
    }
    Ok(v)
}

/// Sends the file `path` to a `COPY … FROM STDIN` statement.
fn copy_file(client: &mut Client, sql: &str, path: &str) -> Result<u64, String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot read input {path}: {e}"))?;
    let mut writer = client
        .copy_in(sql)
        .map_err(|e| format!("loading {path} failed in PostgreSQL: {}", error_text(&e)))?;
    // An I/O error while sending (the server aborted the COPY) surfaces at `finish`.
    let sent = std::io::copy(&mut file, &mut writer);
    let done = writer
        .finish()
        .map_err(|e| format!("loading {path} failed in PostgreSQL: {}", error_text(&e)))?;
    sent.map_err(|e| format!("cannot send {path} to PostgreSQL: {e}"))?;
    Ok(done)
}

/// Runs `statements` (from `compile(plan, &Postgres)`) on the server at `url`; standard-output
/// sinks are written to `stdout` after the job succeeded.
pub fn run(
    url: &str,
    statements: &[Statement],
    stdout: &mut dyn Write,
) -> Result<Vec<SinkRows>, String> {
    let mut client = connect(url)?;
    let mut outputs = Outputs::new("postgres");
    let result = run_on(&mut client, statements, &mut outputs);
    // Temporary tables and functions go with the session.
    let _ = client.close();
    match result {
        Ok(rows) => outputs.commit(&rows, stdout),
        Err(e) => {
            outputs.discard();
            Err(e)
        }
    }
}

fn run_on(
    client: &mut Client,
    statements: &[Statement],
    outputs: &mut Outputs,
) -> Result<Vec<u64>, String> {
    let failed = |e: postgres::Error| format!("the job failed in PostgreSQL: {}", error_text(&e));
    let mut rows = Vec::new();
    for st in statements {
        match &st.kind {
            StatementKind::Setup => client.batch_execute(&st.sql).map_err(failed)?,
            StatementKind::Load { path, .. } => {
                if st.sql.starts_with("COPY ") {
                    for f in input_files(path)? {
                        copy_file(client, &st.sql, &f)?;
                    }
                } else {
                    client.batch_execute(&st.sql).map_err(failed)?;
                }
            }
            StatementKind::Sink {
                origin,
                path,
                format,
                query,
                ..
            } => {
                let k = outputs.pending.len();
                let tmp = outputs.add(origin, path.as_deref())?;
                let table = format!("\"flow_sink_{k}\"");
                client
                    .batch_execute(&format!("CREATE TEMPORARY TABLE {table} AS {query}"))
                    .map_err(failed)?;
                let n = client
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .and_then(|r| r.try_get::<_, i64>(0))
                    .map_err(failed)?;
                rows.push(u64::try_from(n).unwrap_or(0));
                let copy = super::Postgres
                    .write(&format!("SELECT * FROM {table}"), None, *format)
                    .map_err(|e| format!("sink {origin}: {e}"))?;
                let mut file = std::fs::File::create(&tmp)
                    .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
                let mut reader = client.copy_out(copy.as_str()).map_err(failed)?;
                std::io::copy(&mut reader, &mut file)
                    .and_then(|_| file.flush())
                    .map_err(|e| format!("writing {} failed: {e}", tmp.display()))?;
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:s3cr%40t@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgresql://h/db?user=u&password=x&sslmode=disable"),
            "postgresql://h/db?user=u&password=***&sslmode=disable"
        );
    }

    #[test]
    fn pgpass_matches_with_wildcards_and_escapes() {
        let text = "# comment\nother:5432:*:u:no\nh:5433:db:u:a\\:b\n*:*:*:*:any\n";
        assert_eq!(
            pgpass_lookup(text, "h", 5433, "db", "u").as_deref(),
            Some("a:b")
        );
        assert_eq!(
            pgpass_lookup(text, "x", 1, "d", "v").as_deref(),
            Some("any")
        );
        assert_eq!(pgpass_lookup("h:1:d:u:p\n", "h", 2, "d", "u"), None);
    }
}
