//! Quantized weights: int8 rows with per-row scales, int4 group-wise weights, and converters
//! from the layouts users already have (GPTQ, AWQ, GGUF).

use crate::error::{Error, Result};

/// Int8 rows with one f32 scale per row: `x[i, k] ~= scales[i] * q[i, k]` (symmetric).
/// Used for weights (per output channel) and activations (per token).
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns (K).
    pub cols: usize,
    /// `rows * cols` values, row-major.
    pub q: Vec<i8>,
    /// One scale per row.
    pub scales: Vec<f32>,
}

impl Int8Matrix {
    /// Wraps quantized data, checking lengths and that scales are finite.
    pub fn new(rows: usize, cols: usize, q: Vec<i8>, scales: Vec<f32>) -> Result<Self> {
        let n = crate::formats::checked_elems("Int8Matrix::new", "matrix", &[rows, cols])?;
        if q.len() != n {
            return Err(Error::shape("Int8Matrix::new", format!("q has {} elements, expected rows*cols = {n}", q.len())));
        }
        if scales.len() != rows {
            return Err(Error::shape("Int8Matrix::new", format!("{} scales, expected one per row = {rows}", scales.len())));
        }
        if let Some(i) = scales.iter().position(|s| !s.is_finite()) {
            return Err(Error::format("int8 scales", format!("scale of row {i} is {} (must be finite)", scales[i])));
        }
        Ok(Int8Matrix { rows, cols, q, scales })
    }

    /// Row padding used on devices: rows are stored with a stride that is a multiple of 16
    /// bytes (zero-filled), so kernels can load whole 4 x u32 vectors.
    pub fn padded_cols(cols: usize) -> usize {
        cols.div_ceil(16) * 16
    }
}

/// Int4 weights `[n, k]` with group-wise scales along K:
/// `w[j, k] = (q[j, k] - zeros[j, k / group]) * scales[j, k / group]`, q and zeros in 0..16.
/// Symmetric weights have every zero point equal to 8.
///
/// Layout: `qweight` is `[n, k / 8]` u32, element `k` of row `j` at bits `4 * (k % 8)` of word
/// `k / 8` (GPTQ's nibble order, but row-major per output channel); `scales` and `zeros` are
/// `[n, k / group]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Int4Weights {
    /// Output channels (N).
    pub n: usize,
    /// Input features (K), a multiple of `group`.
    pub k: usize,
    /// Group size: 32, 64 or 128.
    pub group: usize,
    /// True if every zero point is 8.
    pub symmetric: bool,
    /// `[n, k / 8]` packed nibbles.
    pub qweight: Vec<u32>,
    /// `[n, k / group]` scales.
    pub scales: Vec<f32>,
    /// `[n, k / group]` zero points in 0..16.
    pub zeros: Vec<u8>,
}

impl Int4Weights {
    /// Wraps packed int4 weights, checking group size, divisibility, lengths and zero points.
    pub fn new(n: usize, k: usize, group: usize, qweight: Vec<u32>, scales: Vec<f32>, zeros: Vec<u8>) -> Result<Self> {
        check_group("Int4Weights::new", k, group)?;
        crate::formats::checked_elems("Int4Weights::new", "weight", &[n, k])?;
        let groups = k / group;
        if qweight.len() != n * k / 8 {
            return Err(Error::shape("Int4Weights::new", format!("qweight has {} words, expected n*k/8 = {}", qweight.len(), n * k / 8)));
        }
        if scales.len() != n * groups {
            return Err(Error::shape("Int4Weights::new", format!("{} scales, expected n*k/group = {}", scales.len(), n * groups)));
        }
        if zeros.len() != n * groups {
            return Err(Error::shape("Int4Weights::new", format!("{} zero points, expected n*k/group = {}", zeros.len(), n * groups)));
        }
        if let Some(i) = zeros.iter().position(|&z| z > 15) {
            return Err(Error::format("int4 zero points", format!("zero point {i} is {} (must be 0..=15)", zeros[i])));
        }
        if let Some(i) = scales.iter().position(|s| !s.is_finite()) {
            return Err(Error::format("int4 scales", format!("scale {i} is {} (must be finite)", scales[i])));
        }
        let symmetric = zeros.iter().all(|&z| z == 8);
        Ok(Int4Weights { n, k, group, symmetric, qweight, scales, zeros })
    }

    /// The 4-bit code of element `(j, k)`.
    pub fn q(&self, j: usize, k: usize) -> u32 {
        (self.qweight[j * (self.k / 8) + k / 8] >> (4 * (k % 8))) & 0xF
    }

    /// The dequantized value of element `(j, k)`.
    pub fn dequant(&self, j: usize, k: usize) -> f32 {
        let g = j * (self.k / self.group) + k / self.group;
        (self.q(j, k) as f32 - self.zeros[g] as f32) * self.scales[g]
    }
}

/// Checks that `group` is 32, 64 or 128 and divides `k`.
pub fn check_group(op: &'static str, k: usize, group: usize) -> Result<()> {
    if !matches!(group, 32 | 64 | 128) {
        return Err(Error::shape(op, format!("group size {group} not supported (expected 32, 64 or 128)")));
    }
    if k == 0 || k % group != 0 {
        return Err(Error::shape(op, format!("K = {k} is not a positive multiple of the group size {group}")));
    }
    Ok(())
}
