//! The abstract syntax tree. Every node has a byte span. Parsing never fails: a statement that
//! could not be parsed becomes `Item::Error` and its problem is a diagnostic.

use crate::span::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Module {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Mode(ModeDecl),
    Use(UseDecl),
    Schema(SchemaDecl),
    Source(SourceDecl),
    Fn(FnDecl),
    Let(LetDecl),
    Pipeline(Pipeline),
    /// `test "name" { given SOURCE { rows } expect NAME { rows } }`: a pipeline unit test.
    Test(TestDecl),
    /// A statement that failed to parse (already reported).
    Error(ErrorItem),
}

/// `test "name" { clause… }` (`flow test`); the words `test`, `given`, `expect` and `ordered`
/// are contextual (not keywords), so they stay usable as names.
#[derive(Clone, Debug, PartialEq)]
pub struct TestDecl {
    /// The word `test`, as written (the parser accepts any name here; the checker insists).
    pub keyword: Ident,
    pub name: String,
    pub name_span: Span,
    pub clauses: Vec<TestClause>,
    pub span: Span,
}

/// `given trips { rows }`, `expect long { rows }`, `expect sink "out/x.csv" ordered { rows }`.
#[derive(Clone, Debug, PartialEq)]
pub struct TestClause {
    /// `given` or `expect` (checked by the checker).
    pub word: Ident,
    pub target: TestTarget,
    /// `ordered` (checked by the checker): compare rows in order instead of as a multiset.
    pub ordered: Option<Ident>,
    pub rows: Vec<RowLit>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TestTarget {
    /// A source (given) or a source or `let` (expect).
    Stream(Ident),
    /// A sink of the file, by its path as written.
    Sink(String, Span),
}

/// `{ id: 1, name: "a" }`: one row of a test.
#[derive(Clone, Debug, PartialEq)]
pub struct RowLit {
    pub fields: Vec<(Ident, Expr)>,
    pub span: Span,
}

/// A statement that failed to parse. If it evidently declared a name (`source x …`,
/// `let x …`, `fn x …`), the name is kept so that its uses don't report it as unknown.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorItem {
    pub span: Span,
    pub declares: Option<(DeclKind, Ident)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclKind {
    Stream,
    Function,
    Schema,
}

/// `name: value` or a positional `value` in a call, a mode or a hint.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModeDecl {
    pub kind: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UseDecl {
    pub path: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub name: Ident,
    pub nullable: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SchemaDecl {
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

/// `connector(args…)`: a source's or a sink's connector.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorCall {
    pub name: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SourceDecl {
    pub name: Ident,
    pub schema: Option<Ident>,
    pub connector: ConnectorCall,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FnDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: TypeExpr,
    pub body: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LetDecl {
    pub name: Ident,
    pub pipeline: Pipeline,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub head: Ident,
    pub stages: Vec<Stage>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hint {
    pub name: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub kind: StageKind,
    pub hints: Vec<Hint>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StageKind {
    Filter(Expr),
    Map(Vec<MapItem>),
    /// Keys, then `name: aggregate(...)` items (checked by the checker).
    Group(Vec<Ident>, Vec<MapItem>),
    Union(Vec<Ident>),
    Limit(Expr),
    /// `sort a, b desc`: the keys in order (checked by the checker).
    Sort(Vec<SortKey>),
    /// `distinct` (whole rows) or `distinct a, b` (the first row per key).
    Distinct(Vec<Ident>),
    /// `join customers on customer_id == id { name, country }` (see [`JoinStage`]).
    Join(JoinStage),
    Sink(ConnectorCall),
}

/// `[left] join right on a == b && c == d { field, name: field }`: the words `left` and `on`
/// are plain identifiers here (checked by the checker), so they stay usable as column names.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinStage {
    /// The word before `join` (`left`), if any.
    pub kind: Option<Ident>,
    /// The right-hand stream (a source or a let).
    pub right: Ident,
    /// The word after the stream name (must be `on`).
    pub on: Ident,
    /// Equality keys: (left column, right column).
    pub keys: Vec<(Ident, Ident)>,
    /// The right-hand columns brought in, each under `name`.
    pub fields: Vec<JoinField>,
    pub span: Span,
}

/// `field` or `name: field` in a join's field list.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinField {
    pub name: Ident,
    pub field: Ident,
}

/// One key of `sort`: a column and an optional direction word (`asc` or `desc`, checked by the
/// checker).
#[derive(Clone, Debug, PartialEq)]
pub struct SortKey {
    /// A column name (`ExprKind::Name`) or any expression over the row.
    pub expr: Expr,
    pub dir: Option<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MapItem {
    /// `*`: all input columns.
    Star(Span),
    /// `name`: shorthand for `name: name`.
    Field(Ident),
    Named(Ident, Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Coalesce,
}

impl BinaryOp {
    /// The operator as written in flow.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
            BinaryOp::Coalesce => "??",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// Dropping is iterative, so that a tree of any depth (a script of a million `-`, a statement
/// the parser gives up on half-way) is freed without overflowing the stack.
impl Drop for Expr {
    fn drop(&mut self) {
        fn take(kind: &mut ExprKind, out: &mut Vec<Expr>) {
            let hole = || Expr {
                kind: ExprKind::Error,
                span: Span::default(),
            };
            match kind {
                ExprKind::Unary(_, a) => out.push(std::mem::replace(&mut **a, hole())),
                ExprKind::Binary(_, a, b) => {
                    out.push(std::mem::replace(&mut **a, hole()));
                    out.push(std::mem::replace(&mut **b, hole()));
                }
                ExprKind::If(c, t, f) => {
                    out.push(std::mem::replace(&mut **c, hole()));
                    out.push(std::mem::replace(&mut **t, hole()));
                    out.push(std::mem::replace(&mut **f, hole()));
                }
                ExprKind::Call { args, .. } => out.extend(args.drain(..).map(|a| a.value)),
                _ => {}
            }
        }
        let mut stack = Vec::new();
        take(&mut self.kind, &mut stack);
        while let Some(mut e) = stack.pop() {
            take(&mut e.kind, &mut stack);
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    Name(Ident),
    Call {
        module: Option<Ident>,
        name: Ident,
        args: Vec<Arg>,
    },
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// An expression that failed to parse (already reported).
    Error,
}
