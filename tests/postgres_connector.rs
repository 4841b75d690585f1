//! The PostgreSQL connector (issue 12) against a real server: `source … = postgres(url,
//! table: …)` / `query: …` with the schema from the server's catalog at check time, and
//! `sink postgres(url, table: …, write: "append" | "replace" | "create")` loaded in one
//! transaction. Each case is its own test with its own tables (`pc_<case>…`), dropped first.
//!
//! Needs a server: `source .ci/setup/30-postgres.sh` (a throw-away cluster; .ci/run does it)
//! sets `FLOW_TEST_PG_URL`. Without it the cases are skipped with a loud message — except under
//! CI (`CI=true`), where a missing server fails every case.
//!
//! Scripts name the server as `"$FLOW_TEST_PG_URL"` (the connector reads the URL from that
//! environment variable), so no password is in a script.
//!
//! One test per case: `cargo test --release --test postgres_connector sink::append`.

mod common;

use libtest_mimic::{Failed, Trial};
use std::time::{Duration, Instant};

use common::pg::{URL_VAR, client, pg_url, rows, sql};

const URL: &str = "$FLOW_TEST_PG_URL";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Writes `files` into a fresh temp dir and runs `flow ARGS` there with `env` added.
fn flow(
    files: &[(&str, &str)],
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(Run, tempfile::TempDir), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    for (name, text) in files {
        let p = dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(args)
        .current_dir(dir.path())
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("cannot run flow: {e}"))?;
    Ok((
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: started.elapsed(),
        },
        dir,
    ))
}

fn ok(r: &Run) -> Result<(), Failed> {
    if r.code != 0 {
        return Err(format!("flow failed ({}):\n{}{}", r.code, r.stdout, r.stderr).into());
    }
    Ok(())
}

/// A failed check or run whose stderr has every one of `want`.
fn fails_with(r: &Run, want: &[&str]) -> Result<(), Failed> {
    if r.code == 0 {
        return Err(format!("flow succeeded, expected an error:\n{}", r.stdout).into());
    }
    for w in want {
        if !r.stderr.contains(w) {
            return Err(format!("expected {w:?} in:\n{}", r.stderr).into());
        }
    }
    if r.stderr.contains("panicked") {
        return Err(format!("flow panicked:\n{}", r.stderr).into());
    }
    Ok(())
}

fn read_file(dir: &tempfile::TempDir, name: &str) -> Result<String, Failed> {
    std::fs::read_to_string(dir.path().join(name)).map_err(|e| format!("{name}: {e}").into())
}

const TYPES_TABLE: &str = "
    CREATE TABLE pc_read (
        id integer NOT NULL, small smallint, big bigint NOT NULL, name text, code varchar(5),
        letter char(2), score double precision, ratio real, amount numeric(10,2), ok boolean,
        at timestamptz, naive timestamp, day date);
    INSERT INTO pc_read VALUES
        (1, 2, 9007199254740993, 'Zoë, \"quoted\"\tand tabbed', 'ab', 'x', 1.5, 0.25, 12.34, true,
         '2024-01-02 03:04:05.123456+00', '2024-01-02 03:04:05', '2024-05-06'),
        (2, NULL, -1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (3, -32768, 0, '', 'c', 'yz', -0.0, 3.5, -1, false,
         '1969-12-31 23:59:59.999999+00', '2000-01-01 00:00:00', '1970-01-01');";

const TYPES_CSV: &str = "\
id,small,big,name,code,letter,score,ratio,amount,ok,at,naive,day
1,2,9007199254740993,\"Zoë, \"\"quoted\"\"\tand tabbed\",ab,x,1.5,0.25,12.34,true,2024-01-02T03:04:05.123456Z,2024-01-02T03:04:05Z,2024-05-06T00:00:00Z
2,,-1,,,,,,,,,,
3,-32768,0,,c,yz,0.0,3.5,-1.0,false,1969-12-31T23:59:59.999999Z,2000-01-01T00:00:00Z,1970-01-01T00:00:00Z
";

fn read_table() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        &format!("DROP TABLE IF EXISTS pc_read; {TYPES_TABLE}"),
    )?;
    let script =
        format!("source t = postgres(\"{URL}\", table: \"pc_read\")\nt | sink csv(\"out.csv\")\n");
    let (r, dir) = flow(&[("a.flow", &script)], &["run", "a.flow"], &[])?;
    ok(&r)?;
    let got = read_file(&dir, "out.csv")?;
    if got != TYPES_CSV {
        return Err(format!("got:\n{got}\nwant:\n{TYPES_CSV}").into());
    }
    // The schema is the catalog's: types and NOT NULL.
    let (r, _d) = flow(&[("a.flow", &script)], &["check", "--types", "a.flow"], &[])?;
    ok(&r)?;
    let want = "source t: { id: int, small: int?, big: int, name: str?, code: str?, letter: str?, \
                score: float?, ratio: float?, amount: float?, ok: bool?, at: timestamp?, \
                naive: timestamp?, day: timestamp? }";
    if !r.stdout.contains(want) {
        return Err(format!("expected {want:?} in:\n{}", r.stdout).into());
    }
    Ok(())
}

fn read_with_declared_schema_and_projection() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_proj; CREATE TABLE pc_proj (id int NOT NULL, blob bytea, \
         name text, n bigint); INSERT INTO pc_proj VALUES (1, '\\x00', 'a', 10), (2, NULL, 'b', 20)",
    )?;
    // `blob` (bytea) is not declared, `name` is declared but never used: neither is read.
    let script = format!(
        "schema R {{ id: int, name: str?, n: int? }}\n\
         source t: R = postgres(\"{URL}\", table: \"pc_proj\")\n\
         t | filter n ?? 0 > 10 | map {{ id, twice: (n ?? 0) * 2 }} | sink csv(\"out.csv\")\n"
    );
    // `--native`: the connector's own reader (by default the stages go into its query).
    let (r, dir) = flow(&[("a.flow", &script)], &["run", "--native", "a.flow"], &[])?;
    ok(&r)?;
    let got = read_file(&dir, "out.csv")?;
    if got != "id,twice\n2,40\n" {
        return Err(format!("got:\n{got}").into());
    }
    Ok(())
}

fn read_query() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_query; CREATE TABLE pc_query (id int NOT NULL, name text NOT NULL); \
         INSERT INTO pc_query VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    )?;
    let script = format!(
        "source q = postgres(\"{URL}\", query: \"select id, upper(name) as up from pc_query where id >= 2 order by id;\")\n\
         q | sink csv(\"out.csv\")\n"
    );
    let (r, dir) = flow(&[("a.flow", &script)], &["run", "a.flow"], &[])?;
    ok(&r)?;
    let got = read_file(&dir, "out.csv")?;
    if got != "id,up\n2,B\n3,C\n" {
        return Err(format!("got:\n{got}").into());
    }
    // A column straight from a table keeps NOT NULL; a computed one may be null.
    let (r, _d) = flow(&[("a.flow", &script)], &["check", "--types", "a.flow"], &[])?;
    if !r.stdout.contains("source q: { id: int, up: str? }") {
        return Err(format!("types:\n{}{}", r.stdout, r.stderr).into());
    }
    Ok(())
}

/// 40,000 rows over a few hundred blocks, with holes (deleted rows) and moved rows (updated).
fn par_table(name: &str) -> String {
    format!(
        "DROP TABLE IF EXISTS {name}; \
         CREATE TABLE {name} (id int NOT NULL, name text, score float8); \
         INSERT INTO {name} SELECT g, 'n' || g, g / 8.0 FROM generate_series(1, 40000) g; \
         DELETE FROM {name} WHERE id % 7 = 0; \
         UPDATE {name} SET name = 'u' || id WHERE id % 11 = 0"
    )
}

/// The sorted data lines of a CSV output.
fn sorted_rows(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
    v.sort();
    v
}

/// A table source read at 1, 2 and 4 threads and by two processes gives the same rows, all of
/// the table's.
fn read_parallel_same_rows() -> Result<(), Failed> {
    let mut c = client()?;
    sql(&mut c, &par_table("pc_par"))?;
    let want = rows(
        &mut c,
        "SELECT count(*)::text || ',' || sum(id)::text FROM pc_par",
    )?;
    let script = format!(
        "source t = postgres(\"{URL}\", table: \"pc_par\")\nt | sink csv(\"out.csv\")\n\
         source q = postgres(\"{URL}\", query: \"SELECT id, name FROM pc_par WHERE id <= 100\")\n\
         q | sink csv(\"q.csv\")\n"
    );
    let mut first: Option<(Vec<String>, Vec<String>)> = None;
    // 1, 2 and 4 threads, and two worker processes of two threads (the snapshot exported by
    // the coordinator, imported by the workers).
    for layout in [
        &["--threads", "1"][..],
        &["--threads", "2"],
        &["--threads", "4"],
        &["--nodes", "2", "--threads", "2"],
    ] {
        let threads = layout.join(" ");
        let (r, dir) = flow(
            &[("a.flow", &script)],
            &[&["run"][..], layout, &["a.flow"]].concat(),
            &[],
        )?;
        ok(&r)?;
        let got = sorted_rows(&read_file(&dir, "out.csv")?);
        let q = sorted_rows(&read_file(&dir, "q.csv")?);
        let ids: i64 = got
            .iter()
            .filter_map(|l| l.split(',').next()?.parse::<i64>().ok())
            .sum();
        if [format!("{},{ids}", got.len())] != want[..] || q.len() != 86 {
            return Err(format!(
                "{threads}: {} rows, id sum {ids}, {} query rows; the table has {want:?}",
                got.len(),
                q.len()
            )
            .into());
        }
        match &first {
            None => first = Some((got, q)),
            Some(f) if *f != (got, q) => {
                return Err(format!("{threads}: other rows than 1 thread").into());
            }
            _ => {}
        }
    }
    Ok(())
}

/// The planner's splits: one block range per worker (contiguous, the first open below and
/// the last open above) for a table; one split for a query. And every split reads in the
/// planner's snapshot: rows committed after planning are not read.
fn read_parallel_splits_share_a_snapshot() -> Result<(), Failed> {
    use flow::connectors::{Registry, RowReject};
    let mut c = client()?;
    sql(&mut c, &par_table("pc_par_snap"))?;
    let script = format!(
        "source t = postgres(\"{URL}\", table: \"pc_par_snap\")\nt | sink csv(\"out.csv\")\n\
         source q = postgres(\"{URL}\", query: \"SELECT id FROM pc_par_snap\")\nq | sink csv(\"q.csv\")\n"
    );
    let mut session = flow::driver::Session::default();
    session.set_file("a.flow", &script);
    let plan = session.plan().map_err(|d| format!("{d:?}"))?;
    let specs: Vec<_> = plan
        .graph
        .node_weights()
        .filter_map(|n| match &n.op {
            flow::plan::Op::Source(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    let registry = Registry::builtin();
    let pg = registry.source("postgres").ok_or("no postgres connector")?;
    let table = specs.iter().find(|s| s.name == "t").ok_or("no source t")?;
    let query = specs.iter().find(|s| s.name == "q").ok_or("no source q")?;
    let q = pg.plan(query, 4).map_err(|e| format!("{e:?}"))?;
    if q.iter().map(Vec::len).collect::<Vec<_>>() != [1, 0, 0, 0] {
        return Err(format!("a query is split: {q:?}").into());
    }
    let splits = pg.plan(table, 4).map_err(|e| format!("{e:?}"))?;
    let flat: Vec<_> = splits.iter().flatten().collect();
    let contiguous = flat.windows(2).all(|w| w[0].end == w[1].start);
    if splits.iter().any(|s| s.len() != 1)
        || !contiguous
        || flat.first().map(|s| s.start) != Some(0)
        || flat.last().map(|s| s.end) != Some(u64::MAX)
    {
        return Err(format!("splits: {splits:?}").into());
    }
    // Committed after planning: not in the snapshot the splits read.
    sql(
        &mut c,
        "INSERT INTO pc_par_snap SELECT g, 'late', 0 FROM generate_series(50001, 51000) g",
    )?;
    let mut total = 0;
    for split in &flat {
        let mut reader = pg.open(table, split).map_err(|e| format!("{e:?}"))?;
        let mut rejects: Vec<RowReject> = Vec::new();
        loop {
            let mut b = flow::batch::Batch::new(table.columns.len());
            let more = reader
                .read(&mut b, 4096, &mut rejects)
                .map_err(|e| format!("{e:?}"))?;
            total += b.rows;
            if !more {
                break;
            }
        }
        if !rejects.is_empty() {
            return Err(format!("rejected rows: {:?}", rejects.len()).into());
        }
    }
    let want = 40000 - 40000 / 7;
    if total != want {
        return Err(format!("the splits read {total} rows, the snapshot has {want}").into());
    }
    Ok(())
}

fn read_row_error_follows_policy() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_inf; CREATE TABLE pc_inf (id int NOT NULL, at timestamptz); \
         INSERT INTO pc_inf VALUES (1, '2024-01-01'), (2, 'infinity'), (3, NULL)",
    )?;
    let script = |policy: &str| {
        format!(
            "source t = postgres(\"{URL}\", table: \"pc_inf\"{policy})\nt | sink csv(\"out.csv\")\n"
        )
    };
    let (r, dir) = flow(
        &[("a.flow", &script(", on_error: skip"))],
        &["run", "a.flow"],
        &[],
    )?;
    ok(&r)?;
    let got = read_file(&dir, "out.csv")?;
    if got != "id,at\n1,2024-01-01T00:00:00Z\n3,\n" {
        return Err(format!("skip: got:\n{got}").into());
    }
    let (r, dir) = flow(&[("a.flow", &script(""))], &["run", "a.flow"], &[])?;
    fails_with(&r, &["infinite timestamp", "pc_inf"])?;
    if dir.path().join("out.csv").exists() {
        return Err("a failed job left out.csv".into());
    }
    Ok(())
}

fn unknown_table() -> Result<(), Failed> {
    let script = format!(
        "source t = postgres(\"{URL}\", table: \"pc_no_such_table\")\nt | sink csv(\"out.csv\")\n"
    );
    let (r, _d) = flow(&[("a.flow", &script)], &["check", "a.flow"], &[])?;
    fails_with(&r, &["[E0271]", "no table `pc_no_such_table`", "a.flow:1:"])
}

fn unknown_column() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_col; CREATE TABLE pc_col (id int NOT NULL, name text)",
    )?;
    let script = format!(
        "schema R {{ id: int, nmae: str? }}\nsource t: R = postgres(\"{URL}\", table: \"pc_col\")\n\
         t | sink csv(\"out.csv\")\n"
    );
    let (r, _d) = flow(&[("a.flow", &script)], &["check", "a.flow"], &[])?;
    fails_with(
        &r,
        &[
            "[E0274]",
            "column `nmae` of the schema is not in table `pc_col`",
            "name",
        ],
    )
}

fn column_type_mismatch() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_mismatch; CREATE TABLE pc_mismatch (id int NOT NULL, total numeric, note text)",
    )?;
    let script = format!(
        "schema R {{ id: int, total: int?, note: str }}\n\
         source t: R = postgres(\"{URL}\", table: \"pc_mismatch\")\nt | sink csv(\"out.csv\")\n"
    );
    let (r, _d) = flow(&[("a.flow", &script)], &["check", "a.flow"], &[])?;
    fails_with(
        &r,
        &[
            "[E0274]",
            "column `total` is float in table `pc_mismatch`, but the schema declares int?",
            "column `note` may be null in table `pc_mismatch`",
        ],
    )
}

fn unsupported_type() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_json; CREATE TABLE pc_json (id int, payload jsonb)",
    )?;
    let script =
        format!("source t = postgres(\"{URL}\", table: \"pc_json\")\nt | sink csv(\"out.csv\")\n");
    let (r, _d) = flow(&[("a.flow", &script)], &["check", "a.flow"], &[])?;
    fails_with(
        &r,
        &[
            "[E0273]",
            "column `payload` of table `pc_json` has type jsonb",
        ],
    )
}

fn bad_query() -> Result<(), Failed> {
    let script = format!(
        "source t = postgres(\"{URL}\", query: \"select nope from pc_no_such_table\")\n\
         t | sink csv(\"out.csv\")\n"
    );
    let (r, _d) = flow(&[("a.flow", &script)], &["check", "a.flow"], &[])?;
    fails_with(&r, &["[E0272]", "pc_no_such_table", "does not exist"])
}

/// The URL with another password (or none).
fn with_password(url: &str, password: &str) -> Result<String, Failed> {
    let (head, rest) = url.split_once("://").ok_or("the URL has no scheme")?;
    let (auth, host) = rest.split_once('@').ok_or("the URL has no user")?;
    let user = auth.split(':').next().unwrap_or(auth);
    Ok(format!("{head}://{user}:{password}@{host}"))
}

fn wrong_password() -> Result<(), Failed> {
    let url = pg_url()?;
    let real = url
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .and_then(|(a, _)| a.split_once(':'))
        .map(|(_, p)| p.to_string())
        .ok_or("FLOW_TEST_PG_URL has no password")?;
    let wrong = "Wr0ngPassw0rd-31337";
    let bad_url = with_password(&url, wrong)?;
    let script = "source t = postgres(\"$BAD_PG_URL\", table: \"pc_read\")\n\
                  t | sink csv(\"out.csv\")\n";
    for cmd in ["check", "run"] {
        let (r, _d) = flow(
            &[("a.flow", script)],
            &[cmd, "a.flow"],
            &[("BAD_PG_URL", bad_url.as_str())],
        )?;
        fails_with(&r, &["[E0270]", "password authentication failed"])?;
        for secret in [wrong, real.as_str()] {
            if r.stderr.contains(secret) || r.stdout.contains(secret) {
                return Err(format!("{cmd}: the password is printed:\n{}", r.stderr).into());
            }
        }
    }
    // And written into the script: the message shows the URL redacted (the script's own line
    // is the user's text).
    let script = format!(
        "source t = postgres(\n  \"{bad_url}\",\n  table: \"pc_read\")\nt | sink csv(\"out.csv\")\n"
    );
    let (r, _d) = flow(&[("a.flow", &script)], &["check", "a.flow"], &[])?;
    fails_with(&r, &["[E0270]", "password authentication failed", ":***@"])?;
    let first = r.stderr.lines().next().unwrap_or_default();
    if first.contains(wrong) {
        return Err(format!("the message shows the password: {first}").into());
    }
    // A plan printed from a script with a password in it (the real one, so that it checks).
    let good = format!(
        "schema R {{ id: int }}\nsource t: R = postgres(\"{url}\", table: \"pc_pw\")\n\
         t | sink postgres(\"{url}\", table: \"pc_pw\", write: \"append\")\n"
    );
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_pw; CREATE TABLE pc_pw (id int NOT NULL)",
    )?;
    let (r, _d) = flow(&[("a.flow", &good)], &["explain", "a.flow"], &[])?;
    ok(&r)?;
    if r.stdout.contains(real.as_str()) || !r.stdout.contains(":***@") {
        return Err(format!("explain shows the password:\n{}", r.stdout).into());
    }
    let (r, _d) = flow(&[("a.flow", &good)], &["run", "a.flow"], &[])?;
    ok(&r)?;
    if r.stderr.contains(real.as_str()) || r.stdout.contains(real.as_str()) {
        return Err(format!("run shows the password:\n{}", r.stderr).into());
    }
    Ok(())
}

/// The REPL (like the LSP) re-checks the session on every input: the table's description is
/// reused from the probe's cache, not asked of the server again — so a table dropped in
/// between is found missing by the run (the reader), not by the check.
fn repl_reuses_descriptions() -> Result<(), Failed> {
    use std::io::{BufRead, Write};
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_cache; CREATE TABLE pc_cache (id int NOT NULL); \
         INSERT INTO pc_cache VALUES (1), (2)",
    )?;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["repl", "--no-tty"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run flow repl: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    writeln!(stdin, "source t = postgres(\"{URL}\", table: \"pc_cache\")")
        .map_err(|e| e.to_string())?;
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    if first != "defined source t: { id: int }" {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("the REPL answered {first:?}").into());
    }
    sql(&mut c, "DROP TABLE pc_cache")?;
    writeln!(stdin, "t").map_err(|e| e.to_string())?;
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let text = format!(
        "{}\n{}",
        rest.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    if !text.contains("table `pc_cache` no longer exists") || text.contains("[E0271]") {
        return Err(format!("expected the run to find the table gone:\n{text}").into());
    }
    Ok(())
}

fn refused_port() -> Result<(), Failed> {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let script = format!(
        "source t = postgres(\"postgres://flow_test@127.0.0.1:{port}/flow_test\", table: \"t\")\n\
         t | sink csv(\"out.csv\")\n"
    );
    let (r, _d) = flow(&[("a.flow", &script)], &["check", "a.flow"], &[])?;
    fails_with(&r, &["[E0270]", "cannot connect", "refused"])?;
    if r.took > Duration::from_secs(5) {
        return Err(format!("took {:?}", r.took).into());
    }
    Ok(())
}

const PEOPLE: &str = "id,name,score\n1,ann,1.5\n2,bob,\n3,cy,-2\n";
const PEOPLE_SCHEMA: &str = "schema P { id: int, name: str, score: float? }\n";

fn sink_script(table: &str, write: &str) -> String {
    format!(
        "{PEOPLE_SCHEMA}source p: P = csv(\"people.csv\", header: true)\n\
         p | sink postgres(\"{URL}\", table: \"{table}\", write: \"{write}\")\n"
    )
}

fn sink_append() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_append; CREATE TABLE pc_append (id bigint, name text NOT NULL, \
         score numeric, added timestamptz DEFAULT now()); INSERT INTO pc_append (id, name) VALUES (0, 'old')",
    )?;
    let (r, _d) = flow(
        &[
            ("a.flow", &sink_script("pc_append", "append")),
            ("people.csv", PEOPLE),
        ],
        &["run", "a.flow"],
        &[],
    )?;
    ok(&r)?;
    let got = rows(&mut c, "SELECT id, name, score FROM pc_append ORDER BY id")?;
    let want = ["0\told\t\\N", "1\tann\t1.5", "2\tbob\t\\N", "3\tcy\t-2.0"];
    if got != want {
        return Err(format!("got {got:?}").into());
    }
    if !r
        .stderr
        .contains("wrote 3 rows to table pc_append on $FLOW_TEST_PG_URL")
    {
        return Err(format!("summary:\n{}", r.stderr).into());
    }
    Ok(())
}

fn sink_replace() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_replace; CREATE TABLE pc_replace (id int, name text, score float8); \
         INSERT INTO pc_replace VALUES (7, 'gone', 0), (8, 'gone', 0)",
    )?;
    let (r, _d) = flow(
        &[
            ("a.flow", &sink_script("pc_replace", "replace")),
            ("people.csv", PEOPLE),
        ],
        &["run", "a.flow"],
        &[],
    )?;
    ok(&r)?;
    let got = rows(&mut c, "SELECT * FROM pc_replace ORDER BY id")?;
    let want = ["1\tann\t1.5", "2\tbob\t\\N", "3\tcy\t-2"];
    if got != want {
        return Err(format!("got {got:?}").into());
    }
    Ok(())
}

fn sink_create() -> Result<(), Failed> {
    let mut c = client()?;
    sql(&mut c, "DROP TABLE IF EXISTS pc_create")?;
    let files = [
        ("a.flow", sink_script("pc_create", "create")),
        ("people.csv", PEOPLE.to_string()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let (r, _d) = flow(&files, &["run", "a.flow"], &[])?;
    ok(&r)?;
    let cols = rows(
        &mut c,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
         WHERE table_name = 'pc_create' ORDER BY ordinal_position",
    )?;
    let want = [
        "id\tbigint\tNO",
        "name\ttext\tNO",
        "score\tdouble precision\tYES",
    ];
    if cols != want {
        return Err(format!("columns {cols:?}").into());
    }
    let got = rows(&mut c, "SELECT * FROM pc_create ORDER BY id")?;
    if got != ["1\tann\t1.5", "2\tbob\t\\N", "3\tcy\t-2"] {
        return Err(format!("got {got:?}").into());
    }
    // Again: the table exists now, which `create` refuses at check time.
    let (r, _d) = flow(&files, &["check", "a.flow"], &[])?;
    fails_with(&r, &["[E0271]", "already exists"])
}

fn sink_table_mismatch() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_sinkbad; CREATE TABLE pc_sinkbad (id int, name int, extra text NOT NULL)",
    )?;
    let (r, _d) = flow(
        &[
            ("a.flow", &sink_script("pc_sinkbad", "append")),
            ("people.csv", PEOPLE),
        ],
        &["check", "a.flow"],
        &[],
    )?;
    fails_with(
        &r,
        &["[E0274]", "column `name` of table `pc_sinkbad` is integer"],
    )?;
    let (r, _d) = flow(
        &[
            ("a.flow", &sink_script("pc_no_such_sink", "append")),
            ("people.csv", PEOPLE),
        ],
        &["check", "a.flow"],
        &[],
    )?;
    fails_with(&r, &["[E0271]", "no table `pc_no_such_sink`"])
}

/// A row error under `fail` after some batches were already sent: the table is as it was,
/// including the rows `replace` would have removed.
fn failed_job_leaves_table_unchanged() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_atomic; CREATE TABLE pc_atomic (id bigint, q bigint); \
         INSERT INTO pc_atomic VALUES (-1, -1), (-2, -2)",
    )?;
    let mut csv = String::from("id,d\n");
    for i in 1..=5000 {
        csv.push_str(&format!("{i},{}\n", if i == 4990 { 0 } else { 1 }));
    }
    for write in ["append", "replace"] {
        let script = format!(
            "mode single(batch: 100)\nschema R {{ id: int, d: int }}\n\
             source r: R = csv(\"r.csv\", header: true)\n\
             r | map {{ id, q: 100 / d }} | sink postgres(\"{URL}\", table: \"pc_atomic\", write: \"{write}\")\n"
        );
        let (r, _d) = flow(
            &[("a.flow", &script), ("r.csv", &csv)],
            &["run", "a.flow"],
            &[],
        )?;
        fails_with(&r, &["division by zero"])?;
        let got = rows(&mut c, "SELECT * FROM pc_atomic ORDER BY id")?;
        if got != ["-2\t-2", "-1\t-1"] {
            return Err(format!("{write}: the table changed: {} rows", got.len()).into());
        }
    }
    Ok(())
}

/// The server refuses a value half-way through the COPY (a CHECK constraint): the job fails
/// with the server's message and the table is unchanged.
fn copy_refused_half_way() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_check; CREATE TABLE pc_check (id bigint CHECK (id < 3000), d bigint); \
         INSERT INTO pc_check VALUES (0, 0)",
    )?;
    let mut csv = String::from("id,d\n");
    for i in 1..=5000 {
        csv.push_str(&format!("{i},1\n"));
    }
    let script = format!(
        "mode single(batch: 100)\nschema R {{ id: int, d: int }}\n\
         source r: R = csv(\"r.csv\", header: true)\n\
         r | sink postgres(\"{URL}\", table: \"pc_check\", write: \"replace\")\n"
    );
    let (r, _d) = flow(
        &[("a.flow", &script), ("r.csv", &csv)],
        &["run", "a.flow"],
        &[],
    )?;
    fails_with(&r, &["pc_check", "check constraint"])?;
    let got = rows(&mut c, "SELECT * FROM pc_check")?;
    if got != ["0\t0"] {
        return Err(format!("the table changed: {} rows", got.len()).into());
    }
    Ok(())
}

/// Every flow type with nulls, through `create` and back through a source: the same rows.
fn round_trip_every_type() -> Result<(), Failed> {
    let mut c = client()?;
    sql(&mut c, "DROP TABLE IF EXISTS pc_round")?;
    let csv = "\
i,f,b,s,t
9223372036854775807,1.7976931348623157e308,true,\"tab\there, \"\"quote\"\" and \\\\ backslash\",2024-02-29T23:59:59.999999Z
-9223372036854775808,-0.1,false,,1900-01-01T00:00:00Z
,,,ünïcödé ✓,
0,5e-324,true,\"line
break\",2262-04-11T23:47:16.854775Z
";
    let schema = "schema T { i: int?, f: float?, b: bool?, s: str?, t: timestamp? }\n";
    let write = format!(
        "{schema}source x: T = csv(\"x.csv\", header: true)\n\
         x | sink postgres(\"{URL}\", table: \"pc_round\", write: \"create\")\n"
    );
    let (r, _d) = flow(
        &[("w.flow", &write), ("x.csv", csv)],
        &["run", "w.flow"],
        &[],
    )?;
    ok(&r)?;
    let read =
        format!("source y = postgres(\"{URL}\", table: \"pc_round\")\ny | sink csv(\"y.csv\")\n");
    let (r, dir) = flow(&[("r.flow", &read)], &["run", "r.flow"], &[])?;
    ok(&r)?;
    let got = read_file(&dir, "y.csv")?;
    if got != csv {
        return Err(format!("got:\n{got}\nwant:\n{csv}").into());
    }
    Ok(())
}

fn postgres_to_postgres() -> Result<(), Failed> {
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_src, pc_dst; CREATE TABLE pc_src (id int NOT NULL, v float8); \
         INSERT INTO pc_src SELECT g, g / 2.0 FROM generate_series(1, 20000) g",
    )?;
    let script = format!(
        "source s = postgres(\"{URL}\", table: \"pc_src\")\n\
         s | filter id % 2 == 0 | map {{ id, w: (v ?? 0.0) * 2.0 }} \
         | sink postgres(\"{URL}\", table: \"pc_dst\", write: \"create\")\n"
    );
    // `--native`: through flow (by default this job runs inside the server, tests/placement.rs).
    let (r, _d) = flow(&[("a.flow", &script)], &["run", "--native", "a.flow"], &[])?;
    ok(&r)?;
    let got = rows(&mut c, "SELECT count(*), sum(id), sum(w) FROM pc_dst")?;
    if got != ["10000\t100010000\t100010000"] {
        return Err(format!("got {got:?}").into());
    }
    Ok(())
}

/// `flow run --target URL` with the source and the sink on that server: one `INSERT … SELECT`
/// in one transaction (a failure leaves the table as it was); a table on another server is
/// refused with E0080.
fn in_database() -> Result<(), Failed> {
    let url = pg_url()?;
    let mut c = client()?;
    sql(
        &mut c,
        "DROP TABLE IF EXISTS pc_db_src, pc_db_dst; CREATE TABLE pc_db_src (id int NOT NULL, v float8, d int NOT NULL); \
         INSERT INTO pc_db_src SELECT g, g / 2.0, 1 FROM generate_series(1, 2000) g; \
         CREATE TABLE pc_db_dst (id bigint, w float8); INSERT INTO pc_db_dst VALUES (-1, -1)",
    )?;
    let script = |write: &str, expr: &str| {
        format!(
            "source s = postgres(\"{URL}\", table: \"PC_DB_SRC\")\n\
             s | filter id % 2 == 0 | map {{ id, w: {expr} }} \
             | sink postgres(\"{URL}\", table: \"pc_db_dst\", write: \"{write}\")\n"
        )
    };
    let (r, _d) = flow(
        &[("a.flow", &script("append", "(v ?? 0.0) * 2.0"))],
        &["run", "--target", &url, "a.flow"],
        &[],
    )?;
    ok(&r)?;
    if !r.stderr.contains("on PostgreSQL")
        || !r.stderr.contains("wrote 1000 rows to table pc_db_dst")
    {
        return Err(format!("summary:\n{}", r.stderr).into());
    }
    let got = rows(&mut c, "SELECT count(*), sum(id), sum(w) FROM pc_db_dst")?;
    if got != ["1001\t1000999\t1000999"] {
        return Err(format!("append: got {got:?}").into());
    }
    // A division by zero on the last row: the TRUNCATE of `replace` is rolled back too.
    let (r, _d) = flow(
        &[(
            "a.flow",
            &script(
                "replace",
                "to_float(100 / (d - (if id == 2000 { 1 } else { 0 })))",
            ),
        )],
        &["run", "--target", &url, "a.flow"],
        &[],
    )?;
    fails_with(&r, &["division by zero"])?;
    let again = rows(&mut c, "SELECT count(*), sum(id), sum(w) FROM pc_db_dst")?;
    if again != got {
        return Err(format!("a failed job changed the table: {again:?}").into());
    }
    // The SQL names the table as PostgreSQL reads it (folded, quoted).
    let (r, _d) = flow(
        &[("a.flow", &script("append", "1.0"))],
        &["compile", "--target", "sql:postgres", "a.flow"],
        &[],
    )?;
    ok(&r)?;
    if !r.stdout.contains("FROM \"pc_db_src\")") || !r.stdout.contains("INSERT INTO \"pc_db_dst\"")
    {
        return Err(format!("SQL:\n{}", r.stdout).into());
    }
    // Another server (a different URL) cannot be read in place.
    let other = url.replace("@127.0.0.1:", "@localhost:");
    let (r, _d) = flow(
        &[("a.flow", &script("append", "1.0"))],
        &["run", "--target", &other, "a.flow"],
        &[],
    )?;
    fails_with(&r, &["[E0080]", "another server"])
}

type Case = (&'static str, fn() -> Result<(), Failed>);

fn main() {
    let cases: Vec<Case> = vec![
        ("read::table", read_table),
        (
            "read::declared_schema_and_projection",
            read_with_declared_schema_and_projection,
        ),
        ("read::query", read_query),
        ("read::parallel_same_rows", read_parallel_same_rows),
        (
            "read::parallel_splits_share_a_snapshot",
            read_parallel_splits_share_a_snapshot,
        ),
        (
            "read::row_error_follows_policy",
            read_row_error_follows_policy,
        ),
        ("check::unknown_table", unknown_table),
        ("check::unknown_column", unknown_column),
        ("check::column_type_mismatch", column_type_mismatch),
        ("check::unsupported_type", unsupported_type),
        ("check::bad_query", bad_query),
        ("check::wrong_password", wrong_password),
        ("check::refused_port", refused_port),
        ("check::repl_reuses_descriptions", repl_reuses_descriptions),
        ("check::sink_table_mismatch", sink_table_mismatch),
        ("sink::append", sink_append),
        ("sink::replace", sink_replace),
        ("sink::create", sink_create),
        (
            "sink::failed_job_leaves_table_unchanged",
            failed_job_leaves_table_unchanged,
        ),
        ("sink::copy_refused_half_way", copy_refused_half_way),
        ("round_trip_every_type", round_trip_every_type),
        ("postgres_to_postgres", postgres_to_postgres),
        ("in_database::insert_select", in_database),
    ];
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let skip = std::env::var_os(URL_VAR).is_none() && !in_ci;
    if skip {
        eprintln!(
            "\n*** tests/postgres_connector.rs: SKIPPED — FLOW_TEST_PG_URL is not set. These tests \
             need a PostgreSQL server: `source .ci/setup/30-postgres.sh` starts a throw-away one \
             (under CI=true a missing server fails them instead). ***\n"
        );
    }
    let trials = cases
        .into_iter()
        .map(|(name, f)| Trial::test(name, f).with_ignored_flag(skip))
        .collect();
    common::run(trials);
}
