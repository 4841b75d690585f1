//! `flow compile --target sql:duckdb|sql:postgres|sql:spark FILE…`: the job as SQL for an engine, or the
//! diagnostics saying what has no faithful translation.

use super::{ColorChoice, PlanFlags, out, session, use_color};
use crate::sql::{self, Dialect, DuckDb, Postgres, Spark, SqlError};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CompileArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The engine: `sql:duckdb`, `sql:postgres` or `sql:spark`.
    #[arg(long, value_parser = ["sql:duckdb", "sql:postgres", "sql:spark"])]
    target: String,
    #[command(flatten)]
    plan: PlanFlags,
}

/// The dialect of a `--target` value.
pub fn dialect(target: &str) -> Option<&'static dyn Dialect> {
    match target {
        "sql:duckdb" | "duckdb" => Some(&DuckDb),
        "sql:postgres" | "postgres" => Some(&Postgres),
        "sql:spark" | "spark" => Some(&Spark),
        _ => None,
    }
}

/// Prints the diagnostics of SQL translation errors against the session's sources.
pub fn report_sql_errors(s: &mut crate::driver::Session, errors: &[SqlError]) {
    let diags: Vec<_> = errors.iter().map(SqlError::diagnostic).collect();
    let text =
        crate::diagnostics::render(&s.compile().sources, &diags, use_color(ColorChoice::Auto));
    super::err(&text);
}

pub fn cmd_compile(args: CompileArgs) -> ExitCode {
    let Some(d) = dialect(&args.target) else {
        super::err(&format!("flow compile: unknown target {:?}", args.target));
        return ExitCode::from(2);
    };
    let mut s = match session(
        &args.files,
        args.plan,
        crate::diagnostics::DEFAULT_MAX_ERRORS,
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = match s.plan() {
        Ok(plan) => sql::compile(plan, d),
        Err(_) => return ExitCode::from(1),
    };
    match result {
        Ok(statements) => match out(sql::script(&statements).trim_end()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        },
        Err(errors) => {
            report_sql_errors(&mut s, &errors);
            ExitCode::from(1)
        }
    }
}
