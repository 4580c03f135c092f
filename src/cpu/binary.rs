//! CPU reference for the binary ops.

#[allow(unused_imports)]
use super::filter_dims;
use super::{s, sm};
use crate::backend::{BinaryOps, BitsOut, Checked};
#[allow(unused_imports)]
use crate::dtype::DType;
use crate::error::Result;
#[allow(unused_imports)]
use crate::tensor::*;

use crate::dtype::Float;
use crate::formats::binary::{Conv2dParams, PadMode};

/// Packs signs (`x < 0` is bit 1) of `[rows, cols]` into `[rows, words]` u32.
pub fn binarize_pack<T: Float>(rows: usize, cols: usize, x: &[T], out: &mut [u32]) {
    let words = cols.div_ceil(32);
    out.iter_mut().for_each(|w| *w = 0);
    for i in 0..rows {
        for c in 0..cols {
            if x[i * cols + c].to_f32() < 0.0 {
                out[i * words + c / 32] |= 1 << (c % 32);
            }
        }
    }
}

/// `Y[i,j] = alpha_j * (K - 2 popcount(a_i XOR w_j))`.
#[allow(clippy::too_many_arguments)]
pub fn xnor_gemm(m: usize, n: usize, kbits: usize, words: usize, a: &[u32], w: &[u32], alpha: &[f32], y: &mut [f32]) {
    for i in 0..m {
        for j in 0..n {
            let pop: u32 = (0..words).map(|t| (a[i * words + t] ^ w[j * words + t]).count_ones()).sum();
            y[i * n + j] = alpha[j] * (kbits as f32 - 2.0 * pop as f32);
        }
    }
}

/// Filter geometry for [`xnor_conv2d`].
#[derive(Debug, Clone, Copy)]
pub struct FilterDims {
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Input channels.
    pub c_in: usize,
    /// Words per tap.
    pub words: usize,
}

/// Binary conv with f32 output `[batch*oh*ow, c_out]`: `y = alpha_o * dot + bias_o`, where
/// out-of-image taps count as +1 inputs (`PadMode::One`) or not at all (`PadMode::Zero`).
pub fn xnor_conv2d(x: &[u32], f: FilterDims, fbits: &[u32], alpha: &[f32], bias: &[f32], p: &Conv2dParams, y: &mut [f32]) {
    let (oh, ow) = p.output_hw(f.kh, f.kw).expect("validated by Device");
    let wd = f.words;
    for b in 0..p.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                let opix = (b * oh + oy) * ow + ox;
                for o in 0..f.c_out {
                    let mut dot: i64 = 0;
                    for ky in 0..f.kh {
                        for kx in 0..f.kw {
                            let iy = (oy * p.stride_h + ky) as isize - p.pad_h as isize;
                            let ix = (ox * p.stride_w + kx) as isize - p.pad_w as isize;
                            let wrow = &fbits[((o * f.kh + ky) * f.kw + kx) * wd..][..wd];
                            let inside = iy >= 0 && ix >= 0 && (iy as usize) < p.in_h && (ix as usize) < p.in_w;
                            if inside {
                                let ipix = (b * p.in_h + iy as usize) * p.in_w + ix as usize;
                                let xrow = &x[ipix * wd..][..wd];
                                let pop: u32 = xrow.iter().zip(wrow).map(|(a, w)| (a ^ w).count_ones()).sum();
                                dot += f.c_in as i64 - 2 * pop as i64;
                            } else if p.pad_mode == PadMode::One {
                                let pop: u32 = wrow.iter().map(|w| w.count_ones()).sum();
                                dot += f.c_in as i64 - 2 * pop as i64;
                            }
                        }
                    }
                    y[opix * f.c_out + o] = alpha[o] * dot as f32 + bias[o];
                }
            }
        }
    }
}

/// Thresholds a conv output `[pixels, c_out]` into bits: bit 1 where `y < t_o`.
pub fn threshold_pack(pixels: usize, c_out: usize, y: &[f32], thresholds: &[f32], out: &mut [u32]) {
    let words = c_out.div_ceil(32);
    out.iter_mut().for_each(|w| *w = 0);
    for i in 0..pixels {
        for o in 0..c_out {
            if y[i * c_out + o] < thresholds[o] {
                out[i * words + o / 32] |= 1 << (o % 32);
            }
        }
    }
}

impl BinaryOps for super::CpuBackend {
    fn binarize_pack(&self, _: Checked, x: &Tensor, out: &mut DeviceBits) -> Result<()> {
        with_float!(x.dtype(), T => binarize_pack::<T>(x.rows, x.cols, s(&x.buf), sm(&mut out.data)));
        Ok(())
    }
    fn xnor_gemm(&self, _: Checked, a: &DeviceBits, w: &DeviceBinaryWeights, y: &mut Tensor) -> Result<()> {
        xnor_gemm(a.rows, w.bits.rows, a.cols, a.words, s(&a.data), s(&w.bits.data), s(&w.alpha), sm(&mut y.buf));
        Ok(())
    }
    fn xnor_conv2d(&self, _: Checked, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, y: &mut Tensor) -> Result<()> {
        xnor_conv2d(s(&x.data), filter_dims(f), s(&f.bits), s(&f.alpha), s(&f.bias), p, sm(&mut y.buf));
        Ok(())
    }
    fn xnor_conv2d_bits(&self, _: Checked, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, o: BitsOut<'_>) -> Result<()> {
        let BitsOut { thresholds, out } = o;
        let mut y = vec![0f32; out.rows * f.c_out];
        xnor_conv2d(s(&x.data), filter_dims(f), s(&f.bits), s(&f.alpha), s(&f.bias), p, &mut y);
        threshold_pack(out.rows, f.c_out, &y, s(thresholds), sm(&mut out.data));
        Ok(())
    }
}
