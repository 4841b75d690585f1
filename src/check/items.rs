//! Declarations: modes, `use`, schemas, sources, functions, lets and pipeline statements of a
//! file, and the connector/mode/hint options they carry.

use super::cx::{
    Checker, FileCx, FnEntry, FnHir, FnScope, FnState, StreamDef, dup, join_path, parse_on_error,
    positive_int,
};
use super::expr::{ExprCx, Names};
use super::hir;
use super::{Input, StdModule};
use crate::catalog::{Argument, ConnectorInfo, Description, Refusal};
use crate::diagnostics::suggest;
use crate::diagnostics::{Code, Diagnostic};
use crate::job::{ErrorPolicy, MaxErrors, Mode, OnError, Options};
use crate::span::Span;
use crate::syntax::ast;
use crate::types::{Field, RowType, Scalar, Type, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

impl<'p> Checker<'p> {
    /// Registers a stdlib module's functions (checked lazily, when first called).
    pub fn add_std_module(&mut self, m: &StdModule) {
        let short = m.path.rsplit('.').next().unwrap_or(&m.path).to_string();
        let mut scope = FnScope::default();
        let mut ids = Vec::new();
        for item in &m.module.items {
            match item {
                ast::Item::Fn(f) => {
                    let Some(id) =
                        self.declare_fn(f, &mut scope, format!("{short}.{}", f.name.name))
                    else {
                        continue;
                    };
                    ids.push(id);
                }
                ast::Item::Use(u) => {
                    let path: Vec<&str> = u.path.iter().map(|i| i.name.as_str()).collect();
                    let other = path.last().copied().unwrap_or_default().to_string();
                    if let Some(fns) = self.std_modules.get(&other) {
                        scope.modules.insert(other, fns.clone());
                    }
                }
                ast::Item::Error(_) => {}
                other => {
                    let span = item_span(other);
                    self.diags.push(
                        Diagnostic::error(
                            Code::UnexpectedToken,
                            format!("stdlib module `{}` may only contain functions", m.path),
                        )
                        .label(span, "not a function"),
                    );
                }
            }
        }
        let shared = std::rc::Rc::new(scope.clone());
        for id in ids {
            self.fns[id].scope = shared.clone();
        }
        self.std_modules.insert(short, scope.fns);
    }

    /// Registers a function in `scope` (checked lazily); `None` if the name is taken.
    fn declare_fn(
        &mut self,
        f: &ast::FnDecl,
        scope: &mut FnScope,
        qualified: String,
    ) -> Option<usize> {
        if scope.fns.contains_key(&f.name.name) {
            self.diags.push(dup(&f.name, "function"));
            return None;
        }
        let id = self.fns.len();
        self.fns.push(FnEntry {
            decl: f.clone(),
            scope: Default::default(),
            state: FnState::Unchecked,
            qualified,
        });
        scope.fns.insert(f.name.name.clone(), id);
        Some(id)
    }

    /// The checked form of function `id`, checking it on first use.
    pub fn fn_hir(&mut self, id: usize, call_span: Span) -> Option<std::rc::Rc<FnHir>> {
        match &self.fns[id].state {
            FnState::Done(f) => return f.clone(),
            FnState::InProgress => {
                let decl_span = self.fns[id].decl.name.span;
                let name = self.fns[id].qualified.clone();
                self.diags.push(
                    Diagnostic::error(Code::RecursiveFunction, format!("function `{name}` calls itself"))
                        .label(call_span, "this call is recursive")
                        .label(decl_span, "in this function")
                        .help("functions are inlined into row kernels, so they cannot recurse; write the logic without recursion"),
                );
                return None;
            }
            FnState::Unchecked => {}
        }
        if self.fn_nesting >= MAX_FN_NESTING {
            self.check_callees_first(id);
        }
        self.fns[id].state = FnState::InProgress;
        let decl = self.fns[id].decl.clone();
        let scope = std::rc::Rc::clone(&self.fns[id].scope);
        self.fn_nesting += 1;
        let result = self.check_fn(&decl, &scope).map(std::rc::Rc::new);
        self.fn_nesting -= 1;
        self.fns[id].state = FnState::Done(result.clone());
        result
    }

    /// Checks the unchecked fns that `root` calls, directly or not, callees first and without
    /// recursion, so that checking `root` finds them done. (A fn is checked when first called,
    /// which nests one check per fn in a chain declared callers first: thousands overflowed
    /// the stack.) Stops at a cycle, which the checks themselves report (E0027).
    fn check_callees_first(&mut self, root: usize) {
        let mut done: HashMap<usize, bool> = HashMap::new(); // false: its callees are pending
        let mut stack = vec![(root, false)];
        while let Some((id, callees_done)) = stack.pop() {
            if callees_done {
                done.insert(id, true);
                if id != root {
                    let span = self.fns[id].decl.name.span;
                    self.fn_hir(id, span);
                }
                continue;
            }
            match done.get(&id) {
                Some(true) => continue,
                Some(false) => return, // a cycle
                None => {}
            }
            if !matches!(self.fns[id].state, FnState::Unchecked) {
                continue;
            }
            done.insert(id, false);
            stack.push((id, true));
            let called = called_fns(&self.fns[id].decl.body, &self.fns[id].scope);
            stack.extend(called.into_iter().rev().map(|c| (c, false)));
        }
    }

    fn check_fn(&mut self, decl: &ast::FnDecl, scope: &FnScope) -> Option<FnHir> {
        let mut params = Vec::new();
        let mut seen = HashSet::new();
        let mut ok = true;
        for (i, p) in decl.params.iter().enumerate() {
            if !seen.insert(p.name.name.clone()) {
                self.diags.push(dup(&p.name, "parameter"));
                ok = false;
            }
            match self.type_expr(&p.ty) {
                Some(t) => params.push((p.name.name.clone(), i, t)),
                None => ok = false,
            }
        }
        let ret = self.type_expr(&decl.ret);
        if !ok {
            return None;
        }
        let ret = ret?;
        let n = params.len();
        let mut cx = ExprCx {
            ck: self,
            names: Names::Params(params.clone()),
            scope: std::borrow::Cow::Borrowed(scope),
            nonnull: HashSet::new(),
            next_local: n,
            inlined: 0,
            calls: Some(Vec::new()),
        };
        let body = cx.check(&decl.body);
        let calls = cx.calls.take().unwrap_or_default();
        let body = body?;
        let unified = super::expr::unify(body.ty, ret)
            .filter(|t| t.scalar == ret.scalar && (ret.nullable || !body.ty.nullable));
        if unified.is_none() {
            let mut d = Diagnostic::error(
                Code::TypeMismatch,
                format!(
                    "`{}` is declared to return {ret}, but its body is {}",
                    decl.name.name, body.ty
                ),
            )
            .label(body.span, format!("this is {}", body.ty))
            .label(decl.ret.span, format!("declared {ret} here"));
            if body.ty.nullable && body.ty.scalar == ret.scalar {
                d = d.help(format!(
                    "declare the return type `{ret}?`, or give a default with `??`"
                ));
            }
            self.diags.push(d);
            return None;
        }
        let body = super::expr::coerce(body, ret);
        let body = super::share::share(body, n, calls);
        let params = params.into_iter().map(|(n, _, t)| (n, t)).collect();
        Some(super::inline::finish(
            params,
            body,
            decl.name.span,
            super::share::own_fallible,
        ))
    }

    pub fn type_expr(&mut self, t: &ast::TypeExpr) -> Option<Type> {
        match Scalar::from_name(&t.name.name) {
            Some(s) => Some(Type {
                scalar: s,
                nullable: t.nullable,
            }),
            None => {
                let mut d =
                    Diagnostic::error(Code::UnknownType, format!("unknown type `{}`", t.name.name))
                        .label(t.name.span, "not a type");
                let alias = match t.name.name.as_str() {
                    "string" | "String" | "text" | "varchar" => Some("str"),
                    "integer" | "i64" | "long" | "bigint" => Some("int"),
                    "double" | "f64" | "number" | "real" => Some("float"),
                    "boolean" => Some("bool"),
                    "datetime" | "date" => Some("timestamp"),
                    _ => None,
                };
                if let Some(a) = alias {
                    d = d.help(format!("did you mean `{a}`?"));
                } else if let Some(s) =
                    suggest(&t.name.name, ["int", "float", "bool", "str", "timestamp"])
                {
                    d = d.help(s);
                }
                self.diags.push(d.note(
                    "the types are int, float, bool, str and timestamp; add `?` for nullable",
                ));
                None
            }
        }
    }

    /// Checks one user file; returns its mode declaration, if any.
    pub fn check_file(&mut self, input: &Input) -> Option<(Mode, Span)> {
        let mut fcx = FileCx {
            name: input.name.clone(),
            text: input.text,
            base_dir: input.base_dir.clone(),
            schemas: HashMap::new(),
            streams: HashMap::new(),
            used: HashSet::new(),
            scope: FnScope::default(),
            modules_used: HashSet::new(),
            line_starts: Default::default(),
        };
        let items = &input.module.items;
        let sinks_at_start = self.sinks.len();
        let mut mode: Option<(Mode, Span)> = None;
        let mut has_syntax_errors = false;
        // Pass 1: uses, schemas and fns (usable anywhere in the file).
        let mut fn_ids = Vec::new();
        for item in items {
            match item {
                ast::Item::Use(u) => self.use_decl(u, &mut fcx),
                ast::Item::Schema(s) => self.schema_decl(s, &mut fcx),
                ast::Item::Fn(f) => {
                    let Some(id) = self.declare_fn(f, &mut fcx.scope, f.name.name.clone()) else {
                        continue;
                    };
                    fn_ids.push(id);
                }
                ast::Item::Error(ast::ErrorItem {
                    declares: Some((kind, name)),
                    ..
                }) => {
                    has_syntax_errors = true;
                    match kind {
                        ast::DeclKind::Stream => {
                            fcx.streams
                                .insert(name.name.clone(), (StreamDef::Let(None), name.span));
                            fcx.used.insert(name.name.clone());
                        }
                        ast::DeclKind::Schema => {
                            fcx.schemas
                                .insert(name.name.clone(), (RowType::default(), name.span));
                        }
                        ast::DeclKind::Function => {
                            let id = self.fns.len();
                            let decl = ast::FnDecl {
                                name: name.clone(),
                                params: vec![],
                                ret: ast::TypeExpr {
                                    name: name.clone(),
                                    nullable: false,
                                    span: name.span,
                                },
                                body: ast::Expr {
                                    kind: ast::ExprKind::Error,
                                    span: name.span,
                                },
                                span: name.span,
                            };
                            self.fns.push(FnEntry {
                                decl,
                                scope: Default::default(),
                                state: FnState::Done(None),
                                qualified: name.name.clone(),
                            });
                            fcx.scope.fns.insert(name.name.clone(), id);
                        }
                    }
                }
                ast::Item::Error(_) => has_syntax_errors = true,
                ast::Item::Mode(m) => {
                    if let Some((_, prev)) = &mode {
                        self.diags.push(
                            Diagnostic::error(
                                Code::InvalidMode,
                                "a file may declare only one mode",
                            )
                            .label(m.span, "second mode")
                            .label(*prev, "first declared here"),
                        );
                    } else if let Some(parsed) = self.mode_decl(m) {
                        mode = Some((parsed, m.span));
                    }
                }
                _ => {}
            }
        }
        let shared = std::rc::Rc::new(fcx.scope.clone());
        for id in &fn_ids {
            self.fns[*id].scope = shared.clone();
        }
        for id in fn_ids {
            if matches!(self.fns[id].state, FnState::Done(None)) {
                continue;
            }
            let span = self.fns[id].decl.name.span;
            if let Some(f) = self.fn_hir(id, span) {
                let params: Vec<String> =
                    f.params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
                self.types.push(format!(
                    "{}: fn {}({}) -> {}",
                    input.name,
                    self.fns[id].qualified,
                    params.join(", "),
                    f.ty
                ));
                let name = &self.fns[id].decl.name.name;
                let what = format!("fn {name}({}) -> {}", params.join(", "), f.ty);
                self.index.decl(span, what);
            }
        }
        // Pass 2: sources, lets and pipelines, in order.
        for item in items {
            match item {
                ast::Item::Source(s) => self.source_decl(s, &mut fcx),
                ast::Item::Let(l) => self.let_decl(l, &mut fcx),
                ast::Item::Pipeline(p) => self.pipeline_stmt(p, &mut fcx),
                _ => {}
            }
        }
        // Pass 3: tests, against the sources, lets and sinks of this file.
        self.test_items(items, &mut fcx, sinks_at_start);
        if has_syntax_errors {
            // Statements that failed to parse may be the ones using these names.
            return mode;
        }
        let mut unused: Vec<(&String, &Span)> = fcx
            .streams
            .iter()
            .filter(|(n, _)| !fcx.used.contains(*n))
            .map(|(n, (_, s))| (n, s))
            .collect();
        unused.sort_by_key(|(_, s)| s.start);
        for (name, span) in unused {
            self.diags.push(
                Diagnostic::warning(Code::UnusedStream, format!("`{name}` is never used"))
                    .label(*span, "defined here but no pipeline reads it")
                    .help("use it in a pipeline that ends in a sink, or remove it"),
            );
        }
        mode
    }

    fn use_decl(&mut self, u: &ast::UseDecl, fcx: &mut FileCx) {
        let path: Vec<&str> = u.path.iter().map(|i| i.name.as_str()).collect();
        let short = path.last().copied().unwrap_or_default().to_string();
        let found = path.len() == 2 && path[0] == "std" && self.std_modules.contains_key(&short);
        if !found {
            let mut d = Diagnostic::error(
                Code::UnknownModule,
                format!("unknown module `{}`", path.join(".")),
            )
            .label(u.span, "no such stdlib module");
            let known: Vec<String> = self
                .std_modules
                .keys()
                .map(|k| format!("std.{k}"))
                .collect();
            let joined = path.join(".");
            if let Some(s) = suggest(&joined, known.iter().map(|s| s.as_str())) {
                d = d.help(s);
            }
            let mut known_sorted = known.clone();
            known_sorted.sort();
            self.diags
                .push(d.note(format!("stdlib modules: {}", known_sorted.join(", "))));
            return;
        }
        if let Some(fns) = self.std_modules.get(&short) {
            fcx.scope.modules.insert(short.clone(), fns.clone());
        }
        fcx.modules_used.insert(short);
    }

    fn schema_decl(&mut self, s: &ast::SchemaDecl, fcx: &mut FileCx) {
        if let Some((_, prev)) = fcx.schemas.get(&s.name.name) {
            self.diags
                .push(dup(&s.name, "schema").label(*prev, "first defined here"));
            return;
        }
        let mut fields: Vec<Field> = Vec::new();
        let mut ok = true;
        let mut spans: HashMap<String, Span> = HashMap::new();
        for f in &s.fields {
            if let Some(prev) = spans.get(&f.name.name) {
                self.diags.push(
                    Diagnostic::error(
                        Code::DuplicateField,
                        format!("field `{}` is declared twice", f.name.name),
                    )
                    .label(f.name.span, "declared again here")
                    .label(*prev, "first declared here"),
                );
                ok = false;
                continue;
            }
            spans.insert(f.name.name.clone(), f.name.span);
            match self.type_expr(&f.ty) {
                Some(ty) => fields.push(Field {
                    name: f.name.name.clone(),
                    ty,
                }),
                None => ok = false,
            }
        }
        if ok {
            fcx.schemas
                .insert(s.name.name.clone(), (RowType::new(fields), s.name.span));
        } else {
            // Keep the name known so uses don't report E0013 as well.
            fcx.schemas
                .insert(s.name.name.clone(), (RowType::default(), s.name.span));
        }
    }

    fn mode_decl(&mut self, m: &ast::ModeDecl) -> Option<Mode> {
        let allowed: &[&str] = match m.kind.name.as_str() {
            "single" => &["readers", "processors", "batch"],
            "multi" => &["nodes", "threads", "batch", "retries"],
            "auto" => &["batch"],
            other => {
                let mut d = Diagnostic::error(Code::InvalidMode, format!("unknown mode `{other}`"))
                    .label(m.kind.span, "not a mode");
                if let Some(s) = suggest(other, ["single", "multi", "auto"]) {
                    d = d.help(s);
                }
                self.diags
                    .push(d.note("the modes are single(…), multi(…) and auto"));
                return None;
            }
        };
        let mut values: BTreeMap<&str, u32> = BTreeMap::new();
        let mut ok = true;
        for a in &m.args {
            let Some(name) = &a.name else {
                self.diags.push(
                    Diagnostic::error(Code::InvalidMode, "mode parameters are named")
                        .label(a.span, "unnamed parameter")
                        .help(format!("write e.g. `{}: 2`", allowed[0])),
                );
                ok = false;
                continue;
            };
            let Some(key) = allowed.iter().find(|k| **k == name.name) else {
                let mut d = Diagnostic::error(
                    Code::InvalidMode,
                    format!("mode `{}` has no parameter `{}`", m.kind.name, name.name),
                )
                .label(name.span, "unknown parameter");
                if let Some(s) = suggest(&name.name, allowed.iter().copied()) {
                    d = d.help(s);
                }
                self.diags
                    .push(d.note(format!("its parameters are {}", allowed.join(", "))));
                ok = false;
                continue;
            };
            if *key == "retries" {
                match &a.value.kind {
                    ast::ExprKind::Int(i) if (0..=crate::job::MAX_RETRIES as i64).contains(i) => {
                        values.insert(key, *i as u32);
                    }
                    _ => {
                        self.diags.push(
                            Diagnostic::error(
                                Code::InvalidRetries,
                                format!(
                                    "`retries` must be an integer from 0 to {}",
                                    crate::job::MAX_RETRIES
                                ),
                            )
                            .label(a.value.span, "not a number of re-runs")
                            .help("write e.g. `retries: 2`; `flow run --retries N` overrides it"),
                        );
                        ok = false;
                    }
                }
                continue;
            }
            match positive_int(&a.value) {
                Some(v) => {
                    values.insert(key, v);
                }
                None => {
                    self.diags.push(
                        Diagnostic::error(
                            Code::InvalidMode,
                            format!("`{}` must be a positive integer", name.name),
                        )
                        .label(a.value.span, "expected an integer ≥ 1"),
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        let batch = values
            .get("batch")
            .copied()
            .unwrap_or(crate::job::DEFAULT_BATCH);
        Some(match m.kind.name.as_str() {
            "single" => Mode::Single {
                readers: values.get("readers").copied().unwrap_or(1),
                processors: values.get("processors").copied().unwrap_or(1),
                batch,
            },
            "multi" => Mode::Multi {
                nodes: values.get("nodes").copied().unwrap_or(2),
                threads: values.get("threads").copied().unwrap_or(1),
                batch,
                retries: values.get("retries").copied().unwrap_or(0),
            },
            _ => Mode::Auto { batch },
        })
    }

    fn source_decl(&mut self, s: &ast::SourceDecl, fcx: &mut FileCx) {
        if let Some((_, prev)) = fcx.streams.get(&s.name.name) {
            let d = dup(&s.name, "stream").label(*prev, "first defined here");
            self.diags.push(d);
            return;
        }
        let Some(conn) = self.connector(&s.connector, true, fcx) else {
            // Keep the name defined so its uses don't cascade into E0010.
            fcx.streams
                .insert(s.name.name.clone(), (StreamDef::Let(None), s.name.span));
            fcx.used.insert(s.name.name.clone());
            return;
        };
        let schema = if conn.describes {
            match self.declared_schema(s, fcx) {
                Ok(declared) => self.described(&conn, s, declared),
                Err(()) => None,
            }
        } else {
            self.file_schema(&conn, s, fcx)
        };
        let Some(schema) = schema else {
            fcx.streams
                .insert(s.name.name.clone(), (StreamDef::Let(None), s.name.span));
            fcx.used.insert(s.name.name.clone());
            return;
        };
        self.types
            .push(format!("{}: source {}: {}", fcx.name, s.name.name, schema));
        self.index
            .decl(s.name.span, format!("source {}: {schema}", s.name.name));
        let idx = self.sources.len();
        self.sources.push(hir::Source {
            name: s.name.name.clone(),
            connector: conn.name.clone(),
            path: conn.path.clone(),
            options: conn.options.clone(),
            schema,
            policy: conn.policy.clone(),
            span: s.span,
        });
        fcx.streams
            .insert(s.name.name.clone(), (StreamDef::Source(idx), s.name.span));
    }

    /// The schema a source's script declares (`Ok(None)`: none, or an empty one); `Err` after
    /// reporting an unknown schema name.
    fn declared_schema(
        &mut self,
        s: &ast::SourceDecl,
        fcx: &FileCx,
    ) -> Result<Option<(RowType, Span)>, ()> {
        let Some(name) = &s.schema else {
            return Ok(None);
        };
        match fcx.schemas.get(&name.name) {
            Some((row, _)) if row.is_empty() => Ok(None),
            Some((row, _)) => Ok(Some((row.clone(), name.span))),
            None => {
                let mut d = Diagnostic::error(
                    Code::UnknownSchema,
                    format!("unknown schema `{}`", name.name),
                )
                .label(name.span, "no schema of this name in this file");
                if let Some(sg) = suggest(&name.name, fcx.schemas.keys().map(|k| k.as_str())) {
                    d = d.help(sg);
                }
                self.diags.push(d);
                Err(())
            }
        }
    }

    /// A refusal of the connector (through the probe) as a diagnostic under the argument it
    /// blames.
    pub(super) fn refused(&mut self, conn: &Connector, r: Refusal) {
        let at = conn.span_of(r.option);
        let mut d = Diagnostic::error(r.code, r.message).label(at, r.label);
        if let Some(h) = r.help {
            d = d.help(h);
        }
        self.diags.push(d);
    }

    /// The schema of a source that describes its input: the description, or the declared
    /// schema checked against it column by column.
    fn described(
        &mut self,
        conn: &Connector,
        s: &ast::SourceDecl,
        declared: Option<(RowType, Span)>,
    ) -> Option<RowType> {
        let d: Description = match self.probe.describe(&conn.name, &conn.options) {
            Ok(d) => d,
            Err(r) => {
                self.refused(conn, r);
                return None;
            }
        };
        let at = conn.span_of(Some(d.option));
        let unreadable = |name: &str, ty: &str| {
            Diagnostic::error(
                Code::UnsupportedColumnType,
                format!(
                    "column `{name}` of {} has type {ty}, which flow cannot read",
                    d.what
                ),
            )
            .label(at, format!("`{name}` is {ty}"))
        };
        let Some((row, schema_span)) = declared else {
            let mut fields = Vec::new();
            let mut ok = true;
            for c in &d.columns {
                match &c.ty {
                    Ok(ty) => fields.push(Field {
                        name: c.name.clone(),
                        ty: *ty,
                    }),
                    Err(ty) => {
                        ok = false;
                        self.diags.push(unreadable(&c.name, ty).help(format!(
                            "declare a schema without `{}` to read the other columns \
                             (`source {}: MySchema = …`), or cast it in a `query:`",
                            c.name, s.name.name
                        )));
                    }
                }
            }
            return ok.then(|| RowType::new(fields));
        };
        let mut ok = true;
        let names: Vec<&str> = d.columns.iter().map(|c| c.name.as_str()).collect();
        for f in &row.fields {
            let Some(c) = d.columns.iter().find(|c| c.name == f.name) else {
                let mut e = Diagnostic::error(
                    Code::DescribedSchemaMismatch,
                    format!("column `{}` of the schema is not in {}", f.name, d.what),
                )
                .label(at, format!("has no column `{}`", f.name))
                .label(schema_span, "schema declared here");
                if let Some(sg) = suggest(&f.name, names.iter().copied()) {
                    e = e.help(sg);
                }
                self.diags
                    .push(e.note(format!("its columns are: {}", names.join(", "))));
                ok = false;
                continue;
            };
            let mismatch = |msg: String, label: String| {
                Diagnostic::error(Code::DescribedSchemaMismatch, msg)
                    .label(at, label)
                    .label(schema_span, "schema declared here")
            };
            match &c.ty {
                Err(ty) => {
                    self.diags.push(
                        unreadable(&c.name, ty).help(
                            "leave it out of the schema, or cast it in a `query:`".to_string(),
                        ),
                    );
                    ok = false;
                }
                Ok(ty) if ty.scalar != f.ty.scalar => {
                    self.diags.push(
                        mismatch(
                            format!(
                                "column `{}` is {} in {}, but the schema declares {}",
                                f.name,
                                ty.scalar.name(),
                                d.what,
                                f.ty
                            ),
                            format!("`{}` is {}", f.name, ty.scalar.name()),
                        )
                        .help(format!(
                            "declare it `{}: {}`",
                            f.name,
                            ty.with_nullable(f.ty.nullable)
                        )),
                    );
                    ok = false;
                }
                Ok(ty) if ty.nullable && !f.ty.nullable => {
                    self.diags.push(
                        mismatch(
                            format!(
                                "column `{}` may be null in {}, but the schema declares it `{}`",
                                f.name, d.what, f.ty
                            ),
                            format!("`{}` is nullable", f.name),
                        )
                        .help(format!("declare it `{}: {}?`", f.name, f.ty)),
                    );
                    ok = false;
                }
                Ok(_) => {}
            }
        }
        ok.then_some(row)
    }

    /// The schema of a file source: declared (checked against the file's header), or
    /// inferred from the file.
    fn file_schema(
        &mut self,
        conn: &Connector,
        s: &ast::SourceDecl,
        fcx: &FileCx,
    ) -> Option<RowType> {
        match &s.schema {
            None => self.infer(conn, s),
            // An empty schema gives no source, as before; an unknown one is reported.
            Some(_) => match self.declared_schema(s, fcx) {
                Ok(Some((row, span))) => {
                    self.check_header(conn, &row, s, span);
                    Some(row)
                }
                _ => None,
            },
        }
    }

    fn check_header(
        &mut self,
        conn: &Connector,
        row: &RowType,
        s: &ast::SourceDecl,
        schema_span: Span,
    ) {
        let Some(path) = &conn.path else { return };
        if !self.probe.exists(path) {
            return;
        }
        match self.probe.header(&conn.name, path, &conn.options) {
            Ok(None) => {}
            Ok(Some(header)) => {
                for f in &row.fields {
                    if !header.contains(&f.name) {
                        let mut d = Diagnostic::error(
                            Code::SchemaHeaderMismatch,
                            format!(
                                "column `{}` of the schema is not in the header of {path}",
                                f.name
                            ),
                        )
                        .label(conn.path_span, "this file's header lacks the column")
                        .label(schema_span, "schema declared here");
                        if let Some(sg) = suggest(&f.name, header.iter().map(|h| h.as_str())) {
                            d = d.help(sg);
                        }
                        d = d.note(format!("the header is: {}", header.join(", ")));
                        self.diags.push(d);
                    }
                }
            }
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(
                        Code::SchemaInference,
                        format!("cannot read the header of {path}: {e}"),
                    )
                    .label(conn.path_span, "this file")
                    .label(s.name.span, "for this source"),
                );
            }
        }
    }

    fn infer(&mut self, conn: &Connector, s: &ast::SourceDecl) -> Option<RowType> {
        let Some(path) = &conn.path else {
            self.diags.push(
                Diagnostic::error(
                    Code::SchemaInference,
                    format!(
                        "source `{}` reads {}, so its schema must be declared",
                        s.name.name, conn.reads
                    ),
                )
                .label(s.name.span, "no schema")
                .help(format!(
                    "declare one: `schema Row {{ … }}` and `source {}: Row = …`",
                    s.name.name
                )),
            );
            return None;
        };
        if !self.probe.exists(path) {
            return None; // reported by `connector`
        }
        match self.probe.infer(&conn.name, path, &conn.options) {
            Ok(row) => Some(row),
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(
                        Code::SchemaInference,
                        format!("cannot infer the schema of `{}`: {e}", s.name.name),
                    )
                    .label(conn.path_span, "from this file")
                    .help(format!(
                        "declare the schema: `source {}: MySchema = …`",
                        s.name.name
                    )),
                );
                None
            }
        }
    }

    /// Validates a source or sink connector call.
    pub(super) fn connector(
        &mut self,
        c: &ast::ConnectorCall,
        is_source: bool,
        fcx: &FileCx,
    ) -> Option<Connector> {
        let catalog = self.catalog;
        let list = if is_source {
            &catalog.sources
        } else {
            &catalog.sinks
        };
        let known: Vec<&str> = list.iter().map(|c| c.name).collect();
        let name = c.name.name.as_str();
        let Some(info) = list.iter().find(|c| c.name == name) else {
            let kind = if is_source { "source" } else { "sink" };
            let mut d = Diagnostic::error(
                Code::UnknownConnector,
                format!("unknown {kind} connector `{name}`"),
            )
            .label(c.name.span, "not a registered connector");
            if let Some(s) = suggest(name, known.iter().copied()) {
                d = d.help(s);
            }
            self.diags
                .push(d.note(format!("{kind} connectors: {}", known.join(", "))));
            return None;
        };
        let file_based = info.takes_path();
        let positional_option = match info.argument {
            Argument::Option(o) => Some(o),
            _ => None,
        };
        let mut allowed: Vec<&str> = info.options.iter().map(|o| o.name).collect();
        if is_source {
            allowed.extend(["on_error", "max_errors"]);
        }
        let mut conn = Connector {
            name: name.to_string(),
            reads: info.reads,
            path: None,
            path_span: c.span,
            options: Options::new(),
            policy: ErrorPolicy::default(),
            describes: info.describes,
            spans: BTreeMap::new(),
            call_span: c.span,
        };
        let mut ok = true;
        let mut positional = 0;
        for a in &c.args {
            match &a.name {
                None => {
                    positional += 1;
                    if let (1, Some(key)) = (positional, positional_option) {
                        if self.option(info, key, &a.value, &mut conn, fcx) {
                            conn.spans.insert(key.to_string(), a.value.span);
                        } else {
                            ok = false;
                        }
                    } else if positional == 1 && file_based {
                        match &a.value.kind {
                            ast::ExprKind::Str(p) => {
                                conn.path = Some(join_path(&fcx.base_dir, p));
                                conn.path_span = a.value.span;
                            }
                            _ => {
                                self.diags.push(
                                    Diagnostic::error(
                                        Code::InvalidOption,
                                        "the path must be a string",
                                    )
                                    .label(
                                        a.value.span,
                                        "expected a string like \"data/file.csv\"",
                                    ),
                                );
                                ok = false;
                            }
                        }
                    } else {
                        self.diags.push(
                            Diagnostic::error(
                                Code::InvalidOption,
                                format!("unexpected positional argument to `{name}`"),
                            )
                            .label(a.span, "options are named: `name: value`"),
                        );
                        ok = false;
                    }
                }
                Some(key) => {
                    if !allowed.contains(&key.name.as_str()) {
                        let mut d = Diagnostic::error(
                            Code::InvalidOption,
                            format!("`{name}` has no option `{}`", key.name),
                        )
                        .label(key.span, "unknown option");
                        if let Some(s) = suggest(&key.name, allowed.iter().copied()) {
                            d = d.help(s);
                        }
                        let list = if allowed.is_empty() {
                            "none".to_string()
                        } else {
                            allowed.join(", ")
                        };
                        self.diags.push(d.note(format!("its options are: {list}")));
                        ok = false;
                        continue;
                    }
                    if conn.options.contains_key(&key.name)
                        || (key.name == "on_error" && conn.policy.on_error != OnError::Fail)
                    {
                        self.diags.push(
                            Diagnostic::error(
                                Code::InvalidOption,
                                format!("option `{}` is given twice", key.name),
                            )
                            .label(key.span, "again here"),
                        );
                        ok = false;
                        continue;
                    }
                    if self.option(info, &key.name, &a.value, &mut conn, fcx) {
                        conn.spans.insert(key.name.clone(), a.value.span);
                    } else {
                        ok = false;
                    }
                }
            }
        }
        if file_based && conn.path.is_none() && ok {
            self.diags.push(
                Diagnostic::error(Code::MissingPath, format!("`{name}` needs a file path"))
                    .label(c.span, "no path given")
                    .help(format!(
                        "e.g. `{name}(\"data/file.{name}\")`; paths are relative to the .flow file"
                    )),
            );
            return None;
        }
        for group in &info.one_of {
            let given: Vec<&str> = group
                .iter()
                .copied()
                .filter(|o| conn.options.contains_key(*o))
                .collect();
            if given.len() == 1 || !ok {
                continue;
            }
            let names = |v: &[&str]| {
                v.iter()
                    .map(|o| format!("`{o}:`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            };
            let d = if given.is_empty() {
                let mut d = Diagnostic::error(
                    Code::OptionRequired,
                    format!("`{name}` needs {}", names(group)),
                )
                .label(c.span, "not given");
                if let Some(p) = positional_option.filter(|p| group.contains(p)) {
                    d = d.help(format!(
                        "the `{p}` is its first argument: `{name}(\"…\", …)`"
                    ));
                }
                d
            } else {
                let mut d = Diagnostic::error(
                    Code::OptionRequired,
                    format!("`{name}` takes one of {}, not both", names(group)),
                );
                for g in &given {
                    d = d.label(conn.span_of(Some(g)), format!("`{g}` given here"));
                }
                d
            };
            self.diags.push(d);
            ok = false;
        }
        if !ok {
            return None;
        }
        for o in &info.options {
            if let Some(d) = &o.default {
                conn.options
                    .entry(o.name.to_string())
                    .or_insert_with(|| d.clone());
            }
        }
        if is_source
            && let Some(path) = &conn.path
            && !self.probe.exists(path)
        {
            let why = self.probe.why_missing(path);
            let label = if why == "does not exist" {
                "no such file"
            } else {
                "not a readable file"
            };
            self.diags.push(
                Diagnostic::error(Code::InputNotFound, format!("input file `{path}` {why}"))
                    .label(conn.path_span, label)
                    .note("paths are relative to the directory of the .flow file"),
            );
            return None;
        }
        Some(conn)
    }

    /// Validates one named option; returns false (after reporting) if invalid.
    fn option(
        &mut self,
        info: &ConnectorInfo,
        key: &str,
        value: &ast::Expr,
        conn: &mut Connector,
        fcx: &FileCx,
    ) -> bool {
        let bad = |what: &str| {
            Diagnostic::error(Code::InvalidOption, format!("invalid value for `{key}`"))
                .label(value.span, what.to_string())
        };
        match key {
            "on_error" => match parse_on_error(value, &fcx.base_dir) {
                Ok(p) => {
                    conn.policy.on_error = p;
                    true
                }
                Err(msg) => {
                    self.diags.push(
                        bad(&msg).help("on_error is `fail`, `skip` or `dead_letter(\"path\")`"),
                    );
                    false
                }
            },
            "max_errors" => match value.kind {
                ast::ExprKind::Int(n) if n >= 0 => {
                    conn.policy.max_errors = Some(MaxErrors::Count(n as u64));
                    true
                }
                ast::ExprKind::Float(x) if (0.0..=1.0).contains(&x) => {
                    conn.policy.max_errors = Some(MaxErrors::Ratio(x));
                    true
                }
                _ => {
                    self.diags.push(bad(
                        "expected a count (e.g. 100) or a ratio between 0.0 and 1.0",
                    ));
                    false
                }
            },
            _ => {
                let Some(spec) = info.option(key) else {
                    return false;
                };
                let v = match &value.kind {
                    ast::ExprKind::Bool(b) => Value::Bool(*b),
                    ast::ExprKind::Str(s) => Value::Str(s.clone()),
                    ast::ExprKind::Int(i) => Value::Int(*i),
                    ast::ExprKind::Float(x) => Value::Float(*x),
                    _ => Value::Null,
                };
                match spec.kind.accept(&v) {
                    Ok(()) => {
                        conn.options.insert(key.into(), v);
                        true
                    }
                    Err(what) => {
                        self.diags.push(bad(&what));
                        false
                    }
                }
            }
        }
    }
}

/// A validated connector call.
pub(super) struct Connector {
    pub name: String,
    /// What a source without a path reads ("standard input"), from its catalog entry.
    pub reads: &'static str,
    pub path: Option<String>,
    pub path_span: Span,
    pub options: Options,
    pub policy: ErrorPolicy,
    /// The connector describes its input or target itself (`ConnectorInfo::describes`).
    pub describes: bool,
    /// Where each option's value was written.
    pub spans: BTreeMap<String, Span>,
    pub call_span: Span,
}

impl Connector {
    /// The span of an option's value, else of the whole call.
    pub fn span_of(&self, option: Option<&str>) -> Span {
        option
            .and_then(|o| self.spans.get(o))
            .copied()
            .unwrap_or(self.call_span)
    }
}

fn item_span(item: &ast::Item) -> Span {
    match item {
        ast::Item::Mode(m) => m.span,
        ast::Item::Use(u) => u.span,
        ast::Item::Schema(s) => s.span,
        ast::Item::Source(s) => s.span,
        ast::Item::Fn(f) => f.span,
        ast::Item::Let(l) => l.span,
        ast::Item::Pipeline(p) => p.span,
        ast::Item::Test(t) => t.span,
        ast::Item::Error(e) => e.span,
    }
}

/// A `@parallel(n)` or `@batch(n)` hint as written on a stage or sink, kept until the job's
/// mode is known (it may be declared in another file) for [`hint_warnings`].
#[derive(Clone, Debug)]
pub struct HintUse {
    pub parallel: bool,
    pub n: u32,
    pub span: Span,
}

/// Hints the run cannot honour, as warnings at the hint: `@parallel(n)` asking for more
/// workers than the declared mode gives a stage (`single`: its `processors`, which run every
/// stage but the sources; `multi`: `nodes × threads`; `auto`: the thread limit), and `@batch(n)`
/// on a stage (rows are batched where they are read, so only the mode's `batch` sets it).
pub fn hint_warnings(mode: &Mode, mode_span: Option<Span>, uses: &[HintUse]) -> Vec<Diagnostic> {
    let max = crate::job::MAX_THREADS as u64;
    let (workers, what) = match mode {
        Mode::Single { processors, .. } => (
            u64::from(*processors),
            format!("mode single gives the stages {processors} processor workers"),
        ),
        Mode::Multi { nodes, threads, .. } => {
            let n = u64::from(*nodes) * u64::from(*threads);
            (
                n,
                format!("mode multi gives {nodes} processes × {threads} threads = {n} workers"),
            )
        }
        Mode::Auto { .. } => (max, format!("a job runs at most {max} workers per process")),
    };
    let mut out = Vec::new();
    for u in uses {
        let d = if u.parallel && u64::from(u.n) > workers {
            let mut d = Diagnostic::warning(
                Code::ParallelNotHonoured,
                format!(
                    "@parallel({}) cannot be honoured: the stage runs on {workers} workers",
                    u.n
                ),
            )
            .label(u.span, format!("asks for {} workers", u.n));
            if let (Some(s), false) = (mode_span, matches!(mode, Mode::Auto { .. })) {
                d = d.label(s, what.clone());
            } else {
                d = d.note(what.clone());
            }
            d.help(match mode {
                Mode::Single { .. } => "raise `processors:` in the mode, or lower the hint",
                Mode::Multi { .. } => "raise `nodes:` or `threads:` in the mode, or lower the hint",
                Mode::Auto { .. } => "lower the hint",
            })
        } else if !u.parallel {
            Diagnostic::warning(
                Code::BatchHintNotHonoured,
                format!("@batch({}) on a stage is not honoured", u.n),
            )
            .label(
                u.span,
                "rows are batched where they are read, not per stage",
            )
            .help(format!(
                "set the batch size for the job in its mode: `mode auto(batch: {})`",
                u.n
            ))
        } else {
            continue;
        };
        out.push(d);
    }
    out
}

/// How many `fn` checks may nest (each first call of a fn checks it) before the rest of a chain
/// is checked callees first (`check_callees_first`).
const MAX_FN_NESTING: usize = 32;

/// The `fn`s that `body` calls, in the order written (iterative: bodies may be deep).
fn called_fns(body: &ast::Expr, scope: &FnScope) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack = vec![body];
    while let Some(e) = stack.pop() {
        match &e.kind {
            ast::ExprKind::Call { module, name, args } => {
                let id = match module {
                    Some(m) => scope.modules.get(&m.name).and_then(|f| f.get(&name.name)),
                    None => scope.fns.get(&name.name),
                };
                out.extend(id.copied());
                stack.extend(args.iter().rev().map(|a| &a.value));
            }
            ast::ExprKind::Unary(_, a) => stack.push(a),
            ast::ExprKind::Binary(_, a, b) => stack.extend([b, a].map(|x| &**x)),
            ast::ExprKind::If(c, t, f) => stack.extend([f, t, c].map(|x| &**x)),
            _ => {}
        }
    }
    out
}
