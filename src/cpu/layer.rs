//! CPU reference of the layer kernels ([`LayerOps`]): a transpose (a host loop) and the dense
//! linear layer (f64 accumulation, rows over threads like the sparse ops).

use super::sparse::par_rows;
use super::{s, sm};
use crate::backend::{Checked, LayerOps};
use crate::dtype::{Element, Float};
use crate::error::Result;
use crate::tensor::Tensor;

/// `out = x^T`: x `[rows, cols]`, out `[cols, rows]`, element bits copied.
pub fn transpose<T: Element>(rows: usize, cols: usize, x: &[T], out: &mut [T]) {
    for (i, row) in x.chunks_exact(cols.max(1)).take(rows).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            out[j * rows + i] = v;
        }
    }
}

/// `y = x W^T + bias`: x `[b,k]`, W `[n,k]`, bias `n` values, y `[b,n]` (overwritten), f64
/// accumulation. Parallel over the rows of y, or, for fewer rows than threads would use
/// (decode-sized batches), over the rows of W into `y^T` first.
pub fn dense_linear<T: Float>(b: usize, n: usize, k: usize, w: &[T], x: &[T], bias: Option<&[T]>, y: &mut [T]) {
    let work = b.saturating_mul(n).saturating_mul(k);
    let dot = |i: usize, j: usize| -> f64 {
        let (xr, wr) = (&x[i * k..][..k], &w[j * k..][..k]);
        let acc: f64 = xr.iter().zip(wr).map(|(a, c)| a.to_f64() * c.to_f64()).sum();
        acc + bias.map_or(0.0, |bb| bb[j].to_f64())
    };
    if b >= 8 {
        par_rows(&mut y[..b * n], n, work, |first, chunk| {
            for (ii, yr) in chunk.chunks_mut(n).enumerate() {
                for (j, o) in yr.iter_mut().enumerate() {
                    *o = T::from_f64(dot(first + ii, j));
                }
            }
        });
        return;
    }
    let mut yt = vec![T::default(); n * b];
    par_rows(&mut yt, b, work, |first, chunk| {
        for (jj, col) in chunk.chunks_mut(b).enumerate() {
            for (i, o) in col.iter_mut().enumerate() {
                *o = T::from_f64(dot(i, first + jj));
            }
        }
    });
    transpose(n, b, &yt, &mut y[..b * n]);
}

impl LayerOps for super::CpuBackend {
    fn transpose(&self, _: Checked, x: &Tensor, out: &mut Tensor) -> Result<()> {
        with_float!(x.dtype(), T => transpose::<T>(x.rows, x.cols, s(&x.buf), sm(&mut out.buf)));
        Ok(())
    }

    fn dense_linear(&self, _: Checked, w: &Tensor, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()> {
        with_float!(w.dtype(), T => dense_linear::<T>(x.rows, w.rows, w.cols, s(&w.buf), s(&x.buf), bias.map(|bb| s::<T>(&bb.buf)), sm(&mut y.buf)));
        Ok(())
    }
}
