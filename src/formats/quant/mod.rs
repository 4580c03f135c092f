//! Quantized weights: int8 rows with per-row scales, group-wise int8 and int4 weight-only
//! formats (int4 with integer zero points or float minimums, and an optional act-order
//! permutation), and converters from the layouts users already have (GPTQ, AWQ, GGUF
//! Q4_0 / Q8_0 / Q4_K).

use half::f16;

use crate::cpu::quant::quantize_rows;
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::formats::Matrix;

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
        let m = Int8Matrix { rows, cols, q, scales };
        m.validate()?;
        Ok(m)
    }

    /// Checks the invariants of [`Int8Matrix::new`] in place (the fields are public).
    pub fn validate(&self) -> Result<()> {
        let (rows, cols, q, scales) = (self.rows, self.cols, &self.q, &self.scales);
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
        Ok(())
    }

    /// Row padding used on devices: rows are stored with a stride that is a multiple of 16
    /// bytes (zero-filled), so kernels can load whole 4 x u32 vectors.
    pub fn padded_cols(cols: usize) -> usize {
        cols.div_ceil(16) * 16
    }
}

/// Int4 weights `[n, k]` with group-wise scales along K, in one of two offset forms:
///
/// - **integer zero points** (GPTQ, AWQ, GGUF Q4_0; `mins` is `None`):
///   `w[j, c] = (q[j, c] - zeros[j, c / group]) * scales[j, c / group]`, q and zeros in 0..16.
///   Symmetric weights have every zero point equal to 8.
/// - **float minimums** (GGUF Q4_K; `mins` is `Some`, `zeros` is empty):
///   `w[j, c] = q[j, c] * scales[j, c / group] - mins[j, c / group]`, computed in f32 as one
///   multiply then one subtract (no fused multiply-add), which is exactly ggml's
///   `dequantize_row_q4_K`.
///
/// [`Int4Weights::offsets`] gives the two forms as one enum, [`Int4Offsets`].
///
/// Layout: `qweight` is `[n, k / 8]` u32, stored column `c` of row `j` at bits `4 * (c % 8)` of
/// word `c / 8` (GPTQ's nibble order, but row-major per output channel); `scales`, `zeros` and
/// `mins` are `[n, k / group]`.
///
/// **Act-order** (`perm` is `Some`): the stored columns are a permutation of the input
/// features, stored column `c` holding original input feature `perm[c]`, so that the groups
/// are contiguous in stored order. Then `Y = X W^T = X[:, perm] W_stored^T`: a kernel gathers
/// the activations' columns through `perm` (or the caller permutes X once). [`Int4Weights::q`]
/// and [`Int4Weights::dequant`] address the *stored* column; [`Int4Weights::dequantize`]
/// returns the weight in the *original* column order.
#[derive(Debug, Clone, PartialEq)]
pub struct Int4Weights {
    /// Output channels (N).
    pub n: usize,
    /// Input features (K), a multiple of `group`.
    pub k: usize,
    /// Group size: 32, 64 or 128 (GGUF Q4_0 and Q4_K use 32).
    pub group: usize,
    /// True if every zero point is 8 (always false in the float-minimum form). Informative:
    /// devices recompute it at upload.
    pub symmetric: bool,
    /// `[n, k / 8]` packed nibbles (stored column order).
    pub qweight: Vec<u32>,
    /// `[n, k / group]` scales.
    pub scales: Vec<f32>,
    /// `[n, k / group]` zero points in 0..16; empty when `mins` is `Some`.
    pub zeros: Vec<u8>,
    /// `[n, k / group]` float minimums (GGUF Q4_K's `dmin * m`), subtracted after scaling;
    /// `None` for the integer zero-point form.
    pub mins: Option<Vec<f32>>,
    /// Act-order permutation of length `k`: stored column `c` is original input feature
    /// `perm[c]`. `None` means the identity.
    pub perm: Option<Vec<u32>>,
}

/// The per-group offset of an [`Int4Weights`]: integer zero points or float minimums.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Int4Offsets<'a> {
    /// `[n, k / group]` zero points in 0..16: `w = (q - zero) * scale`.
    ZeroPoints(&'a [u8]),
    /// `[n, k / group]` minimums: `w = q * scale - min`.
    Mins(&'a [f32]),
}

impl Int4Weights {
    /// Wraps packed int4 weights with integer zero points (no permutation), checking group
    /// size, divisibility, lengths and zero points.
    pub fn new(n: usize, k: usize, group: usize, qweight: Vec<u32>, scales: Vec<f32>, zeros: Vec<u8>) -> Result<Self> {
        let symmetric = zeros.iter().all(|&z| z == 8);
        let w = Int4Weights { n, k, group, symmetric, qweight, scales, zeros, mins: None, perm: None };
        w.validate()?;
        Ok(w)
    }

    /// Wraps packed int4 weights in the float-minimum form `w = q * scale - min` (GGUF Q4_K),
    /// checking group size, divisibility, lengths and that scales and minimums are finite.
    pub fn with_mins(n: usize, k: usize, group: usize, qweight: Vec<u32>, scales: Vec<f32>, mins: Vec<f32>) -> Result<Self> {
        let w = Int4Weights { n, k, group, symmetric: false, qweight, scales, zeros: Vec::new(), mins: Some(mins), perm: None };
        w.validate()?;
        Ok(w)
    }

    /// Sets the act-order permutation (stored column `c` is original input feature `perm[c]`),
    /// checking that `perm` is a permutation of `0..k`.
    pub fn with_perm(mut self, perm: Vec<u32>) -> Result<Self> {
        check_perm(self.k, &perm)?;
        self.perm = Some(perm);
        Ok(self)
    }

    /// Checks every invariant (the same checks as the constructors) without copying: group
    /// size and divisibility, sizes, buffer lengths, zero points in 0..16 (or, in the
    /// float-minimum form, an empty `zeros` and finite minimums), finite scales, and that
    /// `perm` is a permutation of `0..k`. The `symmetric` flag is not checked (it is
    /// informative; see the field).
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "Int4Weights::new";
        let (n, k, group) = (self.n, self.k, self.group);
        check_group(OP, k, group)?;
        crate::formats::checked_elems(OP, "weight", &[n, k])?;
        let groups = k / group;
        if self.qweight.len() != n * k / 8 {
            return Err(Error::shape(OP, format!("qweight has {} words, expected n*k/8 = {}", self.qweight.len(), n * k / 8)));
        }
        if self.scales.len() != n * groups {
            return Err(Error::shape(OP, format!("{} scales, expected n*k/group = {}", self.scales.len(), n * groups)));
        }
        match &self.mins {
            None => {
                if self.zeros.len() != n * groups {
                    return Err(Error::shape(OP, format!("{} zero points, expected n*k/group = {}", self.zeros.len(), n * groups)));
                }
                if let Some(i) = self.zeros.iter().position(|&z| z > 15) {
                    return Err(Error::format("int4 zero points", format!("zero point {i} is {} (must be 0..=15)", self.zeros[i])));
                }
            }
            Some(mins) => {
                if !self.zeros.is_empty() {
                    return Err(Error::shape(
                        OP,
                        format!("{} zero points given with float minimums (the float-minimum form has no zero points)", self.zeros.len()),
                    ));
                }
                if mins.len() != n * groups {
                    return Err(Error::shape(OP, format!("{} minimums, expected n*k/group = {}", mins.len(), n * groups)));
                }
                if let Some(i) = mins.iter().position(|m| !m.is_finite()) {
                    return Err(Error::format("int4 minimums", format!("minimum {i} is {} (must be finite)", mins[i])));
                }
            }
        }
        if let Some(i) = self.scales.iter().position(|s| !s.is_finite()) {
            return Err(Error::format("int4 scales", format!("scale {i} is {} (must be finite)", self.scales[i])));
        }
        if let Some(p) = &self.perm {
            check_perm(k, p)?;
        }
        Ok(())
    }

    /// The per-group offsets: zero points or float minimums.
    pub fn offsets(&self) -> Int4Offsets<'_> {
        match &self.mins {
            Some(m) => Int4Offsets::Mins(m),
            None => Int4Offsets::ZeroPoints(&self.zeros),
        }
    }

    /// The original input feature held by stored column `c` (`perm[c]`, or `c`).
    pub fn original_column(&self, c: usize) -> usize {
        self.perm.as_ref().map_or(c, |p| p[c] as usize)
    }

    /// The 4-bit code of row `j`, *stored* column `c`.
    pub fn q(&self, j: usize, c: usize) -> u32 {
        (self.qweight[j * (self.k / 8) + c / 8] >> (4 * (c % 8))) & 0xF
    }

    /// The dequantized value of row `j`, *stored* column `c` (original column
    /// [`Int4Weights::original_column`]`(c)`).
    pub fn dequant(&self, j: usize, c: usize) -> f32 {
        let g = j * (self.k / self.group) + c / self.group;
        match &self.mins {
            None => (self.q(j, c) as f32 - self.zeros[g] as f32) * self.scales[g],
            Some(mins) => self.q(j, c) as f32 * self.scales[g] - mins[g],
        }
    }
}

/// Checks that `perm` is a permutation of `0..k`.
fn check_perm(k: usize, perm: &[u32]) -> Result<()> {
    if perm.len() != k {
        return Err(Error::shape("Int4Weights::with_perm", format!("perm has {} entries, expected k = {k}", perm.len())));
    }
    let mut seen = vec![false; k];
    for (c, &p) in perm.iter().enumerate() {
        let p = p as usize;
        if p >= k {
            return Err(Error::format("int4 act-order permutation", format!("perm[{c}] = {p} is out of range 0..{k}")));
        }
        if std::mem::replace(&mut seen[p], true) {
            return Err(Error::format(
                "int4 act-order permutation",
                format!("perm[{c}] = {p} repeats an earlier entry (not a permutation)"),
            ));
        }
    }
    Ok(())
}

/// Weight-only int8 weights `[n, k]` with group-wise scales along K (GGUF Q8_0 is group 32):
/// `w[j, k] = q[j, k] * scales[j, k / group]`, computed in f32 (exactly ggml's
/// `dequantize_row_q8_0`).
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Weights {
    /// Output channels (N).
    pub n: usize,
    /// Input features (K), a multiple of `group`.
    pub k: usize,
    /// Group size: 32, 64 or 128.
    pub group: usize,
    /// `[n, k]` codes, row-major.
    pub q: Vec<i8>,
    /// `[n, k / group]` scales.
    pub scales: Vec<f32>,
}

impl Int8Weights {
    /// Wraps group-wise int8 weights, checking group size, divisibility, lengths and that the
    /// scales are finite.
    pub fn new(n: usize, k: usize, group: usize, q: Vec<i8>, scales: Vec<f32>) -> Result<Self> {
        let w = Int8Weights { n, k, group, q, scales };
        w.validate()?;
        Ok(w)
    }

    /// Checks every invariant of [`Int8Weights::new`] without copying.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "Int8Weights::new";
        check_group(OP, self.k, self.group)?;
        let len = crate::formats::checked_elems(OP, "weight", &[self.n, self.k])?;
        let groups = self.k / self.group;
        if self.q.len() != len {
            return Err(Error::shape(OP, format!("q has {} elements, expected n*k = {len}", self.q.len())));
        }
        if self.scales.len() != self.n * groups {
            return Err(Error::shape(OP, format!("{} scales, expected n*k/group = {}", self.scales.len(), self.n * groups)));
        }
        if let Some(i) = self.scales.iter().position(|s| !s.is_finite()) {
            return Err(Error::format("int8 scales", format!("scale {i} is {} (must be finite)", self.scales[i])));
        }
        Ok(())
    }

    /// The dequantized value of element `(j, k)`.
    pub fn dequant(&self, j: usize, k: usize) -> f32 {
        self.q[j * self.k + k] as f32 * self.scales[j * (self.k / self.group) + k / self.group]
    }

    /// The dequantized weight `[n, k]`.
    pub fn dequantize(&self) -> Matrix<f32> {
        let groups = self.k / self.group;
        let data =
            self.q.iter().enumerate().map(|(p, &q)| q as f32 * self.scales[(p / self.k) * groups + (p % self.k) / self.group]).collect();
        Matrix { rows: self.n, cols: self.k, data }
    }

    /// Quantizes `w` `[n, k]` symmetrically per group of `group` elements along K:
    /// `amax = max |w|`, `scale = amax / 127`, `q = round_half_away(w / scale)` clamped to
    /// [-127, 127] (computed as `w * (1 / scale)`, the rule of ggml's `quantize_row_q8_0_ref`,
    /// except that the scale stays f32). An all-zero group gets scale 0 and q 0. Non-finite
    /// weights are rejected.
    pub fn quantize(w: &Matrix<f32>, group: usize) -> Result<Int8Weights> {
        const OP: &str = "Int8Weights::quantize";
        let (n, k) = (w.rows, w.cols);
        check_group(OP, k, group)?;
        let len = crate::formats::checked_elems(OP, "weight", &[n, k])?;
        check_len(OP, "weight data", w.data.len(), len, "n*k")?;
        if let Some(p) = w.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::format("int8 quantization input", format!("w[{}, {}] = {} is not finite", p / k, p % k, w.data[p])));
        }
        let mut q = Vec::with_capacity(len);
        let mut scales = Vec::with_capacity(len / group);
        for xs in w.data.chunks_exact(group) {
            let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            scales.push(d);
            q.extend(xs.iter().map(|&x| (x * id).round().clamp(-127.0, 127.0) as i8));
        }
        Int8Weights::new(n, k, group, q, scales)
    }
}

impl Int8Matrix {
    /// Quantizes every row of `x` symmetrically to int8 with exactly the rule of
    /// [`crate::cpu::quant::quantize_row`] (and of every backend's `quantize_rows_i8`):
    /// `amax = max |x|`, `scale = amax / 127`, `q = round_half_away(x * (127 / amax))` clamped
    /// to [-127, 127]; a zero row gets scale 0 and q 0. Non-finite inputs are rejected.
    pub fn quantize_rows<T: Float>(x: &Matrix<T>) -> Result<Int8Matrix> {
        const OP: &str = "Int8Matrix::quantize_rows";
        let n = crate::formats::checked_elems(OP, "matrix", &[x.rows, x.cols])?;
        if x.data.len() != n {
            return Err(Error::shape(OP, format!("matrix data has {} elements, expected rows*cols = {n}", x.data.len())));
        }
        if let Some(p) = x.data.iter().position(|v| !v.to_f32().is_finite()) {
            return Err(Error::format(
                "int8 quantization input",
                format!("x[{}, {}] = {} is not finite", p / x.cols, p % x.cols, x.data[p].to_f32()),
            ));
        }
        let mut q = vec![0i8; n];
        let mut scales = vec![0f32; x.rows];
        quantize_rows(x.rows, x.cols, &x.data, &mut q, x.cols, &mut scales);
        Int8Matrix::new(x.rows, x.cols, q, scales)
    }

    /// The dequantized matrix `scales[i] * q[i, k]` (`[rows, cols]` f32).
    pub fn dequantize(&self) -> Matrix<f32> {
        let data = self.q.iter().enumerate().map(|(p, &q)| q as f32 * self.scales[p / self.cols]).collect();
        Matrix { rows: self.rows, cols: self.cols, data }
    }
}

fn check_len(op: &'static str, what: &str, got: usize, want: usize, layout: &str) -> Result<()> {
    if got != want {
        return Err(Error::shape(op, format!("{what} has {got} elements, expected {layout} = {want}")));
    }
    Ok(())
}

fn check_n8(op: &'static str, n: usize) -> Result<()> {
    if n == 0 || n % 8 != 0 {
        return Err(Error::shape(op, format!("N = {n} must be a positive multiple of 8 (zero points are packed 8 per int32 along N)")));
    }
    Ok(())
}

impl Int4Weights {
    /// The dequantized weight `[n, k]` in the *original* column order: with an act-order
    /// `perm`, stored column `c` lands in column `perm[c]`.
    pub fn dequantize(&self) -> Matrix<f32> {
        let (n, k) = (self.n, self.k);
        let mut data = vec![0f32; n * k];
        for j in 0..n {
            let row = &mut data[j * k..(j + 1) * k];
            for c in 0..k {
                row[self.original_column(c)] = self.dequant(j, c);
            }
        }
        Matrix { rows: n, cols: k, data }
    }

    /// Quantizes a float weight `w` `[n, k]` group-wise along K (round to nearest, half away
    /// from zero), GPTQ's min-max quantizer:
    /// - `symmetric`: `scale = 2 amax / 15`, zero 8, `q = clamp(round(w / scale) + 8, 0, 15)`
    ///   (GPTQ `sym=True`: all 16 levels, `+amax` clamps to `7 scale`; `|error| <= scale / 2`);
    /// - asymmetric: `lo = min(min w, 0)`, `hi = max(max w, 0)` (the range always holds 0, as
    ///   in GPTQ), `scale = (hi - lo) / 15`, `zero = clamp(round(-lo / scale), 0, 15)`,
    ///   `q = clamp(round(w / scale) + zero, 0, 15)`.
    ///
    /// An all-zero group (or one whose scale underflows to 0) gets scale 0, zero 8 and q 8, so
    /// it dequantizes to exactly 0. Non-finite weights and ranges too large for f32 are errors.
    pub fn quantize(w: &Matrix<f32>, group: usize, symmetric: bool) -> Result<Int4Weights> {
        const OP: &str = "Int4Weights::quantize";
        let (n, k) = (w.rows, w.cols);
        check_group(OP, k, group)?;
        let len = crate::formats::checked_elems(OP, "weight", &[n, k])?;
        check_len(OP, "weight data", w.data.len(), len, "n*k")?;
        if let Some(p) = w.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::format("int4 quantization input", format!("w[{}, {}] = {} is not finite", p / k, p % k, w.data[p])));
        }
        let groups = k / group;
        let mut qweight = vec![0u32; n * k / 8];
        let mut scales = vec![0f32; n * groups];
        let mut zeros = vec![8u8; n * groups];
        for j in 0..n {
            for g in 0..groups {
                let xs = &w.data[j * k + g * group..][..group];
                let (scale, zero) = if symmetric {
                    let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
                    (2.0 * amax / 15.0, 8.0f32)
                } else {
                    let lo = xs.iter().fold(0f32, |a, &v| a.min(v));
                    let hi = xs.iter().fold(0f32, |a, &v| a.max(v));
                    let scale = (hi - lo) / 15.0;
                    let zero = if scale > 0.0 { (-lo / scale).round().clamp(0.0, 15.0) } else { 8.0 };
                    (scale, zero)
                };
                if !scale.is_finite() {
                    return Err(Error::format(
                        "int4 quantization input",
                        format!("row {j}, group {g}: the value range overflows f32 (scale = {scale})"),
                    ));
                }
                let (scale, zero) = if scale > 0.0 { (scale, zero) } else { (0.0, 8.0) };
                scales[j * groups + g] = scale;
                zeros[j * groups + g] = zero as u8;
                for (t, &x) in xs.iter().enumerate() {
                    let q = if scale > 0.0 { ((x / scale).round() + zero).clamp(0.0, 15.0) as u32 } else { 8 };
                    let kk = g * group + t;
                    qweight[j * (k / 8) + kk / 8] |= q << (4 * (kk % 8));
                }
            }
        }
        Int4Weights::new(n, k, group, qweight, scales, zeros)
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

mod ggml;
mod gptq;
pub use ggml::*;
pub use gptq::*;
