//! Sparse ops on wgpu: `spmm`, `spmm_t`, `sddmm`, `spmm_24` (kernels in `shaders/sparse.wgsl`, one
//! source for both float dtypes).

use crate::backend::{Checked, SparseOps};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{Buffer, DeviceCsr, DeviceSparse24, Tensor};

use super::context::WgpuBackend;
use super::dispatch::{expect_len, u32_param, wgsl_params, Bind, Dispatch, Groups, WgslParams};
use super::pack::Output;
use super::pipeline::{for_dtype, Shader};

/// The sparse kernels, f32 and f16 variants; trusted: the bounds argument is at the top of
/// the file and above each kernel, and every buffer is checked below.
pub(super) static SPARSE: [Shader; 2] =
    Shader::dtype_variants("sparse", &[SpmmParams::WGSL, SddmmParams::WGSL], include_str!("../../shaders/sparse.wgsl"));

/// The 2:4 SpMM kernels, f32 and f16 variants of one source; trusted: the bounds argument is
/// at the top of the file and `spmm_24` checks every buffer.
pub(super) static SPARSE24: [Shader; 2] =
    Shader::dtype_variants("sparse24", &[S24Params::WGSL], include_str!("../../shaders/sparse24.wgsl"));

wgsl_params! {
    /// Parameters of the `spmm24_*` kernels (`S24Params` in `shaders/sparse24.wgsl`).
    struct S24Params {
        m: u32,
        n: u32,
        k: u32,
        tpr: u32,
        rpw: u32,
        ntiles: u32,
        groups: u32,
        spr: u32,
        beta_zero: u32,
        alpha: f32,
        beta: f32,
        pad0: u32,
    }
}

/// Threads per workgroup (override constant `WG`; a power of two <= CAP).
const WG: u32 = 64;
/// Workgroup staging slots (`CAP` in the shader).
const CAP: u32 = 256;
/// Most threads cooperating on one SDDMM dot product.
const MAX_TPE: u32 = 32;

wgsl_params! {
    /// Parameters of the SpMM kernels.
    struct SpmmParams {
        m: u32,
        n: u32,
        tpr: u32,
        rpw: u32,
        ntiles: u32,
        groups: u32,
        beta_zero: u32,
        spr: u32,
        gather: u32,
        alpha: f32,
        beta: f32,
        pad0: u32,
    }
}

wgsl_params! {
    /// Parameters of `sddmm`.
    struct SddmmParams {
        m: u32,
        kd: u32,
        tpe: u32,
        epr: u32,
        raw: u32,
        beta_zero: u32,
        log_tpe: u32,
        pad0: u32,
        alpha: f32,
        beta: f32,
        pad1: u32,
        pad2: u32,
    }
}

fn constants() -> Vec<(&'static str, f64)> {
    vec![("WG", WG as f64)]
}

/// Checks the CSR arrays and picks the module of the values' dtype.
fn checked_shader(op: &'static str, a: &DeviceCsr) -> Result<&'static Shader> {
    check_csr(op, a)?;
    for_dtype(&SPARSE, op, "values", a.values.dtype())
}

/// Checks the CSR arrays against the pattern's sizes (the kernels' contract).
fn check_csr(op: &'static str, a: &DeviceCsr) -> Result<()> {
    a.check_buffers(op)
}

/// One SpMM launch: `C[rows, n] = alpha * A B + beta * C` over the rows of a CSR pattern
/// (A's own, or its CSC transpose with `perm` gathering the values); B has `b_rows` rows.
struct SpmmArgs<'a> {
    rows: usize,
    b_rows: usize,
    indptr: &'a Buffer,
    indices: &'a Buffer,
    row_order: &'a Buffer,
    perm: Option<&'a Buffer>,
    alpha: f32,
    beta: f32,
}

fn launch_spmm(be: &WgpuBackend, op: &'static str, a: &DeviceCsr, s: SpmmArgs<'_>, b: &Tensor, c: &mut Tensor) -> Result<()> {
    let shader = checked_shader(op, a)?;
    expect_len(op, "B", &b.buf, s.b_rows * b.cols)?;
    expect_len(op, "C", &c.buf, s.rows * b.cols)?;
    let m = u32_param(op, "rows", s.rows)?;
    let n = u32_param(op, "N", b.cols)?;
    u32_param(op, "output elements", s.rows.saturating_mul(b.cols))?;
    let units = n.div_ceil(4);
    let tpr = units.next_power_of_two().min(WG);
    let rpw = WG / tpr;
    let ntiles = units.div_ceil(tpr);
    let groups = (m.div_ceil(rpw) as u64) * ntiles as u64;
    let groups32 = u32::try_from(groups).map_err(|_| Error::shape(op, format!("{groups} workgroups exceed 32-bit indexing")))?;
    let params = SpmmParams {
        m,
        n,
        tpr,
        rpw,
        ntiles,
        groups: groups32,
        beta_zero: (s.beta == 0.0) as u32,
        spr: CAP / rpw,
        gather: s.perm.is_some() as u32,
        alpha: s.alpha,
        beta: s.beta,
        ..Default::default()
    };
    // f16 with odd N: an output word may hold the end of one row and the start of the next,
    // so the product goes to an f32 scratch that the pack pass turns into C.
    let entry = match (n % 4, a.values.dtype()) {
        (0, _) => "spmm_v4",
        (_, DType::F16) if n % 2 == 1 => "spmm_elem",
        _ => "spmm_words",
    };
    let cb = be.buf(&c.buf)?;
    let out = match entry {
        "spmm_elem" => Output::packed(be, "spmm f16 scratch", cb, s.rows * b.cols, s.alpha, s.beta)?,
        _ => Output::direct(cb),
    };
    let params = if out.is_packed() { SpmmParams { alpha: 1.0, beta: 0.0, beta_zero: 1, ..params } } else { params };
    let indices = be.buf(s.indices)?;
    let perm = match s.perm {
        Some(p) => be.buf(p)?,
        None => indices,
    };
    let binds = vec![
        Bind::Read(be.buf(s.indptr)?),
        Bind::Read(indices),
        Bind::Read(be.buf(s.row_order)?),
        Bind::Read(perm),
        Bind::Read(be.buf(&a.values)?),
        Bind::Read(be.buf(&b.buf)?),
        Bind::Write(out.target()),
    ];
    let mut ds = vec![Dispatch { shader, entry, constants: constants(), binds, params: params.bytes(), groups: Groups::Linear(groups) }];
    out.finish(op, &mut ds)?;
    be.run(op, &ds)
}

impl SparseOps for WgpuBackend {
    fn spmm(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        let args = SpmmArgs {
            rows: a.rows,
            b_rows: a.cols,
            indptr: &a.indptr,
            indices: &a.indices,
            row_order: &a.row_order,
            perm: None,
            alpha,
            beta,
        };
        launch_spmm(self, "spmm", a, args, b, c)
    }

    /// `C = A^T B`: SpMM over the rows of A^T (the CSC pattern), values gathered through
    /// `t_perm`, so no float atomics are needed.
    fn spmm_t(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor) -> Result<()> {
        let args = SpmmArgs {
            rows: a.cols,
            b_rows: a.rows,
            indptr: &a.t_indptr,
            indices: &a.t_indices,
            row_order: &a.t_row_order,
            perm: Some(&a.t_perm),
            alpha: 1.0,
            beta: 0.0,
        };
        launch_spmm(self, "spmm_t", a, args, b, c)
    }

    fn sddmm(&self, _: Checked, a: &mut DeviceCsr, x: &Tensor, y: &Tensor, alpha: f32, beta: f32) -> Result<()> {
        let be = self;
        const OP: &str = "sddmm";
        let shader = checked_shader(OP, a)?;
        expect_len(OP, "X", &x.buf, a.rows * x.cols)?;
        expect_len(OP, "Y", &y.buf, a.cols * x.cols)?;
        let m = u32_param(OP, "M", a.rows)?;
        let kd = u32_param(OP, "K", x.cols)?;
        u32_param(OP, "X elements", x.rows.saturating_mul(x.cols))?;
        u32_param(OP, "Y elements", y.rows.saturating_mul(y.cols))?;
        let tpe = kd.div_ceil(4).next_power_of_two().clamp(1, MAX_TPE);
        let params = SddmmParams {
            m,
            kd,
            tpe,
            epr: WG / tpe,
            beta_zero: (beta == 0.0) as u32,
            log_tpe: tpe.trailing_zeros(),
            alpha,
            beta,
            ..Default::default()
        };
        // f16: two stored values share a word, so the dot products go to an f32 scratch and
        // the pack pass writes the values.
        let vb = be.buf(&a.values)?;
        let out = match a.values.dtype() {
            DType::F16 => Output::packed(be, "sddmm f16 scratch", vb, a.nnz, alpha, beta)?,
            _ => Output::direct(vb),
        };
        let params = if out.is_packed() { SddmmParams { raw: 1, beta_zero: 1, alpha: 1.0, beta: 0.0, ..params } } else { params };
        let binds = vec![
            Bind::Read(be.buf(&a.indptr)?),
            Bind::Read(be.buf(&a.indices)?),
            Bind::Read(be.buf(&a.row_order)?),
            Bind::Read(be.buf(&x.buf)?),
            Bind::Read(be.buf(&y.buf)?),
            Bind::Write(out.target()),
        ];
        let mut ds = vec![Dispatch {
            shader,
            entry: "sddmm",
            constants: constants(),
            binds,
            params: params.bytes(),
            groups: Groups::Linear(m as u64),
        }];
        out.finish(OP, &mut ds)?;
        be.run(OP, &ds)
    }

    /// `C = alpha * A B + beta * C` for a 2:4 A: the SpMM work split with every row of
    /// length K/2 and columns decoded from the 2-bit metadata (`spmm24_*` kernels).
    fn spmm_24(&self, _: Checked, a: &DeviceSparse24, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        let be = self;
        const OP: &str = "spmm_24";
        let (rows, kd, cols) = (a.rows, a.cols, b.cols);
        if kd % 4 != 0 {
            return Err(Error::shape(OP, format!("K = {kd} is not a multiple of 4")));
        }
        let m = u32_param(OP, "M", rows)?;
        let k = u32_param(OP, "K", kd)?;
        let n = u32_param(OP, "N", cols)?;
        u32_param(OP, "A elements", rows.saturating_mul(kd))?;
        u32_param(OP, "B elements", kd.saturating_mul(cols))?;
        u32_param(OP, "output elements", rows.saturating_mul(cols))?;
        // The kernels' bounds argument rests on these lengths.
        expect_len(OP, "A.values", &a.values, rows * kd / 2)?;
        expect_len(OP, "A.meta", &a.meta, rows * kd.div_ceil(32))?;
        expect_len(OP, "B", &b.buf, kd * cols)?;
        expect_len(OP, "C", &c.buf, rows * cols)?;
        let units = n.div_ceil(4);
        let tpr = units.next_power_of_two().min(WG);
        let rpw = WG / tpr;
        let ntiles = units.div_ceil(tpr);
        let spr = CAP / rpw;
        let groups = (m.div_ceil(rpw) as u64) * ntiles as u64;
        let groups32 = u32::try_from(groups).map_err(|_| Error::shape(OP, format!("{groups} workgroups exceed 32-bit indexing")))?;
        let params = |alpha: f32, beta: f32, beta_zero: u32| {
            S24Params { m, n, k, tpr, rpw, ntiles, groups: groups32, spr, beta_zero, alpha, beta, pad0: 0 }.bytes()
        };
        let values = be.buf(&a.values)?;
        let meta = be.buf(&a.meta)?;
        let bb = be.buf(&b.buf)?;
        let dtype = a.values.dtype();
        let shader = for_dtype(&SPARSE24, OP, "values", dtype)?;
        // f16 with odd N: an output word may straddle two rows (the f32 scratch below).
        let entry = match (n % 4, n % 2, dtype) {
            (0, _, _) => "spmm24_v4",
            (_, 0, _) | (_, _, DType::F32) => "spmm24_words",
            _ => "spmm24_elem",
        };
        let dispatch = |out, params| Dispatch {
            shader,
            entry,
            constants: constants(),
            binds: vec![Bind::Read(values), Bind::Read(meta), Bind::Read(bb), Bind::Write(out)],
            params,
            groups: Groups::Linear(groups),
        };
        if entry != "spmm24_elem" {
            let cb = be.buf(&c.buf)?;
            return be.run(OP, &[dispatch(cb, params(alpha, beta, (beta == 0.0) as u32))]);
        }
        // f16 with odd N: an output word may straddle two rows, so the product goes to an f32
        // scratch and `pack_f16` writes each word once (as `spmm`).
        let cb = be.buf(&c.buf)?;
        let out = Output::packed(be, "spmm_24 f16 scratch", cb, rows * cols, alpha, beta)?;
        let mut ds = vec![dispatch(out.target(), params(1.0, 0.0, 1))];
        out.finish(OP, &mut ds)?;
        be.run(OP, &ds)
    }
}
