//! CPU reference for the quantized ops (exact integer accumulation).

#[allow(unused_imports)]
use super::filter_dims;
use super::{s, sm};
use crate::backend::{Checked, QuantOps};
#[allow(unused_imports)]
use crate::dtype::DType;
use crate::error::Result;
#[allow(unused_imports)]
use crate::tensor::*;

use crate::dtype::Float;

/// Rounds half away from zero (the convention every backend implements): `2.5 -> 3`,
/// `-2.5 -> -3`, `0.49999997 -> 0`. This is `f32::round` (C's `roundf`), which is exact; the
/// shortcut `sign(x) * floor(|x| + 0.5)` is not (it gives 1 for `0.49999997`, because
/// `0.49999997 + 0.5` rounds up to 1.0 in f32).
pub fn round_half_away(x: f32) -> f32 {
    x.round()
}

/// Quantizes one row: returns its scale and writes `q` (see
/// [`crate::backend::QuantOps::quantize_rows_i8`] for the exact rule). `inv = 127 / amax` is
/// computed once in f32 and each `x * inv` rounded half away from zero. Non-finite input (which
/// the host quantizer rejects): an infinite `amax` gives a zero row; NaN elements are skipped by
/// the max and quantize to 0.
pub fn quantize_row<T: Float>(x: &[T], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.to_f32().abs()));
    if amax == 0.0 || !amax.is_finite() {
        q.iter_mut().for_each(|v| *v = 0);
        return 0.0;
    }
    let inv = 127.0f32 / amax;
    for (o, v) in q.iter_mut().zip(x) {
        *o = round_half_away(v.to_f32() * inv).clamp(-127.0, 127.0) as i8;
    }
    amax / 127.0
}

/// Quantizes `m` rows of `k` into `q` (row stride `stride`) and `scales`.
pub fn quantize_rows<T: Float>(m: usize, k: usize, x: &[T], q: &mut [i8], stride: usize, scales: &mut [f32]) {
    for i in 0..m {
        scales[i] = quantize_row(&x[i * k..][..k], &mut q[i * stride..][..k]);
    }
}

/// Exact dot product of two int8 rows: i32 partial sums over chunks of [`I32_CHUNK`]
/// (a chunk cannot overflow), summed in i64.
pub fn dot_i8(a: &[i8], b: &[i8]) -> i64 {
    a.chunks(I32_CHUNK).zip(b.chunks(I32_CHUNK)).map(|(a, b)| a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum::<i32>() as i64).sum()
}

/// Run of int8 products summed in i32: `2^16` products of magnitude at most `128 * 128 = 2^14`
/// sum to at most `2^30`, so even -128 (which quantization never produces) cannot overflow.
pub const I32_CHUNK: usize = 1 << 16;

/// `Y[i,j] = (sx_i * sw_j) * sum_k xq[i,k] wq[j,k]` with exact integer accumulation; the
/// scale product is taken in f32 first, then multiplied by the accumulator converted to f32
/// (the order every backend uses). Rows of X and W start every `xs` / `ws` elements.
#[allow(clippy::too_many_arguments)]
pub fn gemm_w8a8<T: Float>(m: usize, n: usize, k: usize, xq: &[i8], xs: usize, sx: &[f32], wq: &[i8], ws: usize, sw: &[f32], y: &mut [T]) {
    for i in 0..m {
        let xr = &xq[i * xs..][..k];
        for j in 0..n {
            let wr = &wq[j * ws..][..k];
            let acc = dot_i8(xr, wr);
            y[i * n + j] = T::from_f32((sx[i] * sw[j]) * acc as f32);
        }
    }
}

/// `gemm_w8a8_dyn`: X `[m,k]` quantized per row by [`quantize_rows`] (into a scratch of row
/// stride `k`), then [`gemm_w8a8`] against W (rows every `ws`): the same two steps, so
/// bit-identical to the two ops run one after the other.
#[allow(clippy::too_many_arguments)]
pub fn gemm_w8a8_dyn<T: Float>(m: usize, n: usize, k: usize, x: &[T], wq: &[i8], ws: usize, sw: &[f32], y: &mut [T]) {
    let mut xq = vec![0i8; m * k];
    let mut sx = vec![0f32; m];
    quantize_rows(m, k, x, &mut xq, k, &mut sx);
    gemm_w8a8(m, n, k, &xq, k, &sx, wq, ws, sw, y);
}

/// The per-group offsets of int4 weights as device-layout slices (`[n, k / group]`).
#[derive(Debug, Clone, Copy)]
pub enum Int4GroupOffsets<'a> {
    /// Zero points (0..16): `w = (q - zero) * scale`.
    Zeros(&'a [u32]),
    /// Float minimums (GGUF Q4_K): `w = q * scale - min`.
    Mins(&'a [f32]),
}

/// `Y = X dequant(W)^T`, W `[n,k]` int4 group-wise (layout of
/// [`crate::formats::Int4Weights`]). Each weight is dequantized in f32 exactly as
/// [`crate::formats::Int4Weights::dequant`] does (`(q - z) * s`, or `q * s - min` as one
/// multiply then one subtract), then `x * w` is accumulated in f64. With `perm` (act-order),
/// stored column `c` multiplies X's column `perm[c]`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_w4a16<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    group: usize,
    x: &[T],
    qweight: &[u32],
    scales: &[f32],
    offsets: Int4GroupOffsets<'_>,
    perm: Option<&[u32]>,
    y: &mut [T],
) {
    let groups = k / group;
    let mut wrow = vec![0f64; k];
    // The X column each stored column multiplies.
    let cols: Vec<usize> = match perm {
        Some(p) => p.iter().map(|&c| c as usize).collect(),
        None => (0..k).collect(),
    };
    for j in 0..n {
        for (kk, w) in wrow.iter_mut().enumerate() {
            let q = ((qweight[j * (k / 8) + kk / 8] >> (4 * (kk % 8))) & 0xF) as f32;
            let g = j * groups + kk / group;
            *w = match offsets {
                Int4GroupOffsets::Zeros(z) => (q - z[g] as f32) * scales[g],
                Int4GroupOffsets::Mins(mins) => q * scales[g] - mins[g],
            } as f64;
        }
        for i in 0..m {
            let xr = &x[i * k..][..k];
            let acc: f64 = cols.iter().zip(&wrow).map(|(&c, w)| xr[c].to_f64() * w).sum();
            y[i * n + j] = T::from_f64(acc);
        }
    }
}

/// `Y = X dequant(W)^T`, W `[n,k]` int8 with group-wise scales (layout of
/// [`crate::formats::Int8Weights`]): each weight dequantized in f32 (`q * s`, as
/// [`crate::formats::Int8Weights::dequant`]), `x * w` accumulated in f64.
#[allow(clippy::too_many_arguments)]
pub fn gemm_w8a16<T: Float>(m: usize, n: usize, k: usize, group: usize, x: &[T], q: &[i8], scales: &[f32], y: &mut [T]) {
    let groups = k / group;
    let mut wrow = vec![0f64; k];
    for j in 0..n {
        for (kk, w) in wrow.iter_mut().enumerate() {
            *w = (q[j * k + kk] as f32 * scales[j * groups + kk / group]) as f64;
        }
        for i in 0..m {
            let acc: f64 = x[i * k..][..k].iter().zip(&wrow).map(|(a, b)| a.to_f64() * b).sum();
            y[i * n + j] = T::from_f64(acc);
        }
    }
}

impl QuantOps for super::CpuBackend {
    fn quantize_rows_i8(&self, _: Checked, x: &Tensor, out: &mut DeviceInt8Matrix) -> Result<()> {
        let (m, k, stride) = (out.rows, out.cols, out.stride);
        let DeviceInt8Matrix { q, scales, .. } = out;
        with_float!(x.dtype(), T => quantize_rows::<T>(m, k, s(&x.buf), sm(q), stride, sm(scales)));
        Ok(())
    }
    fn gemm_w8a8(&self, _: Checked, x: &DeviceInt8Matrix, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
        with_float!(y.dtype(), T => gemm_w8a8::<T>(x.rows, w.rows, x.cols, s(&x.q), x.stride, s(&x.scales), s(&w.q), w.stride, s(&w.scales), sm(&mut y.buf)));
        Ok(())
    }
    fn gemm_w8a8_dyn(&self, _: Checked, x: &Tensor, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
        with_float!(x.dtype(), T => gemm_w8a8_dyn::<T>(x.rows, w.rows, x.cols, s(&x.buf), s(&w.q), w.stride, s(&w.scales), sm(&mut y.buf)));
        Ok(())
    }
    fn gemm_w4a16(&self, _: Checked, x: &Tensor, w: &DeviceInt4Weights, y: &mut Tensor) -> Result<()> {
        let offsets = match &w.mins {
            Some(m) => Int4GroupOffsets::Mins(s(m)),
            None => Int4GroupOffsets::Zeros(s(&w.zeros)),
        };
        let perm = w.perm.as_ref().map(s::<u32>);
        with_float!(x.dtype(), T => gemm_w4a16::<T>(x.rows, w.n, w.k, w.group, s(&x.buf), s(&w.qweight), s(&w.scales), offsets, perm, sm(&mut y.buf)));
        Ok(())
    }
    fn gemm_w8a16(&self, _: Checked, x: &Tensor, w: &DeviceInt8Weights, y: &mut Tensor) -> Result<()> {
        with_float!(x.dtype(), T => gemm_w8a16::<T>(x.rows, w.n, w.k, w.group, s(&x.buf), s(&w.q), s(&w.scales), sm(&mut y.buf)));
        Ok(())
    }
}
