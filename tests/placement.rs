//! Where a job runs (issue 12, "the engine follows the data": `sql::place`, `driver::place`)
//! against a real PostgreSQL server: a pipeline whose sources and sinks are all tables on one
//! server runs there as `INSERT … SELECT` (no rows through flow), `--native` keeps it in flow,
//! a chain of stages after a `postgres` source is pushed into its query, and `flow explain`
//! says which part runs where. Each case is its own test with its own tables (`pl_<case>_…`).
//!
//! How "no rows through flow" is proved: the target tables carry a statement-level trigger that
//! logs `current_query()` of every statement inserting into them — `INSERT INTO …` when the
//! database loads the table itself, `COPY … FROM STDIN` when flow sends the rows.
//!
//! Needs `FLOW_TEST_PG_URL` (`source .ci/setup/30-postgres.sh`; .ci/run does it); without it
//! the cases are skipped with a loud message, except under CI (`CI=true`), where they fail.

mod common;

use libtest_mimic::{Failed, Trial};
use postgres::Client;

use common::pg::{URL_VAR, client, pg_url, sql};

const URL: &str = "$FLOW_TEST_PG_URL";

/// The rows of `q` as text lines (`\N` for null), sorted.
fn rows(c: &mut Client, q: &str) -> Result<Vec<String>, Failed> {
    let mut v = common::pg::rows(c, q)?;
    v.sort();
    Ok(v)
}

/// `{p}_trips` (5,000 rows; `dist` null on every 7th) and, for each of `sinks`, an empty table
/// `{p}_{sink}` (id, vendor, fare2) whose inserting statements are logged in `{p}_{sink}_log`.
fn tables(c: &mut Client, p: &str, sinks: &[&str]) -> Result<(), Failed> {
    let mut q = format!(
        "DROP TABLE IF EXISTS {p}_trips; \
         CREATE TABLE {p}_trips (id int NOT NULL, vendor text NOT NULL, fare float8 NOT NULL, dist float8); \
         INSERT INTO {p}_trips SELECT g, 'v' || (g % 5), (g % 37)::float8, \
           CASE WHEN g % 7 = 0 THEN NULL ELSE g / 4.0 END FROM generate_series(1, 5000) g; \
         CREATE OR REPLACE FUNCTION {p}_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           EXECUTE format('INSERT INTO %I VALUES (current_query())', TG_TABLE_NAME || '_log'); \
           RETURN NULL; END $$;"
    );
    for s in sinks {
        q.push_str(&format!(
            "DROP TABLE IF EXISTS {p}_{s}, {p}_{s}_log; \
             CREATE TABLE {p}_{s} (id bigint, vendor text, fare2 float8); \
             CREATE TABLE {p}_{s}_log (q text); \
             CREATE TRIGGER {p}_{s}_t AFTER INSERT ON {p}_{s} FOR EACH STATEMENT EXECUTE FUNCTION {p}_log();"
        ));
    }
    sql(c, &q)
}

/// How the statements that loaded `{table}` began (`INSERT` or `COPY`).
fn loads(c: &mut Client, table: &str) -> Result<Vec<String>, Failed> {
    Ok(rows(c, &format!("SELECT q FROM {table}_log"))?
        .into_iter()
        .map(|q| q.split_whitespace().next().unwrap_or("").to_uppercase())
        .collect())
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new(files: &[(&str, &str)]) -> Result<Dir, Failed> {
        let d = tempfile::tempdir().map_err(|e| e.to_string())?;
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).map_err(|e| e.to_string())?;
        }
        Ok(Dir(d))
    }
    /// `flow ARGS` here: exit code, stdout, stderr.
    fn flow(&self, args: &[&str]) -> (i32, String, String) {
        common::flow_in(self.0.path(), args)
    }
    fn ok(&self, args: &[&str]) -> Result<(String, String), Failed> {
        let (code, out, err) = self.flow(args);
        if code != 0 {
            return Err(format!("flow {args:?} failed ({code}):\n{out}{err}").into());
        }
        Ok((out, err))
    }
    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.0.path().join(name)).ok()
    }
}

fn expect(what: &str, cond: bool, shown: &str) -> Result<(), Failed> {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}:\n{shown}").into())
    }
}

fn summary(stderr: &str) -> Result<serde_json::Value, Failed> {
    let start = stderr.find('{').ok_or("no JSON summary")?;
    serde_json::from_str(&stderr[start..]).map_err(|e| format!("{e}: {stderr}").into())
}

fn to_pg(p: &str, sink: &str, stages: &str) -> String {
    format!(
        "source t = postgres(\"{URL}\", table: \"{p}_trips\")\n\
         t{stages} | sink postgres(\"{URL}\", table: \"{p}_{sink}\", write: \"append\")\n"
    )
}

const MAP: &str = " | filter fare > 10.0 | map { id, vendor, fare2: fare * 2.0 }";

/// Every source and sink on the server: the job is one `INSERT … SELECT` there.
fn all_postgres_runs_in_database() -> Result<(), Failed> {
    let p = "pl_indb";
    let mut c = client()?;
    tables(&mut c, p, &["dst"])?;
    let d = Dir::new(&[("a.flow", &to_pg(p, "dst", MAP))])?;
    let (_, err) = d.ok(&["run", "--summary", "json", "a.flow"])?;
    let s = summary(&err)?;
    let layout = s["layout"].as_str().unwrap_or_default();
    expect(
        "layout",
        layout.contains("in PostgreSQL") && layout.contains("no rows through flow"),
        &err,
    )?;
    expect(
        "no stage ran in flow",
        s["stages"] == serde_json::json!([]),
        &err,
    )?;
    let want = rows(
        &mut c,
        &format!("SELECT id, vendor, fare * 2 FROM {p}_trips WHERE fare > 10"),
    )?;
    expect(
        "rows per sink from the INSERT",
        s["sinks"][0]["rows_written"] == serde_json::json!(want.len()),
        &err,
    )?;
    let got = rows(&mut c, &format!("SELECT * FROM {p}_dst"))?;
    expect("table content", got == want, &format!("{got:?}"))?;
    let how = loads(&mut c, &format!("{p}_dst"))?;
    expect(
        "loaded by the server",
        how == ["INSERT"],
        &format!("{how:?}"),
    )
}

/// `--native`: the same job through flow's runtime (`COPY … FROM STDIN`), the same rows.
fn native_flag_keeps_it_in_flow() -> Result<(), Failed> {
    let p = "pl_native";
    let mut c = client()?;
    tables(&mut c, p, &["a", "b"])?;
    let d = Dir::new(&[
        ("a.flow", &to_pg(p, "a", MAP)),
        ("b.flow", &to_pg(p, "b", MAP)),
    ])?;
    d.ok(&["run", "a.flow"])?;
    let (_, err) = d.ok(&["run", "--native", "b.flow"])?;
    expect(
        "native stages",
        err.contains("fused") && !err.contains("in PostgreSQL"),
        &err,
    )?;
    let (a, b) = (
        rows(&mut c, &format!("SELECT * FROM {p}_a"))?,
        rows(&mut c, &format!("SELECT * FROM {p}_b"))?,
    );
    expect(
        "same rows",
        a == b && a.len() > 1000,
        &format!("{a:?}\n{b:?}"),
    )?;
    let (la, lb) = (
        loads(&mut c, &format!("{p}_a"))?,
        loads(&mut c, &format!("{p}_b"))?,
    );
    expect(
        "how loaded",
        la == ["INSERT"] && lb == ["COPY"],
        &format!("{la:?} {lb:?}"),
    )?;
    // explain --native says so.
    let (out, _) = d.ok(&["explain", "--native", "b.flow"])?;
    expect(
        "explain --native",
        out.contains("--native: every stage runs in flow"),
        &out,
    )
}

/// A job of two parts: the PostgreSQL one in the database, the file one in flow.
fn mixed_job() -> Result<(), Failed> {
    let p = "pl_mixed";
    let mut c = client()?;
    tables(&mut c, p, &["dst"])?;
    let script = format!(
        "{}schema R {{ x: int, y: int }}\nsource f: R = csv(\"in.csv\")\n\
         f | map {{ x, q: x / y }} | sink csv(\"out.csv\")\n",
        to_pg(p, "dst", MAP)
    );
    let d = Dir::new(&[("a.flow", &script), ("in.csv", "x,y\n6,2\n9,3\n")])?;
    let (_, err) = d.ok(&["run", "a.flow"])?;
    expect(
        "summary",
        err.contains("part 1 (n0, n1, n2) in PostgreSQL")
            && err.contains("wrote 2 rows to out.csv")
            && err.contains(&format!("rows to table {p}_dst")),
        &err,
    )?;
    expect(
        "csv output",
        d.read("out.csv").as_deref() == Some("x,q\n6,3\n9,3\n"),
        &format!("{:?}", d.read("out.csv")),
    )?;
    let how = loads(&mut c, &format!("{p}_dst"))?;
    expect(
        "loaded by the server",
        how == ["INSERT"],
        &format!("{how:?}"),
    )?;
    let (out, _) = d.ok(&["explain", "a.flow"])?;
    expect(
        "explain",
        out.contains("part 1 (n0, n1, n2): runs in PostgreSQL")
            && out.contains("part 2 (n3, n4, n5): runs in flow"),
        &out,
    )
}

/// A stage without a faithful SQL form: the part runs in flow (explained, not an error), the
/// chain before it pushed into the source's query.
fn untranslatable_stage_falls_back() -> Result<(), Failed> {
    let p = "pl_fallback";
    let mut c = client()?;
    tables(&mut c, p, &["dst"])?;
    let stages = " | filter fare > 10.0 | sort fare | map { id, vendor, fare2: fare * 2.0 }";
    let d = Dir::new(&[("a.flow", &to_pg(p, "dst", stages))])?;
    let (out, _) = d.ok(&["explain", "a.flow"])?;
    expect(
        "explain",
        out.contains("runs in flow")
            && out.contains("note: not in the database: not translated to SQL: [E0080] `sort`")
            && out.contains("n0 source pushed into PostgreSQL")
            && out.contains("the rest runs in flow: n2 sort is not translated"),
        &out,
    )?;
    let (_, err) = d.ok(&["run", "a.flow"])?;
    expect("no error", !err.contains("error:"), &err)?;
    let want = rows(
        &mut c,
        &format!("SELECT id, vendor, fare * 2 FROM {p}_trips WHERE fare > 10"),
    )?;
    let got = rows(&mut c, &format!("SELECT * FROM {p}_dst"))?;
    expect("rows", got == want, &format!("{got:?}"))?;
    let how = loads(&mut c, &format!("{p}_dst"))?;
    expect("loaded by flow", how == ["COPY"], &format!("{how:?}"))
}

/// A failure anywhere in the job leaves the tables and files as they were: in the native part
/// (the database's transaction is rolled back) and in the database (nothing of flow's written).
fn failure_leaves_targets_unchanged() -> Result<(), Failed> {
    let p = "pl_fail";
    let mut c = client()?;
    tables(&mut c, p, &["dst"])?;
    sql(
        &mut c,
        &format!("INSERT INTO {p}_dst VALUES (-1, 'old', -1)"),
    )?;
    let replace = |stages: &str| {
        format!(
            "source t = postgres(\"{URL}\", table: \"{p}_trips\")\n\
             t{stages} | sink postgres(\"{URL}\", table: \"{p}_dst\", write: \"replace\")\n\
             schema R {{ x: int, y: int }}\nsource f: R = csv(\"in.csv\")\n\
             f | map {{ x, q: x / y }} | sink csv(\"out.csv\")\n"
        )
    };
    let before = rows(&mut c, &format!("SELECT * FROM {p}_dst"))?;
    // The file part fails (a division by zero on its second row).
    let d = Dir::new(&[("a.flow", &replace(MAP)), ("in.csv", "x,y\n6,2\n9,0\n")])?;
    let (code, _, err) = d.flow(&["run", "a.flow"]);
    expect("fails", code == 1 && err.contains("[E0070]"), &err)?;
    let after = rows(&mut c, &format!("SELECT * FROM {p}_dst"))?;
    expect("table unchanged", after == before, &format!("{after:?}"))?;
    expect("no csv", d.read("out.csv").is_none(), "out.csv exists")?;
    // The part in the database fails (a division by zero on the row with id 5000).
    let bad = " | map { id, vendor, fare2: to_float(100 / (5000 - id)) }";
    let d = Dir::new(&[("a.flow", &replace(bad)), ("in.csv", "x,y\n6,2\n9,3\n")])?;
    let (out, _) = d.ok(&["explain", "a.flow"])?;
    expect(
        "placed in the database",
        out.contains("runs in PostgreSQL"),
        &out,
    )?;
    let (code, _, err) = d.flow(&["run", "a.flow"]);
    expect(
        "fails at the expression",
        code == 1 && err.contains("[E0070]") && err.contains("division by zero"),
        &err,
    )?;
    let after = rows(&mut c, &format!("SELECT * FROM {p}_dst"))?;
    expect("table unchanged", after == before, &format!("{after:?}"))?;
    expect("no csv", d.read("out.csv").is_none(), "out.csv exists")
}

fn csv_rows(text: Option<String>) -> Vec<String> {
    let mut v: Vec<String> = text
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    if !v.is_empty() {
        let header = v.remove(0);
        v.sort();
        v.insert(0, header);
    }
    v
}

/// `filter | map | group` after a `postgres` source, into a CSV file: sent as one query with
/// `WHERE` and `GROUP BY`; flow reads only the groups; the same rows as the native run.
fn pushed_prefix_same_rows() -> Result<(), Failed> {
    let p = "pl_push";
    let mut c = client()?;
    tables(&mut c, p, &[])?;
    let script = format!(
        "source t = postgres(\"{URL}\", table: \"{p}_trips\")\n\
         t | filter fare > 10.0 | map {{ vendor, fare, d: dist ?? 0.0 }} \
         | group vendor {{ n: count(), total: sum(fare), far: max(d), trips: count_distinct(fare) }} \
         | sink csv(\"out.csv\")\n"
    );
    let d = Dir::new(&[("a.flow", &script)])?;
    let (out, _) = d.ok(&["explain", "a.flow"])?;
    expect(
        "explain",
        out.contains("n0 source pushed into PostgreSQL") && out.contains("GROUP BY \"vendor\""),
        &out,
    )?;
    let (_, err) = d.ok(&["run", "--summary", "json", "a.flow"])?;
    let pushed = csv_rows(d.read("out.csv"));
    let s = summary(&err)?;
    let read = s["stages"][0]["rows_out"].clone();
    expect(
        "flow read the 5 groups only",
        read == serde_json::json!(5),
        &err,
    )?;
    let (_, err) = d.ok(&["run", "--native", "--summary", "json", "a.flow"])?;
    let native = csv_rows(d.read("out.csv"));
    let s = summary(&err)?;
    expect(
        "native read every row",
        s["stages"][0]["rows_out"] == serde_json::json!(5000),
        &err,
    )?;
    expect(
        "same rows",
        pushed == native && pushed.len() == 6,
        &format!("{pushed:?}\n{native:?}"),
    )
}

/// A fused chain whose last step has no faithful SQL (`to_str` of a float): its first steps
/// are pushed, the rest runs in flow; the same rows as natively.
fn pushed_part_of_a_fused_node() -> Result<(), Failed> {
    let p = "pl_split";
    let mut c = client()?;
    tables(&mut c, p, &[])?;
    let script = format!(
        "source t = postgres(\"{URL}\", table: \"{p}_trips\")\n\
         t | filter fare > 30.0 | map {{ id, f2: fare * 2.0 }} | map {{ id, s: to_str(f2) }} \
         | sink csv(\"out.csv\")\n"
    );
    let d = Dir::new(&[("a.flow", &script)])?;
    let (out, _) = d.ok(&["explain", "a.flow"])?;
    expect(
        "explain",
        out.contains("with the first 2 steps of n1") && out.contains("[E0080] to_str of a float"),
        &out,
    )?;
    let want = rows(
        &mut c,
        &format!("SELECT count(*) FROM {p}_trips WHERE fare > 30"),
    )?;
    let (_, err) = d.ok(&["run", "--summary", "json", "a.flow"])?;
    let s = summary(&err)?;
    expect(
        "flow read the filtered rows only",
        s["stages"][0]["rows_out"].as_u64() == want[0].parse().ok(),
        &err,
    )?;
    let pushed = csv_rows(d.read("out.csv"));
    d.ok(&["run", "--native", "a.flow"])?;
    let native = csv_rows(d.read("out.csv"));
    expect(
        "same rows",
        pushed == native && pushed.len() > 100,
        &format!("{pushed:?}\n{native:?}"),
    )
}

/// A row error inside a pushed query (a guard of the SQL) fails the job at its expression, as
/// natively, with no output.
fn pushed_row_error_at_the_expression() -> Result<(), Failed> {
    let p = "pl_pusherr";
    let mut c = client()?;
    tables(&mut c, p, &[])?;
    let script = format!(
        "source t = postgres(\"{URL}\", table: \"{p}_trips\")\n\
         t | map {{ id, q: 100 / (id - 4000) }} | sink csv(\"out.csv\")\n"
    );
    let d = Dir::new(&[("a.flow", &script)])?;
    let (out, _) = d.ok(&["explain", "a.flow"])?;
    expect(
        "pushed",
        out.contains("n0 source pushed into PostgreSQL"),
        &out,
    )?;
    for args in [&["run", "a.flow"][..], &["run", "--native", "a.flow"][..]] {
        let (code, _, err) = d.flow(args);
        expect(
            "fails at the expression",
            code == 1
                && err.contains("[E0070]")
                && err.contains("division by zero")
                && err.contains("a.flow:2:"),
            &err,
        )?;
        expect("no csv", d.read("out.csv").is_none(), "out.csv exists")?;
    }
    Ok(())
}

/// `flow explain` of placed jobs, the server's port and the password kept out.
fn explain_snapshot(case: &str, script: String) -> Result<(), Failed> {
    let url = pg_url()?;
    let mut c = client()?;
    let p = format!("pl_{}", case.trim_start_matches("explain_"));
    tables(&mut c, &p, &["dst"])?;
    let script = script.replace("{p}", &p);
    let d = Dir::new(&[("a.flow", &script)])?;
    let (out, err) = d.ok(&["explain", "a.flow"])?;
    if let Some(pw) = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .and_then(|u| u.split(':').nth(1))
    {
        expect("no password", !out.contains(pw) && !err.contains(pw), &out)?;
    }
    // The server's port is the test run's own.
    let mut shown = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest.find("127.0.0.1:") {
        shown.push_str(&rest[..i + "127.0.0.1:".len()]);
        rest = rest[i + "127.0.0.1:".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        shown.push_str("PORT");
    }
    shown.push_str(rest);
    common::check("placement", case, &[("a.flow", &script)], &shown)
}

type Case = (
    &'static str,
    Box<dyn Fn() -> Result<(), Failed> + Send + Sync>,
);

fn main() {
    let case =
        |f: fn() -> Result<(), Failed>| -> Box<dyn Fn() -> Result<(), Failed> + Send + Sync> {
            Box::new(f)
        };
    let snap = |name: &'static str, script: &'static str| -> Case {
        (
            name,
            Box::new(move || explain_snapshot(name, script.replace("URL", URL))),
        )
    };
    let cases: Vec<Case> = vec![
        (
            "in_database::all_postgres",
            case(all_postgres_runs_in_database),
        ),
        (
            "in_database::native_flag",
            case(native_flag_keeps_it_in_flow),
        ),
        ("in_database::mixed_job", case(mixed_job)),
        (
            "in_database::untranslatable_stage",
            case(untranslatable_stage_falls_back),
        ),
        (
            "in_database::failure_leaves_targets",
            case(failure_leaves_targets_unchanged),
        ),
        ("pushed::prefix_same_rows", case(pushed_prefix_same_rows)),
        (
            "pushed::part_of_a_fused_node",
            case(pushed_part_of_a_fused_node),
        ),
        (
            "pushed::row_error_at_the_expression",
            case(pushed_row_error_at_the_expression),
        ),
        snap(
            "explain_in_database",
            "source t = postgres(\"URL\", table: \"{p}_trips\")\n\
             t | filter fare > 10.0 | map { id, vendor, fare2: fare * 2.0 } \
             | sink postgres(\"URL\", table: \"{p}_dst\", write: \"append\")\n",
        ),
        snap(
            "explain_pushed",
            "source t = postgres(\"URL\", table: \"{p}_trips\")\n\
             t | filter fare > 10.0 | group vendor { n: count() } | sink csv(\"out.csv\")\n\
             t | filter fare > 30.0 | sort fare | sink csv(\"sorted.csv\")\n\
             t | sink csv(\"all.csv\")\n",
        ),
    ];
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let skip = std::env::var_os(URL_VAR).is_none() && !in_ci;
    if skip {
        eprintln!(
            "\n*** tests/placement.rs: SKIPPED — FLOW_TEST_PG_URL is not set. These tests need a \
             PostgreSQL server: `source .ci/setup/30-postgres.sh` starts a throw-away one (under \
             CI=true a missing server fails them instead). ***\n"
        );
    }
    let snapshots = ["explain_in_database", "explain_pushed"];
    let mut trials: Vec<Trial> = cases
        .into_iter()
        .map(|(name, f)| Trial::test(name, f).with_ignored_flag(skip))
        .collect();
    trials.push(common::no_stale_snapshots(
        "placement",
        snapshots.iter().map(|s| s.to_string()).collect(),
    ));
    common::run(trials);
}
