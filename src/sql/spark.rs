//! Spark SQL (Spark 3.5 / 4, checked on the `pyspark` 4 distribution): the dialect. ANSI mode is
//! switched on in the prelude (`spark.sql.ansi.enabled`: bigint `+ - *`, `abs`, negation, `sum`
//! and casts raise on overflow instead of wrapping or giving NULL); division and remainder by
//! zero are guarded like the other dialects (so a stop names the expression); errors through
//! `raise_error`. Inputs are temporary views `USING csv` with the declared schema (`FAILFAST`:
//! a malformed row fails the job, never becomes NULL); outputs `INSERT OVERWRITE DIRECTORY …
//! USING csv|json` (a directory of part files, without header: `spark_run` writes flow's header
//! and assembles the sink's file). Where Spark computes something else, an override below says
//! what and how: `floor`/`ceil` return BIGINT, `round` loses the sign of -0.0, `chr` is
//! ASCII-only, `$` in a Java regex matches before a final newline, `CAST` of a double already
//! truncates, no `isinf`/`signbit`/numeric `trunc`.

use super::dialect::{Dialect, Format, by_zero, csv_delimiter};
use crate::types::Scalar;

/// Spark SQL.
pub struct Spark;

/// 2^52: every float at least this large (in magnitude) is an integer.
const INTEGRAL: &str = "CAST('4503599627370496.0' AS DOUBLE)";

impl Spark {
    /// `x`, unchanged when it is NaN, ±0, ±inf or already integral (|x| ≥ 2^52); else `other`.
    fn integral_or(&self, x: &str, other: &str) -> String {
        format!("CASE WHEN isnan({x}) OR {x} = 0 OR abs({x}) >= {INTEGRAL} THEN {x} {other} END")
    }

    fn options(&self, opts: &[(&str, String)]) -> String {
        let items: Vec<String> = opts
            .iter()
            .map(|(k, v)| format!("{k} {}", self.string(v)))
            .collect();
        format!("OPTIONS ({})", items.join(", "))
    }
}

impl Dialect for Spark {
    fn name(&self) -> &'static str {
        "spark"
    }
    fn ident(&self, name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }
    /// Spark's string literals take backslash escapes: `\` and `'` are escaped with one.
    fn string(&self, s: &str) -> String {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
    fn type_name(&self, s: Scalar) -> Option<&'static str> {
        match s {
            Scalar::Int => Some("BIGINT"),
            Scalar::Float => Some("DOUBLE"),
            Scalar::Bool => Some("BOOLEAN"),
            Scalar::Str => Some("STRING"),
            Scalar::Timestamp | Scalar::Null => None,
        }
    }
    fn raise(&self, msg: &str, ty: Scalar) -> String {
        let t = self.type_name(ty).unwrap_or("STRING");
        format!(
            "CAST(raise_error({}) AS {t})",
            self.string(&format!("flow: {msg}"))
        )
    }
    fn prelude(&self) -> Vec<String> {
        vec!["SET spark.sql.ansi.enabled = true".into()]
    }
    fn int_div(&self, a: &str, b: &str, at: &str) -> String {
        // `div` truncates toward zero; MIN div -1 raises under ANSI.
        by_zero(self, &format!("{a} div {b}"), b, Scalar::Int, at)
    }
    fn float_rem(&self, a: &str, b: &str, at: &str) -> Option<String> {
        // Java's `%` on doubles is C's fmod (the sign of the dividend).
        Some(by_zero(self, &format!("{a} % {b}"), b, Scalar::Float, at))
    }
    fn is_inf(&self, x: &str) -> String {
        // Spark orders NaN above +inf, but NaN is not equal to ±inf.
        format!("(abs({x}) = CAST('Infinity' AS DOUBLE))")
    }
    fn signbit(&self, x: &str) -> String {
        format!("(CAST({x} AS STRING) LIKE '-%')")
    }
    fn char_len(&self, s: &str) -> String {
        format!("char_length({s})")
    }
    fn byte_len(&self, s: &str) -> String {
        format!("octet_length({s})")
    }
    fn round(&self, x: &str) -> String {
        // `round(double)` rounds the shortest decimal text half up, which for a double is
        // exactly half away from zero; it gives 0.0 where flow gives -0.0 (-0.5 < x < 0).
        self.integral_or(
            x,
            &format!(
                "WHEN {x} < 0 AND {x} > CAST('-0.5' AS DOUBLE) THEN CAST('-0.0' AS DOUBLE) ELSE round({x})"
            ),
        )
    }
    fn floor(&self, x: &str) -> String {
        // Spark's floor of a double is a BIGINT (it overflows past 2^63).
        self.integral_or(x, &format!("ELSE CAST(floor({x}) AS DOUBLE)"))
    }
    fn ceil(&self, x: &str) -> String {
        self.integral_or(
            x,
            &format!(
                "WHEN {x} < 0 AND {x} > CAST('-1.0' AS DOUBLE) THEN CAST('-0.0' AS DOUBLE) ELSE CAST(ceil({x}) AS DOUBLE)"
            ),
        )
    }
    fn float_to_int(&self, x: &str) -> String {
        // A cast truncates toward zero; under ANSI NaN and out of range raise.
        format!("CAST({x} AS BIGINT)")
    }
    fn starts_with(&self, s: &str, t: &str) -> String {
        format!("startswith({s}, {t})")
    }
    fn ends_with(&self, s: &str, t: &str) -> String {
        format!("endswith({s}, {t})")
    }
    fn substr(&self, s: &str, start1: &str, count: &str) -> String {
        // substr takes int positions; past the longest string (2 GB) they mean "to the end".
        let int = |x: &str| format!("CAST(LEAST({x}, 2147483647) AS INT)");
        format!("substr({s}, {}, {})", int(start1), int(count))
    }
    fn trim_chars(&self, s: &str, chars: &str) -> String {
        format!("btrim({s}, {chars})")
    }
    fn chr(&self, n: u32) -> String {
        // `chr` is ASCII only (n mod 256); a `\u` escape in a literal is any character.
        format!("'\\u{n:04X}'")
    }
    fn full_match(&self, s: &str, pattern: &str) -> String {
        // Java regex: `$` also matches before a final line break; `\z` only at the end.
        format!("({s} RLIKE concat('^(?:', {pattern}, ')\\\\z'))")
    }
    fn partial_match(&self, s: &str, pattern: &str) -> String {
        format!("({s} RLIKE {pattern})")
    }
    fn output_column(&self, c: &str, ty: Scalar) -> String {
        match ty {
            // Spark writes `Infinity` where flow writes `inf`.
            Scalar::Float => format!(
                "CASE WHEN {c} = CAST('Infinity' AS DOUBLE) THEN 'inf' \
                 WHEN {c} = CAST('-Infinity' AS DOUBLE) THEN '-inf' ELSE CAST({c} AS STRING) END"
            ),
            _ => c.to_string(),
        }
    }
    fn load(
        &self,
        table: &str,
        path: &str,
        format: Format,
        columns: &[(String, String)],
    ) -> Vec<String> {
        let cols: Vec<String> = columns
            .iter()
            .map(|(n, t)| format!("{} {t}", self.ident(n)))
            .collect();
        let Format::Csv { header, delimiter } = format else {
            return Vec::new(); // refused before (see `source_relation`)
        };
        vec![format!(
            "CREATE TEMPORARY VIEW {table} ({}) USING csv {}",
            cols.join(", "),
            self.options(&[
                ("path", path.to_string()),
                ("header", header.to_string()),
                ("sep", csv_delimiter(delimiter)),
                ("quote", "\"".into()),
                ("escape", "\"".into()),
                ("multiLine", "true".into()),
                ("mode", "FAILFAST".into()),
                ("nanValue", "NaN".into()),
                ("positiveInf", "inf".into()),
                ("negativeInf", "-inf".into()),
            ])
        )]
    }
    fn write(&self, query: &str, path: Option<&str>, format: Format) -> Result<String, String> {
        let Some(dir) = path else {
            // Standard output: the rows as the CLI prints them (`spark_run` writes them to a
            // directory and copies the file to standard output).
            return Ok(query.to_string());
        };
        let (using, opts) = match format {
            Format::Csv { delimiter, .. } => (
                "csv",
                vec![
                    ("header", "false".to_string()),
                    ("sep", csv_delimiter(delimiter)),
                    ("quote", "\"".into()),
                    ("escape", "\"".into()),
                    ("nullValue", String::new()),
                    ("emptyValue", String::new()),
                    ("ignoreLeadingWhiteSpace", "false".into()),
                    ("ignoreTrailingWhiteSpace", "false".into()),
                ],
            ),
            Format::JsonLines => ("json", vec![("ignoreNullFields", "false".to_string())]),
        };
        Ok(format!(
            "INSERT OVERWRITE DIRECTORY {} USING {using} {} SELECT /*+ COALESCE(1) */ * FROM ({query}) AS `flow_q`",
            self.string(dir),
            self.options(&opts)
        ))
    }
}
