//! GPTQ (AutoGPTQ / GPTQModel, classic and v2 zeros, act-order) and AWQ converters of
//! [`Int4Weights`], bit-exact to those layouts.

use super::*;

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

/// The shape rules of every converter: `group` in 32, 64, 128 dividing `k`, `n` a multiple of
/// 8, `n * k` elements addressable.
fn check_layer(op: &'static str, k: usize, n: usize, group: usize) -> Result<()> {
    check_group(op, k, group)?;
    check_n8(op, n)?;
    crate::formats::checked_elems(op, "weight", &[n, k]).map(|_| ())
}

/// The f16 scales `[k / group, n]` of a converter as f32, after its shape checks; rejects inf /
/// NaN (naming the f16 value).
fn f16_scales(op: &'static str, format: &'static str, scales: &[f16], k: usize, n: usize, group: usize) -> Result<Vec<f32>> {
    check_layer(op, k, n, group)?;
    check_len(op, &format!("{format} scales"), scales.len(), k / group * n, "[k/group, n]")?;
    if let Some(p) = scales.iter().position(|s| !s.is_finite()) {
        return Err(Error::format(format, format!("scale [{}, {}] is {} (scales must be finite)", p / n, p % n, scales[p])));
    }
    Ok(scales.iter().map(|s| s.to_f32()).collect())
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
    check_layer(op, k, n, group)?;
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
    check_layer(op, k, n, group)?;
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

impl Int4Weights {
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
        let scales = f16_scales(OP, "GPTQ", scales, k, n, group)?;
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
        let scales = f16_scales(OP, "AWQ", scales, k, n, group)?;
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
}
