//! `flow lsp` end to end: each test spawns the binary and speaks JSON-RPC (LSP framing) over its
//! standard input/output, with a deadline on every wait.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

const SCRIPT: &str = r#"schema Trip { id: int, city: str, fare: float }

source trips: Trip = csv("trips.csv", header: true)

fn double(x: float) -> float = x * 2.0

let big = trips | filter fare > 10.0 | map { id, city, total: double(fare) }

big | filter total > round(30.5) | sink csv("out.csv", header: true)
"#;

struct Client {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
    dir: tempfile::TempDir,
    /// Notifications received while waiting for something else.
    backlog: Vec<Value>,
    /// The server's capabilities, from its answer to `initialize`.
    caps: Value,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.parse::<usize>().ok();
        }
    }
    let mut buf = vec![0; len?];
    r.read_exact(&mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}

impl Client {
    /// Starts `flow lsp` with a workspace folder holding `trips.csv`, and initializes it.
    fn start() -> Client {
        Client::start_with(&[])
    }

    /// As `start`, with more files in the workspace folder.
    fn start_with(files: &[(&str, &str)]) -> Client {
        Client::spawn(files, false)
    }

    fn spawn(files: &[(&str, &str)], test_panic: bool) -> Client {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        std::fs::write(
            dir.path().join("trips.csv"),
            "id,city,fare\n1,Oslo,12.5\n2,Bergen,8.0\n",
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flow"));
        if test_panic {
            cmd.env("FLOW_LSP_TEST_PANIC", "1");
        }
        let mut child = cmd
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Some(m) = read_message(&mut r) {
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        let mut c = Client {
            child,
            stdin,
            rx,
            next_id: 0,
            dir,
            backlog: vec![],
            caps: Value::Null,
        };
        let root = c.uri_of(Path::new(""));
        let init = c.request(
            "initialize",
            json!({"processId": null, "rootUri": root, "capabilities": {}}),
        );
        assert!(init["result"]["capabilities"].is_object(), "{init}");
        c.caps = init["result"]["capabilities"].clone();
        c.notify("initialized", json!({}));
        c
    }

    fn uri_of(&self, rel: &Path) -> String {
        format!("file://{}", self.dir.path().join(rel).display())
            .trim_end_matches('/')
            .to_string()
    }

    fn uri(&self, name: &str) -> String {
        self.uri_of(Path::new(name))
    }

    fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn recv(&mut self, deadline: Instant) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => panic!("no message from flow lsp within {TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("flow lsp closed its output"),
        }
    }

    /// Sends a request and waits for its response (the whole message: `result` or `error`).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let m = self.recv(deadline);
            if m["id"] == json!(id) && m.get("method").is_none() {
                return m;
            }
            self.backlog.push(m);
        }
    }

    /// The result of a request that must succeed.
    fn ok(&mut self, method: &str, params: Value) -> Value {
        let r = self.request(method, params);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }

    /// Waits for the next `publishDiagnostics` of `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        let deadline = Instant::now() + TIMEOUT;
        let is_it = |m: &Value| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
        };
        if let Some(i) = self.backlog.iter().position(is_it) {
            let m = self.backlog.remove(i);
            return m["params"]["diagnostics"].as_array().unwrap().clone();
        }
        loop {
            let m = self.recv(deadline);
            if is_it(&m) {
                return m["params"]["diagnostics"].as_array().unwrap().clone();
            }
        }
    }

    fn open(&mut self, name: &str, text: &str) -> String {
        let uri = self.uri(name);
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "flow", "version": 1, "text": text}}),
        );
        uri
    }

    fn change(&mut self, uri: &str, version: i64, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version},
                   "contentChanges": [{"text": text}]}),
        );
    }

    fn at(&mut self, method: &str, uri: &str, (line, character): (u32, u32)) -> Value {
        self.ok(
            method,
            json!({"textDocument": {"uri": uri},
                   "position": {"line": line, "character": character}}),
        )
    }

    fn shutdown(mut self) -> std::process::ExitStatus {
        let r = self.request("shutdown", Value::Null);
        assert!(r.get("error").is_none(), "{r}");
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "flow lsp did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The (line, column) of the `nth` occurrence of `needle` in `text`, plus `delta` columns.
fn pos(text: &str, needle: &str, nth: usize, delta: u32) -> (u32, u32) {
    let at = text.match_indices(needle).nth(nth).expect("needle").0;
    let line = text[..at].matches('\n').count() as u32;
    let col = (at - text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0)) as u32;
    (line, col + delta)
}

fn end_of(text: &str) -> (u32, u32) {
    let line = text.matches('\n').count() as u32;
    let col = text.len() - text.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, col as u32)
}

fn hover_text(v: &Value) -> String {
    v["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn labels(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn initialize_announces_the_features() {
    let c = Client::start();
    let caps = &c.caps;
    for cap in [
        "hoverProvider",
        "completionProvider",
        "definitionProvider",
        "referencesProvider",
        "renameProvider",
        "documentSymbolProvider",
        "documentFormattingProvider",
        "inlayHintProvider",
    ] {
        assert!(
            caps.get(cap).is_some_and(|v| !v.is_null()),
            "no {cap} in {caps}"
        );
    }
    assert_eq!(caps["textDocumentSync"], 1, "full text sync");
    assert!(c.shutdown().success());
}

#[test]
fn bad_params_and_unknown_methods_are_errors_not_crashes() {
    let mut c = Client::start();
    let r = c.request("textDocument/hover", json!({}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = c.request("flow/nothing", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    let r = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": "file:///not/open.flow"}, "position": {"line": 0, "character": 0}}),
    );
    assert!(r.get("error").is_some(), "{r}");
    assert!(c.shutdown().success());
}

#[test]
fn did_open_with_an_error_publishes_it_with_code_and_range() {
    let mut c = Client::start();
    let text = SCRIPT.replace("filter fare > 10.0", "filter fair > 10.0");
    let uri = c.open("job.flow", &text);
    let diags = c.diagnostics(&uri);
    let d = diags
        .iter()
        .find(|d| d["code"] == "E0011")
        .unwrap_or_else(|| panic!("no E0011 in {diags:?}"));
    let (line, col) = pos(&text, "fair", 0, 0);
    assert_eq!(d["range"]["start"], json!({"line": line, "character": col}));
    assert_eq!(
        d["range"]["end"],
        json!({"line": line, "character": col + 4})
    );
    assert_eq!(d["severity"], 1);
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `fare`"),
        "{d}"
    );
    // Fixing it clears the diagnostics.
    c.change(&uri, 2, SCRIPT);
    assert_eq!(c.diagnostics(&uri), Vec::<Value>::new());
}

#[test]
fn hover_shows_types_and_builtin_docs() {
    let mut c = Client::start();
    let uri = c.open("job.flow", SCRIPT);
    let field = c.at("textDocument/hover", &uri, pos(SCRIPT, "fare >", 0, 1));
    assert!(hover_text(&field).contains("field fare: float"), "{field}");
    let f = c.at(
        "textDocument/hover",
        &uri,
        pos(SCRIPT, "double(fare)", 0, 2),
    );
    assert!(
        hover_text(&f).contains("fn double(x: float) -> float"),
        "{f}"
    );
    let l = c.at("textDocument/hover", &uri, pos(SCRIPT, "big |", 0, 1));
    assert!(
        hover_text(&l).contains("let big: { id: int, city: str, total: float }"),
        "{l}"
    );
    let b = c.at("textDocument/hover", &uri, pos(SCRIPT, "round", 0, 1));
    let b = hover_text(&b);
    assert!(b.contains("round(") && b.contains("example:"), "{b}");
    let out = c.at("textDocument/hover", &uri, pos(SCRIPT, "total:", 0, 1));
    assert!(
        hover_text(&out).contains("field total: float"),
        "a map's output: {out}"
    );
    let s = c.at("textDocument/hover", &uri, pos(SCRIPT, "trips |", 0, 1));
    assert!(
        hover_text(&s).contains("source trips: { id: int, city: str, fare: float }"),
        "{s}"
    );
    let e = c.at("textDocument/hover", &uri, pos(SCRIPT, "> 10.0", 0, 0));
    assert!(hover_text(&e).contains(": bool"), "{e}");
}

/// A password written in a script is never sent back by the server: not in a hovered literal,
/// not in diagnostics (a connection failure's message and a mistake on the same line).
#[test]
fn passwords_are_masked_in_hover_and_diagnostics() {
    const SECRET: &str = "Hunter2-s3cret";
    let text = format!(
        "source db = postgres(\"postgres://u:{SECRET}@127.0.0.1:1/db\", table: \"t\")\n\
         db | sink csv(\"db.csv\")\n\
         source trips = csv(\"trips.csv\", header: true)\n\
         trips | filter city == \"postgresql://u:{SECRET}@h/db\" | sink csv(\"out.csv\")\n\
         trips | filter city == \"postgres://u:{SECRET}@h/db\" + 1 | sink csv(\"bad.csv\")\n"
    );
    let mut c = Client::start_with(&[("trips.csv", "id,city\n1,x\n")]);
    let uri = c.open("job.flow", &text);
    let diags = c.diagnostics(&uri);
    let all = serde_json::to_string(&diags).unwrap();
    assert!(diags.len() >= 2, "{all}");
    assert!(
        !all.contains(SECRET),
        "a diagnostic shows the password: {all}"
    );
    let h = c.at(
        "textDocument/hover",
        &uri,
        pos(&text, "postgresql://", 0, 3),
    );
    let h = hover_text(&h);
    assert!(h.contains("postgresql://u:**************@h/db"), "{h}");
    assert!(!h.contains(SECRET), "{h}");
}

#[test]
fn hover_and_completion_of_stdlib_module_functions() {
    let mut c = Client::start();
    let text = format!("use std.text\n{SCRIPT}\nlet s = trips | map {{ c: text.slug(city) }}\n");
    let uri = c.open("job.flow", &text);
    let h = c.at("textDocument/hover", &uri, pos(&text, "slug", 0, 1));
    let h = hover_text(&h);
    assert!(
        h.contains("fn text.slug(s: str) -> str") && h.contains("dashes"),
        "{h}"
    );
    let items = c.at("textDocument/completion", &uri, pos(&text, "slug", 0, 0));
    let l = labels(&items);
    assert!(
        l.contains(&"slug".to_string()) && l.contains(&"is_blank".to_string()),
        "{l:?}"
    );
    assert!(
        !l.contains(&"filter".to_string()),
        "only the module's functions: {l:?}"
    );
}

#[test]
fn completion_of_fields_after_a_pipe_in_a_half_typed_stage() {
    let mut c = Client::start();
    let text = format!("{SCRIPT}big | map {{ ");
    let uri = c.open("job.flow", &text);
    let end = end_of(&text);
    let items = c.at("textDocument/completion", &uri, end);
    let l = labels(&items);
    for want in ["total", "city", "id", "big", "double", "round", "filter"] {
        assert!(l.contains(&want.to_string()), "no {want} in {l:?}");
    }
    assert!(
        !l.contains(&"fare".to_string()),
        "fare is not a column of big: {l:?}"
    );
    let field = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == "total")
        .unwrap();
    assert_eq!(field["kind"], 5, "a field: {field}");
    assert_eq!(field["detail"], "float");
}

#[test]
fn completion_inside_a_stage_that_checks() {
    let mut c = Client::start();
    let uri = c.open("job.flow", SCRIPT);
    let items = c.at("textDocument/completion", &uri, pos(SCRIPT, "fare >", 0, 0));
    let l = labels(&items);
    assert!(
        l.contains(&"fare".to_string()) && !l.contains(&"total".to_string()),
        "{l:?}"
    );
}

#[test]
fn definition_of_a_let_a_fn_and_a_schema() {
    let mut c = Client::start();
    let uri = c.open("job.flow", SCRIPT);
    for (use_at, def_at) in [
        (pos(SCRIPT, "big |", 0, 0), pos(SCRIPT, "big =", 0, 0)),
        (
            pos(SCRIPT, "double(fare)", 0, 0),
            pos(SCRIPT, "double(x", 0, 0),
        ),
        (pos(SCRIPT, "Trip =", 0, 0), pos(SCRIPT, "Trip {", 0, 0)),
        (pos(SCRIPT, "trips |", 0, 0), pos(SCRIPT, "trips:", 0, 0)),
    ] {
        let d = c.at("textDocument/definition", &uri, use_at);
        assert_eq!(d["uri"], uri.as_str());
        assert_eq!(
            d["range"]["start"],
            json!({"line": def_at.0, "character": def_at.1}),
            "{use_at:?}"
        );
    }
}

#[test]
fn references_of_a_field_and_a_let() {
    let mut c = Client::start();
    let uri = c.open("job.flow", SCRIPT);
    let r = c.ok(
        "textDocument/references",
        json!({"textDocument": {"uri": uri}, "position": {"line": 6, "character": 5},
               "context": {"includeDeclaration": true}}),
    );
    assert_eq!(
        r.as_array().unwrap().len(),
        2,
        "let big: definition and use: {r}"
    );
    let (l, ch) = pos(SCRIPT, "fare", 0, 0);
    let r = c.ok(
        "textDocument/references",
        json!({"textDocument": {"uri": uri}, "position": {"line": l, "character": ch},
               "context": {"includeDeclaration": false}}),
    );
    assert_eq!(
        r.as_array().unwrap().len(),
        2,
        "fare read by the filter and the map: {r}"
    );
}

#[test]
fn rename_a_let_and_a_field() {
    let mut c = Client::start();
    let uri = c.open("job.flow", SCRIPT);
    let (l, ch) = pos(SCRIPT, "big |", 0, 0);
    let r = c.ok(
        "textDocument/rename",
        json!({"textDocument": {"uri": uri}, "position": {"line": l, "character": ch},
               "newName": "large"}),
    );
    let edits = r["changes"][uri.as_str()].as_array().unwrap().clone();
    assert_eq!(edits.len(), 2, "{r}");
    assert!(edits.iter().all(|e| e["newText"] == "large"));
    let (l, ch) = pos(SCRIPT, "total:", 0, 0);
    let r = c.ok(
        "textDocument/rename",
        json!({"textDocument": {"uri": uri}, "position": {"line": l, "character": ch},
               "newName": "sum_fare"}),
    );
    assert_eq!(
        r["changes"][uri.as_str()].as_array().unwrap().len(),
        2,
        "{r}"
    );
    // A keyword is refused with an error, not an edit.
    let bad = c.request(
        "textDocument/rename",
        json!({"textDocument": {"uri": uri}, "position": {"line": l, "character": ch},
               "newName": "filter"}),
    );
    assert!(bad.get("error").is_some(), "{bad}");
}

#[test]
fn formatting_returns_the_canonical_layout() {
    let mut c = Client::start();
    let messy =
        "source t = csv(\"trips.csv\",header:true)\nt|filter fare>1.0|map{id,fare}|sink stdout()\n";
    let uri = c.open("job.flow", messy);
    let r = c.ok(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let edits = r.as_array().unwrap();
    assert_eq!(edits.len(), 1, "{r}");
    let want = flow::fmt::format(messy, flow::span::FileId(0)).unwrap();
    assert_eq!(edits[0]["newText"], want.as_str());
    assert!(want.contains("| map { id, fare }"), "{want}");
    // A file with a syntax error is refused.
    c.change(&uri, 2, "source t = csv(");
    let bad = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("syntax errors"),
        "{bad}"
    );
}

#[test]
fn document_symbols_outline_the_file() {
    let mut c = Client::start();
    let uri = c.open("job.flow", SCRIPT);
    let r = c.ok(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    let names: Vec<&str> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Trip", "trips", "double", "big"]);
    let fields = r[0]["children"].as_array().unwrap();
    assert_eq!(fields.len(), 3);
    assert_eq!(
        r[3]["detail"],
        "let big: { id: int, city: str, total: float }"
    );
}

#[test]
fn inlay_hints_show_the_row_after_each_stage() {
    let mut c = Client::start();
    let uri = c.open("job.flow", SCRIPT);
    let r = c.ok(
        "textDocument/inlayHint",
        json!({"textDocument": {"uri": uri},
               "range": {"start": {"line": 0, "character": 0}, "end": {"line": 99, "character": 0}}}),
    );
    let hints: Vec<(Value, String)> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["position"].clone(),
                h["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let end_of_map = pos(SCRIPT, "double(fare) }", 0, 14);
    assert!(
        hints.contains(&(
            json!({"line": end_of_map.0, "character": end_of_map.1}),
            "{ id: int, city: str, total: float }".to_string()
        )),
        "{hints:?}"
    );
    let filter_end = pos(SCRIPT, "fare > 10.0", 0, 11);
    assert!(
        hints.contains(&(
            json!({"line": filter_end.0, "character": filter_end.1}),
            "{ id: int, city: str, fare: float }".to_string()
        )),
        "{hints:?}"
    );
    assert_eq!(
        hints.len(),
        3,
        "filter, map, and the second pipeline's filter: {hints:?}"
    );
}

#[test]
fn a_half_typed_file_never_crashes_the_server() {
    let mut c = Client::start();
    let uri = c.open("job.flow", "");
    // Every prefix of the script (by a few characters), with requests at its end.
    let cuts: Vec<usize> = (0..=SCRIPT.len())
        .step_by(7)
        .filter(|i| SCRIPT.is_char_boundary(*i))
        .collect();
    for (v, &cut) in cuts.iter().enumerate() {
        let text = &SCRIPT[..cut];
        c.change(&uri, v as i64 + 2, text);
        let end = end_of(text);
        for method in [
            "textDocument/hover",
            "textDocument/completion",
            "textDocument/definition",
        ] {
            let r = c.request(
                method,
                json!({"textDocument": {"uri": uri},
                       "position": {"line": end.0, "character": end.1}}),
            );
            assert!(r.get("error").is_none(), "{method} at {cut}: {r}");
        }
        for method in ["textDocument/documentSymbol", "textDocument/inlayHint"] {
            let r = c.request(
                method,
                json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0},
                       "end": {"line": 99, "character": 0}}}),
            );
            assert!(r.get("error").is_none(), "{method} at {cut}: {r}");
        }
    }
    // Positions outside the text are clamped, not a crash.
    let r = c.at("textDocument/hover", &uri, (999, 999));
    assert!(r.is_null() || r.is_object());
    c.change(&uri, 999, SCRIPT);
    let h = c.at("textDocument/hover", &uri, pos(SCRIPT, "fare >", 0, 1));
    assert!(hover_text(&h).contains("float"), "{h}");
}

#[test]
fn files_of_the_workspace_are_checked_together() {
    // A second file on disk in the workspace folder, never opened: checked and reported too.
    let mut c = Client::start_with(&[("other.flow", "nope | sink stdout()\n")]);
    c.open("job.flow", SCRIPT);
    let other = c.uri("other.flow");
    let d = c.diagnostics(&other);
    assert_eq!(d[0]["code"], "E0010", "{d:?}");
    assert!(c.shutdown().success());
}

#[test]
fn a_panic_in_a_request_is_answered_as_an_error() {
    let mut c = Client::spawn(&[], true);
    let uri = c.open("job.flow", SCRIPT);
    let r = c.request("flow/testPanic", json!({}));
    assert_eq!(r["error"]["code"], -32603, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("internal error"),
        "{r}"
    );
    // The server goes on.
    let h = c.at("textDocument/hover", &uri, pos(SCRIPT, "fare >", 0, 1));
    assert!(hover_text(&h).contains("float"), "{h}");
    assert!(c.shutdown().success());
}

#[test]
fn a_changed_data_file_is_probed_again() {
    let mut c = Client::start_with(&[("t.csv", "x\n1\n")]);
    let text = "source t = csv(\"t.csv\", header: true)\nt | map { x } | sink stdout()\n";
    let uri = c.open("job.flow", text);
    assert_eq!(c.diagnostics(&uri), Vec::<Value>::new());
    std::fs::write(c.dir.path().join("t.csv"), "y\n1\n").unwrap();
    let csv = c.uri("t.csv");
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": csv, "type": 2}]}),
    );
    let d = c.diagnostics(&uri);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["code"], "E0011", "x is gone from the header: {d:?}");
}

#[test]
fn shutdown_then_exit_ends_the_process_with_success() {
    let mut c = Client::start();
    let _ = c.open("job.flow", SCRIPT);
    assert!(c.shutdown().success());
}
