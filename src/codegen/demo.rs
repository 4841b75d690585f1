//! The fused chain of DESIGN.md §3 (`trips | filter distance > 10.0 && fare > 0.0 | map { id,
//! vendor, fare, pct: tip_pct(tip, fare), city: upper(city) }`), written directly as HIR. Used by
//! the kernel benchmark and tests, which need a realistic chain without the front end.

use crate::check::hir::{BinOp, Expr, ExprKind};
use crate::job::ErrorPolicy;
use crate::plan::ir::{FusedStep, Step};
use crate::span::Span;
use crate::stdlib::Builtin;
use crate::types::{Field, RowType, Scalar, Type, Value};

fn e(kind: ExprKind, ty: Type) -> Expr {
    Expr::new(kind, ty, Span::default())
}
fn field(i: usize, ty: Type) -> Expr {
    e(ExprKind::Field(i), ty)
}
fn float(x: f64) -> Expr {
    e(ExprKind::Lit(Value::Float(x)), Type::FLOAT)
}
fn bin(op: BinOp, a: Expr, b: Expr, ty: Type) -> Expr {
    e(ExprKind::Binary(op, Box::new(a), Box::new(b)), ty)
}

/// `Trip { id: int, vendor: str, pickup_ts: int, distance: float, fare: float, tip: float?,
/// city: str, note: str }`.
pub fn trip_row() -> RowType {
    let f = |name: &str, ty| Field {
        name: name.into(),
        ty,
    };
    RowType::new(vec![
        f("id", Type::INT),
        f("vendor", Type::STR),
        f("pickup_ts", Type::INT),
        f("distance", Type::FLOAT),
        f("fare", Type::FLOAT),
        f("tip", Type::nullable(Scalar::Float)),
        f("city", Type::STR),
        f("note", Type::STR),
    ])
}

/// The filter + map steps over `trip_row()`, with `tip_pct` inlined as the checker does
/// (`Let` binding its parameters).
pub fn trips_steps() -> Vec<FusedStep> {
    let input = trip_row();
    let pred = bin(
        BinOp::And,
        bin(BinOp::Gt, field(3, Type::FLOAT), float(10.0), Type::BOOL),
        bin(BinOp::Gt, field(4, Type::FLOAT), float(0.0), Type::BOOL),
        Type::BOOL,
    );
    // tip_pct(tip, fare) = if fare > 0.0 { (tip ?? 0.0) / fare * 100.0 } else { 0.0 }
    let tip = Type::nullable(Scalar::Float);
    let body = e(
        ExprKind::If(
            Box::new(bin(
                BinOp::Gt,
                e(ExprKind::Local(1), Type::FLOAT),
                float(0.0),
                Type::BOOL,
            )),
            Box::new(bin(
                BinOp::Mul,
                bin(
                    BinOp::Div,
                    e(
                        ExprKind::Coalesce(
                            Box::new(e(ExprKind::Local(0), tip)),
                            Box::new(float(0.0)),
                        ),
                        Type::FLOAT,
                    ),
                    e(ExprKind::Local(1), Type::FLOAT),
                    Type::FLOAT,
                ),
                float(100.0),
                Type::FLOAT,
            )),
            Box::new(float(0.0)),
        ),
        Type::FLOAT,
    );
    let pct = e(
        ExprKind::Let {
            local: 0,
            value: Box::new(field(5, tip)),
            body: Box::new(e(
                ExprKind::Let {
                    local: 1,
                    value: Box::new(field(4, Type::FLOAT)),
                    body: Box::new(body),
                },
                Type::FLOAT,
            )),
        },
        Type::FLOAT,
    );
    let city = e(
        ExprKind::Call(Builtin::Upper, vec![field(6, Type::STR)]),
        Type::STR,
    );
    let out = RowType::new(vec![
        input.fields[0].clone(),
        input.fields[1].clone(),
        input.fields[4].clone(),
        Field {
            name: "pct".into(),
            ty: Type::FLOAT,
        },
        Field {
            name: "city".into(),
            ty: Type::STR,
        },
    ]);
    vec![
        FusedStep {
            step: Step::Filter(pred),
            policy: ErrorPolicy::default(),
            row: input,
        },
        FusedStep {
            step: Step::Map(vec![
                field(0, Type::INT),
                field(1, Type::STR),
                field(4, Type::FLOAT),
                pct,
                city,
            ]),
            policy: ErrorPolicy::default(),
            row: out,
        },
    ]
}
