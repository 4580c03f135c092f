//! Low-rank ops on wgpu: `lowrank_linear`, `lowrank_reconstruct`, `frobenius_decay`,
//! `lowrank_backward` (kernels in `shaders/lowrank.wgsl`).
//!
//! Paths (`plan.rs`): `lowrank_linear` runs the three split kernels for b <= 32 under the fast
//! choice (split-K over n so that one row fills the device), the fused kernel for large
//! batches of small rank, else two strided GEMMs, the first one (T = X V) split over n where
//! its tiles would not fill the device (as `lowrank_backward`'s P = X V and Q = dY U); every strided GEMM takes its tile (override
//! `TILE`: 64, or 32 where the fast choice sees few tiles) from `plan::gemm_tile`.

use crate::backend::{Checked, LowRankGrads, LowRankOps};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{DeviceLowRank, Tensor};

use super::context::WgpuBackend;
use super::dispatch::{expect_len, u32_param, wgsl_params, Bind, Dispatch, Groups, WgslParams};
use super::pack::Output;
use super::pipeline::{Shader, PRELUDE};
use super::plan::{gemm_tile, lowrank_linear_path, xv_split, Limits, LowRankPath, SplitPlan};

/// The low-rank kernels (prelude in front; each operand's dtype is a flag bit, so one module
/// serves f32 and f16); trusted: the bounds argument is at the top of the file and above each
/// kernel, and every buffer is checked below.
pub(super) static LOWRANK: Shader = Shader::family("lowrank", "", &[PRELUDE], include_str!("../../shaders/lowrank.wgsl")).with_params(&[
    GemmParams::WGSL,
    FusedParams::WGSL,
    SplitParams::WGSL,
]);

/// Output tile of the GEMM kernel under the simple choice (the default of override `TILE`).
const TILE: u32 = 64;

const BETA_ZERO: u32 = 1;
const HAS_BIAS: u32 = 2;
const A_F16: u32 = 4;
const B_F16: u32 = 8;
const BIAS_F16: u32 = 16;

wgsl_params! {
    /// Parameters of `gemm`.
    struct GemmParams {
        m: u32,
        n: u32,
        k: u32,
        asi: u32,
        ask: u32,
        bsk: u32,
        bsj: u32,
        ldc: u32,
        tiles_n: u32,
        tiles: u32,
        flags: u32,
        pad0: u32,
        alpha: f32,
        beta: f32,
        pad1: u32,
        pad2: u32,
    }
}

wgsl_params! {
    /// Parameters of `lowrank_fused`.
    struct FusedParams {
        b: u32,
        n: u32,
        r: u32,
        m: u32,
        flags: u32,
        groups: u32,
        pad0: u32,
        pad1: u32,
    }
}

wgsl_params! {
    /// Parameters of the split kernels (`lowrank_xv_split`, `lowrank_split_sum`,
    /// `lowrank_tu_split`); `groups` is the launch's workgroup count.
    struct SplitParams {
        b: u32,
        n: u32,
        r: u32,
        m: u32,
        flags: u32,
        groups: u32,
        splits: u32,
        chunk: u32,
        qslices: u32,
        tu_groups: u32,
        pad0: u32,
        pad1: u32,
    }
}

/// The device limits the plans read.
pub(super) fn limits(be: &WgpuBackend) -> Limits {
    Limits {
        wg_storage: be.limits.max_compute_workgroup_storage_size as usize,
        invocations: be.limits.max_compute_invocations_per_workgroup as usize,
    }
}

/// A strided operand: for A, element `(row i, depth k)` at `i * si + k * sk`; for B,
/// element `(depth k, column j)` at `k * si + j * sk`.
#[derive(Clone, Copy)]
pub(super) struct Operand<'a> {
    pub(super) buf: &'a wgpu::Buffer,
    pub(super) si: u32,
    pub(super) sk: u32,
    pub(super) f16: bool,
}

/// `C[m, n] = alpha * A B (+ bias) + beta * C`, C f32 row-major with leading dimension `n`,
/// on the simple kernels' 64 x 64 tile.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm<'a>(
    op: &'static str,
    mnk: (usize, usize, usize),
    a: Operand<'a>,
    b: Operand<'a>,
    bias: Option<(&'a wgpu::Buffer, bool)>,
    c: &'a wgpu::Buffer,
    alpha: f32,
    beta: f32,
) -> Result<Dispatch<'a>> {
    gemm_on(None, op, mnk, a, b, bias, c, alpha, beta)
}

/// As [`gemm`] on the tile (32 or 64: override `TILE`) that [`gemm_tile`] picks for the
/// backend `be` and the shape, or on the 64 x 64 tile when `be` is `None`.
#[allow(clippy::too_many_arguments)]
fn gemm_on<'a>(
    be: Option<&WgpuBackend>,
    op: &'static str,
    (m, n, k): (usize, usize, usize),
    a: Operand<'a>,
    b: Operand<'a>,
    bias: Option<(&'a wgpu::Buffer, bool)>,
    c: &'a wgpu::Buffer,
    alpha: f32,
    beta: f32,
) -> Result<Dispatch<'a>> {
    let tile = be.map_or(TILE, |be| gemm_tile(be.fast(), &limits(be), m, n));
    let m32 = u32_param(op, "rows", m)?;
    let n32 = u32_param(op, "columns", n)?;
    let k32 = u32_param(op, "depth", k)?;
    u32_param(op, "output elements", m.saturating_mul(n))?;
    let tiles_n = n32.div_ceil(tile);
    let tiles = m32.div_ceil(tile) as u64 * tiles_n as u64;
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
        constants: if tile == TILE { vec![] } else { vec![("TILE", tile as f64)] },
        binds: vec![Bind::Read(a.buf), Bind::Read(b.buf), Bind::Read(bias_buf), Bind::Write(c)],
        params: GemmParams {
            m: m32,
            n: n32,
            k: k32,
            asi: a.si,
            ask: a.sk,
            bsk: b.si,
            bsj: b.sk,
            ldc: n32,
            tiles_n,
            tiles: tiles32,
            flags,
            alpha,
            beta,
            ..Default::default()
        }
        .bytes(),
        groups: Groups::Linear(tiles),
    })
}

/// The output of a GEMM-based op: f32 written directly, f16 through an f32 scratch of
/// `count` elements and the pack pass (two values share an output word).
pub(super) fn output<'a>(be: &WgpuBackend, label: &str, dst: &'a wgpu::Buffer, count: usize, f16: bool) -> Result<Output<'a>> {
    if f16 {
        Output::packed(be, label, dst, count, 1.0, 0.0)
    } else {
        Ok(Output::direct(dst))
    }
}

/// Checks the factors: `U [m, r]`, `V [n, r]`.
fn check_factors(op: &'static str, lr: &DeviceLowRank) -> Result<()> {
    expect_len(op, "U", &lr.u.buf, lr.m * lr.r)?;
    expect_len(op, "V", &lr.v.buf, lr.n * lr.r)
}

fn is_f16(op: &'static str, d: DType) -> Result<bool> {
    match d {
        DType::F32 => Ok(false),
        DType::F16 => Ok(true),
        d => Err(Error::dtype(op, format!("low-rank factors of {d}"))),
    }
}

/// The buffers of the split path.
struct SplitBufs<'a> {
    x: &'a wgpu::Buffer,
    v: &'a wgpu::Buffer,
    u: &'a wgpu::Buffer,
    bias: Option<&'a wgpu::Buffer>,
    y: &'a wgpu::Buffer,
}

/// The f32 scratch of the split path: the partials `[splits, b, r]` (none for one split,
/// whose partials are T) and T `[b, r]`.
fn split_scratch(be: &WgpuBackend, plan: &SplitPlan, b: usize, r: usize) -> Result<(Option<wgpu::Buffer>, wgpu::Buffer)> {
    let br = b.checked_mul(r).ok_or_else(|| Error::shape("lowrank_linear", "b * r overflows"))?;
    let parts = plan.splits.checked_mul(br).ok_or_else(|| Error::shape("lowrank_linear", "splits * b * r overflows"))?;
    u32_param("lowrank_linear", "partials", parts)?;
    let part = if plan.splits > 1 { Some(be.scratch("lowrank_linear partials", parts as u64 * 4)?) } else { None };
    Ok((part, be.scratch("lowrank_linear T", br as u64 * 4)?))
}

/// The launches of the split path (`plan.rs`): partials of T = X V over splits of n into
/// `part`, their sum into `t` (one split: straight into `t`, `part` is `None`), then
/// (`with_tu`) Y = T U^T + bias into `bufs.y`.
fn split_dispatches<'a>(
    op: &'static str,
    plan: &SplitPlan,
    dims: SplitParams,
    bufs: &SplitBufs<'a>,
    part: Option<&'a wgpu::Buffer>,
    t: &'a wgpu::Buffer,
    with_tu: bool,
) -> Result<Vec<Dispatch<'a>>> {
    let p = |what, x| u32_param(op, what, x);
    let xv_groups = p("split workgroups", plan.xv_groups())?;
    let common = SplitParams {
        splits: p("splits", plan.splits)?,
        chunk: p("chunk", plan.chunk)?,
        qslices: p("rank slices", plan.qslices)?,
        tu_groups: p("column groups", plan.tu_groups)?,
        ..dims
    };
    let br = (dims.b as u64) * (dims.r as u64);
    let sum_groups = br.div_ceil(64);
    let d = |entry, constants, binds, groups: u32| Dispatch {
        shader: &LOWRANK,
        entry,
        constants,
        binds,
        params: SplitParams { groups, ..common }.bytes(),
        groups: Groups::Linear(groups as u64),
    };
    // Bindings as the file's: 1 X, 2 V, 3 bias, 4 output, 5 U (unused ones get a read buffer).
    let xv_out = part.unwrap_or(t);
    let mut ds = vec![d(
        "lowrank_xv_split",
        vec![],
        vec![Bind::Read(bufs.x), Bind::Read(bufs.v), Bind::Read(bufs.x), Bind::Write(xv_out)],
        xv_groups,
    )];
    if let Some(part) = part {
        let sum = p("sum workgroups", sum_groups as usize)?;
        ds.push(d("lowrank_split_sum", vec![], vec![Bind::Read(part), Bind::Read(part), Bind::Read(part), Bind::Write(t)], sum));
    }
    if with_tu {
        ds.push(d(
            "lowrank_tu_split",
            vec![("TRCAP", plan.rcap as f64)],
            vec![Bind::Read(t), Bind::Read(bufs.v), Bind::Read(bufs.bias.unwrap_or(bufs.u)), Bind::Write(bufs.y), Bind::Read(bufs.u)],
            p("output workgroups", plan.tu_total())?,
        ));
    }
    Ok(ds)
}

impl LowRankOps for WgpuBackend {
    fn lowrank_linear(&self, _: Checked, lr: &DeviceLowRank, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "lowrank_linear";
        let f16 = is_f16(OP, lr.dtype())?;
        let (b, n, m, r) = (x.rows, lr.n, lr.m, lr.r);
        check_factors(OP, lr)?;
        expect_len(OP, "X", &x.buf, b * n)?;
        expect_len(OP, "Y", &y.buf, b * m)?;
        if let Some(t) = bias {
            expect_len(OP, "bias", &t.buf, m)?;
        }
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
        let out = output(be, "lowrank_linear output", yb, b * m, f16)?;
        let yout = out.target();
        let mut flags = if f16 { A_F16 } else { 0 };
        if biasb.is_some() {
            flags |= HAS_BIAS;
        }
        let path = lowrank_linear_path(be.fast(), &limits(be), b, n, r, m);
        if let LowRankPath::Fused { groups } = path {
            let groups = u32_param(OP, "row tiles", groups)?;
            let params = FusedParams { b: b32, n: n32, r: r32, m: m32, flags, groups, ..Default::default() };
            let mut ds = vec![Dispatch {
                shader: &LOWRANK,
                entry: "lowrank_fused",
                constants: vec![],
                binds: vec![Bind::Read(xb), Bind::Read(vb), Bind::Read(biasb.unwrap_or(ub)), Bind::Write(yout), Bind::Read(ub)],
                params: params.bytes(),
                groups: Groups::Linear(groups as u64),
            }];
            out.finish(OP, &mut ds)?;
            return be.run(OP, &ds);
        }
        // T = X V into an f32 scratch: by the split kernels (Split: they also compute Y), else
        // by the strided GEMM; then (SplitTiled, Tiled) Y = T U^T + bias by the strided GEMM.
        let (split, y_by_split) = match &path {
            LowRankPath::Split(plan) => (Some(plan), true),
            LowRankPath::SplitTiled(plan) => (Some(plan), false),
            _ => (None, false),
        };
        let (part, t) = match split {
            Some(plan) => split_scratch(be, plan, b, r)?,
            None => (None, be.scratch("lowrank_linear T", (b * r) as u64 * 4)?),
        };
        let mut ds = match split {
            Some(plan) => {
                let dims = SplitParams { b: b32, n: n32, r: r32, m: m32, flags, ..Default::default() };
                let bufs = SplitBufs { x: xb, v: vb, u: ub, bias: biasb, y: yout };
                split_dispatches(OP, plan, dims, &bufs, part.as_ref(), &t, y_by_split)?
            }
            None => {
                let (xo, vo) = (Operand { buf: xb, si: n32, sk: 1, f16 }, Operand { buf: vb, si: r32, sk: 1, f16 });
                vec![gemm_on(Some(be), OP, (b, r, n), xo, vo, None, &t, 1.0, 0.0)?]
            }
        };
        if !y_by_split {
            // After the split T on the tile gemm_tile picks, after the tiled T on 64 x 64.
            let (to, uo) = (Operand { buf: &t, si: r32, sk: 1, f16: false }, Operand { buf: ub, si: 1, sk: r32, f16 });
            ds.push(gemm_on(split.map(|_| be), OP, (b, m, r), to, uo, biasb.map(|bb| (bb, f16)), yout, 1.0, 0.0)?);
        }
        out.finish(OP, &mut ds)?;
        be.run(OP, &ds)
    }

    fn lowrank_reconstruct(&self, _: Checked, lr: &DeviceLowRank, w: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "lowrank_reconstruct";
        let f16 = is_f16(OP, lr.dtype())?;
        let (m, n, r) = (lr.m, lr.n, lr.r);
        check_factors(OP, lr)?;
        expect_len(OP, "W", &w.buf, m * n)?;
        let r32 = u32_param(OP, "r", r)?;
        let ub = be.buf(&lr.u.buf)?;
        let vb = be.buf(&lr.v.buf)?;
        let wb = be.buf(&w.buf)?;
        let out = output(be, "lowrank_reconstruct output", wb, m * n, f16)?;
        // W = U V^T: A = U (row-major), B(k, j) = V[j, k].
        let a = Operand { buf: ub, si: r32, sk: 1, f16 };
        let mut ds = vec![gemm_on(Some(be), OP, (m, n, r), a, Operand { buf: vb, si: 1, sk: r32, f16 }, None, out.target(), 1.0, 0.0)?];
        out.finish(OP, &mut ds)?;
        be.run(OP, &ds)
    }

    fn frobenius_decay(&self, _: Checked, lr: &DeviceLowRank, c: f32, du: &mut Tensor, dv: &mut Tensor) -> Result<()> {
        let be = self;
        const OP: &str = "frobenius_decay";
        let (m, n, r) = (lr.m, lr.n, lr.r);
        check_factors(OP, lr)?;
        expect_len(OP, "dU", &du.buf, m * r)?;
        expect_len(OP, "dV", &dv.buf, n * r)?;
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
            gemm_on(Some(be), OP, (r, r, n), Operand { buf: vb, si: 1, sk: r32, f16: false }, f(vb), None, &gv, 1.0, 0.0)?,
            gemm_on(Some(be), OP, (r, r, m), Operand { buf: ub, si: 1, sk: r32, f16: false }, f(ub), None, &gu, 1.0, 0.0)?,
            // dU += c U (V^T V), dV += c V (U^T U).
            gemm_on(Some(be), OP, (m, r, r), f(ub), f(&gv), None, dub, c, 1.0)?,
            gemm_on(Some(be), OP, (n, r, r), f(vb), f(&gu), None, dvb, c, 1.0)?,
        ];
        be.run(OP, &ds)
    }

    fn lowrank_backward(&self, _: Checked, lr: &DeviceLowRank, x: &Tensor, dy: &Tensor, g: LowRankGrads<'_>, beta: f32) -> Result<()> {
        let LowRankGrads { dx, du, dv } = g;
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
        // P = X V and Q = dY U stay in f32 scratch ([b, r], small), split over their depth
        // where the fast plan says so (`plan::xv_split`, as lowrank_linear's T = X V).
        let p = be.scratch("lowrank_backward P = X V", (b * r) as u64 * 4)?;
        let q = be.scratch("lowrank_backward Q = dY U", (b * r) as u64 * 4)?;
        let (p_plan, q_plan) = (xv_split(be.fast(), b, n, r, 1), xv_split(be.fast(), b, m, r, 1));
        let part = |plan: &Option<SplitPlan>| match plan {
            Some(pl) if pl.splits > 1 => split_scratch(be, pl, b, r).map(|(part, _)| part),
            _ => Ok(None),
        };
        let (p_part, q_part) = (part(&p_plan)?, part(&q_plan)?);
        // f16 results go through an f32 scratch (two values share an output word) and the
        // pack pass, which applies beta; f32 results are written (and accumulated) directly.
        let dx_out = match dxb {
            Some(dxb) => Some(output(be, "lowrank_backward dX", dxb, b * n, f16)?),
            None => None,
        };
        let du_out = if f16 { Output::packed(be, "lowrank_backward dU", dub, m * r, 1.0, beta)? } else { Output::direct(dub) };
        let dv_out = if f16 { Output::packed(be, "lowrank_backward dV", dvb, n * r, 1.0, beta)? } else { Output::direct(dvb) };
        let gemm_beta = if f16 { 0.0 } else { beta };
        let t = |buf, si, sk, f16| Operand { buf, si, sk, f16 };
        // P(i, q) = X[i*n + k] V[k*r + q];  Q(i, q) = dY[i*m + j] U[j*r + q].
        let flags = if f16 { A_F16 } else { 0 };
        let mut ds = Vec::new();
        for (a, w, depth, a_stride, plan, part, out) in [(xb, vb, n, n32, &p_plan, &p_part, &p), (dyb, ub, m, m32, &q_plan, &q_part, &q)] {
            match plan {
                Some(pl) => {
                    let dims = SplitParams { b: u32_param(OP, "b", b)?, n: a_stride, r: r32, m: 1, flags, ..Default::default() };
                    let bufs = SplitBufs { x: a, v: w, u: w, bias: None, y: out };
                    ds.extend(split_dispatches(OP, pl, dims, &bufs, part.as_ref(), out, false)?);
                }
                None => ds.push(gemm_on(Some(be), OP, (b, r, depth), t(a, a_stride, 1, f16), t(w, r32, 1, f16), None, out, 1.0, 0.0)?),
            }
        }
        if let Some(out) = &dx_out {
            // dX(i, k) = Q[i*r + q] V[k*r + q] (overwritten).
            ds.push(gemm_on(Some(be), OP, (b, n, r), t(&q, r32, 1, false), t(vb, 1, r32, f16), None, out.target(), 1.0, 0.0)?);
            out.finish(OP, &mut ds)?;
        }
        // dU(j, q) = dY[i*m + j] P[i*r + q] (A is dY^T: stride 1 along j, m along i).
        ds.push(gemm_on(Some(be), OP, (m, r, b), t(dyb, 1, m32, f16), t(&p, r32, 1, false), None, du_out.target(), 1.0, gemm_beta)?);
        du_out.finish(OP, &mut ds)?;
        // dV(k, q) = X[i*n + k] Q[i*r + q].
        ds.push(gemm_on(Some(be), OP, (n, r, b), t(xb, 1, n32, f16), t(&q, r32, 1, false), None, dv_out.target(), 1.0, gemm_beta)?);
        dv_out.finish(OP, &mut ds)?;
        be.run(OP, &ds)
    }
}
