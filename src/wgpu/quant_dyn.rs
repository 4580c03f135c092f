//! `gemm_w8a8_dyn` on wgpu (kernel in `shaders/quant_dyn.wgsl`): for M <= 16 one dispatch
//! that quantizes X's rows in workgroup memory (the rule of `quantize_rows_i8`) and runs the
//! int8 GEMV on them, bit-identical to this backend's `quantize_rows_i8` then `gemm_w8a8`;
//! otherwise those two dispatches through a scratch of quantized rows.

use super::context::WgpuBackend;
use super::dispatch::{expect_len, u32_param, wgsl_params, Bind, Dispatch, Groups, WgslParams};
use super::pack::Output;
use super::pipeline::{Shader, PRELUDE};
use super::quant;
use crate::backend::{Checked, QuantOps};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{DeviceInt8Matrix, Tensor};

/// The file itself.
const SOURCE: &str = include_str!("../../shaders/quant_dyn.wgsl");

/// The generated parameter structs of the fused module: its own and those of
/// `shaders/quant.wgsl`, which it includes.
const PARAMS: &[&str] = &[DynParams::WGSL, quant::QuantParams::WGSL, quant::GemmParams::WGSL];

/// The fused kernel with the built-in packed dot product (prelude, the `dot4i8` of
/// `shaders/quant.wgsl` and that whole file, whose X load, rounding and packing the kernel
/// shares, in front); trusted: the in-bounds argument is written at
/// the top of `shaders/quant_dyn.wgsl` (and of `shaders/quant.wgsl`) and at each access, and
/// every buffer is checked below.
pub(super) static QUANT_DYN: Shader =
    Shader::family("quant_dyn", "", &[PRELUDE, quant::DOT_NATIVE, quant::SOURCE], SOURCE).with_params(PARAMS);
/// The same kernel with the manual `dot4i8`.
pub(super) static QUANT_DYN_MANUAL_DOT: Shader =
    Shader::family("quant_dyn", "manual dot4i8", &[PRELUDE, quant::DOT_MANUAL, quant::SOURCE], SOURCE).with_params(PARAMS);

wgsl_params! {
    /// Parameters of `gemm_w8a8_dyn_gemv`: W's row stride `sw4` in `vec4<u32>` units.
    struct DynParams {
        m: u32,
        n: u32,
        k: u32,
        sw4: u32,
    }
}

/// Largest M of the fused kernel: the GEMV threshold of `gemm_w8a8` (CUDA's too).
const DYN_MAX_M: usize = super::plan::GEMV_MAX_M;
/// Output columns per workgroup (`DC` in the shader).
const DYN_COLS: usize = 32;

/// The variant with the `dot4i8` that `quantize_rows_i8` / `gemm_w8a8` use on this platform.
fn shader() -> &'static Shader {
    if quant::native_dot() {
        &QUANT_DYN
    } else {
        &QUANT_DYN_MANUAL_DOT
    }
}

/// Rows per workgroup (override `MS`): the next power of two >= m, at most 8 (as the GEMV of
/// `gemm_w8a8`).
fn dyn_rows(m: usize) -> u32 {
    m.next_power_of_two().min(8) as u32
}

/// `gemm_w8a8_dyn`: the fused dispatch for M <= 16 (fast kernels), else (and with
/// `KernelChoice::Simple`, as CUDA's `SLIMGEMM_KERNEL=simple`) `quantize_rows_i8` into a
/// scratch and `gemm_w8a8`.
pub(super) fn gemm_w8a8_dyn(be: &WgpuBackend, x: &Tensor, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
    const OP: &str = "gemm_w8a8_dyn";
    let (m, n, k) = (x.rows, w.rows, x.cols);
    if w.cols != k || w.stride < k || w.stride % 16 != 0 {
        return Err(Error::shape(OP, format!("W is [{n}, {}] with row stride {}, expected K = {k}", w.cols, w.stride)));
    }
    if m > DYN_MAX_M || !be.fast() {
        let mut xq = crate::backend::scratch_int8(be, m, k)?;
        be.quantize_rows_i8(Checked::new(), x, &mut xq)?;
        return be.gemm_w8a8(Checked::new(), &xq, w, y);
    }
    expect_len(OP, "X", &x.buf, m * k)?;
    expect_len(OP, "W.q", &w.q, n * w.stride)?;
    expect_len(OP, "W.scales", &w.scales, n)?;
    expect_len(OP, "Y", &y.buf, m * n)?;
    // Flat indices of X, Y and W's vec4s must fit in u32.
    u32_param(OP, "X elements", m * k)?;
    u32_param(OP, "outputs", m * n)?;
    u32_param(OP, "W vec4s", n * (w.stride / 16))?;
    let params = DynParams {
        m: u32_param(OP, "M", m)?,
        n: u32_param(OP, "N", n)?,
        k: u32_param(OP, "K", k)?,
        sw4: u32_param(OP, "W vec4 stride", w.stride / 16)?,
    };
    let ms = dyn_rows(m);
    let blocks = n.div_ceil(DYN_COLS) as u64;
    let maxd = be.limits.max_compute_workgroups_per_dimension.max(1) as u64;
    let gx = blocks.min(maxd);
    // gy > maxd is reported by the dispatch's grid check.
    let gy = u32::try_from(blocks.div_ceil(gx)).unwrap_or(u32::MAX);
    let groups = Groups::Grid(gx as u32, gy, m.div_ceil(ms as usize) as u32);
    let f16 = y.dtype() == DType::F16;
    let (xb, wq, sw, yb) = (be.buf(&x.buf)?, be.buf(&w.q)?, be.buf(&w.scales)?, be.buf(&y.buf)?);
    // f16 with odd N (a word would straddle two rows): f32 into a scratch, then the pack pass,
    // as gemm_w8a8 does.
    let out = if f16 && n % 2 == 1 { Output::packed(be, "slimgemm f16 scratch", yb, m * n, 1.0, 0.0)? } else { Output::direct(yb) };
    let constants =
        vec![("XF16", (x.dtype() == DType::F16) as u32 as f64), ("YF16", (f16 && !out.is_packed()) as u32 as f64), ("MS", ms as f64)];
    let mut ds = vec![Dispatch {
        shader: shader(),
        entry: "gemm_w8a8_dyn_gemv",
        constants,
        binds: vec![Bind::Read(xb), Bind::Read(wq), Bind::Read(sw), Bind::Write(out.target())],
        params: params.bytes(),
        groups,
    }];
    out.finish(OP, &mut ds)?;
    be.run(OP, &ds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::naga;

    #[test]
    fn dyn_rows_match_the_gemv_of_gemm_w8a8() {
        assert_eq!([1, 2, 3, 5, 8, 9, 16].map(dyn_rows), [1, 2, 4, 8, 8, 8, 8]);
    }

    /// Both variants parse and validate, and `DynParams` has the host struct's fields in order.
    #[test]
    fn shader_validates_and_params_agree() {
        for shader in [&QUANT_DYN, &QUANT_DYN_MANUAL_DOT] {
            let src = shader.text();
            let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{}: {}", shader.label(), e.emit_to_string(&src)));
            let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
            if let Err(e) = v.validate(&module) {
                panic!("{}: {}", shader.label(), e.emit_to_string(&src));
            }
            assert!(module.entry_points.iter().any(|e| e.name == "gemm_w8a8_dyn_gemv"));
            let (_, ty) = module.types.iter().find(|(_, t)| t.name.as_deref() == Some(DynParams::WGSL_NAME)).expect("DynParams");
            let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("DynParams is not a struct") };
            let names: Vec<String> = members.iter().map(|m| m.name.clone().unwrap_or_default()).collect();
            let want: Vec<String> = DynParams::FIELDS.iter().map(|(n, _)| n.to_string()).collect();
            assert_eq!(names, want);
            assert_eq!(*span as usize, std::mem::size_of::<DynParams>());
        }
    }
}
