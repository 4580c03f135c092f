//! Binary (XNOR) ops on wgpu: `binarize_pack`, `xnor_gemm`, `xnor_conv2d`,
//! `xnor_conv2d_bits` (kernels in `shaders/binary.wgsl`).
//!
//! The GEMM and the conv share one tiled core (`XT` rows x `XT` output channels per
//! workgroup, 4 x 4 per invocation, popcounts on `vec4<u32>`); the conv is an implicit GEMM
//! over the filter's own `[tap][word]` order, with zero padding corrected exactly in the
//! epilogue. The tile (64, or 32 for few tiles) and a split of the reduction for small layers
//! (exact u32 partial popcounts, then an epilogue kernel) come from `plan::xnor_plan`; the
//! simple choice launches the 64 x 64 kernels unsplit.

use super::context::WgpuBackend;
use super::dispatch::{expect_len, linear, u32_param, wgsl_params, Bind, Dispatch, Groups, WgslParams};
use super::lowrank::limits;
use super::pipeline::{Shader, PRELUDE};
use super::plan::xnor_plan;
use crate::backend::{BinaryOps, BitsOut, Checked};
use crate::dtype::DType;
use crate::error::Result;
use crate::formats::binary::{Conv2dParams, PadMode};
use crate::tensor::{DeviceBinaryFilter, DeviceBinaryWeights, DeviceBits, Tensor};

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
        /// Splits of the reduction (1: the fused kernels).
        splits: u32,
        /// Steps of 8 words per split.
        split_steps: u32,
        _pad0: u32,
        _pad1: u32,
    }
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
        ..Default::default()
    };
    Ok((params, pixels))
}

/// The kernels of an XNOR launch: (fused, split popcounts, split epilogue).
#[derive(Clone, Copy)]
enum Kind {
    Gemm,
    Conv,
    Bits,
}

impl Kind {
    fn entries(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Gemm => ("xnor_gemm", "xnor_gemm_split", "xnor_gemm_epilogue"),
            Kind::Conv => ("xnor_conv2d", "xnor_conv2d_split", "xnor_conv2d_epilogue"),
            Kind::Bits => ("xnor_conv2d_bits", "xnor_conv2d_split", "xnor_conv2d_bits_epilogue"),
        }
    }
}

/// Runs an XNOR GEMM or conv as `plan::xnor_plan` says: `a` (A or the conv input), `w`,
/// `alpha` and `tail` (bias, then thresholds, for the convs) bound after the output `out`.
/// The caller has checked every buffer's length and `params` (m, n, kwords).
#[allow(clippy::too_many_arguments)] // the kernel's bindings, in order
fn launch(
    be: &WgpuBackend,
    op: &'static str,
    kind: Kind,
    mut params: XParams,
    a: &wgpu::Buffer,
    w: &wgpu::Buffer,
    alpha: &wgpu::Buffer,
    out: &wgpu::Buffer,
    tail: &[&wgpu::Buffer],
) -> Result<()> {
    let (m, n) = (params.m as usize, params.n as usize);
    let plan = xnor_plan(be.fast(), &limits(be), m, n, params.kwords as usize);
    params.splits = u32_param(op, "splits", plan.splits)?;
    params.split_steps = u32_param(op, "steps per split", plan.split_steps)?;
    let constants = vec![("XT", plan.tile as f64)];
    let groups = Groups::Linear(plan.groups(m, n) as u64);
    let (fused, split, epilogue) = kind.entries();
    if plan.splits == 1 {
        let mut binds = vec![Bind::Read(a), Bind::Read(w), Bind::Read(alpha), Bind::Write(out)];
        binds.extend(tail.iter().map(|&b| Bind::Read(b)));
        let d = Dispatch { shader: &BINARY, entry: fused, constants, binds, params: params.bytes(), groups };
        return be.run(op, &[d]);
    }
    // Partial popcounts [splits, m, n]: every index the kernels form is below this count.
    let parts = m.checked_mul(n).and_then(|x| x.checked_mul(plan.splits));
    let parts = u32_param(op, "split partials", parts.unwrap_or(usize::MAX))? as u64;
    let scratch = be.scratch("xnor partial popcounts", parts * 4)?;
    let pop = Dispatch {
        shader: &BINARY,
        entry: split,
        constants,
        binds: vec![Bind::Read(a), Bind::Read(w), Bind::Read(alpha), Bind::Write(&scratch)],
        params: params.bytes(),
        groups,
    };
    let mut binds = vec![Bind::Read(&scratch), Bind::Read(w), Bind::Read(alpha), Bind::Write(out)];
    binds.extend(tail.iter().map(|&b| Bind::Read(b)));
    let items = match kind {
        Kind::Bits => m * n.div_ceil(32),
        Kind::Gemm | Kind::Conv => m * n,
    };
    let epi =
        Dispatch { shader: &BINARY, entry: epilogue, constants: vec![], binds, params: params.bytes(), groups: linear(items as u64, 64) };
    be.run(op, &[pop, epi])
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
        launch(be, OP, Kind::Gemm, p, be.buf(&a.data)?, be.buf(&w.bits.data)?, be.buf(&w.alpha)?, be.buf(&y.buf)?, &[])
    }

    fn xnor_conv2d(&self, _: Checked, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, y: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "xnor_conv2d";
        let (params, pixels) = conv_params(OP, x, f, p)?;
        expect_len(OP, "Y", &y.buf, pixels * f.c_out)?;
        let (xb, fb, ab, bb) = (be.buf(&x.data)?, be.buf(&f.bits)?, be.buf(&f.alpha)?, be.buf(&f.bias)?);
        launch(be, OP, Kind::Conv, params, xb, fb, ab, be.buf(&y.buf)?, &[bb])
    }

    fn xnor_conv2d_bits(&self, _: Checked, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, o: BitsOut<'_>) -> Result<()> {
        let BitsOut { thresholds, out } = o;
        let be = self;
        const OP: &str = "xnor_conv2d_bits";
        let (params, pixels) = conv_params(OP, x, f, p)?;
        expect_len(OP, "thresholds", thresholds, f.c_out)?;
        expect_len(OP, "out", &out.data, pixels * f.c_out.div_ceil(32))?;
        let (xb, fb, ab, bb) = (be.buf(&x.data)?, be.buf(&f.bits)?, be.buf(&f.alpha)?, be.buf(&f.bias)?);
        launch(be, OP, Kind::Bits, params, xb, fb, ab, be.buf(&out.data)?, &[bb, be.buf(thresholds)?])
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::{xnor_plan, Limits};
    use crate::formats::binary::PadMode;
    use crate::wgpu::{KernelChoice, WgpuOptions};
    use crate::workload::{conv, prepare, Workload};
    use crate::Device;

    /// The fast plans (32 x 32 tiles, split reductions and their epilogues) give the simple
    /// 64 x 64 kernels' results bit for bit (the ops harness compares the float outputs with
    /// the CPU at the f32 tolerance).
    #[test]
    fn fast_plans_match_the_simple_kernels_bit_for_bit() {
        let dev = |k| Device::wgpu_with_options(WgpuOptions { kernels: Some(k), ..Default::default() });
        let (fast, simple) = match (dev(KernelChoice::Fast), dev(KernelChoice::Simple)) {
            (Ok(f), Ok(s)) => (f, s),
            (Err(e), _) | (_, Err(e)) => {
                let required = std::env::var("SLIMGEMM_REQUIRE_WGPU").is_ok_and(|v| v == "1");
                assert!(!required, "SLIMGEMM_REQUIRE_WGPU=1 but no wgpu adapter: {e}");
                return;
            }
        };
        let l = Limits::DEFAULT;
        // (m, n, kwords) -> splits under the default limits: split, split, 32 tiles unsplit.
        assert_eq!(xnor_plan(true, &l, 3, 37, 64).splits, 8);
        assert_eq!(xnor_plan(true, &l, 2 * 25, 70, 9 * 12).splits, 14);
        assert_eq!(xnor_plan(true, &l, 300, 900, 4), super::super::plan::XnorPlan { tile: 32, splits: 1, split_steps: 1 });
        let mut cases = vec![Workload::XnorGemm { m: 3, n: 37, k: 2048 }, Workload::XnorGemm { m: 300, n: 900, k: 100 }];
        for pad_mode in [PadMode::Zero, PadMode::One] {
            for bits_out in [false, true] {
                cases.push(Workload::XnorConv2d {
                    batch: 2,
                    h: 5,
                    w: 5,
                    c_in: 380,
                    c_out: 70,
                    ksize: 3,
                    stride: 1,
                    pad: 1,
                    pad_mode,
                    bits_out,
                });
                cases.push(conv(1, 9, 100, 37, 3, 2, pad_mode, bits_out));
            }
        }
        for w in &cases {
            let out = |d: &Device| {
                let mut p = prepare(d, w).expect("inputs");
                p.run().expect("run");
                p.output().expect("output").iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
            };
            let (f, s) = (out(&fast), out(&simple));
            assert_eq!(f.len(), s.len());
            let diff = f.iter().zip(&s).filter(|(a, b)| a != b).count();
            assert_eq!(diff, 0, "{} {}: {diff} of {} outputs differ from the simple kernels'", w.op(), w.shape(), f.len());
        }
    }
}
