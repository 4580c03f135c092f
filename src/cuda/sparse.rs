//! CUDA launchers of the sparse ops (kernels in `cuda/sparse.cu`).

use crate::backend::{Checked, SparseOps};
use cudarc::driver::PushKernelArg;

use super::backend::{drv, float_dispatch, i32_arg, sl, sl_mut, CudaBackend, KernelFloat};
use crate::error::{Error, Result};
use crate::tensor::*;

/// Threads per block of the sparse kernels (`__launch_bounds__(128)`).
const BLOCK: usize = 128;

/// Fails unless a buffer holds exactly `want` elements (the kernels' contracts).
pub(crate) fn expect_len(op: &'static str, what: &str, b: &Buffer, want: usize) -> Result<()> {
    if b.len != want {
        return Err(Error::shape(op, format!("{what} holds {} elements, the kernel needs {want}", b.len)));
    }
    Ok(())
}

/// Fails unless a buffer holds at least `want` elements (nnz-long arrays keep one unused
/// element when `nnz == 0`; kernels only read positions that `indptr` names).
fn expect_min_len(op: &'static str, what: &str, b: &Buffer, want: usize) -> Result<()> {
    if b.len < want {
        return Err(Error::shape(op, format!("{what} holds {} elements, the kernel needs {want}", b.len)));
    }
    Ok(())
}

fn check_csr(op: &'static str, a: &DeviceCsr) -> Result<()> {
    expect_len(op, "A.indptr", &a.indptr, a.rows + 1)?;
    expect_min_len(op, "A.indices", &a.indices, a.nnz)?;
    expect_min_len(op, "A.values", &a.values, a.nnz)?;
    expect_len(op, "A.row_order", &a.row_order, a.rows)?;
    expect_len(op, "A.t_indptr", &a.t_indptr, a.cols + 1)?;
    expect_min_len(op, "A.t_indices", &a.t_indices, a.nnz)?;
    expect_min_len(op, "A.t_perm", &a.t_perm, a.nnz)?;
    expect_len(op, "A.t_row_order", &a.t_row_order, a.cols)
}

/// Sub-warp width for `units` work items per row: the next power of two, within 8..=32.
pub(crate) fn subwarp(units: usize) -> usize {
    units.next_power_of_two().clamp(8, 32)
}

/// Vector width: 4 when `n % 4 == 0` and every listed buffer is aligned to 4 elements.
fn vec_width<T: KernelFloat>(be: &CudaBackend, n: usize, bufs: &[&cudarc::driver::CudaSlice<T>]) -> usize {
    let align = 4 * std::mem::size_of::<T>() as u64;
    if n % 4 == 0 && bufs.iter().all(|s| be.aligned(s, align)) {
        4
    } else {
        1
    }
}

/// `transposed == false`: C[M,N] = alpha A B + beta C (B `[K,N]`); `true`: C[K,N] = A^T B
/// (B `[M,N]`) through the CSC pattern.
fn spmm_typed<T: KernelFloat>(
    be: &CudaBackend,
    a: &DeviceCsr,
    b: &Tensor,
    c: &mut Tensor,
    alpha: f32,
    beta: f32,
    transposed: bool,
) -> Result<()> {
    let op = if transposed { "spmm_t" } else { "spmm" };
    check_csr(op, a)?;
    // Output rows and the rows of B the indices point into.
    let (out_rows, b_rows) = if transposed { (a.cols, a.rows) } else { (a.rows, a.cols) };
    let n = b.cols;
    expect_len(op, "B", &b.buf, b_rows * n)?;
    expect_len(op, "C", &c.buf, out_rows * n)?;
    let bs = sl::<T>(op, "B", &b.buf)?;
    let cs = sl_mut::<T>(op, "C", &mut c.buf)?;
    let v = vec_width::<T>(be, n, &[bs]);
    let sw = subwarp(n.div_ceil(v));
    let grid = (out_rows.div_ceil(BLOCK / sw), n.div_ceil(sw * v), 1);
    let cfg = be.cfg(op, grid, BLOCK as u32, 0)?;
    let name = format!("{op}_{}_v{v}_w{sw}", T::SUFFIX);
    let f = be.function("sparse", &name)?;
    let (rows_i, n_i) = (i32_arg(op, "rows", out_rows)?, i32_arg(op, "N", n)?);
    i32_arg(op, "nnz", a.nnz)?;
    let values = sl::<T>(op, "A.values", &a.values)?;
    let mut lb = be.stream().launch_builder(&f);
    if transposed {
        lb.arg(&rows_i)
            .arg(&n_i)
            .arg(sl::<u32>(op, "A.t_indptr", &a.t_indptr)?)
            .arg(sl::<u32>(op, "A.t_indices", &a.t_indices)?)
            .arg(values)
            .arg(sl::<u32>(op, "A.t_perm", &a.t_perm)?)
            .arg(sl::<u32>(op, "A.t_row_order", &a.t_row_order)?)
            .arg(bs)
            .arg(cs);
    } else {
        lb.arg(&rows_i)
            .arg(&n_i)
            .arg(sl::<u32>(op, "A.indptr", &a.indptr)?)
            .arg(sl::<u32>(op, "A.indices", &a.indices)?)
            .arg(values)
            .arg(sl::<u32>(op, "A.row_order", &a.row_order)?)
            .arg(bs)
            .arg(cs)
            .arg(&alpha)
            .arg(&beta);
    }
    // SAFETY: the arguments match the kernel's parameter list in cuda/sparse.cu in order and
    // type; the CSR pattern was validated at upload (monotone indptr, indices < cols, the
    // transpose and row orders built from it) and every buffer length was checked above
    // against the kernel's contract, so no thread indexes outside its buffers.
    unsafe { lb.launch(cfg) }.map_err(drv(op))?;
    Ok(())
}

fn sddmm_typed<T: KernelFloat>(be: &CudaBackend, a: &mut DeviceCsr, x: &Tensor, y: &Tensor, alpha: f32, beta: f32) -> Result<()> {
    const OP: &str = "sddmm";
    check_csr(OP, a)?;
    let k = x.cols;
    expect_len(OP, "X", &x.buf, a.rows * k)?;
    expect_len(OP, "Y", &y.buf, a.cols * k)?;
    let xs = sl::<T>(OP, "X", &x.buf)?;
    let ys = sl::<T>(OP, "Y", &y.buf)?;
    let v = vec_width::<T>(be, k, &[xs, ys]);
    let sw = subwarp(k.div_ceil(v));
    let cfg = be.cfg(OP, (a.rows.div_ceil(BLOCK / sw), 1, 1), BLOCK as u32, 0)?;
    let f = be.function("sparse", &format!("sddmm_{}_v{v}_w{sw}", T::SUFFIX))?;
    let (rows_i, k_i) = (i32_arg(OP, "rows", a.rows)?, i32_arg(OP, "K", k)?);
    i32_arg(OP, "nnz", a.nnz)?;
    let DeviceCsr { indptr, indices, values, row_order, .. } = a;
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&rows_i)
        .arg(&k_i)
        .arg(sl::<u32>(OP, "A.indptr", indptr)?)
        .arg(sl::<u32>(OP, "A.indices", indices)?)
        .arg(sl::<u32>(OP, "A.row_order", row_order)?)
        .arg(xs)
        .arg(ys)
        .arg(sl_mut::<T>(OP, "A.values", values)?)
        .arg(&alpha)
        .arg(&beta);
    // SAFETY: arguments match `sddmm_*` in cuda/sparse.cu; the pattern was validated at
    // upload and the lengths of X, Y and the CSR arrays were checked above.
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(())
}

impl SparseOps for CudaBackend {
    fn spmm(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        let be = self;
        float_dispatch!("spmm", "A", a.dtype(), spmm_typed(be, a, b, c, alpha, beta, false))
    }

    fn spmm_t(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor) -> Result<()> {
        let be = self;
        float_dispatch!("spmm_t", "A", a.dtype(), spmm_typed(be, a, b, c, 1.0, 0.0, true))
    }

    fn sddmm(&self, _: Checked, a: &mut DeviceCsr, x: &Tensor, y: &Tensor, alpha: f32, beta: f32) -> Result<()> {
        let be = self;
        float_dispatch!("sddmm", "A", a.dtype(), sddmm_typed(be, a, x, y, alpha, beta))
    }
}
