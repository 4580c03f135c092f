//! Binary (XNOR) ops on wgpu: `binarize_pack`, `xnor_gemm`, `xnor_conv2d`,
//! `xnor_conv2d_bits` (kernels in `shaders/binary.wgsl`).
//!
//! The GEMM and the conv share one tiled core (64 rows x 64 output channels per workgroup,
//! 4 x 4 per invocation, popcounts on `vec4<u32>`); the conv is an implicit GEMM over the
//! filter's own `[tap][word]` order, with zero padding corrected exactly in the epilogue.

use super::context::WgpuBackend;
use super::dispatch::{expect_len, linear, u32_param, wgsl_params, Bind, Dispatch, Groups, WgslParams};
use super::pipeline::{Shader, PRELUDE};
use crate::backend::{BinaryOps, BitsOut, Checked};
use crate::dtype::DType;
use crate::error::Result;
use crate::formats::binary::{Conv2dParams, PadMode};
use crate::tensor::{Buffer, DeviceBinaryFilter, DeviceBinaryWeights, DeviceBits, Tensor};

/// The binary kernels (prelude in front); trusted: the in-bounds argument is written at the
/// top of `shaders/binary.wgsl` and at each access, and every buffer is checked below.
pub(super) static BINARY: Shader =
    Shader::family("binary", "", &[PRELUDE], include_str!("../../shaders/binary.wgsl")).with_params(&[BinarizeParams::WGSL, XParams::WGSL]);

wgsl_params! {
    /// Parameters of `binarize_pack`.
    struct BinarizeParams {
        rows: u32,
        cols: u32,
        words: u32,
        _pad: u32,
    }
}

wgsl_params! {
    /// Parameters of the XNOR GEMM and convs (fields past `kwords` are the conv's).
    struct XParams {
        /// Rows of A / output pixels.
        m: u32,
        /// Output channels.
        n: u32,
        /// K in bits (xnor_gemm) / c_in (conv).
        kbits: u32,
        /// Words per row of A and W (xnor_gemm) / kh*kw*words (conv).
        kwords: u32,
        /// Conv: words per tap.
        words: u32,
        kh: u32,
        kw: u32,
        in_h: u32,
        in_w: u32,
        out_h: u32,
        out_w: u32,
        stride_h: u32,
        stride_w: u32,
        pad_h: u32,
        pad_w: u32,
        /// 1 for PadMode::Zero (padded taps skipped exactly), 0 for PadMode::One.
        zero_pad: u32,
    }
}

fn tiles(m: usize, n: usize) -> Groups {
    Groups::Linear((m.div_ceil(64) as u64) * (n.div_ceil(64) as u64))
}

/// The conv's parameter block and its output pixel count, after checking the input,
/// filter, alpha and bias buffers.
fn conv_params(op: &'static str, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams) -> Result<(XParams, usize)> {
    let (oh, ow) = p.output_hw(f.kh, f.kw)?;
    let pixels = p.batch * oh * ow;
    let kwords = f.kh * f.kw * f.words;
    expect_len(op, "X", &x.data, p.batch * p.in_h * p.in_w * f.words)?;
    expect_len(op, "filter", &f.bits, f.c_out * kwords)?;
    expect_len(op, "alpha", &f.alpha, f.c_out)?;
    expect_len(op, "bias", &f.bias, f.c_out)?;
    u32_param(op, "outputs", pixels * f.c_out)?;
    u32_param(op, "output words", pixels * f.c_out.div_ceil(32))?;
    u32_param(op, "input words", x.rows * x.words)?;
    u32_param(op, "filter words", f.c_out * kwords)?;
    u32_param(op, "c_in * taps", f.c_in * f.kh * f.kw)?;
    // Padded coordinates (o * stride + k) and their comparisons with pad + size must fit.
    u32_param(op, "padded height", oh * p.stride_h + f.kh + p.pad_h + p.in_h)?;
    u32_param(op, "padded width", ow * p.stride_w + f.kw + p.pad_w + p.in_w)?;
    let u = |x: usize| u32_param(op, "conv parameter", x);
    let params = XParams {
        m: u(pixels)?,
        n: u(f.c_out)?,
        kbits: u(f.c_in)?,
        kwords: u(kwords)?,
        words: u(f.words)?,
        kh: u(f.kh)?,
        kw: u(f.kw)?,
        in_h: u(p.in_h)?,
        in_w: u(p.in_w)?,
        out_h: u(oh)?,
        out_w: u(ow)?,
        stride_h: u(p.stride_h)?,
        stride_w: u(p.stride_w)?,
        pad_h: u(p.pad_h)?,
        pad_w: u(p.pad_w)?,
        zero_pad: (p.pad_mode == PadMode::Zero) as u32,
    };
    Ok((params, pixels))
}

/// A conv launch: f32 output `out`, or bit output with `thresholds`.
fn conv_dispatch<'a>(
    be: &WgpuBackend,
    entry: &'static str,
    params: &XParams,
    x: &'a DeviceBits,
    f: &'a DeviceBinaryFilter,
    out: &'a Buffer,
    thresholds: Option<&'a Buffer>,
) -> Result<Dispatch<'a>> {
    let mut binds = vec![
        Bind::Read(be.buf(&x.data)?),
        Bind::Read(be.buf(&f.bits)?),
        Bind::Read(be.buf(&f.alpha)?),
        Bind::Write(be.buf(out)?),
        Bind::Read(be.buf(&f.bias)?),
    ];
    if let Some(t) = thresholds {
        binds.push(Bind::Read(be.buf(t)?));
    }
    let groups = tiles(params.m as usize, f.c_out);
    Ok(Dispatch { shader: &BINARY, entry, constants: vec![], binds, params: params.bytes(), groups })
}

impl BinaryOps for WgpuBackend {
    fn binarize_pack(&self, _: Checked, x: &Tensor, out: &mut DeviceBits) -> Result<()> {
        let be = self;
        const OP: &str = "binarize_pack";
        let words = out.rows * out.words;
        expect_len(OP, "X", &x.buf, x.rows * x.cols)?;
        expect_len(OP, "out", &out.data, words)?;
        let params = BinarizeParams {
            rows: u32_param(OP, "rows", x.rows)?,
            cols: u32_param(OP, "cols", x.cols)?,
            words: u32_param(OP, "words per row", out.words)?,
            ..Default::default()
        };
        u32_param(OP, "elements", x.rows * x.cols)?;
        u32_param(OP, "words", words)?;
        let d = Dispatch {
            shader: &BINARY,
            entry: "binarize_pack",
            constants: vec![("XF16", (x.dtype() == DType::F16) as u32 as f64)],
            binds: vec![Bind::Read(be.buf(&x.buf)?), Bind::Write(be.buf(&out.data)?)],
            params: params.bytes(),
            groups: linear(words as u64, 64),
        };
        be.run(OP, &[d])
    }

    fn xnor_gemm(&self, _: Checked, a: &DeviceBits, w: &DeviceBinaryWeights, y: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "xnor_gemm";
        let (m, n) = (a.rows, w.bits.rows);
        expect_len(OP, "A", &a.data, m * a.words)?;
        expect_len(OP, "W", &w.bits.data, n * a.words)?;
        expect_len(OP, "alpha", &w.alpha, n)?;
        expect_len(OP, "Y", &y.buf, m * n)?;
        u32_param(OP, "outputs", m * n)?;
        u32_param(OP, "A words", a.rows * a.words)?;
        u32_param(OP, "W words", w.bits.rows * w.bits.words)?;
        let p = XParams {
            m: u32_param(OP, "M", m)?,
            n: u32_param(OP, "N", n)?,
            kbits: u32_param(OP, "K", a.cols)?,
            kwords: u32_param(OP, "words per row", a.words)?,
            ..Default::default()
        };
        let d = Dispatch {
            shader: &BINARY,
            entry: "xnor_gemm",
            constants: vec![],
            binds: vec![
                Bind::Read(be.buf(&a.data)?),
                Bind::Read(be.buf(&w.bits.data)?),
                Bind::Read(be.buf(&w.alpha)?),
                Bind::Write(be.buf(&y.buf)?),
            ],
            params: p.bytes(),
            groups: tiles(m, n),
        };
        be.run(OP, &[d])
    }

    fn xnor_conv2d(&self, _: Checked, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, y: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "xnor_conv2d";
        let (params, pixels) = conv_params(OP, x, f, p)?;
        expect_len(OP, "Y", &y.buf, pixels * f.c_out)?;
        let d = conv_dispatch(be, "xnor_conv2d", &params, x, f, &y.buf, None)?;
        be.run(OP, &[d])
    }

    fn xnor_conv2d_bits(&self, _: Checked, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, o: BitsOut<'_>) -> Result<()> {
        let BitsOut { thresholds, out } = o;
        let be = self;
        const OP: &str = "xnor_conv2d_bits";
        let (params, pixels) = conv_params(OP, x, f, p)?;
        expect_len(OP, "thresholds", thresholds, f.c_out)?;
        expect_len(OP, "out", &out.data, pixels * f.c_out.div_ceil(32))?;
        let d = conv_dispatch(be, "xnor_conv2d_bits", &params, x, f, &out.data, Some(thresholds))?;
        be.run(OP, &[d])
    }
}
