//! Cranelift code generation: one native function per fused chain.
//!
//! Kernel ABI (`KernelFn`): `(ctx, in_words, in_arena, in_arena_len, nrows, out_words) -> kept`.
//! The function loops over all `nrows` input rows itself. Each kept row is written, complete
//! (null words and slots), at `out_words + kept * out_stride`; the caller has reserved room for
//! `nrows` rows. A failing row calls `flow_err(ctx, row, step, code)` and is not written.
//!
//! Values live in SSA registers between steps: a map's outputs are never stored until the last
//! step, so intermediate strings are `(ptr, len)` pairs, not copies.

mod helpers;

use super::interp::InterpKernel;
use super::sem;
use super::{Kernel, RowError};
use crate::batch::{Batch, Layout};
use crate::check::hir::{BinOp, Expr, ExprKind, UnOp};
use crate::plan::ir::{FusedStep, Step};
use crate::stdlib::{Builtin, RowErrorCode, literal, ops};
use crate::types::{RowType, Scalar, Type, Value};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::Ieee64;
use cranelift_codegen::ir::{
    self, AbiParam, BlockArg, FuncRef, InstBuilder, MemFlagsData, StackSlot, StackSlotData,
    StackSlotKind, UserFuncName, types,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};
use helpers::Ctx;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

type KernelFn = unsafe extern "C" fn(
    ctx: *mut Ctx<'static>,
    in_words: *const u64,
    in_arena: *const u8,
    in_arena_len: u64,
    nrows: u64,
    out_words: *mut u64,
) -> u64;

/// The runtime helpers: (symbol, address, parameter types, return type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum H {
    Err,
    OutStr,
    OutUpper,
    OutLower,
    CopyWords,
    StrCmp,
    Len,
    Upper,
    Lower,
    Trim,
    Contains,
    StartsWith,
    EndsWith,
    Substr,
    Replace,
    Concat2,
    Round,
    Fmod,
    Fmin,
    Fmax,
    FloatToInt,
    IntToStr,
    FloatToStr,
    BoolToStr,
    TsToStr,
    ParseInt,
    ParseFloat,
    ParseTimestamp,
    Unix,
    RegexMatch,
    RegexExtract,
    RegexReplace,
    ParseTsFormat,
    FormatTs,
    TsPart,
    DateTrunc,
    ZoneShift,
}

const ALL_HELPERS: &[H] = &[
    H::Err,
    H::OutStr,
    H::OutUpper,
    H::OutLower,
    H::CopyWords,
    H::StrCmp,
    H::Len,
    H::Upper,
    H::Lower,
    H::Trim,
    H::Contains,
    H::StartsWith,
    H::EndsWith,
    H::Substr,
    H::Replace,
    H::Concat2,
    H::Round,
    H::Fmod,
    H::Fmin,
    H::Fmax,
    H::FloatToInt,
    H::IntToStr,
    H::FloatToStr,
    H::BoolToStr,
    H::TsToStr,
    H::ParseInt,
    H::ParseFloat,
    H::ParseTimestamp,
    H::Unix,
    H::RegexMatch,
    H::RegexExtract,
    H::RegexReplace,
    H::ParseTsFormat,
    H::FormatTs,
    H::TsPart,
    H::DateTrunc,
    H::ZoneShift,
];

impl H {
    fn def(
        self,
    ) -> (
        &'static str,
        *const u8,
        &'static [ir::Type],
        Option<ir::Type>,
    ) {
        use helpers::*;
        const I: ir::Type = types::I64;
        const F: ir::Type = types::F64;
        const W: ir::Type = types::I32;
        match self {
            H::Err => ("flow_err", flow_err as *const u8, &[I, I, I, I], None),
            H::OutStr => (
                "flow_out_str",
                flow_out_str as *const u8,
                &[I, I, I],
                Some(I),
            ),
            H::OutUpper => {
                let p = flow_out_upper as *const u8;
                ("flow_out_upper", p, &[I, I, I], Some(I))
            }
            H::OutLower => {
                let p = flow_out_lower as *const u8;
                ("flow_out_lower", p, &[I, I, I], Some(I))
            }
            H::CopyWords => {
                let p = flow_copy_words as *const u8;
                ("flow_copy_words", p, &[I, I, I], None)
            }
            H::StrCmp => (
                "flow_str_cmp",
                flow_str_cmp as *const u8,
                &[I, I, I, I],
                Some(I),
            ),
            H::Len => ("flow_len", flow_len as *const u8, &[I, I], Some(I)),
            H::Upper => ("flow_upper", flow_upper as *const u8, &[I, I, I, I], None),
            H::Lower => ("flow_lower", flow_lower as *const u8, &[I, I, I, I], None),
            H::Trim => ("flow_trim", flow_trim as *const u8, &[I, I, I], None),
            H::Contains => (
                "flow_contains",
                flow_contains as *const u8,
                &[I, I, I, I],
                Some(I),
            ),
            H::StartsWith => {
                let p = flow_starts_with as *const u8;
                ("flow_starts_with", p, &[I, I, I, I], Some(I))
            }
            H::EndsWith => (
                "flow_ends_with",
                flow_ends_with as *const u8,
                &[I, I, I, I],
                Some(I),
            ),
            H::Substr => (
                "flow_substr",
                flow_substr as *const u8,
                &[I, I, I, I, I],
                Some(W),
            ),
            H::Replace => {
                let p = flow_replace as *const u8;
                ("flow_replace", p, &[I, I, I, I, I, I, I, I], None)
            }
            H::Concat2 => (
                "flow_concat2",
                flow_concat2 as *const u8,
                &[I, I, I, I, I, I],
                None,
            ),
            H::Round => ("flow_round", flow_round as *const u8, &[F], Some(F)),
            H::Fmod => ("flow_fmod", flow_fmod as *const u8, &[F, F], Some(F)),
            H::Fmin => ("flow_fmin", flow_fmin as *const u8, &[F, F], Some(F)),
            H::Fmax => ("flow_fmax", flow_fmax as *const u8, &[F, F], Some(F)),
            H::FloatToInt => {
                let p = flow_float_to_int as *const u8;
                ("flow_float_to_int", p, &[F, I], Some(W))
            }
            H::IntToStr => (
                "flow_int_to_str",
                flow_int_to_str as *const u8,
                &[I, I, I],
                None,
            ),
            H::FloatToStr => {
                let p = flow_float_to_str as *const u8;
                ("flow_float_to_str", p, &[I, F, I], None)
            }
            H::BoolToStr => (
                "flow_bool_to_str",
                flow_bool_to_str as *const u8,
                &[I, I],
                None,
            ),
            H::TsToStr => (
                "flow_ts_to_str",
                flow_ts_to_str as *const u8,
                &[I, I, I],
                None,
            ),
            H::ParseInt => (
                "flow_parse_int",
                flow_parse_int as *const u8,
                &[I, I, I],
                Some(W),
            ),
            H::ParseFloat => {
                let p = flow_parse_float as *const u8;
                ("flow_parse_float", p, &[I, I, I], Some(W))
            }
            H::ParseTimestamp => {
                let p = flow_parse_timestamp as *const u8;
                ("flow_parse_timestamp", p, &[I, I, I], Some(W))
            }
            H::Unix => ("flow_unix", flow_unix as *const u8, &[I], Some(I)),
            H::RegexMatch => {
                let p = flow_regex_match as *const u8;
                ("flow_regex_match", p, &[I, I, I], Some(I))
            }
            H::RegexExtract => {
                let p = flow_regex_extract as *const u8;
                ("flow_regex_extract", p, &[I, I, I, I, I], Some(W))
            }
            H::RegexReplace => {
                let p = flow_regex_replace as *const u8;
                ("flow_regex_replace", p, &[I, I, I, I, I, I, I], None)
            }
            H::ParseTsFormat => {
                let p = flow_parse_ts_format as *const u8;
                ("flow_parse_ts_format", p, &[I, I, I, I, I], Some(W))
            }
            H::FormatTs => {
                let p = flow_format_ts as *const u8;
                ("flow_format_ts", p, &[I, I, I, I, I], Some(W))
            }
            H::TsPart => ("flow_ts_part", flow_ts_part as *const u8, &[I, I], Some(I)),
            H::DateTrunc => {
                let p = flow_date_trunc as *const u8;
                ("flow_date_trunc", p, &[I, I], Some(I))
            }
            H::ZoneShift => {
                let p = flow_zone_shift as *const u8;
                ("flow_zone_shift", p, &[I, I, I, I], Some(W))
            }
        }
    }
}

/// Owns the JIT code memory. After `finalize_definitions` the module is never touched again
/// (only the function pointer into its memory is used), so sharing it between threads is safe.
struct CodeHolder(Option<JITModule>);

impl Drop for CodeHolder {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            // SAFETY: the holder is dropped with its `JitKernel`, so no pointer into this code
            // (nor a running call) outlives it.
            unsafe { m.free_memory() };
        }
    }
}
// SAFETY: see above; the module is immutable after finalization and only kept alive.
unsafe impl Send for CodeHolder {}
// SAFETY: as above.
unsafe impl Sync for CodeHolder {}

pub struct JitKernel {
    f: KernelFn,
    in_columns: usize,
    out_columns: usize,
    /// A chain of filters only: the code copies each kept row's words as they are, so their
    /// string slots still point into the input's arena (`run_shared` shares it, `run` copies
    /// the strings of `str_columns` afterwards).
    select: bool,
    str_columns: Vec<usize>,
    compile_micros: u64,
    /// Used if a batch does not have the layout the code was compiled for (a caller bug).
    fallback: InterpKernel,
    /// String literals referenced by address from the code.
    _literals: Vec<Box<[u8]>>,
    /// Patterns and time zones compiled for this kernel, referenced by address from the code.
    _compiled: Compiled,
    _code: CodeHolder,
}

impl JitKernel {
    /// Whether the code can run over `input` into `out` (the layouts it was compiled for).
    fn fits(&self, input: &Batch, out: &Batch) -> bool {
        input.layout == Layout::new(self.in_columns)
            && out.layout == Layout::new(self.out_columns)
            && input.words.len() >= input.rows * input.layout.stride
            && out.words.len() == out.rows * out.layout.stride
    }

    /// Runs the code over `input`, appending the kept rows to `out` (`fits` holds).
    fn call(&self, input: &Batch, out: &mut Batch, errors: &mut Vec<RowError>) {
        let n = input.rows;
        let ostride = out.layout.stride;
        out.words.reserve(n * ostride);
        let base = out.words.len();
        // SAFETY: `reserve` made room for `n` more rows after `base`.
        let out_ptr = unsafe { out.words.as_mut_ptr().add(base) };
        let mut ctx = Ctx {
            out_arena: out.arena.vec_mut(),
            errors,
            scratch: helpers::Scratch::default(),
        };
        let ctx_ptr = (&mut ctx as *mut Ctx<'_>).cast::<Ctx<'static>>();
        // SAFETY: the code reads `n` rows of the input layout (checked above) and string bytes
        // only within `in_arena_len`; it writes at most `n` complete output rows at `out_ptr`.
        let kept = unsafe {
            (self.f)(
                ctx_ptr,
                input.words.as_ptr(),
                input.arena.as_ptr(),
                input.arena.len() as u64,
                n as u64,
                out_ptr,
            )
        } as usize;
        drop(ctx);
        // SAFETY: the code initialised every word of the `kept <= n` rows it reports.
        unsafe { out.words.set_len(base + kept.min(n) * ostride) };
        out.rows += kept.min(n);
    }
}

impl Kernel for JitKernel {
    fn run(&self, input: &Batch, out: &mut Batch, errors: &mut Vec<RowError>) {
        if input.rows == 0 {
            return;
        }
        if !self.fits(input, out) {
            return self.fallback.run(input, out, errors);
        }
        let first = out.rows;
        self.call(input, out, errors);
        if self.select {
            // The kept rows' strings still point into the input: copy them over.
            out.copy_strings_from(&input.arena, first, &self.str_columns);
        }
    }

    fn run_shared(
        &self,
        input: &std::sync::Arc<Batch>,
        out: &mut Batch,
        errors: &mut Vec<RowError>,
    ) -> bool {
        if !self.select || out.rows != 0 || !out.arena.is_empty() {
            return false;
        }
        if !self.fits(input, out) {
            return self.fallback.run_shared(input, out, errors);
        }
        if input.rows > 0 {
            self.call(input, out, errors);
        }
        out.arena.share(input);
        true
    }

    fn describe(&self) -> String {
        "jit".into()
    }

    fn compile_micros(&self) -> Option<u64> {
        Some(self.compile_micros)
    }
}

/// Expression nodes past which a chain is register-allocated in a single pass.
const SINGLE_PASS_OVER: usize = 2_000;

/// Compiles a (folded) chain; `Err` gives the reason the interpreter must be used instead.
/// A panic inside Cranelift (e.g. on IR from a malformed plan) is also turned into an `Err`.
pub fn compile(input: &RowType, steps: &[FusedStep]) -> Result<JitKernel, String> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| compile_inner(input, steps)));
    r.unwrap_or_else(|_| Err("cranelift panicked while compiling".into()))
}

fn compile_inner(input: &RowType, steps: &[FusedStep]) -> Result<JitKernel, String> {
    let start = Instant::now();
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| {
        f.set(k, v).map_err(|e| format!("cranelift flag {k}: {e}"))
    };
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", "false")?;
    set(&mut flags, "opt_level", "speed")?;
    // The default register allocator is superlinear on huge functions (a value with thousands of
    // uses across thousands of blocks, as inlined `fn`s give: 12k nodes took 1.8 s, 49k 103 s);
    // past a size, the single-pass one keeps compile time linear at some cost in code quality.
    let nodes: usize = steps
        .iter()
        .map(|s| match &s.step {
            Step::Filter(p) => p.measure().0,
            Step::Map(es) => es.iter().map(|e| e.measure().0).sum(),
        })
        .sum();
    if nodes > SINGLE_PASS_OVER {
        set(&mut flags, "regalloc_algorithm", "single_pass")?;
    }
    let isa = cranelift_native::builder()
        .map_err(|e| format!("host not supported by cranelift: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| format!("cranelift isa: {e}"))?;
    let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
    for h in ALL_HELPERS {
        let (name, ptr, _, _) = h.def();
        jb.symbol(name, ptr);
    }
    let mut module = JITModule::new(jb);
    let call_conv = module.isa().default_call_conv();
    let mut helper_ids = HashMap::new();
    for h in ALL_HELPERS {
        let (name, _, params, ret) = h.def();
        let mut sig = ir::Signature::new(call_conv);
        sig.params.extend(params.iter().map(|t| AbiParam::new(*t)));
        sig.returns.extend(ret.map(AbiParam::new));
        let id = module
            .declare_function(name, Linkage::Import, &sig)
            .map_err(|e| format!("declare {name}: {e}"))?;
        helper_ids.insert(*h, id);
    }

    let mut sig = module.make_signature();
    for _ in 0..6 {
        sig.params.push(AbiParam::new(types::I64));
    }
    sig.returns.push(AbiParam::new(types::I64));
    let fid = module
        .declare_function("flow_kernel", Linkage::Export, &sig)
        .map_err(|e| format!("declare kernel: {e}"))?;
    let mut cctx = module.make_context();
    cctx.func.signature = sig;
    cctx.func.name = UserFuncName::user(0, fid.as_u32());
    let mut fctx = FunctionBuilderContext::new();
    let mut literals = Vec::new();
    let mut compiled = Compiled::default();
    {
        let b = FunctionBuilder::new(&mut cctx.func, &mut fctx);
        let mut g = Gen {
            b,
            module: &mut module,
            helper_ids: &helper_ids,
            refs: HashMap::new(),
            literals: &mut literals,
            compiled: &mut compiled,
            locals: HashMap::new(),
            step: 0,
            row_ty: Vec::new(),
            ctx: None,
            slot: None,
            err_block: None,
        };
        g.kernel(input, steps)?;
        let Gen { b, .. } = g;
        b.finalize(module.target_config());
    }
    module
        .define_function(fid, &mut cctx)
        .map_err(|e| format!("cranelift: {e:?}"))?;
    module.clear_context(&mut cctx);
    module
        .finalize_definitions()
        .map_err(|e| format!("cranelift finalize: {e}"))?;
    let code = module.get_finalized_function(fid);
    // SAFETY: `code` is the function just compiled with exactly the `KernelFn` signature
    // (six i64 parameters, one i64 result, the platform's C calling convention).
    let f = unsafe { std::mem::transmute::<*const u8, KernelFn>(code) };
    let out_columns = steps.last().map_or(input.len(), |s| s.row.len());
    Ok(JitKernel {
        f,
        in_columns: input.len(),
        out_columns,
        select: filters_only(steps),
        str_columns: (input.fields.iter().enumerate())
            .filter(|(_, f)| f.ty.scalar == Scalar::Str)
            .map(|(c, _)| c)
            .collect(),
        compile_micros: start.elapsed().as_micros() as u64,
        fallback: InterpKernel::new(
            input.clone(),
            steps.to_vec(),
            "batch layout differs from the compiled one".into(),
        ),
        _literals: literals,
        _compiled: compiled,
        _code: CodeHolder(Some(module)),
    })
}

/// `upper(x)` / `lower(x)` of a non-nullable string: the helper that writes its result
/// straight into the output arena, and `x`.
fn case_output(e: &Expr) -> Option<(H, &Expr)> {
    let ExprKind::Call(bi, args) = &e.kind else {
        return None;
    };
    let h = match bi {
        Builtin::Upper => H::OutUpper,
        Builtin::Lower => H::OutLower,
        _ => return None,
    };
    match args.as_slice() {
        [x] if x.ty == Type::STR && e.ty == Type::STR => Some((h, x)),
        _ => None,
    }
}

/// A chain of filters only: its output rows are input rows, unchanged.
fn filters_only(steps: &[FusedStep]) -> bool {
    steps.iter().all(|s| matches!(s.step, Step::Filter(_)))
}

/// Rows of at most this many words are copied by inline loads and stores (wider ones by a
/// helper call).
const INLINE_COPY_WORDS: usize = 32;

/// Regular expressions and time zones compiled once per kernel; boxed, so the addresses the code
/// embeds stay valid while the kernel lives.
#[derive(Default)]
#[allow(clippy::vec_box)] // the boxes keep each address fixed while the vectors grow
struct Compiled {
    regexes: Vec<Box<regex::Regex>>,
    zones: Vec<Box<jiff::tz::TimeZone>>,
}

/// The text of a call's literal argument `k`.
fn lit_text(bi: Builtin, args: &[Expr], k: usize) -> R<&str> {
    match args.get(k).map(|a| &a.kind) {
        Some(ExprKind::Lit(Value::Str(t))) => Ok(t),
        _ => Err(format!("{}: argument {k} is not a literal", bi.name())),
    }
}

/// A value in registers: an optional null flag (i8, 1 = null; absent = known present), the
/// payload (i64 for int/timestamp, f64, i8 bool, string pointer) and a string's length.
#[derive(Clone, Copy)]
struct Jv {
    null: Option<ir::Value>,
    a: ir::Value,
    len: Option<ir::Value>,
}

fn payload_ty(s: Scalar) -> ir::Type {
    match s {
        Scalar::Float => types::F64,
        Scalar::Bool => types::I8,
        _ => types::I64,
    }
}

struct Gen<'a, 'm> {
    b: FunctionBuilder<'a>,
    module: &'m mut JITModule,
    helper_ids: &'m HashMap<H, FuncId>,
    refs: HashMap<H, FuncRef>,
    literals: &'m mut Vec<Box<[u8]>>,
    compiled: &'m mut Compiled,
    locals: HashMap<usize, (Jv, Type)>,
    step: u64,
    /// Types of the columns `Field` reads in the current step.
    row_ty: Vec<Type>,
    ctx: Option<ir::Value>,
    slot: Option<StackSlot>,
    err_block: Option<ir::Block>,
}

type R<T> = Result<T, String>;

fn trusted() -> MemFlagsData {
    MemFlagsData::trusted()
}

impl Gen<'_, '_> {
    fn kernel(&mut self, input: &RowType, steps: &[FusedStep]) -> R<()> {
        let in_layout = Layout::new(input.len());
        let out_row = steps.last().map_or(input, |s| &s.row);
        let out_layout = Layout::new(out_row.len());
        let i64t = types::I64;

        let entry = self.b.create_block();
        let header = self.b.create_block();
        let body = self.b.create_block();
        let next = self.b.create_block();
        let exit = self.b.create_block();
        let err = self.b.create_block();
        self.b.append_block_param(err, i64t);
        self.b.append_block_param(err, i64t);
        self.b.set_cold_block(err);

        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        let p = self.b.block_params(entry).to_vec();
        let (ctx, in_words, in_arena, in_arena_len, nrows, out_words) =
            (p[0], p[1], p[2], p[3], p[4], p[5]);
        self.ctx = Some(ctx);
        self.slot = Some(self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            16,
            3,
        )));
        self.err_block = Some(err);
        let var_i = self.b.declare_var(i64t);
        let var_n = self.b.declare_var(i64t);
        let zero = self.b.ins().iconst(i64t, 0);
        self.b.def_var(var_i, zero);
        self.b.def_var(var_n, zero);
        self.b.ins().jump(header, &[]);

        // header: while i < nrows
        self.b.switch_to_block(header);
        let i = self.b.use_var(var_i);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i, nrows);
        self.b.ins().brif(more, body, &[], exit, &[]);

        // body: load the input columns the chain reads, then run the steps.
        self.b.switch_to_block(body);
        let i = self.b.use_var(var_i);
        let off = self.b.ins().imul_imm_s(i, (in_layout.stride * 8) as i64);
        let row_ptr = self.b.ins().iadd(in_words, off);
        let first_map = steps
            .iter()
            .position(|s| matches!(s.step, Step::Map(_)))
            .unwrap_or(steps.len());
        // A chain of filters only copies its kept rows' words as they are: it loads only the
        // columns its predicates read.
        let select = filters_only(steps);
        // Output columns whose slot word a helper has already written (`case_output`).
        let mut direct: HashMap<usize, ir::Value> = HashMap::new();
        let mut needed = BTreeSet::new();
        for s in steps.iter().take(first_map + 1) {
            match &s.step {
                Step::Filter(e) => fields(e, &mut needed),
                Step::Map(es) => es.iter().for_each(|e| fields(e, &mut needed)),
            }
        }
        let mut row: Vec<Option<Jv>> = vec![None; input.len()];
        let mut null_words: HashMap<usize, ir::Value> = HashMap::new();
        for &c in &needed {
            let Some(f) = input.fields.get(c) else {
                return Err(format!("field {c} out of range"));
            };
            let null = if f.ty.nullable || f.ty.scalar == Scalar::Null {
                let w = match null_words.get(&(c / 64)) {
                    Some(w) => *w,
                    None => {
                        let w = self
                            .b
                            .ins()
                            .load(i64t, trusted(), row_ptr, (c / 64 * 8) as i32);
                        null_words.insert(c / 64, w);
                        w
                    }
                };
                let bit = self.b.ins().ushr_imm_s(w, (c % 64) as i64);
                let bit = self.b.ins().band_imm_s(bit, 1);
                Some(self.b.ins().ireduce(types::I8, bit))
            } else {
                None
            };
            let slot_off = (in_layout.slot(c) * 8) as i32;
            let jv = match f.ty.scalar {
                Scalar::Str => {
                    let w = self.b.ins().load(i64t, trusted(), row_ptr, slot_off);
                    let o = self.b.ins().ushr_imm_s(w, 32);
                    let l = self.b.ins().band_imm_s(w, 0xffff_ffff);
                    // Out-of-range (or null) slots read as "", like `Batch::get_str`.
                    let end = self.b.ins().iadd(o, l);
                    let bad = self
                        .b
                        .ins()
                        .icmp(IntCC::UnsignedGreaterThan, end, in_arena_len);
                    let bad = match null {
                        Some(nf) => self.b.ins().bor(bad, nf),
                        None => bad,
                    };
                    let z = self.b.ins().iconst(i64t, 0);
                    let o = self.b.ins().select(bad, z, o);
                    let l = self.b.ins().select(bad, z, l);
                    let ptr = self.b.ins().iadd(in_arena, o);
                    Jv {
                        null,
                        a: ptr,
                        len: Some(l),
                    }
                }
                Scalar::Bool => {
                    // Any non-zero word is true, as in `Batch::get_bool`.
                    let w = self.b.ins().load(i64t, trusted(), row_ptr, slot_off);
                    let a = self.b.ins().icmp_imm_s(IntCC::NotEqual, w, 0);
                    Jv { null, a, len: None }
                }
                s => {
                    let a = self
                        .b
                        .ins()
                        .load(payload_ty(s), trusted(), row_ptr, slot_off);
                    Jv { null, a, len: None }
                }
            };
            row[c] = Some(jv);
        }
        self.row_ty = input.fields.iter().map(|f| f.ty).collect();

        for (si, s) in steps.iter().enumerate() {
            self.step = si as u64;
            match &s.step {
                Step::Filter(e) => {
                    let v = self.expr(e, &row)?;
                    let c = self.truth(v);
                    let cont = self.b.create_block();
                    self.b.ins().brif(c, cont, &[], next, &[]);
                    self.b.switch_to_block(cont);
                }
                Step::Map(es) => {
                    let last = si + 1 == steps.len();
                    let mut vals = Vec::with_capacity(es.len());
                    for (k, e) in es.iter().enumerate() {
                        // An output column that is `upper`/`lower` of a (non-null) string is
                        // mapped straight into the output arena, not through the scratch.
                        if last && let Some((h, arg)) = case_output(e) {
                            let v = self.expr(arg, &row)?;
                            let (None, Some(len)) = (v.null, v.len) else {
                                return Err("upper/lower of a null string".into());
                            };
                            let word = self.call(h, &[ctx, v.a, len])?;
                            direct.insert(k, word);
                            vals.push(Some(Jv {
                                null: None,
                                a: word,
                                len: Some(len),
                            }));
                            continue;
                        }
                        vals.push(Some(self.expr(e, &row)?));
                    }
                    row = vals;
                    self.row_ty = s.row.fields.iter().map(|f| f.ty).collect();
                    if self.row_ty.len() != row.len() {
                        return Err("map arity differs from its row type".into());
                    }
                }
            }
        }

        if select {
            let n = self.b.use_var(var_n);
            let off = self.b.ins().imul_imm_s(n, (in_layout.stride * 8) as i64);
            let dst = self.b.ins().iadd(out_words, off);
            if in_layout.stride <= INLINE_COPY_WORDS {
                for k in 0..in_layout.stride {
                    let w = self.b.ins().load(i64t, trusted(), row_ptr, (k * 8) as i32);
                    self.b.ins().store(trusted(), w, dst, (k * 8) as i32);
                }
            } else {
                let words = self.b.ins().iconst(i64t, in_layout.stride as i64);
                self.call_multi(H::CopyWords, &[dst, row_ptr, words])?;
            }
            let n1 = self.b.ins().iadd_imm_s(n, 1);
            self.b.def_var(var_n, n1);
        } else {
            // Write the output row.
            let n = self.b.use_var(var_n);
            let off = self.b.ins().imul_imm_s(n, (out_layout.stride * 8) as i64);
            let dst = self.b.ins().iadd(out_words, off);
            let mut nw: Vec<ir::Value> = (0..out_layout.null_words)
                .map(|_| self.b.ins().iconst(i64t, 0))
                .collect();
            let row_ty = std::mem::take(&mut self.row_ty);
            for (c, ty) in row_ty.iter().enumerate() {
                let Some(v) = row.get(c).copied().flatten() else {
                    return Err(format!("output column {c} not computed"));
                };
                // `expr` keeps a null flag only on nullable expressions.
                let null = if ty.scalar == Scalar::Null {
                    Some(self.b.ins().iconst(types::I8, 1))
                } else {
                    v.null
                };
                if let Some(nf) = null {
                    let bit = self.b.ins().uextend(i64t, nf);
                    let bit = self.b.ins().ishl_imm_s(bit, (c % 64) as i64);
                    nw[c / 64] = self.b.ins().bor(nw[c / 64], bit);
                }
                let slot_off = (out_layout.slot(c) * 8) as i32;
                let word = match ty.scalar {
                    Scalar::Str => match direct.get(&c) {
                        Some(word) => *word,
                        None => {
                            let len = v.len.ok_or("string without length")?;
                            self.call(H::OutStr, &[ctx, v.a, len])?
                        }
                    },
                    Scalar::Bool => self.b.ins().uextend(i64t, v.a),
                    Scalar::Null => self.b.ins().iconst(i64t, 0),
                    _ => v.a,
                };
                self.b.ins().store(trusted(), word, dst, slot_off);
            }
            for (k, w) in nw.iter().enumerate() {
                self.b.ins().store(trusted(), *w, dst, (k * 8) as i32);
            }
            let n1 = self.b.ins().iadd_imm_s(n, 1);
            self.b.def_var(var_n, n1);
        }
        self.b.ins().jump(next, &[]);

        // err(code, step): report, then go on with the next row.
        self.b.switch_to_block(err);
        let ep = self.b.block_params(err).to_vec();
        let i = self.b.use_var(var_i);
        self.call_multi(H::Err, &[ctx, i, ep[1], ep[0]])?;
        self.b.ins().jump(next, &[]);

        // next: i += 1
        self.b.switch_to_block(next);
        let i = self.b.use_var(var_i);
        let i1 = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(var_i, i1);
        self.b.ins().jump(header, &[]);

        self.b.switch_to_block(exit);
        let n = self.b.use_var(var_n);
        self.b.ins().return_(&[n]);
        self.b.seal_all_blocks();
        Ok(())
    }

    fn call(&mut self, h: H, args: &[ir::Value]) -> R<ir::Value> {
        let r = self.call_multi(h, args)?;
        r.ok_or_else(|| format!("helper {h:?} returns nothing"))
    }

    fn call_multi(&mut self, h: H, args: &[ir::Value]) -> R<Option<ir::Value>> {
        let fr = match self.refs.get(&h) {
            Some(f) => *f,
            None => {
                let id = *self
                    .helper_ids
                    .get(&h)
                    .ok_or_else(|| format!("helper {h:?} not declared"))?;
                let f = self.module.declare_func_in_func(id, self.b.func);
                self.refs.insert(h, f);
                f
            }
        };
        let inst = self.b.ins().call(fr, args);
        Ok(self.b.inst_results(inst).first().copied())
    }

    fn ctx(&self) -> R<ir::Value> {
        self.ctx.ok_or_else(|| "no ctx".to_string())
    }

    /// Address of the 16-byte scratch stack slot helpers write results to.
    fn slot_addr(&mut self) -> R<ir::Value> {
        let s = self.slot.ok_or("no stack slot")?;
        Ok(self.b.ins().stack_addr(types::I64, s, 0))
    }

    fn slot_load(&mut self, ty: ir::Type, word: i32) -> R<ir::Value> {
        let s = self.slot.ok_or("no stack slot")?;
        Ok(self.b.ins().stack_load(types::I64, ty, s, word * 8))
    }

    /// Branches to the error block with `code` when `cond` (i8) is true.
    fn fail_if(&mut self, cond: ir::Value, code: RowErrorCode) -> R<()> {
        let c = self.b.ins().iconst(types::I64, code as i64);
        self.fail_if_code(cond, c)
    }

    fn fail_if_code(&mut self, cond: ir::Value, code: ir::Value) -> R<()> {
        let err = self.err_block.ok_or("no error block")?;
        let step = self.b.ins().iconst(types::I64, self.step as i64);
        let cont = self.b.create_block();
        self.b.ins().brif(
            cond,
            err,
            &[BlockArg::Value(code), BlockArg::Value(step)],
            cont,
            &[],
        );
        self.b.switch_to_block(cont);
        Ok(())
    }

    /// A helper's u32 error code (0 = ok) becomes a row error.
    fn fail_on_code(&mut self, code32: ir::Value) -> R<()> {
        let code = self.b.ins().uextend(types::I64, code32);
        let bad = self.b.ins().icmp_imm_s(IntCC::NotEqual, code, 0);
        self.fail_if_code(bad, code)
    }

    /// A condition: true only when present and true.
    fn truth(&mut self, v: Jv) -> ir::Value {
        match v.null {
            Some(n) => {
                let present = self.b.ins().bxor_imm_s(n, 1);
                self.b.ins().band(v.a, present)
            }
            None => v.a,
        }
    }

    fn zero(&mut self, s: Scalar) -> Jv {
        let a = match s {
            Scalar::Float => self.b.ins().f64const(Ieee64::with_bits(0)),
            s => self.b.ins().iconst(payload_ty(s), 0),
        };
        let len = (s == Scalar::Str).then(|| self.b.ins().iconst(types::I64, 0));
        Jv { null: None, a, len }
    }

    /// Block parameter types of a value of type `ty` at a merge point.
    fn merge_params(&mut self, block: ir::Block, ty: Type) -> Jv {
        let null = ty
            .nullable
            .then(|| self.b.append_block_param(block, types::I8));
        let a = self.b.append_block_param(block, payload_ty(ty.scalar));
        let len = (ty.scalar == Scalar::Str).then(|| self.b.append_block_param(block, types::I64));
        Jv { null, a, len }
    }

    /// The branch arguments passing `v` (of type `from`) as a value of type `to`.
    fn merge_args(&mut self, v: Jv, from: Type, to: Type) -> Vec<BlockArg> {
        let v = if from.scalar == Scalar::Null && to.scalar != Scalar::Null {
            let mut z = self.zero(to.scalar);
            z.null = Some(self.b.ins().iconst(types::I8, 1));
            z
        } else {
            v
        };
        let mut args = Vec::new();
        if to.nullable {
            let n = match v.null {
                Some(n) => n,
                None => self.b.ins().iconst(types::I8, 0),
            };
            args.push(BlockArg::Value(n));
        }
        args.push(BlockArg::Value(v.a));
        if to.scalar == Scalar::Str {
            let l = match v.len {
                Some(l) => l,
                None => self.b.ins().iconst(types::I64, 0),
            };
            args.push(BlockArg::Value(l));
        }
        args
    }

    fn lit(&mut self, v: &Value, ty: Type) -> Jv {
        let i = |g: &mut Self, x: i64| g.b.ins().iconst(types::I64, x);
        match v {
            Value::Null => {
                let mut z = self.zero(ty.scalar);
                z.null = Some(self.b.ins().iconst(types::I8, 1));
                z
            }
            Value::Int(x) | Value::Timestamp(x) => Jv {
                null: None,
                a: i(self, *x),
                len: None,
            },
            Value::Float(x) => Jv {
                null: None,
                a: self.b.ins().f64const(Ieee64::with_bits(x.to_bits())),
                len: None,
            },
            Value::Bool(b) => Jv {
                null: None,
                a: self.b.ins().iconst(types::I8, *b as i64),
                len: None,
            },
            Value::Str(s) => {
                let bytes: Box<[u8]> = s.as_bytes().into();
                let (p, l) = (bytes.as_ptr() as i64, bytes.len() as i64);
                self.literals.push(bytes);
                Jv {
                    null: None,
                    a: i(self, p),
                    len: Some(i(self, l)),
                }
            }
        }
    }

    fn expr(&mut self, e: &Expr, row: &[Option<Jv>]) -> R<Jv> {
        let mut v = self.expr_inner(e, row)?;
        // A non-null type (e.g. narrowed by the checker) needs no flag.
        if !e.ty.nullable {
            v.null = None;
        }
        Ok(v)
    }

    fn non_null(&mut self, e: &Expr, row: &[Option<Jv>]) -> R<Jv> {
        if e.ty.nullable || e.ty.scalar == Scalar::Null {
            return Err(format!("nullable operand of type {} not compiled", e.ty));
        }
        self.expr(e, row)
    }

    fn expr_inner(&mut self, e: &Expr, row: &[Option<Jv>]) -> R<Jv> {
        let i64t = types::I64;
        Ok(match &e.kind {
            ExprKind::Lit(v) => {
                if v.scalar() != e.ty.scalar && v.scalar() != Scalar::Null {
                    return Err(format!("literal {v} typed {}", e.ty));
                }
                self.lit(v, e.ty)
            }
            ExprKind::Field(c) => {
                if self.row_ty.get(*c).map(|t| t.scalar) != Some(e.ty.scalar) {
                    return Err(format!("field {c} typed {}", e.ty));
                }
                row.get(*c)
                    .copied()
                    .flatten()
                    .ok_or_else(|| format!("field {c} not available"))?
            }
            ExprKind::Local(l) => {
                let (v, t) = *self
                    .locals
                    .get(l)
                    .ok_or_else(|| format!("unbound local {l}"))?;
                if t.scalar != e.ty.scalar {
                    return Err(format!("local {l} of type {t} used as {}", e.ty));
                }
                v
            }
            ExprKind::Let { local, value, body } => {
                let v = self.expr(value, row)?;
                let saved = self.locals.insert(*local, (v, value.ty));
                let r = self.expr(body, row);
                match saved {
                    Some(s) => self.locals.insert(*local, s),
                    None => self.locals.remove(local),
                };
                r?
            }
            ExprKind::Unary(op, a) => {
                let x = self.non_null(a, row)?;
                let r = match (op, a.ty.scalar) {
                    (UnOp::Neg, Scalar::Int) => {
                        let bad = self.b.ins().icmp_imm_s(IntCC::Equal, x.a, i64::MIN);
                        self.fail_if(bad, RowErrorCode::Overflow)?;
                        self.b.ins().ineg(x.a)
                    }
                    (UnOp::Neg, Scalar::Float) => self.b.ins().fneg(x.a),
                    (UnOp::Not, Scalar::Bool) => self.b.ins().bxor_imm_s(x.a, 1),
                    _ => return Err(format!("unary {op:?} on {}", a.ty)),
                };
                Jv {
                    null: None,
                    a: r,
                    len: None,
                }
            }
            ExprKind::Binary(op @ (BinOp::And | BinOp::Or), a, b) => {
                let x = self.expr(a, row)?;
                let x = self.truth(x);
                let rhs = self.b.create_block();
                let merge = self.b.create_block();
                let r = self.b.append_block_param(merge, types::I8);
                let short = [BlockArg::Value(x)];
                if *op == BinOp::And {
                    self.b.ins().brif(x, rhs, &[], merge, &short);
                } else {
                    self.b.ins().brif(x, merge, &short, rhs, &[]);
                }
                self.b.switch_to_block(rhs);
                let y = self.expr(b, row)?;
                let y = self.truth(y);
                self.b.ins().jump(merge, &[BlockArg::Value(y)]);
                self.b.switch_to_block(merge);
                Jv {
                    null: None,
                    a: r,
                    len: None,
                }
            }
            ExprKind::Binary(op, a, b) => {
                let x = self.non_null(a, row)?;
                let y = self.non_null(b, row)?;
                if a.ty.scalar != b.ty.scalar {
                    return Err(format!("binary {op:?} on {} and {}", a.ty, b.ty));
                }
                let r = self.binary(*op, a.ty.scalar, x, y)?;
                Jv {
                    null: None,
                    a: r,
                    len: None,
                }
            }
            ExprKind::Cast(a, Scalar::Float) => {
                let x = self.expr(a, row)?;
                match a.ty.scalar {
                    Scalar::Int => Jv {
                        null: x.null,
                        a: self.b.ins().fcvt_from_sint(types::F64, x.a),
                        len: None,
                    },
                    Scalar::Float => x,
                    s => return Err(format!("cast from {}", s.name())),
                }
            }
            ExprKind::Cast(_, s) => return Err(format!("cast to {}", s.name())),
            ExprKind::IsNull(a) => {
                let x = self.expr(a, row)?;
                self.is_null(x)
            }
            ExprKind::Call(Builtin::IsNull, args) => {
                let a = args.first().ok_or("is_null without argument")?;
                let x = self.expr(a, row)?;
                self.is_null(x)
            }
            ExprKind::Coalesce(a, b) => {
                if a.ty.scalar == Scalar::Null {
                    let _ = self.expr(a, row)?;
                    let y = self.expr(b, row)?;
                    return Ok(y);
                }
                let x = self.expr(a, row)?;
                let Some(n) = x.null else {
                    return Ok(x);
                };
                let other = self.b.create_block();
                let merge = self.b.create_block();
                let out = self.merge_params(merge, e.ty);
                let present = Jv { null: None, ..x };
                let args = self.merge_args(present, a.ty.with_nullable(false), e.ty);
                self.b.ins().brif(n, other, &[], merge, &args);
                self.b.switch_to_block(other);
                let y = self.expr(b, row)?;
                let args = self.merge_args(y, b.ty, e.ty);
                self.b.ins().jump(merge, &args);
                self.b.switch_to_block(merge);
                out
            }
            ExprKind::If(c, t, f) => {
                let cv = self.expr(c, row)?;
                let cv = self.truth(cv);
                let tb = self.b.create_block();
                let fb = self.b.create_block();
                let merge = self.b.create_block();
                let out = self.merge_params(merge, e.ty);
                self.b.ins().brif(cv, tb, &[], fb, &[]);
                for (blk, br) in [(tb, t), (fb, f)] {
                    self.b.switch_to_block(blk);
                    let v = self.expr(br, row)?;
                    if br.ty.scalar != e.ty.scalar && br.ty.scalar != Scalar::Null {
                        return Err(format!("if branch {} for {}", br.ty, e.ty));
                    }
                    let args = self.merge_args(v, br.ty, e.ty);
                    self.b.ins().jump(merge, &args);
                }
                self.b.switch_to_block(merge);
                out
            }
            ExprKind::Call(bi, args) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.non_null(a, row)?);
                }
                let scalars: Vec<Scalar> = args.iter().map(|a| a.ty.scalar).collect();
                self.builtin(*bi, &vals, &scalars, args, i64t)?
            }
        })
    }

    fn is_null(&mut self, x: Jv) -> Jv {
        let a = match x.null {
            Some(n) => n,
            None => self.b.ins().iconst(types::I8, 0),
        };
        Jv {
            null: None,
            a,
            len: None,
        }
    }

    fn binary(&mut self, op: BinOp, s: Scalar, x: Jv, y: Jv) -> R<ir::Value> {
        let (a, b) = (x.a, y.a);
        let cmp_i = |op: BinOp, signed: bool| -> Option<IntCC> {
            Some(match (op, signed) {
                (BinOp::Eq, _) => IntCC::Equal,
                (BinOp::Ne, _) => IntCC::NotEqual,
                (BinOp::Lt, true) => IntCC::SignedLessThan,
                (BinOp::Le, true) => IntCC::SignedLessThanOrEqual,
                (BinOp::Gt, true) => IntCC::SignedGreaterThan,
                (BinOp::Ge, true) => IntCC::SignedGreaterThanOrEqual,
                (BinOp::Lt, false) => IntCC::UnsignedLessThan,
                (BinOp::Le, false) => IntCC::UnsignedLessThanOrEqual,
                (BinOp::Gt, false) => IntCC::UnsignedGreaterThan,
                (BinOp::Ge, false) => IntCC::UnsignedGreaterThanOrEqual,
                _ => return None,
            })
        };
        let ins_err = || format!("operator {} on {}", op.symbol(), s.name());
        Ok(match s {
            Scalar::Int | Scalar::Timestamp => match op {
                BinOp::Add | BinOp::Sub | BinOp::Mul if s == Scalar::Int => {
                    let (r, of) = match op {
                        BinOp::Add => self.b.ins().sadd_overflow(a, b),
                        BinOp::Sub => self.b.ins().ssub_overflow(a, b),
                        _ => self.b.ins().smul_overflow(a, b),
                    };
                    self.fail_if(of, RowErrorCode::Overflow)?;
                    r
                }
                BinOp::Div | BinOp::Rem if s == Scalar::Int => {
                    let z = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
                    self.fail_if(z, RowErrorCode::DivisionByZero)?;
                    let n1 = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
                    if op == BinOp::Div {
                        // i64::MIN / -1 overflows (and traps in `idiv`).
                        let m = self.b.ins().icmp_imm_s(IntCC::Equal, a, i64::MIN);
                        let of = self.b.ins().band(m, n1);
                        self.fail_if(of, RowErrorCode::Overflow)?;
                        self.b.ins().sdiv(a, b)
                    } else {
                        // `x % -1` is 0 for every x; `srem` traps on i64::MIN % -1, so divide
                        // by 1 instead (same result, see `ops::int_rem`).
                        let one = self.b.ins().iconst(types::I64, 1);
                        let d = self.b.ins().select(n1, one, b);
                        self.b.ins().srem(a, d)
                    }
                }
                _ => {
                    let cc = cmp_i(op, true).ok_or_else(ins_err)?;
                    self.b.ins().icmp(cc, a, b)
                }
            },
            Scalar::Bool => {
                let cc = cmp_i(op, false).ok_or_else(ins_err)?;
                self.b.ins().icmp(cc, a, b)
            }
            Scalar::Float => match op {
                BinOp::Add => self.b.ins().fadd(a, b),
                BinOp::Sub => self.b.ins().fsub(a, b),
                BinOp::Mul => self.b.ins().fmul(a, b),
                BinOp::Div | BinOp::Rem => {
                    let zero = self.b.ins().f64const(Ieee64::with_bits(0));
                    let z = self.b.ins().fcmp(FloatCC::Equal, b, zero);
                    self.fail_if(z, RowErrorCode::DivisionByZero)?;
                    if op == BinOp::Div {
                        self.b.ins().fdiv(a, b)
                    } else {
                        self.call(H::Fmod, &[a, b])?
                    }
                }
                _ => {
                    let cc = match op {
                        BinOp::Eq => FloatCC::Equal,
                        BinOp::Ne => FloatCC::NotEqual,
                        BinOp::Lt => FloatCC::LessThan,
                        BinOp::Le => FloatCC::LessThanOrEqual,
                        BinOp::Gt => FloatCC::GreaterThan,
                        BinOp::Ge => FloatCC::GreaterThanOrEqual,
                        _ => return Err(ins_err()),
                    };
                    self.b.ins().fcmp(cc, a, b)
                }
            },
            Scalar::Str => {
                let cc = cmp_i(op, true).ok_or_else(ins_err)?;
                let (al, bl) = (x.len.ok_or("no len")?, y.len.ok_or("no len")?);
                let r = self.call(H::StrCmp, &[a, al, b, bl])?;
                self.b.ins().icmp_imm_s(cc, r, 0)
            }
            Scalar::Null => return Err(ins_err()),
        })
    }

    /// A string-producing helper call: `args`, then the result slot; returns the pair.
    fn str_call(&mut self, h: H, args: &[ir::Value], fallible: bool) -> R<Jv> {
        let mut args = args.to_vec();
        args.push(self.slot_addr()?);
        if fallible {
            let code = self.call(h, &args)?;
            self.fail_on_code(code)?;
        } else {
            self.call_multi(h, &args)?;
        }
        let a = self.slot_load(types::I64, 0)?;
        let len = Some(self.slot_load(types::I64, 1)?);
        Ok(Jv { null: None, a, len })
    }

    /// The address of call argument `k`'s regular expression, compiled now.
    fn regex_ptr(&mut self, bi: Builtin, args: &[Expr], k: usize) -> R<ir::Value> {
        let re = literal::regex(lit_text(bi, args, k)?).map_err(|e| e.message)?;
        let re = Box::new(re);
        let p = &*re as *const regex::Regex as i64;
        self.compiled.regexes.push(re);
        Ok(self.b.ins().iconst(types::I64, p))
    }

    /// The address of call argument `k`'s time zone, looked up now.
    fn zone_ptr(&mut self, bi: Builtin, args: &[Expr], k: usize) -> R<ir::Value> {
        let z = literal::zone(lit_text(bi, args, k)?).map_err(|e| e.message)?;
        let z = Box::new(z);
        let p = &*z as *const jiff::tz::TimeZone as i64;
        self.compiled.zones.push(z);
        Ok(self.b.ins().iconst(types::I64, p))
    }

    /// A timestamp plus `n * unit` microseconds, overflow checked.
    fn ts_add(&mut self, t: ir::Value, n: ir::Value, unit: i64) -> R<ir::Value> {
        let u = self.b.ins().iconst(types::I64, unit);
        let (d, of1) = self.b.ins().smul_overflow(n, u);
        self.fail_if(of1, RowErrorCode::Overflow)?;
        let (r, of2) = self.b.ins().sadd_overflow(t, d);
        self.fail_if(of2, RowErrorCode::Overflow)?;
        Ok(r)
    }

    fn builtin(
        &mut self,
        bi: Builtin,
        v: &[Jv],
        s: &[Scalar],
        args: &[Expr],
        i64t: ir::Type,
    ) -> R<Jv> {
        let arg = |k: usize| -> R<Jv> {
            v.get(k)
                .copied()
                .ok_or_else(|| format!("{} needs argument {k}", bi.name()))
        };
        let st = |k: usize| -> R<(ir::Value, ir::Value)> {
            let j = arg(k)?;
            Ok((
                j.a,
                j.len
                    .ok_or_else(|| format!("{}: not a string", bi.name()))?,
            ))
        };
        let scalar0 = s.first().copied().unwrap_or(Scalar::Null);
        let plain = |a: ir::Value| Jv {
            null: None,
            a,
            len: None,
        };
        let ctx = self.ctx()?;
        Ok(match bi {
            Builtin::Len => {
                let (p, l) = st(0)?;
                plain(self.call(H::Len, &[p, l])?)
            }
            Builtin::Upper | Builtin::Lower => {
                let (p, l) = st(0)?;
                let h = if bi == Builtin::Upper {
                    H::Upper
                } else {
                    H::Lower
                };
                self.str_call(h, &[ctx, p, l], false)?
            }
            Builtin::Trim => {
                let (p, l) = st(0)?;
                self.str_call(H::Trim, &[p, l], false)?
            }
            Builtin::Contains | Builtin::StartsWith | Builtin::EndsWith => {
                let ((p, l), (q, m)) = (st(0)?, st(1)?);
                let h = match bi {
                    Builtin::Contains => H::Contains,
                    Builtin::StartsWith => H::StartsWith,
                    _ => H::EndsWith,
                };
                let r = self.call(h, &[p, l, q, m])?;
                plain(self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0))
            }
            Builtin::Substr => {
                let (p, l) = st(0)?;
                let (start, count) = (arg(1)?.a, arg(2)?.a);
                self.str_call(H::Substr, &[p, l, start, count], true)?
            }
            Builtin::Replace => {
                let ((p, l), (fp, fl), (tp, tl)) = (st(0)?, st(1)?, st(2)?);
                self.str_call(H::Replace, &[ctx, p, l, fp, fl, tp, tl], false)?
            }
            Builtin::Concat => {
                let Some(first) = v.first().copied() else {
                    return Ok(self.zero(Scalar::Str));
                };
                let mut acc = first;
                for k in 1..v.len() {
                    let (p, l) = st(k)?;
                    let al = acc.len.ok_or("concat: not a string")?;
                    acc = self.str_call(H::Concat2, &[ctx, acc.a, al, p, l], false)?;
                }
                acc
            }
            Builtin::Abs => {
                let x = arg(0)?.a;
                plain(if scalar0 == Scalar::Int {
                    let bad = self.b.ins().icmp_imm_s(IntCC::Equal, x, i64::MIN);
                    self.fail_if(bad, RowErrorCode::Overflow)?;
                    self.b.ins().iabs(x)
                } else {
                    self.b.ins().fabs(x)
                })
            }
            Builtin::Round => plain(self.call(H::Round, &[arg(0)?.a])?),
            Builtin::Floor => plain(self.b.ins().floor(arg(0)?.a)),
            Builtin::Ceil => plain(self.b.ins().ceil(arg(0)?.a)),
            Builtin::Sqrt => plain(self.b.ins().sqrt(arg(0)?.a)),
            Builtin::Min | Builtin::Max => {
                let (x, y) = (arg(0)?.a, arg(1)?.a);
                plain(match (scalar0, bi) {
                    (Scalar::Int, Builtin::Min) => self.b.ins().smin(x, y),
                    (Scalar::Int, _) => self.b.ins().smax(x, y),
                    (_, Builtin::Min) => self.call(H::Fmin, &[x, y])?,
                    _ => self.call(H::Fmax, &[x, y])?,
                })
            }
            Builtin::ToInt => {
                let x = arg(0)?.a;
                if scalar0 == Scalar::Int {
                    plain(x)
                } else {
                    let sa = self.slot_addr()?;
                    let code = self.call(H::FloatToInt, &[x, sa])?;
                    self.fail_on_code(code)?;
                    plain(self.slot_load(i64t, 0)?)
                }
            }
            Builtin::ToFloat => {
                let x = arg(0)?.a;
                plain(if scalar0 == Scalar::Int {
                    self.b.ins().fcvt_from_sint(types::F64, x)
                } else {
                    x
                })
            }
            Builtin::ToStr => {
                let x = arg(0)?;
                match scalar0 {
                    Scalar::Int => self.str_call(H::IntToStr, &[ctx, x.a], false)?,
                    Scalar::Float => self.str_call(H::FloatToStr, &[ctx, x.a], false)?,
                    Scalar::Bool => {
                        let w = self.b.ins().uextend(i64t, x.a);
                        self.str_call(H::BoolToStr, &[w], false)?
                    }
                    Scalar::Timestamp => self.str_call(H::TsToStr, &[ctx, x.a], false)?,
                    Scalar::Str => x,
                    Scalar::Null => return Err("to_str(null)".into()),
                }
            }
            Builtin::ParseTimestamp if v.len() > 1 => {
                let ((p, l), (fp, fl)) = (st(0)?, st(1)?);
                let sa = self.slot_addr()?;
                let is_null = self.call(H::ParseTsFormat, &[p, l, fp, fl, sa])?;
                let null = Some(self.b.ins().ireduce(types::I8, is_null));
                Jv {
                    null,
                    a: self.slot_load(i64t, 0)?,
                    len: None,
                }
            }
            Builtin::ParseInt | Builtin::ParseFloat | Builtin::ParseTimestamp => {
                let (p, l) = st(0)?;
                let (h, ty) = match bi {
                    Builtin::ParseInt => (H::ParseInt, i64t),
                    Builtin::ParseFloat => (H::ParseFloat, types::F64),
                    _ => (H::ParseTimestamp, i64t),
                };
                let sa = self.slot_addr()?;
                let is_null = self.call(h, &[p, l, sa])?;
                let null = Some(self.b.ins().ireduce(types::I8, is_null));
                // The slot holds a stale value when null; it is never read as present.
                Jv {
                    null,
                    a: self.slot_load(ty, 0)?,
                    len: None,
                }
            }
            Builtin::FromUnix => {
                let x = arg(0)?.a;
                let m = self
                    .b
                    .ins()
                    .iconst(i64t, crate::stdlib::ops::MICROS_PER_SEC);
                let (r, of) = self.b.ins().smul_overflow(x, m);
                self.fail_if(of, RowErrorCode::Overflow)?;
                plain(r)
            }
            Builtin::Unix => plain(self.call(H::Unix, &[arg(0)?.a])?),
            Builtin::IsNull => {
                let x = arg(0)?;
                self.is_null(x)
            }
            Builtin::Matches => {
                let (p, l) = st(0)?;
                let re = self.regex_ptr(bi, args, 1)?;
                let r = self.call(H::RegexMatch, &[re, p, l])?;
                plain(self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0))
            }
            Builtin::Extract => {
                let (p, l) = st(0)?;
                let re = self.regex_ptr(bi, args, 1)?;
                let group = arg(2)?.a;
                let sa = self.slot_addr()?;
                let r = self.call(H::RegexExtract, &[re, p, l, group, sa])?;
                let r = self.b.ins().uextend(i64t, r);
                // 0: a value, 1: null, 1 + code: a row error.
                let bad = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, r, 1);
                let code = self.b.ins().iadd_imm_s(r, -1);
                self.fail_if_code(bad, code)?;
                let is_null = self.b.ins().icmp_imm_s(IntCC::Equal, r, 1);
                // The helper writes an empty pair for null.
                Jv {
                    null: Some(is_null),
                    a: self.slot_load(i64t, 0)?,
                    len: Some(self.slot_load(i64t, 1)?),
                }
            }
            Builtin::ReplaceAll => {
                let ((p, l), (wp, wl)) = (st(0)?, st(2)?);
                let re = self.regex_ptr(bi, args, 1)?;
                self.str_call(H::RegexReplace, &[ctx, re, p, l, wp, wl], false)?
            }
            Builtin::FormatTimestamp if v.len() > 1 => {
                let (fp, fl) = st(1)?;
                self.str_call(H::FormatTs, &[ctx, arg(0)?.a, fp, fl], true)?
            }
            Builtin::FormatTimestamp => self.str_call(H::TsToStr, &[ctx, arg(0)?.a], false)?,
            Builtin::DateTrunc => {
                let unit = literal::trunc_unit(lit_text(bi, args, 0)?).map_err(|e| e.message)?;
                let u = self.b.ins().iconst(i64t, unit as i64);
                plain(self.call(H::DateTrunc, &[arg(1)?.a, u])?)
            }
            Builtin::Year
            | Builtin::Month
            | Builtin::Day
            | Builtin::Hour
            | Builtin::Minute
            | Builtin::Second
            | Builtin::DayOfWeek => {
                let part = self.b.ins().iconst(i64t, sem::ts_part_of(bi) as i64);
                plain(self.call(H::TsPart, &[arg(0)?.a, part])?)
            }
            Builtin::AddSeconds => plain(self.ts_add(arg(0)?.a, arg(1)?.a, ops::MICROS_PER_SEC)?),
            Builtin::AddDays => {
                plain(self.ts_add(arg(0)?.a, arg(1)?.a, 86_400 * ops::MICROS_PER_SEC)?)
            }
            Builtin::DiffSeconds => {
                let (d, of) = self.b.ins().ssub_overflow(arg(0)?.a, arg(1)?.a);
                self.fail_if(of, RowErrorCode::Overflow)?;
                let m = self.b.ins().iconst(i64t, ops::MICROS_PER_SEC);
                // Truncates toward zero, as `ops::diff_seconds`.
                plain(self.b.ins().sdiv(d, m))
            }
            Builtin::UtcToLocal | Builtin::LocalToUtc => {
                let z = self.zone_ptr(bi, args, 1)?;
                let to_utc = self
                    .b
                    .ins()
                    .iconst(i64t, (bi == Builtin::LocalToUtc) as i64);
                let sa = self.slot_addr()?;
                let code = self.call(H::ZoneShift, &[z, arg(0)?.a, to_utc, sa])?;
                self.fail_on_code(code)?;
                plain(self.slot_load(i64t, 0)?)
            }
        })
    }
}

/// Collects the input columns an expression reads.
fn fields(e: &Expr, out: &mut BTreeSet<usize>) {
    match &e.kind {
        ExprKind::Field(c) => {
            out.insert(*c);
        }
        ExprKind::Lit(_) | ExprKind::Local(_) => {}
        ExprKind::Let { value, body, .. } => {
            fields(value, out);
            fields(body, out);
        }
        ExprKind::Unary(_, a) | ExprKind::Cast(a, _) | ExprKind::IsNull(a) => fields(a, out),
        ExprKind::Binary(_, a, b) | ExprKind::Coalesce(a, b) => {
            fields(a, out);
            fields(b, out);
        }
        ExprKind::If(c, t, f) => {
            fields(c, out);
            fields(t, out);
            fields(f, out);
        }
        ExprKind::Call(_, args) => args.iter().for_each(|a| fields(a, out)),
    }
}
