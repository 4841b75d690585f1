//! Runs a job where its data is (`sql::place` decides, this executes): each part placed in
//! PostgreSQL runs as its statements in one open transaction per server (no rows through flow),
//! then the rest of the job runs in flow (pushed chains read through their queries), then the
//! outputs are committed: flow's own first (files renamed, its sink transactions committed),
//! the database transactions last. A failure before that point leaves every output as it was.

use super::session::{RunFailure, Session, run_plan_in_layout};
use crate::diagnostics::{Code, Diagnostic};
use crate::plan::Plan;
use crate::runtime::cluster::ClusterOptions;
use crate::runtime::{RunError, RunOptions, RunSummary, SinkSummary};
use crate::sql::place::{self, Part, Placement, Run, Server};
use crate::sql::{StatementKind, postgres};
use std::collections::BTreeSet;

/// A server's open transaction with the parts placed on it done.
struct Open {
    client: ::postgres::Client,
    server: Server,
    sinks: Vec<SinkSummary>,
}

fn failure(server: &Server, reason: String) -> RunFailure {
    // A stop of the job's SQL ends in the expression's place: shown there, as a native row
    // error is.
    let diagnostic = crate::sql::located(&reason).map(|(message, span)| {
        Box::new(
            Diagnostic::error(
                Code::RowEvalFailed,
                format!("the job failed in PostgreSQL: {message}"),
            )
            .label(span, "evaluating this expression"),
        )
    });
    RunFailure::Job {
        error: Box::new(RunError::Stage {
            stage: format!("in PostgreSQL ({})", server.shown),
            reason,
        }),
        diagnostic,
    }
}

/// Connects, opens the transaction and runs the parts' statements (the dialect's prelude
/// once per session).
fn begin(server: &Server, parts: &[&Part]) -> Result<Open, RunFailure> {
    let mut client = postgres::connect(server.url()).map_err(|e| failure(server, e))?;
    // A signal during the statements cancels them (`runtime::signals`), so none runs on after
    // flow has exited.
    let _live = crate::connectors::postgres::client::cancel_on_signal(client.cancel_token());
    let failed = |e: ::postgres::Error| failure(server, postgres::error_text(&e));
    client.batch_execute("BEGIN").map_err(failed)?;
    let mut done = BTreeSet::new();
    let mut sinks = Vec::new();
    for part in parts {
        let Run::Database { statements, .. } = &part.run else {
            continue;
        };
        for st in statements {
            match &st.kind {
                StatementKind::Setup => {
                    if done.insert(st.sql.clone()) || !st.sql.starts_with("CREATE FUNCTION") {
                        client.batch_execute(&st.sql).map_err(failed)?;
                    }
                }
                StatementKind::Insert { origin, table } => {
                    let n = client.execute(st.sql.as_str(), &[]).map_err(failed)?;
                    sinks.push(SinkSummary {
                        origin: origin.clone(),
                        connector: "postgres".into(),
                        path: Some(table.clone()),
                        rows_written: n,
                    });
                }
                StatementKind::Load { .. } | StatementKind::Sink { .. } => {
                    return Err(failure(
                        server,
                        "internal error: a part placed in the database reads or writes a file"
                            .into(),
                    ));
                }
            }
        }
    }
    Ok(Open {
        client,
        server: server.clone(),
        sinks,
    })
}

/// A native failure whose text carries a stop of a pushed query (` [at FILE:START-END]`) gets
/// its diagnostic at the expression.
fn located_native(f: RunFailure) -> RunFailure {
    match f {
        RunFailure::Job {
            error,
            diagnostic: None,
        } => {
            let diagnostic = crate::sql::located(&error.to_string()).map(|(message, span)| {
                Box::new(
                    Diagnostic::error(
                        Code::RowEvalFailed,
                        format!("the job failed in PostgreSQL: {message}"),
                    )
                    .label(span, "evaluating this expression"),
                )
            });
            RunFailure::Job { error, diagnostic }
        }
        other => other,
    }
}

/// What the summary's layout says of the placement.
fn describe(placement: &Placement) -> Vec<String> {
    let mut out = Vec::new();
    for (k, p) in placement.parts.iter().enumerate() {
        let nodes: Vec<String> = p.nodes.iter().map(|n| format!("n{}", n.index())).collect();
        match &p.run {
            Run::Database { server, .. } => out.push(format!(
                "part {} ({}) in PostgreSQL ({}) as INSERT … SELECT, no rows through flow",
                k + 1,
                nodes.join(", "),
                server.shown
            )),
            Run::Flow { pushed, .. } => {
                for x in pushed {
                    out.push(format!(
                        "source n{} with {} pushed into its query in PostgreSQL ({})",
                        x.source.index(),
                        place::covers(x),
                        x.server.shown
                    ));
                }
            }
        }
    }
    out
}

/// Runs `plan` as placed (`native`: everything in flow).
pub fn run_placed(
    plan: &Plan,
    opts: &RunOptions,
    nodes: Option<usize>,
    cluster: &ClusterOptions,
    native: bool,
) -> Result<RunSummary, RunFailure> {
    let placement = place::place(plan, native);
    if placement.all_in_flow() {
        return run_plan_in_layout(plan, opts, nodes, cluster);
    }
    let started = std::time::Instant::now();
    let mut open = Vec::new();
    for (server, parts) in placement.in_database() {
        // An error drops the connections opened so far: their transactions roll back.
        open.push(begin(server, &parts)?);
    }
    let mut summary = match place::native_plan(plan, &placement) {
        Some(native) => {
            run_plan_in_layout(&native, opts, nodes, cluster).map_err(located_native)?
        }
        None => RunSummary::default(),
    };
    for o in open {
        let Open {
            mut client,
            server,
            sinks,
        } = o;
        client.batch_execute("COMMIT").map_err(|e| {
            failure(
                &server,
                format!(
                    "COMMIT failed: {} (outputs written by flow itself were already in place)",
                    postgres::error_text(&e)
                ),
            )
        })?;
        let _ = client.close();
        summary.sinks.extend(sinks);
    }
    let mut layout: Vec<String> = Some(summary.layout)
        .filter(|l| !l.is_empty())
        .into_iter()
        .collect();
    layout.extend(describe(&placement));
    summary.layout = layout.join("; ");
    if summary.stages.is_empty() {
        summary.elapsed_secs = started.elapsed().as_secs_f64();
    }
    Ok(summary)
}

impl Session {
    /// Checks, plans and runs the job where its data is (`sql::place`): parts whose sources and
    /// sinks are all PostgreSQL tables on one server inside that server, chains of stages
    /// after a `postgres` source pushed into its query, the rest in flow in the layout its mode
    /// declares ([`Session::run_in_layout`]). `native`: everything in flow.
    pub fn run_placed(
        &mut self,
        opts: &RunOptions,
        nodes: Option<usize>,
        cluster: &ClusterOptions,
        native: bool,
    ) -> Result<RunSummary, RunFailure> {
        let plan = self.plan().map_err(RunFailure::Diagnostics)?;
        run_placed(plan, opts, nodes, cluster, native)
    }
}
