//! Binary (XNOR) ops on wgpu: `binarize_pack`, `xnor_gemm`, `xnor_conv2d`,
//! `xnor_conv2d_bits` (kernels in `shaders/binary.wgsl`).
//!
//! The GEMM and the conv share one tiled core (64 rows x 64 output channels per workgroup,
//! 4 x 4 per invocation, popcounts on vec4<u32>); the conv is an implicit GEMM over the
//! filter's own `[tap][word]` order, with zero padding corrected exactly in the epilogue.

use super::kernels::{grid_1d, Launch};
use super::WgpuBackend;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::binary::{Conv2dParams, PadMode};
use crate::tensor::{Buffer, DeviceBinaryFilter, DeviceBinaryWeights, DeviceBits, Tensor};

const SRC: &str = include_str!("../../shaders/binary.wgsl");

fn u32_of(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::shape(op, format!("{what} = {v} exceeds the 32-bit index range of the WGSL kernels")))
}

fn run(be: &WgpuBackend, op: &'static str, l: Launch<'_>) -> Result<()> {
    be.run_launch(op, "binary", SRC, l)
}

fn tiles(op: &'static str, m: usize, n: usize) -> Result<[u32; 3]> {
    grid_1d(op, (m.div_ceil(64) as u64) * (n.div_ceil(64) as u64))
}

pub(crate) fn binarize_pack(be: &WgpuBackend, x: &Tensor, out: &mut DeviceBits) -> Result<()> {
    const OP: &str = "binarize_pack";
    u32_of(OP, "elements", x.rows * x.cols)?;
    let words = out.rows * out.words;
    u32_of(OP, "words", words)?;
    let l = Launch::new("binarize_pack", grid_1d(OP, words.div_ceil(64) as u64)?)
        .flag("XF16", x.dtype() == DType::F16)
        .params(&[x.rows as u32, x.cols as u32, out.words as u32, 0])
        .read(&x.buf)
        .write(&out.data);
    run(be, OP, l)
}

pub(crate) fn xnor_gemm(be: &WgpuBackend, a: &DeviceBits, w: &DeviceBinaryWeights, y: &mut Tensor) -> Result<()> {
    const OP: &str = "xnor_gemm";
    let (m, n) = (a.rows, w.bits.rows);
    u32_of(OP, "outputs", m * n)?;
    u32_of(OP, "A words", a.rows * a.words)?;
    u32_of(OP, "W words", w.bits.rows * w.bits.words)?;
    let mut p = [0u32; 16];
    p[0] = m as u32;
    p[1] = n as u32;
    p[2] = a.cols as u32;
    p[3] = a.words as u32;
    let l = Launch::new("xnor_gemm", tiles(OP, m, n)?).params(&p).read(&a.data).read(&w.bits.data).read(&w.alpha).write(&y.buf);
    run(be, OP, l)
}

/// The conv's parameter block (`XParams` in the shader) and its output pixel count.
fn conv_params(op: &'static str, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams) -> Result<([u32; 16], usize)> {
    let (oh, ow) = p.output_hw(f.kh, f.kw)?;
    let pixels = p.batch * oh * ow;
    u32_of(op, "outputs", pixels * f.c_out)?;
    u32_of(op, "input words", x.rows * x.words)?;
    let kwords = f.kh * f.kw * f.words;
    u32_of(op, "filter words", f.c_out * kwords)?;
    u32_of(op, "c_in * taps", f.c_in * f.kh * f.kw)?;
    // Padded coordinates (o * stride + k) must fit too.
    u32_of(op, "padded height", oh * p.stride_h + f.kh + p.pad_h + p.in_h)?;
    u32_of(op, "padded width", ow * p.stride_w + f.kw + p.pad_w + p.in_w)?;
    let v = [
        pixels,
        f.c_out,
        f.c_in,
        kwords,
        f.words,
        f.kh,
        f.kw,
        p.in_h,
        p.in_w,
        oh,
        ow,
        p.stride_h,
        p.stride_w,
        p.pad_h,
        p.pad_w,
        (p.pad_mode == PadMode::Zero) as usize,
    ];
    let mut out = [0u32; 16];
    for (o, &x) in out.iter_mut().zip(&v) {
        *o = u32_of(op, "conv parameter", x)?;
    }
    Ok((out, pixels))
}

fn conv_launch<'a>(
    entry: &'static str,
    grid: [u32; 3],
    params: &[u32; 16],
    x: &'a DeviceBits,
    f: &'a DeviceBinaryFilter,
    out: &'a Buffer,
) -> Launch<'a> {
    Launch::new(entry, grid).params(params).read(&x.data).read(&f.bits).read(&f.alpha).write(out).read(&f.bias)
}

pub(crate) fn xnor_conv2d(be: &WgpuBackend, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, y: &mut Tensor) -> Result<()> {
    const OP: &str = "xnor_conv2d";
    let (params, pixels) = conv_params(OP, x, f, p)?;
    let l = conv_launch("xnor_conv2d", tiles(OP, pixels, f.c_out)?, &params, x, f, &y.buf);
    run(be, OP, l)
}

pub(crate) fn xnor_conv2d_bits(
    be: &WgpuBackend,
    x: &DeviceBits,
    f: &DeviceBinaryFilter,
    p: &Conv2dParams,
    thresholds: &Buffer,
    out: &mut DeviceBits,
) -> Result<()> {
    const OP: &str = "xnor_conv2d_bits";
    let (params, pixels) = conv_params(OP, x, f, p)?;
    let l = conv_launch("xnor_conv2d_bits", tiles(OP, pixels, f.c_out)?, &params, x, f, &out.data).read(thresholds);
    run(be, OP, l)
}
