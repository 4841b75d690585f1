//! What differs between SQL engines, in one trait with generic defaults; each dialect overrides
//! only what it does differently (the design of PRQL's `sql/dialect.rs`, our own code).
//!
//! Every method that takes SQL text takes already-translated operands: the caller quotes
//! identifiers and escapes literals, so no method here sees user text unescaped.

use crate::types::Scalar;

/// A file format of a source or sink, as the engines name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv { header: bool, delimiter: u8 },
    JsonLines,
}

pub trait Dialect {
    /// `duckdb`, `postgres`, `spark`.
    fn name(&self) -> &'static str;

    /// Reads and loads the `postgres` connector's tables in place (the job runs in that
    /// database): only the dialect whose server they are on.
    fn reads_tables(&self) -> bool {
        false
    }

    /// A quoted identifier: always quoted, so keywords and odd names are safe.
    fn ident(&self, name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    /// A string literal (standard SQL: `'` doubled, everything else verbatim).
    fn string(&self, s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    /// The engine's type for a flow scalar (`None`: no faithful type).
    fn type_name(&self, s: Scalar) -> Option<&'static str> {
        match s {
            Scalar::Int => Some("BIGINT"),
            Scalar::Float => Some("DOUBLE"),
            Scalar::Bool => Some("BOOLEAN"),
            Scalar::Str => Some("VARCHAR"),
            Scalar::Timestamp | Scalar::Null => None,
        }
    }

    fn int_lit(&self, i: i64) -> String {
        format!(
            "CAST({i} AS {})",
            self.type_name(Scalar::Int).unwrap_or("BIGINT")
        )
    }

    fn float_lit(&self, x: f64) -> String {
        let text = if x.is_nan() {
            "NaN".to_string()
        } else if x.is_infinite() {
            if x > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
        } else {
            format!("{x:?}")
        };
        // From a string: parsed by the engine as a correctly rounded double, never a DECIMAL.
        format!(
            "CAST({} AS {})",
            self.string(&text),
            self.type_name(Scalar::Float).unwrap_or("DOUBLE")
        )
    }

    /// An expression of type `ty` that stops the job with `msg` when evaluated (and only then).
    fn raise(&self, msg: &str, ty: Scalar) -> String;

    /// Statements run before the job's own (settings, helper functions).
    fn prelude(&self) -> Vec<String> {
        Vec::new()
    }

    /// Integer division truncating toward zero; by zero and `MIN / -1` must stop the job.
    /// `at` (the expression's place, see `sql::at`) ends the message of a stop.
    fn int_div(&self, a: &str, b: &str, at: &str) -> String;
    /// Integer remainder (sign of the dividend); by zero must stop the job.
    fn int_rem(&self, a: &str, b: &str, at: &str) -> String {
        by_zero(self, &format!("{a} % {b}"), b, Scalar::Int, at)
    }
    /// Float division; by zero (either sign) must stop the job.
    fn float_div(&self, a: &str, b: &str, at: &str) -> Option<String> {
        Some(by_zero(self, &format!("{a} / {b}"), b, Scalar::Float, at))
    }
    /// Float remainder (C `fmod`); by zero must stop the job. `None`: not expressible.
    fn float_rem(&self, a: &str, b: &str, at: &str) -> Option<String>;

    fn is_nan(&self, x: &str) -> String {
        format!("isnan({x})")
    }
    fn is_inf(&self, x: &str) -> String {
        format!("isinf({x})")
    }
    /// Whether the sign bit of a float is set (to tell -0.0 from 0.0).
    fn signbit(&self, x: &str) -> String {
        format!("signbit({x})")
    }
    /// Length in characters (Unicode scalar values).
    fn char_len(&self, s: &str) -> String {
        format!("length({s})")
    }
    /// Length in bytes of the UTF-8 text.
    fn byte_len(&self, s: &str) -> String {
        format!("strlen({s})")
    }
    /// Round half away from zero.
    fn round(&self, x: &str) -> String {
        format!("round({x})")
    }
    /// The float `floor` / `ceil` of a float (a float result, as flow's).
    fn floor(&self, x: &str) -> String {
        format!("floor({x})")
    }
    fn ceil(&self, x: &str) -> String {
        format!("ceil({x})")
    }
    /// A float truncated toward zero as an int; NaN and out of range must stop the job.
    fn float_to_int(&self, x: &str) -> String {
        // CAST rounds; flow truncates. NaN and out of range raise in the engine.
        format!(
            "CAST(trunc({x}) AS {})",
            self.type_name(Scalar::Int).unwrap_or("BIGINT")
        )
    }
    fn contains(&self, s: &str, t: &str) -> String {
        format!("contains({s}, {t})")
    }
    fn starts_with(&self, s: &str, t: &str) -> String {
        format!("starts_with({s}, {t})")
    }
    fn ends_with(&self, s: &str, t: &str) -> String {
        format!("ends_with({s}, {t})")
    }
    /// Characters `start..start+count` (1-based start, as SQL `substr`).
    fn substr(&self, s: &str, start1: &str, count: &str) -> String {
        format!("substr({s}, {start1}, {count})")
    }
    /// `s` without leading and trailing characters of `chars`.
    fn trim_chars(&self, s: &str, chars: &str) -> String {
        format!("trim({s}, {chars})")
    }
    /// The one-character string of code point `n`.
    fn chr(&self, n: u32) -> String {
        format!("chr({n})")
    }
    /// Whether the whole of `s` matches the regular expression `pattern` (a quoted literal).
    fn full_match(&self, s: &str, pattern: &str) -> String {
        format!("regexp_full_match({s}, {pattern})")
    }
    /// Whether some part of `s` matches `pattern`.
    fn partial_match(&self, s: &str, pattern: &str) -> String {
        format!("regexp_matches({s}, {pattern})")
    }
    /// `s` as `ty`, or NULL when it is not valid text for `ty` (never an error).
    fn try_cast(&self, s: &str, ty: Scalar) -> Option<String> {
        Some(format!("TRY_CAST({s} AS {})", self.type_name(ty)?))
    }
    /// The collation clause that makes string comparison bytewise (flow's order).
    fn bytewise(&self) -> &'static str {
        ""
    }
    /// Whether `LIMIT` without `ORDER BY` keeps the first rows in input order (with the
    /// `prelude` applied) — flow's `limit` semantics.
    fn limit_in_input_order(&self) -> bool {
        false
    }

    /// A relation reading a file source with these columns (all of the file's columns in
    /// order, with their engine types). `None`: the dialect reads inputs through a load
    /// statement into a table instead (see `load`).
    fn read_file(
        &self,
        _path: &str,
        _format: Format,
        _columns: &[(String, String)],
    ) -> Option<String> {
        None
    }
    /// The statements that load the file(s) `path` into the table `table` (when `read_file`
    /// is `None`).
    fn load(
        &self,
        table: &str,
        path: &str,
        format: Format,
        columns: &[(String, String)],
    ) -> Vec<String>;

    /// A sink column `c` of type `ty` as text files get it (the engine's own spelling of
    /// booleans, infinities… when it differs from flow's).
    fn output_column(&self, c: &str, _ty: Scalar) -> String {
        c.to_string()
    }

    /// The statement writing `query`'s rows to `path` (`None`: standard output) in `format`.
    fn write(&self, query: &str, path: Option<&str>, format: Format) -> Result<String, String>;
}

/// `op`, or a stop "division by zero" (ending in `at`) when the divisor `b` is zero.
pub(super) fn by_zero<D: Dialect + ?Sized>(
    d: &D,
    op: &str,
    b: &str,
    ty: Scalar,
    at: &str,
) -> String {
    format!(
        "CASE WHEN {b} = 0 THEN {} ELSE {op} END",
        d.raise(&format!("division by zero{at}"), ty)
    )
}

pub(super) fn csv_delimiter(d: u8) -> String {
    (d as char).to_string()
}

/// DuckDB: guards where it returns NULL or NaN but flow fails (`//` and `/` by zero), errors
/// through its `error()` function, files through `read_csv` / `COPY … TO`.
pub struct DuckDb;

impl Dialect for DuckDb {
    fn name(&self) -> &'static str {
        "duckdb"
    }
    fn raise(&self, msg: &str, ty: Scalar) -> String {
        let t = self.type_name(ty).unwrap_or("VARCHAR");
        format!(
            "CAST(error({}) AS {t})",
            self.string(&format!("flow: {msg}"))
        )
    }
    fn prelude(&self) -> Vec<String> {
        // The default, said explicitly: `limit` relies on it.
        vec!["SET preserve_insertion_order = true".into()]
    }
    fn int_div(&self, a: &str, b: &str, at: &str) -> String {
        // `//` returns NULL for a zero divisor; MIN // -1 raises by itself.
        by_zero(self, &format!("{a} // {b}"), b, Scalar::Int, at)
    }
    fn float_rem(&self, a: &str, b: &str, at: &str) -> Option<String> {
        Some(by_zero(
            self,
            &format!("fmod({a}, {b})"),
            b,
            Scalar::Float,
            at,
        ))
    }
    fn limit_in_input_order(&self) -> bool {
        true
    }
    fn read_file(
        &self,
        path: &str,
        format: Format,
        columns: &[(String, String)],
    ) -> Option<String> {
        let cols: Vec<String> = columns
            .iter()
            .map(|(n, t)| format!("{}: {}", self.string(n), self.string(t)))
            .collect();
        let cols = format!("{{{}}}", cols.join(", "));
        Some(match format {
            Format::Csv { header, delimiter } => format!(
                "read_csv({}, header = {header}, delim = {}, quote = '\"', escape = '\"', auto_detect = false, columns = {cols})",
                self.string(path),
                self.string(&csv_delimiter(delimiter))
            ),
            Format::JsonLines => format!(
                "read_json({}, format = 'newline_delimited', columns = {cols})",
                self.string(path)
            ),
        })
    }
    fn load(
        &self,
        _table: &str,
        _path: &str,
        _format: Format,
        _columns: &[(String, String)],
    ) -> Vec<String> {
        Vec::new()
    }
    fn write(&self, query: &str, path: Option<&str>, format: Format) -> Result<String, String> {
        let target = self.string(path.unwrap_or("/dev/stdout"));
        let opts = match format {
            Format::Csv { header, delimiter } => format!(
                "FORMAT csv, HEADER {header}, DELIMITER {}",
                self.string(&csv_delimiter(delimiter))
            ),
            Format::JsonLines => "FORMAT json".to_string(),
        };
        Ok(format!("COPY ({query}) TO {target} ({opts})"))
    }
}

/// PostgreSQL: division by zero and bigint overflow raise by themselves; errors and the
/// "parse or null" casts through temporary PL/pgSQL functions (in the session's `pg_temp`
/// schema; works on PostgreSQL 12 and later); inputs loaded with `COPY … FROM STDIN` into
/// temporary tables, outputs with `COPY (…) TO STDOUT`, booleans and infinities spelled as flow
/// writes them.
pub struct Postgres;

impl Dialect for Postgres {
    fn reads_tables(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn type_name(&self, s: Scalar) -> Option<&'static str> {
        match s {
            Scalar::Int => Some("bigint"),
            Scalar::Float => Some("double precision"),
            Scalar::Bool => Some("boolean"),
            Scalar::Str => Some("text"),
            Scalar::Timestamp | Scalar::Null => None,
        }
    }
    fn raise(&self, msg: &str, ty: Scalar) -> String {
        let t = self.type_name(ty).unwrap_or("text");
        format!(
            "pg_temp.flow_error({}, NULL::{t})",
            self.string(&format!("flow: {msg}"))
        )
    }
    fn prelude(&self) -> Vec<String> {
        let mut v = vec![
            "CREATE FUNCTION pg_temp.flow_error(msg text, t anyelement) RETURNS anyelement \
             LANGUAGE plpgsql VOLATILE AS $$ BEGIN RAISE EXCEPTION '%', msg; END $$"
                .to_string(),
        ];
        for (f, t) in [
            ("flow_try_bigint", "bigint"),
            ("flow_try_float", "double precision"),
        ] {
            v.push(format!(
                "CREATE FUNCTION pg_temp.{f}(s text) RETURNS {t} LANGUAGE plpgsql IMMUTABLE AS \
                 $$ BEGIN RETURN CAST(s AS {t}); EXCEPTION WHEN data_exception THEN RETURN NULL; END $$"
            ));
        }
        v
    }
    fn int_div(&self, a: &str, b: &str, at: &str) -> String {
        // bigint `/` truncates and raises on zero and on MIN / -1 by itself; the guard names
        // the expression.
        by_zero(self, &format!("{a} / {b}"), b, Scalar::Int, at)
    }
    fn float_rem(&self, _a: &str, _b: &str, _at: &str) -> Option<String> {
        None // no exact fmod for double precision
    }
    fn is_nan(&self, x: &str) -> String {
        format!("({x} = 'NaN'::double precision)")
    }
    fn is_inf(&self, x: &str) -> String {
        format!("({x} IN ('Infinity'::double precision, '-Infinity'::double precision))")
    }
    fn signbit(&self, x: &str) -> String {
        format!("(CAST({x} AS text) LIKE '-%')")
    }
    fn char_len(&self, s: &str) -> String {
        format!("char_length({s})")
    }
    fn byte_len(&self, s: &str) -> String {
        format!("octet_length({s})")
    }
    fn round(&self, x: &str) -> String {
        // round(double precision) rounds halves to even, and a cast to numeric keeps only 15
        // digits (14570.499999999998 becomes 14570.5). The fraction x - trunc(x) is exact in
        // binary, so this is Rust's `f64::round` (NaN sorts above 0.5: NaN and ±inf stay).
        format!(
            "(CASE WHEN abs({x} - trunc({x})) >= 0.5 THEN trunc({x}) + sign({x}) ELSE trunc({x}) END)"
        )
    }
    fn contains(&self, s: &str, t: &str) -> String {
        format!("(strpos({s}, {t}) > 0)")
    }
    fn ends_with(&self, s: &str, t: &str) -> String {
        format!("(right({s}, char_length({t})) = {t})")
    }
    fn trim_chars(&self, s: &str, chars: &str) -> String {
        format!("btrim({s}, {chars})")
    }
    fn substr(&self, s: &str, start1: &str, count: &str) -> String {
        // substr takes integer positions; beyond the longest text (1 GB) they mean "to the end".
        let int = |x: &str| format!("CAST(LEAST({x}, 2147483647) AS integer)");
        format!("substr({s}, {}, {})", int(start1), int(count))
    }
    fn full_match(&self, s: &str, pattern: &str) -> String {
        format!("({s} ~ ('^(?:' || {pattern} || ')$'))")
    }
    fn partial_match(&self, s: &str, pattern: &str) -> String {
        format!("({s} ~ {pattern})")
    }
    fn try_cast(&self, s: &str, ty: Scalar) -> Option<String> {
        match ty {
            Scalar::Int => Some(format!("pg_temp.flow_try_bigint({s})")),
            Scalar::Float => Some(format!("pg_temp.flow_try_float({s})")),
            _ => None,
        }
    }
    fn output_column(&self, c: &str, ty: Scalar) -> String {
        match ty {
            Scalar::Bool => format!("CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END"),
            // flow writes `2.0` and `inf` where PostgreSQL writes `2` and `Infinity`.
            Scalar::Float => format!(
                "CASE WHEN {c} = 'Infinity'::double precision THEN 'inf' \
                 WHEN {c} = '-Infinity'::double precision THEN '-inf' \
                 WHEN CAST({c} AS text) ~ '^-?[0-9]+$' THEN CAST({c} AS text) || '.0' \
                 ELSE CAST({c} AS text) END"
            ),
            _ => c.to_string(),
        }
    }
    fn bytewise(&self) -> &'static str {
        " COLLATE \"C\""
    }
    fn load(
        &self,
        table: &str,
        _path: &str, // the client sends the file's bytes
        format: Format,
        columns: &[(String, String)],
    ) -> Vec<String> {
        let cols: Vec<String> = columns
            .iter()
            .map(|(n, t)| format!("{} {t}", self.ident(n)))
            .collect();
        let opts = match format {
            Format::Csv { header, delimiter } => format!(
                "FORMAT csv, HEADER {header}, DELIMITER {}",
                self.string(&csv_delimiter(delimiter))
            ),
            Format::JsonLines => return Vec::new(), // refused before (see `source_relation`)
        };
        vec![
            format!("CREATE TEMPORARY TABLE {table} ({})", cols.join(", ")),
            format!("COPY {table} FROM STDIN ({opts})"),
        ]
    }
    fn write(&self, query: &str, path: Option<&str>, format: Format) -> Result<String, String> {
        let _ = path; // the client writes what COPY sends to the sink's file
        match format {
            Format::Csv { header, delimiter } => Ok(format!(
                "COPY ({query}) TO STDOUT (FORMAT csv, HEADER {header}, DELIMITER {})",
                self.string(&csv_delimiter(delimiter))
            )),
            // One JSON text per row, sent verbatim: COPY's text format would escape its
            // backslashes, so CSV with quote and delimiter bytes a JSON text never contains
            // raw (JSON escapes every control character).
            Format::JsonLines => Ok(format!(
                "COPY (SELECT CAST(row_to_json(flow_row) AS text) FROM ({query}) AS flow_row) \
                 TO STDOUT (FORMAT csv, HEADER false, DELIMITER E'\\x02', QUOTE E'\\x01')"
            )),
        }
    }
}
