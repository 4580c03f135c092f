//! Quantized ops on wgpu: `quantize_rows_i8`, `gemm_w8a8`, `gemm_w4a16` (kernels in
//! `shaders/quant.wgsl`).
//!
//! Paths: the GEMMs run a GEMV-style kernel for M <= 16 (32 lanes per output column along K,
//! W streamed once per block of up to 8 rows) and a 64 x 64 tiled kernel otherwise. f16
//! outputs are written two per word by one invocation; for odd N (where a word straddles two
//! rows) the kernel writes f32 into a scratch buffer and `pack_f16` packs it.

use super::kernels::{grid_1d, Launch};
use super::WgpuBackend;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{Buffer, DeviceInt4Weights, DeviceInt8Matrix, Tensor};

const SRC: &str = include_str!("../../shaders/quant.wgsl");

/// `dot4i8` through the WGSL built-in (lowered to OpSDot or polyfilled by naga).
const DOT_NATIVE: &str = "fn dot4i8(a: u32, b: u32) -> i32 { return dot4I8Packed(a, b); }\n";
/// `dot4i8` by sign-extending shifts, for adapters without `packed_4x8_integer_dot_product`.
const DOT_MANUAL: &str = "fn dot4i8(a: u32, b: u32) -> i32 { let s = vec4<u32>(24u, 16u, 8u, 0u); \
     return dot(bitcast<vec4<i32>>(vec4<u32>(a) << s) >> vec4<u32>(24u), bitcast<vec4<i32>>(vec4<u32>(b) << s) >> vec4<u32>(24u)); }\n";

/// Largest M handled by the GEMV path.
const GEMV_MAX_M: usize = 16;

fn u32_of(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::shape(op, format!("{what} = {v} exceeds the 32-bit index range of the WGSL kernels")))
}

/// Rows per GEMV workgroup (an override of the shader): the next power of two >= m, at most 8.
fn gemv_rows(m: usize) -> u32 {
    m.next_power_of_two().min(8) as u32
}

/// The shader source with the `dot4i8` prelude this adapter supports, and its cache key.
fn source(be: &WgpuBackend) -> (&'static str, String) {
    if be.has_packed_dot() {
        ("quant/dot4", format!("{DOT_NATIVE}{SRC}"))
    } else {
        ("quant/manual", format!("{DOT_MANUAL}{SRC}"))
    }
}

fn run(be: &WgpuBackend, op: &'static str, l: Launch<'_>) -> Result<()> {
    let (key, src) = source(be);
    be.run_launch(op, key, &src, l)
}

pub(crate) fn quantize_rows_i8(be: &WgpuBackend, x: &Tensor, out: &mut DeviceInt8Matrix) -> Result<()> {
    const OP: &str = "quantize_rows_i8";
    let m = u32_of(OP, "rows", x.rows)?;
    let k = u32_of(OP, "cols", x.cols)?;
    // Flat element indices (row * k + c, f16 halves) and output words must fit in u32.
    u32_of(OP, "elements", x.rows * x.cols)?;
    let stride_words = u32_of(OP, "row stride", out.stride / 4)?;
    u32_of(OP, "output words", x.rows * (out.stride / 4))?;
    let l = Launch::new("quantize_rows_i8", grid_1d(OP, x.rows as u64)?)
        .flag("XF16", x.dtype() == DType::F16)
        .params(&[m, k, stride_words, 0])
        .read(&x.buf)
        .write(&out.q)
        .write(&out.scales);
    run(be, OP, l)
}

/// Runs a GEMM whose output is `y`, through an f32 scratch and `pack_f16` when y is f16 with
/// odd N. `make` builds the launch given the output buffer and whether it is packed f16.
fn with_output(
    be: &WgpuBackend,
    op: &'static str,
    y: &mut Tensor,
    make: &dyn Fn(&Buffer, bool) -> Launch<'_>,
) -> Result<()> {
    let f16 = y.dtype() == DType::F16;
    if !f16 || y.cols % 2 == 0 {
        let l = make(&y.buf, f16);
        return run(be, op, l);
    }
    let len = y.rows * y.cols;
    let scratch = be.scratch_f32(op, len)?;
    run(be, op, make(&scratch, false))?;
    let words = len.div_ceil(2) as u64;
    let l = Launch::new("pack_f16", grid_1d(op, words.div_ceil(256))?)
        .params(&[u32_of(op, "elements", len)?, 0, 0, 0])
        .read(&scratch)
        .write(&y.buf);
    run(be, op, l)
}

/// Grid and overrides of the GEMM paths: `(entry, grid, MS)`.
fn gemm_path(op: &'static str, prefix: &'static str, m: usize, n: usize) -> Result<(&'static str, [u32; 3], u32)> {
    if m <= GEMV_MAX_M {
        let ms = gemv_rows(m);
        let mut g = grid_1d(op, n.div_ceil(8) as u64)?;
        g[2] = m.div_ceil(ms as usize) as u32;
        let entry = if prefix == "w8a8" { "gemm_w8a8_gemv" } else { "gemm_w4a16_gemv" };
        Ok((entry, g, ms))
    } else {
        let tiles = (m.div_ceil(64) as u64) * (n.div_ceil(64) as u64);
        let entry = if prefix == "w8a8" { "gemm_w8a8_tiled" } else { "gemm_w4a16_tiled" };
        Ok((entry, grid_1d(op, tiles)?, 8))
    }
}

pub(crate) fn gemm_w8a8(be: &WgpuBackend, x: &DeviceInt8Matrix, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
    const OP: &str = "gemm_w8a8";
    let (m, n, k) = (x.rows, w.rows, x.cols);
    u32_of(OP, "outputs", m * n)?;
    u32_of(OP, "X vec4s", x.rows * x.stride / 16)?;
    u32_of(OP, "W vec4s", w.rows * w.stride / 16)?;
    let params = [m as u32, n as u32, k as u32, (x.stride / 16) as u32, (w.stride / 16) as u32, 0, 0, 0];
    let (entry, grid, ms) = gemm_path(OP, "w8a8", m, n)?;
    with_output(be, OP, y, &|out, yf16| {
        Launch::new(entry, grid)
            .flag("YF16", yf16)
            .constant("MS", ms as f64)
            .params(&params)
            .read(&x.q)
            .read(&x.scales)
            .read(&w.q)
            .read(&w.scales)
            .write(out)
    })
}

pub(crate) fn gemm_w4a16(be: &WgpuBackend, x: &Tensor, w: &DeviceInt4Weights, y: &mut Tensor) -> Result<()> {
    const OP: &str = "gemm_w4a16";
    let (m, n, k) = (x.rows, w.n, w.k);
    u32_of(OP, "outputs", m * n)?;
    u32_of(OP, "X elements", m * k)?;
    u32_of(OP, "weights", n * k)?;
    let params = [m as u32, n as u32, k as u32, (k / w.group) as u32, 0, w.group as u32, 0, 0];
    let (entry, grid, ms) = gemm_path(OP, "w4a16", m, n)?;
    let xf16 = x.dtype() == DType::F16;
    with_output(be, OP, y, &|out, yf16| {
        Launch::new(entry, grid)
            .flag("XF16", xf16)
            .flag("YF16", yf16)
            .constant("MS", ms as f64)
            .params(&params)
            .read(&x.buf)
            .read(&w.qweight)
            .read(&w.scales)
            .read(&w.zeros)
            .write(out)
    })
}
