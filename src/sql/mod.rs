//! The SQL backend (seed 003): the de-duplicated plan (`plan::Plan`) as SQL for an engine,
//! with flow's semantics or a compile-time error saying why not. A backend beside the kernels;
//! it reads only the plan.
//!
//! Every plan node becomes a common table expression (so a node shared by several sinks is
//! written once per statement, under one name); each sink is one statement. `dialect` holds
//! what differs between engines, `expr` the expression translation, `duckdb` runs a job on
//! the DuckDB CLI.

pub mod dialect;
pub mod duckdb;
mod expr;
pub mod interrupt;
pub mod outputs;
pub mod place;
pub mod postgres;
pub mod spark;
pub mod spark_run;

pub use dialect::{Dialect, DuckDb, Format, Postgres};
pub use spark::Spark;

use crate::connectors::{opt_bool, opt_delimiter, opt_str};
use crate::diagnostics::{Code, Diagnostic};
use crate::job::{ErrorPolicy, OnError, Options};
use crate::plan::{NodeId, Op, Plan, Step};
use crate::span::Span;
use crate::types::{RowType, Scalar};
use expr::ExprCx;
use std::collections::BTreeSet;

/// Why (part of) a plan has no faithful SQL.
#[derive(Clone, Debug, PartialEq)]
pub struct SqlError {
    pub code: Code,
    pub message: String,
    pub span: Span,
    pub label: String,
}

impl SqlError {
    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic::error(self.code, self.message.clone())
            .label(self.span, self.label.clone())
            .help("run this job natively (`flow run` without `--target`), or change the script")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum StatementKind {
    /// Settings and helpers of the dialect.
    Setup,
    /// Loads the file(s) `path` into a table (dialects without a file-reading function);
    /// the client sends the file's bytes (PostgreSQL: `COPY … FROM STDIN`).
    Load { source: String, path: String },
    /// Loads a `postgres` sink's table on the server the job runs on: `sql` is its
    /// `INSERT … SELECT` (after its `CREATE TABLE` or `TRUNCATE`, as `Setup`), run in the
    /// job's one transaction; `table` names it for the summary.
    Insert { origin: String, table: String },
    /// Writes one sink: `query` is its SELECT, `sql` the whole statement.
    Sink {
        origin: String,
        path: Option<String>,
        format: Format,
        query: String,
        /// The sink's column names (for a header written by the runner).
        columns: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub kind: StatementKind,
    pub sql: String,
}

/// The statements of the job in `dialect`, in order: setup, loads, one per sink.
pub fn compile(plan: &Plan, dialect: &dyn Dialect) -> Result<Vec<Statement>, Vec<SqlError>> {
    compile_on(plan, dialect, None)
}

/// [`compile`] for a run on the server `server` (a PostgreSQL URL): `postgres` sources and
/// sinks must be on it (the same URL, `$NAME` resolved), and are read and loaded in place.
/// Without a server (`flow compile`) they are taken to be on the one the SQL is run on.
pub fn compile_on(
    plan: &Plan,
    dialect: &dyn Dialect,
    server: Option<&str>,
) -> Result<Vec<Statement>, Vec<SqlError>> {
    let mut cx = Compiler::new(plan, dialect, server);
    let order = match petgraph::algo::toposort(&plan.graph, None) {
        Ok(o) => o,
        Err(c) => {
            return Err(vec![SqlError {
                code: Code::Internal,
                message: "the plan has a cycle".into(),
                span: plan.graph[c.node_id()].span,
                label: "here".into(),
            }]);
        }
    };
    for p in dialect.prelude() {
        cx.statements.push(Statement {
            kind: StatementKind::Setup,
            sql: p,
        });
    }
    let mut sinks = Vec::new();
    for &id in &order {
        if matches!(plan.graph[id].op, Op::Sink(_)) {
            sinks.push(id);
        } else {
            cx.node(id);
        }
    }
    for id in sinks {
        cx.sink(id);
    }
    if cx.errors.is_empty() {
        Ok(cx.statements)
    } else {
        Err(cx.errors)
    }
}

/// The rows of `node` as one `WITH … SELECT` in `dialect` (to run after its prelude), compiled
/// from `node` and the nodes upstream of it only; `server` as in [`compile_on`]. For a query
/// sent to a `postgres` source's server in place of the stages it covers (`place`).
pub fn select_of(
    plan: &Plan,
    dialect: &dyn Dialect,
    server: Option<&str>,
    node: NodeId,
) -> Result<String, Vec<SqlError>> {
    let mut cx = Compiler::new(plan, dialect, server);
    let mut needed = BTreeSet::new();
    let mut stack = vec![node];
    while let Some(i) = stack.pop() {
        if needed.insert(i) {
            stack.extend(plan.inputs(i));
        }
    }
    // Node indices are a topological order (`plan::explain`).
    for &id in &needed {
        if !matches!(plan.graph[id].op, Op::Sink(_)) {
            cx.node(id);
        }
    }
    if !cx.statements.is_empty() && cx.errors.is_empty() {
        let n = &plan.graph[node];
        cx.refuse(
            Code::NotTranslatable,
            n.span,
            "a file input is not read by a query".into(),
            "this stage reads one",
        );
    }
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    let cols = cx.cols(&plan.graph[node].row).join(", ");
    Ok(format!(
        "WITH {} SELECT {cols} FROM {}",
        cx.ctes_of(node).join(", "),
        cx.relation(node)
    ))
}

/// The place of an expression as the end of a stop's message: ` [at FILE:START-END]` (file id
/// and byte range), so an engine's error can be shown at the script's expression ([`located`]).
pub fn at(span: Span) -> String {
    format!(" [at {}:{}-{}]", span.file.0, span.start, span.end)
}

/// A stop raised by the job's SQL in an engine's error text: its message (from `flow: `, without
/// the place) and the expression's span.
pub fn located(error: &str) -> Option<(String, Span)> {
    let start = error.find("flow: ")? + "flow: ".len();
    let rest = &error[start..];
    let open = rest.find(" [at ")?;
    let tail = &rest[open + " [at ".len()..];
    let close = tail.find(']')?;
    let (file, range) = tail[..close].split_once(':')?;
    let (s, e) = range.split_once('-')?;
    let span = Span::new(
        crate::span::FileId(file.parse().ok()?),
        s.parse().ok()?,
        e.parse().ok()?,
    );
    Some((rest[..open].to_string(), span))
}

/// The statements as one script, each ending in `;`.
pub fn script(statements: &[Statement]) -> String {
    let mut s = String::new();
    for st in statements {
        s.push_str(&st.sql);
        s.push_str(";\n");
    }
    s
}

struct Cte {
    node: NodeId,
    name: String,
    sql: String,
}

struct Compiler<'a> {
    plan: &'a Plan,
    d: &'a dyn Dialect,
    /// The server the job runs on, for `postgres` sources and sinks.
    server: Option<String>,
    errors: Vec<SqlError>,
    /// In dependency order; the last CTE of a node is its result.
    ctes: Vec<Cte>,
    statements: Vec<Statement>,
}

/// A table name as PostgreSQL reads it (`parse_ident`): parts separated by `.`, an unquoted part
/// folded to lower case, a `"quoted"` one as written; each part quoted again.
pub fn table_ref(name: &str, d: &dyn Dialect) -> Result<String, String> {
    let bad = || format!("`{name}` is not a table name");
    let mut parts = Vec::new();
    let mut chars = name.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(bad()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                if !(c.is_alphanumeric() || c == '_' || c == '$') {
                    return Err(bad());
                }
                part.push(c.to_ascii_lowercase());
                chars.next();
            }
        }
        if part.is_empty() {
            return Err(bad());
        }
        parts.push(d.ident(&part));
        match chars.next() {
            None => break,
            Some('.') => {}
            Some(_) => return Err(bad()),
        }
    }
    Ok(parts.join("."))
}

/// The file format of a connector with these options (`None`: not a file format we translate).
fn format_of(connector: &str, options: &Options) -> Result<Format, String> {
    let csv = || -> Result<Format, String> {
        Ok(Format::Csv {
            header: opt_bool(options, "header", true),
            delimiter: opt_delimiter(options)?,
        })
    };
    match connector {
        "csv" => csv(),
        "tsv" => Ok(Format::Csv {
            header: opt_bool(options, "header", true),
            delimiter: b'\t',
        }),
        "jsonl" => Ok(Format::JsonLines),
        "stdout" => match opt_str(options, "format") {
            None | Some("csv") => csv(),
            Some("jsonl") => Ok(Format::JsonLines),
            Some(f) => Err(format!("standard output in format {f:?}")),
        },
        c => Err(format!("the {c} connector")),
    }
}

impl<'a> Compiler<'a> {
    fn new(plan: &'a Plan, d: &'a dyn Dialect, server: Option<&str>) -> Compiler<'a> {
        Compiler {
            plan,
            d,
            server: server.map(str::to_string),
            errors: Vec::new(),
            ctes: Vec::new(),
            statements: Vec::new(),
        }
    }

    fn refuse(&mut self, code: Code, span: Span, message: String, label: &str) {
        self.errors.push(SqlError {
            code,
            message,
            span,
            label: label.into(),
        });
    }

    /// The file format of a source or sink; an error at `span` when it has none in SQL.
    fn format(
        &mut self,
        connector: &str,
        options: &Options,
        span: Span,
        label: &str,
    ) -> Option<Format> {
        match format_of(connector, options) {
            Ok(f) => Some(f),
            Err(what) => {
                let msg = format!("{what} has no {} SQL form", self.d.name());
                self.refuse(Code::NotTranslatable, span, msg, label);
                None
            }
        }
    }

    fn policy(&mut self, p: &ErrorPolicy, span: Span, what: &str) {
        let name = match &p.on_error {
            OnError::Fail => return,
            OnError::Skip => "skip".to_string(),
            OnError::DeadLetter(path) => format!("dead_letter({path:?})"),
        };
        self.refuse(
            Code::PolicyNotTranslatable,
            span,
            format!(
                "the error policy `{name}` of this {what} cannot be expressed in {} SQL: a statement fails as a whole",
                self.d.name()
            ),
            "the policy is set here",
        );
    }

    fn name(&self, id: NodeId, step: Option<usize>) -> String {
        let n = &self.plan.graph[id];
        let base = n
            .labels
            .first()
            .cloned()
            .unwrap_or_else(|| n.op.kind().to_string());
        let s = match step {
            Some(k) => format!("{base}_{}_{k}", id.index()),
            None => format!("{base}_{}", id.index()),
        };
        self.d.ident(&s)
    }

    fn cols(&self, row: &RowType) -> Vec<String> {
        row.fields.iter().map(|f| self.d.ident(&f.name)).collect()
    }

    fn row_types(&mut self, id: NodeId) {
        let n = &self.plan.graph[id];
        if let Some(f) = n
            .row
            .fields
            .iter()
            .find(|f| self.d.type_name(f.ty.scalar).is_none())
        {
            let msg = format!(
                "column `{}` has type {}, which is not translated to {} SQL yet",
                f.name,
                f.ty.scalar.name(),
                self.d.name()
            );
            self.refuse(Code::NotTranslatable, n.span, msg, "this stage produces it");
        }
    }

    /// The result relation of a node (its last CTE).
    fn relation(&self, id: NodeId) -> String {
        self.ctes
            .iter()
            .rev()
            .find(|c| c.node == id)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "\"missing\"".into())
    }

    fn push(&mut self, node: NodeId, name: String, sql: String) {
        self.ctes.push(Cte { node, name, sql });
    }

    /// `SELECT e1 AS c1, … FROM input`.
    fn select(
        &mut self,
        input: &RowType,
        exprs: &[(&str, &crate::check::hir::Expr)],
        from: &str,
    ) -> String {
        let cols = self.cols(input);
        let mut cx = ExprCx::new(self.d, &cols, &mut self.errors);
        let items: Vec<String> = exprs
            .iter()
            .map(|(n, e)| format!("{} AS {}", cx.expr(e), self.d.ident(n)))
            .collect();
        format!("SELECT {} FROM {from}", items.join(", "))
    }

    fn filter(&mut self, input: &RowType, pred: &crate::check::hir::Expr, from: &str) -> String {
        let cols = self.cols(input);
        let mut cx = ExprCx::new(self.d, &cols, &mut self.errors);
        format!("SELECT * FROM {from} WHERE {}", cx.expr(pred))
    }

    fn node(&mut self, id: NodeId) {
        let plan = self.plan;
        let n = &plan.graph[id];
        self.row_types(id);
        let inputs = plan.inputs(id);
        let input_row = inputs.first().map(|&i| plan.graph[i].row.clone());
        let from = inputs
            .first()
            .map(|&i| self.relation(i))
            .unwrap_or_default();
        match &n.op {
            Op::Source(spec) => {
                self.policy(&spec.policy, n.span, "source");
                let relation = if spec.connector == "postgres" {
                    match self.table_source(spec, n.span) {
                        Some(r) => r,
                        None => return,
                    }
                } else {
                    let format =
                        match self.format(&spec.connector, &spec.options, n.span, "this source") {
                            Some(Format::JsonLines) => {
                                // DuckDB's JSON reader converts where flow's rejects (1.5 into an int
                                // column); not translated until that is guarded.
                                return self.refuse(
                                    Code::NotTranslatable,
                                    n.span,
                                    format!(
                                        "JSON lines sources are not translated to {} SQL yet",
                                        self.d.name()
                                    ),
                                    "this source",
                                );
                            }
                            Some(f) => f,
                            None => return,
                        };
                    let Some(path) = &spec.path else {
                        return self.refuse(
                            Code::NotTranslatable,
                            n.span,
                            "a source without a file (standard input) is not translated".into(),
                            "this source",
                        );
                    };
                    // All the file's columns, positionally; unused ones as text (never converted).
                    let columns: Vec<(String, String)> = spec
                        .schema
                        .fields
                        .iter()
                        .enumerate()
                        .map(|(i, f)| {
                            let used = spec.columns.contains(&i);
                            let t = if used {
                                self.d.type_name(f.ty.scalar)
                            } else {
                                None
                            };
                            let t = t.or(self.d.type_name(Scalar::Str)).unwrap_or("VARCHAR");
                            (f.name.clone(), t.to_string())
                        })
                        .collect();
                    match self.d.read_file(path, format, &columns) {
                        Some(r) => r,
                        None => {
                            let table = self.d.ident(&format!("flow_src_{}", spec.name));
                            for sql in self.d.load(&table, path, format, &columns) {
                                self.statements.push(Statement {
                                    kind: StatementKind::Load {
                                        source: spec.name.clone(),
                                        path: path.clone(),
                                    },
                                    sql,
                                });
                            }
                            table
                        }
                    }
                };
                // An empty cell is "" in a non-nullable text column and an error in other
                // non-nullable columns; the engines read it as NULL.
                let items: Vec<String> = spec
                    .columns
                    .iter()
                    .filter_map(|&i| spec.schema.fields.get(i))
                    .map(|f| {
                        let c = self.d.ident(&f.name);
                        let v = if f.ty.nullable {
                            c.clone()
                        } else if f.ty.scalar == Scalar::Str {
                            format!("COALESCE({c}, '')")
                        } else {
                            format!(
                                "CASE WHEN {c} IS NULL THEN {} ELSE {c} END",
                                self.d.raise(
                                    &format!(
                                        "empty value in column {} of source {}",
                                        f.name, spec.name
                                    ),
                                    f.ty.scalar
                                )
                            )
                        };
                        format!("{v} AS {c}")
                    })
                    .collect();
                let sql = format!("SELECT {} FROM {relation}", items.join(", "));
                let name = self.name(id, None);
                self.push(id, name, sql);
            }
            Op::Filter { pred, policy } => {
                self.policy(policy, n.span, "filter");
                let row = input_row.unwrap_or_default();
                let sql = self.filter(&row, pred, &from);
                let name = self.name(id, None);
                self.push(id, name, sql);
            }
            Op::Map { fields, policy } => {
                self.policy(policy, n.span, "map");
                let row = input_row.unwrap_or_default();
                let exprs: Vec<(&str, &crate::check::hir::Expr)> =
                    fields.iter().map(|(n, e)| (n.as_str(), e)).collect();
                let sql = self.select(&row, &exprs, &from);
                let name = self.name(id, None);
                self.push(id, name, sql);
            }
            Op::Fused { steps } => {
                let mut row = input_row.unwrap_or_default();
                let mut from = from;
                for (k, st) in steps.iter().enumerate() {
                    self.policy(&st.policy, n.span, "stage");
                    let sql = match &st.step {
                        Step::Filter(p) => self.filter(&row, p, &from),
                        Step::Map(es) => {
                            let exprs: Vec<(&str, &crate::check::hir::Expr)> = st
                                .row
                                .fields
                                .iter()
                                .map(|f| f.name.as_str())
                                .zip(es.iter())
                                .collect();
                            self.select(&row, &exprs, &from)
                        }
                    };
                    let name = self.name(id, Some(k));
                    self.push(id, name.clone(), sql);
                    from = name;
                    row = st.row.clone();
                }
            }
            Op::Group { keys, aggs } => {
                let row = input_row.unwrap_or_default();
                if keys.is_empty() {
                    return self.refuse(
                        Code::NotTranslatable,
                        n.span,
                        "a group without keys is not translated (SQL gives one row for no input)"
                            .into(),
                        "this group",
                    );
                }
                let cols = self.cols(&row);
                let key_sql: Vec<String> = keys
                    .iter()
                    .map(|&k| cols.get(k).cloned().unwrap_or_else(|| "NULL".into()))
                    .collect();
                let out = self.cols(&n.row);
                let mut cx = ExprCx::new(self.d, &cols, &mut self.errors);
                let mut items: Vec<String> = key_sql
                    .iter()
                    .zip(&out)
                    .map(|(k, o)| format!("{k} AS {o}"))
                    .collect();
                for (a, o) in aggs.iter().zip(out.iter().skip(keys.len())) {
                    items.push(format!("{} AS {o}", cx.agg(a)));
                }
                let sql = format!(
                    "SELECT {} FROM {from} GROUP BY {}",
                    items.join(", "),
                    key_sql.join(", ")
                );
                let name = self.name(id, None);
                self.push(id, name, sql);
            }
            Op::Union => {
                let parts: Vec<String> = inputs
                    .iter()
                    .map(|&i| format!("SELECT * FROM {}", self.relation(i)))
                    .collect();
                let name = self.name(id, None);
                self.push(id, name, parts.join(" UNION ALL "));
            }
            Op::Limit(k) if self.groups_in_any_order(id) => {
                // flow's `limit` after a `group` is any N groups (docs/LANGUAGE.md): a bare
                // LIMIT is faithful on every engine.
                let name = self.name(id, None);
                self.push(id, name, format!("SELECT * FROM {from} LIMIT {k}"));
            }
            Op::Limit(k) => {
                if !self.d.limit_in_input_order() {
                    return self.refuse(
                        Code::NotTranslatable,
                        n.span,
                        format!(
                            "`limit` keeps the first rows in input order; {} SQL has no input order",
                            self.d.name()
                        ),
                        "this limit",
                    );
                }
                if self.after_group(id) {
                    return self.refuse(
                        Code::NotTranslatable,
                        n.span,
                        "`limit` after a `group` and another stage takes the first rows of an order SQL does not reproduce".into(),
                        "this limit",
                    );
                }
                let name = self.name(id, None);
                self.push(id, name, format!("SELECT * FROM {from} LIMIT {k}"));
            }
            Op::Distinct { keys: None } => {
                let name = self.name(id, None);
                self.push(id, name, format!("SELECT DISTINCT * FROM {from}"));
            }
            Op::Distinct { keys: Some(_) } => {
                self.refuse(
                    Code::NotTranslatable,
                    n.span,
                    "`distinct` with keys keeps the first row of each key in input order, which SQL does not reproduce".into(),
                    "this distinct",
                );
            }
            Op::Join {
                keys,
                fields,
                outer,
                ..
            } => {
                let (Some(&l), Some(&r)) = (inputs.first(), inputs.get(1)) else {
                    return;
                };
                let (lrow, rrow) = (&self.plan.graph[l].row, &self.plan.graph[r].row);
                let mut items: Vec<String> = self
                    .cols(lrow)
                    .into_iter()
                    .map(|c| format!("l.{c}"))
                    .collect();
                for (&f, out) in fields.iter().zip(&n.row.fields[lrow.len()..]) {
                    let c = self.d.ident(&rrow.fields[f].name);
                    items.push(format!("r.{c} AS {}", self.d.ident(&out.name)));
                }
                let on: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        format!(
                            "l.{} = r.{}",
                            self.d.ident(&lrow.fields[k.left].name),
                            self.d.ident(&rrow.fields[k.right].name)
                        )
                    })
                    .collect();
                let sql = format!(
                    "SELECT {} FROM {} AS l {}JOIN {} AS r ON {}",
                    items.join(", "),
                    self.relation(l),
                    if *outer { "LEFT " } else { "" },
                    self.relation(r),
                    on.join(" AND ")
                );
                let name = self.name(id, None);
                self.push(id, name, sql);
            }
            Op::Sort { .. } => {
                self.refuse(
                    Code::NotTranslatable,
                    n.span,
                    "`sort` is stable (equal keys keep their input order) and its order must survive to the output; SQL guarantees neither".into(),
                    "this sort",
                );
            }
            Op::Sink(_) => {}
        }
    }

    /// Whether the input of `id` is a `group`'s rows, through `filter`/`map` stages only: rows
    /// in no order, of which flow's `limit` takes any N.
    fn groups_in_any_order(&self, id: NodeId) -> bool {
        let mut at = self.plan.inputs(id);
        while let [i] = at[..] {
            match self.plan.graph[i].op {
                Op::Group { .. } => return true,
                Op::Filter { .. } | Op::Map { .. } | Op::Fused { .. } => at = self.plan.inputs(i),
                _ => return false,
            }
        }
        false
    }

    /// Whether a `group` is upstream of `id`.
    fn after_group(&self, id: NodeId) -> bool {
        let mut stack = self.plan.inputs(id);
        let mut seen = BTreeSet::new();
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            if matches!(self.plan.graph[i].op, Op::Group { .. }) {
                return true;
            }
            stack.extend(self.plan.inputs(i));
        }
        false
    }

    /// The CTEs a sink of `input` needs, in dependency order.
    fn ctes_of(&self, input: NodeId) -> Vec<String> {
        let mut needed = BTreeSet::new();
        let mut stack = vec![input];
        while let Some(i) = stack.pop() {
            if needed.insert(i) {
                stack.extend(self.plan.inputs(i));
            }
        }
        self.ctes
            .iter()
            .filter(|c| needed.contains(&c.node))
            .map(|c| format!("{} AS ({})", c.name, c.sql))
            .collect()
    }

    /// Whether a `postgres` source or sink can run in place: this dialect reads tables, and
    /// the connector's server is the one the job runs on. Refused (at `span`) otherwise.
    fn in_place(&mut self, options: &Options, span: Span, label: &str) -> bool {
        let why = if !self.d.reads_tables() {
            Some(format!(
                "a PostgreSQL table is not read or loaded by {} SQL",
                self.d.name()
            ))
        } else if let Some(server) = &self.server {
            let resolve = crate::connectors::postgres::client::resolve;
            let url = opt_str(options, "url").unwrap_or_default();
            match (resolve(server), resolve(url)) {
                (Ok(a), Ok(b)) if a == b => None,
                (_, Err(e)) => Some(e),
                _ => Some(format!(
                    "{label} is on another server ({}) than the one the job runs on",
                    crate::job::redact_url(url)
                )),
            }
        } else {
            None
        };
        match why {
            None => true,
            Some(msg) => {
                self.refuse(Code::NotTranslatable, span, msg, label);
                false
            }
        }
    }

    /// The relation of a `postgres` source read in place: its produced columns cast to the
    /// dialect's types, from its table or query.
    fn table_source(&mut self, spec: &crate::plan::ir::SourceSpec, span: Span) -> Option<String> {
        if !self.in_place(&spec.options, span, "this source") {
            return None;
        }
        let mut cols = Vec::new();
        for f in spec
            .columns
            .iter()
            .filter_map(|&i| spec.schema.fields.get(i))
        {
            let c = self.d.ident(&f.name);
            let Some(t) = self.d.type_name(f.ty.scalar) else {
                let msg = format!("the {} column `{}` is not translated", f.ty, f.name);
                self.refuse(Code::NotTranslatable, span, msg, "this source");
                return None;
            };
            cols.push(format!("CAST({c} AS {t}) AS {c}"));
        }
        let from = match opt_str(&spec.options, "table") {
            Some(t) => match table_ref(t, self.d) {
                Ok(t) => t,
                Err(e) => {
                    self.refuse(Code::NotTranslatable, span, e, "this source");
                    return None;
                }
            },
            None => format!(
                "({}) AS flow_query",
                crate::connectors::postgres::describe::bare_query(
                    opt_str(&spec.options, "query").unwrap_or_default()
                )
            ),
        };
        let alias = self.d.ident(&format!("flow_src_{}", spec.name));
        Some(format!(
            "(SELECT {} FROM {from}) AS {alias}",
            cols.join(", ")
        ))
    }

    /// A `postgres` sink loaded in place: `CREATE TABLE` or `TRUNCATE` as its `write:` says,
    /// then `INSERT … SELECT`.
    fn table_sink(&mut self, id: NodeId, spec: &crate::plan::ir::SinkSpec, input: NodeId) {
        let n = &self.plan.graph[id];
        if !self.in_place(&spec.options, n.span, "this sink") {
            return;
        }
        let name = opt_str(&spec.options, "table").unwrap_or_default();
        let table = match table_ref(name, self.d) {
            Ok(t) => t,
            Err(e) => return self.refuse(Code::NotTranslatable, n.span, e, "this sink"),
        };
        let mut cols = Vec::new();
        let mut defs = Vec::new();
        for f in &n.row.fields {
            let c = self.d.ident(&f.name);
            let Some(t) = self.d.type_name(f.ty.scalar) else {
                let msg = format!("the {} column `{}` is not translated", f.ty, f.name);
                return self.refuse(Code::NotTranslatable, n.span, msg, "this sink");
            };
            defs.push(format!(
                "{c} {t}{}",
                if f.ty.nullable { "" } else { " NOT NULL" }
            ));
            cols.push(c);
        }
        let setup = match opt_str(&spec.options, "write") {
            Some("create") => Some(format!("CREATE TABLE {table} ({})", defs.join(", "))),
            Some("replace") => Some(format!("TRUNCATE {table}")),
            _ => None,
        };
        if let Some(sql) = setup {
            self.statements.push(Statement {
                kind: StatementKind::Setup,
                sql,
            });
        }
        let cols = cols.join(", ");
        let sql = format!(
            "INSERT INTO {table} ({cols}) WITH {} SELECT {cols} FROM {}",
            self.ctes_of(input).join(", "),
            self.relation(input)
        );
        self.statements.push(Statement {
            kind: StatementKind::Insert {
                origin: spec.origin.clone(),
                table: format!("table {name}"),
            },
            sql,
        });
    }

    fn sink(&mut self, id: NodeId) {
        let plan = self.plan;
        let n = &plan.graph[id];
        let Op::Sink(spec) = &n.op else { return };
        let Some(&input) = plan.inputs(id).first() else {
            return;
        };
        if spec.connector == "postgres" {
            return self.table_sink(id, spec, input);
        }
        let Some(format) = self.format(&spec.connector, &spec.options, n.span, "this sink") else {
            return;
        };
        let ctes = self.ctes_of(input);
        // JSON has no NaN or infinity: flow's JSON lines writer writes them as null.
        let cols: Vec<String> = n
            .row
            .fields
            .iter()
            .map(|f| {
                let c = self.d.ident(&f.name);
                if format == Format::JsonLines && f.ty.scalar == Scalar::Float {
                    format!(
                        "CASE WHEN {} OR {} THEN NULL ELSE {c} END AS {c}",
                        self.d.is_nan(&c),
                        self.d.is_inf(&c)
                    )
                } else if format == Format::JsonLines {
                    c
                } else {
                    let o = self.d.output_column(&c, f.ty.scalar);
                    if o == c { c } else { format!("{o} AS {c}") }
                }
            })
            .collect();
        let cols = cols.join(", ");
        let query = format!(
            "WITH {} SELECT {cols} FROM {}",
            ctes.join(", "),
            self.relation(input)
        );
        match self.d.write(&query, spec.path.as_deref(), format) {
            Ok(sql) => self.statements.push(Statement {
                kind: StatementKind::Sink {
                    origin: spec.origin.clone(),
                    path: spec.path.clone(),
                    format,
                    query,
                    columns: n.row.fields.iter().map(|f| f.name.clone()).collect(),
                },
                sql,
            }),
            Err(why) => self.refuse(Code::NotTranslatable, n.span, why, "this sink"),
        }
    }
}
