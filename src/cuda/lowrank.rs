//! CUDA launchers of the low-rank ops (kernels in `cuda/lowrank.cu`).

use crate::backend::{Checked, LowRankGrads, LowRankOps};
use cudarc::driver::{CudaSlice, PushKernelArg};
use std::any::Any;

use super::backend::{arg_opt, drv, float_dispatch, i32_arg, sl, sl_mut, CudaBackend, KernelFloat};
use super::plan::{lowrank_linear_path, lowrank_reconstruct_path, lowrank_tc_shapes, LowRankPath, TcPlan, LRS_B};
use crate::error::{Error, Result};
use crate::tensor::expect_len;
use crate::tensor::*;
use half::f16;

/// One strided GEMM operand: the slice and its element strides along (row, reduction) for A
/// or (reduction, column) for B.
pub(crate) struct Operand<'a, T> {
    pub s: &'a CudaSlice<T>,
    pub s0: usize,
    pub s1: usize,
}

/// `C[M,N] = alpha * A B + beta * C (+ bias)` with the strided tiled kernel `name`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<TA: KernelFloat, TB: KernelFloat, TC: KernelFloat>(
    be: &CudaBackend,
    op: &'static str,
    (m, n, k): (usize, usize, usize),
    a: Operand<'_, TA>,
    b: Operand<'_, TB>,
    c: &mut CudaSlice<TC>,
    alpha: f32,
    beta: f32,
    bias: Option<&CudaSlice<TC>>,
) -> Result<()> {
    // Contract of gemm_body: every A(i,k), B(k,j), C[i*N+j] and bias[j] is inside its slice.
    let need_a = (m - 1) * a.s0 + (k - 1) * a.s1 + 1;
    let need_b = (k - 1) * b.s0 + (n - 1) * b.s1 + 1;
    if a.s.len() < need_a || b.s.len() < need_b || c.len() < m * n || bias.is_some_and(|x| x.len() < n) {
        return Err(Error::backend("cuda", format!("{op}: GEMM operand smaller than its shape {m}x{n}x{k}")));
    }
    let name = format!("gemm_{}_{}_{}", TA::SUFFIX, TB::SUFFIX, TC::SUFFIX);
    let f = be.function("lowrank", &name)?;
    let cfg = be.cfg(op, (n.div_ceil(64), m.div_ceil(64), 1), 256, 0)?;
    let (mi, ni, ki) = (i32_arg(op, "M", m)?, i32_arg(op, "N", n)?, i32_arg(op, "K", k)?);
    let (sai, sak, sbk, sbj) = (a.s0 as i64, a.s1 as i64, b.s0 as i64, b.s1 as i64);
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&mi).arg(&ni).arg(&ki).arg(a.s).arg(&sai).arg(&sak).arg(b.s).arg(&sbk).arg(&sbj).arg(c).arg(&alpha).arg(&beta);
    arg_opt(&mut lb, bias);
    // SAFETY: arguments match `gemm_*` in cuda/lowrank.cu (a null bias is a zero pointer the
    // kernel tests); the extents of A, B, C and bias were checked above.
    unsafe { lb.launch(cfg) }.map_err(drv(op))?;
    Ok(())
}

/// One operand of [`hgemm_tc`]: the slice, its row pitch (elements) and whether B is K-major
/// (`[N][K]`, "NT") rather than N-major (`[K][N]`, "NN"; ignored for A).
pub(crate) struct TcOperand<'a> {
    pub s: &'a CudaSlice<f16>,
    pub ld: usize,
    pub kmajor: bool,
}

/// `C[M,N] = alpha * A B + beta * C (+ bias)`, f16, on the multistage tensor-core kernel
/// `hgemm_tc_<tile>_<nt|nn>` (sm_80+). A is `[M][K]` with pitch `a.ld`; B as `b.kmajor` says.
#[allow(clippy::too_many_arguments)]
pub(crate) fn hgemm_tc(
    be: &CudaBackend,
    op: &'static str,
    (m, n, k): (usize, usize, usize),
    a: TcOperand<'_>,
    b: TcOperand<'_>,
    c: &mut CudaSlice<f16>,
    alpha: f32,
    beta: f32,
    bias: Option<&CudaSlice<f16>>,
    plan: TcPlan,
) -> Result<()> {
    // Contract of hgemm_tc_body: pitches multiples of 8 (16-byte rows) and >= the row length,
    // 16-byte aligned A and B, every element inside its slice.
    let (a_rows, a_len) = (m, k);
    let (b_rows, b_len) = if b.kmajor { (n, k) } else { (k, n) };
    let fits = |s: &CudaSlice<f16>, rows: usize, len: usize, ld: usize| ld % 8 == 0 && ld >= len && s.len() >= (rows - 1) * ld + len;
    if m == 0 || n == 0 || k == 0 || !fits(a.s, a_rows, a_len, a.ld) || !fits(b.s, b_rows, b_len, b.ld) {
        return Err(Error::backend("cuda", format!("{op}: tensor-core GEMM operands do not fit the shape {m}x{n}x{k}")));
    }
    if c.len() < m * n || bias.is_some_and(|x| x.len() < n) || !be.aligned(a.s, 16) || !be.aligned(b.s, 16) {
        return Err(Error::backend("cuda", format!("{op}: tensor-core GEMM output, bias or alignment does not fit {m}x{n}x{k}")));
    }
    let ktiles = k.div_ceil(32);
    if plan.splits == 0 || plan.splits * plan.kps < ktiles || (plan.splits - 1) * plan.kps >= ktiles {
        return Err(Error::backend("cuda", format!("{op}: inconsistent split {plan:?} for K = {k}")));
    }
    let (bm, bn) = plan.tile.bm_bn();
    let (ws_len, tickets_len) = plan.workspace(m, n);
    let mut ws = be.scratch_uninit::<u32>(ws_len)?;
    let mut tickets = be.scratch::<u32>(tickets_len)?;
    let name = format!("hgemm_tc_{}_{}", plan.tile.name(), if b.kmajor { "nt" } else { "nn" });
    let grid = (n.div_ceil(bn), m.div_ceil(bm), plan.splits);
    let (f, cfg) = be.function_smem(op, "lowrank", &name, grid, plan.tile.threads(), plan.tile.smem())?;
    let pair = (n % 2 == 0 && be.aligned(c, 4)) as i32;
    let (mi, ni, ki) = (i32_arg(op, "M", m)?, i32_arg(op, "N", n)?, i32_arg(op, "K", k)?);
    let (lda, ldb, kps) = (i32_arg(op, "lda", a.ld)?, i32_arg(op, "ldb", b.ld)?, i32_arg(op, "k-tiles per split", plan.kps)?);
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&mi).arg(&ni).arg(&ki).arg(a.s).arg(&lda).arg(b.s).arg(&ldb).arg(c).arg(&alpha).arg(&beta);
    arg_opt(&mut lb, bias);
    lb.arg(&kps).arg(&pair).arg(&mut ws).arg(&mut tickets);
    // SAFETY: arguments match `hgemm_tc_*` in cuda/lowrank.cu; pitches (multiples of 8, >= the
    // row length), extents of A, B, C and bias, and the 16-byte alignment of A and B were
    // checked above; pair stores only with N even and C 4-byte aligned; the grid is
    // (ceil(N / BN), ceil(M / BM), splits) with non-empty splits (checked above), the workspace
    // and the zeroed tickets are sized by `TcPlan::workspace`; the dynamic shared memory is the
    // tile's 4 stages.
    unsafe { lb.launch(cfg) }.map_err(drv(op))?;
    Ok(())
}

/// The f16 slice behind a typed slice, if `T` is f16.
fn as_f16<T: KernelFloat>(s: &CudaSlice<T>) -> Option<&CudaSlice<f16>> {
    (s as &dyn Any).downcast_ref::<CudaSlice<f16>>()
}

fn check_factors(op: &'static str, lr: &DeviceLowRank) -> Result<()> {
    expect_len(op, "U", &lr.u.buf, lr.m * lr.r)?;
    expect_len(op, "V", &lr.v.buf, lr.n * lr.r)
}

fn linear_typed<T: KernelFloat>(be: &CudaBackend, lr: &DeviceLowRank, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()> {
    const OP: &str = "lowrank_linear";
    check_factors(OP, lr)?;
    let (b, n, r, m) = (x.rows, lr.n, lr.r, lr.m);
    expect_len(OP, "X", &x.buf, b * n)?;
    expect_len(OP, "Y", &y.buf, b * m)?;
    if let Some(bb) = bias {
        expect_len(OP, "bias", &bb.buf, m)?;
    }
    let xs = sl::<T>(OP, "X", &x.buf)?;
    let us = sl::<T>(OP, "U", &lr.u.buf)?;
    let vs = sl::<T>(OP, "V", &lr.v.buf)?;
    let bs = bias.map(|bb| sl::<T>(OP, "bias", &bb.buf)).transpose()?;
    let ys = sl_mut::<T>(OP, "Y", &mut y.buf)?;
    let f16_tc = as_f16(xs).is_some_and(|x| be.aligned(x, 16))
        && as_f16(vs).is_some_and(|v| be.aligned(v, 16))
        && as_f16(us).is_some_and(|u| be.aligned(u, 16))
        && lowrank_tc_shapes(n, r);
    match lowrank_linear_path(&be.plan_gpu(), b, n, r, m, f16_tc) {
        LowRankPath::Fused { grid, cols } => {
            // Fused: T = X V in shared memory. Every block recomputes T (it reads V once, from
            // L2), so the number of blocks trades V re-reads against parallelism over m.
            let smem = b * r * 4;
            let f = be.function("lowrank", &format!("lowrank_small_{}", T::SUFFIX))?;
            let cfg = be.cfg(OP, (grid, 1, 1), 256, smem as u32)?;
            let (bi, ni, ri, mi, ci) =
                (i32_arg(OP, "b", b)?, i32_arg(OP, "n", n)?, i32_arg(OP, "r", r)?, i32_arg(OP, "m", m)?, i32_arg(OP, "cols", cols)?);
            let mut lb = be.stream().launch_builder(&f);
            lb.arg(&bi).arg(&ni).arg(&ri).arg(&mi).arg(&ci).arg(xs).arg(vs).arg(us);
            arg_opt(&mut lb, bs);
            lb.arg(ys);
            // SAFETY: arguments match `lowrank_small_*` in cuda/lowrank.cu; X, U, V, Y and bias
            // lengths were checked above, the plan chose this kernel only for b <= LR_MAXB with
            // b * r f32 within the dynamic shared memory given here.
            unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
            Ok(())
        }
        LowRankPath::Split { splits, chunk, qslices, bchunks, tu_grid, tu_cols } => {
            linear_split(be, (b, n, r, m), (splits, chunk, qslices, bchunks, tu_grid, tu_cols), xs, vs, us, bs, ys)
        }
        LowRankPath::Tc { xv, tu } => {
            // T = X V (f16 scratch, pitch r), then Y = T U^T + bias, both on tensor cores.
            let (Some(x16), Some(v16), Some(u16)) = (as_f16(xs), as_f16(vs), as_f16(us)) else {
                return Err(Error::backend("cuda", format!("{OP}: the tensor-core path needs f16 factors")));
            };
            let b16 = bs.map(|s| as_f16(s).ok_or_else(|| Error::backend("cuda", format!("{OP}: bias is not f16")))).transpose()?;
            let y16 = (ys as &mut dyn Any)
                .downcast_mut::<CudaSlice<f16>>()
                .ok_or_else(|| Error::backend("cuda", format!("{OP}: Y is not f16")))?;
            let mut t = be.scratch::<f16>(b * r)?;
            let (x_op, v_op) = (TcOperand { s: x16, ld: n, kmajor: true }, TcOperand { s: v16, ld: r, kmajor: false });
            hgemm_tc(be, OP, (b, r, n), x_op, v_op, &mut t, 1.0, 0.0, None, xv)?;
            let (t_op, u_op) = (TcOperand { s: &t, ld: r, kmajor: true }, TcOperand { s: u16, ld: r, kmajor: true });
            hgemm_tc(be, OP, (b, m, r), t_op, u_op, y16, 1.0, 0.0, b16, tu)
        }
        LowRankPath::Tiled => {
            // T = X V (f32 scratch), then Y = T U^T + bias, both with the tiled GEMM.
            let mut t = be.scratch_f32(b * r)?;
            gemm::<T, T, f32>(be, OP, (b, r, n), Operand { s: xs, s0: n, s1: 1 }, Operand { s: vs, s0: r, s1: 1 }, &mut t, 1.0, 0.0, None)?;
            gemm::<f32, T, T>(be, OP, (b, m, r), Operand { s: &t, s0: r, s1: 1 }, Operand { s: us, s0: 1, s1: r }, ys, 1.0, 0.0, bs)
        }
    }
}

/// The split small-batch path: `lowrank_xv_split` (T = X V, the reduction over n split across
/// the grid, partials added in a fixed order by the last block of each column slice), then
/// `lowrank_tu` (Y = T U^T + bias, output columns across the grid).
#[allow(clippy::too_many_arguments)]
fn linear_split<T: KernelFloat>(
    be: &CudaBackend,
    (b, n, r, m): (usize, usize, usize, usize),
    (splits, chunk, qslices, bchunks, tu_grid, tu_cols): (usize, usize, usize, usize, usize, usize),
    xs: &CudaSlice<T>,
    vs: &CudaSlice<T>,
    us: &CudaSlice<T>,
    bs: Option<&CudaSlice<T>>,
    ys: &mut CudaSlice<T>,
) -> Result<()> {
    const OP: &str = "lowrank_linear";
    if splits * chunk < n || chunk > super::plan::LRS_CHUNK || qslices * 32 < r || bchunks * LRS_B < b || tu_grid * tu_cols < m {
        return Err(Error::backend("cuda", format!("{OP}: inconsistent split plan for b = {b}, n = {n}, r = {r}, m = {m}")));
    }
    let mut part = be.scratch_f32(splits * b * r)?;
    let mut t = be.scratch_f32(b * r)?;
    let mut tickets = be.scratch_u32(qslices * bchunks)?;
    let (bi, ni, ri, mi) = (i32_arg(OP, "b", b)?, i32_arg(OP, "n", n)?, i32_arg(OP, "r", r)?, i32_arg(OP, "m", m)?);
    let (chi, coli) = (i32_arg(OP, "chunk", chunk)?, i32_arg(OP, "cols", tu_cols)?);
    let f = be.function("lowrank", &format!("lowrank_xv_split_{}", T::SUFFIX))?;
    let cfg = be.cfg(OP, (splits, qslices, bchunks), 256, 0)?;
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&bi).arg(&ni).arg(&ri).arg(&chi).arg(xs).arg(vs).arg(&mut part).arg(&mut tickets).arg(&mut t);
    // SAFETY: arguments match `lowrank_xv_split_*` in cuda/lowrank.cu; X holds b * n and V
    // n * r elements (checked by the caller), part splits * b * r, T b * r and the zeroed
    // tickets qslices * bchunks (allocated above); the grid is (splits, ceil(r / 32),
    // ceil(b / 8)) with splits * chunk >= n and chunk <= LRS_CHUNK (checked above).
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    let vec = r % 8 == 0 && be.aligned(us, 16);
    let name = format!("lowrank_tu{}_{}", if vec { "_vec" } else { "" }, T::SUFFIX);
    let f = be.function("lowrank", &name)?;
    let cfg = be.cfg(OP, (tu_grid, bchunks, 1), 256, (LRS_B * r * 4) as u32)?;
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&bi).arg(&ri).arg(&mi).arg(&coli).arg(&t).arg(us);
    arg_opt(&mut lb, bs);
    lb.arg(ys);
    // SAFETY: arguments match `lowrank_tu*` in cuda/lowrank.cu; T holds b * r f32, U m * r, Y
    // b * m and bias m elements (checked by the caller); the vector kernel only with r % 8 == 0
    // and U 16-byte aligned; the dynamic shared memory holds LRS_B * r f32; the grid covers m
    // columns (tu_grid * tu_cols >= m) and b rows (bchunks * LRS_B >= b).
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(())
}

fn reconstruct_typed<T: KernelFloat>(be: &CudaBackend, lr: &DeviceLowRank, w: &mut Tensor) -> Result<()> {
    const OP: &str = "lowrank_reconstruct";
    check_factors(OP, lr)?;
    expect_len(OP, "W", &w.buf, lr.m * lr.n)?;
    let us = sl::<T>(OP, "U", &lr.u.buf)?;
    let vs = sl::<T>(OP, "V", &lr.v.buf)?;
    let ws = sl_mut::<T>(OP, "W", &mut w.buf)?;
    let f16_tc = as_f16(us).is_some_and(|u| be.aligned(u, 16)) && as_f16(vs).is_some_and(|v| be.aligned(v, 16));
    if let Some(plan) = lowrank_reconstruct_path(&be.plan_gpu(), lr.m, lr.n, lr.r, f16_tc) {
        let (Some(u16), Some(v16)) = (as_f16(us), as_f16(vs)) else {
            return Err(Error::backend("cuda", format!("{OP}: the tensor-core path needs f16 factors")));
        };
        let w16 =
            (ws as &mut dyn Any).downcast_mut::<CudaSlice<f16>>().ok_or_else(|| Error::backend("cuda", format!("{OP}: W is not f16")))?;
        let (u_op, v_op) = (TcOperand { s: u16, ld: lr.r, kmajor: true }, TcOperand { s: v16, ld: lr.r, kmajor: true });
        return hgemm_tc(be, OP, (lr.m, lr.n, lr.r), u_op, v_op, w16, 1.0, 0.0, None, plan);
    }
    // W[i,j] = sum_q U[i,q] V[j,q]: A(i,q) = U[i*r + q], B(q,j) = V[j*r + q].
    gemm::<T, T, T>(be, OP, (lr.m, lr.n, lr.r), Operand { s: us, s0: lr.r, s1: 1 }, Operand { s: vs, s0: 1, s1: lr.r }, ws, 1.0, 0.0, None)
}

/// The backward pass as five launches of the strided GEMM: `P = X V` and `Q = dY U` into f32
/// scratch (`[b, r]`, small), then `dX = Q V^T`, `dU = dY^T P + beta dU`, `dV = X^T Q + beta dV`.
fn backward_typed<T: KernelFloat>(
    be: &CudaBackend,
    lr: &DeviceLowRank,
    x: &Tensor,
    dy: &Tensor,
    g: LowRankGrads<'_>,
    beta: f32,
) -> Result<()> {
    let LowRankGrads { dx, du, dv } = g;
    const OP: &str = "lowrank_backward";
    check_factors(OP, lr)?;
    let (b, n, r, m) = (x.rows, lr.n, lr.r, lr.m);
    expect_len(OP, "X", &x.buf, b * n)?;
    expect_len(OP, "dY", &dy.buf, b * m)?;
    expect_len(OP, "dU", &du.buf, m * r)?;
    expect_len(OP, "dV", &dv.buf, n * r)?;
    let xs = sl::<T>(OP, "X", &x.buf)?;
    let dys = sl::<T>(OP, "dY", &dy.buf)?;
    let us = sl::<T>(OP, "U", &lr.u.buf)?;
    let vs = sl::<T>(OP, "V", &lr.v.buf)?;
    let mut p = be.scratch_f32(b * r)?;
    let mut q = be.scratch_f32(b * r)?;
    // P(i,q) = sum_k X[i*n + k] V[k*r + q];  Q(i,q) = sum_j dY[i*m + j] U[j*r + q].
    gemm::<T, T, f32>(be, OP, (b, r, n), Operand { s: xs, s0: n, s1: 1 }, Operand { s: vs, s0: r, s1: 1 }, &mut p, 1.0, 0.0, None)?;
    gemm::<T, T, f32>(be, OP, (b, r, m), Operand { s: dys, s0: m, s1: 1 }, Operand { s: us, s0: r, s1: 1 }, &mut q, 1.0, 0.0, None)?;
    if let Some(dx) = dx {
        expect_len(OP, "dX", &dx.buf, b * n)?;
        let dxs = sl_mut::<T>(OP, "dX", &mut dx.buf)?;
        // dX(i,k) = sum_q Q[i*r + q] V[k*r + q]: B(q,k) = V[k*r + q].
        gemm::<f32, T, T>(be, OP, (b, n, r), Operand { s: &q, s0: r, s1: 1 }, Operand { s: vs, s0: 1, s1: r }, dxs, 1.0, 0.0, None)?;
    }
    // dU(j,q) = sum_i dY[i*m + j] P[i*r + q]: A(j,i) = dY[i*m + j] (a transposed view).
    let dus = sl_mut::<T>(OP, "dU", &mut du.buf)?;
    gemm::<T, f32, T>(be, OP, (m, r, b), Operand { s: dys, s0: 1, s1: m }, Operand { s: &p, s0: r, s1: 1 }, dus, 1.0, beta, None)?;
    // dV(k,q) = sum_i X[i*n + k] Q[i*r + q].
    let dvs = sl_mut::<T>(OP, "dV", &mut dv.buf)?;
    gemm::<T, f32, T>(be, OP, (n, r, b), Operand { s: xs, s0: 1, s1: n }, Operand { s: &q, s0: r, s1: 1 }, dvs, 1.0, beta, None)
}

impl LowRankOps for CudaBackend {
    fn lowrank_linear(&self, _: Checked, lr: &DeviceLowRank, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()> {
        let be = self;
        float_dispatch!("lowrank_linear", "the factors", lr.dtype(), linear_typed(be, lr, x, bias, y))
    }

    fn lowrank_reconstruct(&self, _: Checked, lr: &DeviceLowRank, w: &mut Tensor) -> Result<()> {
        let be = self;
        float_dispatch!("lowrank_reconstruct", "the factors", lr.dtype(), reconstruct_typed(be, lr, w))
    }

    fn frobenius_decay(&self, _: Checked, lr: &DeviceLowRank, c: f32, du: &mut Tensor, dv: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "frobenius_decay";
        check_factors(OP, lr)?;
        let (m, n, r) = (lr.m, lr.n, lr.r);
        expect_len(OP, "dU", &du.buf, m * r)?;
        expect_len(OP, "dV", &dv.buf, n * r)?;
        let us = sl::<f32>(OP, "U", &lr.u.buf)?;
        let vs = sl::<f32>(OP, "V", &lr.v.buf)?;
        let mut gram = be.scratch_f32(r * r)?;
        // dU += c U (V^T V), then dV += c V (U^T U): G = g^T g with A(p,i) = g[i*r + p],
        // B(i,q) = g[i*r + q] (g of g_rows rows), then d += c f G (f of f_rows rows).
        for (g, g_rows, f, f_rows, d, what) in [(vs, n, us, m, &mut du.buf, "dU"), (us, m, vs, n, &mut dv.buf, "dV")] {
            let (g_t, g_op) = (Operand { s: g, s0: 1, s1: r }, Operand { s: g, s0: r, s1: 1 });
            gemm::<f32, f32, f32>(be, OP, (r, r, g_rows), g_t, g_op, &mut gram, 1.0, 0.0, None)?;
            let (f_op, gram_op) = (Operand { s: f, s0: r, s1: 1 }, Operand { s: &gram, s0: r, s1: 1 });
            gemm::<f32, f32, f32>(be, OP, (f_rows, r, r), f_op, gram_op, sl_mut::<f32>(OP, what, d)?, c, 1.0, None)?;
        }
        Ok(())
    }

    fn lowrank_backward(&self, _: Checked, lr: &DeviceLowRank, x: &Tensor, dy: &Tensor, g: LowRankGrads<'_>, beta: f32) -> Result<()> {
        float_dispatch!("lowrank_backward", "the factors", lr.dtype(), backward_typed(self, lr, x, dy, g, beta))
    }
}
