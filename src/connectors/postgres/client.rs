//! One connection to a PostgreSQL server, for the connector (`super`) and the SQL runner
//! (`sql::postgres`): the URL parsed by the `postgres` crate, deadlines on everything, the
//! password from the URL, `PGPASSWORD` or the password file, and never printed.
//!
//! Every wait has a deadline: the connection (`connect_timeout`, default 10 s, or
//! `FLOW_PG_CONNECT_TIMEOUT`), the socket (`tcp_user_timeout` and keepalives, so a dead server
//! is noticed) and each statement (`statement_timeout`, `FLOW_PG_STATEMENT_TIMEOUT` seconds,
//! default 3600). Messages show the URL through [`redact`].

use postgres::config::Host;
use postgres::{Client, Config, NoTls};
use std::str::FromStr;
use std::time::Duration;

/// Whether a `--target` value names a PostgreSQL server.
pub fn is_url(target: &str) -> bool {
    target.starts_with("postgres://") || target.starts_with("postgresql://")
}

pub use crate::job::redact_url as redact;

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

/// A connector's URL as written, or, for `$NAME` (or `${NAME}`), the value of that environment
/// variable: so a script need not hold a password.
pub fn resolve(url: &str) -> Result<String, String> {
    let Some(var) = url.trim().strip_prefix('$') else {
        return Ok(url.to_string());
    };
    let var = var
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
        .unwrap_or(var);
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(format!(
            "the environment variable {var} (named by the URL `{url}`) is not set"
        )),
    }
}

/// [`connect`], with the session in UTC (timestamps cross the connection as instants) and
/// errors that never show the password.
pub fn connect_session(url: &str) -> Result<Client, String> {
    let mut c = connect(&resolve(url)?)?;
    c.batch_execute("SET TimeZone = 'UTC'")
        .map_err(|e| format!("{}: {}", redact(url), error_text(&e)))?;
    Ok(c)
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

/// The statements running on the server on behalf of this process that a signal must cancel
/// before flow exits (`runtime::signals`): without a cancel, a long `INSERT … SELECT` placed in
/// the database would run on after flow is gone (the server notices a dropped client only when
/// it next writes to it), holding its locks until it ends and rolls back.
static LIVE: std::sync::Mutex<Vec<(u64, postgres::CancelToken)>> =
    std::sync::Mutex::new(Vec::new());

/// A statement registered with [`cancel_on_signal`]; dropping it unregisters it.
pub struct LiveStatement(u64);

/// Registers `token` (of a connection about to run statements) to be cancelled on a signal.
pub fn cancel_on_signal(token: postgres::CancelToken) -> LiveStatement {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Ok(mut live) = LIVE.lock() {
        live.push((id, token));
    }
    LiveStatement(id)
}

impl Drop for LiveStatement {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|(id, _)| *id != self.0);
        }
    }
}

/// Asks the server to cancel every registered statement, waiting at most 2 s in all (a dead
/// server must not hold up the exit); returns how many were registered.
pub fn cancel_live() -> usize {
    let tokens: Vec<postgres::CancelToken> = match LIVE.try_lock() {
        Ok(live) => live.iter().map(|(_, t)| t.clone()).collect(),
        Err(_) => return 0,
    };
    let n = tokens.len();
    if n == 0 {
        return 0;
    }
    let (done, wait) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("flow-pg-cancel".into())
        .spawn(move || {
            for t in tokens {
                let _ = t.cancel_query(NoTls);
            }
            let _ = done.send(());
        });
    let _ = wait.recv_timeout(Duration::from_secs(2));
    n
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
