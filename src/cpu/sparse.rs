//! CPU reference for the sparse ops (f64 accumulation).

use crate::dtype::Float;

/// `C = alpha * A * B + beta * C`; A `[m,k]` CSR, B `[k,n]`, C `[m,n]`. With `beta == 0`
/// the old C is not read (BLAS convention).
#[allow(clippy::too_many_arguments)]
pub fn spmm<T: Float>(m: usize, n: usize, indptr: &[u32], indices: &[u32], values: &[T], b: &[T], c: &mut [T], alpha: f32, beta: f32) {
    let mut acc = vec![0f64; n];
    for i in 0..m {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for p in indptr[i] as usize..indptr[i + 1] as usize {
            let v = values[p].to_f64();
            let row = &b[indices[p] as usize * n..][..n];
            for (a, x) in acc.iter_mut().zip(row) {
                *a += v * x.to_f64();
            }
        }
        for (j, a) in acc.iter().enumerate() {
            let old = if beta == 0.0 { 0.0 } else { beta as f64 * c[i * n + j].to_f64() };
            c[i * n + j] = T::from_f64(alpha as f64 * a + old);
        }
    }
}

/// `C = A^T * B`; A `[m,k]` CSR, B `[m,n]`, C `[k,n]` (overwritten).
#[allow(clippy::too_many_arguments)]
pub fn spmm_t<T: Float>(m: usize, k: usize, n: usize, indptr: &[u32], indices: &[u32], values: &[T], b: &[T], c: &mut [T]) {
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
    for i in 0..m {
        let xr = &x[i * kd..][..kd];
        for p in indptr[i] as usize..indptr[i + 1] as usize {
            let yr = &y[indices[p] as usize * kd..][..kd];
            let dot: f64 = xr.iter().zip(yr).map(|(a, b)| a.to_f64() * b.to_f64()).sum();
            let old = if beta == 0.0 { 0.0 } else { beta as f64 * values[p].to_f64() };
            values[p] = T::from_f64(alpha as f64 * dot + old);
        }
    }
}
