//! CUDA launchers of the quantized ops (kernels in `cuda/quant.cu`), and the plan of the fused
//! `gemm_w8a8_dyn` GEMV.

use crate::backend::{Checked, QuantOps};
use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::backend::{drv, float_dispatch, i32_arg, sl, sl_mut, CudaBackend, KernelFloat};
use super::plan::{int4_wants_mma_layout, w4a16_path, w8a8_path, Gpu, TcPlan, W4a16Path, W8a8Path, GEMV_MAX_M, GEMV_ROWS};
use crate::error::{Error, Result};
use crate::tensor::expect_len;
use crate::tensor::*;

/// Largest K for which the int32 accumulation of int8 products cannot overflow
/// (128 * 128 * K < 2^31).
const W8A8_MAX_K: usize = 131_071;

fn quantize_typed<T: KernelFloat>(be: &CudaBackend, x: &Tensor, out: &mut DeviceInt8Matrix) -> Result<()> {
    const OP: &str = "quantize_rows_i8";
    let (m, k, stride) = (out.rows, out.cols, out.stride);
    if stride < k {
        return Err(Error::shape(OP, format!("row stride {stride} < K = {k}")));
    }
    expect_len(OP, "X", &x.buf, m * k)?;
    expect_len(OP, "out.q", &out.q, m * stride)?;
    expect_len(OP, "out.scales", &out.scales, m)?;
    let block = k.next_power_of_two().clamp(32, 256);
    let cfg = be.cfg(OP, (m, 1, 1), block as u32, 0)?;
    let f = be.function("quant", &format!("quantize_rows_i8_{}", T::SUFFIX))?;
    let (ki, si) = (i32_arg(OP, "K", k)?, i32_arg(OP, "stride", stride)?);
    let xs = sl::<T>(OP, "X", &x.buf)?;
    let DeviceInt8Matrix { q, scales, .. } = out;
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&ki).arg(&si).arg(xs).arg(sl_mut::<i8>(OP, "out.q", q)?).arg(sl_mut::<f32>(OP, "out.scales", scales)?);
    // SAFETY: arguments match `quantize_rows_i8_*` in cuda/quant.cu; one block per row of X
    // (m * k elements), writes q[row * stride + c] for c < k <= stride and scales[row].
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(())
}

fn w8a8_typed<T: KernelFloat>(be: &CudaBackend, x: &DeviceInt8Matrix, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
    const OP: &str = "gemm_w8a8";
    let (m, n, k) = (x.rows, w.rows, x.cols);
    if x.stride != w.stride || x.stride < k || x.stride % 16 != 0 {
        return Err(Error::shape(OP, format!("row strides {} and {} must be equal multiples of 16 >= K = {k}", x.stride, w.stride)));
    }
    if k > W8A8_MAX_K {
        return Err(Error::shape(OP, format!("K = {k} exceeds {W8A8_MAX_K}: the int32 accumulator could overflow")));
    }
    expect_len(OP, "X.q", &x.q, m * x.stride)?;
    expect_len(OP, "W.q", &w.q, n * w.stride)?;
    expect_len(OP, "X.scales", &x.scales, m)?;
    expect_len(OP, "W.scales", &w.scales, n)?;
    expect_len(OP, "Y", &y.buf, m * n)?;
    let xq = sl::<i8>(OP, "X.q", &x.q)?;
    let wq = sl::<i8>(OP, "W.q", &w.q)?;
    if !be.aligned(xq, 16) || !be.aligned(wq, 16) {
        return Err(Error::backend("cuda", format!("{OP}: int8 buffers must be 16-byte aligned")));
    }
    // Tensor cores (mma.sync m16n8k32 s8) from sm_80 once there are enough rows to fill an
    // m16 tile; the dp4a GEMV kernel for small M and older GPUs (`plan::w8a8_path`).
    let (name, cfg) = match w8a8_path(&be.plan_gpu(), m, n, k) {
        W8a8Path::Mma64 => (format!("w8a8_mma_{}", T::SUFFIX), be.cfg(OP, (n.div_ceil(64), m.div_ceil(64), 1), 128, 0)?),
        W8a8Path::Gemv => (format!("w8a8_gemv_{}", T::SUFFIX), be.cfg(OP, (n.div_ceil(8), m.div_ceil(GEMV_ROWS), 1), 256, 0)?),
        W8a8Path::Tc(plan) => return w8a8_tc::<T>(be, x, w, y, plan),
    };
    let f = be.function("quant", &name)?;
    let (mi, ni, ki, si) = (i32_arg(OP, "M", m)?, i32_arg(OP, "N", n)?, i32_arg(OP, "K", k)?, i32_arg(OP, "stride", x.stride)?);
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&mi)
        .arg(&ni)
        .arg(&ki)
        .arg(&si)
        .arg(xq)
        .arg(sl::<f32>(OP, "X.scales", &x.scales)?)
        .arg(wq)
        .arg(sl::<f32>(OP, "W.scales", &w.scales)?)
        .arg(sl_mut::<T>(OP, "Y", &mut y.buf)?);
    // SAFETY: arguments match `w8a8_*` in cuda/quant.cu; strides, lengths, alignment and the
    // K limit of the kernels' contract were checked above.
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(())
}

/// `gemm_w8a8` on the multistage tensor-core kernel `w8a8_tc_<tile>_<T>` (cuda/quant_tc.cu; operands checked
/// by the caller, `w8a8_typed`).
fn w8a8_tc<T: KernelFloat>(be: &CudaBackend, x: &DeviceInt8Matrix, w: &DeviceInt8Matrix, y: &mut Tensor, plan: TcPlan) -> Result<()> {
    const OP: &str = "gemm_w8a8";
    let (m, n, k) = (x.rows, w.rows, x.cols);
    let (bm, bn) = plan.tile.bm_bn();
    let ktiles = k.div_ceil(64);
    if plan.splits == 0 || plan.splits * plan.kps < ktiles || (plan.splits - 1) * plan.kps >= ktiles.max(1) {
        return Err(Error::backend("cuda", format!("{OP}: inconsistent split {plan:?} for K = {k}")));
    }
    let (ws_len, tickets_len) = plan.workspace(m, n);
    let mut ws = be.scratch_uninit::<u32>(ws_len)?;
    let mut tickets = be.scratch::<u32>(tickets_len)?;
    let name = format!("w8a8_tc_{}_{}", plan.tile.name(), T::SUFFIX);
    let grid = (n.div_ceil(bn), m.div_ceil(bm), plan.splits);
    let (f, cfg) = be.function_smem(OP, "quant_tc", &name, grid, plan.tile.threads(), plan.tile.smem())?;
    let ys = sl_mut::<T>(OP, "Y", &mut y.buf)?;
    let pair = (n % 2 == 0 && be.aligned(ys, 2 * std::mem::size_of::<T>() as u64)) as i32;
    let (mi, ni, ki, si) = (i32_arg(OP, "M", m)?, i32_arg(OP, "N", n)?, i32_arg(OP, "K", k)?, i32_arg(OP, "stride", x.stride)?);
    let kps = i32_arg(OP, "k-tiles per split", plan.kps)?;
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&mi)
        .arg(&ni)
        .arg(&ki)
        .arg(&si)
        .arg(sl::<i8>(OP, "X.q", &x.q)?)
        .arg(sl::<f32>(OP, "X.scales", &x.scales)?)
        .arg(sl::<i8>(OP, "W.q", &w.q)?)
        .arg(sl::<f32>(OP, "W.scales", &w.scales)?)
        .arg(ys)
        .arg(&kps)
        .arg(&pair)
        .arg(&mut ws)
        .arg(&mut tickets);
    // SAFETY: arguments match `w8a8_tc_*` in cuda/quant_tc.cu; the caller checked strides (equal
    // multiples of 16 >= K), K <= W8A8_MAX_K, every length and the 16-byte alignment of the
    // int8 buffers; pair stores only with N even and Y aligned to two elements; the grid is
    // (ceil(N / BN), ceil(M / BM), splits) with non-empty splits (checked above), the workspace
    // holds tiles * splits * BM * BN words and the zeroed tickets one per tile
    // (`TcPlan::workspace`); the dynamic shared memory is the tile's 4 stages.
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(())
}

/// Most dynamic shared memory of `w8a8_dyn_gemv` (its quantized rows of X): the default
/// per-block limit of 48 KB (no opt-in), less 512 bytes for the kernel's static shared memory
/// (352 bytes of reductions and scales), which counts against the same limit.
const W8A8_DYN_SMEM: usize = 48 * 1024 - 512;

/// The fused launch of `gemm_w8a8_dyn`: `w8a8_dyn_gemv` with `cols` output columns per block,
/// grid `(ceil(n / cols), ceil(m / 8))`, `smem` bytes of dynamic shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct W8a8DynPlan {
    cols: usize,
    smem: usize,
}

/// The plan of `gemm_w8a8_dyn` for X `[m, k]` (quantized rows of `stride` bytes) and W
/// `[n, k]`: the fused GEMV for M <= 16 when a block's rows (min(m, 8) * stride bytes) fit in
/// [`W8A8_DYN_SMEM`], else `None`: two launches (`quantize_rows_i8` into a scratch, then
/// `gemm_w8a8` with its own plan), as always under `SLIMGEMM_KERNEL=simple`. Every block
/// re-quantizes its rows, so blocks take as many columns as they can (64, 32, 16, down to 8)
/// while the grid still has a wave of blocks.
fn w8a8_dyn_plan(gpu: &Gpu, m: usize, n: usize, stride: usize) -> Option<W8a8DynPlan> {
    if gpu.simple || m == 0 || m > GEMV_MAX_M {
        return None;
    }
    let smem = m.min(GEMV_ROWS).checked_mul(stride).filter(|&b| b <= W8A8_DYN_SMEM)?;
    let mut cols = 64;
    while cols > 8 && n.div_ceil(cols) * m.div_ceil(GEMV_ROWS) < gpu.wave() {
        cols /= 2;
    }
    Some(W8a8DynPlan { cols, smem })
}

fn w8a8_dyn_typed<T: KernelFloat>(be: &CudaBackend, x: &Tensor, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
    const OP: &str = "gemm_w8a8_dyn";
    let (m, n, k) = (x.rows, w.rows, x.cols);
    let stride = crate::formats::Int8Matrix::padded_cols(k);
    if w.cols != k || w.stride != stride {
        return Err(Error::shape(OP, format!("W is [{n}, {}] with row stride {}, expected K = {k} and stride {stride}", w.cols, w.stride)));
    }
    if k > W8A8_MAX_K {
        return Err(Error::shape(OP, format!("K = {k} exceeds {W8A8_MAX_K}: the int32 accumulator could overflow")));
    }
    let Some(plan) = w8a8_dyn_plan(&be.plan_gpu(), m, n, stride) else {
        // Two launches through a scratch of quantized rows (the same stride as W).
        let mut xq = crate::backend::scratch_int8(be, m, k)?;
        quantize_typed::<T>(be, x, &mut xq)?;
        return w8a8_typed::<T>(be, &xq, w, y);
    };
    expect_len(OP, "X", &x.buf, m * k)?;
    expect_len(OP, "W.q", &w.q, n * stride)?;
    expect_len(OP, "W.scales", &w.scales, n)?;
    expect_len(OP, "Y", &y.buf, m * n)?;
    let wq = sl::<i8>(OP, "W.q", &w.q)?;
    if !be.aligned(wq, 16) {
        return Err(Error::backend("cuda", format!("{OP}: W.q must be 16-byte aligned")));
    }
    let smem = u32::try_from(plan.smem).map_err(|_| Error::shape(OP, format!("{} bytes of shared memory", plan.smem)))?;
    let cfg = be.cfg(OP, (n.div_ceil(plan.cols), m.div_ceil(GEMV_ROWS), 1), 256, smem)?;
    let f = be.function("quant", &format!("w8a8_dyn_gemv_{}", T::SUFFIX))?;
    let (mi, ni, ki, si) = (i32_arg(OP, "M", m)?, i32_arg(OP, "N", n)?, i32_arg(OP, "K", k)?, i32_arg(OP, "stride", stride)?);
    let ci = i32_arg(OP, "columns per block", plan.cols)?;
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&mi)
        .arg(&ni)
        .arg(&ki)
        .arg(&si)
        .arg(&ci)
        .arg(sl::<T>(OP, "X", &x.buf)?)
        .arg(wq)
        .arg(sl::<f32>(OP, "W.scales", &w.scales)?)
        .arg(sl_mut::<T>(OP, "Y", &mut y.buf)?);
    // SAFETY: arguments match `w8a8_dyn_gemv_*` in cuda/quant.cu; X (m * k), W.q (n * stride,
    // stride = 16 ceil(K / 16), 16-byte aligned), W.scales (n) and Y (m * n) lengths and
    // K <= W8A8_MAX_K were checked above; the grid is (ceil(n / cols), ceil(m / 8)) with
    // 256 threads and min(m, 8) * stride bytes of dynamic shared memory (<= W8A8_DYN_SMEM: with
    // the kernel's static shared memory within the default 48 KB).
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(())
}

fn w4a16_typed<T: KernelFloat>(be: &CudaBackend, x: &Tensor, w: &DeviceInt4Weights, y: &mut Tensor) -> Result<()> {
    const OP: &str = "gemm_w4a16";
    let (m, n, k, group) = (x.rows, w.n, w.k, w.group);
    crate::formats::quant::check_group(OP, k, group)?;
    let groups = k / group;
    expect_len(OP, "X", &x.buf, m * k)?;
    expect_len(OP, "qweight", &w.qweight, n * k / 8)?;
    expect_len(OP, "scales", &w.scales, n * groups)?;
    expect_len(OP, "zeros", &w.zeros, n * groups)?;
    expect_len(OP, "Y", &y.buf, m * n)?;
    let xs = sl::<T>(OP, "X", &x.buf)?;
    let qw = sl::<u32>(OP, "qweight", &w.qweight)?;
    if !be.aligned(xs, 16) || !be.aligned(qw, 16) {
        return Err(Error::backend("cuda", format!("{OP}: X and qweight must be 16-byte aligned")));
    }
    let (name, cfg) = match w4a16_path(&be.plan_gpu(), m, n, k, T::SUFFIX == "f16", false) {
        W4a16Path::Gemv => (format!("w4a16_gemv_{}", T::SUFFIX), be.cfg(OP, (n.div_ceil(8), m.div_ceil(GEMV_ROWS), 1), 256, 0)?),
        W4a16Path::Tile => (format!("w4a16_tile_{}", T::SUFFIX), be.cfg(OP, (n.div_ceil(64), m.div_ceil(64), 1), 256, 0)?),
        p => return Err(Error::backend("cuda", format!("{OP}: plan {p:?} needs the tensor-core layout"))),
    };
    // SAFETY: `w4a16_{gemv,tile}_*` in cuda/quant.cu have the zero-point signature; group | K,
    // every length and the 16-byte alignment of the vector-loaded buffers were checked above.
    unsafe { launch_zero_point::<T>(be, OP, ("quant", &name), cfg, x, w, y) }
}

/// Launches kernel `name` of a family with the zero-point int4 signature `(m, n, k, group, X,
/// qweight, scales, zeros, Y)`: `w4a16_{gemv,tile}_*` (cuda/quant.cu) and
/// `w4a16_frag_{gemv,tile}_f32` (cuda/quant_tc.cu), on `x`, `w` and `y`.
///
/// # Safety
/// The caller has checked every length, alignment and the grid of that kernel's contract.
unsafe fn launch_zero_point<T: KernelFloat>(
    be: &CudaBackend,
    op: &'static str,
    (family, name): (&'static str, &str),
    cfg: LaunchConfig,
    x: &Tensor,
    w: &DeviceInt4Weights,
    y: &mut Tensor,
) -> Result<()> {
    let f = be.function(family, name)?;
    let (mi, ni, ki, gi) = (i32_arg(op, "M", x.rows)?, i32_arg(op, "N", w.n)?, i32_arg(op, "K", w.k)?, i32_arg(op, "group", w.group)?);
    let (xs, qw) = (sl::<T>(op, "X", &x.buf)?, sl::<u32>(op, "qweight", &w.qweight)?);
    let (scales, zeros) = (sl::<f32>(op, "scales", &w.scales)?, sl::<u32>(op, "zeros", &w.zeros)?);
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&mi).arg(&ni).arg(&ki).arg(&gi).arg(xs).arg(qw).arg(scales).arg(zeros).arg(sl_mut::<T>(op, "Y", &mut y.buf)?);
    // SAFETY: the arguments follow the signature above; the caller's contract covers the rest.
    unsafe { lb.launch(cfg) }.map_err(drv(op))?;
    Ok(())
}

/// `gemm_w4a16` on weights with float minimums and/or an act-order permutation: the
/// `w4a16_{mins,perm,mins_perm}_{gemv,tile}_*` kernels (the gather of X through `perm` is fused
/// into their loads; see the comment above them in cuda/quant.cu for why).
fn w4a16x_typed<T: KernelFloat>(be: &CudaBackend, x: &Tensor, w: &DeviceInt4Weights, y: &mut Tensor) -> Result<()> {
    const OP: &str = "gemm_w4a16";
    let (m, n, k, group) = (x.rows, w.n, w.k, w.group);
    crate::formats::quant::check_group(OP, k, group)?;
    let groups = k / group;
    let form = match (&w.mins, &w.perm) {
        (Some(_), Some(_)) => "mins_perm",
        (Some(_), None) => "mins",
        (None, Some(_)) => "perm",
        (None, None) => return Err(Error::backend("cuda", format!("{OP}: plain zero-point weights take w4a16_typed"))),
    };
    expect_len(OP, "X", &x.buf, m * k)?;
    expect_len(OP, "qweight", &w.qweight, n * k / 8)?;
    expect_len(OP, "scales", &w.scales, n * groups)?;
    match &w.mins {
        Some(mins) => expect_len(OP, "mins", mins, n * groups)?,
        None => expect_len(OP, "zeros", &w.zeros, n * groups)?,
    }
    if let Some(p) = &w.perm {
        expect_len(OP, "perm", p, k)?;
    }
    expect_len(OP, "Y", &y.buf, m * n)?;
    let xs = sl::<T>(OP, "X", &x.buf)?;
    let qw = sl::<u32>(OP, "qweight", &w.qweight)?;
    let scales = sl::<f32>(OP, "scales", &w.scales)?;
    let zeros = sl::<u32>(OP, "zeros", &w.zeros)?;
    // Unused pointers get some valid buffer of their type: perm -> zeros, mins -> scales.
    let perm = match &w.perm {
        Some(p) => sl::<u32>(OP, "perm", p)?,
        None => zeros,
    };
    let mins = match &w.mins {
        Some(mn) => sl::<f32>(OP, "mins", mn)?,
        None => scales,
    };
    if !be.aligned(xs, 16) || !be.aligned(qw, 16) || !be.aligned(perm, 16) {
        return Err(Error::backend("cuda", format!("{OP}: X, qweight and perm must be 16-byte aligned")));
    }
    let (name, cfg) = if m <= 8 {
        (format!("w4a16_{form}_gemv_{}", T::SUFFIX), be.cfg(OP, (n.div_ceil(8), m.div_ceil(8), 1), 256, 0)?)
    } else {
        (format!("w4a16_{form}_tile_{}", T::SUFFIX), be.cfg(OP, (n.div_ceil(64), m.div_ceil(64), 1), 256, 0)?)
    };
    let f = be.function("quant", &name)?;
    let (mi, ni, ki, gi) = (i32_arg(OP, "M", m)?, i32_arg(OP, "N", n)?, i32_arg(OP, "K", k)?, i32_arg(OP, "group", group)?);
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&mi)
        .arg(&ni)
        .arg(&ki)
        .arg(&gi)
        .arg(xs)
        .arg(perm)
        .arg(qw)
        .arg(scales)
        .arg(zeros)
        .arg(mins)
        .arg(sl_mut::<T>(OP, "Y", &mut y.buf)?);
    // SAFETY: arguments match `w4a16_{form}_*` in cuda/quant.cu; group | K, every length the
    // form reads (perm k entries, a permutation of 0..k validated at upload; mins or zeros
    // n * K / group), and the 16-byte alignment of the vector-loaded buffers were checked
    // above; the pointers a form does not read are valid buffers of their type.
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(())
}

fn w8a16_typed<T: KernelFloat>(be: &CudaBackend, x: &Tensor, w: &DeviceInt8Weights, y: &mut Tensor) -> Result<()> {
    const OP: &str = "gemm_w8a16";
    let (m, n, k, group) = (x.rows, w.n, w.k, w.group);
    crate::formats::quant::check_group(OP, k, group)?;
    expect_len(OP, "X", &x.buf, m * k)?;
    expect_len(OP, "q", &w.q, n * k)?;
    expect_len(OP, "scales", &w.scales, n * (k / group))?;
    expect_len(OP, "Y", &y.buf, m * n)?;
    let xs = sl::<T>(OP, "X", &x.buf)?;
    let q = sl::<i8>(OP, "q", &w.q)?;
    if !be.aligned(xs, 16) || !be.aligned(q, 16) {
        return Err(Error::backend("cuda", format!("{OP}: X and q must be 16-byte aligned")));
    }
    let (name, cfg) = if m <= 8 {
        (format!("w8a16_gemv_{}", T::SUFFIX), be.cfg(OP, (n.div_ceil(8), m.div_ceil(8), 1), 256, 0)?)
    } else {
        (format!("w8a16_tile_{}", T::SUFFIX), be.cfg(OP, (n.div_ceil(64), m.div_ceil(64), 1), 256, 0)?)
    };
    let f = be.function("quant", &name)?;
    let (mi, ni, ki, gi) = (i32_arg(OP, "M", m)?, i32_arg(OP, "N", n)?, i32_arg(OP, "K", k)?, i32_arg(OP, "group", group)?);
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&mi).arg(&ni).arg(&ki).arg(&gi).arg(xs).arg(q).arg(sl::<f32>(OP, "scales", &w.scales)?).arg(sl_mut::<T>(OP, "Y", &mut y.buf)?);
    // SAFETY: arguments match `w8a16_*` in cuda/quant.cu; group | K (so rows of q are whole
    // 32-byte chunks), every length and the 16-byte alignment of X and q were checked above.
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(())
}

/// `gemm_w4a16` on weights in the fragment order of `formats::int4_mma` (kernels in
/// cuda/quant_tc.cu): f16 X on tensor cores (`w4a16_mma_<tile>`), f32 X on CUDA cores
/// (`w4a16_frag_gemv_f32` / `w4a16_frag_tile_f32`).
fn w4a16_mma_typed<T: KernelFloat>(be: &CudaBackend, x: &Tensor, w: &DeviceInt4Weights, y: &mut Tensor) -> Result<()> {
    const OP: &str = "gemm_w4a16";
    let l = w.mma.as_ref().ok_or_else(|| Error::backend("cuda", format!("{OP}: the weights have no tensor-core layout")))?;
    let (m, n, k, group) = (x.rows, w.n, w.k, w.group);
    crate::formats::quant::check_group(OP, k, group)?;
    let groups = k / group;
    if l.n_pad != n.div_ceil(64) * 64 {
        return Err(Error::backend("cuda", format!("{OP}: tensor-core layout padded to {} channels for n = {n}", l.n_pad)));
    }
    expect_len(OP, "X", &x.buf, m * k)?;
    expect_len(OP, "qweight", &w.qweight, l.n_pad * k / 8)?;
    expect_len(OP, "scales", &w.scales, n * groups)?;
    expect_len(OP, "zeros", &w.zeros, n * groups)?;
    expect_len(OP, "sz", &l.sz, groups * l.n_pad)?;
    expect_len(OP, "Y", &y.buf, m * n)?;
    let xs = sl::<T>(OP, "X", &x.buf)?;
    let qw = sl::<u32>(OP, "qweight", &w.qweight)?;
    if !be.aligned(xs, 16) || !be.aligned(qw, 16) {
        return Err(Error::backend("cuda", format!("{OP}: X and qweight must be 16-byte aligned")));
    }
    let (mi, ni, ki, gi) = (i32_arg(OP, "M", m)?, i32_arg(OP, "N", n)?, i32_arg(OP, "K", k)?, i32_arg(OP, "group", group)?);
    let nblocks = l.n_pad / 64;
    let plan = w4a16_path(&be.plan_gpu(), m, n, k, T::SUFFIX == "f16", true);
    if let W4a16Path::Mma(p) = plan {
        let kt = k / 32;
        if p.splits == 0 || p.splits * p.kps < kt || (p.splits - 1) * p.kps >= kt {
            return Err(Error::backend("cuda", format!("{OP}: inconsistent split {p:?} for K = {k}")));
        }
        let (ws_len, tickets_len) = p.workspace(m, n);
        // SAFETY (uninitialized workspace): every word a block reads back was written by
        // another block of the same tile before that block took its ticket.
        let mut ws = be.scratch_uninit::<u32>(ws_len)?;
        let mut tickets = be.scratch::<u32>(tickets_len)?;
        let grid = (nblocks.div_ceil(4), m.div_ceil(p.tile.bm()), p.splits);
        let name = format!("w4a16_mma_{}", p.tile.name());
        let (f, cfg) = be.function_smem(OP, "quant_tc", &name, grid, p.tile.threads(), p.tile.smem())?;
        let ys = sl_mut::<T>(OP, "Y", &mut y.buf)?;
        let pair = (n % 2 == 0 && be.aligned(ys, 4)) as i32;
        let kps = i32_arg(OP, "k-tiles per split", p.kps)?;
        let mut lb = be.stream().launch_builder(&f);
        lb.arg(&mi).arg(&ni).arg(&ki).arg(&gi).arg(xs).arg(qw).arg(sl::<u32>(OP, "sz", &l.sz)?).arg(ys);
        lb.arg(&kps).arg(&pair).arg(&mut ws).arg(&mut tickets);
        // SAFETY: arguments match `w4a16_mma_*` in cuda/quant_tc.cu (X and Y f16: the plan
        // takes this kernel only for f16 X, and Y has X's dtype); group | K, X, the fragment
        // words (n_pad * K / 8, n_pad = 64 ceil(N / 64)), sz and Y lengths and the 16-byte
        // alignment of X and the words were checked above; pair stores only with N even and Y
        // 4-byte aligned; grid (ceil(n_pad / 256), ceil(M / BM), splits) with non-empty splits
        // (checked above), workspace and zeroed tickets sized by `W4Plan::workspace`.
        unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
        return Ok(());
    }
    let (name, grid) = match plan {
        W4a16Path::FragGemv => ("w4a16_frag_gemv_f32", (nblocks, m.div_ceil(8), 1)),
        W4a16Path::FragTile => ("w4a16_frag_tile_f32", (nblocks, m.div_ceil(64), 1)),
        p => return Err(Error::backend("cuda", format!("{OP}: plan {p:?} does not read the tensor-core layout"))),
    };
    if T::SUFFIX != "f32" {
        return Err(Error::backend("cuda", format!("{OP}: {name} takes f32 activations")));
    }
    let cfg = be.cfg(OP, grid, 256, 0)?;
    // SAFETY: `w4a16_frag_*_f32` in cuda/quant_tc.cu have the zero-point signature (T is f32,
    // checked above); group | K, every length (fragment words n_pad * K / 8) and the 16-byte
    // alignment of X and the words were checked above; the grid covers n_pad / 64 column
    // blocks and M.
    unsafe { launch_zero_point::<T>(be, OP, ("quant_tc", name), cfg, x, w, y) }
}

impl QuantOps for CudaBackend {
    fn quantize_rows_i8(&self, _: Checked, x: &Tensor, out: &mut DeviceInt8Matrix) -> Result<()> {
        let be = self;
        float_dispatch!("quantize_rows_i8", "X", x.dtype(), quantize_typed(be, x, out))
    }

    fn gemm_w8a8(&self, _: Checked, x: &DeviceInt8Matrix, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
        let be = self;
        float_dispatch!("gemm_w8a8", "Y", y.dtype(), w8a8_typed(be, x, w, y))
    }

    /// The fused `w8a8_dyn_gemv` for M <= 16 within 48 KB of quantized rows, else
    /// `quantize_rows_i8` into a scratch and `gemm_w8a8` (`w8a8_dyn_plan`).
    fn gemm_w8a8_dyn(&self, _: Checked, x: &Tensor, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
        let be = self;
        float_dispatch!("gemm_w8a8_dyn", "X", x.dtype(), w8a8_dyn_typed(be, x, w, y))
    }

    fn gemm_w4a16(&self, _: Checked, x: &Tensor, w: &DeviceInt4Weights, y: &mut Tensor) -> Result<()> {
        let be = self;
        if w.mins.is_some() || w.perm.is_some() {
            return float_dispatch!("gemm_w4a16", "X", x.dtype(), w4a16x_typed(be, x, w, y));
        }
        if w.mma.is_some() {
            return float_dispatch!("gemm_w4a16", "X", x.dtype(), w4a16_mma_typed(be, x, w, y));
        }
        float_dispatch!("gemm_w4a16", "X", x.dtype(), w4a16_typed(be, x, w, y))
    }

    fn gemm_w8a16(&self, _: Checked, x: &Tensor, w: &DeviceInt8Weights, y: &mut Tensor) -> Result<()> {
        let be = self;
        float_dispatch!("gemm_w8a16", "X", x.dtype(), w8a16_typed(be, x, w, y))
    }

    /// sm_80+ unless `SLIMGEMM_KERNEL=simple` (`plan::int4_wants_mma_layout`).
    fn int4_wants_mma_layout(&self) -> bool {
        int4_wants_mma_layout(&self.plan_gpu())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H200: Gpu = Gpu { cc: (9, 0), sms: 132, simple: false };
    const T4: Gpu = Gpu { cc: (7, 5), sms: 40, simple: false };
    const SIMPLE: Gpu = Gpu { cc: (9, 0), sms: 132, simple: true };

    fn plan(gpu: &Gpu, m: usize, n: usize, k: usize) -> Option<W8a8DynPlan> {
        w8a8_dyn_plan(gpu, m, n, k.div_ceil(16) * 16)
    }

    /// `quant_i8` of cuda/quant.cu: `roundf(x * inv)` clamped, NaN to 0.
    fn quant_i8(x: f32, inv: f32) -> i32 {
        let v = x * inv;
        if v.is_nan() {
            0
        } else {
            v.round().clamp(-127.0, 127.0) as i32
        }
    }

    /// Host emulation of `w8a8_dyn_gemv_body` (cuda/quant.cu) for f32 X, transcribed loop for
    /// loop over blocks, warps and lanes: the amax partials and their combination, the word
    /// mapping `e -> (i, w)` of the quantized rows in shared memory (left as junk where the
    /// kernel writes nothing), the columns of each warp, and `w8a8_gemv_col` with its masked
    /// tail chunk (W's padding is junk here too).
    fn emulate(m: usize, n: usize, k: usize, cols: usize, x: &[f32], wq: &[i8], sw: &[f32]) -> Vec<f32> {
        let stride = k.div_ceil(16) * 16;
        let mut y = vec![f32::NAN; m * n];
        for by in 0..m.div_ceil(8) {
            let (i0, rows) = (by * 8, 8.min(m - by * 8));
            let mut red = [[0f32; 8]; 8];
            for tid in 0..256 {
                for i in 0..rows {
                    let part = (tid..k).step_by(256).fold(0f32, |a, c| a.max(x[(i0 + i) * k + c].abs()));
                    red[tid / 32][i] = red[tid / 32][i].max(part);
                }
            }
            let (mut sxs, mut invs, mut degs) = ([0f32; 8], [0f32; 8], [false; 8]);
            for t in 0..8 {
                let a = (1..8).fold(red[0][t], |a, w| a.max(red[w][t]));
                degs[t] = a == 0.0 || !a.is_finite();
                (sxs[t], invs[t]) = if degs[t] { (0.0, 0.0) } else { (a / 127.0, 127.0 / a) };
            }
            let words = stride / 4;
            let mut smem = vec![0x5Au8; rows * stride];
            for tid in 0..256 {
                for e in (tid..rows * words).step_by(256) {
                    let (i, w) = (e / words, e % words);
                    let mut word = 0u32;
                    for b in 0..4 {
                        let c = 4 * w + b;
                        if !degs[i] && c < k {
                            word |= (quant_i8(x[(i0 + i) * k + c], invs[i]) as u32 & 0xff) << (8 * b);
                        }
                    }
                    smem[4 * e..4 * e + 4].copy_from_slice(&word.to_le_bytes());
                }
            }
            for bx in 0..n.div_ceil(cols) {
                for warp in 0..8 {
                    for j in (warp..cols).step_by(8).map(|jj| bx * cols + jj).take_while(|&j| j < n) {
                        let mut acc = [0i32; 8];
                        for lane in 0..32 {
                            for c in (lane..k.div_ceil(16)).step_by(32) {
                                let valid = k - c * 16;
                                for i in 0..rows {
                                    for b in 0..16.min(valid) {
                                        acc[i] += smem[i * stride + 16 * c + b] as i8 as i32 * wq[j * stride + 16 * c + b] as i32;
                                    }
                                }
                            }
                        }
                        for i in 0..rows {
                            y[(i0 + i) * n + j] = (sxs[i] * sw[j]) * acc[i] as f32;
                        }
                    }
                }
            }
        }
        y
    }

    #[test]
    fn emulated_fused_kernel_is_the_cpu_composition() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for &(m, n, k, cols) in &[(1usize, 1usize, 1usize, 8usize), (3, 70, 37, 16), (8, 33, 100, 32), (13, 65, 530, 16), (16, 9, 4100, 64)]
        {
            let stride = k.div_ceil(16) * 16;
            let mut x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-2.0f32..2.0)).collect();
            if m > 1 {
                x[k..2 * k].iter_mut().for_each(|v| *v = 0.0); // a zero row: scale 0
            }
            // W rows padded with junk past k: the kernel masks its tail chunk.
            let wq: Vec<i8> = (0..n * stride).map(|_| rng.random_range(-127i8..=127)).collect();
            let sw: Vec<f32> = (0..n).map(|_| rng.random_range(0.001f32..0.01)).collect();
            let got = emulate(m, n, k, cols, &x, &wq, &sw);
            let mut want = vec![0f32; m * n];
            crate::cpu::quant::gemm_w8a8_dyn(m, n, k, &x, &wq, stride, &sw, &mut want);
            let (g, w): (Vec<u32>, Vec<u32>) = (got.iter().map(|v| v.to_bits()).collect(), want.iter().map(|v| v.to_bits()).collect());
            assert_eq!(g, w, "m {m} n {n} k {k} cols {cols}");
        }
    }

    #[test]
    fn w8a8_dyn_fuses_small_m_within_48k() {
        // M = 1 at 4096 x 4096: 32 columns would give 128 < 132 blocks, so 16 (256 blocks).
        assert_eq!(plan(&H200, 1, 4096, 4096), Some(W8a8DynPlan { cols: 16, smem: 4096 }));
        // M = 16: two row blocks, so 32 columns already give 256 blocks.
        assert_eq!(plan(&H200, 16, 4096, 4096), Some(W8a8DynPlan { cols: 32, smem: 8 * 4096 }));
        assert_eq!(plan(&H200, 3, 4096, 4100), Some(W8a8DynPlan { cols: 16, smem: 3 * 4112 }));
        assert_eq!(plan(&T4, 1, 4096, 4096).map(|p| p.cols), Some(64));
        assert_eq!(plan(&H200, 1, 1, 1), Some(W8a8DynPlan { cols: 8, smem: 16 }));
        // The shared-memory bound: 8 rows of 6080 bytes fit exactly, 8 of 6096 (or 8192) do
        // not; one row of 48640 bytes does, one more 16-byte chunk does not.
        assert_eq!(plan(&H200, 16, 17, 6080).map(|p| p.smem), Some(W8A8_DYN_SMEM));
        assert_eq!(plan(&H200, 16, 17, 6096), None);
        assert_eq!(plan(&H200, 8, 33, 8192), None);
        assert!(plan(&H200, 1, 33, 48640).is_some());
        assert_eq!(plan(&H200, 1, 33, 48641), None);
        // M > 16 and the simple kernels: two launches.
        assert_eq!(plan(&H200, 17, 4096, 4096), None);
        assert_eq!(plan(&SIMPLE, 1, 4096, 4096), None);
        // Every plan covers N with ceil(n / cols) blocks of 8..=64 columns.
        for n in [1, 7, 8, 9, 63, 64, 65, 4095, 4096, 11008] {
            let p = plan(&H200, 1, n, 64).unwrap();
            assert!((8..=64).contains(&p.cols) && n.div_ceil(p.cols) * p.cols >= n);
        }
    }
}
