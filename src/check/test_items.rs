//! `test "name" { given SOURCE { rows } expect NAME { rows } }` items: the clauses' targets are
//! resolved against the file's sources, lets and sinks, and every row is checked against the row
//! type there and converted to values of the columns' types (E0220–E0225).

use super::cx::{Checker, FileCx, StreamDef, join_path};
use super::hir;
use crate::diagnostics::{Code, Diagnostic};
use crate::syntax::ast;
use crate::types::{RowType, Scalar, Type, Value};
use std::collections::HashSet;

impl<'p> Checker<'p> {
    /// Checks the file's `test` items; `first_sink` is the index of the file's first sink.
    pub(super) fn test_items(&mut self, items: &[ast::Item], fcx: &mut FileCx, first_sink: usize) {
        let mut names: HashSet<String> = HashSet::new();
        for item in items {
            let ast::Item::Test(t) = item else { continue };
            if t.keyword.name != "test" {
                self.diags.push(
                    Diagnostic::error(
                        Code::TestBadClause,
                        format!(
                            "`{}` followed by a string is not a statement",
                            t.keyword.name
                        ),
                    )
                    .label(t.keyword.span, "a test item starts with `test`")
                    .help("write `test \"name\" { given SOURCE { rows } expect NAME { rows } }`"),
                );
                continue;
            }
            if !names.insert(t.name.clone()) {
                self.diags.push(
                    Diagnostic::error(
                        Code::TestDuplicate,
                        format!("test {:?} is defined twice in this file", t.name),
                    )
                    .label(t.name_span, "a second test of this name"),
                );
                continue;
            }
            if let Some(test) = self.test_item(t, items, fcx, first_sink) {
                self.tests.push(test);
            }
        }
    }

    fn test_item(
        &mut self,
        t: &ast::TestDecl,
        items: &[ast::Item],
        fcx: &mut FileCx,
        first_sink: usize,
    ) -> Option<hir::Test> {
        let mut ok = true;
        let mut given: Vec<(String, Vec<Vec<Value>>)> = Vec::new();
        let mut expect: Vec<hir::Expect> = Vec::new();
        for c in &t.clauses {
            let ordered = match &c.ordered {
                None => false,
                Some(o) if o.name == "ordered" => true,
                Some(o) => {
                    self.diags.push(
                        Diagnostic::error(Code::TestBadClause, format!("unexpected `{}`", o.name))
                            .label(o.span, "only `ordered` may come before the rows")
                            .help(
                                "`ordered` compares the rows in order; without it, as a multiset",
                            ),
                    );
                    ok = false;
                    continue;
                }
            };
            match c.word.name.as_str() {
                "given" => {
                    let ast::TestTarget::Stream(name) = &c.target else {
                        self.unknown_target(
                            c,
                            "`given` names a source; a sink's rows can only be expected",
                        );
                        ok = false;
                        continue;
                    };
                    let schema = match fcx.streams.get(&name.name) {
                        Some((StreamDef::Source(i), _)) => self.sources[*i].schema.clone(),
                        Some((StreamDef::Let(None), _)) => {
                            ok = false; // a broken declaration, already reported
                            continue;
                        }
                        Some((StreamDef::Let(Some(_)), _)) => {
                            self.unknown_target(
                                c,
                                "a `let` computes its rows: give the rows of the sources it reads",
                            );
                            ok = false;
                            continue;
                        }
                        None => {
                            self.unknown_target(c, "no source of this name in this file");
                            ok = false;
                            continue;
                        }
                    };
                    fcx.used.insert(name.name.clone());
                    if given.iter().any(|(n, _)| *n == name.name) {
                        self.duplicate_clause(c, "the rows of this source are given twice");
                        ok = false;
                        continue;
                    }
                    match self.rows(&c.rows, &schema, false) {
                        Some(rows) => given.push((name.name.clone(), rows)),
                        None => ok = false,
                    }
                }
                "expect" => {
                    let (target, row) = match &c.target {
                        ast::TestTarget::Stream(name) => {
                            let row = match fcx.streams.get(&name.name) {
                                Some((StreamDef::Source(i), _)) => {
                                    Some(self.sources[*i].schema.clone())
                                }
                                Some((StreamDef::Let(Some(s)), _)) => Some(s.row.clone()),
                                Some((StreamDef::Let(None), _)) => None, // already reported
                                None => {
                                    self.unknown_target(
                                        c,
                                        "no source or let of this name in this file",
                                    );
                                    ok = false;
                                    continue;
                                }
                            };
                            fcx.used.insert(name.name.clone());
                            let Some(row) = row else {
                                ok = false;
                                continue;
                            };
                            (hir::ExpectTarget::Stream(name.name.clone()), row)
                        }
                        ast::TestTarget::Sink(path, _) => {
                            let resolved = join_path(&fcx.base_dir, path);
                            let found = self.sinks[first_sink.min(self.sinks.len())..]
                                .iter()
                                .find(|s| s.path.as_deref() == Some(resolved.as_str()))
                                .map(|s| s.input.row.clone());
                            let Some(row) = found else {
                                if sink_written(items, path) {
                                    ok = false; // its pipeline has an error, already reported
                                    continue;
                                }
                                self.unknown_target(c, "no sink of this file writes this path");
                                ok = false;
                                continue;
                            };
                            (hir::ExpectTarget::Sink(resolved), row)
                        }
                    };
                    if expect.iter().any(|e| e.target == target) {
                        self.duplicate_clause(c, "the rows of this place are expected twice");
                        ok = false;
                        continue;
                    }
                    match self.rows(&c.rows, &row, true) {
                        Some(rows) => expect.push(hir::Expect {
                            target,
                            row,
                            rows,
                            ordered,
                            span: c.span,
                        }),
                        None => ok = false,
                    }
                }
                other => {
                    self.diags.push(
                        Diagnostic::error(Code::TestBadClause, format!("`{other}` is not a test clause"))
                            .label(c.word.span, "expected `given` or `expect`")
                            .help("`given SOURCE { rows }` gives a source's rows; `expect NAME { rows }` or `expect sink \"path\" { rows }` states the rows that must come out"),
                    );
                    ok = false;
                }
            }
        }
        ok.then(|| hir::Test {
            name: t.name.clone(),
            file: fcx.name.clone(),
            span: t.span,
            given,
            expect,
        })
    }

    fn unknown_target(&mut self, c: &ast::TestClause, label: &str) {
        let (what, span) = match &c.target {
            ast::TestTarget::Stream(n) => (format!("`{}`", n.name), n.span),
            ast::TestTarget::Sink(p, s) => (format!("sink {p:?}"), *s),
        };
        let place = if c.word.name == "given" {
            "source"
        } else {
            "source, let or sink"
        };
        self.diags.push(
            Diagnostic::error(
                Code::TestUnknownTarget,
                format!(
                    "`{}` names {what}, which is no {place} of this file",
                    c.word.name
                ),
            )
            .label(span, label),
        );
    }

    fn duplicate_clause(&mut self, c: &ast::TestClause, label: &str) {
        self.diags.push(
            Diagnostic::error(Code::TestDuplicate, "a test clause is repeated")
                .label(c.span, label)
                .help("put all the rows in one clause"),
        );
    }

    /// The rows as values of `row`'s columns; `all`: every column must be given (expect).
    fn rows(&mut self, rows: &[ast::RowLit], row: &RowType, all: bool) -> Option<Vec<Vec<Value>>> {
        let mut ok = true;
        let mut out = Vec::new();
        for r in rows {
            let mut values: Vec<Option<Value>> = vec![None; row.len()];
            // A row with a mistake already reported is not also reported as incomplete.
            let mut reported = false;
            for (name, e) in &r.fields {
                let Some(i) = row.index_of(&name.name) else {
                    let mut d = Diagnostic::error(
                        Code::TestRowUnknownColumn,
                        format!("the rows here have no column `{}`", name.name),
                    )
                    .label(name.span, "no such column")
                    .note(format!("the rows here are {row}"));
                    if let Some(s) = crate::diagnostics::suggest(
                        &name.name,
                        row.fields.iter().map(|f| f.name.as_str()),
                    ) {
                        d = d.help(s);
                    }
                    self.diags.push(d);
                    ok = false;
                    reported = true;
                    continue;
                };
                if values[i].is_some() {
                    self.diags.push(
                        Diagnostic::error(
                            Code::TestDuplicate,
                            format!("column `{}` is given twice in this row", name.name),
                        )
                        .label(name.span, "given again here"),
                    );
                    ok = false;
                    continue;
                }
                match literal(e, row.fields[i].ty) {
                    Ok(v) => values[i] = Some(v),
                    Err(why) => {
                        values[i] = Some(Value::Null);
                        self.diags.push(
                            Diagnostic::error(
                                Code::TestRowBadValue,
                                format!(
                                    "column `{}` is {}, but this value {why}",
                                    name.name, row.fields[i].ty
                                ),
                            )
                            .label(e.span, "does not fit the column"),
                        );
                        ok = false;
                    }
                }
            }
            let mut full = Vec::new();
            for (i, v) in values.into_iter().enumerate() {
                let f = &row.fields[i];
                match v {
                    Some(v) => full.push(v),
                    None if f.ty.nullable && !all => full.push(Value::Null),
                    None if reported => full.push(Value::Null),
                    None => {
                        self.diags.push(
                            Diagnostic::error(
                                Code::TestRowMissingColumn,
                                format!("this row leaves out column `{}: {}`", f.name, f.ty),
                            )
                            .label(r.span, "give every column")
                            .note(format!("the rows here are {row}")),
                        );
                        ok = false;
                        break;
                    }
                }
            }
            out.push(full);
        }
        ok.then_some(out)
    }
}

/// Does a sink statement of the file write `path` (as written)?
fn sink_written(items: &[ast::Item], path: &str) -> bool {
    items.iter().any(|i| {
        let stages = match i {
            ast::Item::Pipeline(p) => &p.stages,
            ast::Item::Let(l) => &l.pipeline.stages,
            _ => return false,
        };
        stages.iter().any(|s| match &s.kind {
            ast::StageKind::Sink(c) => c.args.iter().any(|a| {
                a.name.is_none() && matches!(&a.value.kind, ast::ExprKind::Str(p) if p == path)
            }),
            _ => false,
        })
    })
}

/// A literal of type `ty`, or why not (completing "this value …").
fn literal(e: &ast::Expr, ty: Type) -> Result<Value, String> {
    let v = match &e.kind {
        ast::ExprKind::Int(i) => Value::Int(*i),
        ast::ExprKind::Float(x) => Value::Float(*x),
        ast::ExprKind::Str(s) => Value::Str(s.clone()),
        ast::ExprKind::Bool(b) => Value::Bool(*b),
        ast::ExprKind::Null => Value::Null,
        ast::ExprKind::Unary(ast::UnaryOp::Neg, inner) => match &inner.kind {
            ast::ExprKind::Int(i) => Value::Int(i.checked_neg().ok_or("is out of range")?),
            ast::ExprKind::Float(x) => Value::Float(-x),
            _ => return Err("is not a literal (test rows hold literal values)".into()),
        },
        _ => return Err("is not a literal (test rows hold literal values)".into()),
    };
    match (ty.scalar, v) {
        (_, Value::Null) if ty.nullable => Ok(Value::Null),
        (_, Value::Null) => Err("is null".into()),
        (Scalar::Int, Value::Int(i)) => Ok(Value::Int(i)),
        (Scalar::Float, Value::Int(i)) => Ok(Value::Float(i as f64)),
        (Scalar::Float, Value::Float(x)) => Ok(Value::Float(x)),
        (Scalar::Str, Value::Str(s)) => Ok(Value::Str(s)),
        (Scalar::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (Scalar::Timestamp, Value::Int(i)) => Ok(Value::Timestamp(i)),
        (Scalar::Timestamp, Value::Str(s)) => crate::stdlib::ops::parse_timestamp(&s)
            .map(Value::Timestamp)
            .ok_or_else(|| format!("{s:?} is not a timestamp")),
        (_, v) => Err(format!("is {}", v.scalar().name())),
    }
}
