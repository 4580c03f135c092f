//! Binary (XNOR) ops on wgpu: `binarize_pack`, `xnor_gemm`, `xnor_conv2d`,
//! `xnor_conv2d_bits` (kernels in `shaders/binary.wgsl`).
//!
//! The GEMM and the conv share one tiled core (64 rows x 64 output channels per workgroup,
//! 4 x 4 per invocation, popcounts on vec4<u32>); the conv is an implicit GEMM over the
//! filter's own `[tap][word]` order, with zero padding corrected exactly in the epilogue.

use super::context::WgpuBackend;
use super::pipeline::{u32_param, Bind, Dispatch, Groups, Shader};
use crate::backend::{BinaryOps, Checked};
use crate::dtype::DType;
use crate::error::Result;
use crate::formats::binary::{Conv2dParams, PadMode};
use crate::tensor::{Buffer, DeviceBinaryFilter, DeviceBinaryWeights, DeviceBits, Tensor};

/// The binary kernels; trusted: the in-bounds argument is written at the top of
/// `shaders/binary.wgsl` and at each access.
pub(crate) static BINARY: Shader = Shader { name: "binary", source: include_str!("../../shaders/binary.wgsl"), trusted: true };

fn tiles(m: usize, n: usize) -> Groups {
    Groups::Linear((m.div_ceil(64) as u64) * (n.div_ceil(64) as u64))
}

/// The conv's parameter block (`XParams` in the shader) and its output pixel count.
fn conv_params(op: &'static str, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams) -> Result<(Vec<u32>, usize)> {
    let (oh, ow) = p.output_hw(f.kh, f.kw)?;
    let pixels = p.batch * oh * ow;
    u32_param(op, "outputs", pixels * f.c_out)?;
    u32_param(op, "output words", pixels * f.c_out.div_ceil(32))?;
    u32_param(op, "input words", x.rows * x.words)?;
    let kwords = f.kh * f.kw * f.words;
    u32_param(op, "filter words", f.c_out * kwords)?;
    u32_param(op, "c_in * taps", f.c_in * f.kh * f.kw)?;
    // Padded coordinates (o * stride + k) and their comparisons with pad + size must fit.
    u32_param(op, "padded height", oh * p.stride_h + f.kh + p.pad_h + p.in_h)?;
    u32_param(op, "padded width", ow * p.stride_w + f.kw + p.pad_w + p.in_w)?;
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
    let out = v.iter().map(|&x| u32_param(op, "conv parameter", x)).collect::<Result<Vec<u32>>>()?;
    Ok((out, pixels))
}

#[allow(clippy::too_many_arguments)]
fn conv_dispatch<'a>(
    be: &WgpuBackend,
    entry: &'static str,
    params: Vec<u32>,
    pixels: usize,
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
    Ok(Dispatch { shader: &BINARY, entry, constants: vec![], binds, params, groups: tiles(pixels, f.c_out) })
}

impl BinaryOps for WgpuBackend {
    fn binarize_pack(&self, _: Checked, x: &Tensor, out: &mut DeviceBits) -> Result<()> {
        let be = self;
        const OP: &str = "binarize_pack";
        u32_param(OP, "elements", x.rows * x.cols)?;
        let words = out.rows * out.words;
        u32_param(OP, "words", words)?;
        let d = Dispatch {
            shader: &BINARY,
            entry: "binarize_pack",
            constants: vec![("XF16", (x.dtype() == DType::F16) as u32 as f64)],
            binds: vec![Bind::Read(be.buf(&x.buf)?), Bind::Write(be.buf(&out.data)?)],
            params: vec![x.rows as u32, x.cols as u32, out.words as u32, 0],
            groups: Groups::Linear(words.div_ceil(64) as u64),
        };
        be.run(OP, &[d])
    }

    fn xnor_gemm(&self, _: Checked, a: &DeviceBits, w: &DeviceBinaryWeights, y: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "xnor_gemm";
        let (m, n) = (a.rows, w.bits.rows);
        u32_param(OP, "outputs", m * n)?;
        u32_param(OP, "A words", a.rows * a.words)?;
        u32_param(OP, "W words", w.bits.rows * w.bits.words)?;
        let mut p = vec![0u32; 16];
        p[0] = m as u32;
        p[1] = n as u32;
        p[2] = u32_param(OP, "K", a.cols)?;
        p[3] = a.words as u32;
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
            params: p,
            groups: tiles(m, n),
        };
        be.run(OP, &[d])
    }

    fn xnor_conv2d(&self, _: Checked, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, y: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "xnor_conv2d";
        let (params, pixels) = conv_params(OP, x, f, p)?;
        let d = conv_dispatch(be, "xnor_conv2d", params, pixels, x, f, &y.buf, None)?;
        be.run(OP, &[d])
    }

    fn xnor_conv2d_bits(
        &self,
        _: Checked,
        x: &DeviceBits,
        f: &DeviceBinaryFilter,
        p: &Conv2dParams,
        thresholds: &Buffer,
        out: &mut DeviceBits,
    ) -> Result<()> {
        let be = self;
        const OP: &str = "xnor_conv2d_bits";
        let (params, pixels) = conv_params(OP, x, f, p)?;
        let d = conv_dispatch(be, "xnor_conv2d_bits", params, pixels, x, f, &out.data, Some(thresholds))?;
        be.run(OP, &[d])
    }
}
