//! Bit-packed {-1, +1} matrices and binary conv filters, in the Larq Compute Engine
//! convention: bit 1 means -1, bit 0 means +1, rows packed along the last dimension into u32
//! words (element `c` at bit `c % 32` of word `c / 32`), unused tail bits 0.

use crate::error::{Error, Result};

/// A bit-packed matrix `[rows, cols]` of {-1, +1}. An NHWC tensor is a matrix with
/// `rows = n * h * w`, `cols = c`.
#[derive(Debug, Clone, PartialEq)]
pub struct BitMatrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of bits (logical columns) per row.
    pub cols: usize,
    /// Words per row: `ceil(cols / 32)`.
    pub words: usize,
    /// `rows * words` packed words.
    pub bits: Vec<u32>,
}

impl BitMatrix {
    /// Wraps packed bits, checking the length and that tail bits are zero.
    pub fn new(rows: usize, cols: usize, bits: Vec<u32>) -> Result<Self> {
        let words = cols.div_ceil(32);
        let n = crate::formats::checked_elems("BitMatrix::new", "bit matrix", &[rows, cols.max(1), words.max(1)])?;
        let _ = n;
        if cols == 0 {
            return Err(Error::shape("BitMatrix::new", "cols must be >= 1"));
        }
        if bits.len() != rows * words {
            return Err(Error::shape("BitMatrix::new", format!("{} words, expected rows*ceil(cols/32) = {}", bits.len(), rows * words)));
        }
        if cols % 32 != 0 {
            let mask = !0u32 << (cols % 32);
            for i in 0..rows {
                if bits[i * words + words - 1] & mask != 0 {
                    return Err(Error::format("bit matrix", format!("row {i} has non-zero tail bits beyond column {cols}")));
                }
            }
        }
        Ok(BitMatrix { rows, cols, words, bits })
    }

    /// Packs the signs of `x` (`rows * cols`, row-major): `x < 0` gives bit 1 (-1), else bit 0.
    pub fn from_signs(rows: usize, cols: usize, x: &[f32]) -> Result<Self> {
        let n = crate::formats::checked_elems("BitMatrix::from_signs", "matrix", &[rows, cols])?;
        if x.len() != n {
            return Err(Error::shape("BitMatrix::from_signs", format!("{} values, expected rows*cols = {n}", x.len())));
        }
        let words = cols.div_ceil(32);
        let mut bits = vec![0u32; rows * words];
        for i in 0..rows {
            for c in 0..cols {
                if x[i * cols + c] < 0.0 {
                    bits[i * words + c / 32] |= 1 << (c % 32);
                }
            }
        }
        Ok(BitMatrix { rows, cols, words, bits })
    }

    /// The value (+1.0 or -1.0) at `(i, c)`.
    pub fn value(&self, i: usize, c: usize) -> f32 {
        if (self.bits[i * self.words + c / 32] >> (c % 32)) & 1 == 1 {
            -1.0
        } else {
            1.0
        }
    }

    /// Random signs, deterministic for a seed.
    pub fn random(rows: usize, cols: usize, seed: u64) -> Result<Self> {
        let x = crate::formats::Matrix::<f32>::random(rows, cols, seed)?;
        Self::from_signs(rows, cols, &x.data)
    }
}

/// Binary weights of a linear layer: `[n, k]` signs plus `alpha` per output channel
/// (XNOR-Net: `alpha_j = mean |W_j|`).
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryWeights {
    /// `[n, k]` bits.
    pub bits: BitMatrix,
    /// One scale per output row.
    pub alpha: Vec<f32>,
}

impl BinaryWeights {
    /// Binarizes a float weight `[n, k]`: signs, and `alpha_j = mean_k |w[j, k]|`.
    pub fn from_f32(n: usize, k: usize, w: &[f32]) -> Result<Self> {
        let bits = BitMatrix::from_signs(n, k, w)?;
        let alpha = (0..n).map(|j| (w[j * k..(j + 1) * k].iter().map(|x| x.abs() as f64).sum::<f64>() / k as f64) as f32).collect();
        Ok(BinaryWeights { bits, alpha })
    }
    /// Wraps bits and scales, checking lengths.
    pub fn new(bits: BitMatrix, alpha: Vec<f32>) -> Result<Self> {
        if alpha.len() != bits.rows {
            return Err(Error::shape("BinaryWeights::new", format!("{} alphas, expected one per row = {}", alpha.len(), bits.rows)));
        }
        Ok(BinaryWeights { bits, alpha })
    }
}

/// A binary conv filter `[c_out, kh, kw, c_in]`, packed along `c_in` per tap:
/// `bits` is `[c_out, kh, kw, words]`, `words = ceil(c_in / 32)`, with `alpha` per output
/// channel and an optional bias.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryFilter {
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Input channels.
    pub c_in: usize,
    /// Words per tap: `ceil(c_in / 32)`.
    pub words: usize,
    /// `[c_out, kh, kw, words]` packed words, tail bits zero.
    pub bits: Vec<u32>,
    /// Per output channel scale (XNOR-Net: mean |W| over `c_in * kh * kw`).
    pub alpha: Vec<f32>,
    /// Optional per output channel bias.
    pub bias: Option<Vec<f32>>,
}

impl BinaryFilter {
    /// Binarizes a float filter `[c_out, kh, kw, c_in]` (OHWI), with `alpha = mean |W_c|`.
    pub fn from_f32(c_out: usize, kh: usize, kw: usize, c_in: usize, w: &[f32], bias: Option<Vec<f32>>) -> Result<Self> {
        let per = crate::formats::checked_elems("BinaryFilter::from_f32", "filter", &[kh, kw, c_in])?;
        crate::formats::checked_elems("BinaryFilter::from_f32", "filter", &[c_out, per])?;
        if w.len() != c_out * per {
            return Err(Error::shape("BinaryFilter::from_f32", format!("{} values, expected c_out*kh*kw*c_in = {}", w.len(), c_out * per)));
        }
        let m = BitMatrix::from_signs(c_out * kh * kw, c_in, w)?;
        let alpha =
            (0..c_out).map(|o| (w[o * per..(o + 1) * per].iter().map(|x| x.abs() as f64).sum::<f64>() / per as f64) as f32).collect();
        BinaryFilter::new(c_out, kh, kw, c_in, m.bits, alpha, bias)
    }

    /// Wraps packed filter bits, checking lengths and tail bits.
    pub fn new(c_out: usize, kh: usize, kw: usize, c_in: usize, bits: Vec<u32>, alpha: Vec<f32>, bias: Option<Vec<f32>>) -> Result<Self> {
        // Reuse BitMatrix's checks: the filter is a [c_out*kh*kw, c_in] bit matrix.
        let m = BitMatrix::new(c_out * kh * kw, c_in, bits)?;
        if alpha.len() != c_out {
            return Err(Error::shape("BinaryFilter::new", format!("{} alphas, expected c_out = {c_out}", alpha.len())));
        }
        if let Some(b) = &bias {
            if b.len() != c_out {
                return Err(Error::shape("BinaryFilter::new", format!("bias has {} values, expected c_out = {c_out}", b.len())));
            }
        }
        Ok(BinaryFilter { c_out, kh, kw, c_in, words: m.words, bits: m.bits, alpha, bias })
    }

    /// The value (+1.0 or -1.0) of tap `(o, y, x, c)`.
    pub fn value(&self, o: usize, y: usize, x: usize, c: usize) -> f32 {
        let w = self.bits[((o * self.kh + y) * self.kw + x) * self.words + c / 32];
        if (w >> (c % 32)) & 1 == 1 {
            -1.0
        } else {
            1.0
        }
    }
}

/// How a binary conv pads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    /// Pads with +1 (bit 0): cheap, what LCE calls "one padding".
    One,
    /// Exact zero padding (padded taps contribute nothing), as PyTorch-trained nets expect.
    Zero,
}

/// Geometry of a binary 2-D convolution over an NHWC input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Batch size N.
    pub batch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Padding rows on top and bottom.
    pub pad_h: usize,
    /// Padding columns on left and right.
    pub pad_w: usize,
    /// Padding mode.
    pub pad_mode: PadMode,
}

impl Conv2dParams {
    /// Output height and width for a `kh x kw` kernel, or an error if the kernel does not fit.
    pub fn output_hw(&self, kh: usize, kw: usize) -> Result<(usize, usize)> {
        if self.stride_h == 0 || self.stride_w == 0 {
            return Err(Error::shape("xnor_conv2d", "strides must be >= 1"));
        }
        let (ph, pw) = (self.in_h + 2 * self.pad_h, self.in_w + 2 * self.pad_w);
        if kh == 0 || kw == 0 || kh > ph || kw > pw {
            return Err(Error::shape("xnor_conv2d", format!("kernel {kh}x{kw} does not fit the padded input {ph}x{pw}")));
        }
        if self.pad_h >= kh || self.pad_w >= kw {
            return Err(Error::shape(
                "xnor_conv2d",
                format!("padding {}x{} must be smaller than the kernel {kh}x{kw}", self.pad_h, self.pad_w),
            ));
        }
        Ok(((ph - kh) / self.stride_h + 1, (pw - kw) / self.stride_w + 1))
    }
}
