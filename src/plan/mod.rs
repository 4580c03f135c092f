//! The compression planner: for one dense weight `W [out, in]` and an error budget, which
//! format should the layer take so that it is as fast (or as small) as possible on *this*
//! device while its error stays within the budget?
//!
//! [`Planner::plan`] answers it for one layer:
//!
//! 1. **Candidates** from every compressor of the crate (restricted to
//!    [`PlanOptions::formats`]): CSR by magnitude pruning ([`Csr::from_dense`]), 2:4
//!    ([`Sparse24::prune_24`]), low rank by truncated SVD (the factors of
//!    [`LowRank::from_dense`]), int8 per output channel ([`Int8Matrix::quantize_rows`], W8A8),
//!    int4 group-wise symmetric and asymmetric at groups 32 / 64 / 128
//!    ([`Int4Weights::quantize`], W4A16), and binary ([`BinaryWeights::from_f32`], only when
//!    asked for: its error is rarely within any budget).
//! 2. **Error first**, on the host: the relative Frobenius error of the weight,
//!    `‖Ŵ − W‖ / ‖W‖`, and of the layer's output on calibration activations X (Gaussian by
//!    default, or the user's own), `‖Ŷ − X Wᵀ‖ / ‖X Wᵀ‖`, where Ŷ is what the layer's kernels
//!    compute: the dequantized weight, the activations rounded to the layer dtype, quantized per
//!    token for int8 and reduced to their signs for binary (exactly the arithmetic of
//!    [`Linear::forward`], up to float rounding). The budget applies to one of the two
//!    ([`ErrorMetric`], the output error by default).
//! 3. **Cheap search.** Sparsity and rank are not swept. CSR: the number of kept values is
//!    bisected (the error grows monotonically with the pruned set), exactly from the sorted
//!    magnitudes for the weight metric, within 1/512 of the entries for the output metric.
//!    Low rank: one SVD gives the error of *every* rank (the weight error from the singular
//!    values, the output error from `‖X v_t‖ s_t` per singular triplet), so the smallest rank
//!    within budget is found exactly; when even the largest rank that is smaller than the
//!    dense weight is far outside the budget, only the singular values are computed. Both
//!    searches stop at the size of the dense weight (a CSR or factors larger than it are never
//!    useful). Each family yields its cheapest variant within budget (or its most accurate
//!    useful one, marked out of budget).
//! 4. **Time only what is within budget**: each such candidate is uploaded to the device
//!    ([`PlannedLinear`], a [`Linear`] with its variant), its
//!    [`bytes_on_device`](PlannedLinear::bytes_on_device) measured, and, unless it is larger
//!    than the dense weight, its [`forward`](PlannedLinear::forward) timed at each token count of
//!    [`PlanOptions::tokens`] with [`Device::time_runs`] (median). The dense layer is timed the
//!    same way by a [`DenseReference`]: by default [`LibraryDense`], the dense [`Linear`] (the
//!    library's dense GEMM) through `forward`. The CLI can substitute the bench's dense baseline
//!    (cuBLAS, the WGSL dense GEMM, faer on the CPU).
//! 5. **Picks**: [`LayerPlan::fastest`] (the best geometric mean speedup over the dense layer
//!    across the token counts, within budget, the dense layer itself included) and
//!    [`LayerPlan::smallest`] (the fewest device bytes within budget).
//!
//! **What the times mean.** They are `forward` as a user calls it, output allocation and (for
//! CSR and 2:4) the two device transposes of the activations included, measured on the
//! device the planner was given. On the CPU reference backend or a software adapter (Mesa
//! lavapipe) they say nothing about GPU speed; [`timing_note`] returns the sentence that says
//! so, and the CLI prints it.
//!
//! ```
//! use slimgemm::plan::{PlanOptions, Planner, Objective};
//! use slimgemm::{Device, formats::LowRank};
//! # fn main() -> slimgemm::Result<()> {
//! let w = LowRank::<f32>::random(64, 96, 4, 1)?.to_dense()?;     // exactly rank 4
//! let opts = PlanOptions { budget: 0.01, tokens: vec![8], ..PlanOptions::default() };
//! let mut planner = Planner::new(&Device::cpu(), opts)?;
//! let plan = planner.plan("layer", &w, None)?;
//! let pick = plan.pick(Objective::Size);
//! assert_eq!(pick.variant.to_string(), "lowrank(r=4)");
//! assert!(pick.output_err <= 0.01);
//! # Ok(()) }
//! ```
//!
//! With feature `hf`, [`io`] reads dense safetensors models and writes and loads the
//! compressed ones (layout documented there).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::f16;
use crate::formats::{BinaryWeights, Csr, Int4Weights, Int8Matrix, LowRank, Matrix, Sparse24};
use crate::layer::{Linear, Weight};
use crate::tensor::Tensor;
use crate::BackendKind;

#[cfg(feature = "hf")]
pub mod io;

mod candidate;
mod dense;
mod layer;
mod options;
mod planner;
pub use candidate::*;
pub use dense::*;
pub use layer::*;
pub use options::*;
pub use planner::*;

const OPTS: &str = "plan options";

// ---------------------------------------------------------------------------------------
// Formats and variants

/// A family of compressed formats the planner can try (`--formats` in the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FormatFamily {
    /// CSR by magnitude pruning (`csr`).
    Csr,
    /// 2:4 structured sparsity by magnitude (`2:4`, also `sparse24`); needs `in % 4 == 0`.
    Sparse24,
    /// Low rank by truncated SVD (`lowrank`).
    LowRank,
    /// Int8 weights per output channel, int8 activations per token (`int8`, W8A8).
    Int8,
    /// Int4 group-wise weights, float activations (`int4`, W4A16); needs `in` a multiple of
    /// the group size.
    Int4,
    /// Binary weights and activations (`binary`, XNOR).
    Binary,
}

impl FormatFamily {
    /// Every family.
    pub const ALL: [FormatFamily; 6] =
        [FormatFamily::Csr, FormatFamily::Sparse24, FormatFamily::LowRank, FormatFamily::Int8, FormatFamily::Int4, FormatFamily::Binary];

    /// The families tried by default: all but binary.
    pub const DEFAULT: [FormatFamily; 5] =
        [FormatFamily::Csr, FormatFamily::Sparse24, FormatFamily::LowRank, FormatFamily::Int8, FormatFamily::Int4];

    /// `csr`, `2:4`, `lowrank`, `int8`, `int4` or `binary`.
    pub const fn name(self) -> &'static str {
        match self {
            FormatFamily::Csr => "csr",
            FormatFamily::Sparse24 => "2:4",
            FormatFamily::LowRank => "lowrank",
            FormatFamily::Int8 => "int8",
            FormatFamily::Int4 => "int4",
            FormatFamily::Binary => "binary",
        }
    }

    /// Parses a comma-separated list of names (see [`FormatFamily::from_str`]); `all` is every
    /// family, `default` is [`FormatFamily::DEFAULT`]. Unknown names and an empty list are
    /// errors.
    pub fn parse_list(s: &str) -> Result<Vec<FormatFamily>> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let add: Vec<FormatFamily> = match part {
                "all" => FormatFamily::ALL.to_vec(),
                "default" => FormatFamily::DEFAULT.to_vec(),
                p => vec![p.parse()?],
            };
            for f in add {
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        if out.is_empty() {
            return Err(Error::format(OPTS, format!("no format named in `{s}` (expected a comma-separated list of {})", family_names())));
        }
        Ok(out)
    }
}

fn family_names() -> String {
    FormatFamily::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for FormatFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FormatFamily {
    type Err = Error;
    /// `csr`, `2:4` (or `sparse24`, `24`), `lowrank` (or `low-rank`), `int8`, `int4`,
    /// `binary`; case-insensitive.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "csr" => FormatFamily::Csr,
            "2:4" | "sparse24" | "24" => FormatFamily::Sparse24,
            "lowrank" | "low-rank" => FormatFamily::LowRank,
            "int8" => FormatFamily::Int8,
            "int4" => FormatFamily::Int4,
            "binary" => FormatFamily::Binary,
            _ => return Err(Error::format(OPTS, format!("unknown format `{s}` (expected one of {}, all, default)", family_names()))),
        })
    }
}

/// One concrete compressed form of a layer (a family with its parameters), or the dense
/// weight itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The uncompressed weight.
    Dense,
    /// CSR keeping the `nnz` values of largest magnitude.
    Csr {
        /// Values kept.
        nnz: usize,
    },
    /// 2:4 structured sparsity (the two values of largest magnitude in every group of 4).
    Sparse24,
    /// Rank-`rank` factors from the truncated SVD.
    LowRank {
        /// The rank.
        rank: usize,
    },
    /// Int8 per output channel (W8A8).
    Int8,
    /// Int4 group-wise (W4A16).
    Int4 {
        /// Group size along the input features (32, 64 or 128).
        group: usize,
        /// Symmetric (zero point 8) or asymmetric (min-max) groups.
        symmetric: bool,
    },
    /// Binary signs with XNOR-Net alpha per output channel.
    Binary,
}

impl Variant {
    /// The family (`None` for [`Variant::Dense`]).
    pub fn family(self) -> Option<FormatFamily> {
        Some(match self {
            Variant::Dense => return None,
            Variant::Csr { .. } => FormatFamily::Csr,
            Variant::Sparse24 => FormatFamily::Sparse24,
            Variant::LowRank { .. } => FormatFamily::LowRank,
            Variant::Int8 => FormatFamily::Int8,
            Variant::Int4 { .. } => FormatFamily::Int4,
            Variant::Binary => FormatFamily::Binary,
        })
    }

    /// The family's name, or `dense`.
    pub fn family_name(self) -> &'static str {
        self.family().map_or("dense", FormatFamily::name)
    }

    /// A short human label for a layer of `out x inp`: like [`Display`](fmt::Display), but CSR
    /// as its sparsity (`csr 90.0%`).
    pub fn label(self, out: usize, inp: usize) -> String {
        match self {
            Variant::Csr { nnz } => format!("csr {:.1}%", 100.0 * (1.0 - nnz as f64 / (out as f64 * inp as f64))),
            v => v.to_string(),
        }
    }
}

impl fmt::Display for Variant {
    /// `dense`, `csr(nnz=N)`, `2:4`, `lowrank(r=R)`, `int8`, `int4(g128,sym)` /
    /// `int4(g64,asym)`, `binary`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Variant::Dense => f.write_str("dense"),
            Variant::Csr { nnz } => write!(f, "csr(nnz={nnz})"),
            Variant::Sparse24 => f.write_str("2:4"),
            Variant::LowRank { rank } => write!(f, "lowrank(r={rank})"),
            Variant::Int8 => f.write_str("int8"),
            Variant::Int4 { group, symmetric } => write!(f, "int4(g{group},{})", if *symmetric { "sym" } else { "asym" }),
            Variant::Binary => f.write_str("binary"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Host weights

/// The planner's side of a host [`Weight`]: compression to a [`Variant`], the variant of a
/// weight, and the weight its kernels multiply by. The planner produces every format but
/// weight-only int8 ([`Weight::Int8WeightOnly`], GGUF Q8_0), which has no [`Variant`].
impl Weight {
    /// Compresses the dense weight `w` to `variant` with the crate's compressor for it (the
    /// planner's own constructions give the same results): [`Csr::from_dense`] keeping `nnz`
    /// values, [`Sparse24::prune_24`], [`LowRank::from_dense`], [`Int8Matrix::quantize_rows`],
    /// [`Int4Weights::quantize`], [`BinaryWeights::from_f32`].
    pub fn compress(w: &Matrix<f32>, variant: Variant) -> Result<Weight> {
        check_weight("Weight::compress", w)?;
        Ok(match variant {
            Variant::Dense => Weight::Dense(w.clone()),
            Variant::Csr { nnz } => {
                let total = w.data.len();
                if nnz == 0 || nnz > total {
                    return Err(Error::shape("Weight::compress", format!("CSR with nnz = {nnz}, expected 1..={total}")));
                }
                Weight::Csr(Csr::from_mask(w, &top_k_mask(&magnitude_order(&w.data), nnz, total))?)
            }
            Variant::Sparse24 => Weight::Sparse24(Sparse24::prune_24(w)?),
            Variant::LowRank { rank } => Weight::LowRank(LowRank::from_dense(w, rank)?),
            Variant::Int8 => Weight::Int8(Int8Matrix::quantize_rows(w)?),
            Variant::Int4 { group, symmetric } => Weight::Int4(Int4Weights::quantize(w, group, symmetric)?),
            Variant::Binary => Weight::Binary(BinaryWeights::from_f32(w.rows, w.cols, &w.data)?),
        })
    }

    /// The planner variant this weight is; an error for weight-only int8, which the planner
    /// neither produces nor writes.
    pub fn variant(&self) -> Result<Variant> {
        Ok(match self {
            Weight::Dense(_) => Variant::Dense,
            Weight::Csr(c) => Variant::Csr { nnz: c.nnz() },
            Weight::Sparse24(_) => Variant::Sparse24,
            Weight::LowRank(l) => Variant::LowRank { rank: l.r },
            Weight::Int8(_) => Variant::Int8,
            Weight::Int4(q) => Variant::Int4 { group: q.group, symmetric: q.symmetric },
            Weight::Binary(_) => Variant::Binary,
            Weight::Int8WeightOnly(_) => {
                return Err(Error::format(
                    "planned weight",
                    "weight-only int8 (int8wo) has no planner variant: the planner neither produces nor writes it",
                ))
            }
        })
    }

    /// The weight this format represents, as a dense f32 matrix (dequantized; binary as
    /// `alpha_j * sign`).
    pub fn to_dense(&self) -> Result<Matrix<f32>> {
        self.effective(DType::F32)
    }

    /// The weight the kernels of a layer of activation dtype `dtype` multiply by: float
    /// values (dense, CSR, 2:4, low-rank factors) rounded to `dtype` first.
    fn effective(&self, dtype: DType) -> Result<Matrix<f32>> {
        let r = |v: f32| round_to(dtype, v);
        Ok(match self {
            Weight::Dense(m) => Matrix { rows: m.rows, cols: m.cols, data: m.data.iter().map(|&v| r(v)).collect() },
            Weight::Csr(c) => {
                let d = c.to_dense();
                Matrix { data: d.data.into_iter().map(r).collect(), ..d }
            }
            Weight::Sparse24(s) => {
                let d = s.to_dense();
                Matrix { data: d.data.into_iter().map(r).collect(), ..d }
            }
            Weight::LowRank(l) => {
                let u = l.u.iter().map(|&v| r(v)).collect();
                let v = l.v.iter().map(|&v| r(v)).collect();
                LowRank::new(l.m, l.n, l.r, u, v)?.to_dense()?
            }
            Weight::Int8(q) => q.dequantize(),
            Weight::Int4(q) => q.dequantize(),
            Weight::Int8WeightOnly(q) => q.dequantize(),
            Weight::Binary(b) => {
                let (n, k) = (b.n(), b.k());
                let mut data = vec![0f32; n * k];
                for j in 0..n {
                    for c in 0..k {
                        data[j * k + c] = b.alpha[j] * b.bits.value(j, c);
                    }
                }
                Matrix { rows: n, cols: k, data }
            }
        })
    }

    /// What the layer's kernels do to the activations before multiplying.
    fn activations(&self) -> Act {
        match self {
            Weight::Int8(_) => Act::Int8,
            Weight::Binary(_) => Act::Sign,
            _ => Act::Float,
        }
    }
}

fn round_to(dtype: DType, v: f32) -> f32 {
    if dtype == DType::F16 {
        f16::from_f32(v).to_f32()
    } else {
        v
    }
}

fn check_weight(op: &'static str, w: &Matrix<f32>) -> Result<()> {
    let n = crate::formats::checked_elems(op, "weight", &[w.rows, w.cols])?;
    if w.data.len() != n {
        return Err(Error::shape(op, format!("weight data has {} elements, expected {}x{} = {n}", w.data.len(), w.rows, w.cols)));
    }
    if let Some(p) = w.data.iter().position(|v| !v.is_finite()) {
        return Err(Error::format("dense weight", format!("w[{}, {}] = {} is not finite", p / w.cols, p % w.cols, w.data[p])));
    }
    Ok(())
}

/// Positions sorted by magnitude, largest first, ties by position (the order of
/// [`Csr::from_dense`]).
fn magnitude_order(w: &[f32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..w.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| w[b as usize].abs().total_cmp(&w[a as usize].abs()).then(a.cmp(&b)));
    order
}

fn top_k_mask(order: &[u32], k: usize, total: usize) -> Vec<bool> {
    let mut mask = vec![false; total];
    for &p in &order[..k] {
        mask[p as usize] = true;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_is_standard() {
        let x = gaussian_activations(100, 100, 3).unwrap();
        let mean = x.data.iter().map(|&v| v as f64).sum::<f64>() / 1e4;
        let var = x.data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 1e4;
        assert!(mean.abs() < 0.05 && (var - 1.0).abs() < 0.05, "mean {mean} var {var}");
    }

    #[test]
    fn magnitude_order_matches_csr_from_dense() {
        let w = Matrix::<f32>::random(9, 13, 5).unwrap();
        let order = magnitude_order(&w.data);
        for k in [1, 10, 50, 117] {
            let a = Csr::from_mask(&w, &top_k_mask(&order, k, w.data.len())).unwrap();
            let b = Csr::from_dense(&w, 1.0 - k as f64 / 117.0).unwrap();
            assert_eq!(a, b, "k = {k}");
        }
    }
}
