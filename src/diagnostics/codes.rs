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
        "`mode` is `single(readers: R, processors: P, batch: B)`, `multi(nodes: N, threads: T, batch: B, retries: R)` or `auto(batch: B)`, with positive integer parameters (`retries` may be 0, see E0210). At most one mode per file.";
    InvalidHint = "E0041", "unknown or invalid hint",
        "Stage hints are `@parallel(N)`, `@batch(N)` (positive integers) and, on filter and map, `@on_error(fail | skip | dead_letter(\"path\"))`.";
    ConflictingModes = "E0042", "conflicting modes",
        "Files run together form one job with one mode, but two of them declare different modes.";
    UnknownAggregate = "E0050", "unknown aggregate function",
        "A `group` output must be an aggregate: count(), sum(x), min(x), max(x), avg(x), count_distinct(x), first(x) or last(x).";
    AggregateType = "E0051", "aggregate of the wrong type",
        "sum and avg need numbers; min and max need numbers, strings or timestamps; count takes no argument.";
    AggregateOutsideGroup = "E0052", "aggregate outside group",
        "count, sum, min, max, avg, count_distinct, first and last aggregate many rows and can only be used in a `group` stage: `group vendor { n: count() }`.";
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
    InvalidRetries = "E0210", "invalid retries",
        "`retries: N` in `mode multi(…)` re-runs the whole job from scratch, up to N times, when a worker process is lost, hangs or never comes (a job error such as a bad row is not retried). N is an integer from 0 (the default: no retry) to 100. `flow run --retries N` overrides it.";
    ParallelNotHonoured = "W0200", "@parallel asks for more workers than the mode gives",
        "`@parallel(n)` runs a stage on `n` workers, taken from the workers that run stages: under `mode single(readers: R, processors: P)` the `P` processors (readers only read and parse), under `mode multi(nodes: N, threads: T)` all `N × T` workers. A hint asking for more cannot be honoured, and the stage runs on all of them instead. Raise the mode's parameters or lower the hint. Under `mode auto` the job gets at least as many workers as its largest `@parallel(n)`, up to 256.";
    BatchHintNotHonoured = "W0201", "@batch on a stage is not honoured",
        "Rows are read and parsed in batches at the sources, and every later stage works on those batches; a stage does not re-batch them, so `@batch(n)` on a stage has no effect. Set the job's batch size in its mode instead: `mode auto(batch: 4096)` (or `single(…, batch: n)`, `multi(…, batch: n)`), or with `flow run --batch n`.";
    UnusedStream = "W0001", "unused source or let",
        "A source or let is never used by a pipeline that reaches a sink, so it is not read at all.";
    OutputOverwritesInput = "E0061", "an output would overwrite an input",
        "A sink or dead-letter file of the job is one of its own inputs (the same path, a path through `..` or a symlink, a hard link, or a file matched by a source's glob pattern). Writing it would destroy the input before it is read. Write the output to another file; to replace the input, rename the output after the job.";
    NestedTooDeeply = "E0007", "expression nested too deeply",
        "An expression nests more than 1,000 levels deep (unary operators, binary operators, `if`s, call arguments; parentheses do not count), counting the bodies of the `fn`s it calls; or a stream has more than 1,000 stages from its source, counting the stages of the `let`s it uses. Long `&&` / `||` chains are exempt: any number of terms is accepted.\n\nSplit the expression: compute parts in earlier `map` stages, or in `fn`s of their own.";
    InliningTooLarge = "E0028", "calls expand to too large an expression",
        "`fn` calls are inlined: each call is replaced by the function's body. A function whose body calls other functions several times (`fn g2(x: int) -> int = g1(x) + g1(x)`, then `g3` calling `g2` twice, …) doubles in size at every level, and the expression they expand to grew past the limit (100,000 nodes per expression). Identical calls (`g1(x) + g1(x)`) are computed once and shared where they are always evaluated, so this happens when the calls differ (`g1(x) + g1(x + 1)`), or sit in different branches of an `if`, or follow `&&`, `||`, `??` or a part that can fail first.\n\nBind a repeated call's result once (compute it in an earlier `map` stage, or pass it to a `fn` as an argument), or simplify the functions.";
    TooManyErrors = "E0008", "too many errors",
        "Reporting stopped after the first errors (100 by default); the count of the ones not shown is given. Fix the first ones (later errors are often consequences of earlier ones) and check again.";
    UnknownStage = "E0009", "unknown stage",
        "After a `|` comes a stage: `filter`, `map`, `group`, `join` (or `left join`), `union`, `sort`, `distinct`, `limit` or `sink`. The word there is none of them; the message suggests the closest. The statement is not checked further.\n\nExample:\n    trips | filtr fare > 0 | sink stdout()\nFix:\n    trips | filter fare > 0 | sink stdout()";
    NotTranslatable = "E0080", "not translatable to SQL",
        "`flow compile --target sql:…` and `flow run --target duckdb` translate a job into the SQL of an engine only where the SQL has flow's semantics (docs/SQL.md lists what translates). This expression, builtin, type, connector or stage has no faithful form in that dialect yet, so no SQL is produced rather than SQL that computes something else.\n\nRun the job natively (`flow run` without `--target`), or rewrite that part.";
    PolicyNotTranslatable = "E0081", "error policy not expressible in SQL",
        "A source or stage has `on_error: skip` or `dead_letter(…)`: rows that fail are dropped or written aside while the job goes on. A SQL statement fails as a whole, so the policy cannot be kept in SQL. Run the job natively, or use the default policy (`fail`) when targeting an engine.";
    HabitAnd = "E0100", "and instead of &&",
        "The habit: `and` (SQL, Python). The flow form: `a && b`.\n\nExample:\n    filter distance > 10.0 and fare > 0.0\nFix:\n    filter distance > 10.0 && fare > 0.0";
    HabitOr = "E0101", "or instead of ||",
        "The habit: `or` (SQL, Python). The flow form: `a || b`.\n\nExample:\n    filter city == \"A\" or city == \"B\"\nFix:\n    filter city == \"A\" || city == \"B\"";
    HabitNot = "E0102", "not instead of !",
        "The habit: `not` (SQL, Python). The flow form: `!a`.\n\nExample:\n    filter not is_null(tip)\nFix:\n    filter !is_null(tip)";
    HabitSingleEquals = "E0103", "= used as a comparison",
        "The habit: `=` for equality (SQL). The flow form: `a == b`.\n\nExample:\n    filter vendor = \"acme\"\nFix:\n    filter vendor == \"acme\"";
    HabitNotEqual = "E0104", "<> instead of !=",
        "The habit: `<>` for not-equal (SQL). The flow form: `a != b`.\n\nExample:\n    filter city <> \"x\"\nFix:\n    filter city != \"x\"";
    HabitSingleQuote = "E0105", "single-quoted string",
        "The habit: a 'text' literal (SQL, Python). The flow form: \"text\" (double quotes).\n\nExample:\n    filter city == 'Boston'\nFix:\n    filter city == \"Boston\"";
    HabitCountStar = "E0106", "count(*) instead of count()",
        "The habit: `count(*)` (SQL). The flow form: `count()`.\n\nExample:\n    group vendor { n: count(*) }\nFix:\n    group vendor { n: count() }";
    HabitWhere = "E0107", "where instead of filter",
        "The habit: a `where` clause (SQL). The flow form: the `filter` stage.\n\nExample:\n    trips | where distance > 10.0\nFix:\n    trips | filter distance > 10.0";
    HabitSelect = "E0108", "select instead of map",
        "The habit: a `select` list (SQL). The flow form: the `map { … }` stage.\n\nExample:\n    trips | select id, fare\nFix:\n    trips | map { id, fare }";
    HabitOrderBy = "E0109", "order by instead of sort",
        "The habit: `order by k` / `sort_by` (SQL, dataframes). The flow form: `sort k`, with `asc` (the default) or `desc` after a key.\n\nExample:\n    trips | order by fare desc | sink csv(\"o.csv\")\nFix:\n    trips | sort fare desc | sink csv(\"o.csv\")";
    HabitGroupBy = "E0110", "group by instead of group",
        "The habit: `group by k` / `groupby` (SQL, pandas). The flow form: `group k { … }`.\n\nExample:\n    trips | group by vendor { n: count() }\nFix:\n    trips | group vendor { n: count() }";
    HabitHaving = "E0111", "having instead of filter",
        "The habit: a `having` clause (SQL). The flow form: a `filter` stage after `group`.\n\nExample:\n    | group vendor { n: count() } having n > 5\nFix:\n    | group vendor { n: count() } | filter n > 5";
    HabitSqlQuery = "E0112", "a SQL query as a statement",
        "The habit: a whole `SELECT … FROM …` query (SQL). The flow form: a pipeline that starts from its source.\n\nExample:\n    select * from trips where fare > 0\nFix:\n    trips | filter fare > 0.0 | sink stdout()";
    HabitStageFirst = "E0113", "a pipeline starts with a stage",
        "The habit: a stage before the source (`limit 10 trips`, `filter … trips`). The flow form: `source | stage | …`.\n\nExample:\n    limit 10 trips | sink stdout()\nFix:\n    trips | limit 10 | sink stdout()";
    HabitFrom = "E0114", "from before the source",
        "The habit: `from trips` (PRQL, SQL). The flow form: the bare source name.\n\nExample:\n    from trips | limit 10 | sink stdout()\nFix:\n    trips | limit 10 | sink stdout()";
    HabitJoin = "E0115", "merge: flow combines streams by key with `join`",
        "The habit: `merge` (pandas). The flow form: `join stream on left_key == right_key { fields }`.\n\nExample:\n    trips | merge vendors on vendor_id == id { name }\nFix:\n    trips | join vendors on vendor_id == id { name }";
    HabitAsCast = "E0116", "x as T instead of to_T(x)",
        "The habit: a cast written `x as int` (SQL, Rust). The flow form: `to_int(x)`, `to_float(x)`, `to_str(x)`.\n\nExample:\n    map { d: distance as int }\nFix:\n    map { d: to_int(distance) }";
    HabitCastCall = "E0117", "CAST(x AS T) instead of to_T(x)",
        "The habit: `CAST(x AS T)` (SQL). The flow form: `to_int(x)`, `to_float(x)`, `to_str(x)`.\n\nExample:\n    map { d: CAST(distance AS int) }\nFix:\n    map { d: to_int(distance) }";
    HabitAsAlias = "E0118", "expr as name instead of name: expr",
        "The habit: a column alias `expr AS name` (SQL). The flow form: `name: expr` in `map`.\n\nExample:\n    map { fare * 2.0 as double }\nFix:\n    map { double: fare * 2.0 }";
    HabitIsNull = "E0119", "x is null instead of x == null",
        "The habit: `x IS NULL` / `x IS NOT NULL` (SQL). The flow form: `x == null` / `x != null`.\n\nExample:\n    filter tip is not null\nFix:\n    filter tip != null";
    HabitNullSpelling = "E0120", "None / NULL / nil instead of null",
        "The habit: `None` (Python), `NULL` (SQL), `nil` (Ruby, Lua, Go). The flow form: `null`.\n\nExample:\n    filter tip != None\nFix:\n    filter tip != null";
    HabitBoolCase = "E0121", "True / False instead of true / false",
        "The habit: `True`/`False` (Python), `TRUE`/`FALSE` (SQL). The flow form: `true` / `false`.\n\nExample:\n    csv(\"t.csv\", header: True)\nFix:\n    csv(\"t.csv\", header: true)";
    HabitElif = "E0122", "elif instead of else if",
        "The habit: `elif` (Python), `elsif` (Ruby, Perl), `elseif` (PHP, Lua). The flow form: `else if`.\n\nExample:\n    if a { 1 } elif b { 2 } else { 3 }\nFix:\n    if a { 1 } else if b { 2 } else { 3 }";
    HabitThen = "E0123", "if … then instead of braces",
        "The habit: `if c then a else b` (SQL CASE, Haskell, Lua). The flow form: `if c { a } else { b }`.\n\nExample:\n    if age >= 65 then \"senior\" else \"adult\"\nFix:\n    if age >= 65 { \"senior\" } else { \"adult\" }";
    HabitCase = "E0124", "CASE WHEN instead of if",
        "The habit: `CASE WHEN c THEN a ELSE b END` (SQL). The flow form: `if c { a } else { b }`.\n\nExample:\n    CASE WHEN fare > 50 THEN \"high\" ELSE \"low\" END\nFix:\n    if fare > 50.0 { \"high\" } else { \"low\" }";
    HabitPythonTernary = "E0125", "a if c else b",
        "The habit: Python's conditional expression `a if c else b`. The flow form: `if c { a } else { b }`.\n\nExample:\n    map { x: fare if fare > 0.0 else 0.0 }\nFix:\n    map { x: if fare > 0.0 { fare } else { 0.0 } }";
    HabitTernary = "E0126", "c ? a : b",
        "The habit: the C / JavaScript conditional `c ? a : b`. The flow form: `if c { a } else { b }`.\n\nExample:\n    map { x: fare > 0.0 ? fare : 0.0 }\nFix:\n    map { x: if fare > 0.0 { fare } else { 0.0 } }";
    HabitStrPlus = "E0127", "+ on strings",
        "The habit: joining text with `+` (Python, JavaScript, Java). The flow form: `concat(a, b)`, with `to_str(n)` for numbers.\n\nExample:\n    map { label: city + \"-\" + vendor }\nFix:\n    map { label: concat(concat(city, \"-\"), vendor) }";
    HabitLenNullable = "E0128", "len(x) == 0 on nullable text",
        "The habit: testing `len(s) == 0` (or `s == \"\"`) for missing text (Python, SQL). The flow form: `x == null` for missing, `(x ?? \"\") == \"\"` for missing or empty.\n\nExample:\n    filter len(nickname) == 0\nFix:\n    filter (nickname ?? \"\") == \"\"";
    HabitStrIntCompare = "E0129", "== between str and int",
        "The habit: comparing text with a number, which SQL and JavaScript convert implicitly. The flow form: convert one side: `parse_int(s) == 5` (an int?), or compare with text `s == \"5\"`.\n\nExample:\n    filter zip == 10001   # zip is str\nFix:\n    filter zip == \"10001\"";
    HabitMissingPipe = "E0130", "missing | between stages",
        "The habit: stages written one after the other, as clauses of a SQL query or lines of a dataframe chain. The flow form: `a | filter … | map { … }`.\n\nExample:\n    trips | filter fare > 0.0 map { id }\nFix:\n    trips | filter fare > 0.0 | map { id }";
    HabitTrailingPipe = "E0131", "a | with no stage after it",
        "The habit: a trailing `|` (or `| |`), as in a shell pipe being edited. The flow form: remove the `|`.\n\nExample:\n    trips | limit 5 | sink stdout() |\nFix:\n    trips | limit 5 | sink stdout()";
    HabitSinkMiddle = "E0132", "a sink in the middle of a pipeline",
        "The habit: writing and continuing, like `tee` or a dataframe's `to_csv` in a chain. The flow form: name the stream with `let`, then one pipeline per sink.\n\nExample:\n    trips | sink csv(\"a.csv\") | filter fare > 0.0 | sink csv(\"b.csv\")\nFix:\n    let t = trips\n    t | sink csv(\"a.csv\")\n    t | filter fare > 0.0 | sink csv(\"b.csv\")";
    HabitSemicolon = "E0133", "; at the end of a statement",
        "The habit: ending statements with `;` (SQL, C, JavaScript). The flow form: nothing: a statement ends where the next begins.\n\nExample:\n    trips | sink stdout();\nFix:\n    trips | sink stdout()";
    HabitSlashComment = "E0134", "// comment",
        "The habit: `//` comments (C, JavaScript, Rust). The flow form: `# comment`.\n\nExample:\n    // long trips\nFix:\n    # long trips";
    HabitDashComment = "E0135", "-- comment",
        "The habit: `--` comments (SQL, Lua, Haskell). The flow form: `# comment`.\n\nExample:\n    -- long trips\nFix:\n    # long trips";
    HabitFnBraces = "E0136", "fn body in braces without =",
        "The habit: a function body in braces (Rust, JavaScript, C). The flow form: `fn f(x: int) -> T = expression`.\n\nExample:\n    fn senior(age: int) -> bool { age >= 65 }\nFix:\n    fn senior(age: int) -> bool = age >= 65";
    HabitFnColonReturn = "E0137", "fn return type after :",
        "The habit: a return type after `:` (TypeScript, Python annotations, Kotlin). The flow form: `-> T`.\n\nExample:\n    fn half(x: float): float = x / 2.0\nFix:\n    fn half(x: float) -> float = x / 2.0";
    HabitFnNoReturnType = "E0138", "fn without a return type",
        "The habit: leaving the return type to inference (Python, JavaScript, Kotlin). The flow form: `fn f(x: int) -> int = …`.\n\nExample:\n    fn half(x: float) = x / 2.0\nFix:\n    fn half(x: float) -> float = x / 2.0";
    HabitDef = "E0139", "def instead of fn",
        "The habit: `def f(x):` (Python, Ruby, Scala). The flow form: `fn f(x: int) -> int = …`.\n\nExample:\n    def half(x): return x / 2\nFix:\n    fn half(x: float) -> float = x / 2.0";
    HabitOptionAssign = "E0140", "option=value instead of option: value",
        "The habit: keyword arguments `name=value` (Python). The flow form: `name: value`.\n\nExample:\n    csv(\"t.csv\", header=true)\nFix:\n    csv(\"t.csv\", header: true)";
    HabitMapAssign = "E0141", "name = expr in map instead of name: expr",
        "The habit: assignments in a projection (`df.assign(total=…)`, `SET x = …`). The flow form: `name: expr`.\n\nExample:\n    map { total = fare + tip }\nFix:\n    map { total: fare + tip }";
    HabitAmp = "E0142", "& instead of &&",
        "The habit: a single `&` for and (pandas, C bit operations). The flow form: `a && b`.\n\nExample:\n    filter (fare > 0.0) & (tip > 0.0)\nFix:\n    filter fare > 0.0 && tip > 0.0";
    HabitTripleEquals = "E0143", "=== / !== instead of == / !=",
        "The habit: JavaScript's strict comparisons. The flow form: `==` / `!=` (flow never converts types when comparing).\n\nExample:\n    filter city === \"x\"\nFix:\n    filter city == \"x\"";
    HabitPower = "E0144", "** power operator",
        "The habit: `**` for powers (Python, JavaScript). The flow form: `x * x`, `sqrt(x)`.\n\nExample:\n    map { sq: d ** 2 }\nFix:\n    map { sq: d * d }";
    HabitSqlOperator = "E0145", "SQL operators in, like, between",
        "The habit: `x IN (…)`, `x LIKE '…'`, `x BETWEEN a AND b` (SQL). The flow form: `x == a || x == b`; `contains`/`starts_with`/`ends_with`; `x >= a && x <= b`.\n\nExample:\n    filter city in (\"A\", \"B\")\nFix:\n    filter city == \"A\" || city == \"B\"";
    HabitUpperCaseCall = "E0146", "upper-case function names",
        "The habit: `SUM(x)`, `UPPER(s)` (SQL is case-insensitive). The flow form: the lower-case name: `sum(x)`, `upper(s)`.\n\nExample:\n    group vendor { s: SUM(fare) }\nFix:\n    group vendor { s: sum(fare) }";
    HabitDistinct = "E0147", "drop_duplicates / unique instead of distinct",
        "The habit: `drop_duplicates` / `unique` / `dedup` (pandas, shell). The flow form: `distinct` (whole rows) or `distinct a, b` (the first row per key).\n\nExample:\n    trips | drop_duplicates | sink stdout()\nFix:\n    trips | distinct | sink stdout()";
    HabitFloorDiv = "E0148", "// floor division",
        "The habit: `a // b` (Python). The flow form: `/` between ints (it drops the fraction), `floor(a / b)` for floats.\n\nExample:\n    map { h: minutes // 60 }\nFix:\n    map { h: minutes / 60 }";
    HabitMethodCall = "E0149", "method calls x.f()",
        "The habit: calling a function as a method `s.upper()` (Python, JavaScript). The flow form: `upper(s)`: functions take the value as their first argument.\n\nExample:\n    map { c: city.upper() }\nFix:\n    map { c: upper(city) }";
    HabitSqlConcat = "E0150", "|| on strings",
        "The habit: `a || b` to join text (SQL). The flow form: `concat(a, b)`; `||` is boolean or.\n\nExample:\n    map { k: city || vendor }\nFix:\n    map { k: concat(city, vendor) }";
    HabitLimit = "E0151", "take / head / top instead of limit",
        "The habit: `take 10` (Spark, Rust), `head 10` (pandas, shell), `top 10` (T-SQL). The flow form: `limit 10`: the first 10 rows (of a `sort`'s order, if one comes before it).\n\nExample:\n    trips | sort fare desc | take 10 | sink stdout()\nFix:\n    trips | sort fare desc | limit 10 | sink stdout()";
    LiteralArgumentRequired = "E0260", "argument must be a string literal",
        "The regular expression of `matches`/`extract`/`replace_all`, the format of `parse_timestamp`/`format_timestamp`, the unit of `date_trunc` and the time zone of `utc_to_local`/`local_to_utc` must be written as a string literal in the call: it is checked when the script is checked and compiled once, not per row. A field, a `fn` parameter or a computed string is not accepted.\n\nExample:\n    fn is_code(s: str, p: str) -> bool = matches(s, p)\nFix:\n    fn is_code(s: str) -> bool = matches(s, \"^[A-Z]{3}$\")";
    InvalidRegex = "E0261", "invalid regular expression",
        "A pattern literal is not a valid regular expression in the syntax of the Rust `regex` crate (the message says what is wrong and points at it). That syntax has no look-around (`(?=…)`) and no back-references (`\\1`); a literal `(`, `[`, `{`, `.`, `*`, `+`, `?`, `|`, `^`, `$` is escaped with a backslash, written `\\\\` inside a flow string.\n\nExample:\n    filter matches(code, \"ab(c\")\nFix:\n    filter matches(code, \"ab\\\\(c\")";
    InvalidTimeFormat = "E0262", "invalid time format",
        "A format literal of `parse_timestamp` or `format_timestamp` has a `%` directive that is not a strftime directive, or (for reading) gives no date. The directives: `%Y` year, `%m` month, `%d` day, `%H` hour, `%M` minute, `%S` second, `%f` fraction, `%z` offset (`+0200`, `%:z` for `+02:00`), `%A`/`%a` weekday, `%B`/`%b` month name, `%j` day of the year, `%s` Unix seconds, `%%` a percent sign.\n\nExample:\n    map { t: format_timestamp(at, \"%Y-%m-%d %H:%i\") }   # `%i` is MySQL's minutes\nFix:\n    map { t: format_timestamp(at, \"%Y-%m-%d %H:%M\") }";
    UnknownTruncUnit = "E0263", "unknown date_trunc unit",
        "The first argument of `date_trunc` names the unit a timestamp is rounded down to: `second`, `minute`, `hour`, `day`, `week` (weeks start on Monday), `month`, `quarter` or `year`.\n\nExample:\n    map { d: date_trunc(\"days\", at) }\nFix:\n    map { d: date_trunc(\"day\", at) }";
    UnknownTimeZone = "E0264", "unknown time zone",
        "A time zone literal is not a name of the IANA tz database built into flow (the host's zone files are not read, so a job gives the same rows on every machine). Zones are named by region and city: `Europe/Oslo`, `America/New_York`, `Asia/Kolkata`, or `UTC`.\n\nExample:\n    map { local: utc_to_local(at, \"CET+1\") }\nFix:\n    map { local: utc_to_local(at, \"Europe/Paris\") }";
    NoSuchGroup = "E0265", "no such capture group",
        "The group number given to `extract` is a literal that the pattern does not have. Group 0 is the whole match; groups 1, 2, … are the parenthesised parts, numbered by their opening `(` from the left (`(?:…)` does not count).\n\nExample:\n    map { n: extract(s, \"id=[0-9]+\", 1) }\nFix:\n    map { n: extract(s, \"id=([0-9]+)\", 1) }";
    SourceUnreachable = "E0270", "cannot reach the source's server",
        "A source that reads a database asks the server for the table's columns when the script is checked, so the server must be reachable then: the URL must parse, something must listen at its host and port, and the user and password must be accepted. The password comes from the URL, else `PGPASSWORD`, else the password file (`PGPASSFILE` or `~/.pgpass`); it is never printed. Connecting gives up after `FLOW_PG_CONNECT_TIMEOUT` seconds (default 10).\n\nExample:\n    source t = postgres(\"postgres://me@localhost:5433/shop\", table: \"orders\")   # nothing listens on 5433\nFix:\n    source t = postgres(\"postgres://me@localhost:5432/shop\", table: \"orders\")";
    UnknownTable = "E0271", "no such table",
        "The `table:` of a database source or sink names no table or view the user can see. The name is read as PostgreSQL reads it: unquoted names are folded to lower case, `schema.table` picks a schema, and a name is looked up on the `search_path`. A sink with `write: \"create\"` creates its table instead, and fails if the table exists.\n\nExample:\n    source t = postgres(url, table: \"order\")\nFix:\n    source t = postgres(url, table: \"orders\")";
    BadQuery = "E0272", "the query is not valid",
        "The `query:` of a database source is prepared by the server at check time to learn its columns; the server refused it. The message is the server's.\n\nExample:\n    source t = postgres(url, query: \"select id, totl from orders\")\nFix:\n    source t = postgres(url, query: \"select id, total from orders\")";
    UnsupportedColumnType = "E0273", "a column of a type flow cannot read",
        "flow reads these PostgreSQL types: smallint, integer, bigint (as `int`); real, double precision, numeric (as `float`); boolean; text, varchar, char, name (as `str`); timestamp, timestamptz, date (as `timestamp`). A column of another type (bytea, json, arrays, intervals, …) cannot be read as it is: declare a schema without it to read the other columns, or cast it in a `query:`.\n\nExample:\n    source t = postgres(url, table: \"events\")          # `payload` is jsonb\nFix:\n    source t = postgres(url, query: \"select id, payload::text as payload from events\")";
    DescribedSchemaMismatch = "E0274", "the declared schema does not match the database",
        "A source whose input describes itself (a database table or query) may still be given a schema, which picks columns by name: each of its columns must exist in the input, with the same type, and a column that may be null in the database must be nullable (`T?`) in the schema. A sink into an existing table must give every column the table requires, with types it accepts.\n\nExample:\n    schema Order { id: int, total: int }     # total is numeric in the table\nFix:\n    schema Order { id: int, total: float }";
    OptionRequired = "E0275", "an option is missing, or given with another that excludes it",
        "Some connector options come in groups of which a call gives exactly one: a database source reads either a `table:` or a `query:`, and needs its URL.\n\nExample:\n    source t = postgres(url)\nFix:\n    source t = postgres(url, table: \"orders\")";
    TestBadClause = "E0220", "not a test clause",
        "A `test \"name\" { … }` item holds clauses `given SOURCE { rows }` (the rows a source gives in the test) and `expect NAME { rows }` or `expect sink \"path\" { rows }` (the rows expected at a source, a `let` or a sink of the file), optionally `ordered` before the rows. The item itself starts with the word `test`.\n\nExample:\n    test \"long trips\" { input trips { { id: 1 } } }\nFix:\n    test \"long trips\" { given trips { { id: 1 } } }";
    TestUnknownTarget = "E0221", "a test names no such source, let or sink",
        "`given` names a source of the file (rows replace what it reads); `expect` names a source or a `let` of the file, or a sink by its path as written in the sink.\n\nExample:\n    given long { … }          # `long` is a let, not a source\n    expect sink \"out/x.csv\" { … }   # no sink writes out/x.csv\nFix:\n    given trips { … }\n    expect long { … }";
    TestRowUnknownColumn = "E0222", "a test row has a column the rows do not have",
        "Each field of a test row must be a column of the rows at that place: the source's schema for `given`, the row type of the `let`, source or sink for `expect`.\n\nExample:\n    given trips { { id: 1, fair: 2.0 } }\nFix:\n    given trips { { id: 1, fare: 2.0 } }";
    TestRowMissingColumn = "E0223", "a test row leaves out a column",
        "A `given` row must give every non-nullable column of the source (a nullable one left out is null); an `expect` row must give every column, so that a comparison never passes by accident.\n\nExample:\n    expect long { { id: 1 } }   # long also has fare\nFix:\n    expect long { { id: 1, fare: 12.5 } }";
    TestRowBadValue = "E0224", "a test row value does not fit its column",
        "A value in a test row is a literal (a number, possibly negative, a string, true, false or null) of the column's type: an int where an int or a float is expected, a float for a float, a string for a str (or a timestamp, in a form `parse_timestamp` accepts), null only for a nullable column.\n\nExample:\n    given trips { { id: \"one\", tip: null } }   # id is int\nFix:\n    given trips { { id: 1, tip: null } }";
    TestDuplicate = "E0225", "a test or a test clause is given twice",
        "Test names are unique within a file, and one test gives the rows of a source once and expects the rows of a place once.\n\nExample:\n    test \"a\" { … }\n    test \"a\" { … }\nFix:\n    test \"a\" { … }\n    test \"b\" { … }";
    SortDirection = "E0240", "unknown sort direction",
        "A `sort` key is a column name, optionally followed by `asc` (the default) or `desc`. Keys are separated by commas.\n\nExample:\n    trips | sort fare descending, id\nFix:\n    trips | sort fare desc, id";
    JoinKind = "E0250", "unknown kind of join",
        "flow has two joins: `join` keeps the input rows that have a match, `left join` keeps every input row (the brought fields null where there is no match).\n\nExample:\n    orders | outer join customers on customer_id == id { name }\nFix:\n    orders | left join customers on customer_id == id { name }";
    JoinOn = "E0251", "join without on",
        "After the joined stream comes `on` and the equality keys, `left_column == right_column`, several joined by `&&`.\n\nExample:\n    orders | join customers using customer_id == id { name }\nFix:\n    orders | join customers on customer_id == id { name }";
    JoinKeyType = "E0252", "join keys of different types",
        "The two columns of a join key must have the same type; an int key may meet a float one (compared as floats). Convert one side with `map` first.\n\nExample:\n    orders | join customers on customer_id == name { country }\nFix:\n    orders | join customers on customer_id == id { country }";
    JoinFieldClash = "E0253", "a joined field clashes with an input column",
        "The fields a join brings in are added after the input's columns, so their names must be new. Bring a field in under another name with `name: field`.\n\nExample:\n    orders | join customers on customer_id == id { id }\nFix:\n    orders | join customers on customer_id == id { customer: id }";
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
