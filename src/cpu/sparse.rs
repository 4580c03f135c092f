//! CPU reference for the sparse ops (f64 accumulation). Output rows are independent, so
//! large problems are split into contiguous row ranges over threads ([`par_rows`]); each
//! row is computed by the same plain loop either way.

#[allow(unused_imports)]
use super::filter_dims;
use super::{s, sm};
use crate::backend::{Checked, SparseOps};
#[allow(unused_imports)]
use crate::dtype::DType;
use crate::error::Result;
#[allow(unused_imports)]
use crate::tensor::*;

use crate::dtype::Float;

/// Below this many multiply-adds a call stays on the calling thread.
const PAR_MIN_WORK: usize = 1 << 20;

fn threads_for(rows: usize, work: usize) -> usize {
    if work < PAR_MIN_WORK {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(rows).max(1)
}

/// Runs `f(first_row, rows_chunk)` over contiguous row ranges of `out` (rows of `row_len`
/// elements), on scoped threads when `work` (multiply-adds) is large, else in one call.
pub(crate) fn par_rows<T: Send>(out: &mut [T], row_len: usize, work: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let rows = out.len().checked_div(row_len).unwrap_or(0);
    let threads = threads_for(rows, work);
    if threads <= 1 || row_len == 0 {
        f(0, out);
        return;
    }
    let per = rows.div_ceil(threads);
    std::thread::scope(|s| {
        for (t, chunk) in out.chunks_mut(per * row_len).enumerate() {
            let f = &f;
            s.spawn(move || f(t * per, chunk));
        }
    });
}

/// `C = alpha * A * B + beta * C`; A `[m,k]` CSR, B `[k,n]`, C `[m,n]`. With `beta == 0`
/// the old C is not read (BLAS convention).
#[allow(clippy::too_many_arguments)]
pub fn spmm<T: Float>(m: usize, n: usize, indptr: &[u32], indices: &[u32], values: &[T], b: &[T], c: &mut [T], alpha: f32, beta: f32) {
    let work = indptr[m] as usize * n;
    par_rows(&mut c[..m * n], n, work, |first, chunk| {
        let mut acc = vec![0f64; n];
        for (ii, crow) in chunk.chunks_mut(n).enumerate() {
            let i = first + ii;
            acc.iter_mut().for_each(|a| *a = 0.0);
            for p in indptr[i] as usize..indptr[i + 1] as usize {
                let v = values[p].to_f64();
                let row = &b[indices[p] as usize * n..][..n];
                for (a, x) in acc.iter_mut().zip(row) {
                    *a += v * x.to_f64();
                }
            }
            for (o, a) in crow.iter_mut().zip(&acc) {
                let old = if beta == 0.0 { 0.0 } else { beta as f64 * o.to_f64() };
                *o = T::from_f64(alpha as f64 * a + old);
            }
        }
    });
}

/// `C = A^T * B`; A `[m,k]` CSR, B `[m,n]`, C `[k,n]` (overwritten).
#[allow(clippy::too_many_arguments)]
pub fn spmm_t<T: Float>(m: usize, k: usize, n: usize, indptr: &[u32], indices: &[u32], values: &[T], b: &[T], c: &mut [T]) {
    // Scatter form: row i of A sends v * B[i,:] to row j of C for each stored (i, j).
    let mut acc = vec![0f64; k * n];
    for i in 0..m {
        for p in indptr[i] as usize..indptr[i + 1] as usize {
            let v = values[p].to_f64();
            let j = indices[p] as usize;
            for t in 0..n {
                acc[j * n + t] += v * b[i * n + t].to_f64();
            }
        }
    }
    for (o, a) in c.iter_mut().zip(&acc) {
        *o = T::from_f64(*a);
    }
}

/// For each stored `(i,j)`: `a_ij = alpha * dot(X[i,:], Y[j,:]) + beta * a_ij`; X `[m,kd]`,
/// Y `[n,kd]`. With `beta == 0` the old value is not read.
#[allow(clippy::too_many_arguments)]
pub fn sddmm<T: Float>(m: usize, kd: usize, indptr: &[u32], indices: &[u32], values: &mut [T], x: &[T], y: &[T], alpha: f32, beta: f32) {
    let rows_range = |first: usize, last: usize, vals: &mut [T]| {
        let base = indptr[first] as usize;
        for i in first..last {
            let xr = &x[i * kd..][..kd];
            for p in indptr[i] as usize..indptr[i + 1] as usize {
                let yr = &y[indices[p] as usize * kd..][..kd];
                let dot: f64 = xr.iter().zip(yr).map(|(a, b)| a.to_f64() * b.to_f64()).sum();
                let slot = &mut vals[p - base];
                let old = if beta == 0.0 { 0.0 } else { beta as f64 * slot.to_f64() };
                *slot = T::from_f64(alpha as f64 * dot + old);
            }
        }
    };
    let threads = threads_for(m, indptr[m] as usize * kd);
    let values = &mut values[..indptr[m] as usize];
    if threads <= 1 {
        rows_range(0, m, values);
        return;
    }
    // Row ranges own disjoint, contiguous value ranges indptr[first]..indptr[last].
    let per = m.div_ceil(threads);
    std::thread::scope(|s| {
        let mut rest = values;
        for first in (0..m).step_by(per) {
            let last = (first + per).min(m);
            let (mine, tail) = rest.split_at_mut((indptr[last] - indptr[first]) as usize);
            rest = tail;
            let f = &rows_range;
            s.spawn(move || f(first, last, mine));
        }
    });
}

/// `C = alpha * A * B + beta * C`; A `[m,k]` 2:4 in the layout of
/// [`crate::formats::Sparse24`] (`values` `[m, k/2]`, `meta` `[m, ceil(k/32)]`), B `[k,n]`,
/// C `[m,n]`. Every stored value (explicit zeros included) is multiplied, in f64. With
/// `beta == 0` the old C is not read.
#[allow(clippy::too_many_arguments)]
pub fn spmm_24<T: Float>(m: usize, k: usize, n: usize, values: &[T], meta: &[u32], b: &[T], c: &mut [T], alpha: f32, beta: f32) {
    let (half, stride) = (k / 2, k.div_ceil(32));
    let work = m * half * n;
    par_rows(&mut c[..m * n], n, work, |first, chunk| {
        let mut acc = vec![0f64; n];
        for (ii, crow) in chunk.chunks_mut(n).enumerate() {
            let i = first + ii;
            acc.iter_mut().for_each(|a| *a = 0.0);
            for g in 0..k / 4 {
                let nib = (meta[i * stride + g / 8] >> (4 * (g % 8))) & 0xF;
                let (p0, p1) = crate::formats::sparse24::nibble_positions(nib);
                for (slot, pos) in [(0, p0), (1, p1)] {
                    let v = values[i * half + 2 * g + slot].to_f64();
                    let row = &b[(4 * g + pos) * n..][..n];
                    for (a, x) in acc.iter_mut().zip(row) {
                        *a += v * x.to_f64();
                    }
                }
            }
            for (o, a) in crow.iter_mut().zip(&acc) {
                let old = if beta == 0.0 { 0.0 } else { beta as f64 * o.to_f64() };
                *o = T::from_f64(alpha as f64 * a + old);
            }
        }
    });
}

impl SparseOps for super::CpuBackend {
    fn spmm(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        with_float!(a.dtype(), T => spmm::<T>(a.rows, b.cols, s(&a.indptr), s(&a.indices), s(&a.values), s(&b.buf), sm(&mut c.buf), alpha, beta));
        Ok(())
    }
    fn spmm_t(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor) -> Result<()> {
        with_float!(a.dtype(), T => spmm_t::<T>(a.rows, a.cols, b.cols, s(&a.indptr), s(&a.indices), s(&a.values), s(&b.buf), sm(&mut c.buf)));
        Ok(())
    }
    fn sddmm(&self, _: Checked, a: &mut DeviceCsr, x: &Tensor, y: &Tensor, alpha: f32, beta: f32) -> Result<()> {
        let (rows, kd, nnz) = (a.rows, x.cols, a.nnz);
        let DeviceCsr { indptr, indices, values, t_perm, t_values, .. } = a;
        with_float!(values.dtype, T => {
            sddmm::<T>(rows, kd, s(indptr), s(indices), sm(values), s(&x.buf), s(&y.buf), alpha, beta);
            // Keep the CSC-ordered copy equal to the new values (the GPU backends' spmm_t reads it).
            let (src, perm) = (s::<T>(values), s::<u32>(t_perm));
            for (d, &p) in sm::<T>(t_values)[..nnz].iter_mut().zip(&perm[..nnz]) {
                *d = src[p as usize];
            }
        });
        Ok(())
    }
    fn spmm_24(&self, _: Checked, a: &DeviceSparse24, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        with_float!(a.dtype(), T => spmm_24::<T>(a.rows, a.cols, b.cols, s(&a.values), s(&a.meta), s(&b.buf), sm(&mut c.buf), alpha, beta));
        Ok(())
    }
}
