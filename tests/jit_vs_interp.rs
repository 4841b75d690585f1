//! Differential tests: the Cranelift JIT and the reference interpreter must agree on output rows
//! (floats by bit pattern, any NaN equal to any NaN), dropped rows and row errors, for random
//! well-typed filter/map chains over random rows. Plus edge-case unit tests per operator/builtin.

use flow::batch::Batch;
use flow::check::hir::{BinOp, Expr, ExprKind, UnOp};
use flow::codegen::interp::InterpKernel;
use flow::codegen::{Engine, Kernel, RowError, build_uncached};
use flow::job::ErrorPolicy;
use flow::plan::ir::{FusedStep, Step};
use flow::span::Span;
use flow::stdlib::{Builtin, RowErrorCode};
use flow::types::{Field, RowType, Scalar, Type, Value};
use proptest::prelude::*;
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------
// A small deterministic RNG: proptest draws the seed, the generator is type-directed.

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

const SCALARS: &[Scalar] = &[
    Scalar::Int,
    Scalar::Float,
    Scalar::Bool,
    Scalar::Str,
    Scalar::Timestamp,
];

fn rand_int(r: &mut Rng) -> i64 {
    match r.below(8) {
        0 => r.pick(&[i64::MIN, i64::MAX, -1, 0, 1, i64::MIN + 1]),
        1 => r.pick(&[1_000_000, -1_000_000, 1 << 32, 3_037_000_500]),
        2 => r.next() as i64,
        _ => (r.below(21) as i64) - 10,
    }
}

fn rand_float(r: &mut Rng) -> f64 {
    match r.below(8) {
        0 => r.pick(&[
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            9.223_372_036_854_776e18,
            -9.223_372_036_854_776e18,
            2.5,
            -2.5,
        ]),
        1 => f64::from_bits(r.next()),
        _ => (r.below(2001) as f64 - 1000.0) / 8.0,
    }
}

fn rand_str(r: &mut Rng) -> String {
    r.pick(&[
        "",
        "a",
        "abc",
        "ABC",
        "  pad ",
        "héllo",
        "Straße",
        "ǅ",
        "日本語",
        "a-b-c",
        "-",
        "42",
        " -7 ",
        "1.5",
        "nan",
        "inf",
        "2024-05-01",
        "1970-01-02T00:00:00Z",
        "x",
        "aa",
        "bc",
        "ﬃ",
        "İ",
        "id=42;",
        "a1b22c",
        "2024-05-17 13:45:00",
        "17/05/2024 13:45",
        "<$1>",
        "x${2}y",
    ])
    .to_string()
}

fn rand_value(r: &mut Rng, s: Scalar) -> Value {
    match s {
        Scalar::Int => Value::Int(rand_int(r)),
        Scalar::Float => Value::Float(rand_float(r)),
        Scalar::Bool => Value::Bool(r.chance(50)),
        Scalar::Str => Value::Str(rand_str(r)),
        Scalar::Timestamp if r.chance(50) => {
            // Around 1900–2100, at any microsecond.
            Value::Timestamp((r.next() % 6_311_000_000_000_000) as i64 - 2_208_988_800_000_000)
        }
        Scalar::Timestamp => Value::Timestamp(rand_int(r)),
        Scalar::Null => Value::Null,
    }
}

/// Literal arguments of the regex and time builtins (valid ones: the checker rejects others).
const PATTERNS: &[&str] = &[
    "[0-9]+",
    "^a",
    "(a)(b)?",
    "é",
    "(?i)ABC",
    "x*",
    "^$",
    "(\\d+)-(\\d+)",
    "(?P<w>[a-z]+)=(\\d+)",
];
const FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%A %j %B",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%s",
];
const UNITS: &[&str] = &[
    "second", "minute", "hour", "day", "week", "month", "quarter", "year",
];
const ZONES: &[&str] = &[
    "Europe/Oslo",
    "America/New_York",
    "Asia/Kolkata",
    "UTC",
    "Australia/Lord_Howe",
];

fn lit_str(s: &str) -> Expr {
    e(ExprKind::Lit(Value::Str(s.into())), Type::STR)
}

fn e(kind: ExprKind, ty: Type) -> Expr {
    Expr::new(kind, ty, Span::default())
}
fn bx(x: Expr) -> Box<Expr> {
    Box::new(x)
}

struct Gen<'a> {
    r: &'a mut Rng,
    row: &'a RowType,
    locals: Vec<(usize, Type)>,
    next_local: usize,
}

impl Gen<'_> {
    /// An expression of exactly type `ty`.
    fn expr(&mut self, ty: Type, depth: u32) -> Expr {
        if ty.nullable {
            return self.nullable(ty.scalar, depth);
        }
        if depth == 0 || self.r.chance(25) {
            return self.leaf(ty);
        }
        let d = depth - 1;
        // Shared forms.
        match self.r.below(12) {
            0 => {
                let c = self.expr(Type::BOOL, d);
                let t = self.expr(ty, d);
                let f = self.expr(ty, d);
                return e(ExprKind::If(bx(c), bx(t), bx(f)), ty);
            }
            1 => {
                let a = self.nullable(ty.scalar, d);
                let b = self.expr(ty, d);
                return e(ExprKind::Coalesce(bx(a), bx(b)), ty);
            }
            2 => {
                let vty = Type {
                    scalar: self.r.pick(SCALARS),
                    nullable: self.r.chance(30),
                };
                let value = self.expr(vty, d);
                let local = self.next_local;
                self.next_local += 1;
                self.locals.push((local, vty));
                let body = self.expr(ty, d);
                self.locals.pop();
                return e(
                    ExprKind::Let {
                        local,
                        value: bx(value),
                        body: bx(body),
                    },
                    ty,
                );
            }
            _ => {}
        }
        let call = |b: Builtin, args: Vec<Expr>| e(ExprKind::Call(b, args), ty);
        match ty.scalar {
            Scalar::Int => match self.r.below(11) {
                0..=2 => {
                    let op =
                        self.r
                            .pick(&[BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div, BinOp::Rem]);
                    let a = self.expr(ty, d);
                    let b = self.expr(ty, d);
                    e(ExprKind::Binary(op, bx(a), bx(b)), ty)
                }
                3 => e(ExprKind::Unary(UnOp::Neg, bx(self.expr(ty, d))), ty),
                4 => call(Builtin::Len, vec![self.expr(Type::STR, d)]),
                5 => {
                    let b = self.r.pick(&[Builtin::Abs, Builtin::Min, Builtin::Max]);
                    let n = if b == Builtin::Abs { 1 } else { 2 };
                    call(b, (0..n).map(|_| self.expr(ty, d)).collect())
                }
                6 => {
                    let s = self.r.pick(&[Type::INT, Type::FLOAT]);
                    call(Builtin::ToInt, vec![self.expr(s, d)])
                }
                7 => call(Builtin::Unix, vec![self.expr(Type::TIMESTAMP, d)]),
                8 => {
                    let b = self.r.pick(&[
                        Builtin::Year,
                        Builtin::Month,
                        Builtin::Day,
                        Builtin::Hour,
                        Builtin::Minute,
                        Builtin::Second,
                        Builtin::DayOfWeek,
                    ]);
                    call(b, vec![self.expr(Type::TIMESTAMP, d)])
                }
                9 => {
                    let (a, b) = (self.expr(Type::TIMESTAMP, d), self.expr(Type::TIMESTAMP, d));
                    call(Builtin::DiffSeconds, vec![a, b])
                }
                _ => self.leaf(ty),
            },
            Scalar::Float => match self.r.below(9) {
                0..=2 => {
                    let op =
                        self.r
                            .pick(&[BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div, BinOp::Rem]);
                    let a = self.expr(ty, d);
                    let b = self.expr(ty, d);
                    e(ExprKind::Binary(op, bx(a), bx(b)), ty)
                }
                3 => e(ExprKind::Unary(UnOp::Neg, bx(self.expr(ty, d))), ty),
                4 => e(
                    ExprKind::Cast(bx(self.expr(Type::INT, d)), Scalar::Float),
                    ty,
                ),
                5 => {
                    let b = self.r.pick(&[
                        Builtin::Round,
                        Builtin::Floor,
                        Builtin::Ceil,
                        Builtin::Sqrt,
                        Builtin::Abs,
                    ]);
                    call(b, vec![self.expr(ty, d)])
                }
                6 => {
                    let b = self.r.pick(&[Builtin::Min, Builtin::Max]);
                    call(b, vec![self.expr(ty, d), self.expr(ty, d)])
                }
                7 => {
                    let s = self.r.pick(&[Type::INT, Type::FLOAT]);
                    call(Builtin::ToFloat, vec![self.expr(s, d)])
                }
                _ => self.leaf(ty),
            },
            Scalar::Bool => match self.r.below(9) {
                0..=2 => {
                    let s = Type::new(self.r.pick(SCALARS));
                    let op = self.r.pick(&[
                        BinOp::Eq,
                        BinOp::Ne,
                        BinOp::Lt,
                        BinOp::Le,
                        BinOp::Gt,
                        BinOp::Ge,
                    ]);
                    let a = self.expr(s, d);
                    let b = self.expr(s, d);
                    e(ExprKind::Binary(op, bx(a), bx(b)), ty)
                }
                3 => {
                    let op = self.r.pick(&[BinOp::And, BinOp::Or]);
                    let a = self.expr(ty, d);
                    let b = self.expr(ty, d);
                    e(ExprKind::Binary(op, bx(a), bx(b)), ty)
                }
                4 => e(ExprKind::Unary(UnOp::Not, bx(self.expr(ty, d))), ty),
                5 => {
                    let s = self.r.pick(SCALARS);
                    let a = self.nullable(s, d);
                    if self.r.chance(50) {
                        e(ExprKind::IsNull(bx(a)), ty)
                    } else {
                        call(Builtin::IsNull, vec![a])
                    }
                }
                6 => {
                    let b =
                        self.r
                            .pick(&[Builtin::Contains, Builtin::StartsWith, Builtin::EndsWith]);
                    call(b, vec![self.expr(Type::STR, d), self.expr(Type::STR, d)])
                }
                7 => {
                    let p = lit_str(self.r.pick(PATTERNS));
                    call(Builtin::Matches, vec![self.expr(Type::STR, d), p])
                }
                _ => self.leaf(ty),
            },
            Scalar::Str => match self.r.below(10) {
                0 => {
                    let b = self
                        .r
                        .pick(&[Builtin::Upper, Builtin::Lower, Builtin::Trim]);
                    call(b, vec![self.expr(ty, d)])
                }
                1 => {
                    let a = self.expr(ty, d);
                    let s = self.small_int(d);
                    let n = self.small_int(d);
                    call(Builtin::Substr, vec![a, s, n])
                }
                2 => call(Builtin::Replace, (0..3).map(|_| self.expr(ty, d)).collect()),
                3 => {
                    let n = 1 + self.r.below(3);
                    call(Builtin::Concat, (0..n).map(|_| self.expr(ty, d)).collect())
                }
                4 | 5 => {
                    let s = Type::new(self.r.pick(SCALARS));
                    call(Builtin::ToStr, vec![self.expr(s, d)])
                }
                6 => {
                    let p = lit_str(self.r.pick(PATTERNS));
                    let (a, w) = (self.expr(ty, d), self.expr(ty, d));
                    call(Builtin::ReplaceAll, vec![a, p, w])
                }
                7 => {
                    let mut args = vec![self.expr(Type::TIMESTAMP, d)];
                    if self.r.chance(70) {
                        args.push(lit_str(self.r.pick(FORMATS)));
                    }
                    call(Builtin::FormatTimestamp, args)
                }
                _ => self.leaf(ty),
            },
            Scalar::Timestamp => match self.r.below(6) {
                0 => call(Builtin::FromUnix, vec![self.expr(Type::INT, d)]),
                1 => {
                    let u = lit_str(self.r.pick(UNITS));
                    call(Builtin::DateTrunc, vec![u, self.expr(ty, d)])
                }
                2 => {
                    let b = self.r.pick(&[Builtin::AddSeconds, Builtin::AddDays]);
                    call(b, vec![self.expr(ty, d), self.small_int(d)])
                }
                3 => {
                    let b = self.r.pick(&[Builtin::UtcToLocal, Builtin::LocalToUtc]);
                    let z = lit_str(self.r.pick(ZONES));
                    call(b, vec![self.expr(ty, d), z])
                }
                _ => self.leaf(ty),
            },
            Scalar::Null => self.leaf(ty),
        }
    }

    fn small_int(&mut self, d: u32) -> Expr {
        if self.r.chance(70) {
            e(
                ExprKind::Lit(Value::Int(self.r.below(7) as i64 - 1)),
                Type::INT,
            )
        } else {
            self.expr(Type::INT, d)
        }
    }

    /// An expression of type `s?` (that may really be null).
    fn nullable(&mut self, s: Scalar, depth: u32) -> Expr {
        let ty = Type::nullable(s);
        let d = depth.saturating_sub(1);
        match self.r.below(6) {
            0 => e(ExprKind::Lit(Value::Null), ty),
            1 | 2 => {
                if let Some(x) = self.field_or_local(ty) {
                    return x;
                }
                self.nullable(s, d)
            }
            3 if matches!(s, Scalar::Int | Scalar::Float | Scalar::Timestamp) && depth > 0 => {
                let b = match s {
                    Scalar::Int => Builtin::ParseInt,
                    Scalar::Float => Builtin::ParseFloat,
                    _ => Builtin::ParseTimestamp,
                };
                let mut args = vec![self.expr(Type::STR, d)];
                if b == Builtin::ParseTimestamp && self.r.chance(50) {
                    args.push(lit_str(self.r.pick(FORMATS)));
                }
                e(ExprKind::Call(b, args), ty)
            }
            3 if s == Scalar::Str && depth > 0 => {
                let p = lit_str(self.r.pick(PATTERNS));
                let (a, g) = (self.expr(Type::STR, d), self.small_int(d));
                e(ExprKind::Call(Builtin::Extract, vec![a, p, g]), ty)
            }
            _ => {
                let c = self.expr(Type::BOOL, d);
                let (t, f) = if self.r.chance(50) {
                    (
                        self.expr(Type::new(s), d),
                        e(ExprKind::Lit(Value::Null), ty),
                    )
                } else {
                    (self.nullable(s, d), self.expr(Type::new(s), d))
                };
                e(ExprKind::If(bx(c), bx(t), bx(f)), ty)
            }
        }
    }

    fn field_or_local(&mut self, ty: Type) -> Option<Expr> {
        let mut cands: Vec<Expr> = self
            .row
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.ty == ty)
            .map(|(i, _)| e(ExprKind::Field(i), ty))
            .collect();
        cands.extend(
            self.locals
                .iter()
                .filter(|(_, t)| *t == ty)
                .map(|(l, _)| e(ExprKind::Local(*l), ty)),
        );
        if cands.is_empty() {
            None
        } else {
            let k = self.r.below(cands.len());
            Some(cands.swap_remove(k))
        }
    }

    fn leaf(&mut self, ty: Type) -> Expr {
        if self.r.chance(60)
            && let Some(x) = self.field_or_local(ty)
        {
            return x;
        }
        e(ExprKind::Lit(rand_value(self.r, ty.scalar)), ty)
    }
}

fn input_type() -> RowType {
    let mut fields = Vec::new();
    for (k, s) in SCALARS.iter().enumerate() {
        for nullable in [false, true] {
            fields.push(Field {
                name: format!("c{k}{}", if nullable { "n" } else { "" }),
                ty: Type {
                    scalar: *s,
                    nullable,
                },
            });
        }
    }
    RowType::new(fields)
}

fn rand_rows(r: &mut Rng, t: &RowType, n: usize) -> Vec<Vec<Value>> {
    (0..n)
        .map(|_| {
            t.fields
                .iter()
                .map(|f| {
                    if f.ty.nullable && r.chance(30) {
                        Value::Null
                    } else {
                        rand_value(r, f.ty.scalar)
                    }
                })
                .collect()
        })
        .collect()
}

fn rand_chain(r: &mut Rng, input: &RowType) -> Vec<FusedStep> {
    rand_chain_of(r, input, 40)
}

/// A chain of 1–3 steps, each a filter with probability `filter_pct`, else a map.
fn rand_chain_of(r: &mut Rng, input: &RowType, filter_pct: u64) -> Vec<FusedStep> {
    let nsteps = 1 + r.below(3);
    let mut row = input.clone();
    let mut steps = Vec::new();
    for _ in 0..nsteps {
        let mut g = Gen {
            r: &mut *r,
            row: &row,
            locals: Vec::new(),
            next_local: 0,
        };
        if g.r.chance(filter_pct) {
            let depth = 1 + g.r.below(4) as u32;
            let p = g.expr(Type::BOOL, depth);
            steps.push(FusedStep {
                step: Step::Filter(p),
                policy: ErrorPolicy::default(),
                row: row.clone(),
            });
        } else {
            let n = 1 + g.r.below(5);
            let mut exprs = Vec::new();
            let mut fields = Vec::new();
            for k in 0..n {
                let ty = Type {
                    scalar: g.r.pick(SCALARS),
                    nullable: g.r.chance(30),
                };
                let depth = 1 + g.r.below(4) as u32;
                exprs.push(g.expr(ty, depth));
                fields.push(Field {
                    name: format!("m{k}"),
                    ty,
                });
            }
            row = RowType::new(fields);
            steps.push(FusedStep {
                step: Step::Map(exprs),
                policy: ErrorPolicy::default(),
                row: row.clone(),
            });
        }
    }
    steps
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        _ => a == b,
    }
}

/// The first row where two equally long row lists differ (`same_value` per value).
fn first_difference(a: &[Vec<Value>], b: &[Vec<Value>]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x.len() != y.len() || x.iter().zip(y).any(|(u, v)| !same_value(u, v)))
}

fn run(k: &dyn Kernel, input: &Batch, out_cols: usize) -> (Batch, Vec<RowError>) {
    let mut out = Batch::new(out_cols);
    let mut errs = Vec::new();
    k.run(input, &mut out, &mut errs);
    (out, errs)
}

/// Runs the JIT, the interpreter, and the interpreter on the *unfolded* chain (so constant
/// folding is checked too) over `rows` (twice through the same output batch, to test
/// appending) and compares everything.
fn check_agree(input: &RowType, steps: &[FusedStep], rows: &[Vec<Value>]) -> Result<(), String> {
    let jit = build_uncached(input, steps, Engine::Jit);
    if jit.describe() != "jit" {
        return Err(format!("JIT fell back: {}", jit.describe()));
    }
    let interp = build_uncached(input, steps, Engine::Interpreter);
    let unfolded = InterpKernel::new(input.clone(), steps.to_vec(), "unfolded".into());
    let out_row = steps.last().map_or(input, |s| &s.row);
    let batch = Batch::from_values(input, rows);
    let twice = |k: &dyn Kernel| {
        let (mut o, mut e) = run(k, &batch, out_row.len());
        k.run(&batch, &mut o, &mut e);
        (o.to_values(out_row), e)
    };
    let (jv, je) = twice(jit.as_ref());
    // A chain of filters only also runs sharing its input's strings (as the runtime runs it):
    // the same rows and errors; any other chain declines and writes nothing.
    let filters_only = steps.iter().all(|s| matches!(s.step, Step::Filter(_)));
    let shared_input = Arc::new(batch.clone());
    let (once, once_errs) = {
        let (o, e) = run(jit.as_ref(), &batch, out_row.len());
        (o.to_values(out_row), e)
    };
    for (name, k) in [
        ("jit", jit.as_ref()),
        ("interpreter", interp.as_ref()),
        ("unfolded interpreter", &unfolded),
    ] {
        let mut o = Batch::new(out_row.len());
        let mut e = Vec::new();
        let shared = k.run_shared(&shared_input, &mut o, &mut e);
        if shared != filters_only {
            return Err(format!(
                "{name}: run_shared gave {shared} for filters_only {filters_only}"
            ));
        }
        if !shared && (o.rows != 0 || !e.is_empty()) {
            return Err(format!(
                "{name}: run_shared declined but wrote rows or errors"
            ));
        }
        if shared {
            if !o.arena.is_shared() && o.rows > 0 {
                return Err(format!("{name}: run_shared copied the strings"));
            }
            let sv = o.to_values(out_row);
            if e != once_errs || sv.len() != once.len() {
                return Err(format!(
                    "{name}: run_shared gives {} rows, errors {e:?}; run {} rows, errors {once_errs:?}",
                    sv.len(),
                    once.len()
                ));
            }
            if let Some(k) = first_difference(&sv, &once) {
                let (a, b) = (&sv[k], &once[k]);
                return Err(format!(
                    "{name}: shared row {k} differs:\n {a:?}\n run {b:?}"
                ));
            }
        }
    }
    for (name, k) in [
        ("interpreter", interp.as_ref()),
        ("unfolded interpreter", &unfolded),
    ] {
        let (iv, ie) = twice(k);
        if je != ie {
            return Err(format!("errors differ:\n jit {je:?}\n {name} {ie:?}"));
        }
        if jv.len() != iv.len() {
            return Err(format!(
                "row counts differ: jit {} {name} {}",
                jv.len(),
                iv.len()
            ));
        }
        if let Some(k) = first_difference(&jv, &iv) {
            let (a, b) = (&jv[k], &iv[k]);
            return Err(format!("row {k} differs:\n jit {a:?}\n {name} {b:?}"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 800, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn jit_agrees_with_interpreter(seed in any::<u64>()) {
        let mut r = Rng(seed);
        let input = input_type();
        let steps = rand_chain(&mut r, &input);
        let rows = rand_rows(&mut r, &input, 40);
        if let Err(msg) = check_agree(&input, &steps, &rows) {
            prop_assert!(false, "seed {seed}: {msg}\nsteps: {steps:#?}");
        }
    }

    /// Chains of filters only, which the runtime runs with `run_shared` (kept rows' words
    /// moved, the input's strings shared).
    #[test]
    fn filter_chains_agree_and_share_their_input(seed in any::<u64>()) {
        let mut r = Rng(seed);
        let input = input_type();
        let steps = rand_chain_of(&mut r, &input, 100);
        let rows = rand_rows(&mut r, &input, 40);
        if let Err(msg) = check_agree(&input, &steps, &rows) {
            prop_assert!(false, "seed {seed}: {msg}\nsteps: {steps:#?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Edge cases, one expression at a time, over a one-row input `{ i: int, f: float, s: str,
// n: int? }` holding (7, 2.5, "héllo", null). Both engines must agree; the result is returned.

fn one_row() -> (RowType, Vec<Vec<Value>>) {
    let f = |n: &str, ty| Field { name: n.into(), ty };
    (
        RowType::new(vec![
            f("i", Type::INT),
            f("f", Type::FLOAT),
            f("s", Type::STR),
            f("n", Type::nullable(Scalar::Int)),
        ]),
        vec![vec![
            Value::Int(7),
            Value::Float(2.5),
            Value::Str("héllo".into()),
            Value::Null,
        ]],
    )
}

fn eval1(x: Expr) -> Result<Value, RowErrorCode> {
    let (input, rows) = one_row();
    let ty = x.ty;
    let steps = vec![FusedStep {
        step: Step::Map(vec![x]),
        policy: ErrorPolicy::default(),
        row: RowType::new(vec![Field {
            name: "x".into(),
            ty,
        }]),
    }];
    if let Err(m) = check_agree(&input, &steps, &rows) {
        panic!("{m}\n{steps:#?}");
    }
    let k = build_uncached(&input, &steps, Engine::Jit);
    let (out, errs) = run(k.as_ref(), &Batch::from_values(&input, &rows), 1);
    match errs.first() {
        Some(err) => Err(err.code),
        None => Ok(out.get_value(0, 0, ty.scalar)),
    }
}

fn int(i: i64) -> Expr {
    e(ExprKind::Lit(Value::Int(i)), Type::INT)
}
fn flt(x: f64) -> Expr {
    e(ExprKind::Lit(Value::Float(x)), Type::FLOAT)
}
fn st(s: &str) -> Expr {
    e(ExprKind::Lit(Value::Str(s.into())), Type::STR)
}
fn fld(i: usize) -> Expr {
    let (t, _) = one_row();
    e(ExprKind::Field(i), t.fields[i].ty)
}
fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    let ty = match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => a.ty,
        _ => Type::BOOL,
    };
    e(ExprKind::Binary(op, bx(a), bx(b)), ty)
}
fn call(b: Builtin, args: Vec<Expr>, ty: Type) -> Expr {
    e(ExprKind::Call(b, args), ty)
}
/// Field `i` (7) minus 7 plus `k`: a run-time value the folder cannot see.
fn rt(k: i64) -> Expr {
    bin(BinOp::Add, bin(BinOp::Sub, fld(0), int(7)), int(k))
}
fn rtf(x: f64) -> Expr {
    bin(BinOp::Add, bin(BinOp::Sub, fld(1), flt(2.5)), flt(x))
}

use RowErrorCode::*;

#[test]
fn int_arithmetic_edges() {
    assert_eq!(eval1(bin(BinOp::Div, rt(i64::MIN), rt(-1))), Err(Overflow));
    // The remainder fits (it is 0); only the quotient overflows (issue 16).
    assert_eq!(
        eval1(bin(BinOp::Rem, rt(i64::MIN), rt(-1))),
        Ok(Value::Int(0))
    );
    assert_eq!(eval1(bin(BinOp::Div, rt(7), rt(0))), Err(DivisionByZero));
    assert_eq!(eval1(bin(BinOp::Rem, rt(7), rt(0))), Err(DivisionByZero));
    assert_eq!(eval1(bin(BinOp::Div, rt(-7), rt(2))), Ok(Value::Int(-3)));
    assert_eq!(eval1(bin(BinOp::Rem, rt(-7), rt(2))), Ok(Value::Int(-1)));
    assert_eq!(eval1(bin(BinOp::Add, rt(i64::MAX), rt(1))), Err(Overflow));
    assert_eq!(eval1(bin(BinOp::Sub, rt(i64::MIN), rt(1))), Err(Overflow));
    assert_eq!(eval1(bin(BinOp::Mul, rt(i64::MAX), rt(2))), Err(Overflow));
    assert_eq!(
        eval1(e(ExprKind::Unary(UnOp::Neg, bx(rt(i64::MIN))), Type::INT)),
        Err(Overflow)
    );
    assert_eq!(
        eval1(call(Builtin::Abs, vec![rt(i64::MIN)], Type::INT)),
        Err(Overflow)
    );
    assert_eq!(
        eval1(call(Builtin::Abs, vec![rt(-5)], Type::INT)),
        Ok(Value::Int(5))
    );
    assert_eq!(
        eval1(call(Builtin::Min, vec![rt(-5), rt(3)], Type::INT)),
        Ok(Value::Int(-5))
    );
    assert_eq!(
        eval1(call(
            Builtin::FromUnix,
            vec![rt(i64::MAX / 2)],
            Type::TIMESTAMP
        )),
        Err(Overflow)
    );
    assert_eq!(
        eval1(call(
            Builtin::Unix,
            vec![e(ExprKind::Lit(Value::Timestamp(-1)), Type::TIMESTAMP)],
            Type::INT
        )),
        Ok(Value::Int(-1))
    );
}

#[test]
fn float_edges() {
    assert_eq!(
        eval1(bin(BinOp::Div, rtf(1.0), rtf(0.0))),
        Err(DivisionByZero)
    );
    assert_eq!(
        eval1(bin(BinOp::Div, rtf(1.0), rtf(-0.0))),
        Err(DivisionByZero)
    );
    assert_eq!(
        eval1(bin(BinOp::Rem, rtf(1.0), rtf(0.0))),
        Err(DivisionByZero)
    );
    assert_eq!(
        eval1(bin(BinOp::Rem, rtf(5.5), rtf(2.0))),
        Ok(Value::Float(1.5))
    );
    assert_eq!(
        eval1(bin(BinOp::Eq, rtf(f64::NAN), rtf(f64::NAN))),
        Ok(Value::Bool(false))
    );
    assert_eq!(
        eval1(bin(BinOp::Ne, rtf(f64::NAN), rtf(f64::NAN))),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        eval1(bin(BinOp::Lt, rtf(f64::NAN), rtf(1.0))),
        Ok(Value::Bool(false))
    );
    let m = eval1(call(
        Builtin::Min,
        vec![rtf(f64::NAN), rtf(1.0)],
        Type::FLOAT,
    ));
    assert!(matches!(m, Ok(Value::Float(x)) if x.is_nan()));
    let z = |v| match v {
        Ok(Value::Float(x)) => x.to_bits(),
        _ => 1,
    };
    assert_eq!(
        z(eval1(
            call(Builtin::Min, vec![flt(0.0), fld(1)], Type::FLOAT).clone()
        )),
        0
    );
    assert_eq!(
        z(eval1(call(
            Builtin::Min,
            vec![flt(-0.0), flt(0.0)],
            Type::FLOAT
        ))),
        (-0.0f64).to_bits()
    );
    assert_eq!(
        z(eval1(call(
            Builtin::Max,
            vec![flt(-0.0), flt(0.0)],
            Type::FLOAT
        ))),
        0
    );
    assert_eq!(
        eval1(call(Builtin::ToInt, vec![rtf(f64::NAN)], Type::INT)),
        Err(Conversion)
    );
    assert_eq!(
        eval1(call(Builtin::ToInt, vec![rtf(9.3e18)], Type::INT)),
        Err(Conversion)
    );
    assert_eq!(
        eval1(call(Builtin::ToInt, vec![rtf(-3.9)], Type::INT)),
        Ok(Value::Int(-3))
    );
    assert_eq!(
        eval1(call(Builtin::Round, vec![rtf(2.5)], Type::FLOAT)),
        Ok(Value::Float(3.0))
    );
    assert_eq!(
        eval1(call(Builtin::Round, vec![rtf(-2.5)], Type::FLOAT)),
        Ok(Value::Float(-3.0))
    );
    assert_eq!(
        eval1(call(Builtin::Floor, vec![rtf(-1.5)], Type::FLOAT)),
        Ok(Value::Float(-2.0))
    );
    assert_eq!(
        eval1(call(Builtin::Ceil, vec![rtf(1.2)], Type::FLOAT)),
        Ok(Value::Float(2.0))
    );
    assert_eq!(
        eval1(call(Builtin::Sqrt, vec![rtf(9.0)], Type::FLOAT)),
        Ok(Value::Float(3.0))
    );
    assert_eq!(
        eval1(e(ExprKind::Cast(bx(rt(3)), Scalar::Float), Type::FLOAT)),
        Ok(Value::Float(3.0))
    );
}

#[test]
fn string_builtins() {
    let s = |x: &str| Ok(Value::Str(x.into()));
    assert_eq!(
        eval1(call(Builtin::Len, vec![fld(2)], Type::INT)),
        Ok(Value::Int(5))
    );
    assert_eq!(
        eval1(call(Builtin::Upper, vec![st("straße")], Type::STR)),
        s("STRASSE")
    );
    assert_eq!(
        eval1(call(Builtin::Upper, vec![fld(2)], Type::STR)),
        s("HÉLLO")
    );
    assert_eq!(
        eval1(call(Builtin::Lower, vec![st("ÉA")], Type::STR)),
        s("éa")
    );
    assert_eq!(
        eval1(call(Builtin::Trim, vec![st("  a b ")], Type::STR)),
        s("a b")
    );
    assert_eq!(
        eval1(call(Builtin::Substr, vec![fld(2), rt(1), rt(3)], Type::STR)),
        s("éll")
    );
    assert_eq!(
        eval1(call(
            Builtin::Substr,
            vec![fld(2), rt(-1), rt(3)],
            Type::STR
        )),
        Err(InvalidArgument)
    );
    assert_eq!(
        eval1(call(
            Builtin::Replace,
            vec![st("a-b-c"), st("-"), fld(2)],
            Type::STR
        )),
        s("ahéllobhélloc")
    );
    assert_eq!(
        eval1(call(
            Builtin::Replace,
            vec![fld(2), st(""), st("x")],
            Type::STR
        )),
        s("héllo")
    );
    assert_eq!(
        eval1(call(
            Builtin::Concat,
            vec![fld(2), st("-"), fld(2)],
            Type::STR
        )),
        s("héllo-héllo")
    );
    assert_eq!(
        eval1(call(Builtin::Contains, vec![fld(2), st("éll")], Type::BOOL)),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        eval1(call(
            Builtin::StartsWith,
            vec![fld(2), st("hé")],
            Type::BOOL
        )),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        eval1(call(Builtin::EndsWith, vec![fld(2), st("x")], Type::BOOL)),
        Ok(Value::Bool(false))
    );
    assert_eq!(
        eval1(bin(BinOp::Lt, st("B"), fld(2))),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        eval1(bin(BinOp::Gt, fld(2), st("hz"))),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        eval1(bin(BinOp::Eq, fld(2), st("héllo"))),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        eval1(call(Builtin::ToStr, vec![fld(1)], Type::STR)),
        s("2.5")
    );
    assert_eq!(
        eval1(call(Builtin::ToStr, vec![rt(-12)], Type::STR)),
        s("-12")
    );
    assert_eq!(
        eval1(call(
            Builtin::ToStr,
            vec![bin(BinOp::Gt, fld(0), int(1))],
            Type::STR
        )),
        s("true")
    );
    assert_eq!(
        eval1(call(
            Builtin::ToStr,
            vec![e(ExprKind::Lit(Value::Timestamp(0)), Type::TIMESTAMP)],
            Type::STR
        )),
        s("1970-01-01T00:00:00Z")
    );
    let pi = |x: Expr| call(Builtin::ParseInt, vec![x], Type::nullable(Scalar::Int));
    assert_eq!(eval1(pi(bin_str_concat(" 42 "))), Ok(Value::Int(42)));
    assert_eq!(eval1(pi(fld(2))), Ok(Value::Null));
    let pf = call(
        Builtin::ParseFloat,
        vec![bin_str_concat("1.5")],
        Type::nullable(Scalar::Float),
    );
    assert_eq!(eval1(pf), Ok(Value::Float(1.5)));
    let pt = call(
        Builtin::ParseTimestamp,
        vec![bin_str_concat("1970-01-02")],
        Type::nullable(Scalar::Timestamp),
    );
    assert_eq!(eval1(pt), Ok(Value::Timestamp(86_400_000_000)));
}

/// A run-time string equal to `x` (concat with an empty substring of a field).
fn bin_str_concat(x: &str) -> Expr {
    call(
        Builtin::Concat,
        vec![
            st(x),
            call(Builtin::Substr, vec![fld(2), rt(0), rt(0)], Type::STR),
        ],
        Type::STR,
    )
}

#[test]
fn short_circuit_and_lazy_branches_hide_errors() {
    let boom = || bin(BinOp::Eq, bin(BinOp::Div, fld(0), rt(0)), int(1));
    let f = bin(BinOp::Gt, fld(0), int(100));
    let t = bin(BinOp::Gt, fld(0), int(1));
    assert_eq!(
        eval1(bin(BinOp::And, f.clone(), boom())),
        Ok(Value::Bool(false))
    );
    assert_eq!(
        eval1(bin(BinOp::Or, t.clone(), boom())),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        eval1(bin(BinOp::And, t.clone(), boom())),
        Err(DivisionByZero)
    );
    let iff = e(
        ExprKind::If(bx(t), bx(int(1)), bx(bin(BinOp::Div, fld(0), rt(0)))),
        Type::INT,
    );
    assert_eq!(eval1(iff), Ok(Value::Int(1)));
    let nn = e(
        ExprKind::Coalesce(
            bx(e(ExprKind::Lit(Value::Int(5)), Type::nullable(Scalar::Int))),
            bx(bin(BinOp::Div, fld(0), rt(0))),
        ),
        Type::INT,
    );
    assert_eq!(eval1(nn), Ok(Value::Int(5)));
    let null_side = e(
        ExprKind::Coalesce(bx(fld(3)), bx(bin(BinOp::Div, fld(0), rt(0)))),
        Type::INT,
    );
    assert_eq!(eval1(null_side), Err(DivisionByZero));
    assert_eq!(
        eval1(e(ExprKind::IsNull(bx(fld(3))), Type::BOOL)),
        Ok(Value::Bool(true))
    );
}

#[test]
fn constant_division_by_zero_fails_every_row_not_the_compiler() {
    let (input, _) = one_row();
    let rows: Vec<Vec<Value>> = (0..3)
        .map(|k| {
            vec![
                Value::Int(k),
                Value::Float(0.0),
                Value::Str(String::new()),
                Value::Int(k),
            ]
        })
        .collect();
    let steps = vec![FusedStep {
        step: Step::Filter(bin(BinOp::Eq, bin(BinOp::Div, int(1), int(0)), int(1))),
        policy: ErrorPolicy::default(),
        row: input.clone(),
    }];
    check_agree(&input, &steps, &rows).unwrap();
    let k = build_uncached(&input, &steps, Engine::Jit);
    assert_eq!(k.describe(), "jit");
    let (out, errs) = run(k.as_ref(), &Batch::from_values(&input, &rows), 4);
    assert_eq!(out.rows, 0);
    let want: Vec<RowError> = (0..3)
        .map(|row| RowError {
            row,
            step: 0,
            code: DivisionByZero,
        })
        .collect();
    assert_eq!(errs, want);
}

#[test]
fn unsupported_construct_falls_back_visibly_and_agrees() {
    // Arithmetic on a nullable operand never comes from the checker; the JIT declines it.
    let (input, rows) = one_row();
    let x = e(
        ExprKind::Binary(BinOp::Add, bx(fld(3)), bx(int(1))),
        Type::nullable(Scalar::Int),
    );
    let steps = vec![FusedStep {
        step: Step::Map(vec![x]),
        policy: ErrorPolicy::default(),
        row: RowType::new(vec![Field {
            name: "x".into(),
            ty: Type::nullable(Scalar::Int),
        }]),
    }];
    let k = build_uncached(&input, &steps, Engine::Jit);
    assert!(
        k.describe().starts_with("interpreter: JIT fallback"),
        "{}",
        k.describe()
    );
    assert_eq!(k.compile_micros(), None);
    let (out, errs) = run(k.as_ref(), &Batch::from_values(&input, &rows), 1);
    assert!(errs.is_empty());
    assert_eq!(out.get_value(0, 0, Scalar::Int), Value::Null);
}

#[test]
fn cache_ignores_spans_and_kernels_run_on_many_threads() {
    let input = flow::codegen::demo::trip_row();
    let steps = flow::codegen::demo::trips_steps();
    let mut moved = steps.clone();
    if let Step::Filter(p) = &mut moved[0].step {
        p.span = Span::new(flow::span::FileId(3), 10, 20);
    }
    let a = flow::codegen::build_kernel(&input, &steps, Engine::Jit);
    let b = flow::codegen::build_kernel(&input, &moved, Engine::Jit);
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    let c = flow::codegen::build_kernel(&input, &steps, Engine::Interpreter);
    assert!(!std::sync::Arc::ptr_eq(&a, &c));
    println!(
        "trips kernel compile time: {} µs (debug build)",
        a.compile_micros().unwrap_or(0)
    );

    let mut r = Rng(7);
    let rows = rand_rows(&mut r, &input, 500);
    check_agree(&input, &steps, &rows).unwrap();
    let batch = Batch::from_values(&input, &rows);
    let (want, want_errs) = run(c.as_ref(), &batch, 5);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    let (out, errs) = run(a.as_ref(), &batch, 5);
                    assert_eq!(errs, want_errs);
                    assert_eq!(out.to_values(&steps[1].row), want.to_values(&steps[1].row));
                }
            });
        }
    });
}

#[test]
fn empty_chain_copies_rows_and_bad_string_slots_read_as_empty() {
    let (input, mut rows) = one_row();
    rows.push(vec![
        Value::Int(-1),
        Value::Float(f64::NAN),
        Value::Str("ok".into()),
        Value::Int(3),
    ]);
    let mut batch = Batch::from_values(&input, &rows);
    // Corrupt row 0's string slot: offset far past the arena. `get_str` reads it as "".
    let slot = batch.layout.slot(2);
    batch.words[slot] = (1u64 << 40) | 5;
    for engine in [Engine::Jit, Engine::Interpreter] {
        let k = build_uncached(&input, &[], engine);
        let (out, errs) = run(k.as_ref(), &batch, 4);
        assert!(errs.is_empty());
        let got = out.to_values(&input);
        assert_eq!(got.len(), 2, "{engine:?}");
        assert_eq!(got[0][2], Value::Str(String::new()), "{engine:?}");
        assert_eq!(got[1][2], Value::Str("ok".into()), "{engine:?}");
        assert_eq!(got[1][3], Value::Int(3), "{engine:?}");
        // Sharing the input's strings: the bad slot is kept as it is and still reads as "".
        let shared = Arc::new(batch.clone());
        let mut out = Batch::new(4);
        let mut errs = Vec::new();
        assert!(k.run_shared(&shared, &mut out, &mut errs), "{engine:?}");
        assert!(errs.is_empty());
        // (Compared as text: the row holds a NaN.)
        let shared_rows = format!("{:?}", out.to_values(&input));
        assert_eq!(shared_rows, format!("{got:?}"), "{engine:?}");
    }
}

#[test]
fn mismatched_output_layout_still_gives_correct_rows() {
    // A caller passing an output batch with another column count gets the interpreter path
    // (no out-of-bounds writes), which ignores extra columns.
    let (input, rows) = one_row();
    let k = build_uncached(&input, &[], Engine::Jit);
    let mut out = Batch::new(6);
    let mut errs = Vec::new();
    k.run(&Batch::from_values(&input, &rows), &mut out, &mut errs);
    assert_eq!(out.rows, 1);
    assert_eq!(out.get_value(0, 0, Scalar::Int), Value::Int(7));
    assert_eq!(out.get_value(0, 4, Scalar::Int), Value::Null);
}

#[test]
fn wide_rows_use_several_null_words() {
    let input = RowType::new(
        (0..70)
            .map(|k| Field {
                name: format!("c{k}"),
                ty: Type::nullable(if k % 2 == 0 { Scalar::Int } else { Scalar::Str }),
            })
            .collect(),
    );
    let mut r = Rng(99);
    let rows = rand_rows(&mut r, &input, 200);
    let ni = Type::nullable(Scalar::Int);
    let keep = e(
        ExprKind::Unary(
            UnOp::Not,
            bx(e(
                ExprKind::IsNull(bx(e(ExprKind::Field(66), ni))),
                Type::BOOL,
            )),
        ),
        Type::BOOL,
    );
    let out = RowType::new((0..68).rev().map(|k| input.fields[k].clone()).collect());
    let exprs = (0..68)
        .rev()
        .map(|k| e(ExprKind::Field(k), input.fields[k].ty))
        .collect();
    let steps = vec![
        FusedStep {
            step: Step::Filter(keep),
            policy: ErrorPolicy::default(),
            row: input.clone(),
        },
        FusedStep {
            step: Step::Map(exprs),
            policy: ErrorPolicy::default(),
            row: out.clone(),
        },
    ];
    check_agree(&input, &steps, &rows).unwrap();
    // The filter alone: rows of 72 words, copied by the helper rather than inline.
    check_agree(&input, &steps[..1], &rows).unwrap();
    let k = build_uncached(&input, &steps, Engine::Jit);
    let (o, _) = run(k.as_ref(), &Batch::from_values(&input, &rows), 68);
    let kept: Vec<&Vec<Value>> = rows.iter().filter(|r| r[66] != Value::Null).collect();
    assert_eq!(o.rows, kept.len());
    let vals = o.to_values(&out);
    for (got, want) in vals.iter().zip(kept) {
        assert_eq!(got[0], want[67]);
        assert_eq!(got[67], want[0]);
    }
}

#[test]
fn any_nonzero_bool_word_is_true() {
    let input = RowType::new(vec![Field {
        name: "b".into(),
        ty: Type::BOOL,
    }]);
    let mut batch =
        Batch::from_values(&input, &[vec![Value::Bool(true)], vec![Value::Bool(false)]]);
    let slot = batch.layout.slot(0);
    batch.words[slot] = 256; // low byte zero, word non-zero: `get_bool` says true
    let not = e(
        ExprKind::Unary(UnOp::Not, bx(e(ExprKind::Field(0), Type::BOOL))),
        Type::BOOL,
    );
    let steps = vec![FusedStep {
        step: Step::Filter(not),
        policy: ErrorPolicy::default(),
        row: input.clone(),
    }];
    for engine in [Engine::Jit, Engine::Interpreter] {
        let k = build_uncached(&input, &steps, engine);
        let (out, _) = run(k.as_ref(), &batch, 1);
        assert_eq!(
            out.to_values(&input),
            vec![vec![Value::Bool(false)]],
            "{engine:?}"
        );
    }
}

/// A run-time timestamp `secs` seconds after the epoch.
fn rts(secs: i64) -> Expr {
    call(Builtin::FromUnix, vec![rt(secs)], Type::TIMESTAMP)
}

#[test]
fn regex_builtins() {
    let s = |x: &str| Ok(Value::Str(x.into()));
    let m = |p: &str| eval1(call(Builtin::Matches, vec![fld(2), st(p)], Type::BOOL));
    assert_eq!(m("^h.llo$"), Ok(Value::Bool(true)));
    assert_eq!(m("(?i)HÉL"), Ok(Value::Bool(true)));
    assert_eq!(m("^x"), Ok(Value::Bool(false)));
    let x = |p: &str, g: Expr| {
        eval1(call(
            Builtin::Extract,
            vec![fld(2), st(p), g],
            Type::nullable(Scalar::Str),
        ))
    };
    assert_eq!(x("h(é)(l+)", rt(2)), s("ll"));
    assert_eq!(x("h(é)(l+)", rt(0)), s("héll"));
    assert_eq!(x("h(x)?é", rt(1)), Ok(Value::Null));
    assert_eq!(x("z(.)", rt(1)), Ok(Value::Null));
    assert_eq!(x("h(é)", rt(2)), Err(InvalidArgument));
    assert_eq!(x("h(é)", rt(-1)), Err(InvalidArgument));
    let r = |p: &str, w: &str| {
        eval1(call(
            Builtin::ReplaceAll,
            vec![fld(2), st(p), st(w)],
            Type::STR,
        ))
    };
    assert_eq!(r("l", "L"), s("héLLo"));
    assert_eq!(r("(h)(é)", "$2$1"), s("éhllo"));
    assert_eq!(r("q", "-"), s("héllo"));
    assert_eq!(r("", "."), s(".h.é.l.l.o."));
}

#[test]
fn time_builtins() {
    let ts = |t: i64| Ok(Value::Timestamp(t * 1_000_000));
    let t = 1_715_953_530; // 2024-05-17T13:45:30Z, a Friday
    let part = |b| eval1(call(b, vec![rts(t)], Type::INT));
    assert_eq!(part(Builtin::Year), Ok(Value::Int(2024)));
    assert_eq!(part(Builtin::Month), Ok(Value::Int(5)));
    assert_eq!(part(Builtin::Day), Ok(Value::Int(17)));
    assert_eq!(part(Builtin::Hour), Ok(Value::Int(13)));
    assert_eq!(part(Builtin::Minute), Ok(Value::Int(45)));
    assert_eq!(part(Builtin::Second), Ok(Value::Int(30)));
    assert_eq!(part(Builtin::DayOfWeek), Ok(Value::Int(5)));
    let tr = |u: &str| {
        eval1(call(
            Builtin::DateTrunc,
            vec![st(u), rts(t)],
            Type::TIMESTAMP,
        ))
    };
    assert_eq!(tr("week"), ts(1_715_558_400)); // Monday 2024-05-13
    assert_eq!(tr("month"), ts(1_714_521_600));
    let fmt = |f: &str, x: Expr| eval1(call(Builtin::FormatTimestamp, vec![x, st(f)], Type::STR));
    assert_eq!(
        fmt("%Y/%m/%d %H:%M %A", rts(t)),
        Ok(Value::Str("2024/05/17 13:45 Friday".into()))
    );
    // Outside jiff's years -9999–9999.
    assert_eq!(fmt("%Y", rts(400_000_000_000)), Err(Conversion));
    let parse = |text: &str, f: &str| {
        eval1(call(
            Builtin::ParseTimestamp,
            vec![
                call(Builtin::Concat, vec![st(text), st("")], Type::STR),
                st(f),
            ],
            Type::nullable(Scalar::Timestamp),
        ))
    };
    assert_eq!(parse("17/05/2024 13:45:30", "%d/%m/%Y %H:%M:%S"), ts(t));
    assert_eq!(
        parse("31/02/2024 13:45:30", "%d/%m/%Y %H:%M:%S"),
        Ok(Value::Null)
    );
    let add = |b, n| eval1(call(b, vec![rts(t), rt(n)], Type::TIMESTAMP));
    assert_eq!(add(Builtin::AddSeconds, -30), ts(t - 30));
    assert_eq!(add(Builtin::AddDays, 2), ts(t + 172_800));
    assert_eq!(add(Builtin::AddDays, i64::MAX / 1000), Err(Overflow));
    assert_eq!(
        eval1(call(
            Builtin::DiffSeconds,
            vec![rts(t), rts(t + 90)],
            Type::INT
        )),
        Ok(Value::Int(-90))
    );
    let zone = |b, z: &str, x: Expr| eval1(call(b, vec![x, st(z)], Type::TIMESTAMP));
    // Oslo is UTC+2 in May; New York UTC-4.
    assert_eq!(
        zone(Builtin::UtcToLocal, "Europe/Oslo", rts(t)),
        ts(t + 7200)
    );
    assert_eq!(
        zone(Builtin::LocalToUtc, "America/New_York", rts(t)),
        ts(t + 4 * 3600)
    );
    // 2024-03-31 02:30 does not exist in Oslo (clocks go 02:00 → 03:00): read with +01:00.
    assert_eq!(
        zone(Builtin::LocalToUtc, "Europe/Oslo", rts(1_711_852_200)),
        ts(1_711_852_200 - 3600)
    );
}
