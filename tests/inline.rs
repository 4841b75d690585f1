//! Inlining of `fn` calls with shared repeated calls (issue 17, item 3; `check::share`), through
//! the real `flow` binary: doubling chains g1(x) = x + x, g_k(x) = g_{k-1}(x) + g_{k-1}(x) check,
//! compile and run quickly with the right values, with the JIT and the interpreter, at 1 and 2
//! worker threads; sharing never raises an error the script would not raise (a call inside one
//! branch of an `if`, or after `&&`/`??`, is not hoisted) nor a different one. Long chains (a
//! `fn` body keeps its calls as calls, `check::inline`) run with the right values, and the depth
//! (E0007) and size (E0028) limits of the inlined form hold at the limit and one past it.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn flow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run flow")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A directory with `in.csv` (one int column `a`) and `s.flow`.
fn setup(rows: &str, script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.csv"), format!("a\n{rows}")).expect("write csv");
    std::fs::write(dir.path().join("s.flow"), script).expect("write script");
    dir
}

const HEAD: &str = "source t = csv(\"in.csv\", header: true)\n";

/// g1(x) = x + x, g_k(x) = wrap(g_{k-1}(x) + g_{k-1}(x)), then `map { y: g_n(a) }`.
fn chain(n: usize, ty: &str, wrap: &str) -> String {
    let mut s = format!("{HEAD}fn g1(x: {ty}) -> {ty} = x + x\n");
    for k in 2..=n {
        let j = k - 1;
        let e = wrap.replace("E", &format!("g{j}(x) + g{j}(x)"));
        s.push_str(&format!("fn g{k}(x: {ty}) -> {ty} = {e}\n"));
    }
    s.push_str(&format!(
        "t | map {{ y: g{n}(a) }} | sink csv(\"out.csv\")\n"
    ));
    s
}

/// Runs with the JIT and with the interpreter at `threads` workers, within a time bound; both
/// must succeed with the same output, which is returned.
fn run_both(dir: &Path, threads: &str) -> String {
    let mut outs = Vec::new();
    for engine in ["jit", "interpreter"] {
        let start = Instant::now();
        let o = flow(
            dir,
            &[
                "run",
                "-q",
                "--threads",
                threads,
                "--engine",
                engine,
                "s.flow",
            ],
        );
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{engine} took {:?}",
            start.elapsed()
        );
        outs.push(std::fs::read_to_string(dir.join("out.csv")).expect("output"));
    }
    assert_eq!(outs[0], outs[1], "JIT and interpreter disagree");
    outs.remove(0)
}

fn doubling_int(n: usize, threads: &str) {
    // 2^n · a for a in 1, 3 (n ≤ 61 stays in range).
    let dir = setup("1\n3\n", &chain(n, "int", "E"));
    let out = run_both(dir.path(), threads);
    assert_eq!(out, format!("y\n{}\n{}\n", 1i64 << n, 3i64 << n));
}

/// (2^n · a) mod 1000003, computed level by level as the script does.
fn doubling_mod(n: usize, threads: &str) {
    let p = 1_000_003i64;
    let dir = setup("1\n5\n", &chain(n, "int", "(E) % 1000003"));
    let out = run_both(dir.path(), threads);
    let want = |a: i64| (1..n).fold((a + a) % p, |v, _| (v + v) % p);
    assert_eq!(out, format!("y\n{}\n{}\n", want(1), want(5)));
}

#[test]
fn g20_runs_at_1_worker() {
    doubling_int(20, "1");
}

#[test]
fn g20_runs_at_2_workers() {
    doubling_int(20, "2");
}

#[test]
fn g40_runs_at_1_worker() {
    doubling_int(40, "1");
}

#[test]
fn g40_runs_at_2_workers() {
    doubling_int(40, "2");
}

#[test]
fn g200_mod_runs_at_1_worker() {
    doubling_mod(200, "1");
}

#[test]
fn g200_mod_runs_at_2_workers() {
    doubling_mod(200, "2");
}

#[test]
fn g200_float_runs_with_exact_value() {
    // 2^200 is exact in a float: the doubling happened 200 times, once per level.
    let dir = setup("1\n", &chain(200, "float", "E"));
    let out = run_both(dir.path(), "2");
    let y: f64 = out
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("a float");
    assert_eq!(y, 2f64.powi(200), "{out}");
}

#[test]
fn g200_overflow_is_the_same_e0070_row_error() {
    // 2^200 · a overflows for every a but 0: the first row passes, the second fails — as the
    // unshared expansion (2^200 additions of a) would.
    let dir = setup("0\n1\n", &chain(200, "int", "E"));
    for engine in ["jit", "interpreter"] {
        let o = flow(dir.path(), &["run", "-q", "--engine", engine, "s.flow"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{engine}: {err}");
        assert!(err.contains("[E0070]"), "{engine}: {err}");
        assert!(err.contains("integer overflow"), "{engine}: {err}");
        assert!(err.contains(r#"the row: {"a":1}"#), "{engine}: {err}");
    }
    let skip = chain(200, "int", "E").replace("(a) }", "(a) } @on_error(skip)");
    std::fs::write(dir.path().join("s.flow"), skip).expect("write");
    assert_eq!(run_both(dir.path(), "1"), "y\n0\n");
}

#[test]
fn call_in_untaken_if_branches_is_not_hoisted() {
    // Both calls of h sit in a branch that is not taken for a = 0: 10 / 0 must not be evaluated.
    let script = format!(
        "{HEAD}fn h(x: int) -> int = 10 / x\n\
         fn f(x: int) -> int = (if x == 0 {{ 0 }} else {{ h(x) }}) + (if x == 0 {{ 1 }} else {{ h(x) }})\n\
         t | map {{ y: f(a) }} | sink csv(\"out.csv\")\n"
    );
    let dir = setup("0\n5\n", &script);
    assert_eq!(run_both(dir.path(), "1"), "y\n1\n4\n");
}

#[test]
fn call_after_and_or_coalesce_is_not_hoisted() {
    // h(x) fails for x = 0; it is only reached on the right of `&&`, `||` and `??`.
    let script = format!(
        "{HEAD}fn h(x: int) -> int = 10 / x\n\
         fn f(x: int) -> bool = (x != 0 && h(x) > 1) || (x != 0 && h(x) > 1)\n\
         fn g(x: int?) -> int = (x ?? h(0)) + (x ?? h(0))\n\
         fn k(x: int) -> bool = x == 0 || h(x) > 1 || h(x) > 2\n\
         t | map {{ y: f(a), z: g(a), w: k(a) }} | sink csv(\"out.csv\")\n"
    );
    let dir = setup("0\n5\n", &script);
    assert_eq!(
        run_both(dir.path(), "1"),
        "y,z,w\nfalse,0,true\ntrue,10,true\n"
    );
}

#[test]
fn earlier_failure_keeps_its_error_when_a_call_repeats() {
    // 1 / (x - x) fails before the repeated, overflowing calls are reached: sharing must not
    // evaluate those first (that would report an overflow instead of the division).
    let script = format!(
        "{HEAD}fn big(x: int) -> int = x * 4611686018427387904\n\
         fn f(x: int) -> int = 1 / (x - x) + big(x) + big(x)\n\
         t | map {{ y: f(a) }} | sink csv(\"out.csv\")\n"
    );
    let dir = setup("3\n", &script);
    for engine in ["jit", "interpreter"] {
        let o = flow(dir.path(), &["run", "-q", "--engine", engine, "s.flow"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{engine}: {err}");
        assert!(err.contains("[E0070]"), "{engine}: {err}");
        assert!(err.contains("division by zero"), "{engine}: {err}");
    }
}

#[test]
fn unshareable_doubling_still_hits_the_e0028_cap() {
    // g_k(x) = g_{k-1}(x) + g_{k-1}(x + 1): the two calls differ, nothing is shared.
    let mut s = format!("{HEAD}fn g1(x: int) -> int = x + x\n");
    for k in 2..=30 {
        s.push_str(&format!(
            "fn g{k}(x: int) -> int = g{}(x) + g{}(x + 1)\n",
            k - 1,
            k - 1
        ));
    }
    s.push_str("t | map { y: g30(a) } | sink csv(\"out.csv\")\n");
    let dir = setup("1\n", &s);
    let start = Instant::now();
    let o = flow(dir.path(), &["check", "s.flow"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("[E0028]"), "{}", stderr(&o));
    assert!(start.elapsed() < Duration::from_secs(20));
}

// Linear checking (issue 17, item 3): a `fn` body keeps its calls as calls (`check::inline`);
// each call of a stage expression is inlined once. The limits are those of the inlined form.

/// f1(x) = x, f_k(x) = x * 1 + … + x * w + f_{k-1}(x) % 1000003, then `map { y: f_n(a) }`: a long
/// script whose inlined expression deepens by three levels per fn.
fn wide_chain(n: usize, w: usize) -> String {
    let terms: String = (1..=w).map(|i| format!("x * {i} + ")).collect();
    let mut s = format!("{HEAD}fn f1(x: int) -> int = x\n");
    for k in 2..=n {
        s.push_str(&format!(
            "fn f{k}(x: int) -> int = {terms}f{}(x) % 1000003\n",
            k - 1
        ));
    }
    s.push_str(&format!(
        "t | map {{ y: f{n}(a) }} | sink csv(\"out.csv\")\n"
    ));
    s
}

#[test]
fn wide_chain_of_300_fns_runs_with_the_right_value() {
    let (n, w) = (300, 40);
    let script = wide_chain(n, w);
    assert!(script.len() > 100_000, "{}", script.len());
    let dir = setup("1\n5\n", &script);
    let want = |a: i64| {
        let sum = a * (w as i64) * (w as i64 + 1) / 2;
        (2..=n).fold(a, |v, _| sum + v % 1_000_003)
    };
    assert_eq!(
        run_both(dir.path(), "2"),
        format!("y\n{}\n{}\n", want(1), want(5))
    );
}

#[test]
fn wide_chain_past_the_depth_limit_is_e0007() {
    // 3 levels per fn: 340 fit under the limit of the inlined expression, 345 do not.
    let dir = setup("1\n", &wide_chain(340, 40));
    let o = flow(dir.path(), &["check", "s.flow"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(dir.path().join("s.flow"), wide_chain(345, 40)).expect("write");
    let o = flow(dir.path(), &["check", "s.flow"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("[E0007]"), "{}", stderr(&o));
}

#[test]
fn doubling_chain_at_the_depth_limit_runs() {
    // g532 is the longest doubling chain whose inlined expression is within the depth limit:
    // 2^532 · a, exact in a float.
    let dir = setup("1\n3\n", &chain(532, "float", "E"));
    let out = run_both(dir.path(), "1");
    let ys: Vec<f64> = out.lines().skip(1).filter_map(|l| l.parse().ok()).collect();
    assert_eq!(ys, vec![2f64.powi(532), 3.0 * 2f64.powi(532)], "{out}");
}

#[test]
fn doubling_chain_one_past_the_depth_limit_is_e0007() {
    let dir = setup("1\n", &chain(533, "float", "E"));
    let o = flow(dir.path(), &["check", "s.flow"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("[E0007]"), "{err}");
    assert!(err.contains("this call's expansion is"), "{err}");
    assert!(
        err.contains("the body of `g533` is 1065 levels deep"),
        "{err}"
    );
}

/// f(x) = x + … + x (498 terms: 995 nodes), g(x) = f(x) * 3 (999 nodes inlined, 1000 with its
/// argument's `Let`); the map calls g 100 times (100,000 nodes, the cap) and adds `extra`.
fn at_cap(extra: &str) -> String {
    let f = vec!["x"; 498].join(" + ");
    let calls = vec!["g(a)"; 100].join(" + ");
    format!(
        "{HEAD}fn f(x: int) -> int = {f}\nfn g(x: int) -> int = f(x) * 3\nfn z() -> int = 7\n\
         t | map {{ y: {calls} + {extra} }} | sink csv(\"out.csv\")\n"
    )
}

#[test]
fn inlining_exactly_at_the_cap_checks() {
    let dir = setup("1\n", &at_cap("7"));
    let o = flow(dir.path(), &["check", "s.flow"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn inlining_one_node_past_the_cap_is_e0028() {
    // z() inlines one node: 100,001.
    let dir = setup("1\n", &at_cap("z()"));
    let o = flow(dir.path(), &["check", "s.flow"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("[E0028]"), "{err}");
    assert!(
        err.contains("this call inlines the 1 nodes of `z`"),
        "{err}"
    );
}

#[test]
fn doubling_zero_argument_fns_are_shared() {
    // z_k() = z_{k-1}() + z_{k-1}(): calls without arguments are shared too (unshared, z40
    // would be 2^40 nodes: E0028).
    let mut s = format!("{HEAD}fn z1() -> int = 1 + 1\n");
    for k in 2..=40 {
        s.push_str(&format!("fn z{k}() -> int = z{}() + z{}()\n", k - 1, k - 1));
    }
    s.push_str("t | map { y: z40() + a } | sink csv(\"out.csv\")\n");
    let dir = setup("1\n", &s);
    assert_eq!(
        run_both(dir.path(), "1"),
        format!("y\n{}\n", (1i64 << 40) + 1)
    );
}

#[test]
fn forwarding_chain_of_10000_fns_runs() {
    // c_k() = c_{k-1}(): each is the same body, never a nesting of 10,000 expansions.
    let mut s = format!("{HEAD}fn c1() -> int = 7\n");
    for k in 2..=10_000 {
        s.push_str(&format!("fn c{k}() -> int = c{}()\n", k - 1));
    }
    s.push_str("t | map { y: c10000() + a } | sink csv(\"out.csv\")\n");
    let dir = setup("1\n3\n", &s);
    assert_eq!(run_both(dir.path(), "1"), "y\n8\n10\n");
}

#[test]
fn nullable_call_widened_in_a_fn_body_keeps_its_value() {
    // `w` widens the int? that `n(x)` returns to float?: the call is tested for null and cast,
    // each copy inlined with its own locals.
    let script = format!(
        "{HEAD}fn n(x: int) -> int? = if x > 1 {{ x }} else {{ null }}\n\
         fn w(x: int) -> float? = n(x)\n\
         fn c() -> int? = n(2)\n\
         t | map {{ p: w(a), q: w(a + 1) ?? 0.5, r: c() }} | sink csv(\"out.csv\")\n"
    );
    let dir = setup("1\n3\n", &script);
    assert_eq!(run_both(dir.path(), "2"), "p,q,r\n,2.0,2\n3.0,4.0,2\n");
}

#[test]
fn chain_of_100000_fns_declared_callers_first_runs() {
    // c100000 is declared first and calls c99999, declared next, …: a fn is checked when first
    // called, and past a few nested checks the rest of the chain is checked callees first,
    // without recursion (this overflowed the stack at a few thousand).
    let n = 100_000;
    let mut s = HEAD.to_string();
    for k in (2..=n).rev() {
        s.push_str(&format!("fn c{k}() -> int = c{}()\n", k - 1));
    }
    s.push_str("fn c1() -> int = 7\n");
    s.push_str(&format!(
        "t | map {{ y: c{n}() + a }} | sink csv(\"out.csv\")\n"
    ));
    let dir = setup("1\n3\n", &s);
    assert_eq!(run_both(dir.path(), "1"), "y\n8\n10\n");
}

#[test]
fn long_cycle_of_fns_is_e0027() {
    // c1 calls c2000 calls … c2 calls c1, declared callers first: reported, never a crash.
    let n = 2000;
    let mut s = HEAD.to_string();
    for k in (2..=n).rev() {
        s.push_str(&format!("fn c{k}(x: int) -> int = c{}(x)\n", k - 1));
    }
    s.push_str(&format!("fn c1(x: int) -> int = c{n}(x) + 1\n"));
    s.push_str(&format!(
        "t | map {{ y: c{n}(a) }} | sink csv(\"out.csv\")\n"
    ));
    let dir = setup("1\n", &s);
    let o = flow(dir.path(), &["check", "s.flow"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("[E0027]"), "{}", stderr(&o));
}
