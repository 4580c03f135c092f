//! Quantized ops on wgpu: `quantize_rows_i8`, `gemm_w8a8`, `gemm_w4a16`, `gemm_w8a16`
//! (kernels in `shaders/quant.wgsl`).
//!
//! `gemm_w4a16` and `gemm_w8a16` share two kernels (`gemm_wo_gemv`, `gemm_wo_tiled`) and take
//! every weight form through the overrides `W8` (int8 codes), `MINS` (float minimums, GGUF
//! Q4_K) and `PERM` (act-order: the X loads gather through `perm`, binding 6); each
//! combination is its own pipeline, so the unused branches fold away.
//!
//! Paths: the GEMMs run a GEMV-style kernel for M <= 16 (32 lanes per output column along K,
//! W streamed once per block of up to 8 rows) and a tiled kernel otherwise (64 x 64, or
//! 32 x 32 where the fast choice sees few tiles: override `QT`). f16 outputs are written two
//! per word by one invocation; for odd N (where a word straddles two rows) the kernel writes
//! f32 into a scratch buffer and the shared pack pass packs it.
//!
//! Fast paths ([`super::KernelChoice::Fast`], on devices with `Features::SUBGROUP`): the GEMVs
//! and `quantize_rows_i8` reduce with subgroup operations (`*_sg` entry points of
//! `shaders/quant_sg.wgsl`, assembled after `shaders/quant.wgsl` into one module), and the
//! weight-only GEMV on f16 activations dequantizes and multiplies in native f16 where the
//! device has `Features::SHADER_F16` (the "sg+f16" module). The fast kernels call the same
//! functions as the simple ones (partial sums, epilogue, X loads, rounding), only the
//! reduction differs. The simple kernels (and devices without subgroups) run the kernels of
//! `shaders/quant.wgsl` and `shaders/quant_gemv.wgsl` (with the f32 weight math of
//! `shaders/quant_wo_f32.wgsl`) only.

use super::context::WgpuBackend;
use super::dispatch::{expect_len, u32_param, wgsl_params, Bind, Dispatch, Groups, WgslParams};
use super::lowrank::limits;
use super::pack::Output;
use super::pipeline::{Shader, PRELUDE};
use super::plan::{gemm_tile, gemv_kind, gemv_rows, GemvKind, GEMV_MAX_M};
use crate::backend::{Checked, QuantOps};
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::{DeviceInt4Weights, DeviceInt8Matrix, DeviceInt8Weights, Tensor};

/// `dot4i8` through the WGSL built-in (lowered to OpSDot or polyfilled by naga).
pub(super) const DOT_NATIVE: &str = "fn dot4i8(a: u32, b: u32) -> i32 { return dot4I8Packed(a, b); }\n";
/// `dot4i8` by sign-extending shifts, for platforms without `packed_4x8_integer_dot_product`.
pub(super) const DOT_MANUAL: &str = "fn dot4i8(a: u32, b: u32) -> i32 { let s = vec4<u32>(24u, 16u, 8u, 0u); return dot(bitcast<vec4<i32>>(vec4<u32>(a) << s) >> vec4<u32>(24u), bitcast<vec4<i32>>(vec4<u32>(b) << s) >> vec4<u32>(24u)); }\n";
/// The file itself (also included whole by the fused kernel's module, `quant_dyn.rs`).
pub(super) const SOURCE: &str = include_str!("../../shaders/quant.wgsl");
/// The GEMVs, after `SOURCE` and a weight-math snippet in every module but the fused one.
const SOURCE_GEMV: &str = include_str!("../../shaders/quant_gemv.wgsl");
/// The fast entry points (subgroup reductions), after `SOURCE` in the fast modules.
const SOURCE_SG: &str = include_str!("../../shaders/quant_sg.wgsl");
/// The f32 weight math of the weight-only GEMVs (the simple one's, and the fast one's on f32
/// activations or without `SHADER_F16`).
const WO_F32: &str = include_str!("../../shaders/quant_wo_f32.wgsl");
/// The native f16 weight math of the fast weight-only GEMV.
const WO_F16: &str = include_str!("../../shaders/quant_wo_f16.wgsl");
/// The enable directive (first in the module) of the f16 fast modules. (naga 30 takes the
/// subgroup built-ins without `enable subgroups;`, which it does not parse yet; the device
/// feature `SUBGROUP` is what they need.)
const ENABLE_F16: &str = "enable f16;";

/// The quantized kernels with the built-in packed dot product (prelude, `dot4i8`, the file and
/// the f32 weight math in front of the GEMVs); trusted: the in-bounds argument is written at
/// the top of `shaders/quant.wgsl` and at each access, and every buffer is checked below.
pub(super) static QUANT: Shader = Shader::family("quant", "", &[PRELUDE, DOT_NATIVE, SOURCE, WO_F32], SOURCE_GEMV).with_params(PARAMS);
/// The same kernels with a manual `dot4i8`.
pub(super) static QUANT_MANUAL_DOT: Shader =
    Shader::family("quant", "manual dot4i8", &[PRELUDE, DOT_MANUAL, SOURCE, WO_F32], SOURCE_GEMV).with_params(PARAMS);
/// The fast module: subgroup reductions (needs `Features::SUBGROUP`).
pub(super) static QUANT_SG: Shader =
    Shader::family("quant", "sg", &[PRELUDE, DOT_NATIVE, SOURCE, SOURCE_GEMV, WO_F32], SOURCE_SG).with_params(PARAMS);
/// The fast module with a manual `dot4i8`.
pub(super) static QUANT_SG_MANUAL_DOT: Shader =
    Shader::family("quant", "sg manual dot4i8", &[PRELUDE, DOT_MANUAL, SOURCE, SOURCE_GEMV, WO_F32], SOURCE_SG).with_params(PARAMS);
/// The fast module with native f16 weight math (needs `SUBGROUP` and `SHADER_F16`).
pub(super) static QUANT_SG_F16: Shader =
    Shader::family("quant", "sg+f16", &[ENABLE_F16, PRELUDE, DOT_NATIVE, SOURCE, SOURCE_GEMV, WO_F16], SOURCE_SG).with_params(PARAMS);
/// The f16 fast module with a manual `dot4i8`.
pub(super) static QUANT_SG_F16_MANUAL_DOT: Shader =
    Shader::family("quant", "sg+f16 manual dot4i8", &[ENABLE_F16, PRELUDE, DOT_MANUAL, SOURCE, SOURCE_GEMV, WO_F16], SOURCE_SG)
        .with_params(PARAMS);
/// The generated parameter structs of the quant kernels.
const PARAMS: &[&str] = &[QuantParams::WGSL, GemmParams::WGSL];

wgsl_params! {
    /// Parameters of `quantize_rows_i8`.
    struct QuantParams {
        m: u32,
        k: u32,
        /// Row stride of the output in u32 words (stride / 4).
        stride_words: u32,
        _pad: u32,
    }
}

wgsl_params! {
    /// Parameters of the GEMMs. W8A8: `sx4` / `sw4` are the row strides of X and W in
    /// `vec4<u32>` units; W4A16 and W8A16: `sx4` is the number of groups per row and `group`
    /// the group size.
    struct GemmParams {
        m: u32,
        n: u32,
        k: u32,
        sx4: u32,
        sw4: u32,
        group: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

/// True where the modules use the built-in `dot4I8Packed`: where the WGSL language feature
/// `packed_4x8_integer_dot_product` exists (always with native wgpu, whose naga lowers or
/// polyfills it); the manual `dot4i8` otherwise (`SLIMGEMM_WGPU_MANUAL_DOT=1` forces it).
pub(super) fn native_dot() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        if std::env::var("SLIMGEMM_WGPU_MANUAL_DOT").map(|v| v == "1").unwrap_or(false) {
            return false;
        }
        let inst = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        inst.wgsl_language_features().contains(wgpu::WgslLanguageFeatures::Packed4x8IntegerDotProduct)
    })
}

/// Which module of the quant kernels a launch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Module {
    /// `shaders/quant.wgsl` and the GEMVs (f32 weight math): the simple kernels and the tiled
    /// GEMMs.
    Plain,
    /// With the subgroup entry points (`*_sg`), f32 weight math.
    Sg,
    /// With the subgroup entry points and native f16 weight math.
    SgF16,
}

fn shader(module: Module) -> &'static Shader {
    match (module, native_dot()) {
        (Module::Plain, true) => &QUANT,
        (Module::Plain, false) => &QUANT_MANUAL_DOT,
        (Module::Sg, true) => &QUANT_SG,
        (Module::Sg, false) => &QUANT_SG_MANUAL_DOT,
        (Module::SgF16, true) => &QUANT_SG_F16,
        (Module::SgF16, false) => &QUANT_SG_F16_MANUAL_DOT,
    }
}

/// The module and entry point of a GEMV (or of the quantization) on this backend
/// ([`gemv_kind`]): `sg` in a subgroup module, else the simple kernel `simple`; `f16_acts`:
/// the activations are f16 (the weight-only GEMV's native f16 math).
fn gemv_kernel(be: &WgpuBackend, f16_acts: bool, simple: &'static str, sg: &'static str) -> (Module, &'static str) {
    match gemv_kind(be.fast(), be.has_subgroups(), be.has_f16(), f16_acts) {
        GemvKind::Simple => (Module::Plain, simple),
        GemvKind::Subgroup => (Module::Sg, sg),
        GemvKind::SubgroupF16 => (Module::SgF16, sg),
    }
}

fn flag(b: bool) -> f64 {
    b as u32 as f64
}

/// A GEMM launch without its output binding and without `YF16`: `binds` come before the
/// output (binding 5), `tail` after it.
struct Gemm<'a> {
    module: Module,
    entry: &'static str,
    constants: Vec<(&'static str, f64)>,
    binds: Vec<Bind<'a>>,
    tail: Vec<Bind<'a>>,
    params: GemmParams,
    groups: Groups,
}

/// Runs a GEMM launch whose output is `y`: directly, or (f16 with odd N, where a word would
/// straddle two rows) into an f32 scratch that the pack pass then packs.
fn with_output(be: &WgpuBackend, op: &'static str, y: &Tensor, g: Gemm<'_>) -> Result<()> {
    let f16 = y.dtype() == DType::F16;
    let ybuf = be.buf(&y.buf)?;
    let make = |out, yf16: bool| {
        let mut constants = g.constants.clone();
        constants.push(("YF16", flag(yf16)));
        let mut binds = g.binds.clone();
        binds.push(Bind::Write(out));
        binds.extend(g.tail.iter().copied());
        Dispatch { shader: shader(g.module), entry: g.entry, constants, binds, params: g.params.bytes(), groups: g.groups }
    };
    let out = if f16 && y.cols % 2 == 1 {
        Output::packed(be, "slimgemm f16 scratch", ybuf, y.rows * y.cols, 1.0, 0.0)?
    } else {
        Output::direct(ybuf)
    };
    let mut ds = vec![make(out.target(), f16 && !out.is_packed())];
    out.finish(op, &mut ds)?;
    be.run(op, &ds)
}

/// Module, entry point, grid and tile override of a GEMM: the GEMV kernel `gemv` for M <= 16
/// (8 columns per workgroup along x/y, row blocks of `MS` along z), otherwise the tiled kernel
/// on `QT` x `QT` tiles (64, or 32 where the fast choice sees few tiles: `plan::gemm_tile`).
fn gemm_path(
    be: &WgpuBackend,
    gemv: (Module, &'static str),
    tiled: &'static str,
    m: usize,
    n: usize,
) -> ((Module, &'static str), Groups, (&'static str, f64)) {
    if m <= GEMV_MAX_M {
        let ms = gemv_rows(m);
        let blocks = n.div_ceil(8) as u64;
        let maxd = be.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        let x = blocks.min(maxd);
        let y = blocks.div_ceil(x);
        // y > maxd is reported by the dispatch helper's grid check.
        let gy = u32::try_from(y).unwrap_or(u32::MAX);
        (gemv, Groups::Grid(x as u32, gy, m.div_ceil(ms as usize) as u32), ("MS", ms as f64))
    } else {
        let qt = gemm_tile(be.fast(), &limits(be), m, n) as usize;
        ((Module::Plain, tiled), Groups::Linear((m.div_ceil(qt) as u64) * (n.div_ceil(qt) as u64)), ("QT", qt as f64))
    }
}

/// Launches `gemm_w4a16` / `gemm_w8a16` (the `gemm_wo_*` kernels) on X `[m, k]` and the
/// checked weight buffers `[codes, scales, offsets (binding 4), perm (binding 6)]` of an
/// `[n, k]` weight with group size `group` in the `form` (overrides `MINS`, `PERM`, `W8`).
fn weight_only(
    be: &WgpuBackend,
    op: &'static str,
    x: &Tensor,
    y: &Tensor,
    (n, k, group): (usize, usize, usize),
    form: &[(&'static str, f64)],
    [codes, scales, offsets, perm]: [&wgpu::Buffer; 4],
) -> Result<()> {
    let m = x.rows;
    expect_len(op, "Y", &y.buf, m * n)?;
    u32_param(op, "outputs", m * n)?;
    u32_param(op, "X elements", m * k)?;
    u32_param(op, "weights", n * k)?;
    let params = GemmParams {
        m: u32_param(op, "M", m)?,
        n: u32_param(op, "N", n)?,
        k: u32_param(op, "K", k)?,
        sx4: u32_param(op, "groups per row", k / group)?,
        group: u32_param(op, "group", group)?,
        ..Default::default()
    };
    let gemv = gemv_kernel(be, x.dtype() == DType::F16, "gemm_wo_gemv", "gemm_wo_gemv_sg");
    let ((module, entry), groups, tile) = gemm_path(be, gemv, "gemm_wo_tiled", m, n);
    let mut constants = vec![("XF16", flag(x.dtype() == DType::F16)), tile];
    constants.extend_from_slice(form);
    let xb = be.buf(&x.buf)?;
    let g = Gemm {
        module,
        entry,
        constants,
        binds: vec![Bind::Read(xb), Bind::Read(codes), Bind::Read(scales), Bind::Read(offsets)],
        tail: vec![Bind::Read(perm)],
        params,
        groups,
    };
    with_output(be, op, y, g)
}

impl QuantOps for WgpuBackend {
    fn quantize_rows_i8(&self, _: Checked, x: &Tensor, out: &mut DeviceInt8Matrix) -> Result<()> {
        let be = self;
        const OP: &str = "quantize_rows_i8";
        expect_len(OP, "X", &x.buf, x.rows * x.cols)?;
        expect_len(OP, "out.q", &out.q, x.rows * out.stride)?;
        expect_len(OP, "out.scales", &out.scales, x.rows)?;
        let m = u32_param(OP, "rows", x.rows)?;
        let k = u32_param(OP, "cols", x.cols)?;
        // Flat element indices (row * k + c) and output words must fit in u32.
        u32_param(OP, "elements", x.rows * x.cols)?;
        let stride_words = u32_param(OP, "row stride", out.stride / 4)?;
        u32_param(OP, "output words", x.rows * (out.stride / 4))?;
        let (module, entry) = gemv_kernel(be, false, "quantize_rows_i8", "quantize_rows_i8_sg");
        let d = Dispatch {
            shader: shader(module),
            entry,
            constants: vec![("XF16", flag(x.dtype() == DType::F16))],
            binds: vec![Bind::Read(be.buf(&x.buf)?), Bind::Write(be.buf(&out.q)?), Bind::Write(be.buf(&out.scales)?)],
            params: QuantParams { m, k, stride_words, ..Default::default() }.bytes(),
            groups: Groups::Linear(m as u64),
        };
        be.run(OP, &[d])
    }

    fn gemm_w8a8(&self, _: Checked, x: &DeviceInt8Matrix, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "gemm_w8a8";
        let (m, n, k) = (x.rows, w.rows, x.cols);
        expect_len(OP, "X.q", &x.q, m * x.stride)?;
        expect_len(OP, "W.q", &w.q, n * w.stride)?;
        expect_len(OP, "X.scales", &x.scales, m)?;
        expect_len(OP, "W.scales", &w.scales, n)?;
        expect_len(OP, "Y", &y.buf, m * n)?;
        u32_param(OP, "outputs", m * n)?;
        let params = GemmParams {
            m: u32_param(OP, "M", m)?,
            n: u32_param(OP, "N", n)?,
            k: u32_param(OP, "K", k)?,
            sx4: u32_param(OP, "X vec4 stride", x.stride / 16)?,
            sw4: u32_param(OP, "W vec4 stride", w.stride / 16)?,
            ..Default::default()
        };
        u32_param(OP, "X vec4s", x.rows * x.stride / 16)?;
        u32_param(OP, "W vec4s", w.rows * w.stride / 16)?;
        let gemv = gemv_kernel(be, false, "gemm_w8a8_gemv", "gemm_w8a8_gemv_sg");
        let ((module, entry), groups, tile) = gemm_path(be, gemv, "gemm_w8a8_tiled", m, n);
        let (xq, sx, wq, sw) = (be.buf(&x.q)?, be.buf(&x.scales)?, be.buf(&w.q)?, be.buf(&w.scales)?);
        let g = Gemm {
            module,
            entry,
            constants: vec![tile],
            binds: vec![Bind::Read(xq), Bind::Read(sx), Bind::Read(wq), Bind::Read(sw)],
            tail: vec![],
            params,
            groups,
        };
        with_output(be, OP, y, g)
    }

    /// The fused kernel of `shaders/quant_dyn.wgsl` (launcher in `quant_dyn.rs`).
    fn gemm_w8a8_dyn(&self, _: Checked, x: &Tensor, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
        super::quant_dyn::gemm_w8a8_dyn(self, x, w, y)
    }

    fn gemm_w4a16(&self, _: Checked, x: &Tensor, w: &DeviceInt4Weights, y: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "gemm_w4a16";
        let (m, n, k) = (x.rows, w.n, w.k);
        let groups_per_row = k / w.group;
        expect_len(OP, "X", &x.buf, m * k)?;
        expect_len(OP, "qweight", &w.qweight, n * k / 8)?;
        expect_len(OP, "scales", &w.scales, n * groups_per_row)?;
        // Binding 4: the zero points, or the minimums' f32 bits (MINS).
        let offsets = match &w.mins {
            Some(mins) => {
                expect_len(OP, "mins", mins, n * groups_per_row)?;
                mins
            }
            None => {
                expect_len(OP, "zeros", &w.zeros, n * groups_per_row)?;
                &w.zeros
            }
        };
        // Binding 6: the permutation (PERM), else the scales, which the kernel does not read.
        let perm = match &w.perm {
            Some(p) => {
                expect_len(OP, "perm", p, k)?;
                p
            }
            None => &w.scales,
        };
        let (qw, sc, off, pb) = (be.buf(&w.qweight)?, be.buf(&w.scales)?, be.buf(offsets)?, be.buf(perm)?);
        let form = [("MINS", flag(w.mins.is_some())), ("PERM", flag(w.perm.is_some()))];
        weight_only(be, OP, x, y, (n, k, w.group), &form, [qw, sc, off, pb])
    }

    fn gemm_w8a16(&self, _: Checked, x: &Tensor, w: &DeviceInt8Weights, y: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "gemm_w8a16";
        let (m, n, k) = (x.rows, w.n, w.k);
        crate::formats::quant::check_group(OP, k, w.group)?;
        let groups_per_row = k / w.group;
        expect_len(OP, "X", &x.buf, m * k)?;
        expect_len(OP, "q", &w.q, n * k)?;
        expect_len(OP, "scales", &w.scales, n * groups_per_row)?;
        let (q, sc) = (be.buf(&w.q)?, be.buf(&w.scales)?);
        // Bindings 4 and 6 (zero points and perm of gemm_w4a16) are not read: the scales.
        weight_only(be, OP, x, y, (n, k, w.group), &[("W8", 1.0)], [q, sc, sc, sc])
    }
}
