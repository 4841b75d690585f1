//! The test run's PostgreSQL server (`FLOW_TEST_PG_URL`, set by `.ci/setup/30-postgres.sh`),
//! for the suites that use it (tests/postgres_connector.rs, tests/placement.rs).

use libtest_mimic::Failed;
use postgres::Client;

pub const URL_VAR: &str = "FLOW_TEST_PG_URL";

pub fn pg_url() -> Result<String, Failed> {
    std::env::var(URL_VAR).map_err(|_| {
        Failed::from(
            "FLOW_TEST_PG_URL is not set: these tests need a PostgreSQL server. Start a \
             throw-away one with `source .ci/setup/30-postgres.sh` (as .ci/run does)",
        )
    })
}

pub fn client() -> Result<Client, Failed> {
    flow::connectors::postgres::client::connect(&pg_url()?).map_err(Failed::from)
}

pub fn sql(c: &mut Client, q: &str) -> Result<(), Failed> {
    c.batch_execute(q)
        .map_err(|e| Failed::from(format!("{q}: {}", flow::sql::postgres::error_text(&e))))
}

/// The rows of `q` as text lines (`\N` for null), in the query's order.
pub fn rows(c: &mut Client, q: &str) -> Result<Vec<String>, Failed> {
    let mut out = Vec::new();
    let copy = format!("COPY ({q}) TO STDOUT");
    let mut r = c
        .copy_out(copy.as_str())
        .map_err(|e| format!("{q}: {}", flow::sql::postgres::error_text(&e)))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut r, &mut text).map_err(|e| e.to_string())?;
    out.extend(text.lines().map(str::to_string));
    Ok(out)
}
