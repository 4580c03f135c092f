//! A compressed linear layer: `y = x W^T + bias` for activations `x [tokens, in]` with the
//! weight `W [out, in]` held on a [`Device`] in one of slimgemm's formats. This is the type a
//! framework wraps: build it once from a host [`Weight`] ([`Linear::new`] uploads it), then
//! call [`Linear::forward`] as often as needed; it picks the kernels of the weight's format.
//! Everything `forward` runs stays on the device: no format downloads or uploads activations.
//!
//! | [`LayerFormat`] | host weight | forward runs |
//! |---|---|---|
//! | `Dense` | [`Matrix<f32>`] (the uncompressed weight) | one dense GEMM, bias fused (see below) |
//! | `Csr` | [`Csr<f32>`] | device transpose of x, `spmm`, device transpose of y (see below) |
//! | `Sparse24` | [`Sparse24<f32>`] (2:4 structured sparsity) | device transpose of x, `spmm_24`, device transpose of y |
//! | `LowRank` | [`LowRank<f32>`] (`U [out,r]`, `V [in,r]`) | `lowrank_linear` (bias fused) |
//! | `Int8` | [`Int8Matrix`] (per-output-channel scales) | `gemm_w8a8_dyn` (x quantized per token inside the int8 GEMM) |
//! | `Int4` | [`Int4Weights`] (GPTQ incl. act-order, AWQ, GGUF Q4_0 / Q4_K) | `gemm_w4a16` (act-order: X's columns gathered through `perm` on the device) |
//! | `Int8WeightOnly` | [`Int8Weights`] (group-wise scales: GGUF Q8_0) | `gemm_w8a16` |
//! | `Binary` | [`BinaryWeights`] (XNOR-Net alpha) | `binarize_pack` of x, then `xnor_gemm` |
//!
//! **Dtypes.** A layer has one activation dtype (f32 or f16, chosen at [`Linear::new`]):
//! `forward` takes x of that dtype and returns y of that dtype, except binary layers, whose
//! XNOR GEMM writes f32 ([`Linear::out_dtype`]). Dense weights, CSR and 2:4 values, low-rank
//! factors and the bias are stored in the layer's dtype; int8, int4 and binary weights keep
//! their own encodings.
//!
//! **Model files.** A tensor of a GGUF file ([`crate::formats::GgufFile::load`]: Q4_0, Q4_K,
//! Q8_0, and dense F32 / F16 / BF16) converts with `Weight::try_from`; a GPTQ / AWQ checkpoint
//! layer ([`crate::formats::Checkpoint::load_layer`], feature `hf`) builds a layer with its
//! bias through `Linear::from_quant_linear`.
//!
//! **Bias.** Fused into the kernel for dense and low-rank layers; for the CSR, 2:4, int8, int4
//! and binary layers it is added on the device by one more `spmm` (a `[tokens, 1]` column of
//! ones times the `[1, out]` bias, accumulated into y with `beta = 1`), so no elementwise
//! kernel is needed.
//!
//! **Dense weights** run on the library's dense GEMM, the one its low-rank ops are built on
//! (crate-private: it is no op of its own): on CUDA the multistage f16 tensor-core GEMM
//! (`hgemm_tc`, sm_80+) for f16 layers whose `in` is a multiple of 8, else the strided tiled
//! FMA GEMM of `cuda/lowrank.cu`; on wgpu the register-blocked strided GEMM of
//! `shaders/lowrank.wgsl` (f16 results through the pack pass); on the CPU a plain loop with
//! f64 accumulation. They are exact to float rounding and cost `out * in` multiply-adds per
//! token. A framework's own GEMM (cuBLAS, ...) is usually faster; the dense format is there so
//! that one type holds every layer of a partly compressed model.
//!
//! **CSR and 2:4.** `spmm` and `spmm_24` multiply a sparse matrix on the left (`C = A B`, A
//! `[out, in]`, B `[in, tokens]`), while the layer takes x as `[tokens, in]`: `forward` runs
//! `y^T = W x^T` between two device transposes (x to `x^T [in, tokens]`, then
//! `y^T [out, tokens]` to y), each one memory-bound pass over the activations (a 32 x 32
//! tiled transpose in workgroup / shared memory on wgpu and CUDA, a copy loop on the CPU).
//! Why not an SpMM that reads x as it is: every stored value `W[j, k]` multiplies row `k` of B,
//! which the `spmm` / `spmm_24` kernels load as consecutive (vector) elements along the token
//! dimension; in x that row is a column, `tokens` elements `in` apart, so each load would be
//! uncoalesced, once per stored value, instead of once per element in the transpose. To skip
//! both passes, keep activations feature-major (`[in, tokens]`) and call [`Device::spmm`]
//! directly, as `examples/sparse_training.rs` does.

use std::sync::Mutex;

use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::f16;
use crate::formats::{BinaryWeights, Csr, GgufTensor, Int4Weights, Int8Matrix, Int8Weights, LowRank, Matrix, Sparse24};
use crate::tensor::{
    Buffer, DeviceBinaryWeights, DeviceCsr, DeviceInt4Weights, DeviceInt8Matrix, DeviceInt8Weights, DeviceLowRank, DeviceSparse24, Tensor,
};

/// The storage format of a [`Linear`] layer's weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerFormat {
    /// The uncompressed weight (one dense GEMM).
    Dense,
    /// Sparse CSR (`spmm`).
    Csr,
    /// 2:4 structured sparsity (`spmm_24`).
    Sparse24,
    /// Low-rank factors `W = U V^T` (`lowrank_linear`).
    LowRank,
    /// Int8 weights, int8 activations quantized per token (`gemm_w8a8_dyn`).
    Int8,
    /// Int4 group-wise weights, float activations (`gemm_w4a16`).
    Int4,
    /// Int8 weights with group-wise scales, float activations (`gemm_w8a16`).
    Int8WeightOnly,
    /// Binary {-1, +1} weights and activations (`xnor_gemm`).
    Binary,
}

impl LayerFormat {
    /// Every format.
    pub const ALL: [LayerFormat; 8] = [
        LayerFormat::Dense,
        LayerFormat::Csr,
        LayerFormat::Sparse24,
        LayerFormat::LowRank,
        LayerFormat::Int8,
        LayerFormat::Int4,
        LayerFormat::Int8WeightOnly,
        LayerFormat::Binary,
    ];

    /// `dense`, `csr`, `sparse24`, `lowrank`, `int8`, `int4`, `int8wo` or `binary`.
    pub const fn name(self) -> &'static str {
        match self {
            LayerFormat::Dense => "dense",
            LayerFormat::Csr => "csr",
            LayerFormat::Sparse24 => "sparse24",
            LayerFormat::LowRank => "lowrank",
            LayerFormat::Int8 => "int8",
            LayerFormat::Int4 => "int4",
            LayerFormat::Int8WeightOnly => "int8wo",
            LayerFormat::Binary => "binary",
        }
    }
}

impl std::fmt::Display for LayerFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for LayerFormat {
    type Err = Error;
    /// A [`LayerFormat::name`] (case-insensitive; `2:4` also names `sparse24`).
    fn from_str(s: &str) -> Result<LayerFormat> {
        let t = s.trim().to_ascii_lowercase();
        if t == "2:4" {
            return Ok(LayerFormat::Sparse24);
        }
        LayerFormat::ALL.into_iter().find(|f| f.name() == t).ok_or_else(|| {
            let names: Vec<&str> = LayerFormat::ALL.iter().map(|f| f.name()).collect();
            Error::format("layer format", format!("no layer format named `{s}` (expected one of {})", names.join(", ")))
        })
    }
}

/// A host weight `W [out, in]` in one format: what [`Linear::new`] uploads. Each variant's
/// type validates its data on construction (and again on upload); `From` impls let
/// `Linear::new` take the format types directly.
#[derive(Debug, Clone)]
pub enum Weight {
    /// The uncompressed `[out, in]` weight (finite values).
    Dense(Matrix<f32>),
    /// Sparse `[out, in]` (e.g. [`Csr::from_dense`] for magnitude pruning).
    Csr(Csr<f32>),
    /// 2:4 structured-sparse `[out, in]`, `in` a multiple of 4 (e.g. [`Sparse24::prune_24`]).
    Sparse24(Sparse24<f32>),
    /// `U [out, r]`, `V [in, r]` (e.g. [`LowRank::from_dense`], a truncated SVD).
    LowRank(LowRank<f32>),
    /// Int8 `[out, in]` with one scale per output channel (e.g. [`Int8Matrix::quantize_rows`]).
    Int8(Int8Matrix),
    /// Int4 `[out, in]` (e.g. [`Int4Weights::quantize`], [`Int4Weights::from_gptq`],
    /// [`Int4Weights::from_gptq_format`] (act-order too), [`Int4Weights::from_awq`],
    /// [`Int4Weights::from_gguf_q4_0`], [`Int4Weights::from_gguf_q4_k`] (float minimums)).
    Int4(Int4Weights),
    /// Weight-only int8 `[out, in]` with group-wise scales (e.g. [`Int8Weights::quantize`],
    /// [`Int8Weights::from_gguf_q8_0`]).
    Int8WeightOnly(Int8Weights),
    /// Binary `[out, in]` with alpha per output channel (e.g. [`BinaryWeights::from_f32`]).
    Binary(BinaryWeights),
}

impl Weight {
    /// The weight's format.
    pub fn format(&self) -> LayerFormat {
        match self {
            Weight::Dense(_) => LayerFormat::Dense,
            Weight::Csr(_) => LayerFormat::Csr,
            Weight::Sparse24(_) => LayerFormat::Sparse24,
            Weight::LowRank(_) => LayerFormat::LowRank,
            Weight::Int8(_) => LayerFormat::Int8,
            Weight::Int4(_) => LayerFormat::Int4,
            Weight::Int8WeightOnly(_) => LayerFormat::Int8WeightOnly,
            Weight::Binary(_) => LayerFormat::Binary,
        }
    }

    /// `(out, in)`: output and input features.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Weight::Dense(w) => (w.rows, w.cols),
            Weight::Csr(w) => (w.rows, w.cols),
            Weight::Sparse24(w) => (w.rows(), w.cols()),
            Weight::LowRank(w) => (w.m, w.n),
            Weight::Int8(w) => (w.rows, w.cols),
            Weight::Int4(w) => (w.n, w.k),
            Weight::Int8WeightOnly(w) => (w.n, w.k),
            Weight::Binary(w) => (w.bits.rows, w.bits.cols),
        }
    }
}

impl From<Matrix<f32>> for Weight {
    fn from(w: Matrix<f32>) -> Self {
        Weight::Dense(w)
    }
}
impl From<Csr<f32>> for Weight {
    fn from(w: Csr<f32>) -> Self {
        Weight::Csr(w)
    }
}
impl From<Sparse24<f32>> for Weight {
    fn from(w: Sparse24<f32>) -> Self {
        Weight::Sparse24(w)
    }
}
impl From<LowRank<f32>> for Weight {
    fn from(w: LowRank<f32>) -> Self {
        Weight::LowRank(w)
    }
}
impl From<Int8Matrix> for Weight {
    fn from(w: Int8Matrix) -> Self {
        Weight::Int8(w)
    }
}
impl From<Int4Weights> for Weight {
    fn from(w: Int4Weights) -> Self {
        Weight::Int4(w)
    }
}
impl From<Int8Weights> for Weight {
    fn from(w: Int8Weights) -> Self {
        Weight::Int8WeightOnly(w)
    }
}
impl From<BinaryWeights> for Weight {
    fn from(w: BinaryWeights) -> Self {
        Weight::Binary(w)
    }
}

/// A tensor loaded from a GGUF file ([`crate::formats::GgufFile::load`]) as a layer weight:
/// Q4_0 and Q4_K are [`Weight::Int4`], Q8_0 is [`Weight::Int8WeightOnly`], a dense (F32 /
/// F16 / BF16) tensor is [`Weight::Dense`]. Never fails today; a `TryFrom` so that formats
/// without a layer can be refused later without breaking callers.
impl TryFrom<GgufTensor> for Weight {
    type Error = Error;
    fn try_from(t: GgufTensor) -> Result<Weight> {
        Ok(match t {
            GgufTensor::Int4(w) => Weight::Int4(w),
            GgufTensor::Int8(w) => Weight::Int8WeightOnly(w),
            GgufTensor::Dense(m) => Weight::Dense(m),
        })
    }
}

/// The uploaded weight.
#[derive(Debug)]
enum DeviceWeight {
    Dense(Tensor),
    /// Boxed: a device CSR carries eight buffers.
    Csr(Box<DeviceCsr>),
    /// Boxed: values, metadata and the optional tensor-core copy.
    Sparse24(Box<DeviceSparse24>),
    LowRank(DeviceLowRank),
    Int8(DeviceInt8Matrix),
    /// Boxed: int4 weights carry up to five buffers.
    Int4(Box<DeviceInt4Weights>),
    Int8WeightOnly(DeviceInt8Weights),
    Binary(DeviceBinaryWeights),
}

/// A compressed linear layer `y = x W^T + bias` on one [`Device`] (see the [module
/// docs](self) for what each format runs). Weights and bias are uploaded once, by
/// [`Linear::new`]; [`Linear::forward`] allocates only its output and per-call scratch (the
/// transposed activations of CSR and 2:4 layers, the quantized or packed activations of int8
/// and binary layers), all on the device.
#[derive(Debug)]
pub struct Linear {
    dev: Device,
    weight: DeviceWeight,
    bias: Option<Tensor>,
    dtype: DType,
    out_features: usize,
    in_features: usize,
    /// `[tokens, 1]` CSR of ones for the bias broadcast, kept for the last token count.
    ones: Mutex<Option<DeviceCsr>>,
}

const OP: &str = "Linear";

fn bytes(b: &Buffer) -> u64 {
    b.len as u64 * b.dtype.size() as u64
}

fn csr_bytes(a: &DeviceCsr) -> u64 {
    let copies = a.indices16.iter().chain(&a.t_indices16).map(bytes).sum::<u64>();
    [&a.indptr, &a.indices, &a.values, &a.row_order, &a.t_indptr, &a.t_indices, &a.t_perm, &a.t_row_order]
        .into_iter()
        .map(bytes)
        .sum::<u64>()
        + copies
}

fn upload_csr_as(dev: &Device, a: &Csr<f32>, dtype: DType) -> Result<DeviceCsr> {
    match dtype {
        DType::F16 => dev.upload_csr(&a.cast::<f16>()),
        _ => dev.upload_csr(a),
    }
}

fn upload_matrix_as(dev: &Device, m: &Matrix<f32>, dtype: DType) -> Result<Tensor> {
    match dtype {
        DType::F16 => dev.upload_matrix(&m.cast::<f16>()),
        _ => dev.upload_matrix(m),
    }
}

/// Checks a dense weight's length and values before upload.
fn check_dense(w: &Matrix<f32>) -> Result<()> {
    let n = crate::formats::checked_elems(OP, "weight", &[w.rows, w.cols])?;
    if w.data.len() != n {
        return Err(Error::shape(OP, format!("dense weight data has {} elements, expected {}x{} = {n}", w.data.len(), w.rows, w.cols)));
    }
    if let Some(p) = w.data.iter().position(|v| !v.is_finite()) {
        return Err(Error::format(
            "dense weight",
            format!("w[{}, {}] = {} is not finite; expected finite values", p / w.cols, p % w.cols, w.data[p]),
        ));
    }
    Ok(())
}

impl Linear {
    /// Uploads `weight` (`[out, in]`) and the optional `bias` (`out` values) to `dev`, for
    /// activations of `dtype` (f32 or f16). Dense weights, CSR and 2:4 values, low-rank
    /// factors and the bias are rounded to `dtype`. Fails on a non-float dtype, a bias of the
    /// wrong length or with non-finite values, or an invalid weight (each format's own
    /// validation; a dense weight must have `out * in` finite values).
    pub fn new(dev: &Device, weight: impl Into<Weight>, bias: Option<&[f32]>, dtype: DType) -> Result<Linear> {
        Linear::upload(dev, &weight.into(), bias, dtype)
    }

    /// [`Linear::new`] of a borrowed weight (nothing is copied on the host).
    pub(crate) fn upload(dev: &Device, weight: &Weight, bias: Option<&[f32]>, dtype: DType) -> Result<Linear> {
        if !dtype.is_float() {
            return Err(Error::dtype(OP, format!("activations are f32 or f16, not {dtype}")));
        }
        let (out_features, in_features) = weight.shape();
        crate::formats::checked_elems(OP, "weight", &[out_features, in_features])?;
        let weight = match weight {
            Weight::Dense(w) => {
                check_dense(w)?;
                DeviceWeight::Dense(upload_matrix_as(dev, w, dtype)?)
            }
            Weight::Csr(w) => DeviceWeight::Csr(Box::new(upload_csr_as(dev, w, dtype)?)),
            Weight::Sparse24(w) => DeviceWeight::Sparse24(Box::new(match dtype {
                DType::F16 => dev.upload_sparse24(&w.cast::<f16>())?,
                _ => dev.upload_sparse24(w)?,
            })),
            Weight::LowRank(w) => DeviceWeight::LowRank(match dtype {
                DType::F16 => dev.upload_lowrank(&LowRank::new(
                    w.m,
                    w.n,
                    w.r,
                    w.u.iter().map(|&x| f16::from_f32(x)).collect(),
                    w.v.iter().map(|&x| f16::from_f32(x)).collect(),
                )?)?,
                _ => dev.upload_lowrank(w)?,
            }),
            Weight::Int8(w) => DeviceWeight::Int8(dev.upload_int8(w)?),
            Weight::Int4(w) => DeviceWeight::Int4(Box::new(dev.upload_int4(w)?)),
            Weight::Int8WeightOnly(w) => DeviceWeight::Int8WeightOnly(dev.upload_int8_weights(w)?),
            Weight::Binary(w) => DeviceWeight::Binary(dev.upload_binary_weights(w)?),
        };
        let out_dtype = if matches!(weight, DeviceWeight::Binary(_)) { DType::F32 } else { dtype };
        let bias = match bias {
            None => None,
            Some(b) => {
                if b.len() != out_features {
                    return Err(Error::shape(OP, format!("bias has {} values, expected out_features = {out_features}", b.len())));
                }
                if let Some(p) = b.iter().position(|v| !v.is_finite()) {
                    return Err(Error::shape(OP, format!("bias[{p}] = {} must be finite", b[p])));
                }
                Some(upload_matrix_as(dev, &Matrix::new(1, out_features, b.to_vec())?, out_dtype)?)
            }
        };
        Ok(Linear { dev: dev.clone(), weight, bias, dtype, out_features, in_features, ones: Mutex::new(None) })
    }

    /// A layer from a quantized layer of a GPTQ / AWQ checkpoint
    /// ([`crate::formats::Checkpoint::load_layer`]): its weight (act-order permutation
    /// included) and its bias, if any, for activations of `dtype`.
    #[cfg(feature = "hf")]
    pub fn from_quant_linear(dev: &Device, layer: crate::formats::QuantLinear, dtype: DType) -> Result<Linear> {
        Linear::new(dev, layer.weight, layer.bias.as_deref(), dtype)
    }

    /// The weight's format.
    pub fn format(&self) -> LayerFormat {
        match self.weight {
            DeviceWeight::Dense(_) => LayerFormat::Dense,
            DeviceWeight::Csr(_) => LayerFormat::Csr,
            DeviceWeight::Sparse24(_) => LayerFormat::Sparse24,
            DeviceWeight::LowRank(_) => LayerFormat::LowRank,
            DeviceWeight::Int8(_) => LayerFormat::Int8,
            DeviceWeight::Int4(_) => LayerFormat::Int4,
            DeviceWeight::Int8WeightOnly(_) => LayerFormat::Int8WeightOnly,
            DeviceWeight::Binary(_) => LayerFormat::Binary,
        }
    }

    /// Input features (columns of x).
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Output features (columns of y).
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The activation dtype `forward` takes.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The dtype `forward` returns: the activation dtype, or f32 for binary layers.
    pub fn out_dtype(&self) -> DType {
        match self.weight {
            DeviceWeight::Binary(_) => DType::F32,
            _ => self.dtype,
        }
    }

    /// True if the layer adds a bias.
    pub fn has_bias(&self) -> bool {
        self.bias.is_some()
    }

    /// The device the layer lives on.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// Bytes the weight and bias occupy on the device, every buffer counted (for dense the
    /// `out * in` values; for CSR also the transposed pattern, row orders and u16 index copies
    /// made at upload;
    /// for 2:4 the values, the metadata and the tensor-core copy where the backend made one;
    /// for int8 the row padding; for int4 the scales, zero points or minimums and the
    /// act-order permutation; for weight-only int8 the scales; for binary the alphas).
    pub fn bytes_on_device(&self) -> u64 {
        let w = match &self.weight {
            DeviceWeight::Dense(t) => bytes(&t.buf),
            DeviceWeight::Csr(a) => csr_bytes(a),
            DeviceWeight::Sparse24(a) => {
                bytes(&a.values) + bytes(&a.meta) + a.mma.as_ref().map_or(0, |m| bytes(&m.values) + bytes(&m.meta))
            }
            DeviceWeight::LowRank(lr) => bytes(&lr.u.buf) + bytes(&lr.v.buf),
            DeviceWeight::Int8(w) => bytes(&w.q) + bytes(&w.scales),
            DeviceWeight::Int4(w) => {
                bytes(&w.qweight) + bytes(&w.scales) + bytes(&w.zeros) + w.mins.as_ref().map_or(0, bytes) + w.perm.as_ref().map_or(0, bytes)
            }
            DeviceWeight::Int8WeightOnly(w) => bytes(&w.q) + bytes(&w.scales),
            DeviceWeight::Binary(w) => bytes(&w.bits.data) + bytes(&w.alpha),
        };
        w + self.bias.as_ref().map_or(0, |b| bytes(&b.buf))
    }

    /// `y = x W^T + bias` for x `[tokens, in]` of [`Linear::dtype`] on the layer's device;
    /// y is a new `[tokens, out]` tensor of [`Linear::out_dtype`]. Int8 layers quantize x per
    /// token first; binary layers take the signs of x. Nothing leaves the device.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dev = &self.dev;
        dev.owns(OP, "x", &x.buf)?;
        if x.cols != self.in_features {
            return Err(Error::shape(OP, format!("x is [{}, {}], expected [tokens, in_features = {}]", x.rows, x.cols, self.in_features)));
        }
        if x.dtype() != self.dtype {
            return Err(Error::dtype(OP, format!("x is {}, this layer takes {}", x.dtype(), self.dtype)));
        }
        let tokens = x.rows;
        let mut y = match &self.weight {
            DeviceWeight::Dense(w) => {
                let mut y = dev.zeros(tokens, self.out_features, self.dtype)?;
                dev.dense_linear(w, x, self.bias.as_ref(), &mut y)?;
                return Ok(y);
            }
            DeviceWeight::LowRank(lr) => {
                let mut y = dev.zeros(tokens, self.out_features, self.dtype)?;
                dev.lowrank_linear(lr, x, self.bias.as_ref(), &mut y)?;
                return Ok(y);
            }
            DeviceWeight::Csr(w) => self.forward_transposed(x, |xt, yt| dev.spmm(w, xt, yt, 1.0, 0.0))?,
            DeviceWeight::Sparse24(w) => self.forward_transposed(x, |xt, yt| dev.spmm_24(w, xt, yt, 1.0, 0.0))?,
            DeviceWeight::Int4(w) => {
                let mut y = dev.zeros(tokens, self.out_features, self.dtype)?;
                dev.gemm_w4a16(x, w, &mut y)?;
                y
            }
            DeviceWeight::Int8WeightOnly(w) => {
                let mut y = dev.zeros(tokens, self.out_features, self.dtype)?;
                dev.gemm_w8a16(x, w, &mut y)?;
                y
            }
            DeviceWeight::Int8(w) => {
                // Per-token quantization of x fused into the int8 GEMM (one launch at decode).
                let mut y = dev.zeros(tokens, self.out_features, self.dtype)?;
                dev.gemm_w8a8_dyn(x, w, &mut y)?;
                y
            }
            DeviceWeight::Binary(w) => {
                let mut bits = dev.zeros_bits(tokens, self.in_features)?;
                dev.binarize_pack(x, &mut bits)?;
                let mut y = dev.zeros(tokens, self.out_features, DType::F32)?;
                dev.xnor_gemm(&bits, w, &mut y)?;
                y
            }
        };
        if let Some(bias) = &self.bias {
            self.add_bias(&mut y, bias)?;
        }
        Ok(y)
    }

    /// `y = (W x^T)^T` for a sparse W that multiplies on the left: `x^T [in, tokens]` by a
    /// device transpose, `spmm(W, x^T) = y^T [out, tokens]` (the closure), then y by a second
    /// device transpose (no bias: the caller adds it).
    fn forward_transposed(&self, x: &Tensor, spmm: impl FnOnce(&Tensor, &mut Tensor) -> Result<()>) -> Result<Tensor> {
        let dev = &self.dev;
        let tokens = x.rows;
        let mut xt = dev.zeros(self.in_features, tokens, self.dtype)?;
        dev.transpose(x, &mut xt)?;
        let mut yt = dev.zeros(self.out_features, tokens, self.dtype)?;
        spmm(&xt, &mut yt)?;
        drop(xt);
        let mut y = dev.zeros(tokens, self.out_features, self.dtype)?;
        dev.transpose(&yt, &mut y)?;
        Ok(y)
    }

    /// `y += ones[tokens, 1] bias[1, out]` with `spmm` (beta = 1), in y's dtype.
    fn add_bias(&self, y: &mut Tensor, bias: &Tensor) -> Result<()> {
        let tokens = y.rows;
        let mut ones = self.ones.lock().map_err(|_| Error::backend(self.dev.kind().name(), "Linear: bias cache lock poisoned"))?;
        if ones.as_ref().map(|o| (o.rows, o.dtype())) != Some((tokens, y.dtype())) {
            let t32 = u32::try_from(tokens).map_err(|_| Error::shape(OP, format!("{tokens} tokens exceed 32-bit CSR offsets")))?;
            let col = Csr::<f32>::new(tokens, 1, (0..=t32).collect(), vec![0; tokens], vec![1.0; tokens])?;
            *ones = Some(upload_csr_as(&self.dev, &col, y.dtype())?);
        }
        let ones = ones.as_ref().ok_or_else(|| Error::backend(self.dev.kind().name(), "Linear: bias column missing"))?;
        self.dev.spmm(ones, bias, y, 1.0, 1.0)
    }
}
