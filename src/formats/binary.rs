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
        check_bits(rows, cols, &bits)?;
        Ok(BitMatrix { rows, cols, words: cols.div_ceil(32), bits })
    }

    /// Checks the invariants of [`BitMatrix::new`] in place (the fields are public).
    pub fn validate(&self) -> Result<()> {
        check_bits(self.rows, self.cols, &self.bits)?;
        if self.words != self.cols.div_ceil(32) {
            return Err(Error::shape(
                "BitMatrix",
                format!("words = {}, expected ceil(cols / 32) = {}", self.words, self.cols.div_ceil(32)),
            ));
        }
        Ok(())
    }
}

fn check_bits(rows: usize, cols: usize, bits: &[u32]) -> Result<()> {
    {
        const OP: &str = "BitMatrix::new";
        if rows == 0 || cols == 0 {
            return Err(Error::shape(OP, format!("bit matrix [{rows}, {cols}] has a zero dimension; every dimension must be >= 1")));
        }
        let words = cols.div_ceil(32);
        // Only the packed words must fit a buffer (rows * cols bits may exceed it).
        let n = crate::formats::checked_elems(OP, "packed bit matrix", &[rows, words])?;
        if bits.len() != n {
            return Err(Error::shape(OP, format!("{} words, expected rows*ceil(cols/32) = {rows}*{words} = {n}", bits.len())));
        }
        if cols % 32 != 0 {
            let mask = !0u32 << (cols % 32);
            for i in 0..rows {
                if bits[i * words + words - 1] & mask != 0 {
                    return Err(Error::format(
                        "bit matrix",
                        format!("row {i} has non-zero tail bits beyond column {cols} (unused bits of the last word must be 0)"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl BitMatrix {
    /// Packs the signs of `x` (`rows * cols`, row-major): `x < 0` gives bit 1 (-1), else bit 0
    /// (so `-0.0`, `0.0` and NaN give +1), exactly the rule of `binarize_pack`.
    pub fn from_signs(rows: usize, cols: usize, x: &[f32]) -> Result<Self> {
        let n = crate::formats::checked_elems("BitMatrix::from_signs", "matrix", &[rows, cols])?;
        crate::formats::checked_elems("BitMatrix::from_signs", "packed bit matrix", &[rows, cols.div_ceil(32)])?;
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

    /// Packs the signs of an NHWC float tensor `[batch, h, w, c]` into a
    /// `[batch * h * w, c]` bit matrix (the input layout of the binary convs).
    pub fn from_nhwc(batch: usize, h: usize, w: usize, c: usize, x: &[f32]) -> Result<Self> {
        let pixels = crate::formats::checked_elems("BitMatrix::from_nhwc", "NHWC tensor", &[batch, h, w])?;
        let n = crate::formats::checked_elems("BitMatrix::from_nhwc", "NHWC tensor", &[pixels, c])?;
        if x.len() != n {
            return Err(Error::shape("BitMatrix::from_nhwc", format!("{} values, expected batch*h*w*c = {n}", x.len())));
        }
        Self::from_signs(pixels, c, x)
    }

    /// The bit at `(i, c)`: true means -1.
    pub fn bit(&self, i: usize, c: usize) -> bool {
        (self.bits[i * self.words + c / 32] >> (c % 32)) & 1 == 1
    }

    /// The value (+1.0 or -1.0) at `(i, c)`.
    pub fn value(&self, i: usize, c: usize) -> f32 {
        if self.bit(i, c) {
            -1.0
        } else {
            1.0
        }
    }

    /// The {-1, +1} float matrix `[rows, cols]`.
    pub fn to_signs(&self) -> crate::formats::Matrix<f32> {
        let mut data = Vec::with_capacity(self.rows * self.cols);
        for i in 0..self.rows {
            for c in 0..self.cols {
                data.push(self.value(i, c));
            }
        }
        crate::formats::Matrix { rows: self.rows, cols: self.cols, data }
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
    /// Binarizes a float weight `[n, k]`: signs (`w < 0` is -1), and
    /// `alpha_j = mean_k |w[j, k]|` (XNOR-Net). Non-finite weights are rejected.
    pub fn from_f32(n: usize, k: usize, w: &[f32]) -> Result<Self> {
        let bits = BitMatrix::from_signs(n, k, w)?;
        check_finite("binary weights", "weight", w)?;
        let alpha = (0..n).map(|j| mean_abs(&w[j * k..(j + 1) * k])).collect();
        BinaryWeights::new(bits, alpha)
    }
    /// Wraps bits and scales, checking lengths and that every alpha is finite.
    pub fn new(bits: BitMatrix, alpha: Vec<f32>) -> Result<Self> {
        let w = BinaryWeights { bits, alpha };
        w.validate()?;
        Ok(w)
    }
    /// Checks the invariants of [`BinaryWeights::new`] in place (the fields are public).
    pub fn validate(&self) -> Result<()> {
        self.bits.validate()?;
        if self.alpha.len() != self.bits.rows {
            return Err(Error::shape(
                "BinaryWeights::new",
                format!("{} alphas, expected one per row = {}", self.alpha.len(), self.bits.rows),
            ));
        }
        check_finite("binary weights", "alpha", &self.alpha)
    }
    /// Output channels (N).
    pub fn n(&self) -> usize {
        self.bits.rows
    }
    /// Input features (K).
    pub fn k(&self) -> usize {
        self.bits.cols
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
    /// Binarizes a float filter `[c_out, kh, kw, c_in]` (OHWI, TensorFlow / LCE order), with
    /// XNOR-Net's `alpha_o = mean |W_o|` over `kh * kw * c_in`. Non-finite weights are rejected.
    pub fn from_f32(c_out: usize, kh: usize, kw: usize, c_in: usize, w: &[f32], bias: Option<Vec<f32>>) -> Result<Self> {
        let per = crate::formats::checked_elems("BinaryFilter::from_f32", "filter", &[kh, kw, c_in])?;
        crate::formats::checked_elems("BinaryFilter::from_f32", "filter", &[c_out, per])?;
        if w.len() != c_out * per {
            return Err(Error::shape("BinaryFilter::from_f32", format!("{} values, expected c_out*kh*kw*c_in = {}", w.len(), c_out * per)));
        }
        check_finite("binary filter", "weight", w)?;
        let m = BitMatrix::from_signs(c_out * kh * kw, c_in, w)?;
        let alpha = (0..c_out).map(|o| mean_abs(&w[o * per..(o + 1) * per])).collect();
        BinaryFilter::new(c_out, kh, kw, c_in, m.bits, alpha, bias)
    }

    /// Binarizes a PyTorch conv weight `[c_out, c_in, kh, kw]` (OIHW), transposing it to the
    /// packed OHWI layout; otherwise as [`BinaryFilter::from_f32`].
    pub fn from_oihw(c_out: usize, c_in: usize, kh: usize, kw: usize, w: &[f32], bias: Option<Vec<f32>>) -> Result<Self> {
        let per = crate::formats::checked_elems("BinaryFilter::from_oihw", "filter", &[kh, kw, c_in])?;
        crate::formats::checked_elems("BinaryFilter::from_oihw", "filter", &[c_out, per])?;
        if w.len() != c_out * per {
            return Err(Error::shape(
                "BinaryFilter::from_oihw",
                format!("{} values, expected c_out*c_in*kh*kw = {}", w.len(), c_out * per),
            ));
        }
        let mut ohwi = vec![0f32; w.len()];
        for o in 0..c_out {
            for c in 0..c_in {
                for y in 0..kh {
                    for x in 0..kw {
                        ohwi[((o * kh + y) * kw + x) * c_in + c] = w[((o * c_in + c) * kh + y) * kw + x];
                    }
                }
            }
        }
        Self::from_f32(c_out, kh, kw, c_in, &ohwi, bias)
    }

    /// Wraps packed filter bits `[c_out, kh, kw, ceil(c_in / 32)]`, checking lengths, tail
    /// bits and that alpha and bias are finite.
    pub fn new(c_out: usize, kh: usize, kw: usize, c_in: usize, bits: Vec<u32>, alpha: Vec<f32>, bias: Option<Vec<f32>>) -> Result<Self> {
        let f = BinaryFilter { c_out, kh, kw, c_in, words: c_in.div_ceil(32), bits, alpha, bias };
        f.validate()?;
        Ok(f)
    }

    /// Checks the invariants of [`BinaryFilter::new`] in place (the fields are public).
    pub fn validate(&self) -> Result<()> {
        let BinaryFilter { c_out, kh, kw, c_in, words, bits, alpha, bias } = self;
        let (c_out, kh, kw, c_in) = (*c_out, *kh, *kw, *c_in);
        let taps = crate::formats::checked_elems("BinaryFilter::new", "filter", &[c_out, kh, kw])?;
        // Reuse BitMatrix's checks: the filter is a [c_out*kh*kw, c_in] bit matrix.
        check_bits(taps, c_in, bits)?;
        if *words != c_in.div_ceil(32) {
            return Err(Error::shape("BinaryFilter::new", format!("words = {words}, expected ceil(c_in / 32) = {}", c_in.div_ceil(32))));
        }
        if alpha.len() != c_out {
            return Err(Error::shape("BinaryFilter::new", format!("{} alphas, expected c_out = {c_out}", alpha.len())));
        }
        check_finite("binary filter", "alpha", alpha)?;
        if let Some(b) = bias {
            if b.len() != c_out {
                return Err(Error::shape("BinaryFilter::new", format!("bias has {} values, expected c_out = {c_out}", b.len())));
            }
            check_finite("binary filter", "bias", b)?;
        }
        Ok(())
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

fn mean_abs(w: &[f32]) -> f32 {
    (w.iter().map(|x| x.abs() as f64).sum::<f64>() / w.len() as f64) as f32
}

fn check_finite(format: &'static str, what: &str, v: &[f32]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(p) => Err(Error::format(format, format!("{what}[{p}] = {} is not finite", v[p]))),
        None => Ok(()),
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
    /// Square stride and padding: `stride_h = stride_w = stride`, `pad_h = pad_w = pad`.
    pub fn new(batch: usize, in_h: usize, in_w: usize, stride: usize, pad: usize, pad_mode: PadMode) -> Self {
        Conv2dParams { batch, in_h, in_w, stride_h: stride, stride_w: stride, pad_h: pad, pad_w: pad, pad_mode }
    }

    /// Output height and width for a `kh x kw` kernel, or an error if the kernel does not fit.
    pub fn output_hw(&self, kh: usize, kw: usize) -> Result<(usize, usize)> {
        if self.stride_h == 0 || self.stride_w == 0 {
            return Err(Error::shape("xnor_conv2d", "strides must be >= 1"));
        }
        let padded = |x: usize, pad: usize, what: &str| {
            pad.checked_mul(2)
                .and_then(|p| p.checked_add(x))
                .ok_or_else(|| Error::shape("xnor_conv2d", format!("{what} {x} plus twice the padding {pad} overflows the address space")))
        };
        let (ph, pw) = (padded(self.in_h, self.pad_h, "input height")?, padded(self.in_w, self.pad_w, "input width")?);
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
