//! CUDA launchers of the low-rank ops (kernels in `cuda/lowrank.cu`).

use crate::backend::{Checked, LowRankOps};
use cudarc::driver::{CudaSlice, PushKernelArg};

use super::backend::{drv, float_dispatch, i32_arg, sl, sl_mut, CudaBackend, KernelFloat};
use super::sparse::expect_len;
use crate::error::{Error, Result};
use crate::tensor::*;

/// Largest batch of the fused small-batch kernel (`LR_MAXB` in lowrank.cu).
const LR_MAXB: usize = 8;
/// Shared memory the fused kernel may use for `T = X V` (the default per-block limit).
const LR_SMEM: usize = 48 * 1024;

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
    let null: u64 = 0;
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&mi).arg(&ni).arg(&ki).arg(a.s).arg(&sai).arg(&sak).arg(b.s).arg(&sbk).arg(&sbj).arg(c).arg(&alpha).arg(&beta);
    match bias {
        Some(x) => lb.arg(x),
        None => lb.arg(&null),
    };
    // SAFETY: arguments match `gemm_*` in cuda/lowrank.cu (a null bias is a zero pointer the
    // kernel tests); the extents of A, B, C and bias were checked above.
    unsafe { lb.launch(cfg) }.map_err(drv(op))?;
    Ok(())
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
    let smem = b * r * 4;
    if b <= LR_MAXB && smem <= LR_SMEM {
        // Fused: T = X V in shared memory. Every block recomputes T (it reads V once, from L2),
        // so the number of blocks trades V re-reads against parallelism over m.
        let blocks = (4 * m).div_ceil(n).clamp(1, 2 * be.sm_count().max(1)).min(m.div_ceil(8)).max(1);
        let cols = m.div_ceil(blocks);
        let grid = m.div_ceil(cols);
        let f = be.function("lowrank", &format!("lowrank_small_{}", T::SUFFIX))?;
        let cfg = be.cfg(OP, (grid, 1, 1), 256, smem as u32)?;
        let (bi, ni, ri, mi, ci) =
            (i32_arg(OP, "b", b)?, i32_arg(OP, "n", n)?, i32_arg(OP, "r", r)?, i32_arg(OP, "m", m)?, i32_arg(OP, "cols", cols)?);
        let null: u64 = 0;
        let mut lb = be.stream().launch_builder(&f);
        lb.arg(&bi).arg(&ni).arg(&ri).arg(&mi).arg(&ci).arg(xs).arg(vs).arg(us);
        match bs {
            Some(s) => lb.arg(s),
            None => lb.arg(&null),
        };
        lb.arg(ys);
        // SAFETY: arguments match `lowrank_small_*` in cuda/lowrank.cu; X, U, V, Y and bias
        // lengths were checked above, b <= LR_MAXB and the dynamic shared memory holds b * r f32.
        unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
        return Ok(());
    }
    // Large batch: T = X V (f32 scratch), then Y = T U^T + bias, both with the tiled GEMM.
    let mut t = be.scratch_f32(b * r)?;
    gemm::<T, T, f32>(be, OP, (b, r, n), Operand { s: xs, s0: n, s1: 1 }, Operand { s: vs, s0: r, s1: 1 }, &mut t, 1.0, 0.0, None)?;
    gemm::<f32, T, T>(be, OP, (b, m, r), Operand { s: &t, s0: r, s1: 1 }, Operand { s: us, s0: 1, s1: r }, ys, 1.0, 0.0, bs)
}

fn reconstruct_typed<T: KernelFloat>(be: &CudaBackend, lr: &DeviceLowRank, w: &mut Tensor) -> Result<()> {
    const OP: &str = "lowrank_reconstruct";
    check_factors(OP, lr)?;
    expect_len(OP, "W", &w.buf, lr.m * lr.n)?;
    let us = sl::<T>(OP, "U", &lr.u.buf)?;
    let vs = sl::<T>(OP, "V", &lr.v.buf)?;
    let ws = sl_mut::<T>(OP, "W", &mut w.buf)?;
    // W[i,j] = sum_q U[i,q] V[j,q]: A(i,q) = U[i*r + q], B(q,j) = V[j*r + q].
    gemm::<T, T, T>(be, OP, (lr.m, lr.n, lr.r), Operand { s: us, s0: lr.r, s1: 1 }, Operand { s: vs, s0: 1, s1: lr.r }, ws, 1.0, 0.0, None)
}

/// The backward pass as five launches of the strided GEMM: `P = X V` and `Q = dY U` into f32
/// scratch (`[b, r]`, small), then `dX = Q V^T`, `dU = dY^T P + beta dU`, `dV = X^T Q + beta dV`.
#[allow(clippy::too_many_arguments)]
fn backward_typed<T: KernelFloat>(
    be: &CudaBackend,
    lr: &DeviceLowRank,
    x: &Tensor,
    dy: &Tensor,
    dx: Option<&mut Tensor>,
    du: &mut Tensor,
    dv: &mut Tensor,
    beta: f32,
) -> Result<()> {
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
        // G = V^T V: A(p,i) = V[i*r + p], B(i,q) = V[i*r + q]; then dU += c U G.
        gemm::<f32, f32, f32>(
            be,
            OP,
            (r, r, n),
            Operand { s: vs, s0: 1, s1: r },
            Operand { s: vs, s0: r, s1: 1 },
            &mut gram,
            1.0,
            0.0,
            None,
        )?;
        let dus = sl_mut::<f32>(OP, "dU", &mut du.buf)?;
        gemm::<f32, f32, f32>(be, OP, (m, r, r), Operand { s: us, s0: r, s1: 1 }, Operand { s: &gram, s0: r, s1: 1 }, dus, c, 1.0, None)?;
        // G = U^T U; dV += c V G.
        gemm::<f32, f32, f32>(
            be,
            OP,
            (r, r, m),
            Operand { s: us, s0: 1, s1: r },
            Operand { s: us, s0: r, s1: 1 },
            &mut gram,
            1.0,
            0.0,
            None,
        )?;
        let dvs = sl_mut::<f32>(OP, "dV", &mut dv.buf)?;
        gemm::<f32, f32, f32>(be, OP, (n, r, r), Operand { s: vs, s0: r, s1: 1 }, Operand { s: &gram, s0: r, s1: 1 }, dvs, c, 1.0, None)
    }

    fn lowrank_backward(
        &self,
        _: Checked,
        lr: &DeviceLowRank,
        x: &Tensor,
        dy: &Tensor,
        dx: Option<&mut Tensor>,
        du: &mut Tensor,
        dv: &mut Tensor,
        beta: f32,
    ) -> Result<()> {
        float_dispatch!("lowrank_backward", "the factors", lr.dtype(), backward_typed(self, lr, x, dy, dx, du, dv, beta))
    }
}
