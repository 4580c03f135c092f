//! Quantized weights: int8 rows with per-row scales, int4 group-wise weights, and converters
//! from the layouts users already have (GPTQ, AWQ, GGUF).

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

fn nibble(word: i32, slot: usize) -> u8 {
    ((word as u32 >> (4 * slot)) & 0xF) as u8
}

fn f16_scales(format: &'static str, scales: &[f16], groups: usize, n: usize) -> Result<Vec<f32>> {
    // [groups, n] f16 -> [n, groups] f32, rejecting inf / NaN.
    if let Some(p) = scales.iter().position(|s| !s.is_finite()) {
        return Err(Error::format(format, format!("scale [{}, {}] is {} (scales must be finite)", p / n, p % n, scales[p])));
    }
    let mut out = vec![0f32; n * groups];
    for g in 0..groups {
        for j in 0..n {
            out[j * groups + g] = scales[g * n + j].to_f32();
        }
    }
    Ok(out)
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
    /// The dequantized weight `[n, k]`.
    pub fn dequantize(&self) -> Matrix<f32> {
        let mut data = Vec::with_capacity(self.n * self.k);
        for j in 0..self.n {
            for k in 0..self.k {
                data.push(self.dequant(j, k));
            }
        }
        Matrix { rows: self.n, cols: self.k, data }
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
    ///   (`desc_act=True`) permutations are not supported and are rejected.
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
        let groups = k / group;
        check_len(OP, "GPTQ qweight", qweight.len(), k / 8 * n, "[k/8, n]")?;
        check_len(OP, "GPTQ qzeros", qzeros.len(), groups * (n / 8), "[k/group, n/8]")?;
        check_len(OP, "GPTQ scales", scales.len(), groups * n, "[k/group, n]")?;
        if let Some(gi) = g_idx {
            check_len(OP, "GPTQ g_idx", gi.len(), k, "[k]")?;
            for (kk, &v) in gi.iter().enumerate() {
                if v < 0 || v as usize >= groups {
                    return Err(Error::format("GPTQ", format!("g_idx[{kk}] = {v} is out of range 0..{groups} (k / group)")));
                }
                if v as usize != kk / group {
                    return Err(Error::format(
                        "GPTQ",
                        format!(
                            "g_idx[{kk}] = {v} but {} expected: act-order (desc_act) permutations are not supported; \
                             export the model with desc_act=False (or apply the permutation to the activations first)",
                            kk / group
                        ),
                    ));
                }
            }
        }
        let scales = f16_scales("GPTQ", scales, groups, n)?;
        let mut zeros = vec![0u8; n * groups];
        for g in 0..groups {
            for j in 0..n {
                let stored = nibble(qzeros[g * (n / 8) + j / 8], j % 8);
                if stored == 15 {
                    return Err(Error::format(
                        "GPTQ",
                        format!(
                            "qzeros [{g}, {}] nibble {} stores 15, i.e. zero point 16 (classic GPTQ stores zero - 1), which is \
                             out of range 0..=15; this usually comes from packing a zero point of 0",
                            j / 8,
                            j % 8
                        ),
                    ));
                }
                zeros[j * groups + g] = stored + 1;
            }
        }
        // Our word [j, w] holds the same 8 nibbles (same bit order) as GPTQ's word [w, j].
        let kw = k / 8;
        let mut qw = vec![0u32; n * kw];
        for w in 0..kw {
            for j in 0..n {
                qw[j * kw + w] = qweight[w * n + j] as u32;
            }
        }
        Int4Weights::new(n, k, group, qw, scales, zeros)
    }

    /// Packs into classic GPTQ tensors (the inverse of [`Int4Weights::from_gptq`]; scales are
    /// rounded to f16). Fails if `n` is not a multiple of 8, a zero point is 0 (classic GPTQ
    /// cannot store `0 - 1`), or a scale overflows f16.
    pub fn to_gptq(&self) -> Result<GptqTensors> {
        const OP: &str = "Int4Weights::to_gptq";
        check_n8(OP, self.n)?;
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
        for j in 0..n {
            for w in 0..kw {
                qweight[w * n + j] = self.qweight[j * kw + w] as i32;
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
        let g_idx = (0..k).map(|kk| (kk / self.group) as i32).collect();
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
        let groups = k / group;
        let nw = n / 8;
        check_len(OP, "AWQ qweight", qweight.len(), k * nw, "[k, n/8]")?;
        check_len(OP, "AWQ qzeros", qzeros.len(), groups * nw, "[k/group, n/8]")?;
        check_len(OP, "AWQ scales", scales.len(), groups * n, "[k/group, n]")?;
        let scales = f16_scales("AWQ", scales, groups, n)?;
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

    /// Packs into AutoAWQ GEMM tensors (the inverse of [`Int4Weights::from_awq`]; scales are
    /// rounded to f16). Fails if `n` is not a multiple of 8 or a scale overflows f16.
    pub fn to_awq(&self) -> Result<AwqTensors> {
        const OP: &str = "Int4Weights::to_awq";
        check_n8(OP, self.n)?;
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
