//! CUDA launchers of the binary ops (kernels in `cuda/binary.cu`).

use crate::backend::{BinaryOps, BitsOut, Checked};
use cudarc::driver::{DeviceRepr, PushKernelArg};

use super::backend::{arg_opt, drv, float_dispatch, i32_arg, sl, sl_mut, CudaBackend, KernelFloat, NULL_PTR};
use super::plan::{xnor_path, TcPlan, XnorPath, XT_MAX_TAPS};
use crate::error::{Error, Result};
use crate::formats::binary::{Conv2dParams, PadMode};
use crate::tensor::expect_len;
use crate::tensor::*;

/// Geometry of the XNOR kernel (`ConvGeom` in cuda/binary.cu, same field order).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct ConvGeom {
    batch: i32,
    in_h: i32,
    in_w: i32,
    out_h: i32,
    out_w: i32,
    kh: i32,
    kw: i32,
    stride_h: i32,
    stride_w: i32,
    pad_h: i32,
    pad_w: i32,
    zero_pad: i32,
    c_in: i32,
    words: i32,
    c_out: i32,
    out_words: i32,
}

// SAFETY: `ConvGeom` is `#[repr(C)]`, plain i32 fields, identical in layout to the CUDA struct.
unsafe impl DeviceRepr for ConvGeom {}

fn binarize_typed<T: KernelFloat>(be: &CudaBackend, x: &Tensor, out: &mut DeviceBits) -> Result<()> {
    const OP: &str = "binarize_pack";
    let (rows, cols, words) = (out.rows, out.cols, out.words);
    if words != cols.div_ceil(32) {
        return Err(Error::shape(OP, format!("{words} words per row for {cols} bits")));
    }
    expect_len(OP, "X", &x.buf, rows * cols)?;
    expect_len(OP, "out", &out.data, rows * words)?;
    let total = rows * words; // one warp per output word
    let cfg = be.cfg(OP, (total.div_ceil(8), 1, 1), 256, 0)?;
    let f = be.function("binary", &format!("binarize_pack_{}", T::SUFFIX))?;
    let (ri, ci, wi) = (i32_arg(OP, "rows", rows)?, i32_arg(OP, "cols", cols)?, i32_arg(OP, "words", words)?);
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&ri).arg(&ci).arg(&wi).arg(sl::<T>(OP, "X", &x.buf)?).arg(sl_mut::<u32>(OP, "out", &mut out.data)?);
    // SAFETY: arguments match `binarize_pack_*` in cuda/binary.cu; X holds rows * cols and out
    // rows * words elements (checked above); warps beyond rows * words return.
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(())
}

/// Output of the XNOR kernel.
enum XnorOut<'a> {
    F32(&'a mut Buffer),
    Bits { thresholds: &'a Buffer, out: &'a mut Buffer },
}

#[allow(clippy::too_many_arguments)]
fn xnor_launch(
    be: &CudaBackend,
    op: &'static str,
    g: ConvGeom,
    x: &Buffer,
    f: &Buffer,
    alpha: &Buffer,
    bias: Option<&Buffer>,
    out: XnorOut<'_>,
) -> Result<()> {
    let u = |v: i32| v as usize;
    let npix = u(g.batch) * u(g.out_h) * u(g.out_w);
    // The kernel's contract.
    expect_len(op, "X", x, u(g.batch) * u(g.in_h) * u(g.in_w) * u(g.words))?;
    expect_len(op, "filter", f, u(g.c_out) * u(g.kh) * u(g.kw) * u(g.words))?;
    expect_len(op, "alpha", alpha, u(g.c_out))?;
    if let Some(b) = bias {
        expect_len(op, "bias", b, u(g.c_out))?;
    }
    if u(g.words) != u(g.c_in).div_ceil(32) || u(g.out_words) != u(g.c_out).div_ceil(32) {
        return Err(Error::shape(op, "words per row disagree with the channel counts"));
    }
    let taps = u(g.kh) * u(g.kw);
    let plan = xnor_path(&be.plan_gpu(), npix, u(g.c_out), taps, u(g.words));
    // The tensor-core kernel copies `cw` words at a time: X and F aligned to that.
    let plan = match plan {
        XnorPath::Tc { cw, .. }
            if !(be.aligned(sl::<u32>(op, "X", x)?, 4 * cw as u64) && be.aligned(sl::<u32>(op, "filter", f)?, 4 * cw as u64)) =>
        {
            XnorPath::Popc
        }
        p => p,
    };
    let (func, cfg, split) = match plan {
        XnorPath::Popc => (be.function("binary", "xnor_conv")?, be.cfg(op, (npix.div_ceil(64), u(g.c_out).div_ceil(64), 1), 256, 0)?, None),
        XnorPath::Tc { tile, splits, kps, cw } => {
            let ktiles = (taps * u(g.words)).div_ceil(16);
            if splits == 0 || splits * kps < ktiles || (splits - 1) * kps >= ktiles || taps > XT_MAX_TAPS {
                return Err(Error::backend("cuda", format!("{op}: inconsistent tensor-core plan {plan:?}")));
            }
            let (bm, bn) = tile.bm_bn();
            let name = format!("xnor_tc_{}_w{cw}", tile.name());
            let (func, cfg) =
                be.function_smem(op, "binary", &name, (u(g.c_out).div_ceil(bn), npix.div_ceil(bm), splits), tile.threads(), tile.smem())?;
            let (ws_len, tickets_len) = TcPlan { tile, splits, kps }.workspace(npix, u(g.c_out));
            (func, cfg, Some((i32_arg(op, "k-tiles per split", kps)?, be.scratch_uninit::<u32>(ws_len)?, be.scratch::<u32>(tickets_len)?)))
        }
    };
    let mut split = split;
    // Two f32 outputs per store (tensor-core kernel): even c_out and an 8-byte aligned Y.
    let pair: i32 = match &out {
        XnorOut::F32(y) => (g.c_out % 2 == 0 && be.aligned(sl::<f32>(op, "Y", y)?, 8)) as i32,
        XnorOut::Bits { .. } => 0,
    };
    let mode: i32 = match out {
        XnorOut::F32(_) => 0,
        XnorOut::Bits { .. } => 1,
    };
    let mut lb = be.stream().launch_builder(&func);
    lb.arg(&g).arg(sl::<u32>(op, "X", x)?).arg(sl::<u32>(op, "filter", f)?).arg(sl::<f32>(op, "alpha", alpha)?);
    arg_opt(&mut lb, bias.map(|b| sl::<f32>(op, "bias", b)).transpose()?);
    match out {
        XnorOut::F32(y) => {
            expect_len(op, "Y", y, npix * u(g.c_out))?;
            lb.arg(&NULL_PTR).arg(sl_mut::<f32>(op, "Y", y)?).arg(&NULL_PTR);
        }
        XnorOut::Bits { thresholds, out } => {
            if bias.is_none() {
                return Err(Error::backend("cuda", format!("{op}: the bit-output kernel needs the bias buffer")));
            }
            expect_len(op, "thresholds", thresholds, u(g.c_out))?;
            expect_len(op, "out", out, npix * u(g.out_words))?;
            lb.arg(sl::<f32>(op, "thresholds", thresholds)?).arg(&NULL_PTR).arg(sl_mut::<u32>(op, "out", out)?);
        }
    }
    lb.arg(&mode);
    if let Some((kps, ws, tickets)) = split.as_mut() {
        lb.arg(&pair).arg(&*kps).arg(ws).arg(tickets);
    }
    // SAFETY: arguments match `xnor_conv` / `xnor_tc_*` in cuda/binary.cu (null pointers only
    // where the mode does not read them); every buffer length of their contract was checked
    // above; pair stores only with c_out even and Y 8-byte aligned; for the tensor-core kernel the plan keeps taps <= XT_MAX_TAPS and cw | words, X and F
    // are aligned to cw words (checked above), the grid is (ceil(c_out / BN), ceil(npix / BM),
    // splits) with non-empty splits (checked above), workspace and zeroed tickets are sized by
    // `TcPlan::workspace` and the dynamic shared memory is the tile's 4 stages.
    unsafe { lb.launch(cfg) }.map_err(drv(op))?;
    Ok(())
}

fn geom(op: &'static str, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams) -> Result<ConvGeom> {
    let (oh, ow) = p.output_hw(f.kh, f.kw)?;
    let i = |what: &str, v: usize| i32_arg(op, "conv geometry", v).map_err(|_| Error::shape(op, format!("{what} = {v} too large")));
    if x.words != f.words || x.cols != f.c_in {
        return Err(Error::shape(op, format!("X has {} channels, the filter {}", x.cols, f.c_in)));
    }
    Ok(ConvGeom {
        batch: i("batch", p.batch)?,
        in_h: i("in_h", p.in_h)?,
        in_w: i("in_w", p.in_w)?,
        out_h: i("out_h", oh)?,
        out_w: i("out_w", ow)?,
        kh: i("kh", f.kh)?,
        kw: i("kw", f.kw)?,
        stride_h: i("stride_h", p.stride_h)?,
        stride_w: i("stride_w", p.stride_w)?,
        pad_h: i("pad_h", p.pad_h)?,
        pad_w: i("pad_w", p.pad_w)?,
        zero_pad: (p.pad_mode == PadMode::Zero) as i32,
        c_in: i("c_in", f.c_in)?,
        words: i("words", f.words)?,
        c_out: i("c_out", f.c_out)?,
        out_words: i("out words", f.c_out.div_ceil(32))?,
    })
}

impl BinaryOps for CudaBackend {
    fn binarize_pack(&self, _: Checked, x: &Tensor, out: &mut DeviceBits) -> Result<()> {
        let be = self;
        float_dispatch!("binarize_pack", "X", x.dtype(), binarize_typed(be, x, out))
    }

    fn xnor_gemm(&self, _: Checked, a: &DeviceBits, w: &DeviceBinaryWeights, y: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "xnor_gemm";
        if a.words != w.bits.words || a.cols != w.bits.cols {
            return Err(Error::shape(OP, format!("A has K = {} bits, W has {}", a.cols, w.bits.cols)));
        }
        // A 1 x 1 convolution over an m x 1 image: pixel i is row i of A, channel j row j of W.
        let g = ConvGeom {
            batch: 1,
            in_h: i32_arg(OP, "M", a.rows)?,
            in_w: 1,
            out_h: i32_arg(OP, "M", a.rows)?,
            out_w: 1,
            kh: 1,
            kw: 1,
            stride_h: 1,
            stride_w: 1,
            pad_h: 0,
            pad_w: 0,
            zero_pad: 0,
            c_in: i32_arg(OP, "K", a.cols)?,
            words: i32_arg(OP, "words", a.words)?,
            c_out: i32_arg(OP, "N", w.bits.rows)?,
            out_words: i32_arg(OP, "N words", w.bits.rows.div_ceil(32))?,
        };
        xnor_launch(be, OP, g, &a.data, &w.bits.data, &w.alpha, None, XnorOut::F32(&mut y.buf))
    }

    fn xnor_conv2d(&self, _: Checked, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, y: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "xnor_conv2d";
        let g = geom(OP, x, f, p)?;
        xnor_launch(be, OP, g, &x.data, &f.bits, &f.alpha, Some(&f.bias), XnorOut::F32(&mut y.buf))
    }

    fn xnor_conv2d_bits(&self, _: Checked, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, o: BitsOut<'_>) -> Result<()> {
        let BitsOut { thresholds, out } = o;
        let be = self;
        const OP: &str = "xnor_conv2d_bits";
        let g = geom(OP, x, f, p)?;
        if out.words != f.c_out.div_ceil(32) {
            return Err(Error::shape(OP, format!("out has {} words per row, expected {}", out.words, f.c_out.div_ceil(32))));
        }
        xnor_launch(be, OP, g, &x.data, &f.bits, &f.alpha, Some(&f.bias), XnorOut::Bits { thresholds, out: &mut out.data })
    }
}
