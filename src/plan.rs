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
//!    ([`PlannedLinear`], which is [`Linear`] for every format but 2:4), its
//!    [`bytes_on_device`](PlannedLinear::bytes_on_device) measured, and, unless it is larger
//!    than the dense weight, its [`forward`](PlannedLinear::forward) timed at each token count of
//!    [`PlanOptions::tokens`] with [`Device::time_runs`] (median). The dense layer is timed the
//!    same way by a [`DenseReference`]: by default [`LibraryDense`], the cheaper of the two exact
//!    dense paths the library has (identity-factor low rank, or CSR with every value kept), both
//!    through `forward`. The CLI can substitute the bench's dense baseline (cuBLAS, the WGSL
//!    dense GEMM, faer on the CPU).
//! 5. **Picks**: [`LayerPlan::fastest`] (the best geometric mean speedup over the dense layer
//!    across the token counts, within budget, the dense layer itself included) and
//!    [`LayerPlan::smallest`] (the fewest device bytes within budget).
//!
//! **What the times mean.** They are `forward` as a user calls it, output allocation and (for
//! CSR and 2:4, which lack a device transpose) the host transposes included, measured on the
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
use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::f16;
use crate::formats::{BinaryWeights, Csr, Int4Weights, Int8Matrix, LowRank, Matrix, Sparse24};
use crate::layer::Linear;
use crate::tensor::{DeviceSparse24, Tensor};
use crate::BackendKind;

#[cfg(feature = "hf")]
pub mod io;

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

/// A layer's weight `[out, in]` on the host in the format the planner chose: the dense
/// weight, or one of the compressed formats (every [`crate::Weight`] format plus 2:4).
#[derive(Debug, Clone)]
pub enum PlannedWeight {
    /// The uncompressed weight.
    Dense(Matrix<f32>),
    /// Sparse CSR.
    Csr(Csr<f32>),
    /// 2:4 structured sparsity.
    Sparse24(Sparse24<f32>),
    /// Low-rank factors `W = U Vᵀ`.
    LowRank(LowRank<f32>),
    /// Int8 per output channel.
    Int8(Int8Matrix),
    /// Int4 group-wise.
    Int4(Int4Weights),
    /// Binary.
    Binary(BinaryWeights),
}

impl PlannedWeight {
    /// Compresses the dense weight `w` to `variant` with the crate's compressor for it (the
    /// planner's own constructions give the same results): [`Csr::from_dense`] keeping `nnz`
    /// values, [`Sparse24::prune_24`], [`LowRank::from_dense`], [`Int8Matrix::quantize_rows`],
    /// [`Int4Weights::quantize`], [`BinaryWeights::from_f32`].
    pub fn compress(w: &Matrix<f32>, variant: Variant) -> Result<PlannedWeight> {
        check_weight("PlannedWeight::compress", w)?;
        Ok(match variant {
            Variant::Dense => PlannedWeight::Dense(w.clone()),
            Variant::Csr { nnz } => {
                let total = w.data.len();
                if nnz == 0 || nnz > total {
                    return Err(Error::shape("PlannedWeight::compress", format!("CSR with nnz = {nnz}, expected 1..={total}")));
                }
                PlannedWeight::Csr(Csr::from_mask(w, &top_k_mask(&magnitude_order(&w.data), nnz, total))?)
            }
            Variant::Sparse24 => PlannedWeight::Sparse24(Sparse24::prune_24(w)?),
            Variant::LowRank { rank } => PlannedWeight::LowRank(LowRank::from_dense(w, rank)?),
            Variant::Int8 => PlannedWeight::Int8(Int8Matrix::quantize_rows(w)?),
            Variant::Int4 { group, symmetric } => PlannedWeight::Int4(Int4Weights::quantize(w, group, symmetric)?),
            Variant::Binary => PlannedWeight::Binary(BinaryWeights::from_f32(w.rows, w.cols, &w.data)?),
        })
    }

    /// The variant this weight is.
    pub fn variant(&self) -> Variant {
        match self {
            PlannedWeight::Dense(_) => Variant::Dense,
            PlannedWeight::Csr(c) => Variant::Csr { nnz: c.nnz() },
            PlannedWeight::Sparse24(_) => Variant::Sparse24,
            PlannedWeight::LowRank(l) => Variant::LowRank { rank: l.r },
            PlannedWeight::Int8(_) => Variant::Int8,
            PlannedWeight::Int4(q) => Variant::Int4 { group: q.group, symmetric: q.symmetric },
            PlannedWeight::Binary(_) => Variant::Binary,
        }
    }

    /// `(out, in)`.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            PlannedWeight::Dense(m) => (m.rows, m.cols),
            PlannedWeight::Csr(c) => (c.rows, c.cols),
            PlannedWeight::Sparse24(s) => (s.rows(), s.cols()),
            PlannedWeight::LowRank(l) => (l.m, l.n),
            PlannedWeight::Int8(q) => (q.rows, q.cols),
            PlannedWeight::Int4(q) => (q.n, q.k),
            PlannedWeight::Binary(b) => (b.n(), b.k()),
        }
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
            PlannedWeight::Dense(m) => Matrix { rows: m.rows, cols: m.cols, data: m.data.iter().map(|&v| r(v)).collect() },
            PlannedWeight::Csr(c) => {
                let d = c.to_dense();
                Matrix { data: d.data.into_iter().map(r).collect(), ..d }
            }
            PlannedWeight::Sparse24(s) => {
                let d = s.to_dense();
                Matrix { data: d.data.into_iter().map(r).collect(), ..d }
            }
            PlannedWeight::LowRank(l) => {
                let u = l.u.iter().map(|&v| r(v)).collect();
                let v = l.v.iter().map(|&v| r(v)).collect();
                LowRank::new(l.m, l.n, l.r, u, v)?.to_dense()?
            }
            PlannedWeight::Int8(q) => q.dequantize(),
            PlannedWeight::Int4(q) => q.dequantize(),
            PlannedWeight::Binary(b) => {
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
            PlannedWeight::Int8(_) => Act::Int8,
            PlannedWeight::Binary(_) => Act::Sign,
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

// ---------------------------------------------------------------------------------------
// Device layers

/// A layer `y = x Wᵀ + bias` on a device in any planned format: a [`Linear`] for dense (as
/// identity-factor low rank, see [`PlannedLinear::new`]), CSR, low-rank, int8, int4 and
/// binary weights, and `spmm_24` for 2:4 (which [`Linear`] does not hold).
#[derive(Debug)]
pub struct PlannedLinear {
    variant: Variant,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Linear(Box<Linear>),
    Sparse24(Box<Sparse24Layer>),
}

#[derive(Debug)]
struct Sparse24Layer {
    dev: Device,
    a: DeviceSparse24,
    bias: Option<Vec<f32>>,
    dtype: DType,
    out: usize,
    inp: usize,
}

const LAYER: &str = "PlannedLinear";

impl PlannedLinear {
    /// Uploads `w` (with the optional bias of `out` values) for activations of `dtype` (f32 or
    /// f16). A dense weight runs exactly (to float rounding) as low-rank factors one of which is
    /// the identity: `U = I, V = Wᵀ` (rank `out`) when `out <= in`, else `U = W, V = I` (rank
    /// `in`), i.e. `lowrank_linear` at `out·in + min(out, in)²` multiply-adds per token; 2:4
    /// runs `spmm_24` on the transposed activations, transposing on the host like CSR layers
    /// (see [`crate::layer`]).
    pub fn new(dev: &Device, w: &PlannedWeight, bias: Option<&[f32]>, dtype: DType) -> Result<PlannedLinear> {
        let variant = w.variant();
        let inner = match w {
            PlannedWeight::Dense(m) => Inner::Linear(Box::new(Linear::new(dev, identity_lowrank(m)?, bias, dtype)?)),
            PlannedWeight::Csr(c) => Inner::Linear(Box::new(Linear::new(dev, c.clone(), bias, dtype)?)),
            PlannedWeight::LowRank(l) => Inner::Linear(Box::new(Linear::new(dev, l.clone(), bias, dtype)?)),
            PlannedWeight::Int8(q) => Inner::Linear(Box::new(Linear::new(dev, q.clone(), bias, dtype)?)),
            PlannedWeight::Int4(q) => Inner::Linear(Box::new(Linear::new(dev, q.clone(), bias, dtype)?)),
            PlannedWeight::Binary(b) => Inner::Linear(Box::new(Linear::new(dev, b.clone(), bias, dtype)?)),
            PlannedWeight::Sparse24(s) => {
                if !dtype.is_float() {
                    return Err(Error::dtype(LAYER, format!("activations are f32 or f16, not {dtype}")));
                }
                let (out, inp) = (s.rows(), s.cols());
                if let Some(b) = bias {
                    if b.len() != out {
                        return Err(Error::shape(LAYER, format!("bias has {} values, expected out_features = {out}", b.len())));
                    }
                    if let Some(p) = b.iter().position(|v| !v.is_finite()) {
                        return Err(Error::shape(LAYER, format!("bias[{p}] = {} must be finite", b[p])));
                    }
                }
                let a = match dtype {
                    DType::F16 => dev.upload_sparse24(&s.cast::<f16>())?,
                    _ => dev.upload_sparse24(s)?,
                };
                Inner::Sparse24(Box::new(Sparse24Layer { dev: dev.clone(), a, bias: bias.map(<[f32]>::to_vec), dtype, out, inp }))
            }
        };
        Ok(PlannedLinear { variant, inner })
    }

    /// The weight's variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The [`Linear`] layer behind it (every variant but 2:4).
    pub fn as_linear(&self) -> Option<&Linear> {
        match &self.inner {
            Inner::Linear(l) => Some(l),
            Inner::Sparse24(_) => None,
        }
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        match &self.inner {
            Inner::Linear(l) => l.in_features(),
            Inner::Sparse24(s) => s.inp,
        }
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        match &self.inner {
            Inner::Linear(l) => l.out_features(),
            Inner::Sparse24(s) => s.out,
        }
    }

    /// The activation dtype `forward` takes.
    pub fn dtype(&self) -> DType {
        match &self.inner {
            Inner::Linear(l) => l.dtype(),
            Inner::Sparse24(s) => s.dtype,
        }
    }

    /// The dtype `forward` returns (f32 for binary layers, else the activation dtype).
    pub fn out_dtype(&self) -> DType {
        match &self.inner {
            Inner::Linear(l) => l.out_dtype(),
            Inner::Sparse24(s) => s.dtype,
        }
    }

    /// Bytes of every device buffer of the weight and bias ([`Linear::bytes_on_device`]; for
    /// 2:4 the values, the metadata and the tensor-core copy where the backend made one, its
    /// bias being kept on the host and added during the host transpose; for dense layers both
    /// identity-factor buffers).
    pub fn bytes_on_device(&self) -> u64 {
        match &self.inner {
            Inner::Linear(l) => l.bytes_on_device(),
            Inner::Sparse24(s) => {
                let b = |x: &crate::tensor::Buffer| x.len as u64 * x.dtype.size() as u64;
                let mma = s.a.mma.as_ref().map_or(0, |m| b(&m.values) + b(&m.meta));
                b(&s.a.values) + b(&s.a.meta) + mma
            }
        }
    }

    /// `y = x Wᵀ + bias` for x `[tokens, in]` of [`PlannedLinear::dtype`] on the layer's device.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.inner {
            Inner::Linear(l) => l.forward(x),
            Inner::Sparse24(s) => s.forward(x),
        }
    }
}

impl Sparse24Layer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dev = &self.dev;
        dev.owns(LAYER, "x", &x.buf)?;
        if x.cols != self.inp {
            return Err(Error::shape(LAYER, format!("x is [{}, {}], expected [tokens, in_features = {}]", x.rows, x.cols, self.inp)));
        }
        if x.dtype() != self.dtype {
            return Err(Error::dtype(LAYER, format!("x is {}, this layer takes {}", x.dtype(), self.dtype)));
        }
        let mut yt = dev.zeros(self.out, x.rows, self.dtype)?;
        match self.dtype {
            DType::F16 => {
                dev.spmm_24(&self.a, &transpose_via_host::<f16>(dev, x, None)?, &mut yt, 1.0, 0.0)?;
                transpose_via_host::<f16>(dev, &yt, self.bias.as_deref())
            }
            _ => {
                dev.spmm_24(&self.a, &transpose_via_host::<f32>(dev, x, None)?, &mut yt, 1.0, 0.0)?;
                transpose_via_host::<f32>(dev, &yt, self.bias.as_deref())
            }
        }
    }
}

/// Downloads `t`, transposes it on the host (adding `bias[j]` to column `j` of the result if
/// given) and uploads it.
fn transpose_via_host<T: Float>(dev: &Device, t: &Tensor, bias: Option<&[f32]>) -> Result<Tensor> {
    let m = dev.download_matrix::<T>(t)?.transpose();
    let m = match bias {
        None => m,
        Some(b) => {
            let cols = m.cols;
            let data = m.data.iter().enumerate().map(|(p, v)| T::from_f32(v.to_f32() + b[p % cols])).collect();
            Matrix { data, ..m }
        }
    };
    dev.upload_matrix(&m)
}

/// Exact factors of a dense weight with one identity factor (see [`PlannedLinear::new`]).
fn identity_lowrank(w: &Matrix<f32>) -> Result<LowRank<f32>> {
    let (m, n) = (w.rows, w.cols);
    let eye = |d: usize| {
        let mut e = vec![0f32; d * d];
        for i in 0..d {
            e[i * d + i] = 1.0;
        }
        e
    };
    if m <= n {
        LowRank::new(m, n, m, eye(m), w.transpose().data)
    } else {
        LowRank::new(m, n, n, w.data.clone(), eye(n))
    }
}

// ---------------------------------------------------------------------------------------
// Options

/// Which error the budget bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorMetric {
    /// `‖Ŷ − X Wᵀ‖ / ‖X Wᵀ‖` on the calibration activations, Ŷ as the layer's kernels compute
    /// it (activation quantization included) (`output`, the default).
    Output,
    /// `‖Ŵ − W‖ / ‖W‖` (`weight`).
    Weight,
}

impl ErrorMetric {
    /// `output` or `weight`.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorMetric::Output => "output",
            ErrorMetric::Weight => "weight",
        }
    }
}

impl FromStr for ErrorMetric {
    type Err = Error;
    /// `output` or `weight`.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "output" => Ok(ErrorMetric::Output),
            "weight" => Ok(ErrorMetric::Weight),
            _ => Err(Error::format(OPTS, format!("unknown error metric `{s}` (expected output or weight)"))),
        }
    }
}

/// What a pick optimizes (within the budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Objective {
    /// The best geometric mean speedup over the dense layer across the token counts (`speed`).
    Speed,
    /// The fewest bytes on the device (`size`).
    Size,
}

impl Objective {
    /// `speed` or `size`.
    pub const fn name(self) -> &'static str {
        match self {
            Objective::Speed => "speed",
            Objective::Size => "size",
        }
    }
}

impl FromStr for Objective {
    type Err = Error;
    /// `speed` or `size`.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "speed" => Ok(Objective::Speed),
            "size" => Ok(Objective::Size),
            _ => Err(Error::format(OPTS, format!("unknown objective `{s}` (expected speed or size)"))),
        }
    }
}

/// How each `forward` is timed: warm-up runs, then between `min_iters` and `max_iters` timed
/// runs (as many as fit `target_s` by the warm-up's time), median.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Untimed runs first (at least 1).
    pub warmup: usize,
    /// Fewest timed runs.
    pub min_iters: usize,
    /// Most timed runs.
    pub max_iters: usize,
    /// Seconds of timed runs aimed for.
    pub target_s: f64,
}

impl Default for Timing {
    /// 1 warm-up run, 3 to 25 timed runs, 0.1 s.
    fn default() -> Self {
        Timing { warmup: 1, min_iters: 3, max_iters: 25, target_s: 0.1 }
    }
}

impl Timing {
    /// Median seconds of `f` (which enqueues work on `dev`), timed by [`Device::time_runs`].
    pub fn measure(&self, dev: &Device, f: &mut dyn FnMut() -> Result<()>) -> Result<f64> {
        let mut first = 0.0;
        for _ in 0..self.warmup.max(1) {
            first = dev.time_runs(f, 1)?.first().copied().unwrap_or(0.0);
        }
        let (lo, hi) = (self.min_iters.max(1), self.max_iters.max(self.min_iters.max(1)));
        let iters = if first > 0.0 { ((self.target_s / first).ceil() as usize).clamp(lo, hi) } else { hi };
        Ok(median(dev.time_runs(f, iters)?))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Everything the planner needs besides the device and the weight.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOptions {
    /// The error budget (> 0), relative, on [`PlanOptions::metric`].
    pub budget: f64,
    /// Which error the budget bounds.
    pub metric: ErrorMetric,
    /// The families tried (default [`FormatFamily::DEFAULT`]).
    pub formats: Vec<FormatFamily>,
    /// Token counts (rows of x) each candidate is timed at (default 1 and 64).
    pub tokens: Vec<usize>,
    /// Activation dtype of the layers (f32 or f16).
    pub dtype: DType,
    /// Rows of the Gaussian calibration activations (when the caller gives none).
    pub calib_tokens: usize,
    /// Seed of the Gaussian calibration activations and of the timing inputs.
    pub seed: u64,
    /// Int4 group sizes tried (each of 32, 64, 128 that divides the input features).
    pub int4_groups: Vec<usize>,
    /// How forward is timed.
    pub timing: Timing,
    /// Time each (variant, shape, token count) once and reuse it for later layers: kernels'
    /// work does not depend on the weight's values (CSR variants include their nnz; the row
    /// balance of a pattern is ignored). Default true.
    pub reuse_times: bool,
}

impl Default for PlanOptions {
    /// Budget 0.02 on the output error, the default families, tokens 1 and 64, f32, 64
    /// calibration tokens, seed 0, int4 groups 32/64/128, [`Timing::default`], times reused.
    fn default() -> Self {
        PlanOptions {
            budget: 0.02,
            metric: ErrorMetric::Output,
            formats: FormatFamily::DEFAULT.to_vec(),
            tokens: vec![1, 64],
            dtype: DType::F32,
            calib_tokens: 64,
            seed: 0,
            int4_groups: vec![32, 64, 128],
            timing: Timing::default(),
            reuse_times: true,
        }
    }
}

impl PlanOptions {
    /// Checks the options: a finite budget > 0, at least one family and one token count, token
    /// counts and calibration tokens >= 1, a float dtype, int4 groups among 32, 64, 128.
    pub fn validate(&self) -> Result<()> {
        if !(self.budget.is_finite() && self.budget > 0.0) {
            return Err(Error::format(OPTS, format!("the error budget is {}, expected a finite number > 0 (e.g. 0.02)", self.budget)));
        }
        if self.formats.is_empty() {
            return Err(Error::format(OPTS, format!("no format to try (expected some of {})", family_names())));
        }
        if self.tokens.is_empty() || self.tokens.contains(&0) {
            return Err(Error::format(OPTS, format!("token counts {:?}: expected at least one, each >= 1", self.tokens)));
        }
        if self.calib_tokens == 0 {
            return Err(Error::format(OPTS, "calib_tokens is 0, expected >= 1"));
        }
        if !self.dtype.is_float() {
            return Err(Error::format(OPTS, format!("activation dtype {}, expected f32 or f16", self.dtype)));
        }
        if let Some(g) = self.int4_groups.iter().find(|g| ![32, 64, 128].contains(*g)) {
            return Err(Error::format(OPTS, format!("int4 group {g}, expected 32, 64 or 128")));
        }
        Ok(())
    }
}

/// Rows of `N(0, 1)` activations `[rows, cols]`, deterministic for a seed (Box-Muller).
pub fn gaussian_activations(rows: usize, cols: usize, seed: u64) -> Result<Matrix<f32>> {
    use rand::{Rng, SeedableRng};
    let n = crate::formats::checked_elems("gaussian_activations", "matrix", &[rows, cols])?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(n + 1);
    while data.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * u2;
        data.push((r * th.cos()) as f32);
        data.push((r * th.sin()) as f32);
    }
    data.truncate(n);
    Matrix::new(rows, cols, data)
}

/// The sentence to print next to times measured on `dev` when they say nothing about GPU
/// speed: on the CPU reference backend and on software adapters (Mesa lavapipe / llvmpipe,
/// SwiftShader, WARP). `None` for hardware GPUs.
pub fn timing_note(dev: &Device) -> Option<String> {
    match dev.kind() {
        BackendKind::Cpu => Some(
            "timed on the CPU reference backend (plain loops with f64 accumulation, a correctness oracle): these times say nothing about GPU speed"
                .into(),
        ),
        BackendKind::Wgpu => {
            let name = dev.name();
            let l = name.to_ascii_lowercase();
            let software =
                ["llvmpipe", "lavapipe", "swiftshader", "warp", "basic render", ", cpu)"].iter().any(|s| l.contains(s));
            software.then(|| format!("timed on a software adapter ({name}) that runs the shaders on the CPU: these times say nothing about GPU speed"))
        }
        BackendKind::Cuda => None,
    }
}

// ---------------------------------------------------------------------------------------
// Dense references

/// The time of one dense layer `y = x Wᵀ` and what ran it.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseTime {
    /// Median seconds.
    pub seconds: f64,
    /// What was timed (kernel or library, path).
    pub what: String,
}

/// Times the dense layer a compressed layer is compared with.
pub trait DenseReference {
    /// What this reference is, in a few words (for reports).
    fn describe(&self) -> String;
    /// Median seconds of `y = x Wᵀ` for a dense `W [out_features, in_features]` and x
    /// `[tokens, in_features]` of `dtype` on `dev`, timed with `timing`.
    fn time(
        &mut self,
        dev: &Device,
        out_features: usize,
        in_features: usize,
        tokens: usize,
        dtype: DType,
        timing: &Timing,
    ) -> Result<DenseTime>;
}

/// `(out, in, dtype)`.
type ShapeKey = (usize, usize, DType);

/// The library's own dense paths, through [`PlannedLinear::forward`] like every candidate:
/// identity-factor low rank (see [`PlannedLinear::new`]) and CSR with every value kept; the
/// faster of the two (by median) is the reference. slimgemm has no dense GEMM: on a GPU a
/// vendor GEMM (cuBLAS) is faster than both, which the CLI's `--dense baseline` measures.
#[derive(Debug, Default)]
pub struct LibraryDense {
    /// The layers of the last shape timed: `(out, in, dtype)`, identity low rank, dense CSR.
    last: Option<(ShapeKey, Vec<(String, PlannedLinear)>)>,
    inputs: HashMap<(usize, usize, DType), Tensor>,
}

impl LibraryDense {
    /// A reference with nothing uploaded yet.
    pub fn new() -> LibraryDense {
        LibraryDense::default()
    }
}

impl DenseReference for LibraryDense {
    fn describe(&self) -> String {
        "library dense: the faster of identity-factor lowrank_linear and CSR with every value kept, through forward".into()
    }

    fn time(&mut self, dev: &Device, out: usize, inp: usize, tokens: usize, dtype: DType, timing: &Timing) -> Result<DenseTime> {
        let key = (out, inp, dtype);
        if self.last.as_ref().map(|l| l.0) != Some(key) {
            self.last = None; // free the previous shape's buffers first
            let w = Matrix::<f32>::random(out, inp, 0x5eed)?;
            let mut layers = Vec::new();
            let mut errors = Vec::new();
            match PlannedLinear::new(dev, &PlannedWeight::Dense(w.clone()), None, dtype) {
                Ok(l) => layers.push((format!("identity-factor lowrank_linear (r = {})", out.min(inp)), l)),
                Err(e) => errors.push(format!("identity-factor low rank: {e}")),
            }
            match Csr::from_dense(&w, 0.0).and_then(|c| PlannedLinear::new(dev, &PlannedWeight::Csr(c), None, dtype)) {
                Ok(l) => layers.push(("CSR with every value kept (spmm)".to_string(), l)),
                Err(e) => errors.push(format!("dense CSR: {e}")),
            }
            if layers.is_empty() {
                return Err(Error::backend(
                    dev.kind().name(),
                    format!("no library dense path runs a {out}x{inp} layer: {}", errors.join("; ")),
                ));
            }
            self.last = Some((key, layers));
        }
        let x = input(&mut self.inputs, dev, tokens, inp, dtype, 0x1dea)?;
        let layers = &self.last.as_ref().map(|l| &l.1).ok_or_else(|| Error::backend("cpu", "LibraryDense: layers missing"))?;
        let mut best: Option<DenseTime> = None;
        for (what, layer) in layers.iter() {
            let s = timing.measure(dev, &mut || layer.forward(x).map(drop))?;
            if best.as_ref().is_none_or(|b| s < b.seconds) {
                best = Some(DenseTime { seconds: s, what: format!("library dense: {what}") });
            }
        }
        best.ok_or_else(|| Error::backend("cpu", "LibraryDense: nothing timed"))
    }
}

/// A random input `[tokens, inp]` of `dtype`, uploaded once per shape.
fn input<'a>(
    cache: &'a mut HashMap<(usize, usize, DType), Tensor>,
    dev: &Device,
    tokens: usize,
    inp: usize,
    dtype: DType,
    seed: u64,
) -> Result<&'a Tensor> {
    match cache.entry((tokens, inp, dtype)) {
        std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
        std::collections::hash_map::Entry::Vacant(e) => {
            let x = Matrix::<f32>::random(tokens, inp, seed)?;
            let t = match dtype {
                DType::F16 => dev.upload_matrix(&x.cast::<f16>())?,
                _ => dev.upload_matrix(&x)?,
            };
            Ok(e.insert(t))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Results

/// One candidate of a layer: a variant with its errors, and (within budget) its device bytes
/// and times.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The format and its parameters.
    pub variant: Variant,
    /// `‖Ŵ − W‖ / ‖W‖`.
    pub weight_err: f64,
    /// `‖Ŷ − X Wᵀ‖ / ‖X Wᵀ‖` on the calibration activations.
    pub output_err: f64,
    /// The budgeted error ([`PlanOptions::metric`]) is within [`PlanOptions::budget`].
    pub within_budget: bool,
    /// [`PlannedLinear::bytes_on_device`] (bias excluded), measured for candidates within
    /// budget that run on the device (`None` for those that do not: see `note`); for the dense
    /// weight `out * in * dtype size`.
    pub bytes: Option<u64>,
    /// Median seconds of `forward` per token count of [`PlanOptions::tokens`] (timed
    /// candidates only; for the dense candidate the [`DenseReference`]'s times).
    pub times: Option<Vec<f64>>,
    /// Geometric mean over the token counts of dense time / this time (timed candidates).
    pub speedup: Option<f64>,
    /// Why it was not timed, or other remarks.
    pub note: Option<String>,
    /// The compressed weight (candidates within budget).
    pub weight: Option<PlannedWeight>,
}

impl Candidate {
    /// The error the budget applies to.
    pub fn error(&self, metric: ErrorMetric) -> f64 {
        match metric {
            ErrorMetric::Output => self.output_err,
            ErrorMetric::Weight => self.weight_err,
        }
    }
}

/// The plan of one layer: every candidate (index 0 is the dense weight) and the picks.
#[derive(Debug, Clone)]
pub struct LayerPlan {
    /// The layer's name.
    pub name: String,
    /// Output features.
    pub out_features: usize,
    /// Input features.
    pub in_features: usize,
    /// The candidates; `candidates[0]` is [`Variant::Dense`].
    pub candidates: Vec<Candidate>,
    /// The dense reference's time per token count.
    pub dense: Vec<DenseTime>,
    /// Other dense references' times per token count (reported only).
    pub extra_dense: Vec<Vec<DenseTime>>,
    /// Index of the fastest candidate within budget.
    pub fastest: usize,
    /// Index of the smallest candidate within budget.
    pub smallest: usize,
    /// How the calibration activations were made.
    pub calibration: String,
    /// Error evaluations (each one a product with the calibration activations).
    pub evaluations: usize,
    /// `forward` measurements made (cached ones not counted).
    pub timed: usize,
    /// Remarks (families skipped and why).
    pub notes: Vec<String>,
    /// Wall seconds spent on this layer.
    pub seconds: f64,
}

impl LayerPlan {
    /// The index of the pick for `objective`.
    pub fn pick_index(&self, objective: Objective) -> usize {
        match objective {
            Objective::Speed => self.fastest,
            Objective::Size => self.smallest,
        }
    }

    /// The pick for `objective`.
    pub fn pick(&self, objective: Objective) -> &Candidate {
        &self.candidates[self.pick_index(objective)]
    }

    /// The pick's weight (taken out of the plan).
    pub fn take_weight(&mut self, objective: Objective) -> Option<PlannedWeight> {
        let i = self.pick_index(objective);
        self.candidates[i].weight.take()
    }
}

// ---------------------------------------------------------------------------------------
// Error evaluation

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Float,
    Int8,
    Sign,
}

/// The errors of candidate weights of one layer on one set of calibration activations.
struct ErrCtx<'a> {
    w: &'a [f32],
    m: usize,
    n: usize,
    t: usize,
    /// Calibration activations as given `[t, n]`.
    x: Vec<f32>,
    /// Rounded to the layer dtype.
    xk: Vec<f32>,
    xi8: Option<Vec<f32>>,
    xsign: Option<Vec<f32>>,
    w_norm: f64,
    y_norm: f64,
    dtype: DType,
    evals: usize,
}

/// `out [ar, br] (+)= a [ar, k] · b [br, k]ᵀ` (row-major f32, faer).
fn mul_abt(a: &[f32], ar: usize, k: usize, b: &[f32], br: usize, out: &mut [f32], accumulate: bool) {
    let a = faer::MatRef::from_row_major_slice(a, ar, k);
    let b = faer::MatRef::from_row_major_slice(b, br, k);
    let c = faer::MatMut::from_row_major_slice_mut(out, ar, br);
    let acc = if accumulate { faer::Accum::Add } else { faer::Accum::Replace };
    faer::linalg::matmul::matmul(c, acc, a, b.transpose(), 1.0f32, faer::Par::Seq);
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt()
}

fn rel(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else if num == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

impl<'a> ErrCtx<'a> {
    fn new(w: &'a Matrix<f32>, x: &Matrix<f32>, dtype: DType) -> Result<ErrCtx<'a>> {
        let (m, n, t) = (w.rows, w.cols, x.rows);
        let xk: Vec<f32> = x.data.iter().map(|&v| round_to(dtype, v)).collect();
        let mut y = vec![0f32; t * m];
        mul_abt(&x.data, t, n, &w.data, m, &mut y, false);
        Ok(ErrCtx {
            w: &w.data,
            m,
            n,
            t,
            x: x.data.clone(),
            xk,
            xi8: None,
            xsign: None,
            w_norm: norm(&w.data),
            y_norm: norm(&y),
            dtype,
            evals: 0,
        })
    }

    /// The activations the kernels of `act` multiply by (computed once).
    fn acts(&mut self, act: Act) -> Result<&[f32]> {
        match act {
            Act::Float => {}
            Act::Int8 => {
                if self.xi8.is_none() {
                    let q = Int8Matrix::quantize_rows(&Matrix::new(self.t, self.n, self.xk.clone())?)?;
                    self.xi8 = Some(q.dequantize().data);
                }
            }
            Act::Sign => {
                if self.xsign.is_none() {
                    self.xsign = Some(self.xk.iter().map(|&v| if v < 0.0 { -1.0 } else { 1.0 }).collect());
                }
            }
        }
        Ok(match act {
            Act::Float => &self.xk,
            Act::Int8 => self.xi8.as_deref().unwrap_or(&[]),
            Act::Sign => self.xsign.as_deref().unwrap_or(&[]),
        })
    }

    /// `(weight error, output error)` of the effective weight `w_hat` with activations `act`:
    /// `Ŷ − Y = X (Ŵ − W)ᵀ + (X̃ − X) Ŵᵀ`, each product formed directly so that small errors
    /// are not lost to cancellation.
    fn errors(&mut self, w_hat: &[f32], act: Act) -> Result<(f64, f64)> {
        self.evals += 1;
        let (m, n, t) = (self.m, self.n, self.t);
        let r: Vec<f32> = w_hat.iter().zip(self.w).map(|(a, b)| a - b).collect();
        let werr = rel(norm(&r), self.w_norm);
        let mut e = vec![0f32; t * m];
        mul_abt(&self.x, t, n, &r, m, &mut e, false);
        if act != Act::Float || self.dtype != DType::F32 {
            self.acts(act)?;
            let xt = match act {
                Act::Float => &self.xk,
                Act::Int8 => self.xi8.as_ref().unwrap_or(&self.x),
                Act::Sign => self.xsign.as_ref().unwrap_or(&self.x),
            };
            let d: Vec<f32> = xt.iter().zip(&self.x).map(|(a, b)| a - b).collect();
            mul_abt(&d, t, n, w_hat, m, &mut e, true);
        }
        Ok((werr, rel(norm(&e), self.y_norm)))
    }

    fn weight(&mut self, pw: &PlannedWeight) -> Result<(f64, f64)> {
        let eff = pw.effective(self.dtype)?;
        self.errors(&eff.data, pw.activations())
    }
}

// ---------------------------------------------------------------------------------------
// The planner

/// Plans layers on one device with one set of options (see the [module docs](self)). Keeps
/// the timing inputs and (with [`PlanOptions::reuse_times`]) the times of earlier layers.
pub struct Planner {
    dev: Device,
    opts: PlanOptions,
    dense: Box<dyn DenseReference>,
    extra: Vec<Box<dyn DenseReference>>,
    dense_cache: HashMap<(usize, usize, usize, usize), DenseTime>,
    times: HashMap<(Variant, usize, usize, usize), f64>,
    inputs: HashMap<(usize, usize, DType), Tensor>,
}

impl fmt::Debug for Planner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Planner")
            .field("device", &self.dev.name())
            .field("opts", &self.opts)
            .field("dense", &self.dense.describe())
            .field("extra", &self.extra.iter().map(|d| d.describe()).collect::<Vec<_>>())
            .finish()
    }
}

impl Planner {
    /// A planner timing on `dev` with `opts` (checked by [`PlanOptions::validate`]) and
    /// [`LibraryDense`] as the dense reference.
    pub fn new(dev: &Device, opts: PlanOptions) -> Result<Planner> {
        opts.validate()?;
        Ok(Planner {
            dev: dev.clone(),
            opts,
            dense: Box::new(LibraryDense::new()),
            extra: Vec::new(),
            dense_cache: HashMap::new(),
            times: HashMap::new(),
            inputs: HashMap::new(),
        })
    }

    /// Replaces the dense reference the speedups are relative to.
    pub fn with_dense_reference(mut self, dense: Box<dyn DenseReference>) -> Planner {
        self.dense = dense;
        self.dense_cache.retain(|k, _| k.0 != 0);
        self
    }

    /// Adds a dense reference that is timed and reported ([`LayerPlan::extra_dense`]) but not
    /// used for speedups.
    pub fn with_extra_dense_reference(mut self, dense: Box<dyn DenseReference>) -> Planner {
        self.extra.push(dense);
        self
    }

    /// The options.
    pub fn options(&self) -> &PlanOptions {
        &self.opts
    }

    /// The device candidates are timed on.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// What the dense reference and the extra ones are.
    pub fn dense_references(&self) -> Vec<String> {
        std::iter::once(self.dense.describe()).chain(self.extra.iter().map(|d| d.describe())).collect()
    }

    /// The default calibration activations of a layer with `in_features` inputs:
    /// [`gaussian_activations`]`(calib_tokens, in_features, seed ^ in_features)`.
    pub fn calibration(&self, in_features: usize) -> Result<Matrix<f32>> {
        gaussian_activations(self.opts.calib_tokens, in_features, self.opts.seed ^ (in_features as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// Plans the layer `name` with the dense weight `w [out, in]` (finite values) on the
    /// calibration activations `calib [tokens, in]` (default [`Planner::calibration`]).
    pub fn plan(&mut self, name: &str, w: &Matrix<f32>, calib: Option<&Matrix<f32>>) -> Result<LayerPlan> {
        let start = Instant::now();
        check_weight("Planner::plan", w)?;
        let (m, n) = (w.rows, w.cols);
        let default_x;
        let (x, calibration) = match calib {
            Some(x) => {
                if x.cols != n || x.data.len() != x.rows * x.cols || x.rows == 0 {
                    return Err(Error::shape(
                        "Planner::plan",
                        format!(
                            "layer `{name}`: calibration activations are [{}, {}], expected [tokens >= 1, in_features = {n}]",
                            x.rows, x.cols
                        ),
                    ));
                }
                if let Some(p) = x.data.iter().position(|v| !v.is_finite()) {
                    return Err(Error::format("calibration activations", format!("layer `{name}`: x[{}, {}] is not finite", p / n, p % n)));
                }
                (x, format!("given ({} tokens)", x.rows))
            }
            None => {
                default_x = self.calibration(n)?;
                (&default_x, format!("gaussian N(0,1) ({} tokens)", self.opts.calib_tokens))
            }
        };
        let opts = self.opts.clone();
        let budget = opts.budget;
        let ok = |e: (f64, f64)| match opts.metric {
            ErrorMetric::Output => e.1 <= budget,
            ErrorMetric::Weight => e.0 <= budget,
        };
        let mut ctx = ErrCtx::new(w, x, opts.dtype)?;
        let mut cands: Vec<Candidate> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        let push = |cands: &mut Vec<Candidate>, pw: PlannedWeight, e: (f64, f64), note: Option<String>| {
            let within = ok(e);
            cands.push(Candidate {
                variant: pw.variant(),
                weight_err: e.0,
                output_err: e.1,
                within_budget: within,
                bytes: None,
                times: None,
                speedup: None,
                note,
                weight: within.then_some(pw),
            });
        };
        let dense_e = ctx.weight(&PlannedWeight::Dense(w.clone()))?;
        cands.push(Candidate {
            variant: Variant::Dense,
            weight_err: dense_e.0,
            output_err: dense_e.1,
            within_budget: true,
            bytes: Some((m * n * opts.dtype.size()) as u64),
            times: None,
            speedup: Some(1.0),
            note: None,
            weight: Some(PlannedWeight::Dense(w.clone())),
        });
        for fam in &opts.formats {
            match fam {
                FormatFamily::Int8 => {
                    let pw = PlannedWeight::Int8(Int8Matrix::quantize_rows(w)?);
                    let e = ctx.weight(&pw)?;
                    push(&mut cands, pw, e, None);
                }
                FormatFamily::Int4 => {
                    let groups: Vec<usize> = opts.int4_groups.iter().copied().filter(|g| n % g == 0).collect();
                    if groups.is_empty() {
                        notes.push(format!("int4: in_features = {n} is not a multiple of any group size {:?}", opts.int4_groups));
                    }
                    for g in groups {
                        for sym in [true, false] {
                            let pw = PlannedWeight::Int4(Int4Weights::quantize(w, g, sym)?);
                            let e = ctx.weight(&pw)?;
                            push(&mut cands, pw, e, None);
                        }
                    }
                }
                FormatFamily::Binary => {
                    let pw = PlannedWeight::Binary(BinaryWeights::from_f32(m, n, &w.data)?);
                    let e = ctx.weight(&pw)?;
                    push(&mut cands, pw, e, None);
                }
                FormatFamily::Sparse24 => {
                    if n % 4 != 0 {
                        notes.push(format!("2:4: in_features = {n} is not a multiple of 4"));
                    } else {
                        let pw = PlannedWeight::Sparse24(Sparse24::prune_24(w)?);
                        let e = ctx.weight(&pw)?;
                        push(&mut cands, pw, e, None);
                    }
                }
                FormatFamily::Csr => {
                    let (pw, e, note) = search_csr(&mut ctx, w, &ok, opts.metric, budget)?;
                    push(&mut cands, pw, e, note);
                }
                FormatFamily::LowRank => match search_lowrank(&mut ctx, w, &ok, &opts, calib.is_none())? {
                    LowRankResult::Found(pw, e, note) => push(&mut cands, pw, e, note),
                    LowRankResult::Skipped(note) => notes.push(note),
                },
            }
        }
        // Dense references.
        let mut dense = Vec::with_capacity(opts.tokens.len());
        for &t in &opts.tokens {
            dense.push(self.dense_time(0, m, n, t)?);
        }
        let mut extra_dense = Vec::new();
        for i in 0..self.extra.len() {
            let mut v = Vec::new();
            for &t in &opts.tokens {
                v.push(self.dense_time(i + 1, m, n, t)?);
            }
            extra_dense.push(v);
        }
        cands[0].times = Some(dense.iter().map(|d| d.seconds).collect());
        // Upload and time what is within budget.
        let dense_bytes = (m * n * opts.dtype.size()) as u64;
        let mut timed = 0;
        for c in cands.iter_mut().skip(1).filter(|c| c.within_budget) {
            let Some(pw) = c.weight.as_ref() else { continue };
            // A backend that cannot run a format makes that candidate unpickable, not the plan fail.
            let layer = match PlannedLinear::new(&self.dev, pw, None, opts.dtype) {
                Ok(l) => l,
                Err(e) => {
                    c.note = Some(format!("does not run on this device: {e}"));
                    continue;
                }
            };
            let bytes = layer.bytes_on_device();
            c.bytes = Some(bytes);
            if bytes > dense_bytes {
                c.note = Some(format!("{bytes} device bytes, more than the dense weight's {dense_bytes}: not timed"));
                continue;
            }
            let mut times = Vec::with_capacity(opts.tokens.len());
            for &t in &opts.tokens {
                let key = (c.variant, m, n, t);
                let s = match self.times.get(&key) {
                    Some(&s) if opts.reuse_times => s,
                    _ => {
                        let x = input(&mut self.inputs, &self.dev, t, n, opts.dtype, opts.seed ^ 0x7157)?;
                        match opts.timing.measure(&self.dev, &mut || layer.forward(x).map(drop)) {
                            Ok(s) => {
                                timed += 1;
                                self.times.insert(key, s);
                                s
                            }
                            Err(e) => {
                                c.note = Some(format!("forward failed on this device: {e}"));
                                break;
                            }
                        }
                    }
                };
                times.push(s);
            }
            if times.len() != opts.tokens.len() {
                c.bytes = None; // not pickable: it does not run
                continue;
            }
            let logs: f64 = times.iter().zip(&dense).map(|(s, d)| (d.seconds / s).ln()).sum();
            c.speedup = Some((logs / times.len() as f64).exp());
            c.times = Some(times);
        }
        let (fastest, smallest) = picks(&cands);
        Ok(LayerPlan {
            name: name.to_string(),
            out_features: m,
            in_features: n,
            candidates: cands,
            dense,
            extra_dense,
            fastest,
            smallest,
            calibration,
            evaluations: ctx.evals,
            timed,
            notes,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    fn dense_time(&mut self, which: usize, m: usize, n: usize, t: usize) -> Result<DenseTime> {
        let key = (which, m, n, t);
        if let Some(d) = self.dense_cache.get(&key) {
            return Ok(d.clone());
        }
        let r = if which == 0 { &mut self.dense } else { &mut self.extra[which - 1] };
        let d = r.time(&self.dev, m, n, t, self.opts.dtype, &self.opts.timing)?;
        self.dense_cache.insert(key, d.clone());
        Ok(d)
    }
}

/// `(fastest, smallest)` among candidates within budget (index 0, dense, always is).
fn picks(c: &[Candidate]) -> (usize, usize) {
    let within: Vec<usize> = (0..c.len()).filter(|&i| c[i].within_budget).collect();
    let speed = |i: usize| c[i].speedup.unwrap_or(0.0);
    let bytes = |i: usize| c[i].bytes.unwrap_or(u64::MAX);
    let fastest = within
        .iter()
        .copied()
        .filter(|&i| c[i].speedup.is_some())
        .max_by(|&a, &b| speed(a).total_cmp(&speed(b)).then(bytes(b).cmp(&bytes(a))).then(b.cmp(&a)))
        .unwrap_or(0);
    let smallest = within
        .iter()
        .copied()
        .filter(|&i| c[i].bytes.is_some())
        .min_by(|&a, &b| bytes(a).cmp(&bytes(b)).then(speed(b).total_cmp(&speed(a))).then(a.cmp(&b)))
        .unwrap_or(0);
    (fastest, smallest)
}

/// CSR: bisects the number of kept values (the largest magnitudes).
fn search_csr(
    ctx: &mut ErrCtx<'_>,
    w: &Matrix<f32>,
    ok: &dyn Fn((f64, f64)) -> bool,
    metric: ErrorMetric,
    budget: f64,
) -> Result<(PlannedWeight, (f64, f64), Option<String>)> {
    let total = w.data.len();
    let order = magnitude_order(&w.data);
    let dtype = ctx.dtype;
    let w_hat = |k: usize| {
        let mut v = vec![0f32; total];
        for &p in &order[..k] {
            v[p as usize] = round_to(dtype, w.data[p as usize]);
        }
        v
    };
    // A CSR on the device holds 12 bytes of indices per value (column index, transposed row
    // index and permutation) plus the value, and 4 (2 rows + 2 cols + 2) bytes of offsets and
    // row orders: more values than `k_max` make it larger than the dense weight (never picked).
    let (m, n, size) = (w.rows, w.cols, dtype.size());
    let k_max = ((total * size).saturating_sub(4 * (2 * m + 2 * n + 2)) / (12 + size)).max(1);
    let nnz0 = w.data.iter().filter(|&&v| v != 0.0).count().clamp(1, k_max);
    let (k, known) = match metric {
        ErrorMetric::Weight => {
            // Exact: the weight error of keeping k values is the norm of the others.
            let mut tail = vec![0f64; total + 1];
            for i in (0..total).rev() {
                let v = w.data[order[i] as usize] as f64;
                tail[i] = tail[i + 1] + v * v;
            }
            let fits = |k: usize| rel(tail[k].sqrt(), ctx.w_norm) <= budget;
            let (mut lo, mut hi) = (0usize, nnz0); // fits(hi); lo = 0 never allowed
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if fits(mid) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            (hi, None)
        }
        ErrorMetric::Output => {
            let tol = (total / 512).max(1);
            let mut hi_e = ctx.errors(&w_hat(nnz0), Act::Float)?;
            let (mut lo, mut hi) = if ok(hi_e) { (0usize, nnz0) } else { (nnz0, nnz0) };
            while hi - lo > tol {
                let mid = lo + (hi - lo) / 2;
                if mid == 0 {
                    break;
                }
                let e = ctx.errors(&w_hat(mid), Act::Float)?;
                if ok(e) {
                    (hi, hi_e) = (mid, e);
                } else {
                    lo = mid;
                }
            }
            (hi, Some(hi_e))
        }
    };
    let e = match known {
        Some(e) => e,
        None => ctx.errors(&w_hat(k), Act::Float)?,
    };
    let pw = PlannedWeight::Csr(Csr::from_mask(w, &top_k_mask(&order, k, total))?);
    let note = (!ok(e)).then(|| {
        if k >= k_max {
            format!("the most values a CSR smaller than the dense weight holds ({k_max}) exceed the budget")
        } else {
            "even the non-zeros kept exactly exceed the budget (rounding to the layer dtype)".to_string()
        }
    });
    Ok((pw, e, note))
}

enum LowRankResult {
    Found(PlannedWeight, (f64, f64), Option<String>),
    Skipped(String),
}

/// Low rank: the error of every rank from one SVD; the smallest rank within budget.
fn search_lowrank(
    ctx: &mut ErrCtx<'_>,
    w: &Matrix<f32>,
    ok: &dyn Fn((f64, f64)) -> bool,
    opts: &PlanOptions,
    gaussian: bool,
) -> Result<LowRankResult> {
    let (m, n) = (w.rows, w.cols);
    // Largest rank whose factors are smaller than the dense weight: r (m + n) < m n.
    let r_cap = (m * n - 1) / (m + n);
    if r_cap == 0 {
        return Ok(LowRankResult::Skipped(format!("lowrank: no rank of a {m}x{n} weight is smaller than the dense weight")));
    }
    let a = faer::Mat::<f64>::from_fn(m, n, |i, j| w.data[i * n + j] as f64);
    let w2: f64 = w.data.iter().map(|&v| (v as f64) * (v as f64)).sum();
    let tail_w = |s: &[f64], r: usize| rel(s[r.min(s.len())..].iter().map(|v| v * v).sum::<f64>().sqrt(), w2.sqrt());
    // Cheap rejection from the singular values alone. For the output metric with Gaussian
    // calibration the output error is close to the weight error (E‖X R‖² = t‖R‖²).
    if opts.metric == ErrorMetric::Weight || gaussian {
        let s = a.singular_values().map_err(|e| Error::backend("cpu", format!("lowrank: SVD of a {m}x{n} weight failed: {e:?}")))?;
        let slack = if opts.metric == ErrorMetric::Weight { 1.0 } else { 1.5 };
        let e = tail_w(&s, r_cap);
        if e > slack * opts.budget {
            return Ok(LowRankResult::Skipped(format!(
                "lowrank: rank {r_cap}, the largest smaller than the dense weight, has weight error {e:.3e} > budget {}{}: SVD vectors not computed",
                opts.budget,
                if slack > 1.0 { " x 1.5" } else { "" }
            )));
        }
    }
    let svd = a.thin_svd().map_err(|e| Error::backend("cpu", format!("lowrank: SVD of a {m}x{n} weight failed: {e:?}")))?;
    let (su, sv) = (svd.U(), svd.V());
    let s: Vec<f64> = (0..m.min(n)).map(|t| svd.S().column_vector()[t].max(0.0)).collect();
    let p = s.len();
    // Output error of rank r: ‖X V[:, r:] S[r:]‖ (U has orthonormal columns).
    let xk = faer::Mat::<f64>::from_fn(ctx.t, n, |i, j| ctx.xk[i * n + j] as f64);
    let xv = &xk * sv;
    let contrib: Vec<f64> = (0..p).map(|t| (0..ctx.t).map(|i| xv[(i, t)] * xv[(i, t)]).sum::<f64>() * s[t] * s[t]).collect();
    let mut tail_o = vec![0f64; p + 1];
    for t in (0..p).rev() {
        tail_o[t] = tail_o[t + 1] + contrib[t];
    }
    let err_at = |r: usize| (tail_w(&s, r), rel(tail_o[r].sqrt(), ctx.y_norm));
    let mut r = (1..=r_cap).find(|&r| ok(err_at(r))).unwrap_or(r_cap);
    let build = |r: usize| -> Result<PlannedWeight> {
        let root: Vec<f64> = s[..r].iter().map(|v| v.sqrt()).collect();
        let u = (0..m).flat_map(|i| (0..r).map(move |t| (i, t))).map(|(i, t)| (su[(i, t)] * root[t]) as f32).collect();
        let v = (0..n).flat_map(|j| (0..r).map(move |t| (j, t))).map(|(j, t)| (sv[(j, t)] * root[t]) as f32).collect();
        Ok(PlannedWeight::LowRank(LowRank::new(m, n, r, u, v)?))
    };
    // The factors in f32 (or f16) may miss the budget by rounding: a few ranks more.
    let mut pw = build(r)?;
    let mut e = ctx.weight(&pw)?;
    let last = (r + 4).min(r_cap);
    while !ok(e) && r < last {
        r += 1;
        pw = build(r)?;
        e = ctx.weight(&pw)?;
    }
    let note = (!ok(e)).then(|| format!("no rank up to {r_cap} (the largest smaller than the dense weight) is within budget"));
    Ok(LowRankResult::Found(pw, e, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_lowrank_is_exact() {
        for (m, n) in [(3, 5), (5, 3), (4, 4)] {
            let w = Matrix::<f32>::random(m, n, 7).unwrap();
            assert_eq!(identity_lowrank(&w).unwrap().to_dense().unwrap(), w);
        }
    }

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
