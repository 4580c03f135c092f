//! CPU reference for the low-rank ops (f64 accumulation).

#[allow(unused_imports)]
use super::filter_dims;
use super::{s, sm};
use crate::backend::{Checked, LowRankGrads, LowRankOps};
#[allow(unused_imports)]
use crate::dtype::DType;
use crate::error::Result;
#[allow(unused_imports)]
use crate::tensor::*;

use crate::cpu::sparse::par_rows;
use crate::dtype::Float;

/// `Y = X V U^T + bias`; U `[m,r]`, V `[n,r]`, X `[b,n]`, Y `[b,m]`, bias `[m]`.
/// The intermediate `T = X V` is kept in f64 (as the fused kernels keep it on chip).
/// Rows of Y are independent and split over threads when the problem is large.
#[allow(clippy::too_many_arguments)]
pub fn linear<T: Float>(m: usize, n: usize, r: usize, u: &[T], v: &[T], x: &[T], bias: Option<&[T]>, y: &mut [T]) {
    let b = x.len() / n;
    par_rows(&mut y[..b * m], m, b * (n + m) * r, |first, chunk| {
        let mut t = vec![0f64; r];
        for (ii, yrow) in chunk.chunks_mut(m).enumerate() {
            let i = first + ii;
            t.iter_mut().for_each(|a| *a = 0.0);
            for kk in 0..n {
                let xv = x[i * n + kk].to_f64();
                for (a, vv) in t.iter_mut().zip(&v[kk * r..][..r]) {
                    *a += xv * vv.to_f64();
                }
            }
            for (j, out) in yrow.iter_mut().enumerate() {
                let mut acc: f64 = t.iter().zip(&u[j * r..][..r]).map(|(a, uu)| a * uu.to_f64()).sum();
                if let Some(bias) = bias {
                    acc += bias[j].to_f64();
                }
                *out = T::from_f64(acc);
            }
        }
    });
}

/// `W = U V^T`, W `[m,n]` (rows of W split over threads when large).
pub fn reconstruct<T: Float>(m: usize, n: usize, r: usize, u: &[T], v: &[T], w: &mut [T]) {
    par_rows(&mut w[..m * n], n, m * n * r, |first, chunk| {
        for (ii, wrow) in chunk.chunks_mut(n).enumerate() {
            let i = first + ii;
            for (j, out) in wrow.iter_mut().enumerate() {
                let acc: f64 = (0..r).map(|t| u[i * r + t].to_f64() * v[j * r + t].to_f64()).sum();
                *out = T::from_f64(acc);
            }
        }
    });
}

/// Gram matrix `A^T A` of a row-major `[rows, r]` matrix, in f64.
fn gram(a: &[f32], rows: usize, r: usize) -> Vec<f64> {
    let mut g = vec![0f64; r * r];
    for i in 0..rows {
        let row = &a[i * r..][..r];
        for p in 0..r {
            for q in 0..r {
                g[p * r + q] += row[p] as f64 * row[q] as f64;
            }
        }
    }
    g
}

/// `out += c * A G` for `A [rows, r]`, `G [r, r]`.
fn add_scaled_product(out: &mut [f32], a: &[f32], g: &[f64], rows: usize, r: usize, c: f32) {
    for i in 0..rows {
        for q in 0..r {
            let acc: f64 = (0..r).map(|p| a[i * r + p] as f64 * g[p * r + q]).sum();
            out[i * r + q] = (out[i * r + q] as f64 + c as f64 * acc) as f32;
        }
    }
}

/// `dU += c U (V^T V)`, `dV += c V (U^T U)`.
#[allow(clippy::too_many_arguments)]
pub fn frobenius_decay(m: usize, n: usize, r: usize, u: &[f32], v: &[f32], c: f32, du: &mut [f32], dv: &mut [f32]) {
    let vtv = gram(v, n, r);
    let utu = gram(u, m, r);
    add_scaled_product(du, u, &vtv, m, r, c);
    add_scaled_product(dv, v, &utu, n, r, c);
}

/// `A B` for `A [rows, k]` (row-major, any float) and `B [k, r]` in f64, `[rows, r]` f64.
fn times_factor<T: Float>(a: &[T], rows: usize, k: usize, f: &[T], r: usize) -> Vec<f64> {
    let mut out = vec![0f64; rows * r];
    par_rows(&mut out, r, rows * k * r, |first, chunk| {
        for (ii, orow) in chunk.chunks_mut(r).enumerate() {
            let i = first + ii;
            for kk in 0..k {
                let av = a[i * k + kk].to_f64();
                for (o, fv) in orow.iter_mut().zip(&f[kk * r..][..r]) {
                    *o += av * fv.to_f64();
                }
            }
        }
    });
    out
}

/// `out = A^T P + beta * out` for `A [b, rows]` (row-major) and `P [b, r]` (f64): the
/// factor gradients of [`backward`]. With `beta == 0` the old `out` is not read.
fn grad_factor<T: Float>(a: &[T], b: usize, rows: usize, p: &[f64], r: usize, beta: f32, out: &mut [T]) {
    par_rows(&mut out[..rows * r], r, b * rows * r, |first, chunk| {
        let mut acc = vec![0f64; r];
        for (jj, orow) in chunk.chunks_mut(r).enumerate() {
            let j = first + jj;
            acc.iter_mut().for_each(|x| *x = 0.0);
            for i in 0..b {
                let av = a[i * rows + j].to_f64();
                for (x, pv) in acc.iter_mut().zip(&p[i * r..][..r]) {
                    *x += av * pv;
                }
            }
            for (o, x) in orow.iter_mut().zip(&acc) {
                let old = if beta == 0.0 { 0.0 } else { beta as f64 * o.to_f64() };
                *o = T::from_f64(x + old);
            }
        }
    });
}

/// Backward pass of `Y = X V U^T`: `dX = dY U V^T` (when `dx` is given), `dU = dY^T (X V) +
/// beta dU`, `dV = X^T (dY U) + beta dV`; U `[m,r]`, V `[n,r]`, X `[b,n]`, dY `[b,m]`.
/// `P = X V` and `Q = dY U` are kept in f64. With `beta == 0` dU and dV are not read.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Float>(
    m: usize,
    n: usize,
    r: usize,
    u: &[T],
    v: &[T],
    x: &[T],
    dy: &[T],
    dx: Option<&mut [T]>,
    du: &mut [T],
    dv: &mut [T],
    beta: f32,
) {
    let b = x.len() / n;
    let p = times_factor(x, b, n, v, r);
    let q = times_factor(dy, b, m, u, r);
    if let Some(dx) = dx {
        par_rows(&mut dx[..b * n], n, b * n * r, |first, chunk| {
            for (ii, row) in chunk.chunks_mut(n).enumerate() {
                let qi = &q[(first + ii) * r..][..r];
                for (kk, o) in row.iter_mut().enumerate() {
                    let acc: f64 = qi.iter().zip(&v[kk * r..][..r]).map(|(a, vv)| a * vv.to_f64()).sum();
                    *o = T::from_f64(acc);
                }
            }
        });
    }
    grad_factor(dy, b, m, &p, r, beta, du);
    grad_factor(x, b, n, &q, r, beta, dv);
}

impl LowRankOps for super::CpuBackend {
    fn lowrank_linear(&self, _: Checked, lr: &DeviceLowRank, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()> {
        with_float!(lr.dtype(), T => linear::<T>(lr.m, lr.n, lr.r, s(&lr.u.buf), s(&lr.v.buf), s(&x.buf), bias.map(|b| s::<T>(&b.buf)), sm(&mut y.buf)));
        Ok(())
    }
    fn lowrank_reconstruct(&self, _: Checked, lr: &DeviceLowRank, w: &mut Tensor) -> Result<()> {
        with_float!(lr.dtype(), T => reconstruct::<T>(lr.m, lr.n, lr.r, s(&lr.u.buf), s(&lr.v.buf), sm(&mut w.buf)));
        Ok(())
    }
    fn frobenius_decay(&self, _: Checked, lr: &DeviceLowRank, c: f32, du: &mut Tensor, dv: &mut Tensor) -> Result<()> {
        frobenius_decay(lr.m, lr.n, lr.r, s(&lr.u.buf), s(&lr.v.buf), c, sm(&mut du.buf), sm(&mut dv.buf));
        Ok(())
    }
    fn lowrank_backward(&self, _: Checked, lr: &DeviceLowRank, x: &Tensor, dy: &Tensor, g: LowRankGrads<'_>, beta: f32) -> Result<()> {
        let LowRankGrads { dx, du, dv } = g;
        with_float!(lr.dtype(), T => backward::<T>(
            lr.m,
            lr.n,
            lr.r,
            s(&lr.u.buf),
            s(&lr.v.buf),
            s(&x.buf),
            s(&dy.buf),
            dx.map(|t| sm::<T>(&mut t.buf)),
            sm(&mut du.buf),
            sm(&mut dv.buf),
            beta
        ));
        Ok(())
    }
}
