//! Every documented example runs as a test: the `## example: EXPR` lines of `stdlib/*.flow`
//! (evaluated in their module's scope) and the `example` of every builtin's signature. Each
//! example is a bool expression that must be true, under both the interpreter and the JIT.
//! Each example is its own test: `std.text::slug#1` (the first example of `text.slug`),
//! `builtin::upper`; run some with `cargo test --test stdlib_examples std.text`.

use libtest_mimic::{Arguments, Failed, Trial};

use flow::batch::Batch;
use flow::check::Probe;
use flow::check::hir::StreamKind;
use flow::codegen::{Engine, build_kernel};
use flow::driver::check_sources;
use flow::job::{ErrorPolicy, Options};
use flow::plan::{FusedStep, Step};
use flow::types::{Field, RowType, Type, Value};

/// The one input file of the test scripts: a single column `x`.
struct OneFile;
impl Probe for OneFile {
    fn exists(&self, _: &str) -> bool {
        true
    }
    fn header(&self, _: &str, _: &str, _: &Options) -> Result<Option<Vec<String>>, String> {
        Ok(Some(vec!["x".into()]))
    }
    fn infer(&self, _: &str, _: &str, _: &Options) -> Result<RowType, String> {
        Ok(RowType::new(vec![Field {
            name: "x".into(),
            ty: Type::INT,
        }]))
    }
}

/// Checks `prelude` + a pipeline computing `example`, then evaluates it on one row.
fn eval_example(prelude: &str, example: &str, engine: Engine) -> Result<Value, String> {
    let script = format!(
        "{prelude}\nsource one = csv(\"one.csv\")\none | map {{ ok: {example} }} | sink stdout()\n"
    );
    let c = check_sources(vec![("example.flow".into(), script)], &OneFile);
    let Some(program) = c.program else {
        let msgs: Vec<String> = c
            .diagnostics
            .iter()
            .map(|d| format!("{}: {}", d.code.as_str(), d.message))
            .collect();
        return Err(format!("does not check: {msgs:?}"));
    };
    let sink = &program.sinks[0];
    let StreamKind::Map { input, fields, .. } = &sink.input.kind else {
        return Err("unexpected plan shape".into());
    };
    let step = FusedStep {
        step: Step::Map(vec![fields[0].1.clone()]),
        policy: ErrorPolicy::default(),
        row: sink.input.row.clone(),
    };
    let kernel = build_kernel(&input.row, &[step], engine);
    let batch = Batch::from_values(&input.row, &[vec![Value::Int(0)]]);
    let mut out = Batch::new(1);
    let mut errors = Vec::new();
    kernel.run(&batch, &mut out, &mut errors);
    if let Some(e) = errors.first() {
        return Err(format!("row error: {}", e.code.message()));
    }
    Ok(out
        .to_values(&sink.input.row)
        .first()
        .and_then(|r| r.first().cloned())
        .unwrap_or(Value::Null))
}

fn assert_true(prelude: &str, example: &str) -> Result<(), Failed> {
    for engine in [Engine::Interpreter, Engine::Jit] {
        match eval_example(prelude, example, engine) {
            Ok(Value::Bool(true)) => {}
            other => {
                return Err(format!("example `{example}` gave {other:?} with {engine:?}").into());
            }
        }
    }
    Ok(())
}

/// The `## example:` lines of a module, each with the name of the `fn` it documents.
fn module_examples(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(ex) = l.trim().strip_prefix("## example:") {
            let documented = lines[i..]
                .iter()
                .find_map(|l| l.strip_prefix("fn "))
                .and_then(|rest| rest.split('(').next())
                .unwrap_or("?")
                .trim();
            out.push((documented.to_string(), ex.trim().to_string()));
        }
    }
    out
}

/// Every fn of the module is documented with at least one example.
fn every_fn_has_an_example(path: &str, text: &str) -> Result<(), Failed> {
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("fn ") {
            let above: Vec<&&str> = lines[..i]
                .iter()
                .rev()
                .take_while(|p| p.starts_with("##"))
                .collect();
            if !above.iter().any(|p| p.contains("## example:")) {
                return Err(format!("{path}: `{l}` has no example").into());
            }
        }
    }
    Ok(())
}

fn a_false_example_is_detected() -> Result<(), Failed> {
    if !matches!(
        eval_example("", "upper(\"a\") == \"b\"", Engine::Jit),
        Ok(Value::Bool(false))
    ) {
        return Err("a false example is not false".into());
    }
    if eval_example("", "1 / 0 == 1", Engine::Interpreter).is_ok() {
        return Err("a failing example does not fail".into());
    }
    Ok(())
}

fn main() {
    let mut trials = Vec::new();
    let mut n = 0;
    for (path, text) in flow::stdlib::modules::MODULES {
        let examples = module_examples(text);
        n += examples.len();
        let mut seen: Vec<String> = Vec::new();
        for (documented, example) in examples {
            seen.push(documented.clone());
            let k = seen.iter().filter(|s| **s == documented).count();
            trials.push(Trial::test(
                format!("{path}::{documented}#{k}"),
                move || assert_true(text, &example),
            ));
        }
        trials.push(Trial::test(
            format!("{path}::every_fn_has_an_example"),
            move || every_fn_has_an_example(path, text),
        ));
    }
    if n < 10 {
        trials.push(Trial::test("stdlib_has_examples", move || {
            Err(format!("only {n} stdlib examples").into())
        }));
    }
    for b in flow::stdlib::ALL {
        trials.push(Trial::test(format!("builtin::{}", b.name()), move || {
            let sig = b.signature();
            if sig.doc.is_empty() {
                return Err(format!("{} has no doc", b.name()).into());
            }
            assert_true("", sig.example)
        }));
    }
    trials.push(Trial::test(
        "a_false_example_is_detected",
        a_false_example_is_detected,
    ));
    libtest_mimic::run(&Arguments::from_args(), trials).exit()
}
