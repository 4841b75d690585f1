//! Every documented example runs as a test: the `## example: EXPR` lines of `stdlib/*.flow`
//! (evaluated in their module's scope) and the `example` of every builtin's signature. Each
//! example is a bool expression that must be true, under both the interpreter and the JIT.

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
    fn csv_header(&self, _: &str, _: u8) -> Result<Vec<String>, String> {
        Ok(vec!["x".into()])
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

fn assert_true(prelude: &str, example: &str, what: &str) -> usize {
    for engine in [Engine::Interpreter, Engine::Jit] {
        match eval_example(prelude, example, engine) {
            Ok(Value::Bool(true)) => {}
            other => panic!("{what}: example `{example}` gave {other:?} with {engine:?}"),
        }
    }
    1
}

#[test]
fn stdlib_module_examples_hold() {
    let mut n = 0;
    for (path, text) in flow::stdlib::modules::MODULES {
        let mut documented = 0;
        for line in text.lines() {
            if let Some(ex) = line.trim().strip_prefix("## example:") {
                n += assert_true(text, ex.trim(), path);
                documented += 1;
            }
        }
        assert!(documented > 0, "{path} has no examples");
        // Every fn of the module is documented with at least one example.
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.starts_with("fn ") {
                let above: Vec<&&str> = lines[..i]
                    .iter()
                    .rev()
                    .take_while(|p| p.starts_with("##"))
                    .collect();
                assert!(
                    above.iter().any(|p| p.contains("## example:")),
                    "{path}: `{l}` has no example"
                );
            }
        }
    }
    assert!(n >= 10, "only {n} stdlib examples");
}

#[test]
fn builtin_examples_hold() {
    for b in flow::stdlib::ALL {
        let sig = b.signature();
        assert!(!sig.doc.is_empty(), "{} has no doc", b.name());
        assert_true("", sig.example, b.name());
    }
}

#[test]
fn a_false_example_is_detected() {
    assert!(matches!(
        eval_example("", "upper(\"a\") == \"b\"", Engine::Jit),
        Ok(Value::Bool(false))
    ));
    assert!(eval_example("", "1 / 0 == 1", Engine::Interpreter).is_err());
}
