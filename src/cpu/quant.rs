//! CPU reference for the quantized ops (exact integer accumulation).

use crate::dtype::Float;

/// Rounds half away from zero (the convention every backend implements).
pub fn round_half_away(x: f32) -> f32 {
    x.signum() * (x.abs() + 0.5).floor()
}

/// Quantizes one row: returns its scale and writes `q` (see
/// [`crate::backend::Backend::quantize_rows_i8`] for the exact rule).
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

/// `Y[i,j] = (sx_i * sw_j) * sum_k xq[i,k] wq[j,k]` with exact integer accumulation.
#[allow(clippy::too_many_arguments)]
pub fn gemm_w8a8<T: Float>(m: usize, n: usize, k: usize, xq: &[i8], xs: usize, sx: &[f32], wq: &[i8], ws: usize, sw: &[f32], y: &mut [T]) {
    for i in 0..m {
        let xr = &xq[i * xs..][..k];
        for j in 0..n {
            let wr = &wq[j * ws..][..k];
            let acc: i64 = xr.iter().zip(wr).map(|(&a, &b)| a as i64 * b as i64).sum();
            y[i * n + j] = T::from_f32((sx[i] * sw[j]) * acc as f32);
        }
    }
}

/// `Y = X dequant(W)^T`, W `[n,k]` int4 group-wise (layout of
/// [`crate::formats::Int4Weights`]); f64 accumulation of `x * ((q - z) * s)`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_w4a16<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    group: usize,
    x: &[T],
    qweight: &[u32],
    scales: &[f32],
    zeros: &[u32],
    y: &mut [T],
) {
    let groups = k / group;
    let mut wrow = vec![0f64; k];
    for j in 0..n {
        for (kk, w) in wrow.iter_mut().enumerate() {
            let q = (qweight[j * (k / 8) + kk / 8] >> (4 * (kk % 8))) & 0xF;
            let g = j * groups + kk / group;
            *w = ((q as f32 - zeros[g] as f32) * scales[g]) as f64;
        }
        for i in 0..m {
            let acc: f64 = x[i * k..][..k].iter().zip(&wrow).map(|(a, b)| a.to_f64() * b).sum();
            y[i * n + j] = T::from_f64(acc);
        }
    }
}
