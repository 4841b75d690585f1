//! Pipelines: `let` streams and sink statements, stage by stage, with their row types.

use super::cx::{Checker, FileCx, StreamDef, dup, parse_on_error, positive_int};
use super::expr::{ExprCx, Names, NullKey, facts};
use super::hir::{self, Agg, AggFunc, ExprKind, Stream, StreamKind};
use crate::diagnostics::suggest;
use crate::diagnostics::{Code, Diagnostic};
use crate::job::{ErrorPolicy, Hints};
use crate::span::Span;
use crate::syntax::ast::{self, MapItem, StageKind};
use crate::syntax::depth;
use crate::types::{Field, RowType, Scalar, Type};
use std::collections::HashSet;

impl<'p> Checker<'p> {
    pub(super) fn let_decl(&mut self, l: &ast::LetDecl, fcx: &mut FileCx) {
        if let Some((_, prev)) = fcx.streams.get(&l.name.name) {
            self.diags
                .push(dup(&l.name, "stream").label(*prev, "first defined here"));
            return;
        }
        if let Some(sink) = l
            .pipeline
            .stages
            .iter()
            .find(|s| matches!(s.kind, StageKind::Sink(_)))
        {
            self.diags.push(
                Diagnostic::error(
                    Code::LetWithSink,
                    format!(
                        "`let {}` ends in a sink, so it names no stream",
                        l.name.name
                    ),
                )
                .label(sink.span, "a sink ends a pipeline")
                .help(format!(
                    "write `let {} = …` without the sink, then `{} | sink …` as its own statement",
                    l.name.name, l.name.name
                )),
            );
            fcx.streams
                .insert(l.name.name.clone(), (StreamDef::Let(None), l.name.span));
            fcx.used.insert(l.name.name.clone());
            return;
        }
        let stream = self.pipeline(&l.pipeline, fcx).map(|mut s| {
            s.label = Some(l.name.name.clone());
            s
        });
        if let Some(s) = &stream {
            self.types
                .push(format!("{}: let {}: {}", fcx.name, l.name.name, s.row));
            self.index
                .decl(l.name.span, format!("let {}: {}", l.name.name, s.row));
        }
        fcx.streams
            .insert(l.name.name.clone(), (StreamDef::Let(stream), l.name.span));
    }

    pub(super) fn pipeline_stmt(&mut self, p: &ast::Pipeline, fcx: &mut FileCx) {
        let Some((last, rest)) = p.stages.split_last() else {
            self.no_sink(p, fcx);
            return;
        };
        let StageKind::Sink(call) = &last.kind else {
            self.no_sink(p, fcx);
            return;
        };
        let body = ast::Pipeline {
            head: p.head.clone(),
            stages: rest.to_vec(),
            span: p.span,
        };
        let stream = self.pipeline(&body, fcx);
        let conn = self.connector(call, false, fcx);
        let hints = self.hints(&last.hints, false, &fcx.base_dir);
        let (Some(input), Some(conn), Some((hints, _))) = (stream, conn, hints) else {
            return;
        };
        if conn.describes
            && let Err(r) = self
                .probe
                .accept_sink(&conn.name, &conn.options, &input.row)
        {
            self.refused(&conn, r);
            return;
        }
        let line = line_of(fcx, last.span);
        let origin = format!("{}:{line}", fcx.name);
        let dest = match &conn.path {
            Some(p) => p.clone(),
            None if conn.describes => "…".into(),
            None => "stdout".into(),
        };
        self.types.push(format!(
            "{}: sink {}({dest}) <- {}",
            fcx.name, conn.name, input.row
        ));
        self.sinks.push(hir::Sink {
            connector: conn.name,
            path: conn.path,
            options: conn.options,
            input,
            hints,
            span: last.span,
            origin,
        });
    }

    fn no_sink(&mut self, p: &ast::Pipeline, fcx: &mut FileCx) {
        // Check the stages anyway so their errors are reported too.
        let _ = self.pipeline(p, fcx);
        self.diags.push(
            Diagnostic::error(
                Code::NoSink,
                "this pipeline does not end in a sink, so its rows go nowhere",
            )
            .label(p.span, "no sink")
            .help(format!(
                "end it with `| sink csv(\"out/{}.csv\")`, or name it with `let`",
                p.head.name
            )),
        );
    }

    /// Checks a pipeline without sinks; `None` if it has errors (already reported).
    fn pipeline(&mut self, p: &ast::Pipeline, fcx: &mut FileCx) -> Option<Stream> {
        let mut current = self.stream_ref(&p.head, fcx);
        if let Some(s) = &current {
            self.index.stream(p.head.span, &s.row);
        }
        let mut failed = false;
        for stage in &p.stages {
            let input = current.take()?;
            let input_row = input.row.clone();
            // The row type after this stage even if the stage has a mistake: a filter, limit
            // or sink keeps its input's columns, so later stages can still be checked (their
            // own mistakes are independent ones). After a bad map or group the columns are not
            // known, and checking stops there so nothing cascades.
            let keeps_row = match &stage.kind {
                StageKind::Filter(_)
                | StageKind::Limit(_)
                | StageKind::Sort(_)
                | StageKind::Distinct(_)
                | StageKind::Sink(_) => true,
                StageKind::Union(names) => names.iter().all(|n| {
                    matches!(
                        fcx.streams.get(&n.name),
                        Some((StreamDef::Source(_), _)) | Some((StreamDef::Let(Some(_)), _))
                    )
                }),
                _ => false,
            };
            let fallback = keeps_row.then(|| Stream {
                kind: input.kind.clone(),
                row: input.row.clone(),
                hints: Hints::default(),
                label: None,
                span: stage.span,
            });
            current = self.stage(Some(input), stage, fcx);
            let output = current.as_ref().map(|s| &s.row);
            self.index.stage(stage.span, &input_row, output);
            if current.is_none() {
                failed = true;
                current = fallback;
            }
        }
        if failed { None } else { current }
    }

    /// The stream a name denotes (a source or a let), for a pipeline head or a union input.
    fn stream_ref(&mut self, id: &ast::Ident, fcx: &mut FileCx) -> Option<Stream> {
        match fcx.streams.get(&id.name) {
            Some((def, _)) => {
                fcx.used.insert(id.name.clone());
                match def {
                    StreamDef::Source(idx) => {
                        let src = &self.sources[*idx];
                        Some(Stream {
                            kind: StreamKind::Source(*idx),
                            row: src.schema.clone(),
                            hints: Hints::default(),
                            label: Some(src.name.clone()),
                            span: id.span,
                        })
                    }
                    StreamDef::Let(s) => s.clone(),
                }
            }
            None => {
                let what = if fcx.scope.fns.contains_key(&id.name) {
                    Some("a function")
                } else if fcx.schemas.contains_key(&id.name) {
                    Some("a schema")
                } else if fcx.scope.modules.contains_key(&id.name) {
                    Some("a module")
                } else {
                    None
                };
                if let Some(what) = what {
                    self.diags.push(
                        Diagnostic::error(
                            Code::NotAStream,
                            format!("`{}` is {what}, not a stream", id.name),
                        )
                        .label(id.span, "a pipeline must start with a source or a let")
                        .help("declare a source: `source name = csv(\"data/file.csv\")`"),
                    );
                    return None;
                }
                let mut d =
                    Diagnostic::error(Code::UnknownName, format!("unknown stream `{}`", id.name))
                        .label(id.span, "no source or let of this name");
                if let Some(s) = suggest(&id.name, fcx.streams.keys().map(|k| k.as_str())) {
                    d = d.help(s);
                } else {
                    d = d.help("sources and lets must be defined before they are used");
                }
                self.diags.push(d);
                None
            }
        }
    }

    fn stage(
        &mut self,
        input: Option<Stream>,
        stage: &ast::Stage,
        fcx: &mut FileCx,
    ) -> Option<Stream> {
        let input = input?;
        if stages_deep(&input) >= depth::MAX_STAGES {
            self.diags.push(
                Diagnostic::error(Code::NestedTooDeeply, "stream nested too deeply")
                    .label(
                        stage.span,
                        format!(
                            "this stage is more than {} stages from its source",
                            depth::MAX_STAGES
                        ),
                    )
                    .help("write the rows to a file and read them in a second job"),
            );
            return None;
        }
        let allow_policy = matches!(stage.kind, StageKind::Filter(_) | StageKind::Map(_));
        let (hints, policy) = self.hints(&stage.hints, allow_policy, &fcx.base_dir)?;
        let span = stage.span;
        let (kind, row) = match &stage.kind {
            StageKind::Filter(e) => {
                let mut cx = self.expr_cx(&input.row, fcx);
                let pred = cx.check_root(e)?;
                if pred.ty.scalar == Scalar::Bool && pred.ty.nullable {
                    self.diags.push(
                        Diagnostic::error(Code::NullableValue, "the filter condition may be null")
                            .label(pred.span, format!("this is {}", pred.ty))
                            .help("decide what null means: `(…) ?? false` drops such rows"),
                    );
                    return None;
                }
                if pred.ty.scalar != Scalar::Bool {
                    self.diags.push(
                        Diagnostic::error(
                            Code::FilterNotBool,
                            format!("the filter condition must be bool, found {}", pred.ty),
                        )
                        .label(pred.span, format!("this is {}", pred.ty))
                        .help("compare it to something, e.g. `x > 0`"),
                    );
                    return None;
                }
                let mut row = input.row.clone();
                for f in facts(&pred, true) {
                    if let NullKey::Column(i) = f {
                        row.fields[i].ty.nullable = false;
                    }
                }
                (
                    StreamKind::Filter {
                        input: Box::new(input),
                        pred,
                        policy,
                    },
                    row,
                )
            }
            StageKind::Map(items) => {
                let fields = self.map_items(&input.row, items, fcx)?;
                let row = RowType::new(
                    fields
                        .iter()
                        .map(|(n, e)| Field {
                            name: n.clone(),
                            ty: e.ty,
                        })
                        .collect(),
                );
                (
                    StreamKind::Map {
                        input: Box::new(input),
                        fields,
                        policy,
                    },
                    row,
                )
            }
            StageKind::Group(keys, items) => self.group(input, keys, items, fcx)?,
            StageKind::Union(names) => {
                let mut inputs = vec![input];
                let mut ok = true;
                for n in names {
                    match self.stream_ref(n, fcx) {
                        Some(s) => {
                            if !same_columns(&s.row, &inputs[0].row) {
                                self.diags.push(
                                    Diagnostic::error(Code::UnionMismatch, format!("`{}` has different columns from the stream it is joined to", n.name))
                                        .label(n.span, format!("this is {}", s.row))
                                        .label(span, format!("the stream here is {}", inputs[0].row))
                                        .help("use `map` to give both the same columns, in the same order"),
                                );
                                ok = false;
                            }
                            inputs.push(s);
                        }
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                let mut row = inputs[0].row.clone();
                for s in &inputs[1..] {
                    for (f, g) in row.fields.iter_mut().zip(&s.row.fields) {
                        f.ty.nullable |= g.ty.nullable;
                    }
                }
                (StreamKind::Union { inputs }, row)
            }
            StageKind::Limit(e) => match e.kind {
                ast::ExprKind::Int(n) if n >= 0 => {
                    let row = input.row.clone();
                    (
                        StreamKind::Limit {
                            input: Box::new(input),
                            n: n as u64,
                        },
                        row,
                    )
                }
                _ => {
                    self.diags.push(
                        Diagnostic::error(
                            Code::InvalidLimit,
                            "`limit` takes a non-negative integer literal",
                        )
                        .label(e.span, "expected a number like 100"),
                    );
                    return None;
                }
            },
            StageKind::Sort(keys) => {
                // A key that is a plain column name is that column; any other expression is
                // computed over the input row into a hidden column (below).
                fn plain(k: &ast::SortKey) -> Option<&ast::Ident> {
                    match &k.expr.kind {
                        ast::ExprKind::Name(id) => Some(id),
                        _ => None,
                    }
                }
                let names: Vec<&ast::Ident> = keys.iter().filter_map(plain).collect();
                let cols = self.key_columns(&input.row, &names, "sort");
                let mut ok = cols.is_some();
                let mut cols = cols.unwrap_or_default().into_iter();
                let mut out = Vec::new();
                let mut computed: Vec<(String, hir::Expr)> = Vec::new();
                for k in keys {
                    let col = if plain(k).is_some() {
                        match cols.next() {
                            Some(c) => c,
                            None => continue,
                        }
                    } else {
                        let Some(e) = self.expr_cx(&input.row, fcx).check_root(&k.expr) else {
                            ok = false;
                            continue;
                        };
                        if let ExprKind::Field(c) = e.kind {
                            c
                        } else {
                            let mut name = format!("_sort{}", computed.len() + 1);
                            while input.row.index_of(&name).is_some() {
                                name.insert(0, '_');
                            }
                            computed.push((name, e));
                            input.row.len() + computed.len() - 1
                        }
                    };
                    let desc = match &k.dir {
                        None => false,
                        Some(d) if d.name == "asc" => false,
                        Some(d) if d.name == "desc" => true,
                        Some(d) => {
                            let lower = d.name.to_ascii_lowercase();
                            let mut diag = Diagnostic::error(
                                Code::SortDirection,
                                format!("`{}` is not a sort direction", d.name),
                            )
                            .label(d.span, "expected `asc` or `desc`");
                            diag = if lower.starts_with("desc") || lower.starts_with("asc") {
                                diag.help(format!(
                                    "write `{} {}`",
                                    crate::syntax::dump::expr(&k.expr),
                                    if lower.starts_with("desc") {
                                        "desc"
                                    } else {
                                        "asc"
                                    }
                                ))
                            } else {
                                diag.help("separate keys with commas: `sort a desc, b`")
                            };
                            self.diags.push(diag);
                            ok = false;
                            continue;
                        }
                    };
                    out.push(hir::SortKey { col, desc });
                }
                if !ok {
                    return None;
                }
                let row = input.row.clone();
                if computed.is_empty() {
                    (
                        StreamKind::Sort {
                            input: Box::new(input),
                            keys: out,
                        },
                        row,
                    )
                } else {
                    sort_by_computed_keys(input, computed, out, &hints, span)
                }
            }
            StageKind::Distinct(names) => {
                let refs: Vec<&ast::Ident> = names.iter().collect();
                let cols = self.key_columns(&input.row, &refs, "distinct")?;
                let row = input.row.clone();
                (
                    StreamKind::Distinct {
                        input: Box::new(input),
                        keys: (!cols.is_empty()).then_some(cols),
                    },
                    row,
                )
            }
            StageKind::Join(j) => self.join(input, j, span, fcx)?,
            StageKind::Sink(_) => {
                self.diags.push(
                    Diagnostic::error(Code::HabitSinkMiddle, "a sink must be the last stage of a pipeline")
                        .label(span, "a sink ends the pipeline; nothing flows out of it")
                        .help("name the stream with `let`, then write one pipeline per sink: `let t = trips | …` then `t | sink csv(\"a.csv\")` and `t | filter … | sink csv(\"b.csv\")`")
                        .note("the stages after this sink are still checked"),
                );
                return None;
            }
        };
        Some(Stream {
            kind,
            row,
            hints,
            label: None,
            span,
        })
    }

    fn expr_cx<'c, 'r>(&'c mut self, row: &'r RowType, fcx: &'r FileCx) -> ExprCx<'c, 'p, 'r> {
        ExprCx {
            ck: self,
            names: Names::Row(row),
            scope: std::borrow::Cow::Borrowed(&fcx.scope),
            nonnull: HashSet::new(),
            next_local: 0,
            inlined: 0,
            calls: None,
        }
    }

    fn map_items(
        &mut self,
        row: &RowType,
        items: &[MapItem],
        fcx: &FileCx,
    ) -> Option<Vec<(String, hir::Expr)>> {
        let mut out: Vec<(String, hir::Expr)> = Vec::new();
        let mut from_star: HashSet<String> = HashSet::new();
        let mut explicit: Vec<(String, Span)> = Vec::new();
        let mut ok = true;
        for item in items {
            match item {
                MapItem::Star(span) => {
                    for (i, f) in row.fields.iter().enumerate() {
                        if out.iter().any(|(n, _)| *n == f.name) {
                            continue;
                        }
                        out.push((
                            f.name.clone(),
                            hir::Expr::new(ExprKind::Field(i), f.ty, *span),
                        ));
                        from_star.insert(f.name.clone());
                    }
                }
                MapItem::Field(id) | MapItem::Named(id, _) => {
                    let value = match item {
                        MapItem::Named(_, e) => self.expr_cx(row, fcx).check_root(e),
                        _ => self.expr_cx(row, fcx).check_root(&ast::Expr {
                            kind: ast::ExprKind::Name(id.clone()),
                            span: id.span,
                        }),
                    };
                    let Some(value) = value else {
                        ok = false;
                        continue;
                    };
                    if value.ty.scalar == Scalar::Null {
                        self.diags.push(
                            Diagnostic::error(Code::NullType, format!("cannot infer the type of `{}`: it is always null", id.name))
                                .label(value.span, "null of no particular type")
                                .help("give it a type from context, e.g. `if false { 0 } else { null }` for an int? column"),
                        );
                        ok = false;
                        continue;
                    }
                    if let Some((_, prev)) = explicit.iter().find(|(n, _)| *n == id.name) {
                        self.diags.push(
                            Diagnostic::error(
                                Code::DuplicateField,
                                format!("output column `{}` is listed twice", id.name),
                            )
                            .label(id.span, "listed again here")
                            .label(*prev, "first listed here"),
                        );
                        ok = false;
                        continue;
                    }
                    explicit.push((id.name.clone(), id.span));
                    if let Some(slot) = out
                        .iter_mut()
                        .find(|(n, _)| *n == id.name && from_star.contains(n))
                    {
                        slot.1 = value;
                    } else {
                        out.push((id.name.clone(), value));
                    }
                }
            }
        }
        ok.then_some(out)
    }

    /// `[left] join right on a == b && … { fields }`: the output is the input's columns, then
    /// the brought fields of `right` (nullable for `left join`).
    fn join(
        &mut self,
        input: Stream,
        j: &ast::JoinStage,
        span: Span,
        fcx: &mut FileCx,
    ) -> Option<(StreamKind, RowType)> {
        let mut ok = true;
        let outer = match &j.kind {
            None => false,
            Some(k) if k.name == "left" => true,
            Some(k) => {
                self.diags.push(
                    Diagnostic::error(
                        Code::JoinKind,
                        format!("unknown kind of join `{}`", k.name),
                    )
                    .label(k.span, "flow knows `join` (inner) and `left join`")
                    .help("write `join` for the matching rows only, `left join` to keep every input row"),
                );
                false
            }
        };
        if j.kind.as_ref().is_some_and(|k| k.name != "left") {
            ok = false;
        }
        if j.on.name != "on" {
            self.diags.push(
                Diagnostic::error(
                    Code::JoinOn,
                    format!(
                        "expected `on` after the joined stream, found `{}`",
                        j.on.name
                    ),
                )
                .label(j.on.span, "write `on` here")
                .help(format!(
                    "`join {} on left_key == right_key {{ fields }}`",
                    j.right.name
                )),
            );
            ok = false;
        }
        let right = self.stream_ref(&j.right, fcx)?;
        self.index.stream(j.right.span, &right.row);
        let mut keys = Vec::new();
        for (a, b) in &j.keys {
            let l = input.row.index_of(&a.name);
            let r = right.row.index_of(&b.name);
            if l.is_none() {
                self.diags.push(unknown_field(a, &input.row));
                ok = false;
            }
            if r.is_none() {
                self.diags.push(unknown_field(b, &right.row));
                ok = false;
            }
            let (Some(l), Some(r)) = (l, r) else { continue };
            let (lt, rt) = (input.row.fields[l].ty, right.row.fields[r].ty);
            match crate::check::expr::unify(lt, rt) {
                Some(t) => keys.push(hir::JoinKey {
                    left: l,
                    right: r,
                    float: t.scalar == Scalar::Float && lt.scalar != rt.scalar,
                }),
                None => {
                    self.diags.push(
                        Diagnostic::error(
                            Code::JoinKeyType,
                            format!("join key `{}` == `{}` compares {lt} with {rt}", a.name, b.name),
                        )
                        .label(a.span, format!("this is {lt}"))
                        .label(b.span, format!("this is {rt}"))
                        .help("the keys of a join must have the same type (an int key may meet a float one); convert one with `map` first, e.g. `to_int(x)`"),
                    );
                    ok = false;
                }
            }
        }
        let mut row = input.row.clone();
        let mut fields = Vec::new();
        let mut brought: Vec<&ast::Ident> = Vec::new();
        for f in &j.fields {
            let Some(c) = right.row.index_of(&f.field.name) else {
                self.diags.push(unknown_field(&f.field, &right.row));
                ok = false;
                continue;
            };
            if let Some(prev) = brought.iter().find(|p| p.name == f.name.name) {
                self.diags.push(
                    Diagnostic::error(
                        Code::DuplicateField,
                        format!("output column `{}` is listed twice", f.name.name),
                    )
                    .label(f.name.span, "listed again here")
                    .label(prev.span, "first listed here"),
                );
                ok = false;
                continue;
            }
            if input.row.index_of(&f.name.name).is_some() {
                self.diags.push(
                    Diagnostic::error(
                        Code::JoinFieldClash,
                        format!(
                            "the joined field `{}` clashes with a column of the input",
                            f.name.name
                        ),
                    )
                    .label(f.name.span, "the rows here already have this column")
                    .help(format!(
                        "bring it in under another name: `{{ {}_{}: {} }}`",
                        j.right.name, f.field.name, f.field.name
                    )),
                );
                ok = false;
                continue;
            }
            brought.push(&f.name);
            let mut ty = right.row.fields[c].ty;
            ty.nullable |= outer;
            row.fields.push(crate::types::Field {
                name: f.name.name.clone(),
                ty,
            });
            fields.push(c);
        }
        let _ = span;
        if !ok {
            return None;
        }
        Some((
            StreamKind::Join {
                left: Box::new(input),
                right: Box::new(right),
                keys,
                fields,
                outer,
            },
            row,
        ))
    }

    /// The input columns of `sort` or `distinct` keys: each known and listed once.
    fn key_columns(
        &mut self,
        row: &RowType,
        keys: &[&ast::Ident],
        stage: &str,
    ) -> Option<Vec<usize>> {
        let mut ok = true;
        let mut cols = Vec::new();
        let mut seen: Vec<&ast::Ident> = Vec::new();
        for k in keys {
            if let Some(prev) = seen.iter().find(|p| p.name == k.name) {
                self.diags.push(
                    Diagnostic::error(
                        Code::DuplicateField,
                        format!("{stage} key `{}` is listed twice", k.name),
                    )
                    .label(k.span, "again here")
                    .label(prev.span, "first here"),
                );
                ok = false;
                continue;
            }
            seen.push(k);
            match row.index_of(&k.name) {
                Some(i) => cols.push(i),
                None => {
                    self.diags.push(unknown_field(k, row));
                    ok = false;
                }
            }
        }
        ok.then_some(cols)
    }

    fn group(
        &mut self,
        input: Stream,
        keys: &[ast::Ident],
        items: &[MapItem],
        fcx: &FileCx,
    ) -> Option<(StreamKind, RowType)> {
        let mut ok = true;
        let mut key_idx = Vec::new();
        let mut fields = Vec::new();
        let mut names: Vec<(String, Span)> = Vec::new();
        for k in keys {
            match input.row.index_of(&k.name) {
                Some(i) => {
                    if let Some((_, prev)) = names.iter().find(|(n, _)| *n == k.name) {
                        self.diags.push(
                            Diagnostic::error(
                                Code::DuplicateField,
                                format!("group key `{}` is listed twice", k.name),
                            )
                            .label(k.span, "again here")
                            .label(*prev, "first here"),
                        );
                        ok = false;
                        continue;
                    }
                    key_idx.push(i);
                    fields.push(input.row.fields[i].clone());
                    names.push((k.name.clone(), k.span));
                }
                None => {
                    self.diags.push(unknown_field(k, &input.row));
                    ok = false;
                }
            }
        }
        let mut aggs = Vec::new();
        for item in items {
            let (name, e) = match item {
                MapItem::Named(n, e) => (n, e),
                MapItem::Field(n) => {
                    self.diags.push(
                        Diagnostic::error(
                            Code::UnknownAggregate,
                            format!("`{}` is not an aggregate", n.name),
                        )
                        .label(n.span, "group outputs are `name: aggregate(…)`")
                        .help("group keys go before the braces: `group a, b { n: count() }`"),
                    );
                    ok = false;
                    continue;
                }
                MapItem::Star(span) => {
                    self.diags.push(
                        Diagnostic::error(Code::UnknownAggregate, "`*` cannot be used in group")
                            .label(*span, "group outputs are `name: aggregate(…)`"),
                    );
                    ok = false;
                    continue;
                }
            };
            match self.aggregate(&input.row, name, e, fcx) {
                Some(agg) => {
                    if let Some((_, prev)) = names.iter().find(|(n, _)| *n == name.name) {
                        self.diags.push(
                            Diagnostic::error(
                                Code::DuplicateField,
                                format!("output column `{}` is listed twice", name.name),
                            )
                            .label(name.span, "listed again here")
                            .label(*prev, "first listed here"),
                        );
                        ok = false;
                        continue;
                    }
                    names.push((name.name.clone(), name.span));
                    fields.push(Field {
                        name: agg.name.clone(),
                        ty: agg.ty,
                    });
                    aggs.push(agg);
                }
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        Some((
            StreamKind::Group {
                input: Box::new(input),
                keys: key_idx,
                aggs,
            },
            RowType::new(fields),
        ))
    }

    fn aggregate(
        &mut self,
        row: &RowType,
        name: &ast::Ident,
        e: &ast::Expr,
        fcx: &FileCx,
    ) -> Option<Agg> {
        let ast::ExprKind::Call {
            module: None,
            name: fname,
            args,
        } = &e.kind
        else {
            self.diags.push(
                Diagnostic::error(
                    Code::UnknownAggregate,
                    format!("`{}` must be an aggregate", name.name),
                )
                .label(e.span, "not an aggregate call")
                .help(
                    "group outputs are count(), sum(x), min(x), max(x), avg(x), count_distinct(x), first(x) or last(x)",
                ),
            );
            return None;
        };
        let Some(func) = AggFunc::from_name(&fname.name) else {
            let mut d = Diagnostic::error(
                Code::UnknownAggregate,
                format!("unknown aggregate `{}`", fname.name),
            )
            .label(fname.span, "not an aggregate");
            if let Some(s) = suggest(&fname.name, AggFunc::NAMES) {
                d = d.help(s);
            }
            self.diags.push(d.note(
                "the aggregates are count, sum, min, max, avg, count_distinct, first and last",
            ));
            return None;
        };
        let expected = if func == AggFunc::Count { 0 } else { 1 };
        if args.len() != expected {
            self.diags.push(
                Diagnostic::error(
                    Code::WrongArgCount,
                    format!(
                        "`{}` takes {expected} argument{}, but {} were given",
                        func.name(),
                        if expected == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .label(e.span, "wrong number of arguments"),
            );
            return None;
        }
        let arg = match args.first() {
            Some(a) => Some(self.expr_cx(row, fcx).check_root(&a.value)?),
            None => None,
        };
        let ty = match (&arg, func) {
            (None, _) => Type::INT,
            (Some(a), AggFunc::Sum) if a.ty.scalar.is_numeric() => Type::new(a.ty.scalar),
            (Some(a), AggFunc::Avg) if a.ty.scalar.is_numeric() => Type {
                scalar: Scalar::Float,
                nullable: a.ty.nullable,
            },
            (Some(_), AggFunc::CountDistinct) => Type::INT,
            (Some(a), AggFunc::First | AggFunc::Last) => a.ty,
            (Some(a), AggFunc::Min | AggFunc::Max)
                if matches!(
                    a.ty.scalar,
                    Scalar::Int | Scalar::Float | Scalar::Str | Scalar::Timestamp
                ) =>
            {
                a.ty
            }
            (Some(a), _) => {
                let need = if matches!(func, AggFunc::Sum | AggFunc::Avg) {
                    "a number"
                } else {
                    "a number, string or timestamp"
                };
                self.diags.push(
                    Diagnostic::error(
                        Code::AggregateType,
                        format!("`{}` needs {need}, found {}", func.name(), a.ty),
                    )
                    .label(a.span, format!("this is {}", a.ty)),
                );
                return None;
            }
        };
        Some(Agg {
            name: name.name.clone(),
            func,
            arg,
            ty,
            span: e.span,
        })
    }

    /// Validates stage hints; returns them and the stage's error policy.
    fn hints(
        &mut self,
        hints: &[ast::Hint],
        allow_policy: bool,
        base_dir: &str,
    ) -> Option<(Hints, ErrorPolicy)> {
        let mut out = Hints::default();
        let mut policy = ErrorPolicy::default();
        let mut ok = true;
        for h in hints {
            let one_int = |h: &ast::Hint| match h.args.as_slice() {
                [
                    ast::Arg {
                        name: None, value, ..
                    },
                ] => positive_int(value),
                _ => None,
            };
            match h.name.name.as_str() {
                "parallel" | "batch" => match one_int(h) {
                    Some(n) => {
                        self.hint_uses.push(super::items::HintUse {
                            parallel: h.name.name == "parallel",
                            n,
                            span: h.span,
                        });
                        if h.name.name == "parallel" {
                            out.parallel = Some(n);
                        } else {
                            out.batch = Some(n);
                        }
                    }
                    None => {
                        self.diags.push(
                            Diagnostic::error(
                                Code::InvalidHint,
                                format!("`@{}` takes one positive integer", h.name.name),
                            )
                            .label(h.span, "invalid value")
                            .help(format!(
                                "e.g. `@{}({})`",
                                h.name.name,
                                if h.name.name == "parallel" { 2 } else { 4096 }
                            )),
                        );
                        ok = false;
                    }
                },
                "on_error" if allow_policy => match h.args.as_slice() {
                    [
                        ast::Arg {
                            name: None, value, ..
                        },
                    ] => match parse_on_error(value, base_dir) {
                        Ok(p) => policy.on_error = p,
                        Err(msg) => {
                            self.diags.push(
                                Diagnostic::error(
                                    Code::InvalidHint,
                                    format!("invalid `@on_error`: {msg}"),
                                )
                                .label(value.span, "here"),
                            );
                            ok = false;
                        }
                    },
                    _ => {
                        self.diags.push(
                            Diagnostic::error(Code::InvalidHint, "`@on_error` takes one policy")
                                .label(h.span, "e.g. `@on_error(skip)`"),
                        );
                        ok = false;
                    }
                },
                "on_error" => {
                    self.diags.push(
                        Diagnostic::error(Code::InvalidHint, "`@on_error` applies to filter and map stages")
                            .label(h.span, "not allowed on this stage")
                            .help("a source takes `on_error:` as an option; other stages cannot fail per row"),
                    );
                    ok = false;
                }
                other => {
                    let mut d =
                        Diagnostic::error(Code::InvalidHint, format!("unknown hint `@{other}`"))
                            .label(h.name.span, "not a hint");
                    if let Some(s) = suggest(other, ["parallel", "batch", "on_error"]) {
                        d = d.help(s);
                    }
                    self.diags.push(
                        d.note("the hints are @parallel(n), @batch(n) and @on_error(policy)"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some((out, policy))
    }
}

/// The most stages on a path from a source to `s` (iterative).
/// `sort` with computed keys: `map { *, _sort1: e1, … } | sort … | map { <the input columns> }`
/// (the keys are evaluated by the map kernels, JIT or interpreter, and never output).
fn sort_by_computed_keys(
    input: Stream,
    computed: Vec<(String, hir::Expr)>,
    keys: Vec<hir::SortKey>,
    hints: &Hints,
    span: Span,
) -> (StreamKind, RowType) {
    let row = input.row.clone();
    let column = |i: usize, f: &Field| {
        (
            f.name.clone(),
            hir::Expr::new(ExprKind::Field(i), f.ty, span),
        )
    };
    let mut fields: Vec<(String, hir::Expr)> = row
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| column(i, f))
        .collect();
    let mut wide = row.fields.clone();
    for (name, e) in computed {
        wide.push(Field {
            name: name.clone(),
            ty: e.ty,
        });
        fields.push((name, e));
    }
    let wide = RowType::new(wide);
    let with_keys = Stream {
        kind: StreamKind::Map {
            input: Box::new(input),
            fields,
            policy: ErrorPolicy::default(),
        },
        row: wide.clone(),
        hints: Hints::default(),
        label: None,
        span,
    };
    let sorted = Stream {
        kind: StreamKind::Sort {
            input: Box::new(with_keys),
            keys,
        },
        row: wide,
        hints: hints.clone(),
        label: None,
        span,
    };
    let project = row
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| column(i, f))
        .collect();
    (
        StreamKind::Map {
            input: Box::new(sorted),
            fields: project,
            policy: ErrorPolicy::default(),
        },
        row,
    )
}

fn stages_deep(s: &Stream) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(s, 0usize)];
    while let Some((s, d)) = stack.pop() {
        deepest = deepest.max(d);
        match &s.kind {
            StreamKind::Source(_) => {}
            StreamKind::Filter { input, .. }
            | StreamKind::Map { input, .. }
            | StreamKind::Group { input, .. }
            | StreamKind::Limit { input, .. }
            | StreamKind::Sort { input, .. }
            | StreamKind::Distinct { input, .. } => stack.push((input, d + 1)),
            StreamKind::Union { inputs } => stack.extend(inputs.iter().map(|i| (i, d + 1))),
            StreamKind::Join { left, right, .. } => {
                stack.push((left, d + 1));
                stack.push((right, d + 1));
            }
        }
    }
    deepest
}

/// An unknown key column, with a suggestion and the row type.
fn unknown_field(k: &ast::Ident, row: &RowType) -> Diagnostic {
    let mut d = Diagnostic::error(Code::UnknownField, format!("unknown field `{}`", k.name))
        .label(k.span, "the rows here have no such column");
    if let Some(s) = suggest(&k.name, row.fields.iter().map(|f| f.name.as_str())) {
        d = d.help(s);
    }
    d.note(format!("the rows here are {row}"))
}

fn same_columns(a: &RowType, b: &RowType) -> bool {
    a.len() == b.len()
        && a.fields
            .iter()
            .zip(&b.fields)
            .all(|(x, y)| x.name == y.name && x.ty.scalar == y.ty.scalar)
}

/// 1-based line of `span`'s start: a binary search in the file's line starts (computed once per
/// file), so that many sinks in one file cost O(n log n), not O(n²).
fn line_of(fcx: &FileCx, span: Span) -> usize {
    let starts = fcx.line_starts.get_or_init(|| {
        std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', fcx.text.as_bytes()).map(|i| i + 1))
            .collect()
    });
    starts.partition_point(|&s| s <= span.start as usize).max(1)
}
