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

    /// Converts a GGUF / ggml Q8_0 tensor of `n` rows of `k` elements (GGUF `ne = [k, n]`):
    /// each row is `k / 32` blocks of 34 bytes, an f16 `d` (little-endian) then 32 int8 codes;
    /// `x = q * d`. The result has group 32 and scale `d` (an infinite or NaN `d` is an error).
    pub fn from_gguf_q8_0(bytes: &[u8], n: usize, k: usize) -> Result<Int8Weights> {
        const OP: &str = "Int8Weights::from_gguf_q8_0";
        check_group(OP, k, GGUF_Q8_0_BLOCK)?;
        let len = crate::formats::checked_elems(OP, "weight", &[n, k])?;
        let blocks = len / GGUF_Q8_0_BLOCK;
        let want = blocks * GGUF_Q8_0_BLOCK_BYTES;
        if bytes.len() != want {
            return Err(Error::shape(
                OP,
                format!("GGUF Q8_0 data has {} bytes, expected n * (k/32) blocks * 34 bytes = {n} * {} * 34 = {want}", bytes.len(), k / 32),
            ));
        }
        let mut q = Vec::with_capacity(len);
        let mut scales = Vec::with_capacity(blocks);
        for (b, blk) in bytes.chunks_exact(GGUF_Q8_0_BLOCK_BYTES).enumerate() {
            let d = f16::from_le_bytes([blk[0], blk[1]]);
            if !d.is_finite() {
                return Err(Error::format(
                    "GGUF Q8_0",
                    format!("block {} of row {} has scale d = {d} (must be finite)", b % (k / 32), b / (k / 32)),
                ));
            }
            scales.push(d.to_f32());
            q.extend(blk[2..].iter().map(|&v| v as i8));
        }
        Int8Weights::new(n, k, GGUF_Q8_0_BLOCK, q, scales)
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

/// GPTQ tensors in the classic AutoGPTQ layout (see [`Int4Weights::from_gptq`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GptqTensors {
    /// `[k / 8, n]`: element `k` of column `j` at bits `4 * (k % 8)` of word `[k / 8, j]`.
    pub qweight: Vec<i32>,
    /// `[k / group, n / 8]`: `zero - 1` of column `j` at bits `4 * (j % 8)` of word `[g, j / 8]`.
    pub qzeros: Vec<i32>,
    /// `[k / group, n]`.
    pub scales: Vec<f16>,
    /// `[k]`: `k / group` (no act-order).
    pub g_idx: Vec<i32>,
}

/// AWQ tensors in the AutoAWQ GEMM layout (see [`Int4Weights::from_awq`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AwqTensors {
    /// `[k, n / 8]`, nibble slot `i` of word `[k, c]` holds column `8 c + AWQ_ORDER[i]`.
    pub qweight: Vec<i32>,
    /// `[k / group, n / 8]`, zero points packed like `qweight`.
    pub qzeros: Vec<i32>,
    /// `[k / group, n]`.
    pub scales: Vec<f16>,
}

/// AutoAWQ's nibble order: slot `i` (bits `4 i`) of a packed word holds column
/// `8 * word + AWQ_ORDER[i]` (casper-hansen/AutoAWQ `awq/utils/packing_utils.py`).
pub const AWQ_ORDER: [usize; 8] = [0, 2, 4, 6, 1, 3, 5, 7];
/// Inverse of [`AWQ_ORDER`]: column `c % 8` lives in slot `AWQ_REVERSE_ORDER[c % 8]`.
pub const AWQ_REVERSE_ORDER: [usize; 8] = [0, 4, 1, 5, 2, 6, 3, 7];

/// Bytes of one GGUF Q4_0 block (f16 `d` + 16 bytes of nibbles) holding 32 elements.
pub const GGUF_Q4_0_BLOCK_BYTES: usize = 18;
/// Elements per GGUF Q4_0 block.
pub const GGUF_Q4_0_BLOCK: usize = 32;
/// Bytes of one GGUF Q8_0 block (f16 `d` + 32 int8 codes) holding 32 elements.
pub const GGUF_Q8_0_BLOCK_BYTES: usize = 34;
/// Elements per GGUF Q8_0 block.
pub const GGUF_Q8_0_BLOCK: usize = 32;
/// Bytes of one GGUF Q4_K super-block (f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and
/// minimums, 128 bytes of nibbles) holding 256 elements.
pub const GGUF_Q4_K_BLOCK_BYTES: usize = 144;
/// Elements per GGUF Q4_K super-block (8 sub-blocks of 32).
pub const GGUF_Q4_K_BLOCK: usize = 256;

fn nibble(word: i32, slot: usize) -> u8 {
    ((word as u32 >> (4 * slot)) & 0xF) as u8
}

/// `[groups, n]` -> `[n, groups]`, rejecting inf / NaN.
fn transpose_scales(format: &'static str, scales: &[f32], groups: usize, n: usize) -> Result<Vec<f32>> {
    if let Some(p) = scales.iter().position(|s| !s.is_finite()) {
        return Err(Error::format(format, format!("scale [{}, {}] is {} (scales must be finite)", p / n, p % n, scales[p])));
    }
    let mut out = vec![0f32; n * groups];
    for g in 0..groups {
        for j in 0..n {
            out[j * groups + g] = scales[g * n + j];
        }
    }
    Ok(out)
}

/// How a GPTQ checkpoint stores its zero points in `qzeros`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GptqFormat {
    /// Classic AutoGPTQ (`checkpoint_format: gptq`): the stored nibble is `zero - 1`.
    V1,
    /// GPTQModel `checkpoint_format: gptq_v2`: the stored nibble is the zero point.
    V2,
}

/// The act-order permutation of a GPTQ `g_idx`: `None` if `g_idx[k] == k / group` for every
/// `k`; otherwise the input channels sorted by group (stable), which requires exactly
/// `group` channels in each group.
fn gptq_perm(op: &'static str, g_idx: &[i32], k: usize, group: usize, allow_act_order: bool) -> Result<Option<Vec<u32>>> {
    check_len(op, "GPTQ g_idx", g_idx.len(), k, "[k]")?;
    let groups = k / group;
    for (kk, &v) in g_idx.iter().enumerate() {
        if v < 0 || v as usize >= groups {
            return Err(Error::format("GPTQ", format!("g_idx[{kk}] = {v} is out of range 0..{groups} (k / group)")));
        }
    }
    let Some(kk) = g_idx.iter().enumerate().position(|(kk, &v)| v as usize != kk / group) else {
        return Ok(None);
    };
    if !allow_act_order {
        return Err(Error::format(
            "GPTQ",
            format!(
                "g_idx[{kk}] = {} but {} expected: act-order (desc_act) permutations are not supported by from_gptq; \
                 use Int4Weights::from_gptq_format (or export the model with desc_act=False)",
                g_idx[kk],
                kk / group
            ),
        ));
    }
    let mut count = vec![0usize; groups];
    for &v in g_idx {
        count[v as usize] += 1;
    }
    if let Some(g) = count.iter().position(|&c| c != group) {
        return Err(Error::format(
            "GPTQ",
            format!("act-order g_idx assigns {} input channels to group {g}, expected group_size = {group} in every group", count[g]),
        ));
    }
    let mut perm: Vec<u32> = (0..k as u32).collect();
    perm.sort_by_key(|&c| g_idx[c as usize]); // stable
    Ok(Some(perm))
}

#[allow(clippy::too_many_arguments)]
fn gptq_core(
    op: &'static str,
    qweight: &[i32],
    qzeros: &[i32],
    scales: &[f32],
    g_idx: Option<&[i32]>,
    k: usize,
    n: usize,
    group: usize,
    format: GptqFormat,
    allow_act_order: bool,
) -> Result<Int4Weights> {
    check_group(op, k, group)?;
    check_n8(op, n)?;
    crate::formats::checked_elems(op, "weight", &[n, k])?;
    let groups = k / group;
    check_len(op, "GPTQ qweight", qweight.len(), k / 8 * n, "[k/8, n]")?;
    check_len(op, "GPTQ qzeros", qzeros.len(), groups * (n / 8), "[k/group, n/8]")?;
    check_len(op, "GPTQ scales", scales.len(), groups * n, "[k/group, n]")?;
    let perm = match g_idx {
        Some(gi) => gptq_perm(op, gi, k, group, allow_act_order)?,
        None => None,
    };
    let scales = transpose_scales("GPTQ", scales, groups, n)?;
    let mut zeros = vec![0u8; n * groups];
    for g in 0..groups {
        for j in 0..n {
            let stored = nibble(qzeros[g * (n / 8) + j / 8], j % 8);
            zeros[j * groups + g] = match format {
                GptqFormat::V2 => stored,
                GptqFormat::V1 if stored == 15 => {
                    return Err(Error::format(
                        "GPTQ",
                        format!(
                            "qzeros [{g}, {}] nibble {} stores 15, i.e. zero point 16 (classic GPTQ stores zero - 1), which is \
                             out of range 0..=15; this usually comes from packing a zero point of 0",
                            j / 8,
                            j % 8
                        ),
                    ))
                }
                GptqFormat::V1 => stored + 1,
            };
        }
    }
    let kw = k / 8;
    let mut qw = vec![0u32; n * kw];
    match &perm {
        // Our word [j, w] holds the same 8 nibbles (same bit order) as GPTQ's word [w, j].
        None => {
            for w in 0..kw {
                for j in 0..n {
                    qw[j * kw + w] = qweight[w * n + j] as u32;
                }
            }
        }
        // Stored column c is original channel perm[c].
        Some(perm) => {
            for j in 0..n {
                for (c, &orig) in perm.iter().enumerate() {
                    let orig = orig as usize;
                    let q = nibble(qweight[(orig / 8) * n + j], orig % 8) as u32;
                    qw[j * kw + c / 8] |= q << (4 * (c % 8));
                }
            }
        }
    }
    let w = Int4Weights::new(n, k, group, qw, scales, zeros)?;
    match perm {
        Some(p) => w.with_perm(p),
        None => Ok(w),
    }
}

fn awq_core(op: &'static str, qweight: &[i32], qzeros: &[i32], scales: &[f32], k: usize, n: usize, group: usize) -> Result<Int4Weights> {
    check_group(op, k, group)?;
    check_n8(op, n)?;
    crate::formats::checked_elems(op, "weight", &[n, k])?;
    let groups = k / group;
    let nw = n / 8;
    check_len(op, "AWQ qweight", qweight.len(), k * nw, "[k, n/8]")?;
    check_len(op, "AWQ qzeros", qzeros.len(), groups * nw, "[k/group, n/8]")?;
    check_len(op, "AWQ scales", scales.len(), groups * n, "[k/group, n]")?;
    let scales = transpose_scales("AWQ", scales, groups, n)?;
    let mut zeros = vec![0u8; n * groups];
    for g in 0..groups {
        for j in 0..n {
            zeros[j * groups + g] = nibble(qzeros[g * nw + j / 8], AWQ_REVERSE_ORDER[j % 8]);
        }
    }
    let kw = k / 8;
    let mut qw = vec![0u32; n * kw];
    for kk in 0..k {
        for j in 0..n {
            let q = nibble(qweight[kk * nw + j / 8], AWQ_REVERSE_ORDER[j % 8]) as u32;
            qw[j * kw + kk / 8] |= q << (4 * (kk % 8));
        }
    }
    Int4Weights::new(n, k, group, qw, scales, zeros)
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

    /// Converts GPTQ tensors (AutoGPTQ / HF safetensors, classic format) for a linear layer
    /// with `k` inputs and `n` outputs:
    /// - `qweight` i32 `[k / 8, n]`: element `k` of column `j` at bits `4 * (k % 8)` of word
    ///   `[k / 8, j]`;
    /// - `qzeros` i32 `[k / group, n / 8]`: column `j` at bits `4 * (j % 8)` of word
    ///   `[g, j / 8]`, storing `zero - 1` (so the zero point is `stored + 1`; a stored 15 would
    ///   mean 16, which 4-bit codes cannot use: it is rejected, it usually comes from
    ///   AutoGPTQ's packing overflow of a zero point 0);
    /// - `scales` f16 `[k / group, n]`;
    /// - `g_idx` i32 `[k]` (optional): must equal `k / group` for every `k`. Act-order
    ///   (`desc_act=True`) permutations are not supported here and are rejected; use
    ///   [`Int4Weights::from_gptq_format`], which accepts them.
    ///
    /// Requires `group` in 32, 64, 128 dividing `k`, and `n` a multiple of 8.
    #[allow(clippy::too_many_arguments)]
    pub fn from_gptq(
        qweight: &[i32],
        qzeros: &[i32],
        scales: &[f16],
        g_idx: Option<&[i32]>,
        k: usize,
        n: usize,
        group: usize,
    ) -> Result<Int4Weights> {
        const OP: &str = "Int4Weights::from_gptq";
        check_group(OP, k, group)?;
        check_n8(OP, n)?;
        crate::formats::checked_elems(OP, "weight", &[n, k])?;
        check_len(OP, "GPTQ scales", scales.len(), k / group * n, "[k/group, n]")?;
        if let Some(p) = scales.iter().position(|s| !s.is_finite()) {
            return Err(Error::format("GPTQ", format!("scale [{}, {}] is {} (scales must be finite)", p / n, p % n, scales[p])));
        }
        let scales: Vec<f32> = scales.iter().map(|s| s.to_f32()).collect();
        gptq_core(OP, qweight, qzeros, &scales, g_idx, k, n, group, GptqFormat::V1, false)
    }

    /// Converts GPTQ tensors in either zero-point format, with act-order support: like
    /// [`Int4Weights::from_gptq`], but
    /// - `scales` are f32 `[k / group, n]` (convert f16 / bf16 checkpoints exactly first);
    /// - `format` says how `qzeros` stores a zero point: [`GptqFormat::V1`] (classic
    ///   AutoGPTQ, `zero - 1`) or [`GptqFormat::V2`] (GPTQModel `gptq_v2`, `zero` itself);
    /// - `g_idx` (the group of each input channel) may be any assignment with exactly `group`
    ///   channels per group (act-order, `desc_act=True`). If it is not `k / group`, the input
    ///   channels are sorted by `g_idx` (stable) into `perm`; the result stores the columns in
    ///   that order (so groups are contiguous) and sets [`Int4Weights::perm`], and
    ///   [`Int4Weights::dequantize`] equals `(q[k, j] - z[g_idx[k], j]) * s[g_idx[k], j]`
    ///   exactly.
    #[allow(clippy::too_many_arguments)]
    pub fn from_gptq_format(
        qweight: &[i32],
        qzeros: &[i32],
        scales: &[f32],
        g_idx: Option<&[i32]>,
        k: usize,
        n: usize,
        group: usize,
        format: GptqFormat,
    ) -> Result<Int4Weights> {
        gptq_core("Int4Weights::from_gptq_format", qweight, qzeros, scales, g_idx, k, n, group, format, true)
    }

    /// Packs into classic GPTQ tensors (the inverse of [`Int4Weights::from_gptq`] and of
    /// [`Int4Weights::from_gptq_format`] with [`GptqFormat::V1`]; scales are rounded to f16).
    /// With an act-order `perm`, `qweight` rows are in the original channel order and `g_idx`
    /// is the act-order assignment `g_idx[perm[c]] = c / group`. Fails if `n` is not a
    /// multiple of 8, a zero point is 0 (classic GPTQ cannot store `0 - 1`), the weights use
    /// float minimums, or a scale overflows f16.
    pub fn to_gptq(&self) -> Result<GptqTensors> {
        const OP: &str = "Int4Weights::to_gptq";
        check_n8(OP, self.n)?;
        if self.mins.is_some() {
            return Err(Error::format("GPTQ", "weights with float minimums (GGUF Q4_K) have no GPTQ form (it stores integer zero points)"));
        }
        let (n, k, groups) = (self.n, self.k, self.k / self.group);
        if let Some(p) = self.zeros.iter().position(|&z| z == 0) {
            return Err(Error::format(
                "GPTQ",
                format!(
                    "zero point of row {}, group {} is 0, which classic GPTQ (stores zero - 1) cannot represent",
                    p / groups,
                    p % groups
                ),
            ));
        }
        let kw = k / 8;
        let mut qweight = vec![0i32; kw * n];
        match &self.perm {
            None => {
                for j in 0..n {
                    for w in 0..kw {
                        qweight[w * n + j] = self.qweight[j * kw + w] as i32;
                    }
                }
            }
            Some(perm) => {
                for j in 0..n {
                    for (c, &orig) in perm.iter().enumerate() {
                        let orig = orig as usize;
                        qweight[(orig / 8) * n + j] |= (self.q(j, c) << (4 * (orig % 8))) as i32;
                    }
                }
            }
        }
        let mut qzeros = vec![0i32; groups * (n / 8)];
        for g in 0..groups {
            for j in 0..n {
                let stored = (self.zeros[j * groups + g] - 1) as u32;
                qzeros[g * (n / 8) + j / 8] |= (stored << (4 * (j % 8))) as i32;
            }
        }
        let scales = self.f16_scales_gn("GPTQ")?;
        let mut g_idx = vec![0i32; k];
        for c in 0..k {
            g_idx[self.original_column(c)] = (c / self.group) as i32;
        }
        Ok(GptqTensors { qweight, qzeros, scales, g_idx })
    }

    /// Converts AutoAWQ GEMM tensors for a linear layer with `k` inputs and `n` outputs:
    /// - `qweight` i32 `[k, n / 8]` packed along N: nibble slot `i` (bits `4 i`) of word
    ///   `[k, c]` holds column `8 c + AWQ_ORDER[i]`, `AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]`;
    /// - `qzeros` i32 `[k / group, n / 8]`, packed the same way, zero points stored directly;
    /// - `scales` f16 `[k / group, n]`.
    ///
    /// Requires `group` in 32, 64, 128 dividing `k`, and `n` a multiple of 8.
    pub fn from_awq(qweight: &[i32], qzeros: &[i32], scales: &[f16], k: usize, n: usize, group: usize) -> Result<Int4Weights> {
        const OP: &str = "Int4Weights::from_awq";
        check_group(OP, k, group)?;
        check_n8(OP, n)?;
        crate::formats::checked_elems(OP, "weight", &[n, k])?;
        check_len(OP, "AWQ scales", scales.len(), k / group * n, "[k/group, n]")?;
        if let Some(p) = scales.iter().position(|s| !s.is_finite()) {
            return Err(Error::format("AWQ", format!("scale [{}, {}] is {} (scales must be finite)", p / n, p % n, scales[p])));
        }
        let scales: Vec<f32> = scales.iter().map(|s| s.to_f32()).collect();
        awq_core(OP, qweight, qzeros, &scales, k, n, group)
    }

    /// [`Int4Weights::from_awq`] with f32 scales `[k / group, n]` (convert f16 / bf16
    /// checkpoints exactly first).
    pub fn from_awq_f32(qweight: &[i32], qzeros: &[i32], scales: &[f32], k: usize, n: usize, group: usize) -> Result<Int4Weights> {
        awq_core("Int4Weights::from_awq_f32", qweight, qzeros, scales, k, n, group)
    }

    /// Packs into AutoAWQ GEMM tensors (the inverse of [`Int4Weights::from_awq`]; scales are
    /// rounded to f16). Fails if `n` is not a multiple of 8, a scale overflows f16, or the
    /// weights use float minimums or an act-order permutation (AWQ has neither).
    pub fn to_awq(&self) -> Result<AwqTensors> {
        const OP: &str = "Int4Weights::to_awq";
        check_n8(OP, self.n)?;
        if self.mins.is_some() {
            return Err(Error::format("AWQ", "weights with float minimums (GGUF Q4_K) have no AWQ form (it stores integer zero points)"));
        }
        if self.perm.is_some() {
            return Err(Error::format("AWQ", "act-order weights (with a perm) have no AWQ form (AWQ has no g_idx)"));
        }
        let (n, k, groups, nw) = (self.n, self.k, self.k / self.group, self.n / 8);
        let mut qweight = vec![0i32; k * nw];
        for kk in 0..k {
            for j in 0..n {
                qweight[kk * nw + j / 8] |= (self.q(j, kk) << (4 * AWQ_REVERSE_ORDER[j % 8])) as i32;
            }
        }
        let mut qzeros = vec![0i32; groups * nw];
        for g in 0..groups {
            for j in 0..n {
                qzeros[g * nw + j / 8] |= ((self.zeros[j * groups + g] as u32) << (4 * AWQ_REVERSE_ORDER[j % 8])) as i32;
            }
        }
        Ok(AwqTensors { qweight, qzeros, scales: self.f16_scales_gn("AWQ")? })
    }

    /// Scales as f16 `[k / group, n]`, failing if one overflows f16.
    fn f16_scales_gn(&self, format: &'static str) -> Result<Vec<f16>> {
        let groups = self.k / self.group;
        let mut out = vec![f16::ZERO; groups * self.n];
        for j in 0..self.n {
            for g in 0..groups {
                let s = f16::from_f32(self.scales[j * groups + g]);
                if !s.is_finite() {
                    return Err(Error::format(
                        format,
                        format!("scale of row {j}, group {g} = {} overflows f16", self.scales[j * groups + g]),
                    ));
                }
                out[g * self.n + j] = s;
            }
        }
        Ok(out)
    }

    /// Converts a GGUF / ggml Q4_0 tensor of `n` rows of `k` elements (GGUF `ne = [k, n]`):
    /// each row is `k / 32` blocks of 18 bytes, an f16 `d` (little-endian) then 16 bytes where
    /// byte `j` holds element `j` in its low nibble and element `j + 16` in its high nibble;
    /// `x = d * (q - 8)`. The result has group 32, scale `d` and zero point 8.
    pub fn from_gguf_q4_0(bytes: &[u8], n: usize, k: usize) -> Result<Int4Weights> {
        const OP: &str = "Int4Weights::from_gguf_q4_0";
        check_group(OP, k, GGUF_Q4_0_BLOCK)?;
        crate::formats::checked_elems(OP, "weight", &[n, k])?;
        let blocks = k / GGUF_Q4_0_BLOCK;
        let want = n * blocks * GGUF_Q4_0_BLOCK_BYTES;
        if bytes.len() != want {
            return Err(Error::shape(
                OP,
                format!("GGUF Q4_0 data has {} bytes, expected n * (k/32) blocks * 18 bytes = {n} * {blocks} * 18 = {want}", bytes.len()),
            ));
        }
        let kw = k / 8;
        let mut qweight = vec![0u32; n * kw];
        let mut scales = vec![0f32; n * blocks];
        for j in 0..n {
            for b in 0..blocks {
                let blk = &bytes[(j * blocks + b) * GGUF_Q4_0_BLOCK_BYTES..][..GGUF_Q4_0_BLOCK_BYTES];
                let d = f16::from_le_bytes([blk[0], blk[1]]);
                if !d.is_finite() {
                    return Err(Error::format("GGUF Q4_0", format!("block {b} of row {j} has scale d = {d} (must be finite)")));
                }
                scales[j * blocks + b] = d.to_f32();
                for (t, &byte) in blk[2..].iter().enumerate() {
                    for (kk, q) in [(b * 32 + t, byte & 0xF), (b * 32 + t + 16, byte >> 4)] {
                        qweight[j * kw + kk / 8] |= (q as u32) << (4 * (kk % 8));
                    }
                }
            }
        }
        Int4Weights::new(n, k, GGUF_Q4_0_BLOCK, qweight, scales, vec![8; n * blocks])
    }
}

/// Encodes `n` rows of `k` floats as GGUF / ggml Q4_0 bytes, bit-exact to ggml's
/// `quantize_row_q4_0_ref`: per block of 32, `max` is the first value of largest magnitude
/// (sign kept), `d = max / -8`, `id = 1 / d` (0 if `d == 0`), `q = min(15, (int8)(x * id + 8.5))`
/// (truncation), and `d` is stored as f16. Decode with [`Int4Weights::from_gguf_q4_0`].
pub fn quantize_gguf_q4_0(x: &[f32], n: usize, k: usize) -> Result<Vec<u8>> {
    const OP: &str = "quantize_gguf_q4_0";
    check_group(OP, k, GGUF_Q4_0_BLOCK)?;
    let len = crate::formats::checked_elems(OP, "matrix", &[n, k])?;
    check_len(OP, "input", x.len(), len, "n*k")?;
    if let Some(p) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::format("GGUF Q4_0 input", format!("x[{}, {}] = {} is not finite", p / k, p % k, x[p])));
    }
    let mut out = Vec::with_capacity(len / GGUF_Q4_0_BLOCK * GGUF_Q4_0_BLOCK_BYTES);
    for blk in x.chunks_exact(GGUF_Q4_0_BLOCK) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in blk {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        for j in 0..16 {
            // `as i8` truncates toward zero like C's (int8_t) cast for the in-range values here.
            let lo = ((blk[j] * id + 8.5) as i8).min(15) as u8;
            let hi = ((blk[j + 16] * id + 8.5) as i8).min(15) as u8;
            out.push(lo | (hi << 4));
        }
    }
    Ok(out)
}

impl Int4Weights {
    /// Converts a GGUF / ggml Q4_K tensor of `n` rows of `k` elements (GGUF `ne = [k, n]`,
    /// `k` a multiple of 256) into the float-minimum form with group 32.
    ///
    /// Each row is `k / 256` super-blocks of 144 bytes: f16 `d`, f16 `dmin`, 12 bytes packing
    /// eight 6-bit (scale, min) pairs (ggml's `get_scale_min_k4`: sub-block `j < 4` has
    /// `sc = s[j] & 63`, `m = s[j + 4] & 63`; `j >= 4` has
    /// `sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4)`, `m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4)`),
    /// then 128 bytes of nibbles: for each 64-element chunk, 32 bytes whose low nibbles are
    /// the chunk's first sub-block and high nibbles its second. `x = (d * sc) * q - dmin * m`.
    /// The result's scale is `d * sc` and minimum `dmin * m`, each computed in f32 exactly as
    /// ggml's `dequantize_row_q4_K` does, so [`Int4Weights::dequantize`] is bit-exact to it.
    /// An infinite or NaN `d` or `dmin` is an error.
    pub fn from_gguf_q4_k(bytes: &[u8], n: usize, k: usize) -> Result<Int4Weights> {
        const OP: &str = "Int4Weights::from_gguf_q4_k";
        if k == 0 || k % GGUF_Q4_K_BLOCK != 0 {
            return Err(Error::shape(OP, format!("K = {k} is not a positive multiple of the Q4_K super-block size 256")));
        }
        let len = crate::formats::checked_elems(OP, "weight", &[n, k])?;
        let sblocks = len / GGUF_Q4_K_BLOCK;
        let want = sblocks * GGUF_Q4_K_BLOCK_BYTES;
        if bytes.len() != want {
            return Err(Error::shape(
                OP,
                format!(
                    "GGUF Q4_K data has {} bytes, expected n * (k/256) super-blocks * 144 bytes = {n} * {} * 144 = {want}",
                    bytes.len(),
                    k / 256
                ),
            ));
        }
        let mut qweight = vec![0u32; len / 8];
        let mut scales = Vec::with_capacity(len / 32);
        let mut mins = Vec::with_capacity(len / 32);
        // Super-blocks are consecutive along each row and rows are consecutive, so super-block
        // `b` covers the flat elements `256 b .. 256 (b + 1)` and words `32 b .. 32 (b + 1)`.
        for (b, blk) in bytes.chunks_exact(GGUF_Q4_K_BLOCK_BYTES).enumerate() {
            let d = f16::from_le_bytes([blk[0], blk[1]]);
            let dmin = f16::from_le_bytes([blk[2], blk[3]]);
            if !d.is_finite() || !dmin.is_finite() {
                let spr = k / GGUF_Q4_K_BLOCK;
                return Err(Error::format(
                    "GGUF Q4_K",
                    format!("super-block {} of row {} has d = {d}, dmin = {dmin} (both must be finite)", b % spr, b / spr),
                ));
            }
            let (d, dmin) = (d.to_f32(), dmin.to_f32());
            let sm: &[u8; 12] = blk[4..16].try_into().expect("12 bytes");
            for j in 0..8 {
                let (sc, m) = q4k_scale_min(j, sm);
                scales.push(d * sc as f32);
                mins.push(dmin * m as f32);
            }
            let qs = &blk[16..];
            let words = &mut qweight[b * 32..(b + 1) * 32];
            for e in 0..GGUF_Q4_K_BLOCK {
                let byte = qs[(e / 64) * 32 + e % 32];
                let q = if e % 64 < 32 { byte & 0xF } else { byte >> 4 };
                words[e / 8] |= (q as u32) << (4 * (e % 8));
            }
        }
        Int4Weights::with_mins(n, k, 32, qweight, scales, mins)
    }
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and minimum of sub-block `j` (0..8) of a Q4_K
/// super-block's 12 packed bytes.
pub fn q4k_scale_min(j: usize, s: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// ggml's `nearest_int`: round to nearest, ties to even, through the float-add trick (exact
/// for `|x| <= 4194303`, and deterministic beyond, as in ggml's release builds).
fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

fn check_finite_input(format: &'static str, x: &[f32], k: usize) -> Result<()> {
    if let Some(p) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::format(format, format!("x[{}, {}] = {} is not finite", p / k, p % k, x[p])));
    }
    Ok(())
}

/// Encodes `n` rows of `k` floats as GGUF / ggml Q8_0 bytes, bit-exact to ggml's
/// `quantize_row_q8_0_ref`: per block of 32, `amax = max |x|`, `d = amax / 127`,
/// `id = 1 / d` (0 if `d == 0`), `q = roundf(x * id)` (half away from zero), and `d` is stored
/// as f16. Decode with [`Int8Weights::from_gguf_q8_0`].
pub fn quantize_gguf_q8_0(x: &[f32], n: usize, k: usize) -> Result<Vec<u8>> {
    const OP: &str = "quantize_gguf_q8_0";
    check_group(OP, k, GGUF_Q8_0_BLOCK)?;
    let len = crate::formats::checked_elems(OP, "matrix", &[n, k])?;
    check_len(OP, "input", x.len(), len, "n*k")?;
    check_finite_input("GGUF Q8_0 input", x, k)?;
    let mut out = Vec::with_capacity(len / GGUF_Q8_0_BLOCK * GGUF_Q8_0_BLOCK_BYTES);
    for blk in x.chunks_exact(GGUF_Q8_0_BLOCK) {
        // ggml: amax = MAX(amax, fabsf(v)), i.e. `amax > |v| ? amax : |v|`.
        let amax = blk.iter().fold(0f32, |a, v| if a > v.abs() { a } else { v.abs() });
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        // `as i8` saturates; the rounded values are within [-127, 127] here.
        out.extend(blk.iter().map(|&v| (v * id).round() as i8 as u8));
    }
    Ok(out)
}

/// ggml's `make_qkx2_quants` (the weighted min-max search of the K-quants), returning
/// `(scale, the_min)` with `the_min = -min >= 0` and filling `l` with the codes. Every float
/// operation is in ggml's order, in f32, without fused multiply-adds.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    laux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.iter_mut().for_each(|v| *v = 0);
        return (0.0, -min);
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let li = nearest_int(iscale * (x[i] - min));
        l[i] = li.clamp(0, nmax) as u8;
        let diff = scale * l[i] as f32 + min - x[i];
        let diff = if use_mad { diff.abs() } else { diff * diff };
        best_error += weights[i] * diff;
    }
    if nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmaxf) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let li = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = li as u8;
            let w = weights[i];
            let lf = li as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let dd = sum_w * sum_l2 - sum_l * sum_l;
        if dd > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / dd;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / dd;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                let diff = if use_mad { diff.abs() } else { diff * diff };
                cur_error += weights[i] * diff;
            }
            if cur_error < best_error {
                l[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Encodes `n` rows of `k` floats (`k` a multiple of 256) as GGUF / ggml Q4_K bytes,
/// mirroring ggml's `quantize_row_q4_K_ref` operation for operation (f32, ggml's order, no
/// fused multiply-adds): per sub-block of 32, weights `av_x + |x|` with
/// `av_x = sqrt(sum x^2 / 32)` and ggml's `make_qkx2_quants` search (`nmax 15`, `rmin -1`,
/// `rdelta 0.1`, `nstep 20`, squared error); the eight scales and minimums are quantized to 6
/// bits against their maxima (`d = max_scale / 63`, `dmin = max_min / 63`, stored as f16),
/// and the codes are recomputed from the stored `d * sc` and `dmin * m`. Decode with
/// [`Int4Weights::from_gguf_q4_k`].
///
/// ggml built with `-ffp-contract=fast` on a machine with FMA may contract some of these
/// products into fused multiply-adds and so differ in the last bit of an intermediate; this
/// function follows the C source's unfused semantics.
pub fn quantize_gguf_q4_k(x: &[f32], n: usize, k: usize) -> Result<Vec<u8>> {
    const OP: &str = "quantize_gguf_q4_k";
    if k == 0 || k % GGUF_Q4_K_BLOCK != 0 {
        return Err(Error::shape(OP, format!("K = {k} is not a positive multiple of the Q4_K super-block size 256")));
    }
    let len = crate::formats::checked_elems(OP, "matrix", &[n, k])?;
    check_len(OP, "input", x.len(), len, "n*k")?;
    check_finite_input("GGUF Q4_K input", x, k)?;
    let mut out = Vec::with_capacity(len / GGUF_Q4_K_BLOCK * GGUF_Q4_K_BLOCK_BYTES);
    let mut l = [0u8; 256];
    let mut laux = [0u8; 32];
    let mut weights = [0f32; 32];
    for xb in x.chunks_exact(GGUF_Q4_K_BLOCK) {
        let mut mins = [0f32; 8];
        let mut scales = [0f32; 8];
        let (mut max_scale, mut max_min) = (0f32, 0f32);
        for j in 0..8 {
            let xs = &xb[32 * j..32 * (j + 1)];
            let mut sum_x2 = 0f32;
            for &v in xs {
                sum_x2 += v * v;
            }
            let av_x = (sum_x2 / 32.0).sqrt();
            for (w, &v) in weights.iter_mut().zip(xs) {
                *w = av_x + v.abs();
            }
            let (sc, mn) = make_qkx2_quants(15, xs, &weights, &mut l[32 * j..32 * (j + 1)], &mut laux, -1.0, 0.1, 20, false);
            scales[j] = sc;
            mins[j] = mn;
            if sc > max_scale {
                max_scale = sc;
            }
            if mn > max_min {
                max_min = mn;
            }
        }
        let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
        let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
        let mut sm = [0u8; 12];
        for j in 0..8 {
            // C: `uint8_t ls = nearest_int(...)` wraps modulo 256, then MIN(63, ls).
            let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
            let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
            if j < 4 {
                sm[j] = ls;
                sm[j + 4] = lm;
            } else {
                sm[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
                sm[j - 4] |= (ls >> 4) << 6;
                sm[j] |= (lm >> 4) << 6;
            }
        }
        let d16 = f16::from_f32(max_scale / 63.0);
        let dmin16 = f16::from_f32(max_min / 63.0);
        for j in 0..8 {
            let (sc, m) = q4k_scale_min(j, &sm);
            let d = d16.to_f32() * sc as f32;
            if d == 0.0 {
                continue;
            }
            let dm = dmin16.to_f32() * m as f32;
            for ii in 0..32 {
                l[32 * j + ii] = nearest_int((xb[32 * j + ii] + dm) / d).clamp(0, 15) as u8;
            }
        }
        out.extend_from_slice(&d16.to_le_bytes());
        out.extend_from_slice(&dmin16.to_le_bytes());
        out.extend_from_slice(&sm);
        for c in 0..4 {
            for t in 0..32 {
                out.push(l[64 * c + t] | (l[64 * c + t + 32] << 4));
            }
        }
    }
    Ok(out)
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
