//! The one registry of error codes. Each code has a title and a long explanation
//! (`flow explain-error CODE`). A test checks that codes are unique and well-formed.

macro_rules! codes {
    ($($variant:ident = $code:literal, $title:literal, $explanation:literal;)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant),* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }
            pub fn title(self) -> &'static str {
                match self { $(Code::$variant => $title),* }
            }
            pub fn explanation(self) -> &'static str {
                match self { $(Code::$variant => $explanation),* }
            }
            pub fn parse(s: &str) -> Option<Code> {
                Code::ALL.iter().copied().find(|c| c.as_str().eq_ignore_ascii_case(s))
            }
        }
    };
}

codes! {
    UnexpectedChar = "E0001", "unexpected character",
        "The lexer found a character that cannot start any token, such as `;`, `'`, `$` or a lone `&`.\n\nExample:\n    filter fare > 0 & tip > 0     # `&` is not an operator\nFix:\n    filter fare > 0 && tip > 0";
    UnterminatedString = "E0002", "unterminated string",
        "A string literal has no closing `\"` before the end of its line. Strings cannot span lines; write `\\n` for a line break.\n\nExample:\n    source s = csv(\"data/x.csv, header: true)\nFix:\n    source s = csv(\"data/x.csv\", header: true)";
    UnexpectedToken = "E0003", "unexpected token",
        "The parser found a token where the grammar does not allow it. The message lists what it expected. The parser then skips to the next statement and goes on, so later errors are reported too.\n\nExample:\n    trips | filter | sink csv(\"out.csv\")   # `filter` needs a condition";
    UnexpectedEof = "E0004", "unexpected end of file",
        "The file ended in the middle of a statement, e.g. after `|` or inside an unclosed `{` or `(`.";
    NumberOutOfRange = "E0005", "number literal out of range",
        "An integer literal does not fit in 64 bits (-9223372036854775808 to 9223372036854775807), or a float literal is infinite.";
    InvalidEscape = "E0006", "invalid escape in string",
        "Inside a string, a backslash starts an escape. The known escapes are \\n, \\t, \\r, \\\", \\\\ and \\0.\n\nExample:\n    filter path == \"C:\\data\"    # `\\d` is not an escape\nFix:\n    filter path == \"C:\\\\data\"";
    UnknownName = "E0010", "unknown stream name",
        "A pipeline starts with (or a `union` names) a name that is not a source or a `let` of this file.\n\nSources and lets are file-local and must be defined before they are used.";
    UnknownField = "E0011", "unknown field",
        "An expression, a `map` shorthand or a `group` key names a column that the rows at this point do not have. Remember that `map` defines exactly the output columns: columns not listed (or kept with `*`) are gone after it.\n\nExample:\n    trips | map { id, fare } | filter tip > 0.0   # `tip` was dropped by the map\nFix:\n    trips | map { id, fare, tip } | filter tip ?? 0.0 > 0.0";
    UnknownFunction = "E0012", "unknown function",
        "A call names a function that is neither a builtin, a `fn` of this file, nor a function of a module brought in with `use`. Module functions are called with the module name: `use std.text` then `text.slug(name)`.";
    UnknownSchema = "E0013", "unknown schema",
        "A `source name: Schema = ...` declaration names a schema that is not declared in this file.";
    UnknownType = "E0014", "unknown type",
        "A type name is not one of `int`, `float`, `bool`, `str`, `timestamp` (add `?` for nullable: `float?`).";
    UnknownModule = "E0015", "unknown module",
        "A `use` names a module that is not in the standard library. The modules are listed by `flow check --list-modules`; stdlib modules are written `std.NAME`.";
    DuplicateName = "E0016", "name defined twice",
        "Two sources, lets, schemas or functions of one file have the same name, or a function has two parameters with the same name.";
    DuplicateField = "E0017", "field listed twice",
        "A schema declares the same column twice, or a `map`/`group` would produce two output columns with the same name.";
    TypeMismatch = "E0020", "type mismatch",
        "A value has a different type from the one required here: a function argument, a declared return type, or an option's value.\n\nints widen to floats automatically; other conversions are explicit: `to_int`, `to_float`, `to_str`, `parse_int`, `parse_float`.";
    OperatorTypes = "E0021", "operator applied to wrong types",
        "An operator was applied to values it does not accept, such as `\"a\" + 1` (use `concat` and `to_str`) or `!5`.\n\nArithmetic takes int or float; comparisons take two values of the same type; `&&`, `||` and `!` take bool.";
    NullableValue = "E0022", "nullable value used as non-null",
        "A value of type `T?` may be null, but it is used where a `T` is required. Decide what null means here:\n  - a default:          tip ?? 0.0\n  - a test:             if tip != null { tip * 2.0 } else { 0.0 }\n  - drop such rows:     filter tip != null  (tip is non-null after this)\n  - a null-aware call:  is_null(tip)";
    FilterNotBool = "E0023", "filter condition is not bool",
        "`filter` keeps the rows for which its condition is true, so the condition must be a `bool` (a nullable `bool?` must be defaulted: `flag ?? false`).";
    WrongArgCount = "E0024", "wrong number of arguments",
        "A function was called with more or fewer arguments than it takes. `flow check --list-functions` shows every builtin's signature.";
    BranchMismatch = "E0025", "if branches have different types",
        "Both branches of `if c { a } else { b }` must have the same type (an int branch widens to float if the other is float; a `null` branch makes the result nullable).";
    NullType = "E0026", "cannot infer the type of null",
        "A bare `null` has no type of its own. Give it one from context, e.g. `if c { x } else { null }` (type of x, nullable), or `parse_int(\"\")` for an `int?` null.";
    RecursiveFunction = "E0027", "recursive function",
        "flow functions are inlined into the row kernels and cannot call themselves, directly or through other functions.";
    UnknownConnector = "E0030", "unknown connector",
        "A source or sink names a connector that is not registered. Sources: csv, jsonl, stdin. Sinks: csv, jsonl, stdout.";
    InvalidOption = "E0031", "unknown or invalid option",
        "A connector, mode or hint option is unknown, or its value has the wrong type or is out of range.\n\nExamples: `header: 5` (needs true/false), `delimiter: \"ab\"` (one character), `on_error: maybe` (fail, skip or dead_letter(\"path\")), `max_errors: -1`.";
    MissingPath = "E0032", "missing path",
        "File connectors need the path as first argument: `csv(\"data/trips.csv\", header: true)`.";
    InputNotFound = "E0033", "input file not found",
        "A source's file (or every file of a glob) does not exist. Paths are relative to the directory of the .flow file. Declare a schema if the file is created later by another job… it must still exist when the job runs.";
    SchemaInference = "E0034", "cannot infer schema",
        "A source without a declared schema takes its columns from the file at check time (header and a sample of rows). That failed: the file is empty, unreadable, has no header, or holds no JSON objects. Declare the schema: `source s: MySchema = ...`.";
    SchemaHeaderMismatch = "E0035", "declared schema does not match the file",
        "A CSV source with `header: true` has a declared schema with a column that the file's header does not contain. Columns are matched by name.";
    InvalidMode = "E0040", "invalid mode",
        "`mode` is `single(readers: R, processors: P, batch: B)`, `multi(nodes: N, threads: T, batch: B)` or `auto(batch: B)`, with positive integer parameters. At most one mode per file.";
    InvalidHint = "E0041", "unknown or invalid hint",
        "Stage hints are `@parallel(N)`, `@batch(N)` (positive integers) and, on filter and map, `@on_error(fail | skip | dead_letter(\"path\"))`.";
    ConflictingModes = "E0042", "conflicting modes",
        "Files run together form one job with one mode, but two of them declare different modes.";
    UnknownAggregate = "E0050", "unknown aggregate function",
        "A `group` output must be an aggregate: count(), sum(x), min(x), max(x) or avg(x).";
    AggregateType = "E0051", "aggregate of the wrong type",
        "sum and avg need numbers; min and max need numbers, strings or timestamps; count takes no argument.";
    AggregateOutsideGroup = "E0052", "aggregate outside group",
        "count, sum, min, max and avg aggregate many rows and can only be used in a `group` stage: `group vendor { n: count() }`.";
    UnionMismatch = "E0053", "union of different row types",
        "All streams of a `union` must have the same columns with the same types, in the same order. Use `map` to align them first.";
    NoSink = "E0054", "pipeline without a sink",
        "A pipeline statement must end in `sink ...`; otherwise its rows go nowhere. To name a stream for later use, write `let name = ...`.";
    LetWithSink = "E0055", "let bound to a sink",
        "`let` names a stream; a pipeline that ends in `sink` produces none. Write the sink as its own statement: `let x = a | filter ...` then `x | sink csv(\"out.csv\")`.";
    InvalidLimit = "E0056", "invalid limit",
        "`limit` takes a non-negative integer literal: `limit 100`.";
    NotAStream = "E0057", "not a stream",
        "A pipeline must start with a source or a `let` name; this name is a function, a schema or a module.";
    DuplicateSink = "E0060", "two sinks write the same destination",
        "Two sinks of the job (perhaps in different files) write the same file (or both write stdout); one would overwrite the other. Give each its own path.";
    RowEvalFailed = "E0070", "a row could not be evaluated",
        "At run time, a filter or map failed on a row: division by zero, integer overflow, a value that cannot be converted (to_int of NaN), or an invalid function argument (a negative substr start). The stage's error policy is `fail` (the default), so the job stopped and wrote no output.\n\nChoose what such rows mean: guard the expression (`if d != 0 { n / d } else { 0 }`), or give the stage a policy: `@on_error(skip)` or `@on_error(dead_letter(\"bad.jsonl\"))`.";
    Internal = "E0900", "internal compiler error",
        "The compiler found a broken invariant in its own data: this is a bug in flow, not in your script. Please report it with the script that triggers it.";
    UnusedStream = "W0001", "unused source or let",
        "A source or let is never used by a pipeline that reaches a sink, so it is not read at all.";
    OutputOverwritesInput = "E0061", "an output would overwrite an input",
        "A sink or dead-letter file of the job is one of its own inputs (the same path, a path through `..` or a symlink, a hard link, or a file matched by a source's glob pattern). Writing it would destroy the input before it is read. Write the output to another file; to replace the input, rename the output after the job.";
    NestedTooDeeply = "E0007", "expression nested too deeply",
        "An expression nests more than 1,000 levels deep (unary operators, binary operators, `if`s, call arguments; parentheses do not count), counting the bodies of the `fn`s it calls; or a stream has more than 1,000 stages from its source, counting the stages of the `let`s it uses. Long `&&` / `||` chains are exempt: any number of terms is accepted.\n\nSplit the expression: compute parts in earlier `map` stages, or in `fn`s of their own.";
    InliningTooLarge = "E0028", "calls expand to too large an expression",
        "`fn` calls are inlined: each call is replaced by the function's body. A function whose body calls other functions several times (`fn g2(x: int) -> int = g1(x) + g1(x)`, then `g3` calling `g2` twice, …) doubles in size at every level, and the expression they expand to grew past the limit (100,000 nodes per expression).\n\nBind a repeated call's result once instead of calling it twice (compute it in an earlier `map` stage), or simplify the functions.";
    TooManyErrors = "E0008", "too many errors",
        "Reporting stopped after the first errors (100 by default); the count of the ones not shown is given. Fix the first ones (later errors are often consequences of earlier ones) and check again.";
    NotTranslatable = "E0080", "not translatable to SQL",
        "`flow compile --target sql:…` and `flow run --target duckdb` translate a job into the SQL of an engine only where the SQL has flow's semantics (docs/SQL.md lists what translates). This expression, builtin, type, connector or stage has no faithful form in that dialect yet, so no SQL is produced rather than SQL that computes something else.\n\nRun the job natively (`flow run` without `--target`), or rewrite that part.";
    PolicyNotTranslatable = "E0081", "error policy not expressible in SQL",
        "A source or stage has `on_error: skip` or `dead_letter(…)`: rows that fail are dropped or written aside while the job goes on. A SQL statement fails as a whole, so the policy cannot be kept in SQL. Run the job natively, or use the default policy (`fail`) when targeting an engine.";
}

#[cfg(test)]
mod tests {
    use super::Code;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "code {s} is used twice");
            assert!(
                s.len() == 5 && (s.starts_with('E') || s.starts_with('W')),
                "bad code {s}"
            );
            assert!(s[1..].chars().all(|ch| ch.is_ascii_digit()), "bad code {s}");
            assert!(!c.title().is_empty() && !c.explanation().is_empty());
            assert_eq!(Code::parse(s), Some(*c));
        }
    }
}
