//! Sparse ops on wgpu: `spmm`, `spmm_t`, `sddmm`, `spmm_24` (kernels in `shaders/sparse.wgsl`).

use crate::backend::{Checked, SparseOps};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{Buffer, DeviceCsr, DeviceSparse24, Tensor};

use super::context::WgpuBackend;
use super::pipeline::{fbits, u32_param, Bind, Dispatch, Groups, Shader};

/// The sparse kernels; trusted: the bounds argument is at the top of the file and above
/// each kernel.
pub(crate) static SPARSE: Shader = Shader { name: "sparse", source: include_str!("../../shaders/sparse.wgsl"), trusted: true };

/// Threads per workgroup (override constant `WG`; a power of two <= CAP).
const WG: u32 = 64;
/// Workgroup staging slots (`CAP` in the shader).
const CAP: u32 = 256;
/// Most threads cooperating on one SDDMM dot product.
const MAX_TPE: u32 = 32;

fn constants() -> Vec<(&'static str, f64)> {
    vec![("WG", WG as f64)]
}

/// One SpMM launch: `C[rows, n] = alpha * A B + beta * C` over the rows of a CSR pattern
/// (A's own, or its CSC transpose with `perm` gathering the values).
struct SpmmArgs<'a> {
    rows: usize,
    n: usize,
    indptr: &'a Buffer,
    indices: &'a Buffer,
    row_order: &'a Buffer,
    perm: Option<&'a Buffer>,
    values: &'a Buffer,
    alpha: f32,
    beta: f32,
}

fn launch_spmm(be: &WgpuBackend, op: &'static str, a: SpmmArgs<'_>, b: &Tensor, c: &mut Tensor) -> Result<()> {
    let m = u32_param(op, "rows", a.rows)?;
    let n = u32_param(op, "N", a.n)?;
    u32_param(op, "output elements", a.rows.saturating_mul(a.n))?;
    let units = n.div_ceil(4);
    let tpr = units.next_power_of_two().min(WG);
    let rpw = WG / tpr;
    let ntiles = units.div_ceil(tpr);
    let spr = CAP / rpw;
    let groups = (m.div_ceil(rpw) as u64) * ntiles as u64;
    let groups32 = u32::try_from(groups).map_err(|_| Error::shape(op, format!("{groups} workgroups exceed 32-bit indexing")))?;
    let beta_zero = (a.beta == 0.0) as u32;
    let gather = a.perm.is_some() as u32;
    let params = |alpha: f32, beta: f32, beta_zero: u32| {
        vec![m, n, tpr, rpw, ntiles, groups32, beta_zero, spr, gather, fbits(alpha), fbits(beta), 0]
    };
    let indptr = be.buf(a.indptr)?;
    let indices = be.buf(a.indices)?;
    let order = be.buf(a.row_order)?;
    let perm = match a.perm {
        Some(p) => be.buf(p)?,
        None => indices,
    };
    let values = be.buf(a.values)?;
    let bb = be.buf(&b.buf)?;
    let dtype = a.values.dtype();
    let entry = match dtype {
        DType::F32 if n % 4 == 0 => "spmm_f32_v4",
        DType::F32 => "spmm_f32_s",
        DType::F16 if n % 4 == 0 => "spmm_f16_v4",
        DType::F16 if n % 2 == 0 => "spmm_f16_s",
        DType::F16 => "spmm_f16_odd",
        d => return Err(Error::dtype(op, format!("values of {d}"))),
    };
    if entry != "spmm_f16_odd" {
        let cb = be.buf(&c.buf)?;
        let d = Dispatch {
            shader: &SPARSE,
            entry,
            constants: constants(),
            binds: vec![
                Bind::Read(indptr),
                Bind::Read(indices),
                Bind::Read(order),
                Bind::Read(perm),
                Bind::Read(values),
                Bind::Read(bb),
                Bind::Write(cb),
            ],
            params: params(a.alpha, a.beta, beta_zero),
            groups: Groups::Linear(groups),
        };
        return be.run(op, &[d]);
    }
    // f16 with odd N: an output word may hold the end of one row and the start of the next,
    // so the product goes to an f32 scratch and `pack_f16` writes each word once.
    let count = a.rows * a.n;
    let scratch = be.scratch("spmm f16 scratch", count as u64 * 4)?;
    let cb = be.buf(&c.buf)?;
    let d1 = Dispatch {
        shader: &SPARSE,
        entry,
        constants: constants(),
        binds: vec![
            Bind::Read(indptr),
            Bind::Read(indices),
            Bind::Read(order),
            Bind::Read(perm),
            Bind::Read(values),
            Bind::Read(bb),
            Bind::Write(&scratch),
        ],
        params: params(1.0, 0.0, 1),
        groups: Groups::Linear(groups),
    };
    let d2 = pack_dispatch(op, &scratch, cb, count, a.alpha, a.beta)?;
    be.run(op, &[d1, d2])
}

/// `dst[e] = alpha * src[e] + beta * dst[e]` for `e < count`, `dst` packed f16.
fn pack_dispatch<'a>(
    op: &'static str,
    src: &'a wgpu::Buffer,
    dst: &'a wgpu::Buffer,
    count: usize,
    alpha: f32,
    beta: f32,
) -> Result<Dispatch<'a>> {
    let count32 = u32_param(op, "elements", count)?;
    let words = count32.div_ceil(2);
    Ok(Dispatch {
        shader: &SPARSE,
        entry: "pack_f16",
        constants: constants(),
        binds: vec![Bind::Read(src), Bind::Write(dst)],
        params: vec![count32, words, (beta == 0.0) as u32, 0, fbits(alpha), fbits(beta), 0, 0],
        groups: Groups::Linear(words.div_ceil(WG) as u64),
    })
}

/// `dst[q] = src[perm[q]]` for `q < count` (f32, or packed f16 when `f16`): refreshes the
/// CSC-ordered values after `sddmm`. A matrix without stored values needs no dispatch (zero
/// workgroups are skipped).
fn gather_dispatch<'a>(
    count: usize,
    perm: &'a wgpu::Buffer,
    src: &'a wgpu::Buffer,
    dst: &'a wgpu::Buffer,
    f16: bool,
) -> Result<Dispatch<'a>> {
    let count32 = u32_param("sddmm", "nnz", count)?;
    let words = count32.div_ceil(2);
    let items = if f16 { words } else { count32 };
    Ok(Dispatch {
        shader: &SPARSE,
        entry: if f16 { "csr_gather_f16" } else { "csr_gather_f32" },
        constants: constants(),
        binds: vec![Bind::Read(perm), Bind::Read(src), Bind::Write(dst)],
        params: vec![count32, words, 0, 0],
        groups: Groups::Linear(items.div_ceil(WG) as u64),
    })
}

impl SparseOps for WgpuBackend {
    fn spmm(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        let be = self;
        let args = SpmmArgs {
            rows: a.rows,
            n: b.cols,
            indptr: &a.indptr,
            indices: &a.indices,
            row_order: &a.row_order,
            perm: None,
            values: &a.values,
            alpha,
            beta,
        };
        launch_spmm(be, "spmm", args, b, c)
    }

    /// `C = A^T B`: SpMM over the rows of A^T (the CSC pattern) with the CSC-ordered values
    /// cached at upload (refreshed by `sddmm`), so neither float atomics nor a gather are needed.
    fn spmm_t(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor) -> Result<()> {
        let be = self;
        let args = SpmmArgs {
            rows: a.cols,
            n: b.cols,
            indptr: &a.t_indptr,
            indices: &a.t_indices,
            row_order: &a.t_row_order,
            perm: None,
            values: &a.t_values,
            alpha: 1.0,
            beta: 0.0,
        };
        launch_spmm(be, "spmm_t", args, b, c)
    }

    fn sddmm(&self, _: Checked, a: &mut DeviceCsr, x: &Tensor, y: &Tensor, alpha: f32, beta: f32) -> Result<()> {
        let be = self;
        const OP: &str = "sddmm";
        let m = u32_param(OP, "M", a.rows)?;
        let kd = u32_param(OP, "K", x.cols)?;
        u32_param(OP, "X elements", x.rows.saturating_mul(x.cols))?;
        u32_param(OP, "Y elements", y.rows.saturating_mul(y.cols))?;
        let tpe = kd.div_ceil(4).next_power_of_two().clamp(1, MAX_TPE);
        let epr = WG / tpe;
        let log_tpe = tpe.trailing_zeros();
        let beta_zero = (beta == 0.0) as u32;
        let indptr = be.buf(&a.indptr)?;
        let indices = be.buf(&a.indices)?;
        let order = be.buf(&a.row_order)?;
        let xb = be.buf(&x.buf)?;
        let yb = be.buf(&y.buf)?;
        let vb = be.buf(&a.values)?;
        match a.values.dtype() {
            DType::F32 => {
                let d = Dispatch {
                    shader: &SPARSE,
                    entry: "sddmm_f32",
                    constants: constants(),
                    binds: vec![
                        Bind::Read(indptr),
                        Bind::Read(indices),
                        Bind::Read(order),
                        Bind::Read(xb),
                        Bind::Read(yb),
                        Bind::Write(vb),
                    ],
                    params: vec![m, kd, tpe, epr, 0, beta_zero, log_tpe, 0, fbits(alpha), fbits(beta), 0, 0],
                    groups: Groups::Linear(m as u64),
                };
                be.run(OP, &[d, gather_dispatch(a.nnz, be.buf(&a.t_perm)?, vb, be.buf(&a.t_values)?, false)?])
            }
            DType::F16 => {
                // Two stored values share a word: dot products go to an f32 scratch first.
                let scratch = be.scratch("sddmm f16 scratch", a.nnz as u64 * 4)?;
                let d1 = Dispatch {
                    shader: &SPARSE,
                    entry: "sddmm_f16",
                    constants: constants(),
                    binds: vec![
                        Bind::Read(indptr),
                        Bind::Read(indices),
                        Bind::Read(order),
                        Bind::Read(xb),
                        Bind::Read(yb),
                        Bind::Write(&scratch),
                    ],
                    params: vec![m, kd, tpe, epr, 1, 1, log_tpe, 0, fbits(1.0), fbits(0.0), 0, 0],
                    groups: Groups::Linear(m as u64),
                };
                let d2 = pack_dispatch(OP, &scratch, vb, a.nnz, alpha, beta)?;
                let d3 = gather_dispatch(a.nnz, be.buf(&a.t_perm)?, vb, be.buf(&a.t_values)?, true)?;
                be.run(OP, &[d1, d2, d3])
            }
            d => Err(Error::dtype(OP, format!("values of {d}"))),
        }
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
        for (what, buf, want) in [
            ("A.values", &a.values, rows * kd / 2),
            ("A.meta", &a.meta, rows * kd.div_ceil(32)),
            ("B", &b.buf, kd * cols),
            ("C", &c.buf, rows * cols),
        ] {
            if buf.len() != want {
                return Err(Error::shape(OP, format!("{what} holds {} elements, the kernel needs {want}", buf.len())));
            }
        }
        let units = n.div_ceil(4);
        let tpr = units.next_power_of_two().min(WG);
        let rpw = WG / tpr;
        let ntiles = units.div_ceil(tpr);
        let spr = CAP / rpw;
        let groups = (m.div_ceil(rpw) as u64) * ntiles as u64;
        let groups32 = u32::try_from(groups).map_err(|_| Error::shape(OP, format!("{groups} workgroups exceed 32-bit indexing")))?;
        let params =
            |alpha: f32, beta: f32, beta_zero: u32| vec![m, n, k, tpr, rpw, ntiles, groups32, spr, beta_zero, fbits(alpha), fbits(beta), 0];
        let values = be.buf(&a.values)?;
        let meta = be.buf(&a.meta)?;
        let bb = be.buf(&b.buf)?;
        let entry = match a.values.dtype() {
            DType::F32 if n % 4 == 0 => "spmm24_f32_v4",
            DType::F32 => "spmm24_f32_s",
            DType::F16 if n % 4 == 0 => "spmm24_f16_v4",
            DType::F16 if n % 2 == 0 => "spmm24_f16_s",
            DType::F16 => "spmm24_f16_odd",
            d => return Err(Error::dtype(OP, format!("values of {d}"))),
        };
        let dispatch = |out, params| Dispatch {
            shader: &SPARSE,
            entry,
            constants: constants(),
            binds: vec![Bind::Read(values), Bind::Read(meta), Bind::Read(bb), Bind::Write(out)],
            params,
            groups: Groups::Linear(groups),
        };
        if entry != "spmm24_f16_odd" {
            let cb = be.buf(&c.buf)?;
            return be.run(OP, &[dispatch(cb, params(alpha, beta, (beta == 0.0) as u32))]);
        }
        // f16 with odd N: an output word may straddle two rows, so the product goes to an f32
        // scratch and `pack_f16` writes each word once (as `spmm`).
        let count = rows * cols;
        let scratch = be.scratch("spmm_24 f16 scratch", count as u64 * 4)?;
        let cb = be.buf(&c.buf)?;
        let d2 = pack_dispatch(OP, &scratch, cb, count, alpha, beta)?;
        be.run(OP, &[dispatch(&scratch, params(1.0, 0.0, 1)), d2])
    }
}
