//! What the PostgreSQL connector says about itself (its options), and what it learns of a table
//! or query from the server's catalog at check time: columns, flow types, nullability.

use super::client::{self, error_text, redact};
use crate::catalog::{
    Argument, ConnectorInfo, DescribedColumn, Description, OptionKind, OptionSpec, Refusal,
};
use crate::connectors::opt_str;
use crate::diagnostics::Code;
use crate::job::Options;
use crate::types::{RowType, Scalar, Type, Value};
use postgres::Client;
use postgres::types::Type as PgType;

/// The sink's modes.
pub const MODES: &[&str] = &["append", "replace", "create"];

fn url_option() -> OptionSpec {
    OptionSpec::new(
        "url",
        OptionKind::Text,
        "the server: `postgres://user@host:port/database`, or `$NAME` to read it from that \
         environment variable (the first argument); the password \
         from the URL, `PGPASSWORD` or `~/.pgpass`, never printed",
    )
}

fn table_option(what: &'static str) -> OptionSpec {
    OptionSpec::new("table", OptionKind::Text, what)
}

pub fn source() -> ConnectorInfo {
    ConnectorInfo {
        name: "postgres",
        argument: Argument::Option("url"),
        reads: "a PostgreSQL table or query",
        options: vec![
            url_option(),
            table_option("the table (or view) to read, `name` or `schema.name`"),
            OptionSpec::new(
                "query",
                OptionKind::Text,
                "a SELECT to read instead of a table",
            ),
        ],
        one_of: vec![&["url"], &["table", "query"]],
        describes: true,
        doc: "reads a PostgreSQL table or query with `COPY … TO STDOUT`; its schema comes from the \
              server's catalog at check time; only the columns used are sent",
    }
}

pub fn sink() -> ConnectorInfo {
    ConnectorInfo {
        name: "postgres",
        argument: Argument::Option("url"),
        reads: "",
        options: vec![
            url_option(),
            table_option("the table to load, `name` or `schema.name`"),
            OptionSpec::new(
                "write",
                OptionKind::OneOf(MODES),
                "\"append\" (the default) to an existing table, \"replace\" its rows, or \
                 \"create\" it (it must not exist)",
            )
            .default(Value::Str("append".into())),
        ],
        one_of: vec![&["url"], &["table"]],
        describes: true,
        doc: "loads a PostgreSQL table with `COPY … FROM STDIN` in one transaction, committed \
              only when the whole job succeeds",
    }
}

/// The flow type of a PostgreSQL type, or its name when flow cannot read it.
pub fn scalar_of(t: &PgType) -> Result<Scalar, String> {
    Ok(match *t {
        PgType::INT2 | PgType::INT4 | PgType::INT8 => Scalar::Int,
        PgType::FLOAT4 | PgType::FLOAT8 | PgType::NUMERIC => Scalar::Float,
        PgType::BOOL => Scalar::Bool,
        PgType::TEXT | PgType::VARCHAR | PgType::BPCHAR | PgType::NAME => Scalar::Str,
        PgType::TIMESTAMP | PgType::TIMESTAMPTZ | PgType::DATE => Scalar::Timestamp,
        _ => return Err(t.name().to_string()),
    })
}

/// The PostgreSQL type a `create` sink gives a flow column.
pub fn sql_type(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::Int => "bigint",
        Scalar::Float => "double precision",
        Scalar::Bool => "boolean",
        Scalar::Str | Scalar::Null => "text",
        Scalar::Timestamp => "timestamptz",
    }
}

/// Whether a flow column of this type can be loaded into a column of PostgreSQL type `t`.
pub fn loads_into(scalar: Scalar, t: &PgType) -> bool {
    match scalar {
        Scalar::Null => true,
        Scalar::Int => matches!(
            *t,
            PgType::INT2
                | PgType::INT4
                | PgType::INT8
                | PgType::NUMERIC
                | PgType::FLOAT4
                | PgType::FLOAT8
        ),
        Scalar::Float => matches!(*t, PgType::FLOAT4 | PgType::FLOAT8 | PgType::NUMERIC),
        Scalar::Bool => *t == PgType::BOOL,
        Scalar::Str => matches!(
            *t,
            PgType::TEXT | PgType::VARCHAR | PgType::BPCHAR | PgType::NAME
        ),
        Scalar::Timestamp => matches!(*t, PgType::TIMESTAMP | PgType::TIMESTAMPTZ),
    }
}

/// A double-quoted identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The URL option (validated by the checker: present and a string).
pub fn url(options: &Options) -> &str {
    opt_str(options, "url").unwrap_or_default()
}

/// Connects for the checker: a failure is E0270 under the URL.
pub fn connect_checked(options: &Options) -> Result<Client, Refusal> {
    client::connect_session(url(options)).map_err(|e| {
        Refusal::new(
            Code::SourceUnreachable,
            Some("url"),
            e,
            "cannot connect to this server",
        )
        .help(
            "check the host, port, user and password (from the URL, PGPASSWORD or ~/.pgpass); \
             the server must be reachable when the script is checked",
        )
    })
}

/// One column of a table as the catalog gives it.
pub struct TableColumn {
    pub name: String,
    pub ty: Option<PgType>,
    /// `format_type`: the name shown for a type flow does not know.
    pub type_name: String,
    pub not_null: bool,
    pub has_default: bool,
}

/// A table's quoted, schema-qualified name (as the server prints its `regclass`), its kind
/// (`r` table, `p` partitioned, `v` view, …) and its columns; `Ok(None)`: no such table.
pub fn table(
    client: &mut Client,
    name: &str,
) -> Result<Option<(String, String, Vec<TableColumn>)>, String> {
    let row = client
        .query_one(
            "SELECT to_regclass($1)::oid, to_regclass($1)::text, \
             (SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1))",
            &[&name],
        )
        .map_err(|e| error_text(&e))?;
    let oid: Option<u32> = row.try_get(0).map_err(|e| error_text(&e))?;
    let Some(oid) = oid else { return Ok(None) };
    let shown: String = row
        .try_get::<_, Option<String>>(1)
        .map_err(|e| error_text(&e))?
        .unwrap_or_else(|| name.to_string());
    let kind: String = row
        .try_get::<_, Option<String>>(2)
        .map_err(|e| error_text(&e))?
        .unwrap_or_default();
    let rows = client
        .query(
            "SELECT attname::text, atttypid, format_type(atttypid, atttypmod), attnotnull, \
             atthasdef OR attidentity <> '' OR attgenerated <> '' \
             FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped \
             ORDER BY attnum",
            &[&oid],
        )
        .map_err(|e| error_text(&e))?;
    let mut cols = Vec::new();
    for r in rows {
        let get = |e: postgres::Error| error_text(&e);
        let type_oid: u32 = r.try_get(1).map_err(get)?;
        cols.push(TableColumn {
            name: r.try_get(0).map_err(get)?,
            ty: PgType::from_oid(type_oid),
            type_name: r.try_get(2).map_err(get)?,
            not_null: r.try_get(3).map_err(get)?,
            has_default: r.try_get(4).map_err(get)?,
        });
    }
    Ok(Some((shown, kind, cols)))
}

fn unknown_table(name: &str, url: &str) -> Refusal {
    Refusal::new(
        Code::UnknownTable,
        Some("table"),
        format!("no table `{name}` in {}", redact(url)),
        "no such table or view",
    )
    .help("unquoted names are folded to lower case; `schema.table` names a schema")
}

fn described_column(c: &TableColumn) -> DescribedColumn {
    DescribedColumn {
        name: c.name.clone(),
        ty: match &c.ty {
            Some(t) => scalar_of(t).map(|s| Type {
                scalar: s,
                nullable: !c.not_null,
            }),
            None => Err(c.type_name.clone()),
        }
        .map_err(|_| c.type_name.clone()),
    }
}

/// The query text without a trailing `;`, to nest it as a subquery.
pub fn bare_query(q: &str) -> &str {
    q.trim().trim_end_matches(';').trim_end()
}

/// The source's input as the server describes it.
pub fn describe(options: &Options) -> Result<Description, Refusal> {
    let mut client = connect_checked(options)?;
    let url = url(options);
    if let Some(name) = opt_str(options, "table") {
        let Some((shown, _, cols)) = table(&mut client, name).map_err(|e| {
            Refusal::new(
                Code::UnknownTable,
                Some("table"),
                format!("cannot look up table `{name}`: {e}"),
                "not a table name",
            )
        })?
        else {
            return Err(unknown_table(name, url));
        };
        return Ok(Description {
            what: format!("table `{shown}`"),
            option: "table",
            columns: cols.iter().map(described_column).collect(),
        });
    }
    let query = bare_query(opt_str(options, "query").unwrap_or_default());
    let bad = |msg: String| {
        Refusal::new(
            Code::BadQuery,
            Some("query"),
            msg,
            "the server refused this query",
        )
    };
    let st = client
        .prepare(query)
        .map_err(|e| bad(format!("the query does not prepare: {}", error_text(&e))))?;
    if st.columns().is_empty() {
        return Err(bad("the query returns no columns".into()));
    }
    let mut columns = Vec::new();
    for c in st.columns() {
        if columns.iter().any(|d: &DescribedColumn| d.name == c.name()) {
            return Err(bad(format!(
                "the query returns two columns named `{}`; name them apart with `AS`",
                c.name()
            )));
        }
        // A column taken straight from a table keeps its NOT NULL; anything computed may be
        // null.
        let not_null = match (c.table_oid(), c.column_id()) {
            (Some(t), Some(a)) if t != 0 && a > 0 => client
                .query_opt(
                    "SELECT attnotnull FROM pg_attribute WHERE attrelid = $1 AND attnum = $2",
                    &[&t, &a],
                )
                .ok()
                .flatten()
                .and_then(|r| r.try_get::<_, bool>(0).ok())
                .unwrap_or(false),
            _ => false,
        };
        columns.push(DescribedColumn {
            name: c.name().to_string(),
            ty: scalar_of(c.type_()).map(|s| Type {
                scalar: s,
                nullable: !not_null,
            }),
        });
    }
    Ok(Description {
        what: "the query".into(),
        option: "query",
        columns,
    })
}

/// Whether the sink's table takes `row`-typed rows in its mode: an existing table for `append`
/// and `replace` whose columns hold flow's (and that needs no other), none for `create`.
/// `Err`: the refusal, for the checker or (as text) for the run.
pub fn accept(client: &mut Client, options: &Options, row: &RowType) -> Result<String, Refusal> {
    let url = url(options);
    let name = opt_str(options, "table").unwrap_or_default();
    let mode = opt_str(options, "write").unwrap_or("append");
    let found = table(client, name).map_err(|e| {
        Refusal::new(
            Code::UnknownTable,
            Some("table"),
            format!("cannot look up table `{name}`: {e}"),
            "not a table name",
        )
    })?;
    let Some((shown, kind, cols)) = found else {
        if mode == "create" {
            return Ok(name.to_string());
        }
        return Err(unknown_table(name, url).help(
            "the table must exist for `write: \"append\"` and `\"replace\"`; `write: \"create\"` creates it",
        ));
    };
    if mode == "create" {
        return Err(Refusal::new(
            Code::UnknownTable,
            Some("table"),
            format!("table `{shown}` already exists (write: \"create\")"),
            "exists already",
        )
        .help("use `write: \"append\"` or `write: \"replace\"` to load an existing table"));
    }
    if kind != "r" && kind != "p" {
        return Err(Refusal::new(
            Code::UnknownTable,
            Some("table"),
            format!(
                "`{shown}` is not a table (a view or another relation), so it cannot be loaded"
            ),
            "not a table",
        ));
    }
    let mismatch = |msg: String, label: String| {
        Refusal::new(Code::DescribedSchemaMismatch, Some("table"), msg, label)
    };
    for f in &row.fields {
        let Some(c) = cols.iter().find(|c| c.name == f.name) else {
            let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
            return Err(mismatch(
                format!("table `{shown}` has no column `{}`", f.name),
                format!("no column `{}`", f.name),
            )
            .help(format!(
                "its columns are: {}; rename the field with `map` before the sink",
                names.join(", ")
            )));
        };
        if !c.ty.as_ref().is_some_and(|t| loads_into(f.ty.scalar, t)) {
            return Err(mismatch(
                format!(
                    "column `{}` of table `{shown}` is {}, which cannot hold flow's {}",
                    f.name, c.type_name, f.ty
                ),
                format!("`{}` is {}", f.name, c.type_name),
            ));
        }
        if c.not_null && f.ty.nullable {
            return Err(mismatch(
                format!(
                    "column `{}` of table `{shown}` is NOT NULL, but the rows' `{}` is {} and may \
                     be null",
                    f.name, f.name, f.ty
                ),
                format!("`{}` is NOT NULL", f.name),
            )
            .help(format!(
                "give a default before the sink: `map {{ *, {}: {} ?? … }}`",
                f.name, f.name
            )));
        }
    }
    if let Some(c) = cols
        .iter()
        .find(|c| c.not_null && !c.has_default && row.get(&c.name).is_none())
    {
        return Err(mismatch(
            format!(
                "table `{shown}` requires column `{}` (NOT NULL, no default), which the rows do \
                 not have",
                c.name
            ),
            format!("`{}` is required", c.name),
        ));
    }
    Ok(shown)
}
