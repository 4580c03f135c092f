//! Low-rank ops on wgpu: `lowrank_linear`, `lowrank_reconstruct`, `frobenius_decay`,
//! `lowrank_backward` (kernels in `shaders/lowrank.wgsl`).

use crate::backend::{Checked, LowRankOps};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{DeviceLowRank, Tensor};

use super::context::WgpuBackend;
use super::pipeline::{fbits, u32_param, Bind, Dispatch, Groups, Shader};

/// The low-rank kernels; trusted: the bounds argument is at the top of the file and above
/// each kernel.
pub(crate) static LOWRANK: Shader = Shader { name: "lowrank", source: include_str!("../../shaders/lowrank.wgsl"), trusted: true };

/// Output tile of the GEMM kernel.
const TILE: u32 = 64;
/// Rows of X per workgroup of the fused kernel.
const FUSED_ROWS: u32 = 8;
/// Largest rank the fused kernel keeps in workgroup memory.
const FUSED_MAX_R: usize = 256;
/// Fewest row tiles for which the fused kernel fills a device (else two GEMM passes).
const FUSED_MIN_TILES: usize = 32;

const BETA_ZERO: u32 = 1;
const HAS_BIAS: u32 = 2;
const A_F16: u32 = 4;
const B_F16: u32 = 8;
const BIAS_F16: u32 = 16;

/// A strided operand: for A, element `(row i, depth k)` at `i * si + k * sk`; for B,
/// element `(depth k, column j)` at `k * si + j * sk`.
#[derive(Clone, Copy)]
struct Operand<'a> {
    buf: &'a wgpu::Buffer,
    si: u32,
    sk: u32,
    f16: bool,
}

/// `C[m, n] = alpha * A B (+ bias) + beta * C`, C f32 row-major with leading dimension `n`.
#[allow(clippy::too_many_arguments)]
fn gemm<'a>(
    op: &'static str,
    (m, n, k): (usize, usize, usize),
    a: Operand<'a>,
    b: Operand<'a>,
    bias: Option<(&'a wgpu::Buffer, bool)>,
    c: &'a wgpu::Buffer,
    alpha: f32,
    beta: f32,
) -> Result<Dispatch<'a>> {
    let m32 = u32_param(op, "rows", m)?;
    let n32 = u32_param(op, "columns", n)?;
    let k32 = u32_param(op, "depth", k)?;
    u32_param(op, "output elements", m.saturating_mul(n))?;
    let tiles_n = n32.div_ceil(TILE);
    let tiles = m32.div_ceil(TILE) as u64 * tiles_n as u64;
    let tiles32 = u32::try_from(tiles).map_err(|_| Error::shape(op, format!("{tiles} tiles exceed 32-bit indexing")))?;
    let mut flags = 0;
    if beta == 0.0 {
        flags |= BETA_ZERO;
    }
    if a.f16 {
        flags |= A_F16;
    }
    if b.f16 {
        flags |= B_F16;
    }
    // An unused bias binding still needs a buffer: bind A again (read-only).
    let bias_buf = match bias {
        Some((buf, f16)) => {
            flags |= HAS_BIAS;
            if f16 {
                flags |= BIAS_F16;
            }
            buf
        }
        None => a.buf,
    };
    Ok(Dispatch {
        shader: &LOWRANK,
        entry: "gemm",
        constants: vec![],
        binds: vec![Bind::Read(a.buf), Bind::Read(b.buf), Bind::Read(bias_buf), Bind::Write(c)],
        params: vec![m32, n32, k32, a.si, a.sk, b.si, b.sk, n32, tiles_n, tiles32, flags, 0, fbits(alpha), fbits(beta), 0, 0],
        groups: Groups::Linear(tiles),
    })
}

/// Packs an f32 scratch of `count` elements into an f16 buffer.
fn pack<'a>(op: &'static str, src: &'a wgpu::Buffer, dst: &'a wgpu::Buffer, count: usize) -> Result<Dispatch<'a>> {
    let count32 = u32_param(op, "elements", count)?;
    let words = count32.div_ceil(2);
    Ok(Dispatch {
        shader: &LOWRANK,
        entry: "pack_f16",
        constants: vec![],
        binds: vec![Bind::Read(src), Bind::Write(dst)],
        params: vec![count32, words, 0, 0],
        groups: Groups::Linear(words.div_ceil(64) as u64),
    })
}

/// Packs an f32 scratch of `count` elements into an f16 buffer as `dst = src + beta * dst`.
fn pack_beta<'a>(op: &'static str, src: &'a wgpu::Buffer, dst: &'a wgpu::Buffer, count: usize, beta: f32) -> Result<Dispatch<'a>> {
    let count32 = u32_param(op, "elements", count)?;
    let words = count32.div_ceil(2);
    Ok(Dispatch {
        shader: &LOWRANK,
        entry: "pack_f16_beta",
        constants: vec![],
        binds: vec![Bind::Read(src), Bind::Write(dst)],
        params: vec![count32, words, fbits(beta), 0],
        groups: Groups::Linear(words.div_ceil(64) as u64),
    })
}

fn is_f16(op: &'static str, d: DType) -> Result<bool> {
    match d {
        DType::F32 => Ok(false),
        DType::F16 => Ok(true),
        d => Err(Error::dtype(op, format!("low-rank factors of {d}"))),
    }
}

impl LowRankOps for WgpuBackend {
    fn lowrank_linear(&self, _: Checked, lr: &DeviceLowRank, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "lowrank_linear";
        let f16 = is_f16(OP, lr.dtype())?;
        let (b, n, m, r) = (x.rows, lr.n, lr.m, lr.r);
        let (b32, n32, m32, r32) = (u32_param(OP, "b", b)?, u32_param(OP, "n", n)?, u32_param(OP, "m", m)?, u32_param(OP, "r", r)?);
        u32_param(OP, "Y elements", b.saturating_mul(m))?;
        u32_param(OP, "X elements", b.saturating_mul(n))?;
        let xb = be.buf(&x.buf)?;
        let ub = be.buf(&lr.u.buf)?;
        let vb = be.buf(&lr.v.buf)?;
        let yb = be.buf(&y.buf)?;
        let biasb = match bias {
            Some(t) => Some(be.buf(&t.buf)?),
            None => None,
        };
        // f16 results go through an f32 scratch (two values share an output word).
        let yscratch = if f16 { Some(be.scratch("lowrank_linear output", (b * m) as u64 * 4)?) } else { None };
        let yout: &wgpu::Buffer = yscratch.as_ref().unwrap_or(yb);
        let row_tiles = b.div_ceil(FUSED_ROWS as usize);
        if r <= FUSED_MAX_R && row_tiles >= FUSED_MIN_TILES {
            let mut flags = if f16 { A_F16 } else { 0 };
            if biasb.is_some() {
                flags |= HAS_BIAS;
            }
            let groups = row_tiles as u32;
            let mut ds = vec![Dispatch {
                shader: &LOWRANK,
                entry: "lowrank_fused",
                constants: vec![],
                binds: vec![Bind::Read(xb), Bind::Read(vb), Bind::Read(ub), Bind::Read(biasb.unwrap_or(ub)), Bind::Write(yout)],
                params: vec![b32, n32, r32, m32, flags, groups, 0, 0],
                groups: Groups::Linear(groups as u64),
            }];
            if f16 {
                ds.push(pack(OP, yout, yb, b * m)?);
            }
            return be.run(OP, &ds);
        }
        // Two passes: T = X V into an f32 scratch, then Y = T U^T + bias.
        let t = be.scratch("lowrank_linear T", (b * r) as u64 * 4)?;
        let d1 =
            gemm(OP, (b, r, n), Operand { buf: xb, si: n32, sk: 1, f16 }, Operand { buf: vb, si: r32, sk: 1, f16 }, None, &t, 1.0, 0.0)?;
        let d2 = gemm(
            OP,
            (b, m, r),
            Operand { buf: &t, si: r32, sk: 1, f16: false },
            Operand { buf: ub, si: 1, sk: r32, f16 },
            biasb.map(|bb| (bb, f16)),
            yout,
            1.0,
            0.0,
        )?;
        let mut ds = vec![d1, d2];
        if f16 {
            ds.push(pack(OP, yout, yb, b * m)?);
        }
        be.run(OP, &ds)
    }

    fn lowrank_reconstruct(&self, _: Checked, lr: &DeviceLowRank, w: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "lowrank_reconstruct";
        let f16 = is_f16(OP, lr.dtype())?;
        let (m, n, r) = (lr.m, lr.n, lr.r);
        let r32 = u32_param(OP, "r", r)?;
        let ub = be.buf(&lr.u.buf)?;
        let vb = be.buf(&lr.v.buf)?;
        let wb = be.buf(&w.buf)?;
        let scratch = if f16 { Some(be.scratch("lowrank_reconstruct output", (m * n) as u64 * 4)?) } else { None };
        let out: &wgpu::Buffer = scratch.as_ref().unwrap_or(wb);
        // W = U V^T: A = U (row-major), B(k, j) = V[j, k].
        let d =
            gemm(OP, (m, n, r), Operand { buf: ub, si: r32, sk: 1, f16 }, Operand { buf: vb, si: 1, sk: r32, f16 }, None, out, 1.0, 0.0)?;
        let mut ds = vec![d];
        if f16 {
            ds.push(pack(OP, out, wb, m * n)?);
        }
        be.run(OP, &ds)
    }

    fn frobenius_decay(&self, _: Checked, lr: &DeviceLowRank, c: f32, du: &mut Tensor, dv: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "frobenius_decay";
        let (m, n, r) = (lr.m, lr.n, lr.r);
        let r32 = u32_param(OP, "r", r)?;
        u32_param(OP, "r * r", r.saturating_mul(r))?;
        let ub = be.buf(&lr.u.buf)?;
        let vb = be.buf(&lr.v.buf)?;
        let dub = be.buf(&du.buf)?;
        let dvb = be.buf(&dv.buf)?;
        let gv = be.scratch("frobenius V^T V", (r * r) as u64 * 4)?;
        let gu = be.scratch("frobenius U^T U", (r * r) as u64 * 4)?;
        let f = |buf| Operand { buf, si: r32, sk: 1, f16: false };
        // Gram matrices: A(i, k) = X[k, i] (X^T), B(k, j) = X[k, j].
        let ds = vec![
            gemm(OP, (r, r, n), Operand { buf: vb, si: 1, sk: r32, f16: false }, f(vb), None, &gv, 1.0, 0.0)?,
            gemm(OP, (r, r, m), Operand { buf: ub, si: 1, sk: r32, f16: false }, f(ub), None, &gu, 1.0, 0.0)?,
            // dU += c U (V^T V), dV += c V (U^T U).
            gemm(OP, (m, r, r), f(ub), f(&gv), None, dub, c, 1.0)?,
            gemm(OP, (n, r, r), f(vb), f(&gu), None, dvb, c, 1.0)?,
        ];
        be.run(OP, &ds)
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
        let be = self;
        const OP: &str = "lowrank_backward";
        let f16 = is_f16(OP, lr.dtype())?;
        let (b, n, m, r) = (x.rows, lr.n, lr.m, lr.r);
        let (n32, m32, r32) = (u32_param(OP, "n", n)?, u32_param(OP, "m", m)?, u32_param(OP, "r", r)?);
        for (what, len) in [("X elements", b.saturating_mul(n)), ("dY elements", b.saturating_mul(m)), ("P elements", b.saturating_mul(r))]
        {
            u32_param(OP, what, len)?;
        }
        let xb = be.buf(&x.buf)?;
        let dyb = be.buf(&dy.buf)?;
        let ub = be.buf(&lr.u.buf)?;
        let vb = be.buf(&lr.v.buf)?;
        let dub = be.buf(&du.buf)?;
        let dvb = be.buf(&dv.buf)?;
        let dxb = match dx.as_deref() {
            Some(t) => Some(be.buf(&t.buf)?),
            None => None,
        };
        // P = X V and Q = dY U stay in f32 scratch ([b, r], small).
        let p = be.scratch("lowrank_backward P = X V", (b * r) as u64 * 4)?;
        let q = be.scratch("lowrank_backward Q = dY U", (b * r) as u64 * 4)?;
        // f16 results go through f32 scratch (two values share an output word), then pack.
        let scratch = |label: &str, count: usize| if f16 { be.scratch(label, count as u64 * 4).map(Some) } else { Ok(None) };
        let dx_s = if dxb.is_some() { scratch("lowrank_backward dX", b * n)? } else { None };
        let du_s = scratch("lowrank_backward dU", m * r)?;
        let dv_s = scratch("lowrank_backward dV", n * r)?;
        // Into scratch the GEMM overwrites (beta 0); pack_f16_beta applies beta afterwards.
        let gemm_beta = if f16 { 0.0 } else { beta };
        let t = |buf, si, sk, f16| Operand { buf, si, sk, f16 };
        let mut ds = vec![
            // P(i, q) = X[i*n + k] V[k*r + q];  Q(i, q) = dY[i*m + j] U[j*r + q].
            gemm(OP, (b, r, n), t(xb, n32, 1, f16), t(vb, r32, 1, f16), None, &p, 1.0, 0.0)?,
            gemm(OP, (b, r, m), t(dyb, m32, 1, f16), t(ub, r32, 1, f16), None, &q, 1.0, 0.0)?,
        ];
        if let Some(dxb) = dxb {
            // dX(i, k) = Q[i*r + q] V[k*r + q] (overwritten).
            let out = dx_s.as_ref().unwrap_or(dxb);
            ds.push(gemm(OP, (b, n, r), t(&q, r32, 1, false), t(vb, 1, r32, f16), None, out, 1.0, 0.0)?);
            if f16 {
                ds.push(pack(OP, out, dxb, b * n)?);
            }
        }
        // dU(j, q) = dY[i*m + j] P[i*r + q] (A is dY^T: stride 1 along j, m along i).
        let out = du_s.as_ref().unwrap_or(dub);
        ds.push(gemm(OP, (m, r, b), t(dyb, 1, m32, f16), t(&p, r32, 1, false), None, out, 1.0, gemm_beta)?);
        // dV(k, q) = X[i*n + k] Q[i*r + q].
        let out_v = dv_s.as_ref().unwrap_or(dvb);
        ds.push(gemm(OP, (n, r, b), t(xb, 1, n32, f16), t(&q, r32, 1, false), None, out_v, 1.0, gemm_beta)?);
        if f16 {
            for (src, dst, count) in [(out, dub, m * r), (out_v, dvb, n * r)] {
                ds.push(if beta == 0.0 { pack(OP, src, dst, count)? } else { pack_beta(OP, src, dst, count, beta)? });
            }
        }
        be.run(OP, &ds)
    }
}
