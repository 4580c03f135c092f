//! CUDA launchers of the sparse ops (kernels in `cuda/sparse.cu`, the tiled CSR SpMM in
//! `cuda/spmm.cu`): CSR `spmm`, `spmm_t`, `sddmm`, and the 2:4 `spmm_24` (sparse tensor cores
//! for f16 from sm_80, a plain kernel otherwise or under `SLIMGEMM_KERNEL=simple`).

use crate::backend::{Checked, SparseOps};
use cudarc::driver::PushKernelArg;

use super::backend::{drv, float_dispatch, i32_arg, simple_kernels_forced, sl, sl_mut, CudaBackend, KernelFloat};
use super::sparse_plan::{spmm_plan, subwarp, SpmmFacts, BLOCK, TILE_VEC};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::*;
use half::f16;

use crate::tensor::expect_len;
use crate::tensor::expect_min_len;

fn check_csr(op: &'static str, a: &DeviceCsr) -> Result<()> {
    a.check_buffers(op)?;
    expect_min_len(op, "A.t_values", &a.t_values, a.nnz)
}

/// Largest K for which `sddmm` puts lanes over non-zeros (whole dot products per lane)
/// rather than over K.
const SDDMM_NZ_MAX_K: usize = 64;

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
/// (B `[M,N]`): the same kernel over the CSC pattern and its cached values. The kernel, its
/// vector width and sub-warp come from `spmm_plan` (src/cuda/sparse_plan.rs): the tiled
/// (Sputnik-style) kernel on u16 or u32 indices, or the simple one.
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
    let (indptr, indices, indices16, values, order) = if transposed {
        (&a.t_indptr, &a.t_indices, &a.t_indices16, &a.t_values, &a.t_row_order)
    } else {
        (&a.indptr, &a.indices, &a.indices16, &a.values, &a.row_order)
    };
    let bs = sl::<T>(op, "B", &b.buf)?;
    let vs = sl::<T>(op, "A.values", values)?;
    let is = sl::<u32>(op, "A.indices", indices)?;
    let i16s = indices16.as_ref().map(|w| sl::<u32>(op, "A.indices16", w)).transpose()?;
    let vec_bytes = (TILE_VEC * std::mem::size_of::<T>()) as u64;
    let plan = spmm_plan(SpmmFacts {
        n,
        b_aligned: be.aligned(bs, vec_bytes),
        values_aligned: be.aligned(vs, vec_bytes),
        idx32_aligned: be.aligned(is, 16),
        idx16: i16s.is_some_and(|w| be.aligned(w, 8)),
        simple: simple_kernels_forced(),
    });
    let cfg = be.cfg(op, plan.grid(out_rows, n), BLOCK as u32, 0)?;
    let f = be.function(plan.module(), &plan.name(T::SUFFIX))?;
    let (rows_i, n_i) = (i32_arg(op, "rows", out_rows)?, i32_arg(op, "N", n)?);
    // The tiled kernel's prefetch addresses reach up to two tiles (4 SW entries each) past
    // the last entry: nnz + 2 tiles must fit in i32.
    let nnz_i = i32_arg(op, "nnz", a.nnz)?;
    i32_arg(op, "nnz + 2 tiles", a.nnz.saturating_add(2 * plan.tile()))?;
    let order_s = sl::<u32>(op, "A.row_order", order)?;
    let indptr_s = sl::<u32>(op, "A.indptr", indptr)?;
    let cs = sl_mut::<T>(op, "C", &mut c.buf)?;
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&rows_i).arg(&n_i);
    if plan.tiled {
        let idx = if plan.idx16 { i16s.ok_or_else(|| Error::backend("cuda", format!("{op}: A has no u16 indices")))? } else { is };
        lb.arg(&nnz_i).arg(indptr_s).arg(idx);
    } else {
        lb.arg(indptr_s).arg(is);
    }
    lb.arg(vs).arg(order_s).arg(bs).arg(cs).arg(&alpha).arg(&beta);
    // SAFETY: the arguments match `spmm_*` (cuda/sparse.cu) / `spmm_tiled_*` (cuda/spmm.cu)
    // in order and type (the u16 copy is passed as its u32 words: the same device pointer,
    // read as `const unsigned short*`, ceil(nnz / 2) words = at least nnz halves, checked by
    // check_csr); the CSR pattern was validated at upload (monotone indptr, indices < cols;
    // the CSC transpose, its values, the row orders and the narrowed copies built from it);
    // every buffer length was checked above against the kernel's contract; the tiled
    // kernel's 4-entry vector loads of A are chosen only with the arrays it reads aligned
    // (`spmm_plan` facts above), and V == 4 only with N % 4 == 0 and B aligned; nnz plus two
    // tiles fits in i32. So no thread indexes outside its buffers.
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
    // Short dot products: lanes over non-zeros (a sub-warp sized by the mean row length, each
    // lane whole dot products, no shuffle reduction); otherwise lanes over K.
    let (name, sw) = if k <= SDDMM_NZ_MAX_K {
        let sw = a.nnz.div_ceil(a.rows).next_power_of_two().clamp(4, 32);
        (format!("sddmm_nz_{}_v{v}_w{sw}", T::SUFFIX), sw)
    } else {
        let sw = subwarp(k.div_ceil(v));
        (format!("sddmm_{}_v{v}_w{sw}", T::SUFFIX), sw)
    };
    let cfg = be.cfg(OP, (a.rows.div_ceil(BLOCK / sw), 1, 1), BLOCK as u32, 0)?;
    let f = be.function("sparse", &name)?;
    let (rows_i, k_i) = (i32_arg(OP, "rows", a.rows)?, i32_arg(OP, "K", k)?);
    i32_arg(OP, "nnz", a.nnz)?;
    let nnz = a.nnz;
    let DeviceCsr { indptr, indices, values, row_order, t_perm, t_values, .. } = a;
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
    // SAFETY: arguments match `sddmm_*` / `sddmm_nz_*` in cuda/sparse.cu (one parameter list);
    // the pattern was validated at upload and the lengths of X, Y and the CSR arrays were
    // checked above; V == 4 only with K % 4 == 0 and X, Y aligned (`vec_width`).
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    if nnz == 0 {
        return Ok(());
    }
    // Refresh the CSC-ordered copy that spmm_t reads: t_values[q] = values[t_perm[q]].
    let g = be.function("sparse", &format!("csr_gather_{}", T::SUFFIX))?;
    let gcfg = be.cfg(OP, (nnz.div_ceil(256), 1, 1), 256, 0)?;
    let nnz_i = i32_arg(OP, "nnz", nnz)?;
    let (perm_s, src_s) = (sl::<u32>(OP, "A.t_perm", t_perm)?, sl::<T>(OP, "A.values", values)?);
    let dst_s = sl_mut::<T>(OP, "A.t_values", t_values)?;
    let mut lb = be.stream().launch_builder(&g);
    lb.arg(&nnz_i).arg(perm_s).arg(src_s).arg(dst_s);
    // SAFETY: arguments match `csr_gather_*` in cuda/sparse.cu; t_perm is a permutation of
    // 0..nnz built at upload and t_perm, values and t_values hold at least nnz elements
    // (check_csr above); the grid covers nnz threads, each bounds-checked against nnz.
    unsafe { lb.launch(gcfg) }.map_err(drv(OP))?;
    Ok(())
}

/// Checks the plain 2:4 layout of A against B and C (the kernels' contract).
fn check_sparse24(op: &'static str, a: &DeviceSparse24, b: &Tensor, c: &Tensor) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if k % 4 != 0 {
        return Err(Error::shape(op, format!("K = {k} is not a multiple of 4")));
    }
    expect_len(op, "A.values", &a.values, m * k / 2)?;
    expect_len(op, "A.meta", &a.meta, m * k.div_ceil(32))?;
    expect_len(op, "B", &b.buf, k * n)?;
    expect_len(op, "C", &c.buf, m * n)
}

/// The plain 2:4 kernel (every arch, f32 and f16).
fn spmm24_simple<T: KernelFloat>(be: &CudaBackend, a: &DeviceSparse24, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
    const OP: &str = "spmm_24";
    check_sparse24(OP, a, b, c)?;
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let bs = sl::<T>(OP, "B", &b.buf)?;
    let v = vec_width::<T>(be, n, &[bs]);
    let sw = subwarp(n.div_ceil(v));
    let cfg = be.cfg(OP, (m.div_ceil(BLOCK / sw), n.div_ceil(sw * v), 1), BLOCK as u32, 0)?;
    let f = be.function("sparse", &format!("spmm24_{}_v{v}_w{sw}", T::SUFFIX))?;
    let (m_i, k_i, n_i) = (i32_arg(OP, "M", m)?, i32_arg(OP, "K", k)?, i32_arg(OP, "N", n)?);
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&m_i)
        .arg(&k_i)
        .arg(&n_i)
        .arg(sl::<T>(OP, "A.values", &a.values)?)
        .arg(sl::<u32>(OP, "A.meta", &a.meta)?)
        .arg(bs)
        .arg(sl_mut::<T>(OP, "C", &mut c.buf)?)
        .arg(&alpha)
        .arg(&beta);
    // SAFETY: the arguments match `spmm24_*` in cuda/sparse.cu in order and type; the lengths
    // of A's values and metadata, B and C were checked above against M, K, N; the metadata's
    // nibbles were validated by `Sparse24::new` (positions < 4, so every decoded column is
    // < K), and V == 4 only with N % 4 == 0 and B aligned to 4 elements (`vec_width`).
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(())
}

/// One tile configuration of the tensor-core kernel: `(name, block columns, block rows)`.
fn mma_config(n: usize) -> (&'static str, usize, usize) {
    match n {
        0..=16 => ("n16", 16, 16),
        17..=32 => ("n32", 32, 16),
        _ => ("n64", 64, 64),
    }
}

/// The sparse tensor-core kernel (f16, sm_80+), reading the fragment-ordered copy of A.
fn spmm24_mma(be: &CudaBackend, a: &DeviceSparse24, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
    const OP: &str = "spmm_24";
    check_sparse24(OP, a, b, c)?;
    let l = a.mma.as_ref().ok_or_else(|| Error::backend("cuda", format!("{OP}: A has no tensor-core layout")))?;
    let (m, k, n) = (a.rows, a.cols, b.cols);
    use crate::formats::sparse24::{MMA_K_PAD, MMA_ROW_PAD};
    let (want_tiles, want_steps) = (m.div_ceil(MMA_ROW_PAD) * MMA_ROW_PAD / 16, k.div_ceil(MMA_K_PAD) * MMA_K_PAD / 32);
    if l.m_tiles != want_tiles || l.k_steps != want_steps {
        return Err(Error::backend(
            "cuda",
            format!("{OP}: tensor-core layout has {} x {} tiles, expected {want_tiles} x {want_steps}", l.m_tiles, l.k_steps),
        ));
    }
    expect_len(OP, "A.mma_values", &l.values, l.m_tiles * l.k_steps * 128)?;
    expect_len(OP, "A.mma_meta", &l.meta, l.m_tiles * l.k_steps * 16)?;
    let av = sl::<u32>(OP, "A.mma_values", &l.values)?;
    if !be.aligned(av, 16) {
        return Err(Error::backend("cuda", format!("{OP}: the tensor-core values must be 16-byte aligned")));
    }
    let bs = sl::<f16>(OP, "B", &b.buf)?;
    let vec = n % 8 == 0 && be.aligned(bs, 16) && {
        let cs = sl::<f16>(OP, "C", &c.buf)?;
        be.aligned(cs, 16)
    };
    let (cfg_name, bn, bm) = mma_config(n);
    let name = format!("spmm24_mma_{cfg_name}_{}", if vec { "vec" } else { "scalar" });
    let cfg = be.cfg(OP, (n.div_ceil(bn), m.div_ceil(bm), 1), BLOCK as u32, 0)?;
    let f = be.function("sparse", &name)?;
    let (m_i, n_i, k_i, s_i) = (i32_arg(OP, "M", m)?, i32_arg(OP, "N", n)?, i32_arg(OP, "K", k)?, i32_arg(OP, "K steps", l.k_steps)?);
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&m_i)
        .arg(&n_i)
        .arg(&k_i)
        .arg(&s_i)
        .arg(av)
        .arg(sl::<u32>(OP, "A.mma_meta", &l.meta)?)
        .arg(bs)
        .arg(sl_mut::<f16>(OP, "C", &mut c.buf)?)
        .arg(&alpha)
        .arg(&beta);
    // SAFETY: the arguments match `spmm24_mma_*` in cuda/sparse.cu in order and type (the u32
    // values buffer is read as uint4: 16-byte aligned, checked above, and its length is a
    // multiple of 4 words); the layout's tile counts were checked against M and K (rows
    // padded to 64, K to 64, so every block's A loads stay inside it for grid.y =
    // ceil(M / block rows)), B and C lengths against K, N and M; the vector path is chosen
    // only with N % 8 == 0 and B, C 16-byte aligned; 128 threads as the kernels' launch bounds.
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(())
}

impl SparseOps for CudaBackend {
    fn spmm(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        let be = self;
        if super::sparse_tc::try_spmm_tc(be, a, b, c, alpha, beta)? {
            return Ok(()); // f16 at moderate sparsity: tensor cores (cuda/sparse_tc.cu)
        }
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

    fn spmm_24(&self, _: Checked, a: &DeviceSparse24, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        match a.dtype() {
            DType::F32 => spmm24_simple::<f32>(self, a, b, c, alpha, beta),
            DType::F16 if a.mma.is_some() && self.compute_capability().0 >= 8 && !simple_kernels_forced() => {
                spmm24_mma(self, a, b, c, alpha, beta)
            }
            DType::F16 => spmm24_simple::<f16>(self, a, b, c, alpha, beta),
            d => Err(Error::dtype("spmm_24", format!("A is {d}"))),
        }
    }

    /// f16 from sm_80, unless `SLIMGEMM_KERNEL=simple` (then the copy is never read).
    fn spmm_24_wants_mma_layout(&self, dtype: DType) -> bool {
        dtype == DType::F16 && self.compute_capability().0 >= 8 && !simple_kernels_forced()
    }
}
