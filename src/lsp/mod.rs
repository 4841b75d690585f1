//! `flow lsp`: a language server over standard input/output (`lsp-server` + `lsp-types`).
//!
//! A thin shell over a [`Session`]: open documents (and the workspace's `.flow` files, read at
//! start) are the session's files, checked together as `flow run a.flow b.flow` would; the
//! features are pure functions of a file's text and the last compilation (`analysis`, `names`).
//! Diagnostics are published after a pause in typing (debounced). A request that panics is
//! answered with an error and the server goes on with a fresh session.

mod analysis;
mod names;
mod text;

use crate::diagnostics::{Diagnostic as FlowDiagnostic, Severity};
use crate::driver::{Compilation, Session};
use crate::span::{FileId, Span};
use analysis::{Doc, ItemKind};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types as lt;
use lsp_types::notification::Notification as _;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use text::{LineIndex, path_to_uri, uri_to_path};

pub use analysis::KEYWORDS;

/// How long typing must pause before the files are checked and diagnostics published.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// The most `.flow` files read from the workspace folder at start.
const MAX_WORKSPACE_FILES: usize = 500;

/// Serves one client on stdin/stdout until `shutdown` + `exit` (or the input closes).
pub fn serve() -> Result<(), String> {
    let (conn, io) = Connection::stdio();
    let caps = serde_json::to_value(capabilities()).map_err(|e| e.to_string())?;
    let params = conn.initialize(caps).map_err(|e| e.to_string())?;
    let params: lt::InitializeParams = serde_json::from_value(params).unwrap_or_default();
    let mut server = Server::new(&params);
    let result = server.main_loop(&conn);
    drop(conn);
    io.join().map_err(|e| e.to_string())?;
    result
}

fn capabilities() -> lt::ServerCapabilities {
    lt::ServerCapabilities {
        text_document_sync: Some(lt::TextDocumentSyncCapability::Kind(
            lt::TextDocumentSyncKind::FULL,
        )),
        hover_provider: Some(lt::HoverProviderCapability::Simple(true)),
        completion_provider: Some(lt::CompletionOptions {
            trigger_characters: Some(vec![".".into(), "|".into(), "{".into(), " ".into()]),
            ..Default::default()
        }),
        definition_provider: Some(lt::OneOf::Left(true)),
        references_provider: Some(lt::OneOf::Left(true)),
        rename_provider: Some(lt::OneOf::Left(true)),
        document_symbol_provider: Some(lt::OneOf::Left(true)),
        document_formatting_provider: Some(lt::OneOf::Left(true)),
        inlay_hint_provider: Some(lt::OneOf::Left(true)),
        ..Default::default()
    }
}

struct Server {
    session: Session,
    /// Every file of the session: path → text (open documents override the disk's text).
    files: BTreeMap<PathBuf, String>,
    open: BTreeSet<PathBuf>,
    /// Files last published with diagnostics (to clear them when they have none).
    published: BTreeSet<PathBuf>,
    /// Set by a change: check and publish once typing pauses.
    dirty: Option<Instant>,
}

impl Server {
    fn new(params: &lt::InitializeParams) -> Server {
        let mut files = BTreeMap::new();
        let workspace = params
            .initialization_options
            .as_ref()
            .and_then(|o| o.get("workspace"))
            .and_then(Value::as_bool)
            .unwrap_or(true);
        #[allow(deprecated)] // root_uri: what clients without workspace folders send
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|f| f.first())
            .map(|f| f.uri.clone())
            .or_else(|| params.root_uri.clone());
        if workspace && let Some(root) = root.as_ref().and_then(uri_to_path) {
            for path in workspace_files(&root) {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    files.insert(path, text);
                }
            }
        }
        let mut s = Server {
            session: Session::default(),
            files,
            open: BTreeSet::new(),
            published: BTreeSet::new(),
            dirty: Some(Instant::now()),
        };
        s.reset_session();
        s
    }

    /// A new session holding every file (at start, and after a panic).
    fn reset_session(&mut self) {
        self.session = Session::default();
        for (p, t) in &self.files {
            self.session.set_file(&p.to_string_lossy(), t);
        }
    }

    fn main_loop(&mut self, conn: &Connection) -> Result<(), String> {
        loop {
            let wait = match self.dirty {
                Some(at) => DEBOUNCE.saturating_sub(at.elapsed()),
                None => Duration::from_secs(3600),
            };
            let msg = match conn.receiver.recv_timeout(wait) {
                Ok(m) => m,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if self.dirty.take().is_some() {
                        self.publish(conn);
                    }
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Ok(()),
            };
            match msg {
                Message::Request(req) => {
                    if conn.handle_shutdown(&req).map_err(|e| e.to_string())? {
                        return Ok(());
                    }
                    let id = req.id.clone();
                    let resp = match catch_unwind(AssertUnwindSafe(|| self.request(req))) {
                        Ok(Ok(v)) => Response::new_ok(id, v),
                        Ok(Err((code, msg))) => Response::new_err(id, code as i32, msg),
                        Err(panic) => {
                            self.reset_session();
                            let what = panic_text(&panic);
                            Response::new_err(
                                id,
                                ErrorCode::InternalError as i32,
                                format!("flow lsp: internal error: {what}"),
                            )
                        }
                    };
                    send(conn, resp.into())?;
                }
                Message::Notification(n) => {
                    if n.method == lt::notification::Exit::METHOD {
                        return Ok(());
                    }
                    self.notification(n);
                }
                Message::Response(_) => {}
            }
        }
    }

    fn notification(&mut self, n: Notification) {
        use lt::notification::*;
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<lt::DidOpenTextDocumentParams>(n.params)
                    && let Some(path) = uri_to_path(&p.text_document.uri)
                {
                    self.open.insert(path.clone());
                    self.set(path, p.text_document.text);
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<lt::DidChangeTextDocumentParams>(n.params)
                    && let Some(path) = uri_to_path(&p.text_document.uri)
                    && let Some(change) = p.content_changes.into_iter().last()
                {
                    self.set(path, change.text);
                }
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<lt::DidCloseTextDocumentParams>(n.params)
                    && let Some(path) = uri_to_path(&p.text_document.uri)
                {
                    self.open.remove(&path);
                    // The disk's text again, or gone if it is not there.
                    match std::fs::read_to_string(&path) {
                        Ok(text) => self.set(path, text),
                        Err(_) => {
                            self.files.remove(&path);
                            self.session.remove_file(&path.to_string_lossy());
                            self.dirty = Some(Instant::now());
                        }
                    }
                }
            }
            DidSaveTextDocument::METHOD => {
                // Data files may have changed with it: probe them again.
                self.reset_session();
                self.dirty = Some(Instant::now());
            }
            DidChangeWatchedFiles::METHOD => {
                let Ok(p) = serde_json::from_value::<lt::DidChangeWatchedFilesParams>(n.params)
                else {
                    return;
                };
                for change in p.changes {
                    let Some(path) = uri_to_path(&change.uri) else {
                        continue;
                    };
                    let is_script = path.extension().is_some_and(|e| e == "flow");
                    if !is_script || self.open.contains(&path) {
                        continue;
                    }
                    match std::fs::read_to_string(&path) {
                        Ok(text) if change.typ != lt::FileChangeType::DELETED => {
                            self.files.insert(path, text);
                        }
                        _ => {
                            self.files.remove(&path);
                        }
                    }
                }
                // A data file (or a script) changed: check everything again, probing anew.
                self.reset_session();
                self.dirty = Some(Instant::now());
            }
            _ => {}
        }
    }

    fn set(&mut self, path: PathBuf, text: String) {
        self.session.set_file(&path.to_string_lossy(), &text);
        self.files.insert(path, text);
        self.dirty = Some(Instant::now());
    }

    /// Checks all files (cached until one changes); `None` if the checker panicked.
    fn compile(&mut self) -> Option<&Compilation> {
        let ok = catch_unwind(AssertUnwindSafe(|| {
            self.session.compile();
        }));
        if ok.is_err() {
            self.reset_session();
            return None;
        }
        Some(self.session.compile())
    }

    fn publish(&mut self, conn: &Connection) {
        let known: BTreeSet<PathBuf> = self.files.keys().cloned().collect();
        let Some(comp) = self.compile() else {
            return;
        };
        let mut by_file: BTreeMap<PathBuf, Vec<lt::Diagnostic>> = BTreeMap::new();
        for d in &comp.diagnostics {
            let Some(span) = d.primary_span() else {
                continue;
            };
            let path = PathBuf::from(&comp.sources.get(span.file).name);
            if !known.contains(&path) {
                continue;
            }
            let ix = LineIndex::new(&comp.sources.get(span.file).text);
            by_file.entry(path).or_default().push(to_lsp(d, &ix, comp));
        }
        let mut now = BTreeSet::new();
        for (path, diags) in &by_file {
            now.insert(path.clone());
            publish_one(conn, path, diags.clone());
        }
        // Clear what was reported before, and say "no problems" for every open file.
        for path in self.published.union(&self.open) {
            if !now.contains(path) {
                publish_one(conn, path, vec![]);
            }
        }
        self.published = now;
    }

    fn request(&mut self, req: Request) -> Result<Value, (ErrorCode, String)> {
        use lt::request::*;
        let bad = |e: serde_json::Error| (ErrorCode::InvalidParams, e.to_string());
        let json = |v: Result<Value, serde_json::Error>| {
            v.map_err(|e| (ErrorCode::InternalError, e.to_string()))
        };
        match req.method.as_str() {
            HoverRequest::METHOD => {
                let p: lt::HoverParams = serde_json::from_value(req.params).map_err(bad)?;
                let pos = p.text_document_position_params;
                let hover = self.with_doc(&pos.text_document.uri, |doc, ix| {
                    let text = analysis::hover(doc, ix.offset(pos.position))?;
                    // A hovered URL or declaration never shows its password.
                    let text = crate::diagnostics::mask_secrets(&text).into_owned();
                    Some(lt::Hover {
                        contents: lt::HoverContents::Markup(lt::MarkupContent {
                            kind: lt::MarkupKind::Markdown,
                            value: text,
                        }),
                        range: None,
                    })
                })?;
                json(serde_json::to_value(hover))
            }
            Completion::METHOD => {
                let p: lt::CompletionParams = serde_json::from_value(req.params).map_err(bad)?;
                let pos = p.text_document_position;
                let path = self.path_of(&pos.text_document.uri)?;
                let name = path.to_string_lossy().into_owned();
                let mut recheck = |text: &str| {
                    let mut s = Session::default();
                    s.set_file(&name, text);
                    let c = s.compile().clone();
                    let file = c.sources.files.iter().rposition(|f| f.name == name)?;
                    Some((FileId(file as u32), c))
                };
                let items = self.with_doc(&pos.text_document.uri, |doc, ix| {
                    analysis::completion(doc, ix.offset(pos.position), &mut recheck)
                })?;
                let items: Vec<lt::CompletionItem> = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| lt::CompletionItem {
                        label: c.label,
                        kind: Some(completion_kind(c.kind)),
                        detail: c.detail,
                        documentation: c.doc.map(lt::Documentation::String),
                        sort_text: Some(format!("{i:04}")),
                        ..Default::default()
                    })
                    .collect();
                json(serde_json::to_value(lt::CompletionResponse::Array(items)))
            }
            GotoDefinition::METHOD => {
                let p: lt::GotoDefinitionParams =
                    serde_json::from_value(req.params).map_err(bad)?;
                let pos = p.text_document_position_params;
                let uri = pos.text_document.uri.clone();
                let loc = self.with_doc(&uri, |doc, ix| {
                    let span = analysis::definition(doc, ix.offset(pos.position))?;
                    Some(location(&uri, ix, span))
                })?;
                json(serde_json::to_value(loc))
            }
            References::METHOD => {
                let p: lt::ReferenceParams = serde_json::from_value(req.params).map_err(bad)?;
                let pos = p.text_document_position;
                let uri = pos.text_document.uri.clone();
                let locs = self.with_doc(&uri, |doc, ix| {
                    let off = ix.offset(pos.position);
                    analysis::references(doc, off, p.context.include_declaration)
                        .into_iter()
                        .map(|s| location(&uri, ix, s))
                        .collect::<Vec<_>>()
                })?;
                json(serde_json::to_value(locs))
            }
            Rename::METHOD => {
                let p: lt::RenameParams = serde_json::from_value(req.params).map_err(bad)?;
                let pos = p.text_document_position;
                let uri = pos.text_document.uri.clone();
                let edits = self.with_doc(&uri, |doc, ix| {
                    let off = ix.offset(pos.position);
                    analysis::rename(doc, off, &p.new_name).map(|edits| {
                        edits
                            .into_iter()
                            .map(|(s, t)| lt::TextEdit::new(ix.range(s.start as _, s.end as _), t))
                            .collect::<Vec<_>>()
                    })
                })?;
                let edits = edits.map_err(|e| (ErrorCode::RequestFailed, e))?;
                let edits = json(serde_json::to_value(edits))?;
                Ok(serde_json::json!({ "changes": { uri.as_str(): edits } }))
            }
            DocumentSymbolRequest::METHOD => {
                let p: lt::DocumentSymbolParams =
                    serde_json::from_value(req.params).map_err(bad)?;
                let syms = self.with_doc(&p.text_document.uri, |doc, ix| {
                    analysis::symbols(doc)
                        .into_iter()
                        .map(|s| symbol(s, ix))
                        .collect::<Vec<_>>()
                })?;
                json(serde_json::to_value(lt::DocumentSymbolResponse::Nested(
                    syms,
                )))
            }
            Formatting::METHOD => {
                let p: lt::DocumentFormattingParams =
                    serde_json::from_value(req.params).map_err(bad)?;
                let path = self.path_of(&p.text_document.uri)?;
                let text = self.files.get(&path).cloned().unwrap_or_default();
                let formatted = crate::fmt::format(&text, FileId(0)).map_err(|e| {
                    let why = match e {
                        crate::fmt::FmtError::Syntax(_) => "the file has syntax errors".into(),
                        crate::fmt::FmtError::Changed(why) => why,
                    };
                    (ErrorCode::RequestFailed, format!("not formatted: {why}"))
                })?;
                let edits = if formatted == text {
                    vec![]
                } else {
                    let ix = LineIndex::new(&text);
                    vec![lt::TextEdit::new(ix.range(0, text.len()), formatted)]
                };
                json(serde_json::to_value(edits))
            }
            InlayHintRequest::METHOD => {
                let p: lt::InlayHintParams = serde_json::from_value(req.params).map_err(bad)?;
                let hints = self.with_doc(&p.text_document.uri, |doc, ix| {
                    let (start, end) = (ix.offset(p.range.start), ix.offset(p.range.end));
                    analysis::inlay_hints(doc, start, end)
                        .into_iter()
                        .map(|(at, label)| lt::InlayHint {
                            position: ix.position(at),
                            label: lt::InlayHintLabel::String(label),
                            kind: Some(lt::InlayHintKind::TYPE),
                            text_edits: None,
                            tooltip: None,
                            padding_left: Some(true),
                            padding_right: None,
                            data: None,
                        })
                        .collect::<Vec<_>>()
                })?;
                json(serde_json::to_value(hints))
            }
            // Lets the tests see a panicking request answered as an error (off by default).
            "flow/testPanic" if std::env::var_os("FLOW_LSP_TEST_PANIC").is_some() => {
                panic!("flow/testPanic")
            }
            other => Err((
                ErrorCode::MethodNotFound,
                format!("flow lsp does not implement {other}"),
            )),
        }
    }

    fn path_of(&self, uri: &lt::Uri) -> Result<PathBuf, (ErrorCode, String)> {
        let path = uri_to_path(uri).ok_or_else(|| {
            (
                ErrorCode::InvalidParams,
                format!("not a file URI: {}", uri.as_str()),
            )
        })?;
        if !self.files.contains_key(&path) {
            return Err((
                ErrorCode::InvalidParams,
                format!("{} is not open", path.display()),
            ));
        }
        Ok(path)
    }

    /// Runs a feature on the document `uri` with the session's current compilation.
    fn with_doc<R>(
        &mut self,
        uri: &lt::Uri,
        f: impl FnOnce(&Doc, &LineIndex) -> R,
    ) -> Result<R, (ErrorCode, String)> {
        let path = self.path_of(uri)?;
        let name = path.to_string_lossy().into_owned();
        let text = self.files.get(&path).cloned().unwrap_or_default();
        let comp = self
            .compile()
            .ok_or((ErrorCode::InternalError, "the checker failed".to_string()))?;
        let file = comp
            .sources
            .files
            .iter()
            .rposition(|f| f.name == name)
            .map(|i| FileId(i as u32))
            .ok_or((
                ErrorCode::InternalError,
                "file not in the session".to_string(),
            ))?;
        let doc = Doc::new(&text, file, comp);
        let ix = LineIndex::new(&text);
        Ok(f(&doc, &ix))
    }
}

fn workspace_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    dirs.push(e.path());
                }
            } else if ft.is_file() && name.ends_with(".flow") {
                if out.len() >= MAX_WORKSPACE_FILES {
                    return out;
                }
                out.push(e.path());
            }
        }
    }
    out
}

fn send(conn: &Connection, msg: Message) -> Result<(), String> {
    conn.sender
        .send(msg)
        .map_err(|e| format!("flow lsp: the client is gone: {e}"))
}

fn publish_one(conn: &Connection, path: &Path, diagnostics: Vec<lt::Diagnostic>) {
    let Some(uri) = path_to_uri(path) else { return };
    let params = lt::PublishDiagnosticsParams::new(uri, diagnostics, None);
    let n = Notification::new(
        lt::notification::PublishDiagnostics::METHOD.to_string(),
        params,
    );
    let _ = send(conn, n.into());
}

fn to_lsp(d: &FlowDiagnostic, ix: &LineIndex, comp: &Compilation) -> lt::Diagnostic {
    let span = d.primary_span().unwrap_or_default();
    let mut message = d.message.clone();
    let mask = |t: String| crate::diagnostics::mask_secrets(&t).into_owned();
    if let Some(l) = d.labels.first()
        && !l.message.is_empty()
    {
        message.push_str(&format!(": {}", l.message));
    }
    for h in &d.help {
        message.push_str(&format!("\nhelp: {h}"));
    }
    for n in &d.notes {
        message.push_str(&format!("\nnote: {n}"));
    }
    let related: Vec<lt::DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .skip(1)
        .filter_map(|l| {
            let file = comp.sources.get(l.span.file);
            let uri = path_to_uri(Path::new(&file.name))?;
            let lix = LineIndex::new(&file.text);
            Some(lt::DiagnosticRelatedInformation {
                location: lt::Location::new(uri, lix.range(l.span.start as _, l.span.end as _)),
                message: mask(l.message.clone()),
            })
        })
        .collect();
    lt::Diagnostic {
        range: ix.range(span.start as usize, span.end as usize),
        severity: Some(match d.severity {
            Severity::Error => lt::DiagnosticSeverity::ERROR,
            Severity::Warning => lt::DiagnosticSeverity::WARNING,
        }),
        code: Some(lt::NumberOrString::String(d.code.as_str().to_string())),
        source: Some("flow".into()),
        message: mask(message),
        related_information: (!related.is_empty()).then_some(related),
        ..Default::default()
    }
}

fn location(uri: &lt::Uri, ix: &LineIndex, s: Span) -> lt::Location {
    lt::Location::new(uri.clone(), ix.range(s.start as usize, s.end as usize))
}

#[allow(deprecated)] // DocumentSymbol::deprecated must be spelt out
fn symbol(s: analysis::Symbol, ix: &LineIndex) -> lt::DocumentSymbol {
    lt::DocumentSymbol {
        name: s.name,
        detail: s.detail,
        kind: match s.kind {
            ItemKind::Schema => lt::SymbolKind::STRUCT,
            ItemKind::Field => lt::SymbolKind::FIELD,
            ItemKind::Function => lt::SymbolKind::FUNCTION,
            ItemKind::Stream => lt::SymbolKind::EVENT,
            _ => lt::SymbolKind::VARIABLE,
        },
        tags: None,
        deprecated: None,
        range: ix.range(s.span.start as _, s.span.end as _),
        selection_range: ix.range(s.name_span.start as _, s.name_span.end as _),
        children: Some(s.children.into_iter().map(|c| symbol(c, ix)).collect()),
    }
}

fn completion_kind(k: ItemKind) -> lt::CompletionItemKind {
    match k {
        ItemKind::Field => lt::CompletionItemKind::FIELD,
        ItemKind::Keyword => lt::CompletionItemKind::KEYWORD,
        ItemKind::Function => lt::CompletionItemKind::FUNCTION,
        ItemKind::Stream => lt::CompletionItemKind::VARIABLE,
        ItemKind::Schema => lt::CompletionItemKind::STRUCT,
        ItemKind::Module => lt::CompletionItemKind::MODULE,
        ItemKind::Variable => lt::CompletionItemKind::VARIABLE,
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}
