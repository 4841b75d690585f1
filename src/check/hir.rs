//! The typed intermediate form (HIR): what the checker produces and the planner consumes.
//!
//! Names are resolved, every expression carries its type, user `fn` calls are inlined as
//! `Let`/`Local`, `let` pipelines are expanded into trees (the planner de-duplicates them again),
//! and implicit int→float widening is explicit (`Cast`).

use crate::job::{ErrorPolicy, Hints, Mode, Options};
use crate::span::Span;
use crate::stdlib::Builtin;
use crate::types::{RowType, Scalar, Type, Value};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Type,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnOp {
    /// Arithmetic negation of int or float (int overflow is a row error).
    Neg,
    /// Boolean not.
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    /// Division: by zero is a row error for int and float alike; int division truncates.
    Div,
    /// Remainder: by zero is a row error.
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Short-circuit boolean and.
    And,
    /// Short-circuit boolean or.
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

/// Typing rules the later stages can rely on:
/// - `Binary` arithmetic: both operands have the same scalar (int, or float), non-null; result
///   has that scalar. Comparisons: same scalar, non-null (strings compare bytewise); result bool.
///   `And`/`Or`: bool operands.
/// - `Eq`/`Ne` against a `null` literal never reaches the HIR: it becomes `IsNull` (negated).
/// - `Field(i)` reads column `i` of the input row; its `ty` may be non-null although the column
///   is nullable, where the checker proved the value present (narrowing).
/// - `Coalesce(a, b)`: `a` nullable, result is `b`'s type.
/// - `If(c, t, e)`: `t` and `e` have the result type (with `Cast` inserted where needed).
/// - Conditions (`filter` predicates, `If` conditions, `And`/`Or` operands, `Not`) are non-null
///   bool: the checker rejects `bool?` there (E0022), so "null counts as false" in the engines is
///   only a defensive fallback.
/// - `Let { value, body }` evaluates `value` eagerly, before `body` (the arguments of an inlined
///   function call are evaluated, and can fail, even if the body does not use them) — as in a
///   call-by-value language.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExprKind {
    Lit(Value),
    Field(usize),
    /// A local bound by an enclosing `Let` (the parameters of inlined user functions).
    Local(usize),
    Let {
        local: usize,
        value: Box<Expr>,
        body: Box<Expr>,
    },
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// Numeric conversion inserted by the checker: only int → float.
    Cast(Box<Expr>, Scalar),
    IsNull(Box<Expr>),
    Coalesce(Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Call(Builtin, Vec<Expr>),
}

impl Expr {
    pub fn new(kind: ExprKind, ty: Type, span: Span) -> Expr {
        Expr { kind, ty, span }
    }

    /// The children of this node.
    pub fn children(&self) -> impl Iterator<Item = &Expr> {
        let (fixed, args): ([Option<&Expr>; 3], &[Expr]) = match &self.kind {
            ExprKind::Lit(_) | ExprKind::Field(_) | ExprKind::Local(_) => ([None, None, None], &[]),
            ExprKind::Let { value, body, .. } => ([Some(value), Some(body), None], &[]),
            ExprKind::Unary(_, a) | ExprKind::Cast(a, _) | ExprKind::IsNull(a) => {
                ([Some(a), None, None], &[])
            }
            ExprKind::Binary(_, a, b) | ExprKind::Coalesce(a, b) => ([Some(a), Some(b), None], &[]),
            ExprKind::If(c, t, f) => ([Some(c), Some(t), Some(f)], &[]),
            ExprKind::Call(_, args) => ([None, None, None], args),
        };
        fixed.into_iter().flatten().chain(args.iter())
    }

    /// Node count and depth (levels of nesting: a leaf is 0 deep), computed iteratively.
    pub fn measure(&self) -> (usize, usize) {
        let (mut size, mut deepest) = (0, 0);
        let mut stack = vec![(self, 0usize)];
        while let Some((e, d)) = stack.pop() {
            size += 1;
            deepest = deepest.max(d);
            stack.extend(e.children().map(|c| (c, d + 1)));
        }
        (size, deepest)
    }

    /// The span of the first node found deeper than `max`, if any (iterative).
    pub fn deeper_than(&self, max: usize) -> Option<Span> {
        let mut stack = vec![(self, 0usize)];
        while let Some((e, d)) = stack.pop() {
            if d > max {
                return Some(e.span);
            }
            stack.extend(e.children().map(|c| (c, d + 1)));
        }
        None
    }
}

/// Aggregate functions of `group`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AggFunc {
    /// Number of rows in the group: int.
    Count,
    /// Sum of non-null values (0 when none): the argument's scalar; int overflow is a job error.
    Sum,
    /// Smallest non-null value: the argument's type (null only if all values were null).
    Min,
    /// Largest non-null value.
    Max,
    /// Mean of non-null values: float (nullable if the argument is).
    Avg,
    /// Number of distinct non-null values (exact; floats by value, `-0.0 == 0.0`, NaNs equal):
    /// int, never null.
    CountDistinct,
    /// The value of the group's first row in input order, null included (SQL's `first_value`
    /// and DuckDB's `first`): the argument's type.
    First,
    /// The value of the group's last row in input order, null included.
    Last,
}

impl AggFunc {
    /// Every aggregate, in the order the docs list them.
    pub const ALL: [AggFunc; 8] = [
        AggFunc::Count,
        AggFunc::Sum,
        AggFunc::Min,
        AggFunc::Max,
        AggFunc::Avg,
        AggFunc::CountDistinct,
        AggFunc::First,
        AggFunc::Last,
    ];
    /// The names of [`AggFunc::ALL`].
    pub const NAMES: [&'static str; 8] = [
        "count",
        "sum",
        "min",
        "max",
        "avg",
        "count_distinct",
        "first",
        "last",
    ];

    pub fn from_name(name: &str) -> Option<AggFunc> {
        let i = AggFunc::NAMES.iter().position(|n| *n == name)?;
        Some(AggFunc::ALL[i])
    }
    pub fn name(self) -> &'static str {
        let i = AggFunc::ALL.iter().position(|f| *f == self).unwrap_or(0);
        AggFunc::NAMES[i]
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    pub name: String,
    pub func: AggFunc,
    /// Evaluated over the group's input row; `None` for `count()`.
    pub arg: Option<Expr>,
    pub ty: Type,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub name: String,
    /// Registered connector name: `csv`, `jsonl`, `stdin`.
    pub connector: String,
    /// File path or glob, relative to the working directory; `None` for stdin.
    pub path: Option<String>,
    pub options: Options,
    /// The full schema of the input, declared or inferred.
    pub schema: RowType,
    pub policy: ErrorPolicy,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StreamKind {
    /// Index into `Program::sources`.
    Source(usize),
    Filter {
        input: Box<Stream>,
        pred: Expr,
        policy: ErrorPolicy,
    },
    /// Output columns in order, each computed over the input row.
    Map {
        input: Box<Stream>,
        fields: Vec<(String, Expr)>,
        policy: ErrorPolicy,
    },
    /// Output row: the key columns (input column indices, in order) then the aggregates.
    Group {
        input: Box<Stream>,
        keys: Vec<usize>,
        aggs: Vec<Agg>,
    },
    Union {
        inputs: Vec<Stream>,
    },
    Limit {
        input: Box<Stream>,
        n: u64,
    },
    /// The input rows ordered by the keys (see [`SortKey`]); same row type.
    Sort {
        input: Box<Stream>,
        keys: Vec<SortKey>,
    },
    /// The first row (in input order) of each distinct key; `keys: None` = whole rows. Same row
    /// type.
    Distinct {
        input: Box<Stream>,
        keys: Option<Vec<usize>>,
    },
    /// A hash join: output row = the `left` columns, then the brought `fields` (columns of
    /// `right`; nullable when `outer`). A left row is kept once per right row whose keys all
    /// equal its own (a null key never matches); with `outer`, a left row without a match is
    /// kept once, its brought fields null.
    Join {
        left: Box<Stream>,
        right: Box<Stream>,
        keys: Vec<JoinKey>,
        fields: Vec<usize>,
        outer: bool,
    },
}

/// One equality key of a join: left column `left` == right column `right`; `float` when one
/// side is int and the other float (both compared as floats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JoinKey {
    pub left: usize,
    pub right: usize,
    pub float: bool,
}

/// One key of `sort`: input column `col`, descending if `desc`. The order is total for every
/// type: nulls last in either direction; floats by value with `-0.0 == 0.0` and NaN above every
/// number (so first in `desc`); strings bytewise (Unicode code points); `false < true`. Rows with
/// equal keys keep their input order (the sort is stable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SortKey {
    pub col: usize,
    pub desc: bool,
}

/// A tree of stages ending in this node; `row` is the type of the rows it produces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    pub kind: StreamKind,
    pub row: RowType,
    pub hints: Hints,
    /// The `let` name this node was bound to, if any (shown by `flow explain`).
    pub label: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sink {
    /// Registered connector name: `csv`, `jsonl`, `stdout`.
    pub connector: String,
    pub path: Option<String>,
    pub options: Options,
    pub input: Stream,
    pub hints: Hints,
    pub span: Span,
    /// `file.flow:line` of the sink statement, for `flow explain` and summaries.
    pub origin: String,
}

/// One checked program: all files given together, merged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub mode: Mode,
    pub sources: Vec<Source>,
    pub sinks: Vec<Sink>,
}

/// A checked `test "name" { … }` item: rows given to sources and rows expected at places, each
/// value converted to its column's type (`flow test`).
#[derive(Clone, Debug, PartialEq)]
pub struct Test {
    pub name: String,
    /// The file it is in (its display name).
    pub file: String,
    pub span: Span,
    /// Source name → its rows, in the source schema's column order.
    pub given: Vec<(String, Vec<Vec<Value>>)>,
    pub expect: Vec<Expect>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    pub target: ExpectTarget,
    /// The row type at that place (the columns of `rows`, in order).
    pub row: RowType,
    pub rows: Vec<Vec<Value>>,
    pub ordered: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExpectTarget {
    /// A source or a `let` of the file.
    Stream(String),
    /// A sink by its resolved path (as in `Sink::path`).
    Sink(String),
}
